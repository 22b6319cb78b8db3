//! The container's view of /sys/fs/cgroup.
//!
//! The container sees its own cgroup as the root of each hierarchy: on cgroup v2 with a cgroup
//! namespace, a fresh cgroup2 mount does that; otherwise each hierarchy's container directory is
//! bind-mounted (under a tmpfs on v1 and hybrid hosts, one subdirectory per hierarchy, named as on
//! the host). The plan comes from the host's cgroup layout (cgroups/layout.rs: the one create
//! found, recorded in the container's CgroupConfig) and /proc/self/cgroup, read by the init after
//! the parent placed it in its cgroups and before it unshares a cgroup namespace, when it still
//! shows host paths.

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::mount::{mount, MsFlags};
use nix::sys::stat::Mode;

use super::mounts::{bind, remount_bind};
use super::options::{Options, ATTR_NODEV, ATTR_NOEXEC, ATTR_NOSUID, ATTR_RDONLY};
use super::resolve::{fd_path, Kind, Root};
use crate::cgroups::layout::CGROUP_ROOT;
use crate::cgroups::Layout;
use crate::error::{Error, Result, SysContext};

#[derive(Debug, PartialEq, Eq)]
struct Hierarchy {
    /// Subdirectory name under /sys/fs/cgroup (`memory`, `systemd`, `unified`); empty for a pure v2 host.
    name: String,
    /// The container's cgroup directory in this hierarchy, on the host.
    host_dir: PathBuf,
}

#[derive(Debug)]
pub struct CgroupMounts {
    pure_v2: bool,
    hierarchies: Vec<Hierarchy>,
    /// The init has its own cgroup namespace, so a cgroup2 mount shows the right root.
    cgroupns: bool,
}

impl CgroupMounts {
    /// `known`: the hierarchies the runtime found (the init's mount namespace is a copy of its
    /// own); None: read from this process's mountinfo.
    pub fn detect(cgroupns: bool, known: Option<&Layout>) -> Result<CgroupMounts> {
        let read;
        let layout = match known {
            Some(l) => l,
            None => {
                read = Layout::detect().map_err(Error::Cgroup)?;
                &read
            }
        };
        let cgroup = std::fs::read_to_string("/proc/self/cgroup").ctx(|| "read /proc/self/cgroup".into())?;
        let (pure_v2, hierarchies) = plan(layout, &cgroup);
        Ok(CgroupMounts {
            pure_v2,
            hierarchies,
            cgroupns,
        })
    }

    /// Mount the container's cgroup view at `dest` (rootfs-relative) with the spec's options.
    pub fn mount(&self, root: &Root, dest: &Path, opts: &Options) -> Result<()> {
        let flags = opts.flags
            & (MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC | MsFlags::MS_RDONLY | MsFlags::MS_RELATIME);
        let shown = root.display(dest);
        if self.pure_v2 {
            let dst = root.ensure(dest, Kind::Dir)?;
            if self.cgroupns {
                return mount(
                    Some("cgroup2"),
                    &fd_path(dst.as_fd()),
                    Some("cgroup2"),
                    flags,
                    None::<&str>,
                )
                .ctx(|| format!("mount cgroup2 on {shown}"));
            }
            let h = self.hierarchies.first().ok_or_else(|| {
                Error::Cgroup(crate::cgroups::CgroupError::Unsupported(
                    "no cgroup2 hierarchy found".into(),
                ))
            })?;
            return self.bind_one(root, dest, h, flags);
        }
        let dst = root.ensure(dest, Kind::Dir)?;
        mount(
            Some("tmpfs"),
            &fd_path(dst.as_fd()),
            Some("tmpfs"),
            flags - MsFlags::MS_RDONLY,
            Some("mode=755"),
        )
        .ctx(|| format!("mount tmpfs on {shown}"))?;
        // The tmpfs is new and only this process sees it yet: names in it are opened relative to
        // its root, with no resolution inside the rootfs to guard against.
        let view = root
            .open_path(dest, OFlag::O_DIRECTORY)
            .ctx(|| format!("open {shown}"))?;
        for h in &self.hierarchies {
            bind_into(&view, h).ctx(|| format!("bind {} on {}", h.host_dir.display(), root.display(&dest.join(&h.name))))?;
        }
        // The flags of the tmpfs and every bind in it, in one call (mount_setattr, Linux 5.12);
        // else a remount of each.
        match crate::sys::mount_setattr(view.as_fd(), true, mount_attrs(flags), 0) {
            Ok(()) => Ok(()),
            Err(_) => self.remount_each(root, dest, flags),
        }
    }

    /// The older way to the same flags: a remount per bind, then of the tmpfs.
    fn remount_each(&self, root: &Root, dest: &Path, flags: MsFlags) -> Result<()> {
        for h in &self.hierarchies {
            let at = dest.join(&h.name);
            remount_bind(root, &at, flags).ctx(|| format!("remount {}", root.display(&at)))?;
        }
        if flags.contains(MsFlags::MS_RDONLY) {
            let fd = root.ensure(dest, Kind::Dir)?;
            mount(
                None::<&str>,
                &fd_path(fd.as_fd()),
                None::<&str>,
                MsFlags::MS_REMOUNT | flags,
                Some("mode=755"),
            )
            .ctx(|| format!("remount {} read-only", root.display(dest)))?;
        }
        Ok(())
    }

    fn bind_one(&self, root: &Root, dest: &Path, h: &Hierarchy, flags: MsFlags) -> Result<()> {
        let what = || format!("bind {} on {}", h.host_dir.display(), root.display(dest));
        let src = nix::fcntl::open(
            &h.host_dir,
            nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .ctx(what)?;
        let dst = root.ensure(dest, Kind::Dir)?;
        bind(&src, &dst, true).ctx(what)?;
        remount_bind(root, dest, flags).ctx(|| format!("remount {}", root.display(dest)))
    }
}

/// Bind the hierarchy's container directory on a new directory `h.name` of the view's tmpfs
/// (a name below another, as in `net/cls`, gets its parents too).
fn bind_into(view: &OwnedFd, h: &Hierarchy) -> nix::Result<()> {
    let mut made = PathBuf::new();
    for part in Path::new(&h.name).components() {
        made.push(part);
        match nix::sys::stat::mkdirat(view.as_fd(), &made, Mode::from_bits_truncate(0o755)) {
            Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
            Err(e) => return Err(e),
        }
    }
    let dst = nix::fcntl::openat(
        view.as_fd(),
        h.name.as_str(),
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let src = nix::fcntl::open(&h.host_dir, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty())?;
    bind(&src, &dst, true)
}

/// The MOUNT_ATTR_* bits for the mount flags the view takes (atime is left as mounted).
fn mount_attrs(flags: MsFlags) -> u64 {
    [
        (MsFlags::MS_RDONLY, ATTR_RDONLY),
        (MsFlags::MS_NOSUID, ATTR_NOSUID),
        (MsFlags::MS_NODEV, ATTR_NODEV),
        (MsFlags::MS_NOEXEC, ATTR_NOEXEC),
    ]
    .into_iter()
    .filter(|(ms, _)| flags.contains(*ms))
    .fold(0, |bits, (_, attr)| bits | attr)
}

/// From the host's cgroup layout and /proc/self/cgroup: whether the host is pure v2 (cgroup2 at
/// /sys/fs/cgroup itself), and the container directory of each hierarchy under /sys/fs/cgroup.
fn plan(layout: &Layout, cgroup: &str) -> (bool, Vec<Hierarchy>) {
    let pure_v2 = matches!(layout, Layout::Unified(h) if h.mount == Path::new(CGROUP_ROOT));
    let mut out = Vec::new();
    for (h, is_v2) in layout.hierarchies() {
        let Ok(name) = h.mount.strip_prefix(CGROUP_ROOT) else {
            continue;
        };
        let own = if is_v2 {
            own_path(cgroup, |ctrls| ctrls.is_empty())
        } else {
            own_path(cgroup, |ctrls| !ctrls.is_empty() && ctrls.split(',').all(|c| h.has(c)))
        };
        let Some(own) = own else { continue };
        let rel = Path::new(own).strip_prefix(&h.root).unwrap_or(Path::new(own));
        let rel = rel.strip_prefix("/").unwrap_or(rel);
        out.push(Hierarchy {
            name: name.to_string_lossy().into_owned(),
            host_dir: h.mount.join(rel),
        });
    }
    (pure_v2, out)
}

/// The path of the first /proc/self/cgroup line whose controller list satisfies `want`.
fn own_path(cgroup: &str, want: impl Fn(&str) -> bool) -> Option<&str> {
    cgroup.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let (_, ctrls, path) = (parts.next()?, parts.next()?, parts.next()?);
        want(ctrls).then_some(path)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroups::layout::from_mountinfo;

    const HYBRID_MOUNTINFO: &str = "\
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
50 22 0:40 / /proc rw - proc proc rw";
    const HYBRID_CGROUP: &str = "5:memory:/hezi/c1\n4:cpu:/hezi/c1\n1:name=systemd:/hezi/c1\n0::/hezi/c1\n";

    #[test]
    fn hybrid_plan_has_every_hierarchy() {
        let layout = from_mountinfo(HYBRID_MOUNTINFO, false).unwrap();
        let (v2, h) = plan(&layout, HYBRID_CGROUP);
        assert!(!v2);
        let names: Vec<_> = h.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names, ["cpu", "memory", "systemd", "unified"]);
        assert_eq!(h[1].host_dir, Path::new("/sys/fs/cgroup/memory/hezi/c1"));
    }

    #[test]
    fn pure_v2_plan() {
        let mi = "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate";
        let (v2, h) = plan(&from_mountinfo(mi, true).unwrap(), "0::/hezi/c2\n");
        assert!(v2);
        assert_eq!(
            h,
            vec![Hierarchy {
                name: String::new(),
                host_dir: "/sys/fs/cgroup/hezi/c2".into()
            }]
        );
    }
}
