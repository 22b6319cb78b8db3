//! Bundles for `hezi run --image`: `<state root>/.bundles/<id>` holds config.json (from the
//! image) and `rootfs/`, mounted from an active snapshot of the image in the store at
//! `<state root>/.images`. The dot names keep both out of the way of container ids, which
//! cannot start with a dot. Removing the bundle unmounts the rootfs and deletes the snapshot.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, IoContext, Result};
use crate::images;
use crate::mount::{mount_rootfs, unmount_rootfs};
use crate::reference;
use crate::snapshot::Snapshotter;
use crate::spec;
use crate::store::Store;

/// The image store of a hezi state root.
pub fn images_root(state_root: &Path) -> PathBuf {
    state_root.join(".images")
}

pub fn bundle_dir(state_root: &Path, id: &str) -> PathBuf {
    state_root.join(".bundles").join(id)
}

/// What the bundle was made from, so removing it knows which snapshot to drop.
#[derive(Serialize, Deserialize)]
struct Marker {
    image: String,
    snapshot: String,
}

const MARKER: &str = "hezi-image.json";

fn snapshot_key(id: &str) -> String {
    format!("container/{id}")
}

fn check_id(id: &str) -> Result<()> {
    let ok = id.starts_with(|c: char| c.is_ascii_alphanumeric())
        && id.len() <= 255
        && id.chars().all(|c| c.is_ascii_alphanumeric() || "_+.-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid(format!("invalid container id {id:?}")))
    }
}

/// Make the bundle for container `id` from `image` (unpacking it first if this driver has not
/// yet); `user_args` replace the image's Cmd. Returns the bundle directory. On error nothing is
/// left: no mount, snapshot or directory.
pub fn prepare(state_root: &Path, image: &str, id: &str, user_args: &[String]) -> Result<PathBuf> {
    check_id(id)?;
    let name = reference::normalize(image)?;
    let store = Store::open(&images_root(state_root))?;
    let dir = bundle_dir(state_root, id);
    if dir.exists() {
        return Err(Error::Invalid(format!(
            "bundle {} already exists (is container {id} still there? hezi delete {id})",
            dir.display()
        )));
    }
    let _lock = store.lock()?;
    let img = store.image(&name)?;
    let snap = Snapshotter::new(&store)?;
    let top = images::unpack(&store, &snap, &img)?;
    let cfg = store.config(&img.config)?;
    let key = snapshot_key(id);
    let rootfs = dir.join("rootfs");
    let made = (|| {
        fs::create_dir_all(&rootfs).ctx(|| format!("create {}", rootfs.display()))?;
        let marker = Marker {
            image: name.clone(),
            snapshot: key.clone(),
        };
        let bytes = serde_json::to_vec_pretty(&marker).map_err(|e| Error::Invalid(e.to_string()))?;
        fs::write(dir.join(MARKER), bytes).ctx(|| format!("write {}", dir.join(MARKER).display()))?;
        let mounts = snap.prepare(&key, top)?;
        mount_rootfs(&mounts, &rootfs)?;
        let spec = spec::for_image(id, &cfg, &rootfs, user_args)?;
        let text = serde_json::to_vec_pretty(&spec).map_err(|e| Error::Invalid(e.to_string()))?;
        fs::write(dir.join("config.json"), text).ctx(|| format!("write {}/config.json", dir.display()))
    })();
    if let Err(e) = made {
        let _ = unmount_rootfs(&rootfs);
        let _ = snap.remove(&key);
        let _ = fs::remove_dir_all(&dir);
        return Err(e);
    }
    Ok(dir)
}

/// Remove the bundle of container `id` if `run --image` made one: unmount its rootfs, delete
/// its snapshot and directory. Returns whether there was one.
pub fn remove(state_root: &Path, id: &str) -> Result<bool> {
    check_id(id)?;
    let dir = bundle_dir(state_root, id);
    if !dir.join(MARKER).exists() {
        return Ok(false);
    }
    unmount_rootfs(&dir.join("rootfs"))?;
    let store = Store::open(&images_root(state_root))?;
    let _lock = store.lock()?;
    Snapshotter::new(&store)?.remove(&snapshot_key(id))?;
    fs::remove_dir_all(&dir).ctx(|| format!("remove bundle {}", dir.display()))?;
    Ok(true)
}
