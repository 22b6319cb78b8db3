//! cgroup managers over cgroupfs, for cgroup v1 (pure or hybrid, with the unified hierarchy
//! beside it) and pure cgroup v2. One [`Manager`] trait; [`manager`] picks the implementation
//! from the host's mounts, [`CgroupConfig`] (saved in the container state) says where the
//! container's cgroup lives in each hierarchy and which of its ancestors hezi made.
//!
//! - `layout`: which hierarchies the host has (mountinfo, statfs magic) and our own cgroup.
//! - `path`: cgroupsPath validation and placement in each hierarchy.
//! - `fs`: reading and writing cgroupfs files with errors that name file and value.
//! - `convert`: v1 → v2 value conversions (runc's formulas).
//! - `device_rules`: the spec's device list as v1 rule lines, which v1 writes and v2 emulates.
//! - `v1/`: the v1 (and hybrid) manager; `v1/resources` writes the spec's resources.
//! - `v2/`: the v2 manager, also the unified part of a hybrid host; `v2/resources` writes the
//!   spec's resources, `v2/device_filter` turns device rules into an eBPF program emitted by
//!   hand, and `v2/bpf` loads and attaches it with bpf(2).
//! - `stats`, `oom`: what `events` needs.
//! - `sub`: where an exec'd process goes (`exec --cgroup` sub-cgroups).
//! - `systemd`: the systemd driver, a transient scope over D-Bus around the cgroupfs managers.

mod convert;
mod device_rules;
mod fs;
mod join;
pub(crate) mod layout;
mod oom;
mod path;
mod stats;
mod sub;
mod systemd;
mod v1;
mod v2;

use std::collections::BTreeMap;
use std::fmt;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use oci_spec::runtime::LinuxResources;
use serde::{Deserialize, Serialize};

pub use convert::{blkio_weight_to_io_weight, shares_to_weight, swap_to_v2, V2Value};
pub use join::{join_tasks, JoinFds};
pub use layout::{Hierarchy, Layout};
pub use oom::{OomNotifier, OomWatch, OOM_COUNT_GRACE};
pub use stats::{
    BlkioEntry, BlkioStats, CpuStats, CpuUsage, HugetlbStats, MemoryEntry, MemoryStats, PidsStats, Stats, Throttling,
};
pub use sub::{SubCgroups, TaskPlacement};
pub use systemd::{systemd_booted, SystemdUnit};
pub use v2::bpf::device_programs;

/// A cgroup operation that failed, with what was done to which file.
#[derive(Debug)]
pub enum CgroupError {
    /// A file system operation on cgroupfs failed: `write 100 to /sys/fs/cgroup/…/pids.max: EINVAL`.
    Io { op: String, path: PathBuf, errno: Errno },
    /// The host cannot do what was asked (controller not mounted, file the kernel does not offer).
    Unsupported(String),
    /// The request itself is invalid (cgroupsPath escaping its root, a bad unified key, bad value).
    Invalid(String),
    /// A file did not hold what the kernel documents.
    Parse { path: PathBuf, message: String },
    /// Freezing, thawing or removal did not settle in time.
    Timeout(String),
    /// systemd refused or failed a unit operation: `StartTransientUnit hezi-a.scope: …`.
    Systemd(String),
}

impl CgroupError {
    pub(crate) fn io(op: impl Into<String>, path: &Path, err: &std::io::Error) -> Self {
        CgroupError::Io {
            op: op.into(),
            path: path.to_path_buf(),
            errno: Errno::from_raw(err.raw_os_error().unwrap_or(libc::EIO)),
        }
    }

    /// The errno of an `Io` error.
    pub fn errno(&self) -> Option<Errno> {
        match self {
            CgroupError::Io { errno, .. } => Some(*errno),
            _ => None,
        }
    }
}

impl fmt::Display for CgroupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CgroupError::Io { op, path, errno } => write!(f, "{op} {}: {errno}", path.display()),
            CgroupError::Unsupported(m) => write!(f, "not supported on this host: {m}"),
            CgroupError::Invalid(m) => f.write_str(m),
            CgroupError::Parse { path, message } => write!(f, "parse {}: {message}", path.display()),
            CgroupError::Timeout(m) => f.write_str(m),
            CgroupError::Systemd(m) => write!(f, "systemd: {m}"),
        }
    }
}

impl std::error::Error for CgroupError {}

pub type Result<T> = std::result::Result<T, CgroupError>;

/// Where a container's cgroup lives. Saved in the container state at create, so later commands
/// (possibly run from another cgroup) find the same directories.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct CgroupConfig {
    /// cgroupsPath after validation: absolute (below each hierarchy's root) or relative (placed
    /// below hezi's own cgroup, see `dirs`). Absent from the spec: `/hezi/<id>`.
    pub path: PathBuf,
    /// Per hierarchy (keyed by mount point), the cgroup directory below the mount and how many of
    /// its leading components existed before create. Recorded at resolve time so `destroy` only
    /// removes the parents hezi made. Missing entries (older state) fall back to `path` with
    /// only the leaf removable.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub dirs: BTreeMap<PathBuf, Placement>,
    /// With `--systemd-cgroup`: the scope unit that owns the cgroup. `path` is then the scope's
    /// directory, and every level above it (the slices) is systemd's, never removed by hezi.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub systemd: Option<SystemdUnit>,
    /// The host's hierarchies as `create` found them (cgroupfs driver). Later commands (`exec`,
    /// `kill`, `delete`, ...) use them instead of reading /proc/self/mountinfo again: the kernel
    /// renders that anew on every read, one line per mount of the host, and on a host with 300
    /// mounts it was 0.4 of `exec`'s 2.4 ms. They are also what the container's directories
    /// were made in, and what the init mounts its view of. None in older state: read when
    /// needed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layout: Option<Layout>,
}

/// A container's cgroup in one hierarchy.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Placement {
    /// Below the hierarchy's mount point, absolute form: `/hezi/<id>`.
    pub dir: PathBuf,
    /// How many leading components of `dir` existed before hezi created it: never removed.
    pub existed: usize,
}

impl CgroupConfig {
    /// Validate `cgroups_path` (`None`: `/hezi/<id>`) and place it in each hierarchy of this host.
    ///
    /// An absolute path is taken below each hierarchy's root. A relative path is placed below
    /// hezi's own cgroup, as runc does: on cgroup v2 below the parent of hezi's cgroup (a cgroup
    /// with processes cannot give controllers to children), on v1 below hezi's cgroup in each
    /// hierarchy. `..` may not climb above that start, and the systemd form `slice:prefix:name`
    /// is refused (it needs the systemd driver).
    pub fn resolve(cgroups_path: Option<&Path>, id: &str) -> Result<CgroupConfig> {
        let path = path::validate(cgroups_path, id)?;
        let layout = Layout::detect()?;
        // The default `/hezi/<id>` is absolute (no need of our own cgroups), and /hezi is
        // hezi's own: removed by whichever container leaves it empty, not only by the one that
        // happened to make it (containers are not deleted in the order they were made), so no
        // level of it counts as existing before. A create racing that removal makes it again
        // (fs.rs `make`).
        let default = cgroups_path.is_none();
        let own = if path.is_absolute() {
            Vec::new()
        } else {
            layout::own_cgroups()?
        };
        let dirs = path::place(&layout, &own, &path, |p| !default && p.is_dir())?;
        Ok(CgroupConfig {
            path,
            dirs,
            systemd: None,
            layout: Some(layout),
        })
    }

    /// The systemd driver's placement: cgroupsPath read as `slice:prefix:name` (see
    /// [`SystemdUnit::parse`]), the cgroup where systemd puts that scope. Refused, before
    /// anything is made, where systemd is not the init system. `user` (rootless): the scope is
    /// the calling user's manager's, below that manager's own cgroup.
    pub fn resolve_systemd(cgroups_path: Option<&Path>, id: &str, user: bool) -> Result<CgroupConfig> {
        let text = match cgroups_path {
            Some(p) => Some(
                p.to_str()
                    .ok_or_else(|| CgroupError::Invalid(format!("cgroupsPath {} is not UTF-8", p.display())))?,
            ),
            None => None,
        };
        let unit = SystemdUnit::parse(text, id, user)?;
        if !systemd_booted() {
            return Err(CgroupError::Systemd(systemd::BusError::NoSystemd.to_string()));
        }
        let path = if user {
            let root = systemd::user_manager_root().map_err(|e| CgroupError::Systemd(e.to_string()))?;
            root.join(unit.cgroup_path().strip_prefix("/").unwrap_or(&unit.cgroup_path()))
        } else {
            unit.cgroup_path()
        };
        // No recorded placements: every level but the scope's own counts as existing.
        Ok(CgroupConfig {
            path,
            dirs: BTreeMap::new(),
            systemd: Some(unit),
            layout: Some(Layout::detect()?),
        })
    }

    /// Where the container's cgroup is in the hierarchy mounted at `mount`.
    pub(crate) fn placement(&self, mount: &Path) -> Result<Placement> {
        if let Some(p) = self.dirs.get(mount) {
            return Ok(p.clone());
        }
        if !self.path.is_absolute() {
            return Err(CgroupError::Invalid(format!(
                "relative cgroup path {} has no recorded place in the hierarchy at {}",
                self.path.display(),
                mount.display()
            )));
        }
        Ok(Placement {
            dir: self.path.clone(),
            existed: path::depth(&self.path).saturating_sub(1),
        })
    }
}

/// One container's cgroup, in whatever hierarchies the host has.
pub trait Manager {
    /// Make the cgroup directories (and, on v2, enable the controllers the host offers in every
    /// ancestor). Refuses a cgroup that already holds processes.
    fn create(&self) -> Result<()>;
    /// Move process `pid` into the cgroup in every hierarchy.
    fn add_task(&self, pid: i32) -> Result<()>;
    /// Place the container's init, the cgroup's first process (for the systemd driver, the
    /// process its scope unit is started with). Not called when the init was cloned straight
    /// into the cgroup.
    fn add_init(&self, pid: i32) -> Result<()> {
        self.add_task(pid)
    }
    /// What a new process needs to join the cgroup itself, at its clone and first thing after
    /// (join.rs); None where only `add_init`/`add_task` can place it (the systemd driver).
    fn join_fds(&self) -> Result<Option<JoinFds>> {
        Ok(self.v2_dir_fd()?.map(|fd| JoinFds {
            clone_into: Some(fd),
            tasks: Vec::new(),
        }))
    }
    /// Apply the spec's resources. A value the host cannot apply is an error naming file and value.
    fn apply_resources(&self, r: &LinuxResources) -> Result<()>;
    /// `update`: change the resources of a running container (only the fields set in `r`).
    fn update(&self, r: &LinuxResources) -> Result<()> {
        self.apply_resources(r)
    }
    /// Freeze every process and wait until the kernel says they are frozen.
    fn freeze(&self) -> Result<()>;
    fn thaw(&self) -> Result<()>;
    /// Whether this cgroup itself is frozen (false when it does not exist).
    fn is_frozen(&self) -> Result<bool>;
    /// Every process in the cgroup and its descendants (empty when it does not exist).
    fn pids(&self) -> Result<Vec<i32>>;
    /// Send `signal` to every process. A frozen cgroup stays frozen except for SIGKILL.
    fn kill_all(&self, signal: i32) -> Result<()>;
    /// Remove the cgroup in every hierarchy and the empty parents hezi made. Ok when gone already.
    fn destroy(&self) -> Result<()>;
    /// An O_PATH directory fd of the container's v2 cgroup for CLONE_INTO_CGROUP; None on v1/hybrid.
    fn v2_dir_fd(&self) -> Result<Option<OwnedFd>>;
    /// Where a process `exec` starts goes: the container's cgroup, or the sub-cgroups `sub`
    /// names below it, every directory checked to exist before the process does.
    fn task_placement(&self, sub: &SubCgroups) -> Result<TaskPlacement>;
    /// Usage counters for `events --stats` (runc's JSON shape).
    fn stats(&self) -> Result<Stats>;
    /// How many processes the OOM killer has killed in the cgroup.
    fn oom_kill_count(&self) -> Result<u64>;
    /// An fd that becomes readable when an OOM may have happened (v1: memory.oom_control
    /// eventfd; v2: inotify on memory.events); then compare [`Manager::oom_kill_count`].
    fn oom_notifier(&self) -> Result<OomNotifier>;
    /// The cgroup directory that holds `controller`'s files (`"freezer"`, `"memory"`, …; `""`
    /// for the unified hierarchy), if the host has it.
    fn dir(&self, controller: &str) -> Option<PathBuf>;
}

/// The manager for this host's cgroup layout.
pub fn manager(cfg: &CgroupConfig) -> Result<Box<dyn Manager>> {
    match &cfg.layout {
        Some(layout) => manager_for(layout, cfg),
        None => manager_for(&Layout::detect()?, cfg),
    }
}

/// The manager for `cfg` on a given layout (a caller that detected it already, or a test that
/// drives the v2 manager on a hybrid host's unified mount).
pub fn manager_for(layout: &Layout, cfg: &CgroupConfig) -> Result<Box<dyn Manager>> {
    let fs: Box<dyn Manager> = match layout {
        Layout::Unified(h) => Box::new(v2::V2Manager::new(h, cfg)?),
        Layout::Legacy { v1, unified } => Box::new(v1::V1Manager::new(v1, unified.as_ref(), cfg)?),
    };
    Ok(match &cfg.systemd {
        Some(unit) => Box::new(systemd::SystemdManager::new(unit.clone(), fs)),
        None => fs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The layout create found travels in the state and comes back whole; state written before
    /// it was recorded reads as no layout (read from mountinfo when needed).
    #[test]
    fn the_layout_travels_in_the_state() {
        let h = |m: &str, c: &[&str]| Hierarchy {
            mount: m.into(),
            root: "/".into(),
            controllers: c.iter().map(|c| c.to_string()).collect(),
        };
        let cfg = CgroupConfig {
            path: "/hezi/c1".into(),
            dirs: BTreeMap::new(),
            systemd: None,
            layout: Some(Layout::Legacy {
                v1: vec![
                    h("/sys/fs/cgroup/memory", &["memory"]),
                    h("/sys/fs/cgroup/systemd", &["name=systemd"]),
                ],
                unified: Some(h("/sys/fs/cgroup/unified", &[])),
            }),
        };
        let text = serde_json::to_string(&cfg).unwrap();
        assert_eq!(serde_json::from_str::<CgroupConfig>(&text).unwrap(), cfg);
        let older: CgroupConfig = serde_json::from_str(r#"{"path": "/hezi/c1"}"#).unwrap();
        assert_eq!(older.layout, None);
    }

    #[test]
    fn io_error_names_operation_file_and_errno() {
        let e = CgroupError::io(
            "write 100 to",
            Path::new("/sys/fs/cgroup/memory/hezi/x/memory.limit_in_bytes"),
            &std::io::Error::from_raw_os_error(libc::EINVAL),
        );
        let s = e.to_string();
        assert!(
            s.starts_with("write 100 to /sys/fs/cgroup/memory/hezi/x/memory.limit_in_bytes: EINVAL"),
            "{s}"
        );
        assert_eq!(e.errno(), Some(Errno::EINVAL));
    }

    #[test]
    fn old_state_without_dirs_still_loads() {
        let cfg: CgroupConfig = serde_json::from_str(r#"{"path":"/hezi/a"}"#).unwrap();
        let p = cfg.placement(Path::new("/sys/fs/cgroup")).unwrap();
        assert_eq!(p.dir, Path::new("/hezi/a"));
        // Only the leaf may go: /hezi is assumed to have existed.
        assert_eq!(p.existed, 1);
        let rel: CgroupConfig = serde_json::from_str(r#"{"path":"a/b"}"#).unwrap();
        assert!(rel.placement(Path::new("/sys/fs/cgroup")).is_err());
    }
}
