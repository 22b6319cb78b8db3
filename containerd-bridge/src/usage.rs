//! `image usage REF`: what an image takes: its compressed content (the blobs of its platform in
//! the store) and, as `ctr images usage` lists them, its unpacked snapshots, top layer first,
//! with the apparent size of their files and their inode count.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::content;
use crate::error::{Error, IoContext, Result};
use crate::snapshot::{chain_ids, Snapshotter};
use crate::store::{ImageRecord, Store};

pub struct SnapshotUsage {
    /// The chain id (containerd's snapshot key for an image layer).
    pub key: String,
    pub size: u64,
    pub inodes: u64,
}

pub struct Usage {
    pub content_size: u64,
    pub content_blobs: usize,
    /// Top first.
    pub snapshots: Vec<SnapshotUsage>,
}

impl Usage {
    pub fn unpacked_size(&self) -> u64 {
        self.snapshots.iter().map(|s| s.size).sum()
    }
}

/// Sizes of image `rec`: its content, and its snapshots for the current driver (it must be
/// unpacked for it).
pub fn usage(store: &Store, snap: &Snapshotter, rec: &ImageRecord) -> Result<Usage> {
    let blobs = content::platform_blobs(store, rec)?;
    let mut content_size = 0;
    for b in &blobs {
        let p = store.blob_path(&b.digest);
        content_size += fs::metadata(&p)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => Error::NotFound(format!(
                    "image {}: {} {} is not in the store (hezi image check)",
                    rec.name,
                    b.role.name(),
                    b.digest
                )),
                _ => Error::io(format!("stat {}", p.display()), e),
            })?
            .len();
    }
    let cfg = store.config(&rec.config)?;
    let mut snapshots = Vec::new();
    if let Some(top) = chain_ids(&cfg.rootfs.diff_ids).last() {
        let chain = snap.committed_chain(top.as_str())?;
        if chain.len() != cfg.rootfs.diff_ids.len() {
            return Err(Error::NotFound(format!(
                "image {} is not unpacked for the {} snapshotter",
                rec.name,
                snap.driver.name()
            )));
        }
        for s in chain {
            let (size, inodes) = tree_usage(&snap.fs_dir(s.id))?;
            snapshots.push(SnapshotUsage {
                key: s.meta.key,
                size,
                inodes,
            });
        }
    }
    Ok(Usage {
        content_size,
        content_blobs: blobs.len(),
        snapshots,
    })
}

/// (apparent size of the files, inodes) under `dir`, each inode once (hard links), not
/// following symlinks, the directory itself not counted.
pub fn tree_usage(dir: &Path) -> Result<(u64, u64)> {
    let mut seen = BTreeSet::new();
    let mut size = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).ctx(|| format!("list {}", d.display()))? {
            let e = e.ctx(|| format!("list {}", d.display()))?;
            let md = fs::symlink_metadata(e.path()).ctx(|| format!("stat {}", e.path().display()))?;
            if !seen.insert((md.dev(), md.ino())) {
                continue;
            }
            if md.is_dir() {
                stack.push(e.path());
            } else if md.is_file() {
                size += md.len();
            }
        }
    }
    Ok((size, seen.len() as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_files_once_and_every_inode() {
        let dir = std::env::temp_dir().join(format!("bridge-usage-{}", std::process::id()));
        fs::create_dir_all(dir.join("sub")).unwrap();
        fs::write(dir.join("a"), b"12345").unwrap();
        fs::write(dir.join("sub/b"), b"123").unwrap();
        fs::hard_link(dir.join("a"), dir.join("sub/a-again")).unwrap();
        std::os::unix::fs::symlink("a", dir.join("link")).unwrap();
        // a, sub, sub/b and link: the hard link is a, and a symlink has no file size here.
        assert_eq!(tree_usage(&dir).unwrap(), (8, 4));
        fs::remove_dir_all(&dir).unwrap();
    }
}
