//! cgroupfs access: every read and write names its file (and value) in the error, and a
//! [`CgDir`] knows how to make and remove one container's directory in one hierarchy.

use std::io::Write;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;

use super::{CgroupError, Placement, Result};

/// How long `destroy` waits for dying processes to leave a cgroup.
const RMDIR_TIMEOUT: Duration = Duration::from_secs(5);

pub(crate) fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| CgroupError::io("read", path, &e))
}

/// Like [`read`], but a missing file is `None`.
pub(crate) fn read_opt(path: &Path) -> Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        // ENODEV: the file of a cgroup removed after the open (kernfs); gone as well.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ENODEV) => Ok(None),
        Err(e) => Err(CgroupError::io("read", path, &e)),
    }
}

/// Write `value` in one write(2), as cgroupfs wants. The file must exist: cgroupfs files are
/// never created, and a missing one means the controller is not there. (O_TRUNC, as runc opens
/// them, is a no-op on cgroupfs and keeps plain-file test doubles exact.)
pub(crate) fn write(path: &Path, value: &str) -> Result<()> {
    let op = || format!("write {value} to");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)
        .map_err(|e| CgroupError::io(op(), path, &e))?;
    f.write_all(value.as_bytes())
        .map_err(|e| CgroupError::io(op(), path, &e))
}

/// A single number; `max` reads as `u64::MAX`.
pub(crate) fn parse_u64(path: &Path, s: &str) -> Result<u64> {
    let s = s.trim();
    if s == "max" {
        return Ok(u64::MAX);
    }
    s.parse().map_err(|_| CgroupError::Parse {
        path: path.to_path_buf(),
        message: format!("{s:?} is not a number"),
    })
}

pub(crate) fn read_u64(path: &Path) -> Result<u64> {
    parse_u64(path, &read(path)?)
}

/// `read_u64`, with 0 for a file the kernel does not offer.
pub(crate) fn read_u64_or_zero(path: &Path) -> Result<u64> {
    read_opt(path)?.map_or(Ok(0), |s| parse_u64(path, &s))
}

/// The pids listed in a cgroup.procs; a missing file (cgroup removed) lists none.
pub(crate) fn read_procs(path: &Path) -> Result<Vec<i32>> {
    let text = match std::fs::read_to_string(path) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        // A cgroup removed while we read it (systemd tearing down a scope whose last process
        // just died, during `delete -f`) answers ENODEV: it holds no processes any more.
        Err(e) if e.raw_os_error() == Some(libc::ENODEV) => return Ok(Vec::new()),
        Err(e) => return Err(CgroupError::io("read", path, &e)),
    };
    text.lines()
        .map(|l| {
            l.trim().parse().map_err(|_| CgroupError::Parse {
                path: path.to_path_buf(),
                message: format!("{l:?} is not a pid"),
            })
        })
        .collect()
}

/// One container's cgroup directory in one hierarchy.
#[derive(Debug, Clone)]
pub(crate) struct CgDir {
    pub mount: PathBuf,
    /// Full path.
    pub path: PathBuf,
    /// Components below the mount, outermost first.
    parts: Vec<PathBuf>,
    /// How many leading parts existed before hezi: never removed.
    existed: usize,
}

impl CgDir {
    pub fn new(mount: &Path, placement: &Placement) -> CgDir {
        let parts: Vec<PathBuf> = placement
            .dir
            .components()
            .filter_map(|c| match c {
                Component::Normal(n) => Some(PathBuf::from(n)),
                _ => None,
            })
            .collect();
        let path = parts.iter().fold(mount.to_path_buf(), |p, c| p.join(c));
        CgDir {
            mount: mount.to_path_buf(),
            path,
            parts,
            existed: placement.existed,
        }
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    pub fn exists(&self) -> bool {
        self.path.is_dir()
    }

    /// The directories from the mount (included) down to the leaf (included).
    pub fn levels(&self) -> Vec<PathBuf> {
        let mut out = vec![self.mount.clone()];
        for p in &self.parts {
            let next = out[out.len() - 1].join(p);
            out.push(next);
        }
        out
    }

    /// mkdir every missing level, calling `each(dir, parent)` for every level below the mount
    /// (existing or new, outermost first). A parent shared with other containers (the default
    /// `/hezi`) is empty between our mkdir of it and our mkdir of the leaf, and a concurrent
    /// delete may remove it then: a mkdir below it fails with ENOENT, a read of its files in
    /// `each` with ENOENT or ENODEV (kernfs, for a removed cgroup). Both start again from the top.
    pub fn make(&self, mut each: impl FnMut(&Path, &Path) -> Result<()>) -> Result<()> {
        const ATTEMPTS: usize = 10;
        let levels = self.levels();
        let mut attempts = 0;
        'retry: loop {
            attempts += 1;
            let again = attempts < ATTEMPTS;
            for w in levels.windows(2) {
                let (parent, dir) = (&w[0], &w[1]);
                match std::fs::create_dir(dir) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                    Err(e) if e.raw_os_error() == Some(libc::ENOENT) && again => continue 'retry,
                    Err(e) => return Err(CgroupError::io("mkdir", dir, &e)),
                }
                match each(dir, parent) {
                    Ok(()) => {}
                    Err(e) if matches!(e.errno(), Some(Errno::ENOENT | Errno::ENODEV)) && again => continue 'retry,
                    Err(e) => return Err(e),
                }
            }
            return Ok(());
        }
    }

    /// Remove the leaf (and any cgroups the container made inside it), then the empty parents
    /// hezi made. Gone already is fine; a parent still in use by others stays.
    pub fn remove(&self) -> Result<()> {
        if self.parts.is_empty() {
            return Ok(());
        }
        remove_tree(&self.path)?;
        let levels = self.levels();
        // levels[i] has i components; those with i <= existed were there before us.
        let mut i = levels.len() - 2;
        while i > self.existed && i > 0 {
            match rmdir(levels[i].as_path()) {
                Ok(()) | Err(Errno::ENOENT) => {}
                // Another container still lives below it.
                Err(Errno::EBUSY | Errno::ENOTEMPTY) => break,
                Err(e) => {
                    return Err(CgroupError::Io {
                        op: "rmdir".into(),
                        path: levels[i].clone(),
                        errno: e,
                    })
                }
            }
            i -= 1;
        }
        Ok(())
    }

    /// Every pid in the cgroup and the cgroups below it.
    pub fn pids_recursive(&self) -> Result<Vec<i32>> {
        let mut out = Vec::new();
        collect_pids(&self.path, &mut out)?;
        Ok(out)
    }
}

fn collect_pids(dir: &Path, out: &mut Vec<i32>) -> Result<()> {
    out.extend(read_procs(&dir.join("cgroup.procs"))?);
    for sub in subdirs(dir)? {
        collect_pids(&sub, out)?;
    }
    Ok(())
}

/// The child cgroups of `dir` (none when `dir` is gone).
fn subdirs(dir: &Path) -> Result<Vec<PathBuf>> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(CgroupError::io("read directory", dir, &e)),
    };
    let mut out = Vec::new();
    for ent in rd {
        let ent = ent.map_err(|e| CgroupError::io("read directory", dir, &e))?;
        if ent.file_type().is_ok_and(|t| t.is_dir()) {
            out.push(ent.path());
        }
    }
    Ok(out)
}

/// rmdir `dir` after its child cgroups, retrying on EBUSY while exiting processes leave.
///
/// The usual cgroup is a leaf and goes at the first rmdir; its directory is listed only when
/// that rmdir fails (EBUSY on cgroupfs, which is also what a cgroup with processes answers).
/// Listing first cost every `delete` an open, two getdents and a close per hierarchy.
fn remove_tree(dir: &Path) -> Result<()> {
    let deadline = Instant::now() + RMDIR_TIMEOUT;
    let mut pause = Duration::from_millis(5);
    let mut listed = false;
    loop {
        match rmdir(dir) {
            Ok(()) | Err(Errno::ENOENT) => return Ok(()),
            Err(Errno::EBUSY | Errno::ENOTEMPTY) if !listed => {
                listed = true;
                for sub in subdirs(dir)? {
                    remove_tree(&sub)?;
                }
            }
            Err(Errno::EBUSY) if Instant::now() < deadline => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(100));
            }
            Err(e) => {
                return Err(CgroupError::Io {
                    op: "rmdir".into(),
                    path: dir.to_path_buf(),
                    errno: e,
                })
            }
        }
    }
}

/// rmdir(2), with the errno kept (std maps it to an io::Error kind we would have to undo).
fn rmdir(path: &Path) -> std::result::Result<(), Errno> {
    std::fs::remove_dir(path).map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("hezi-cgfs-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    // A plain directory tree stands in for cgroupfs here: only mkdir/rmdir are exercised.
    #[test]
    fn make_and_remove_only_what_was_made() {
        let root = tmp("mk");
        std::fs::create_dir(root.join("pre")).unwrap();
        let d = CgDir::new(
            &root,
            &Placement {
                dir: "/pre/hezi/c1".into(),
                existed: 1,
            },
        );
        let mut seen = Vec::new();
        d.make(|dir, parent| {
            seen.push((dir.to_path_buf(), parent.to_path_buf()));
            Ok(())
        })
        .unwrap();
        assert!(root.join("pre/hezi/c1").is_dir());
        assert_eq!(seen.len(), 3);
        assert_eq!(seen[0], (root.join("pre"), root.clone()));
        // A sibling keeps /pre/hezi alive.
        std::fs::create_dir(root.join("pre/hezi/c2")).unwrap();
        d.remove().unwrap();
        assert!(!root.join("pre/hezi/c1").exists());
        assert!(root.join("pre/hezi").is_dir());
        std::fs::remove_dir(root.join("pre/hezi/c2")).unwrap();
        d.remove().unwrap();
        assert!(!root.join("pre/hezi").exists());
        assert!(root.join("pre").is_dir(), "a parent that existed before was removed");
        std::fs::remove_dir_all(&root).unwrap();
    }

    /// The default parent (`/hezi`) is shared: a concurrent delete removes it when it looks
    /// empty, which it is between our mkdir of it and our mkdir of the leaf, while `each`
    /// reads its files (cpuset.cpus on v1: ENODEV or ENOENT). make starts again from the top.
    #[test]
    fn a_shared_parent_removed_while_making_is_made_again() {
        use std::sync::atomic::{AtomicBool, Ordering};
        let root = tmp("race");
        let d = CgDir::new(
            &root,
            &Placement {
                dir: "/shared/leaf".into(),
                existed: 0,
            },
        );
        let stop = AtomicBool::new(false);
        std::thread::scope(|s| {
            s.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    let _ = std::fs::remove_dir(root.join("shared"));
                    std::thread::sleep(std::time::Duration::from_micros(20));
                }
            });
            for round in 0..3000 {
                let made = d.make(|dir, _| {
                    // Stands in for reading the level's cpuset files.
                    std::fs::read_dir(dir)
                        .map(drop)
                        .map_err(|e| CgroupError::io("read", dir, &e))
                });
                if let Err(e) = made {
                    stop.store(true, Ordering::Relaxed);
                    panic!("round {round}: {e}");
                }
                std::fs::remove_dir(root.join("shared/leaf")).unwrap();
            }
            stop.store(true, Ordering::Relaxed);
        });
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn parse_numbers() {
        let p = Path::new("/x/pids.max");
        assert_eq!(parse_u64(p, "max\n").unwrap(), u64::MAX);
        assert_eq!(parse_u64(p, "42\n").unwrap(), 42);
        let e = parse_u64(p, "4x").unwrap_err().to_string();
        assert!(e.contains("/x/pids.max"), "{e}");
    }
}
