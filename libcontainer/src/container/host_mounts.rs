//! A container without a mount namespace of its own (none in linux.namespaces) makes its mounts
//! in the host's, as runc allows: the rootfs bound onto itself, the spec's mounts below it. runc
//! leaves them there when the container is gone; hezi detaches them at `delete` (and when
//! `create` fails). Which ones are ours: those stacked on the rootfs path above the ones that
//! were there before `create` (an image's overlay mount, say), counted then.

use std::path::Path;

use nix::errno::Errno;
use nix::mount::{umount2, MntFlags};

use crate::error::{Error, Result, SysContext};

/// How many mounts are stacked on `rootfs` (its mount point in /proc/self/mountinfo).
pub fn count_at(rootfs: &Path) -> Result<usize> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ctx(|| "read /proc/self/mountinfo".into())?;
    Ok(count_in(&info, rootfs))
}

fn count_in(mountinfo: &str, rootfs: &Path) -> usize {
    mountinfo
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|point| Path::new(&crate::procfs::unescape(point)) == rootfs)
        .count()
}

/// Detach the mounts stacked on `rootfs` above the `before` that were there at create, with
/// everything mounted below them.
pub fn detach_above(rootfs: &Path, before: usize) -> Result<()> {
    // Bounded: a mount that cannot be detached must not loop for ever.
    for _ in 0..16 {
        if count_at(rootfs)? <= before {
            return Ok(());
        }
        match umount2(rootfs, MntFlags::MNT_DETACH) {
            Ok(()) | Err(Errno::EINVAL) => {}
            Err(e) => {
                return Err(Error::sys(
                    format!("detach the container's mounts on {}", rootfs.display()),
                    e,
                ))
            }
        }
    }
    Err(Error::Other(format!(
        "mounts on {} are still there after detaching the container's",
        rootfs.display()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_stacked_mounts_on_the_path_only() {
        let info = "\
27 1 254:0 / / rw - ext4 /dev/vda rw
40 27 0:5 / /b/root\\040fs rw - overlay overlay rw
41 40 254:0 /b/root\\040fs /b/root\\040fs rw - ext4 /dev/vda rw
42 41 0:6 / /b/root\\040fs/proc rw - proc proc rw
";
        assert_eq!(count_in(info, Path::new("/b/root fs")), 2);
        assert_eq!(count_in(info, Path::new("/b/root")), 0);
    }
}
