//! `image mount REF DIR [--rw]` and `image unmount DIR` (containerd_bridge::image_mount).

use std::path::Path;

use containerd_bridge::{image_mount, reference};

use super::{err, store};
use crate::cli::{self, flag};
use crate::{Failure, Global};

pub fn mount(g: &Global, args: &[String]) -> Result<(), Failure> {
    let a = cli::parse_for("image mount", args, &[flag(&["rw"])])?;
    let [name, dir] = a.positional.as_slice() else {
        return Err(Failure::Usage(
            "image mount: requires exactly 2 arguments: the image and the directory".into(),
        ));
    };
    let name = reference::normalize(name).map_err(err)?;
    let m = image_mount::mount(&store(g)?, &name, Path::new(dir), a.is_set("rw")).map_err(err)?;
    // As ctr: the chain id of the mounted snapshot, then the target.
    println!("{}", m.chain_id);
    println!("{}", m.target.display());
    Ok(())
}

pub fn unmount(g: &Global, args: &[String]) -> Result<(), Failure> {
    let a = cli::parse_for("image unmount", args, &[])?;
    let [dir] = a.positional.as_slice() else {
        return Err(Failure::Usage(
            "image unmount: requires exactly 1 argument: the directory".into(),
        ));
    };
    let target = image_mount::unmount(&store(g)?, Path::new(dir)).map_err(err)?;
    println!("{}", target.display());
    Ok(())
}
