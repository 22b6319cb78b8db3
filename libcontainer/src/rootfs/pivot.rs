//! Switching the container's root: pivot_root(2) by default, MS_MOVE + chroot with --no-pivot
//! (for roots on ramfs, where pivot_root is refused), chroot alone in the host's mount namespace.

use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::Mode;
use nix::unistd::{chdir, fchdir, pivot_root};

use crate::error::{Result, SysContext};

/// pivot_root(".", ".") stacks the old root on top of the new one; detaching it afterwards
/// leaves only the new root, with no directory needed for the old one.
pub fn pivot(rootfs: &Path) -> Result<()> {
    let flags = OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC;
    let old = nix::fcntl::open("/", flags, Mode::empty()).ctx(|| "open /".into())?;
    let new = nix::fcntl::open(rootfs, flags, Mode::empty()).ctx(|| format!("open {}", rootfs.display()))?;
    fchdir(&new).ctx(|| format!("chdir {}", rootfs.display()))?;
    pivot_root(".", ".").ctx(|| format!("pivot_root {}", rootfs.display()))?;
    fchdir(&old).ctx(|| "chdir to the old root".into())?;
    // Make the old root a slave so unmounting it does not propagate to the host.
    mount(
        None::<&str>,
        ".",
        None::<&str>,
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        None::<&str>,
    )
    .ctx(|| "make the old root rslave".into())?;
    umount2(".", MntFlags::MNT_DETACH).ctx(|| "detach the old root".into())?;
    chdir("/").ctx(|| "chdir /".into())
}

/// --no-pivot: move the rootfs onto / and chroot into it. The host's mounts stay in the mount
/// namespace, only out of sight; the host's procfs and sysfs go first (see `hide_host_procfs`).
pub fn move_root(rootfs: &Path) -> Result<()> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ctx(|| "read /proc/self/mountinfo".into())?;
    for point in host_procfs_mounts(&info, rootfs) {
        hide(&point)?;
    }
    chdir(rootfs).ctx(|| format!("chdir {}", rootfs.display()))?;
    mount(Some(rootfs), "/", None::<&str>, MsFlags::MS_MOVE, None::<&str>)
        .ctx(|| format!("move {} to /", rootfs.display()))?;
    nix::unistd::chroot(".").ctx(|| format!("chroot {}", rootfs.display()))?;
    chdir("/").ctx(|| "chdir /".into())
}

/// Whole (root "/") procfs and sysfs mounts outside the rootfs. The kernel lets a user namespace
/// mount a fresh procfs or sysfs only where a fully visible one exists in its mount namespace;
/// after a chroot the host's are still there, and would let the container mount instances
/// without the masks. runc removes them; so does hezi.
fn host_procfs_mounts(mountinfo: &str, rootfs: &Path) -> Vec<PathBuf> {
    mountinfo
        .lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split(' ').collect();
            let sep = f.iter().position(|x| *x == "-")?;
            let (root, point, fstype) = (f.get(3)?, crate::procfs::unescape(f.get(4)?), f.get(sep + 1)?);
            let point = PathBuf::from(point);
            (*root == "/" && (*fstype == "proc" || *fstype == "sysfs") && !point.starts_with(rootfs)).then_some(point)
        })
        .collect()
}

/// Detach `point` without the host seeing it (slave first); where that is not allowed (locked in
/// a user namespace), cover it with an empty tmpfs instead.
fn hide(point: &Path) -> Result<()> {
    match mount(
        None::<&str>,
        point,
        None::<&str>,
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        None::<&str>,
    ) {
        // Already gone with a parent detached before it.
        Err(Errno::ENOENT) => return Ok(()),
        r => r.ctx(|| format!("make {} rslave", point.display()))?,
    }
    match umount2(point, MntFlags::MNT_DETACH) {
        Ok(()) => Ok(()),
        Err(Errno::EINVAL | Errno::EPERM) => mount(Some("tmpfs"), point, Some("tmpfs"), MsFlags::empty(), None::<&str>)
            .ctx(|| format!("cover {}", point.display())),
        Err(e) => Err(e).ctx(|| format!("detach {}", point.display())),
    }
}

/// The root switch in the host's mount namespace: for this process only, as runc does there.
pub fn chroot(rootfs: &Path) -> Result<()> {
    chdir(rootfs).ctx(|| format!("chdir {}", rootfs.display()))?;
    nix::unistd::chroot(".").ctx(|| format!("chroot {}", rootfs.display()))?;
    chdir("/").ctx(|| "chdir /".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_whole_host_procfs_and_sysfs_outside_the_rootfs() {
        let info = "\
22 27 0:21 / /proc rw,relatime - proc proc rw
23 27 0:22 / /sys rw,relatime - sysfs sysfs rw
24 23 0:6 / /sys/kernel/security rw - securityfs securityfs rw
25 27 0:21 /sys /srv/procsys rw - proc proc rw
90 27 0:50 / /b/rootfs/proc rw - proc proc rw
91 27 0:51 / /b/rootfs\\040x/sys rw - sysfs sysfs rw
";
        assert_eq!(
            host_procfs_mounts(info, Path::new("/b/rootfs")),
            [
                PathBuf::from("/proc"),
                PathBuf::from("/sys"),
                PathBuf::from("/b/rootfs x/sys")
            ]
        );
    }
}
