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

/// What the mounts need besides the list: `bundle` for relative bind sources, the cgroup plan
/// for cgroup mounts, linux.mountLabel for the filesystems that take one (see
/// `lsm::labels_mount`), and the runtime's help with bind sources and idmapped mounts (None
/// outside a user namespace, where the init has the runtime's own reach).
pub struct Context<'a> {
    pub bundle: &'a Path,
    pub cgroups: Option<&'a CgroupMounts>,
    pub label: Option<&'a str>,
    pub runtime: Option<&'a dyn super::source::Runtime>,
}

/// Mount every entry of `mounts` under `root`, in order.
pub fn mount_all(root: &Root, mounts: &[Mount], cx: &Context<'_>) -> Result<()> {
    for m in mounts {
        mount_one(root, m, cx)?;
    }
    Ok(())
}

/// A /dev tmpfs asked to be read-only is mounted writable and made read-only by `finish`, once
/// devpts, shm and the device nodes are in it (runc's order).
pub fn is_read_only_dev(m: &Mount) -> bool {
    m.destination() == Path::new("/dev")
        && m.typ().as_deref() == Some("tmpfs")
        && options::parse(m.options().as_deref().unwrap_or(&[])).is_ok_and(|o| o.flags.contains(MsFlags::MS_RDONLY))
}

/// Spec checks that need no filesystem: what hezi cannot do is an error, never ignored.
fn check(m: &Mount, typ: &str, opts: &Options) -> Result<()> {
    let bad = |why: String| {
        Err(Error::InvalidSpec(format!(
            "mount {}: {why}",
            m.destination().display()
        )))
    };
    if opts.copy_up && typ != "tmpfs" {
        return bad(format!("tmpcopyup is only for tmpfs, not {typ:?}"));
    }
    // A bind has no filesystem to hand data to. Filesystem data (`key=value`, such as the
    // `mode=755,size=1k` runtime-tools' mounts test gives every mount) is what runc and crun
    // pass to mount(2) and the kernel drops for a bind: said, and left out. A bare word is a
    // flag hezi does not know (a typo, or a newer option), whose meaning would be lost: refused.
    if (opts.bind || typ == "bind") && !opts.data.is_empty() {
        if let Some(flag) = opts.data.split(',').find(|o| !o.contains('=')) {
            return bad(format!("unknown mount option {flag:?} for a bind mount"));
        }
        tracing::warn!(
            "mount {}: {} ignored: a bind mount takes no filesystem data",
            m.destination().display(),
            opts.data
        );
    }
    if idmapped(m, opts).is_some() && !(opts.bind || typ == "bind") {
        return bad(format!("only bind mounts can be idmapped, not {typ:?}"));
    }
    Ok(())
}

/// Whether the mount is idmapped, and recursively (`ridmap`). Mappings of its own make it
/// idmapped too: config.md asks for `idmap` or `ridmap` beside them only so that older runtimes
/// cannot ignore them, and runc reads them the same way.
fn idmapped(m: &Mount, opts: &Options) -> Option<bool> {
    let has_maps = m.uid_mappings().as_ref().is_some_and(|v| !v.is_empty())
        || m.gid_mappings().as_ref().is_some_and(|v| !v.is_empty());
    opts.idmap.or(has_maps.then_some(false))
}

fn mount_one(root: &Root, m: &Mount, cx: &Context<'_>) -> Result<()> {
    let typ = m.typ().as_deref().unwrap_or("");
    let opts = options::parse(m.options().as_deref().unwrap_or(&[]))
        .map_err(|e| Error::InvalidSpec(format!("mount {}: {e}", m.destination().display())))?;
    let dest = relative(m.destination());
    check(m, typ, &opts)?;
    let (bundle, cgroups, label) = (cx.bundle, cx.cgroups, cx.label);
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
        let idmap = idmapped(m, &opts);
        let src = match (idmap, cx.runtime) {
            (Some(ridmap), Some(rt)) => rt.idmapped(&super::idmap::Request::new(m, &source, opts.recursive, ridmap)?)?,
            (Some(_), None) => {
                return Err(Error::InvalidSpec(format!(
                    "mount {}: an idmapped mount needs the container to have a user namespace",
                    m.destination().display()
                )))
            }
            (None, rt) => match nix::fcntl::open(&source, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty()) {
                Ok(fd) => fd,
                Err(e) => match rt {
                    Some(rt) => rt.open(&source)?,
                    None => return Err(Error::sys_path("open bind source", &source, e)),
                },
            },
        };
        let st = nix::sys::stat::fstat(src.as_fd()).ctx(|| format!("stat {}", source.display()))?;
        let kind = if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
            Kind::Dir
        } else {
            Kind::File
        };
        let dst = root.ensure(dest, kind)?;
        if idmap.is_some() {
            // A detached tree (open_tree), already idmapped: attached, not bound.
            crate::sys::move_mount(src.as_fd(), dst.as_fd()).map_err(|e| Error::sys(what("attach the idmapped mount of"), e))?;
        } else {
            bind(&src, &dst, opts.recursive).ctx(|| what("bind"))?;
        }
        let extra = opts.bind_remount_flags();
        if !extra.is_empty() {
            remount_bind(root, dest, extra).ctx(|| what("remount"))?;
        }
    } else {
        if typ == "proc" || typ == "sysfs" {
            refuse_symlink(root, dest, typ)?;
        }
        let covered_mode = if typ == "tmpfs" { dir_mode(root, dest) } else { None };
        let dst = root.ensure(dest, Kind::Dir)?;
        let source = m.source().as_deref().unwrap_or(Path::new(typ));
        let label = label.filter(|_| crate::lsm::labels_mount(typ));
        let mut data = crate::lsm::mount_data(&opts.data, label);
        // As runc: a tmpfs without mode= keeps the mode of the directory it covers.
        if let Some(mode) = covered_mode.filter(|_| !data.split(',').any(|o| o.starts_with("mode="))) {
            data = if data.is_empty() {
                format!("mode={mode:04o}")
            } else {
                format!("mode={mode:04o},{data}")
            };
        }
        let data = (!data.is_empty()).then_some(data.as_str());
        let mut flags = opts.flags - MsFlags::MS_REMOUNT;
        if is_read_only_dev(m) {
            flags -= MsFlags::MS_RDONLY;
        }
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
    if opts.has_recursive_attrs() {
        let fd = root.open_path(dest, OFlag::empty()).ctx(|| what("open"))?;
        crate::sys::mount_setattr(fd.as_fd(), true, opts.attr_set, opts.attr_clear)
            .ctx(|| what("set recursive attributes of"))?;
    }
    apply_propagation(root, dest, &opts).ctx(|| what("set propagation of"))
}

/// proc and sysfs go on an ordinary directory only: a symlink there (an image's `/proc ->
/// /elsewhere`) is refused, never followed, as runc does.
fn refuse_symlink(root: &Root, dest: &Path, typ: &str) -> Result<()> {
    let fd = match root.open_path(dest, OFlag::O_NOFOLLOW) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(()),
        Err(e) => return Err(Error::sys(format!("open {}", root.display(dest)), e)),
    };
    let st = nix::sys::stat::fstat(fd.as_fd()).ctx(|| format!("stat {}", root.display(dest)))?;
    if st.st_mode & libc::S_IFMT == libc::S_IFLNK {
        return Err(Error::InvalidSpec(format!(
            "filesystem {typ:?} must be mounted on an ordinary directory, and /{} is a symlink",
            dest.display()
        )));
    }
    Ok(())
}

/// The permission bits of an existing directory at `dest` (None if missing or not a directory).
fn dir_mode(root: &Root, dest: &Path) -> Option<u32> {
    let fd = root.open_path(dest, OFlag::empty()).ok()?;
    let st = nix::sys::stat::fstat(fd.as_fd()).ok()?;
    (st.st_mode & libc::S_IFMT == libc::S_IFDIR).then_some(st.st_mode & 0o7777)
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
