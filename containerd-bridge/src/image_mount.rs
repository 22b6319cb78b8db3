//! `image mount REF DIR [--rw]` and `image unmount DIR`, as ctr has them: the image's snapshot
//! (unpacked first if need be) mounted on DIR, read-only through a view unless `--rw`, when an
//! active snapshot gives it an upper layer of its own. The snapshot's key is `mount/<DIR>`, so
//! unmount finds what hezi mounted there, and refuses anything else. Unmounting removes the
//! snapshot, and with it whatever was written (containerd keeps it until `unmount --rm`; hezi
//! has no lease to keep it by).

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{Error, IoContext, Result};
use crate::images;
use crate::mount::mount_rootfs;
use crate::snapshot::{chain_ids, Snapshotter};
use crate::store::Store;

const KEY_PREFIX: &str = "mount/";

/// What a mount made.
pub struct Mounted {
    /// The chain id of the image's top layer (what ctr prints).
    pub chain_id: String,
    pub target: PathBuf,
}

fn key(target: &Path) -> String {
    format!("{KEY_PREFIX}{}", target.display())
}

/// The target as an absolute path without symlinks (the key must not depend on how the
/// caller spelled it); it must be a directory.
fn resolve(dir: &Path) -> Result<PathBuf> {
    let abs = fs::canonicalize(dir).ctx(|| format!("mount target {}", dir.display()))?;
    if !abs.is_dir() {
        return Err(Error::Invalid(format!(
            "mount target {} is not a directory",
            dir.display()
        )));
    }
    Ok(abs)
}

/// Mount image `name` of the store's namespace on `dir`. On error nothing is left: no
/// snapshot, no mount.
pub fn mount(store: &Store, name: &str, dir: &Path, rw: bool) -> Result<Mounted> {
    let target = resolve(dir)?;
    let mut entries = fs::read_dir(&target).ctx(|| format!("read {}", target.display()))?;
    if entries.next().is_some() {
        return Err(Error::Invalid(format!(
            "mount target {} is not empty: refusing to hide what is there",
            dir.display()
        )));
    }
    let _lock = store.lock()?;
    let rec = store.image(name)?;
    let snap = Snapshotter::new(store)?;
    let key = key(&target);
    if snap.find(true, &key)?.is_some() {
        return Err(Error::Invalid(format!(
            "{} has an image mounted already (hezi image unmount {})",
            target.display(),
            target.display()
        )));
    }
    let top = images::unpack(store, &snap, &rec)?;
    let cfg = store.config(&rec.config)?;
    let chain_id = chain_ids(&cfg.rootfs.diff_ids)
        .last()
        .map(|d| d.to_string())
        .unwrap_or_default();
    let mounts = if rw {
        snap.prepare(&key, top)?
    } else {
        snap.view(&key, top)?
    };
    if let Err(e) = mount_rootfs(&mounts, &target) {
        let _ = snap.remove(&key);
        return Err(e);
    }
    Ok(Mounted { chain_id, target })
}

/// Unmount what `image mount` put on `dir` and remove its snapshot. A directory hezi did not
/// mount an image on is refused, and nothing is unmounted.
pub fn unmount(store: &Store, dir: &Path) -> Result<PathBuf> {
    let target = resolve(dir)?;
    let _lock = store.lock()?;
    let snap = Snapshotter::new(store)?;
    let key = key(&target);
    if snap.list()?.iter().all(|s| !(s.meta.active && s.meta.key == key)) {
        return Err(Error::Invalid(format!(
            "{} is not an image mount of hezi's (hezi image mount makes them)",
            dir.display()
        )));
    }
    if is_mount_point(&target)? {
        unmount_once(&target)?;
    }
    snap.remove(&key)?;
    Ok(target)
}

/// The targets of image mounts whose mount is gone (unmounted by hand, or lost in a reboot):
/// their snapshots are prune's to remove. (id, target)
pub fn stale(snap: &Snapshotter) -> Result<Vec<(u64, String)>> {
    let mut out = Vec::new();
    for s in snap.list()? {
        if let (true, Some(t)) = (s.meta.active, s.meta.key.strip_prefix(KEY_PREFIX)) {
            if !is_mount_point(Path::new(t))? {
                out.push((s.id, t.to_string()));
            }
        }
    }
    Ok(out)
}

/// Whether `path` (absolute, canonical) is a mount point, from /proc/self/mountinfo (a bind
/// of a directory onto itself has the same device, so st_dev comparisons cannot tell).
fn is_mount_point(path: &Path) -> Result<bool> {
    let info = fs::read_to_string("/proc/self/mountinfo").ctx(|| "read /proc/self/mountinfo")?;
    let want = path.display().to_string();
    Ok(info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .any(|mp| unescape(mp) == want))
}

/// mountinfo escapes space, tab, newline and backslash as octal (`\040`).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Unmount the top mount on `target` only (not what may be under it), detaching it if busy.
fn unmount_once(target: &Path) -> Result<()> {
    let c = crate::fsutil::path_cstring(target).ctx(|| format!("unmount {}", target.display()))?;
    // SAFETY: c is a NUL-terminated path that outlives the call.
    if unsafe { libc::umount2(c.as_ptr(), libc::UMOUNT_NOFOLLOW) } == 0 {
        return Ok(());
    }
    let e = std::io::Error::last_os_error();
    if e.raw_os_error() != Some(libc::EBUSY) {
        return Err(Error::io(format!("unmount {}", target.display()), e));
    }
    // SAFETY: as above; MNT_DETACH lazily detaches a mount still in use.
    if unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH | libc::UMOUNT_NOFOLLOW) } == 0 {
        return Ok(());
    }
    Err(Error::io(
        format!("unmount {}", target.display()),
        std::io::Error::last_os_error(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_paths_are_unescaped() {
        assert_eq!(unescape(r"/tmp/a\040b"), "/tmp/a b");
        assert_eq!(unescape(r"/x\134y"), r"/x\y");
        assert_eq!(unescape("/plain"), "/plain");
        assert_eq!(unescape(r"/end\04"), r"/end\04");
    }
}
