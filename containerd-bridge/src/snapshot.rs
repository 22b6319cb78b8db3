//! Snapshots, as containerd's overlayfs snapshotter lays them out: `<root>/snapshots/<n>/fs`,
//! one committed snapshot per layer chain id, each pointing at its parent; a container gets an
//! active snapshot (an `fs` upper dir and a `work` dir) and a mount list for the shim. Where
//! overlayfs is unavailable (or `HEZI_SNAPSHOTTER=native`), snapshots are full copies of their
//! parent with the layer applied, mounted by bind.
//!
//! `meta.json` is written last, after the content is complete: a numbered directory without one
//! is the remains of a failed or interrupted unpack, and garbage collection removes it.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::copy;
use crate::digest::Digest;
use crate::error::{Error, IoContext, Result};
use crate::mount::Mount;
use crate::store::{self, Store};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Driver {
    Overlay,
    Native,
}

impl Driver {
    pub fn name(self) -> &'static str {
        match self {
            Driver::Overlay => "overlay",
            Driver::Native => "native",
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Meta {
    pub driver: Driver,
    /// `committed` (an image layer) or `active` (a container's writable layer).
    pub active: bool,
    /// The chain id of a committed snapshot; the container's key for an active one.
    pub key: String,
    pub parent: Option<u64>,
    pub created: u64,
    /// A read-only view of its parent (`image mount` without --rw): no upper layer of its own.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub view: bool,
}

#[derive(Clone, Debug)]
pub struct Snapshot {
    pub id: u64,
    pub meta: Meta,
}

pub struct Snapshotter<'a> {
    store: &'a Store,
    pub driver: Driver,
}

/// The chain id of a layer stack (OCI image spec): the first diff id, then
/// `sha256(parent_chain + " " + diff_id)` for each layer on top.
pub fn chain_ids(diff_ids: &[Digest]) -> Vec<Digest> {
    let mut out: Vec<Digest> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let next = match out.last() {
            None => d.clone(),
            Some(parent) => Digest::of(format!("{parent} {d}").as_bytes()),
        };
        out.push(next);
    }
    out
}

impl<'a> Snapshotter<'a> {
    /// The driver from `HEZI_SNAPSHOTTER` (`overlay` or `native`), or overlay when the store's
    /// filesystem can be an overlay upper dir (probed once, then remembered in the store).
    pub fn new(store: &'a Store) -> Result<Snapshotter<'a>> {
        let driver = match std::env::var("HEZI_SNAPSHOTTER").as_deref() {
            Ok("overlay") | Ok("overlayfs") => Driver::Overlay,
            Ok("native") => Driver::Native,
            Ok(other) if !other.is_empty() => {
                return Err(Error::Invalid(format!(
                    "HEZI_SNAPSHOTTER={other:?}: want overlay or native"
                )))
            }
            _ => probe(store)?,
        };
        Ok(Snapshotter { store, driver })
    }

    /// A snapshotter with the driver given (tests, and callers that know it).
    pub fn with_driver(store: &'a Store, driver: Driver) -> Snapshotter<'a> {
        Snapshotter { store, driver }
    }

    fn dir(&self, id: u64) -> PathBuf {
        self.store.root().join("snapshots").join(id.to_string())
    }

    pub fn fs_dir(&self, id: u64) -> PathBuf {
        self.dir(id).join("fs")
    }

    /// Every complete snapshot, any driver.
    pub fn list(&self) -> Result<Vec<Snapshot>> {
        let dir = self.store.root().join("snapshots");
        let mut out = Vec::new();
        for e in fs::read_dir(&dir).ctx(|| format!("list {}", dir.display()))? {
            let e = e.ctx(|| format!("list {}", dir.display()))?;
            let Some(id) = e.file_name().to_str().and_then(|n| n.parse::<u64>().ok()) else {
                continue;
            };
            let p = e.path().join("meta.json");
            if let Ok(b) = fs::read(&p) {
                out.push(Snapshot {
                    id,
                    meta: crate::manifest::parse(&p.display().to_string(), &b)?,
                });
            }
        }
        out.sort_by_key(|s| s.id);
        Ok(out)
    }

    pub fn find(&self, active: bool, key: &str) -> Result<Option<Snapshot>> {
        Ok(self
            .list()?
            .into_iter()
            .find(|s| s.meta.driver == self.driver && s.meta.active == active && s.meta.key == key))
    }

    /// A new numbered directory (call with the store lock held).
    fn allocate(&self) -> Result<(u64, PathBuf)> {
        let dir = self.store.root().join("snapshots");
        let mut max = 0;
        for e in fs::read_dir(&dir).ctx(|| format!("list {}", dir.display()))? {
            let e = e.ctx(|| format!("list {}", dir.display()))?;
            if let Some(n) = e.file_name().to_str().and_then(|n| n.parse::<u64>().ok()) {
                max = max.max(n);
            }
        }
        let id = max + 1;
        let p = self.dir(id);
        fs::create_dir(&p).ctx(|| format!("create snapshot {}", p.display()))?;
        fs::create_dir(p.join("fs")).ctx(|| format!("create snapshot {}/fs", p.display()))?;
        Ok((id, p))
    }

    fn commit_meta(&self, id: u64, meta: &Meta) -> Result<()> {
        let bytes =
            serde_json::to_vec_pretty(meta).map_err(|e| Error::Invalid(format!("encode snapshot meta: {e}")))?;
        store::atomic_write(&self.store.temp_path("meta"), &self.dir(id).join("meta.json"), &bytes)
    }

    /// Build committed snapshot `chain_id` on top of `parent` by `fill` (which applies the
    /// layer); on error the directory is removed, so no half-made snapshot remains.
    pub fn commit_with(
        &self,
        chain_id: &Digest,
        parent: Option<u64>,
        fill: impl FnOnce(&Path) -> Result<()>,
    ) -> Result<u64> {
        let (id, dir) = self.allocate()?;
        let result = (|| {
            if let (Driver::Native, Some(p)) = (self.driver, parent) {
                copy::copy_tree(&self.fs_dir(p), &dir.join("fs"))?;
            }
            fill(&dir.join("fs"))?;
            self.commit_meta(
                id,
                &Meta {
                    driver: self.driver,
                    active: false,
                    key: chain_id.to_string(),
                    parent,
                    created: store::now_secs(),
                    view: false,
                },
            )
        })();
        if let Err(e) = result {
            let _ = fs::remove_dir_all(&dir);
            return Err(e);
        }
        Ok(id)
    }

    /// The fs dirs of `id` and its ancestors, top first (an overlay's lowerdir order).
    fn chain(&self, id: u64) -> Result<Vec<PathBuf>> {
        let all = self.list()?;
        let mut out = Vec::new();
        let mut cur = Some(id);
        while let Some(c) = cur {
            let s = all
                .iter()
                .find(|s| s.id == c)
                .ok_or_else(|| Error::NotFound(format!("snapshot {c} (a parent) is missing")))?;
            out.push(self.fs_dir(c));
            cur = s.meta.parent;
        }
        Ok(out)
    }

    /// An active (writable) snapshot `key` on top of committed snapshot `parent`; returns its
    /// mounts.
    pub fn prepare(&self, key: &str, parent: Option<u64>) -> Result<Vec<Mount>> {
        if self.find(true, key)?.is_some() {
            return Err(Error::Invalid(format!("snapshot {key:?} already exists")));
        }
        let (id, dir) = self.allocate()?;
        let result = (|| {
            match (self.driver, parent) {
                (Driver::Overlay, _) => {
                    fs::create_dir(dir.join("work")).ctx(|| format!("create {}/work", dir.display()))?
                }
                (Driver::Native, Some(p)) => copy::copy_tree(&self.fs_dir(p), &dir.join("fs"))?,
                (Driver::Native, None) => {}
            }
            self.commit_meta(
                id,
                &Meta {
                    driver: self.driver,
                    active: true,
                    key: key.to_string(),
                    parent,
                    created: store::now_secs(),
                    view: false,
                },
            )?;
            self.mounts(key)
        })();
        if result.is_err() {
            let _ = fs::remove_dir_all(&dir);
        }
        result
    }

    /// A read-only view `key` of committed snapshot `parent` (containerd's `View`): nothing is
    /// copied or written; returns its mounts.
    pub fn view(&self, key: &str, parent: Option<u64>) -> Result<Vec<Mount>> {
        if self.find(true, key)?.is_some() {
            return Err(Error::Invalid(format!("snapshot {key:?} already exists")));
        }
        let (id, dir) = self.allocate()?;
        let result = (|| {
            self.commit_meta(
                id,
                &Meta {
                    driver: self.driver,
                    active: true,
                    key: key.to_string(),
                    parent,
                    created: store::now_secs(),
                    view: true,
                },
            )?;
            self.mounts(key)
        })();
        if result.is_err() {
            let _ = fs::remove_dir_all(&dir);
        }
        result
    }

    /// The mounts of a view: a read-only bind of the parent's fs where that is the whole
    /// tree (one layer, or the copying driver), else a read-only overlay of the chain (overlay
    /// takes no single lowerdir without an upper one on older kernels).
    fn view_mounts(&self, s: &Snapshot) -> Result<Vec<Mount>> {
        let ro_bind = |dir: PathBuf| Mount {
            kind: "bind".into(),
            source: dir.display().to_string(),
            options: vec!["rbind".into(), "ro".into()],
        };
        let Some(p) = s.meta.parent else {
            return Ok(vec![ro_bind(self.fs_dir(s.id))]);
        };
        let lowers = self.chain(p)?;
        Ok(match (s.meta.driver, lowers.as_slice()) {
            (Driver::Native, _) | (Driver::Overlay, [_]) => vec![ro_bind(self.fs_dir(p))],
            (Driver::Overlay, _) => {
                let lowers: Vec<String> = lowers.iter().map(|d| d.display().to_string()).collect();
                vec![Mount {
                    kind: "overlay".into(),
                    source: "overlay".into(),
                    options: vec!["ro".into(), format!("lowerdir={}", lowers.join(":"))],
                }]
            }
        })
    }

    /// The mounts of active snapshot `key`: a bind of its fs without parents (or with the
    /// copying driver), else overlay with the parents as lowerdirs.
    pub fn mounts(&self, key: &str) -> Result<Vec<Mount>> {
        let s = self
            .find(true, key)?
            .ok_or_else(|| Error::NotFound(format!("snapshot {key:?} not found")))?;
        if s.meta.view {
            return self.view_mounts(&s);
        }
        let upper = self.fs_dir(s.id);
        let bind = || Mount {
            kind: "bind".into(),
            source: upper.display().to_string(),
            options: vec!["rbind".into(), "rw".into()],
        };
        Ok(match (s.meta.driver, s.meta.parent) {
            (Driver::Native, _) | (Driver::Overlay, None) => vec![bind()],
            (Driver::Overlay, Some(p)) => {
                let lowers: Vec<String> = self.chain(p)?.iter().map(|d| d.display().to_string()).collect();
                vec![Mount {
                    kind: "overlay".into(),
                    source: "overlay".into(),
                    options: vec![
                        format!("lowerdir={}", lowers.join(":")),
                        format!("upperdir={}", upper.display()),
                        format!("workdir={}", self.dir(s.id).join("work").display()),
                    ],
                }]
            }
        })
    }

    /// Remove active snapshot `key` (missing is fine).
    pub fn remove(&self, key: &str) -> Result<()> {
        for s in self.list()?.into_iter().filter(|s| s.meta.active && s.meta.key == key) {
            let d = self.dir(s.id);
            fs::remove_dir_all(&d).ctx(|| format!("remove snapshot {}", d.display()))?;
        }
        Ok(())
    }

    /// The committed snapshot of chain id `chain` and its ancestors, top first.
    pub fn committed_chain(&self, chain: &str) -> Result<Vec<Snapshot>> {
        let all = self.list()?;
        let mut out = Vec::new();
        let mut cur = all
            .iter()
            .find(|s| s.meta.driver == self.driver && !s.meta.active && s.meta.key == chain)
            .map(|s| s.id);
        while let Some(id) = cur {
            let Some(s) = all.iter().find(|s| s.id == id) else {
                break;
            };
            out.push(s.clone());
            cur = s.meta.parent;
        }
        Ok(out)
    }

    /// Remove the active snapshot with this id (prune's stale ones).
    pub fn remove_id(&self, id: u64) -> Result<()> {
        let d = self.dir(id);
        fs::remove_dir_all(&d).ctx(|| format!("remove snapshot {}", d.display()))
    }

    /// What [`Snapshotter::gc`] would remove: (id, key) of unused committed snapshots, and
    /// `(id, None)` for directories without meta.json.
    pub fn unused(&self, used_chain_ids: &BTreeSet<String>) -> Result<Vec<(u64, Option<String>)>> {
        let all = self.list()?;
        let keep = Self::kept(&all, used_chain_ids);
        let dir = self.store.root().join("snapshots");
        let mut out = Vec::new();
        for e in fs::read_dir(&dir).ctx(|| format!("list {}", dir.display()))? {
            let e = e.ctx(|| format!("list {}", dir.display()))?;
            let Some(id) = e.file_name().to_str().and_then(|n| n.parse::<u64>().ok()) else {
                continue;
            };
            if !keep.contains(&id) {
                out.push((id, all.iter().find(|s| s.id == id).map(|s| s.meta.key.clone())));
            }
        }
        out.sort();
        Ok(out)
    }

    /// Ids to keep: active snapshots, those of used chain ids, and every parent of those.
    fn kept(all: &[Snapshot], used_chain_ids: &BTreeSet<String>) -> BTreeSet<u64> {
        let mut keep: BTreeSet<u64> = BTreeSet::new();
        let mut stack: Vec<u64> = all
            .iter()
            .filter(|s| s.meta.active || used_chain_ids.contains(&s.meta.key))
            .map(|s| s.id)
            .collect();
        while let Some(id) = stack.pop() {
            if keep.insert(id) {
                if let Some(p) = all.iter().find(|s| s.id == id).and_then(|s| s.meta.parent) {
                    stack.push(p);
                }
            }
        }
        keep
    }

    /// Remove committed snapshots whose chain id no image uses and no active snapshot sits on,
    /// and directories left without meta.json (call with the store lock held).
    pub fn gc(&self, used_chain_ids: &BTreeSet<String>) -> Result<usize> {
        let unused = self.unused(used_chain_ids)?;
        for (id, _) in &unused {
            self.remove_id(*id)?;
        }
        Ok(unused.len())
    }
}

/// Whether overlayfs works here with its dirs in the store (not on tmpfs-less or overlay-on-
/// overlay setups): mount one with two lowers and see. The answer is kept in `<root>/driver`.
fn probe(store: &Store) -> Result<Driver> {
    let remembered = store.root().join("driver");
    match fs::read_to_string(&remembered).as_deref().map(str::trim) {
        Ok("overlay") => return Ok(Driver::Overlay),
        Ok("native") => return Ok(Driver::Native),
        _ => {}
    }
    let dir = store.temp_path("probe");
    let works = (|| -> Result<bool> {
        for d in ["l1", "l2", "u", "w", "m"] {
            fs::create_dir_all(dir.join(d)).ctx(|| format!("create {}", dir.display()))?;
        }
        let m = Mount {
            kind: "overlay".into(),
            source: "overlay".into(),
            options: vec![
                format!("lowerdir={}:{}", dir.join("l1").display(), dir.join("l2").display()),
                format!("upperdir={}", dir.join("u").display()),
                format!("workdir={}", dir.join("w").display()),
            ],
        };
        if crate::mount::mount_rootfs(&[m], &dir.join("m")).is_err() {
            return Ok(false);
        }
        crate::mount::unmount_rootfs(&dir.join("m"))?;
        Ok(true)
    })();
    let _ = fs::remove_dir_all(&dir);
    let driver = if works? { Driver::Overlay } else { Driver::Native };
    store::atomic_write(&store.temp_path("driver"), &remembered, driver.name().as_bytes())?;
    Ok(driver)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_ids_follow_the_spec() {
        let a = Digest::of(b"a");
        let b = Digest::of(b"b");
        let c = chain_ids(&[a.clone(), b.clone()]);
        assert_eq!(c[0], a);
        assert_eq!(c[1], Digest::of(format!("{a} {b}").as_bytes()));
    }
}
