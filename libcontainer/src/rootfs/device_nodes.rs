//! /dev inside the container: the default devices every container gets, the spec's devices, and
//! the standard symlinks. In a user namespace mknod is not allowed, so devices are bind-mounted
//! from the host instead (as runc does).

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::{makedev, mknodat, Mode, SFlag};
use nix::unistd::{fchownat, Gid, Uid};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType};

use super::mounts::bind;
use super::resolve::{relative, Kind, Root};
use crate::error::{Error, Result, SysContext};

pub struct Device {
    pub path: PathBuf,
    pub kind: SFlag,
    pub major: u64,
    pub minor: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// Listed in the spec's linux.devices (not one of the defaults).
    pub from_spec: bool,
}

/// null, zero, full, random, urandom and tty, as the OCI spec requires.
fn defaults() -> Vec<Device> {
    [
        ("null", 1, 3),
        ("zero", 1, 5),
        ("full", 1, 7),
        ("random", 1, 8),
        ("urandom", 1, 9),
        ("tty", 5, 0),
    ]
    .into_iter()
    .map(|(name, major, minor)| Device {
        path: Path::new("/dev").join(name),
        kind: SFlag::S_IFCHR,
        major,
        minor,
        mode: 0o666,
        uid: 0,
        gid: 0,
        from_spec: false,
    })
    .collect()
}

fn from_spec(d: &LinuxDevice) -> Result<Device> {
    let kind = match d.typ() {
        LinuxDeviceType::C | LinuxDeviceType::U => SFlag::S_IFCHR,
        LinuxDeviceType::B => SFlag::S_IFBLK,
        LinuxDeviceType::P => SFlag::S_IFIFO,
        LinuxDeviceType::A => {
            return Err(Error::InvalidSpec(format!(
                "device {}: type \"a\" is only valid in cgroup rules",
                d.path().display()
            )))
        }
    };
    if !d.path().is_absolute() {
        return Err(Error::InvalidSpec(format!(
            "device path {} must be absolute",
            d.path().display()
        )));
    }
    Ok(Device {
        path: d.path().clone(),
        kind,
        major: d.major() as u64,
        minor: d.minor() as u64,
        mode: d.file_mode().unwrap_or(0o666) & 0o7777,
        uid: d.uid().unwrap_or(0),
        gid: d.gid().unwrap_or(0),
        from_spec: true,
    })
}

/// Create the default and spec devices and the /dev symlinks.
pub fn setup(root: &Root, spec_devices: &[LinuxDevice], in_userns: bool) -> Result<()> {
    let mut devices = defaults();
    for d in spec_devices {
        let d = from_spec(d)?;
        devices.retain(|x| x.path != d.path);
        devices.push(d);
    }
    if in_userns {
        for d in &devices {
            bind_host_device(root, d)?;
        }
    } else {
        // A node made with umask 0 has the spec's mode already: no chmod after it. The umask
        // is put back before anything else is created.
        let umask = nix::sys::stat::umask(Mode::empty());
        let made = make_all(root, &devices);
        nix::sys::stat::umask(umask);
        made?;
    }
    symlinks(root)
}

/// mknod every device, opening each parent directory once for the devices in a row under it
/// (the defaults are all in /dev).
fn make_all(root: &Root, devices: &[Device]) -> Result<()> {
    let mut parent: Option<(&Path, OwnedFd)> = None;
    for d in devices {
        let inner = relative(&d.path);
        let dir = inner.parent().unwrap_or(Path::new(""));
        let fd = match parent.take() {
            Some((p, fd)) if p == dir => fd,
            _ => root.dir(dir)?,
        };
        make(root, d, fd.as_fd())?;
        parent = Some((dir, fd));
    }
    Ok(())
}

/// In a user namespace mknod is not allowed: the host's node is bind-mounted instead.
fn bind_host_device(root: &Root, d: &Device) -> Result<()> {
    let inner = relative(&d.path);
    let src = nix::fcntl::open(&d.path, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(|e| Error::sys_path("open host device", &d.path, e))?;
    let dst = root.ensure(inner, Kind::File)?;
    bind(&src, &dst, false).ctx(|| format!("bind {} on {}", d.path.display(), root.display(inner)))
}

/// mknod `d` in `parent` (its directory), replacing a default's stale entry; an existing node
/// that matches is kept and given the spec's mode. Then its owner.
fn make(root: &Root, d: &Device, parent: BorrowedFd<'_>) -> Result<()> {
    let inner = relative(&d.path);
    let name = inner
        .file_name()
        .ok_or_else(|| Error::InvalidSpec(format!("device path {}", d.path.display())))?;
    let mode = Mode::from_bits_truncate(d.mode);
    let dev = makedev(d.major, d.minor);
    let what = || format!("mknod {}", root.display(inner));
    match mknodat(parent, name, d.kind, mode, dev) {
        Ok(()) => {}
        Err(Errno::EEXIST) => {
            let st = nix::sys::stat::fstatat(parent, name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW)
                .ctx(|| format!("stat {}", root.display(inner)))?;
            let matches = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == d.kind && st.st_rdev == dev;
            if !matches && d.from_spec {
                // config-linux.md "Devices": a non-matching file at the path is an error.
                return Err(Error::InvalidSpec(format!(
                    "device {}: a different file already exists there",
                    d.path.display()
                )));
            }
            if matches {
                // The node was there before: it keeps its mode unless set here.
                nix::sys::stat::fchmodat(parent, name, mode, nix::sys::stat::FchmodatFlags::NoFollowSymlink)
                    .or_else(|e| if e == Errno::EOPNOTSUPP { Ok(()) } else { Err(e) })
                    .ctx(|| format!("chmod {}", root.display(inner)))?;
            } else {
                // An image may ship its own /dev entries; a default device replaces them.
                nix::unistd::unlinkat(parent, name, nix::unistd::UnlinkatFlags::NoRemoveDir).ctx(what)?;
                mknodat(parent, name, d.kind, mode, dev).ctx(what)?;
            }
        }
        Err(e) => return Err(Error::sys(what(), e)),
    }
    fchownat(
        parent,
        name,
        Some(Uid::from_raw(d.uid)),
        Some(Gid::from_raw(d.gid)),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .ctx(|| format!("chown {}", root.display(inner)))
}

fn symlinks(root: &Root) -> Result<()> {
    let dev = root.dir(Path::new("dev"))?;
    let mut links = vec![
        ("/proc/self/fd", "fd"),
        ("/proc/self/fd/0", "stdin"),
        ("/proc/self/fd/1", "stdout"),
        ("/proc/self/fd/2", "stderr"),
    ];
    if Path::new("/proc/kcore").exists() {
        links.push(("/proc/kcore", "core"));
    }
    for (target, name) in links {
        match nix::unistd::symlinkat(target, dev.as_fd(), name) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => {
                return Err(Error::sys(
                    format!("symlink {}", root.display(&Path::new("dev").join(name))),
                    e,
                ))
            }
        }
    }
    // /dev/ptmx must be the devpts instance's ptmx, not a device node of the host's.
    match nix::unistd::unlinkat(dev.as_fd(), "ptmx", nix::unistd::UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => {}
        Err(e) => return Err(Error::sys(format!("remove {}", root.display(Path::new("dev/ptmx"))), e)),
    }
    nix::unistd::symlinkat("pts/ptmx", dev.as_fd(), "ptmx")
        .ctx(|| format!("symlink {}", root.display(Path::new("dev/ptmx"))))
}
