//! The on-disk container store under `--root`: one directory per container id holding
//! `state.json` and, until `start`, the `exec.fifo`.
//!
//! Creation is `mkdir` of the container directory, so of two racing creates of one id exactly one
//! wins. Every command that changes a container holds an exclusive `flock` on its directory.

use std::collections::HashMap;
use std::fs;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg, OFlag};
use nix::sys::stat::Mode;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, SysContext};

pub const STATE_FILE: &str = "state.json";
pub const EXEC_FIFO: &str = "exec.fifo";
/// The resources as changed by `update`.
pub const RESOURCES_FILE: &str = "resources.json";

/// What hezi remembers about a container between commands.
#[derive(Serialize, Deserialize, Debug, Clone)]
#[serde(rename_all = "camelCase")]
pub struct ContainerState {
    pub oci_version: String,
    pub id: String,
    /// The container's init, in the runtime's pid namespace.
    pub pid: i32,
    /// Start time of the init (field 22 of /proc/PID/stat), so a recycled pid is never mistaken for it.
    pub init_start_time: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    /// RFC 3339 creation time.
    pub created: String,
    pub owner: String,
    #[serde(default)]
    pub annotations: HashMap<String, String>,
    /// The pid file written at create, removed at delete.
    #[serde(default)]
    pub pid_file: Option<PathBuf>,
    /// The container's cgroup, resolved at create.
    #[serde(default)]
    pub cgroup: Option<crate::cgroups::CgroupConfig>,
    /// The init shares a pid namespace it did not create (the host's, a pod's): killing it does
    /// not end the container's other processes, so SIGKILL goes to the whole cgroup (as runc).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub shared_pid_ns: bool,
    /// Without a mount namespace of its own the container mounts in the host's: how many mounts
    /// were stacked on the rootfs before create. `delete` detaches the ones above.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_mounts_below: Option<usize>,
    /// The spec's hooks, for poststart (at start) and poststop (at delete).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hooks: Option<oci_spec::runtime::Hooks>,
    /// linux.netDevices: moved into the container's network namespace at create, moved back
    /// at delete.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub net_devices: Vec<NetDevice>,
    /// linux.intelRdt: the container's resctrl group, removed at delete if hezi made it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intel_rdt: Option<RdtGroup>,
}

/// A container's resctrl group (linux.intelRdt).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RdtGroup {
    /// The group's directory under the resctrl mount.
    pub dir: PathBuf,
    /// hezi made it (and removes it); false for a closID group that existed.
    pub created: bool,
    /// The container's monitoring group (enableMonitoring), inside `dir`.
    pub monitor: Option<PathBuf>,
}

/// A host network interface moved into a container (linux.netDevices): its name on the host
/// and inside.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct NetDevice {
    pub host: String,
    pub inside: String,
}

/// The state root directory (`--root`, default `/run/hezi`).
pub struct Store {
    root: PathBuf,
}

/// An exclusive lock on one container's directory, released on drop.
pub struct Lock {
    _flock: Flock<OwnedFd>,
}

impl Store {
    /// Open the root, creating it (0700) if missing.
    pub fn open(root: &Path) -> Result<Store> {
        if let Err(e) = fs::DirBuilder::new().recursive(true).mode(0o700).create(root) {
            return Err(Error::io(format!("create state root {}", root.display()), e));
        }
        Ok(Store {
            root: root.to_path_buf(),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn dir(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }

    /// Claim `id`: the mkdir that exactly one racing create wins. Mode 0711 so a container init
    /// running as an unprivileged (or user-namespaced) uid can still reach its exec fifo.
    pub fn claim(&self, id: &str) -> Result<(PathBuf, Lock)> {
        let dir = self.dir(id);
        match fs::DirBuilder::new().mode(0o711).create(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Err(Error::Exists(id.into())),
            Err(e) => return Err(Error::io(format!("create {}", dir.display()), e)),
        }
        // The umask may have narrowed the mode; the init needs the execute bit for others.
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o711)).ctx(|| format!("chmod {}", dir.display()))?;
        let lock = lock_dir(&dir, id)?;
        Ok((dir, lock))
    }

    /// Lock an existing container's directory; `NotFound` if there is none.
    pub fn lock(&self, id: &str) -> Result<Lock> {
        lock_dir(&self.dir(id), id)
    }

    /// Load a container's state; `NotFound` if it has none (never created, or still being created).
    pub fn load(&self, id: &str) -> Result<ContainerState> {
        let path = self.dir(id).join(STATE_FILE);
        let data = match fs::read(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(Error::NotFound(id.into())),
            Err(e) => return Err(Error::io(format!("read {}", path.display()), e)),
        };
        serde_json::from_slice(&data).map_err(|e| Error::Other(format!("{}: {e}", path.display())))
    }

    /// Write state atomically (temp file + rename), so a reader never sees half a file.
    pub fn save(&self, state: &ContainerState) -> Result<()> {
        let dir = self.dir(&state.id);
        let tmp = dir.join(".state.json.tmp");
        let data = serde_json::to_vec(state).map_err(|e| Error::Other(format!("encode state: {e}")))?;
        fs::write(&tmp, data).ctx(|| format!("write {}", tmp.display()))?;
        let path = dir.join(STATE_FILE);
        fs::rename(&tmp, &path).ctx(|| format!("rename {} to {}", tmp.display(), path.display()))
    }

    /// Remove a container's directory and everything in it.
    pub fn remove(&self, id: &str) -> Result<()> {
        let dir = self.dir(id);
        match fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(Error::io(format!("remove {}", dir.display()), e))
            }
            _ => Ok(()),
        }
    }

    /// The resources as `update` last set them (runc keeps them in its state too), so the next
    /// `update` starts from them; `None` before the first update. A file of its own beside
    /// state.json: only `update` writes it, under the container's lock.
    pub fn load_resources(&self, id: &str) -> Result<Option<oci_spec::runtime::LinuxResources>> {
        let path = self.dir(id).join(RESOURCES_FILE);
        match fs::read(&path) {
            Ok(d) => serde_json::from_slice(&d)
                .map(Some)
                .map_err(|e| Error::Other(format!("{}: {e}", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(format!("read {}", path.display()), e)),
        }
    }

    /// Save the updated resources atomically (temp file + rename).
    pub fn save_resources(&self, id: &str, r: &oci_spec::runtime::LinuxResources) -> Result<()> {
        let dir = self.dir(id);
        let tmp = dir.join(".resources.json.tmp");
        let data = serde_json::to_vec(r).map_err(|e| Error::Other(format!("encode resources: {e}")))?;
        fs::write(&tmp, data).ctx(|| format!("write {}", tmp.display()))?;
        let path = dir.join(RESOURCES_FILE);
        fs::rename(&tmp, &path).ctx(|| format!("rename {} to {}", tmp.display(), path.display()))
    }

    /// Ids of every container directory under the root, sorted.
    pub fn ids(&self) -> Result<Vec<String>> {
        let mut ids = Vec::new();
        let entries = fs::read_dir(&self.root).ctx(|| format!("read {}", self.root.display()))?;
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                if let Some(name) = entry.file_name().to_str() {
                    ids.push(name.to_string());
                }
            }
        }
        ids.sort();
        Ok(ids)
    }
}

impl Lock {
    /// In a forked child that never returns to the code holding the lock (it execs or exits):
    /// close our copy of the lock's fd without unlocking. flock belongs to the open file
    /// description the parent shares, so an unlock here would release the parent's lock, and
    /// keeping the fd would hold the lock for as long as the child lives.
    pub fn close_in_child(&self) {
        // SAFETY: this is the child's copy of the lock fd. The child never drops this `Lock`
        // (it leaves by execve or _exit), so nothing closes the fd a second time.
        unsafe { libc::close(self._flock.as_raw_fd()) };
    }
}

fn lock_dir(dir: &Path, id: &str) -> Result<Lock> {
    let fd = match nix::fcntl::open(
        dir,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Err(Error::NotFound(id.into())),
        Err(e) => return Err(Error::sys_path("open", dir, e)),
    };
    let flock = Flock::lock(fd, FlockArg::LockExclusive).map_err(|(_, e)| Error::sys_path("flock", dir, e))?;
    // A delete may have removed the directory while we waited for the lock.
    let st = nix::sys::stat::fstat(flock.as_fd()).ctx(|| format!("fstat {}", dir.display()))?;
    if st.st_nlink == 0 {
        return Err(Error::NotFound(id.into()));
    }
    Ok(Lock { _flock: flock })
}
