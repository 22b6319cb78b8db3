//! `image prune`: remove what nothing references: blobs no image of any namespace uses,
//! committed snapshots no image's layers need, snapshots of containers whose bundle is gone
//! and of image mounts that were unmounted behind hezi's back, and temp files a killed hezi
//! left. `image rm` collects as it goes; prune is for what crashes and hand edits leave.

use std::fs;
use std::path::Path;

use crate::error::{IoContext, Result};
use crate::snapshot::Snapshotter;
use crate::store::Store;
use crate::{image_mount, images};

/// What went, one line each, for the user.
#[derive(Default)]
pub struct Pruned {
    pub lines: Vec<String>,
}

/// Prune `store`; `bundles` is where `run --image` keeps container bundles (a container's
/// snapshot without its bundle is a leftover).
pub fn prune(store: &Store, bundles: &Path) -> Result<Pruned> {
    let _lock = store.lock()?;
    let mut out = Pruned::default();
    let snap = Snapshotter::new(store)?;
    // Active snapshots first: they hold their parents.
    for s in snap.list()? {
        if !s.meta.active {
            continue;
        }
        if let Some(id) = s.meta.key.strip_prefix("container/") {
            if !bundles.join(id).exists() {
                snap.remove_id(s.id)?;
                out.lines
                    .push(format!("snapshot {} ({}: its container is gone)", s.id, s.meta.key));
            }
        }
    }
    for (id, target) in image_mount::stale(&snap)? {
        snap.remove_id(id)?;
        out.lines
            .push(format!("snapshot {id} (mount/{target}: no longer mounted)"));
    }
    for p in store.unreferenced_blobs()? {
        let size = fs::metadata(&p).map_or(0, |m| m.len());
        fs::remove_file(&p).ctx(|| format!("remove {}", p.display()))?;
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        out.lines.push(format!("blob sha256:{name} ({size} bytes)"));
    }
    for (id, key) in snap.unused(&images::used_chain_ids(store)?)? {
        snap.remove_id(id)?;
        out.lines.push(match key {
            Some(k) => format!("snapshot {id} ({k})"),
            None => format!("snapshot {id} (incomplete)"),
        });
    }
    let tmp = store.root().join("tmp");
    for e in fs::read_dir(&tmp).ctx(|| format!("list {}", tmp.display()))? {
        let e = e.ctx(|| format!("list {}", tmp.display()))?;
        let p = e.path();
        if p.is_dir() {
            fs::remove_dir_all(&p)
        } else {
            fs::remove_file(&p)
        }
        .ctx(|| format!("remove {}", p.display()))?;
        out.lines.push(format!("temp file {}", e.file_name().to_string_lossy()));
    }
    Ok(out)
}
