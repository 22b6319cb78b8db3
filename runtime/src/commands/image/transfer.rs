//! Images in and out of the store: `pull` and `push` (a registry), `import` and `export`
//! (archives).

use std::path::Path;

use containerd_bridge::registry::{self, Credentials, PullOptions, PushOptions};
use containerd_bridge::{export as bridge_export, import as bridge_import, reference};

use super::{err, names, platform_of, store};
use crate::cli::{self, flag, opt};
use crate::{Failure, Global};

pub fn import(g: &Global, args: &[String]) -> Result<(), Failure> {
    let a = cli::parse_for("image import", args, &[opt(&["name"]), opt(&["platform"])])?;
    let [file] = a.positional.as_slice() else {
        return Err(Failure::Usage(
            "image import: requires exactly 1 argument: the archive".into(),
        ));
    };
    let opts = bridge_import::Options {
        name: a.value("name").map(str::to_string),
        platform: platform_of(&a)?,
    };
    for rec in bridge_import::import(&store(g)?, Path::new(file), &opts).map_err(err)? {
        println!("{} {}", rec.name, rec.target.digest);
    }
    Ok(())
}

fn credentials(a: &cli::Args) -> Result<Option<Credentials>, Failure> {
    Credentials::from_flag_or_env(a.value("user")).map_err(|e| Failure::Usage(e.to_string()))
}

pub fn pull(g: &Global, args: &[String]) -> Result<(), Failure> {
    let a = cli::parse_for(
        "image pull",
        args,
        &[
            flag(&["plain-http"]),
            opt(&["platform"]),
            flag(&["all-platforms"]),
            opt(&["user", "u"]),
        ],
    )?;
    let [name] = a.positional.as_slice() else {
        return Err(Failure::Usage(
            "image pull: requires exactly 1 argument: the image".into(),
        ));
    };
    let opts = PullOptions {
        plain_http: a.is_set("plain-http"),
        platform: platform_of(&a)?,
        auth: credentials(&a)?,
        all_platforms: a.is_set("all-platforms"),
    };
    let rec = registry::pull(&store(g)?, name, &opts).map_err(err)?;
    println!("{} {}", rec.name, rec.index.as_ref().unwrap_or(&rec.target.digest));
    Ok(())
}

pub fn push(g: &Global, args: &[String]) -> Result<(), Failure> {
    let a = cli::parse_for("image push", args, &[flag(&["plain-http"]), opt(&["user", "u"])])?;
    let (remote, local) =
        match a.positional.as_slice() {
            [remote] => (remote, remote),
            [remote, local] => (remote, local),
            _ => return Err(Failure::Usage(
                "image push: requires 1 or 2 arguments: the remote reference, and the local image if its name differs"
                    .into(),
            )),
        };
    let local = reference::normalize(local).map_err(err)?;
    let opts = PushOptions {
        plain_http: a.is_set("plain-http"),
        auth: credentials(&a)?,
    };
    let pushed =
        registry::push(&store(g)?, &local, remote, &opts).map_err(|e| Failure::Error(format!("push {remote}: {e}")))?;
    if let Some(note) = &pushed.note {
        eprintln!("hezi: {note}");
    }
    println!(
        "{} {} ({} blobs uploaded, {} already there)",
        pushed.name, pushed.digest, pushed.uploaded, pushed.skipped
    );
    Ok(())
}

pub fn export(g: &Global, args: &[String]) -> Result<(), Failure> {
    let a = cli::parse_for("image export", args, &[flag(&["all-platforms"])])?;
    let Some((file, refs)) = a.positional.split_first().filter(|(_, r)| !r.is_empty()) else {
        return Err(Failure::Usage(
            "image export: requires at least 2 arguments: the archive and an image".into(),
        ));
    };
    let names = names(refs)?;
    bridge_export::export(&store(g)?, &names, Path::new(file), a.is_set("all-platforms")).map_err(err)?;
    names.iter().for_each(|n| println!("{n}"));
    Ok(())
}
