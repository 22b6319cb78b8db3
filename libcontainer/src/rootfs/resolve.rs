//! Path resolution confined to the container's root filesystem.
//!
//! Every lookup goes through openat2(RESOLVE_IN_ROOT): symlinks and `..` are resolved as if the
//! rootfs were `/`, so a hostile image cannot point a mount destination at the host. The result is
//! an O_PATH fd; mounts then target `/proc/self/fd/N`, so a symlink swapped in after the lookup
//! cannot redirect them.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

use crate::error::{Error, Result};
use crate::sys;

const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
const RESOLVE_IN_ROOT: u64 = 0x10;

/// A directory fd of the rootfs, and its host path for messages.
pub struct Root {
    fd: OwnedFd,
    path: PathBuf,
}

/// What kind of mount point to create when the destination is missing.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    Dir,
    File,
}

fn cstr(p: &Path) -> Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| Error::InvalidArgument(format!("path {p:?} contains NUL")))
}

/// `/proc/self/fd/N`: a path naming exactly the object the fd holds.
pub fn fd_path(fd: BorrowedFd<'_>) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

impl Root {
    pub fn open(path: &Path) -> Result<Root> {
        let fd = nix::fcntl::open(
            path,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| Error::sys_path("open rootfs", path, e))?;
        Ok(Root {
            fd,
            path: path.to_path_buf(),
        })
    }

    /// Host-side path of an in-container path, for messages only (never for access).
    pub fn display(&self, inner: &Path) -> String {
        format!("{}{}", self.path.display(), Path::new("/").join(inner).display())
    }

    /// Open `inner` (relative to the rootfs, any number of `..` and symlinks) as an O_PATH fd.
    pub fn open_path(&self, inner: &Path, extra: OFlag) -> std::result::Result<OwnedFd, Errno> {
        // openat2 rejects an empty path; "." names the root itself.
        let inner = if inner.as_os_str().is_empty() {
            Path::new(".")
        } else {
            inner
        };
        let c = cstr(inner).map_err(|_| Errno::EINVAL)?;
        sys::openat2(
            self.fd.as_fd(),
            &c,
            (OFlag::O_PATH | extra).bits(),
            0,
            RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
        )
    }

    /// Resolve (creating if needed) the directory `inner` and open it for use as a dirfd
    /// (mkdirat, mknodat, symlinkat need a real directory fd, not O_PATH).
    pub fn dir(&self, inner: &Path) -> Result<OwnedFd> {
        let fd = self.ensure(inner, Kind::Dir)?;
        nix::fcntl::openat(
            fd.as_fd(),
            ".",
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| Error::sys(format!("open {}", self.display(inner)), e))
    }

    /// Resolve `inner` and create it (and missing parents) if it does not exist: a directory or an
    /// empty file. Returns an O_PATH fd of the result. Each step resolves in the root again, so a
    /// symlink among the parents still lands inside.
    pub fn ensure(&self, inner: &Path, kind: Kind) -> Result<OwnedFd> {
        self.ensure_at_depth(inner, kind, 0)
    }

    fn ensure_at_depth(&self, inner: &Path, kind: Kind, depth: u32) -> Result<OwnedFd> {
        // As many dangling symlinks as the kernel would follow (MAXSYMLINKS) before ELOOP.
        if depth > 40 {
            return Err(Error::sys(format!("resolve {}", self.display(inner)), Errno::ELOOP));
        }
        match self.open_path(inner, OFlag::empty()) {
            Ok(fd) => return Ok(fd),
            Err(Errno::ENOENT) => {}
            Err(e) => return Err(Error::sys(format!("resolve {}", self.display(inner)), e)),
        }
        let parent = inner.parent().unwrap_or(Path::new(""));
        let name = match inner.components().next_back() {
            Some(Component::Normal(n)) => n,
            _ => return Err(Error::InvalidArgument(format!("cannot create {}", self.display(inner)))),
        };
        let dir = self.dir(parent)?;
        let created = match kind {
            Kind::Dir => nix::sys::stat::mkdirat(dir.as_fd(), name, Mode::from_bits_truncate(0o755)),
            Kind::File => nix::fcntl::openat(
                dir.as_fd(),
                name,
                OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW,
                Mode::from_bits_truncate(0o644),
            )
            .map(drop),
        };
        match created {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(Error::sys(format!("create {}", self.display(inner)), e)),
        }
        match self.open_path(inner, OFlag::empty()) {
            // The name exists but does not resolve: a dangling symlink. Create its target,
            // itself resolved inside the root.
            Err(Errno::ENOENT) => {
                let target = nix::fcntl::readlinkat(dir.as_fd(), name)
                    .map_err(|e| Error::sys(format!("readlink {}", self.display(inner)), e))?;
                let target = Path::new(&target);
                let next = if target.is_absolute() {
                    relative(target).to_path_buf()
                } else {
                    parent.join(target)
                };
                self.ensure_at_depth(&next, kind, depth + 1)
            }
            r => r.map_err(|e| Error::sys(format!("resolve {}", self.display(inner)), e)),
        }
    }
}

/// The rootfs-relative form of an absolute in-container path (`/a/b` → `a/b`).
pub fn relative(p: &Path) -> &Path {
    p.strip_prefix("/").unwrap_or(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("hezi-resolve-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn symlink_and_dotdot_stay_inside() {
        let base = tmp("escape");
        let root = base.join("root");
        let outside = base.join("outside");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        symlink(&outside, root.join("evil")).unwrap();
        let r = Root::open(&root).unwrap();
        r.ensure(Path::new("evil/sub"), Kind::Dir).unwrap();
        r.ensure(Path::new("../../x/y"), Kind::File).unwrap();
        assert!(!outside.join("sub").exists(), "created outside the root");
        // The absolute symlink was followed inside the root.
        assert!(root.join(outside.strip_prefix("/").unwrap()).join("sub").is_dir());
        assert!(root.join("x/y").is_file());
        std::fs::remove_dir_all(&base).unwrap();
    }
}
