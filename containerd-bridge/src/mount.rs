//! Mount lists as containerd hands them to a shim, mounted onto a rootfs: the code lives in the
//! hezi-rootfs-mounts crate, which the shim uses without this crate's registry client and
//! decompressors; here its errors become the bridge's.

use std::path::Path;

use crate::error::{Error, Result};

pub use hezi_rootfs_mounts::Mount;

impl From<hezi_rootfs_mounts::Error> for Error {
    fn from(e: hezi_rootfs_mounts::Error) -> Error {
        Error::io(e.context, e.source)
    }
}

/// Mount `mounts`, in order, onto `target` (containerd's `mount.All`).
pub fn mount_rootfs(mounts: &[Mount], target: &Path) -> Result<()> {
    Ok(hezi_rootfs_mounts::mount_rootfs(mounts, target)?)
}

/// Unmount everything mounted on `target`.
pub fn unmount_rootfs(target: &Path) -> Result<()> {
    Ok(hezi_rootfs_mounts::unmount_rootfs(target)?)
}
