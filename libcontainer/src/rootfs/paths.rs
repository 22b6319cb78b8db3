//! maskedPaths, readonlyPaths and a read-only root, applied after the root switch.
//!
//! Targets are opened with O_NOFOLLOW and checked by fstat before anything is mounted over them,
//! and the /dev/null used for masking is checked to really be the null device: a container image
//! cannot swap either for a symlink to a file the mount would then expose or shadow
//! (CVE-2025-31133, CVE-2025-52565).

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::mount::{mount, MsFlags};
use nix::sys::stat::{fstat, major, minor};

use super::mounts::remount_bind;
use super::resolve::{fd_path, relative, Root};
use crate::error::{Error, Result, SysContext};

fn open_nofollow(root: &Root, p: &Path) -> Result<Option<OwnedFd>> {
    match root.open_path(relative(p), OFlag::O_NOFOLLOW) {
        Ok(fd) => Ok(Some(fd)),
        Err(Errno::ENOENT) => Ok(None),
        Err(e) => Err(Error::sys(format!("open {}", p.display()), e)),
    }
}

fn is_dir(fd: &OwnedFd) -> nix::Result<bool> {
    Ok(fstat(fd.as_fd())?.st_mode & libc::S_IFMT == libc::S_IFDIR)
}

/// An O_PATH fd of the container's /dev/null, verified to be the 1:3 character device.
fn dev_null(root: &Root) -> Result<OwnedFd> {
    let fd = root
        .open_path(Path::new("dev/null"), OFlag::O_NOFOLLOW)
        .map_err(|e| Error::sys("open /dev/null for masking", e))?;
    let st = fstat(fd.as_fd()).ctx(|| "stat /dev/null".into())?;
    let rdev = st.st_rdev;
    if st.st_mode & libc::S_IFMT != libc::S_IFCHR || major(rdev) != 1 || minor(rdev) != 3 {
        return Err(Error::Other(
            "/dev/null in the container is not the null device; refusing to mask with it".into(),
        ));
    }
    Ok(fd)
}

/// Hide each path: /dev/null over files, and an empty read-only tmpfs over directories. The
/// directories share one tmpfs, mounted over the first and bound onto the others, as runc does:
/// one superblock instead of one per directory (a default spec masks nine of them).
pub fn mask(root: &Root, paths: &[String]) -> Result<()> {
    if paths.is_empty() {
        return Ok(());
    }
    let null = dev_null(root)?;
    let mut shared: Option<OwnedFd> = None;
    for p in paths {
        let p = Path::new(p);
        let Some(target) = open_nofollow(root, p)? else {
            continue;
        };
        let what = || format!("mask {}", p.display());
        if !is_dir(&target).ctx(what)? {
            mount_bind(&null, &target).ctx(what)?;
            continue;
        }
        // A bind copies the source mount's read-only flag. Should it fail, the directory gets
        // a tmpfs of its own.
        if shared.as_ref().is_some_and(|tmpfs| mount_bind(tmpfs, &target).is_ok()) {
            continue;
        }
        mount(
            Some("tmpfs"),
            &fd_path(target.as_fd()),
            Some("tmpfs"),
            MsFlags::MS_RDONLY,
            Some("size=0k"),
        )
        .ctx(what)?;
        if shared.is_none() {
            // Looked up again: `target` names the directory under the new mount.
            shared = Some(root.open_path(relative(p), OFlag::O_NOFOLLOW).ctx(what)?);
        }
    }
    Ok(())
}

fn mount_bind(src: &OwnedFd, dst: &OwnedFd) -> nix::Result<()> {
    mount(
        Some(&fd_path(src.as_fd())),
        &fd_path(dst.as_fd()),
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
}

/// Make each path a read-only recursive bind of itself.
pub fn readonly(root: &Root, paths: &[String]) -> Result<()> {
    for p in paths {
        let p = Path::new(p);
        let Some(target) = open_nofollow(root, p)? else {
            continue;
        };
        let what = || format!("make {} read-only", p.display());
        let t = fd_path(target.as_fd());
        mount(
            Some(&t),
            &t,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .ctx(what)?;
        remount_bind(root, relative(p), MsFlags::MS_RDONLY | MsFlags::MS_REC).ctx(what)?;
    }
    Ok(())
}

/// `root.readonly`: remount / read-only, keeping its other flags.
pub fn readonly_root() -> Result<()> {
    let root = Root::open(Path::new("/"))?;
    remount_bind(&root, Path::new(""), MsFlags::MS_RDONLY).ctx(|| "remount / read-only".into())
}
