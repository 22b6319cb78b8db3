//! The spec's `mounts`, in order. Destinations resolve inside the rootfs (see `resolve`); every
//! mount(2) targets `/proc/self/fd/N` of the resolved destination.

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::mount::{mount, MsFlags};
use nix::sys::stat::Mode;
use oci_spec::runtime::Mount;

use super::cgroupfs::CgroupMounts;
use super::options::{self, Options};
use super::resolve::{fd_path, relative, Kind, Root};
use crate::error::{Error, Result, SysContext};

/// Mount every entry of `mounts` under `root`. Relative bind sources are relative to `bundle`.
/// `label`: linux.mountLabel, given to the filesystems that take one (see `lsm::labels_mount`).
pub fn mount_all(
    root: &Root,
    bundle: &Path,
    mounts: &[Mount],
    cgroups: Option<&CgroupMounts>,
    label: Option<&str>,
) -> Result<()> {
    for m in mounts {
        mount_one(root, bundle, m, cgroups, label)?;
    }
    Ok(())
}

fn mount_one(root: &Root, bundle: &Path, m: &Mount, cgroups: Option<&CgroupMounts>, label: Option<&str>) -> Result<()> {
    let typ = m.typ().as_deref().unwrap_or("");
    let opts = options::parse(m.options().as_deref().unwrap_or(&[]))
        .map_err(|e| Error::InvalidSpec(format!("mount {}: {e}", m.destination().display())))?;
    let dest = relative(m.destination());
    if opts.copy_up && typ != "tmpfs" {
        return Err(Error::InvalidSpec(format!(
            "mount {}: tmpcopyup is only for tmpfs, not {typ:?}",
            m.destination().display()
        )));
    }
    if typ == "cgroup" || typ == "cgroup2" {
        let cg = cgroups.ok_or_else(|| Error::Other("cgroup mount requested without a cgroup plan".into()))?;
        return cg.mount(root, dest, &opts);
    }
    let what = |verb: &str| {
        format!(
            "{verb} {} on {}",
            m.source().as_deref().unwrap_or(Path::new(typ)).display(),
            m.destination().display()
        )
    };
    if opts.bind || typ == "bind" {
        let source = bind_source(bundle, m)?;
        let src = nix::fcntl::open(&source, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty())
            .map_err(|e| Error::sys_path("open bind source", &source, e))?;
        let st = nix::sys::stat::fstat(src.as_fd()).ctx(|| format!("stat {}", source.display()))?;
        let kind = if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
            Kind::Dir
        } else {
            Kind::File
        };
        let dst = root.ensure(dest, kind)?;
        bind(&src, &dst, opts.recursive).ctx(|| what("bind"))?;
        let extra = opts.bind_remount_flags();
        if !extra.is_empty() {
            remount_bind(root, dest, extra).ctx(|| what("remount"))?;
        }
    } else {
        let dst = root.ensure(dest, Kind::Dir)?;
        let source = m.source().as_deref().unwrap_or(Path::new(typ));
        let label = label.filter(|_| crate::lsm::labels_mount(typ));
        let data = crate::lsm::mount_data(&opts.data, label);
        let data = (!data.is_empty()).then_some(data.as_str());
        let mut flags = opts.flags - MsFlags::MS_REMOUNT;
        // tmpcopyup: open the directory before the tmpfs covers it; a read-only tmpfs is made
        // read-only after the copy.
        let covered = if opts.copy_up {
            let fd = nix::fcntl::openat(
                dst.as_fd(),
                ".",
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| Error::sys(format!("tmpcopyup: open {}", m.destination().display()), e))?;
            Some(fd)
        } else {
            None
        };
        let read_only = covered.is_some() && flags.contains(MsFlags::MS_RDONLY);
        if read_only {
            flags -= MsFlags::MS_RDONLY;
        }
        match mount(Some(source), &fd_path(dst.as_fd()), Some(typ), flags, data) {
            Ok(()) => {}
            // sysfs cannot be mounted from a user namespace that does not own the network
            // namespace; like runc, fall back to a recursive bind of the host's /sys.
            Err(Errno::EPERM) if typ == "sysfs" => {
                let src = nix::fcntl::open("/sys", OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty())
                    .ctx(|| "open /sys".into())?;
                bind(&src, &dst, true).ctx(|| what("bind"))?;
                remount_bind(root, dest, flags | MsFlags::MS_RDONLY).ctx(|| what("remount"))?;
            }
            Err(e) => return Err(Error::sys(format!("{} (type {typ})", what("mount")), e)),
        }
        if let Some(covered) = covered {
            let fresh = root.dir(dest)?;
            super::copyup::copy_tree(covered.as_fd(), fresh.as_fd(), m.destination())?;
            if read_only {
                let fd = root.open_path(dest, OFlag::empty()).ctx(|| what("open"))?;
                let remount = flags | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
                mount(None::<&str>, &fd_path(fd.as_fd()), None::<&str>, remount, data).ctx(|| what("remount"))?;
            }
        }
    }
    apply_propagation(root, dest, &opts).ctx(|| what("set propagation of"))
}

fn bind_source(bundle: &Path, m: &Mount) -> Result<PathBuf> {
    let src = m
        .source()
        .as_deref()
        .ok_or_else(|| Error::InvalidSpec(format!("bind mount {} has no source", m.destination().display())))?;
    Ok(if src.is_absolute() {
        src.to_path_buf()
    } else {
        bundle.join(src)
    })
}

/// Bind `src` onto `dst`, both held as fds.
pub fn bind(src: &OwnedFd, dst: &OwnedFd, recursive: bool) -> nix::Result<()> {
    let mut flags = MsFlags::MS_BIND;
    if recursive {
        flags |= MsFlags::MS_REC;
    }
    mount(
        Some(&fd_path(src.as_fd())),
        &fd_path(dst.as_fd()),
        None::<&str>,
        flags,
        None::<&str>,
    )
}

/// Change the flags of the bind mount now at `dest` (looked up again, so the fd names the new
/// mount rather than the directory under it).
pub fn remount_bind(root: &Root, dest: &Path, flags: MsFlags) -> nix::Result<()> {
    let fd = root.open_path(dest, OFlag::empty())?;
    let target = fd_path(fd.as_fd());
    let base = MsFlags::MS_BIND | MsFlags::MS_REMOUNT;
    match mount(None::<&str>, &target, None::<&str>, base | flags, None::<&str>) {
        // In a user namespace the flags the mount already had are locked and must be kept.
        Err(Errno::EPERM) => {
            let locked = locked_flags(fd.as_fd())?;
            mount(None::<&str>, &target, None::<&str>, base | flags | locked, None::<&str>)
        }
        r => r,
    }
}

fn locked_flags(fd: std::os::fd::BorrowedFd<'_>) -> nix::Result<MsFlags> {
    use nix::sys::statvfs::{fstatvfs, FsFlags};
    let st = fstatvfs(fd)?;
    let f = st.flags();
    let mut out = MsFlags::empty();
    for (fs, ms) in [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_RDONLY, MsFlags::MS_RDONLY),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        if f.contains(fs) {
            out |= ms;
        }
    }
    Ok(out)
}

fn apply_propagation(root: &Root, dest: &Path, opts: &Options) -> nix::Result<()> {
    if opts.propagation.is_empty() {
        return Ok(());
    }
    let fd = root.open_path(dest, OFlag::empty())?;
    mount(
        None::<&str>,
        &fd_path(fd.as_fd()),
        None::<&str>,
        opts.propagation,
        None::<&str>,
    )
}
