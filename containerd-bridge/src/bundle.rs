//! Bundles for `hezi run --image`: `<bundles>/<id>` holds config.json (from the image) and
//! `rootfs/`, mounted from an active snapshot of the image in the store at `<images>`. Where
//! those two directories are is the caller's layout ([`Dirs`]), not this crate's. Removing the
//! bundle unmounts the rootfs and deletes the snapshot.

use std::fs;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::{Error, IoContext, Result};
use crate::images;
use crate::mount::{mount_rootfs, unmount_rootfs};
use crate::overrides::{Overrides, IMAGE_ANNOTATION, NAMESPACE_ANNOTATION};
use crate::reference;
use crate::snapshot::Snapshotter;
use crate::spec;
use crate::store::Store;

/// Where the caller keeps the image store and the bundles it makes from it.
#[derive(Clone, Debug)]
pub struct Dirs {
    /// The content store and snapshots.
    pub images: PathBuf,
    /// One directory per container made from an image.
    pub bundles: PathBuf,
}

impl Dirs {
    pub fn bundle(&self, id: &str) -> PathBuf {
        self.bundles.join(id)
    }
}

/// What the bundle was made from, so removing it knows which snapshot to drop.
#[derive(Serialize, Deserialize)]
struct Marker {
    image: String,
    snapshot: String,
    /// The namespace the image was found in (absent in bundles made before namespaces).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    namespace: Option<String>,
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

/// Make the bundle for container `id` from `image` in namespace `ns` (unpacking it first if
/// this driver has not yet); `user_args` replace the image's Cmd, and `over` changes the spec
/// (run's flags). Returns the bundle directory. On error nothing is left: no mount, snapshot or
/// directory.
pub fn prepare(
    dirs: &Dirs,
    ns: &str,
    image: &str,
    id: &str,
    user_args: &[String],
    over: &Overrides,
) -> Result<PathBuf> {
    check_id(id)?;
    let name = reference::normalize(image)?;
    let store = Store::open(&dirs.images)?.in_namespace(ns)?;
    let dir = dirs.bundle(id);
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
            namespace: Some(ns.to_string()),
        };
        let bytes = serde_json::to_vec_pretty(&marker).map_err(|e| Error::Invalid(e.to_string()))?;
        fs::write(dir.join(MARKER), bytes).ctx(|| format!("write {}", dir.join(MARKER).display()))?;
        let mounts = snap.prepare(&key, top)?;
        mount_rootfs(&mounts, &rootfs)?;
        let mut spec = spec::for_image(id, &cfg, &rootfs, user_args)?;
        over.apply(&mut spec, &rootfs)?;
        // Recorded in the container's state (annotations), where `hezi list` finds it.
        spec["annotations"][IMAGE_ANNOTATION] = serde_json::json!(name);
        spec["annotations"][NAMESPACE_ANNOTATION] = serde_json::json!(ns);
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

/// Remove the bundle of container `id` if `run --image` made one in namespace `ns`: unmount
/// its rootfs, delete its snapshot and directory. Returns whether there was one. A bundle of
/// another namespace's container of that id is left alone (ids are unique across namespaces,
/// so `delete -f ID` in the wrong namespace must not take the bundle from under it).
pub fn remove(dirs: &Dirs, ns: &str, id: &str) -> Result<bool> {
    check_id(id)?;
    let dir = dirs.bundle(id);
    let marker = dir.join(MARKER);
    if !marker.exists() {
        return Ok(false);
    }
    if owner(&marker)? != ns {
        return Ok(false);
    }
    unmount_rootfs(&dir.join("rootfs"))?;
    let store = Store::open(&dirs.images)?;
    let _lock = store.lock()?;
    Snapshotter::new(&store)?.remove(&snapshot_key(id))?;
    fs::remove_dir_all(&dir).ctx(|| format!("remove bundle {}", dir.display()))?;
    Ok(true)
}

/// The namespace a bundle's marker names; bundles made before namespaces are `default`'s.
fn owner(marker: &std::path::Path) -> Result<String> {
    let bytes = fs::read(marker).ctx(|| format!("read {}", marker.display()))?;
    let m: Marker = serde_json::from_slice(&bytes).map_err(|e| Error::Invalid(format!("{}: {e}", marker.display())))?;
    Ok(m.namespace.unwrap_or_else(|| crate::namespace::DEFAULT.to_string()))
}
