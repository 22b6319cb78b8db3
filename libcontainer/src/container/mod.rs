//! Container operations over the state store: one file per operation.

mod create;
mod delete;
mod events;
mod exec;
mod host_mounts;
mod idmap;
mod launch;
mod oom;
mod pause;
mod pidfd;
mod rootless;
mod start;
mod status;
mod update;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use nix::sys::signal::Signal;
use nix::unistd::Pid;
use serde::Serialize;

use crate::cgroups;
use crate::error::{Error, Result};
use crate::state::{ContainerState, Store};
use crate::sys;

pub use create::{CreateOptions, Created};
pub use events::Event;
pub use exec::{ExecOptions, Execed};
pub use oom::OomEvents;
pub use rootless::detect as detect_rootless;
pub use status::Status;

/// The OCI state of a container, as `state` prints it (plus runc's rootfs, created and owner).
#[derive(Serialize, Debug, Clone)]
#[serde(rename_all = "camelCase")]
pub struct OciState {
    pub oci_version: String,
    pub id: String,
    pub pid: i32,
    pub status: Status,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    pub owner: String,
    #[serde(skip_serializing_if = "HashMap::is_empty")]
    pub annotations: HashMap<String, String>,
}

/// The containers under one state root.
pub struct Runtime {
    store: Store,
    /// `--systemd-cgroup`: new containers get a systemd scope (later commands read the driver
    /// from the container's state).
    systemd_cgroup: bool,
    /// Not the host's root (rootless.rs): cgroups the caller may not make are done without.
    rootless: bool,
}

fn cgroup_err(e: cgroups::CgroupError) -> Error {
    Error::Cgroup(e)
}

/// The cgroup manager of a container, from its state.
fn manager_of(st: &ContainerState) -> Result<Box<dyn cgroups::Manager>> {
    let cfg = st.cgroup.as_ref().ok_or_else(|| {
        Error::Cgroup(cgroups::CgroupError::Unsupported(format!(
            "container {} has no cgroup of its own (made by a user who could not make one)",
            st.id
        )))
    })?;
    cgroups::manager(cfg).map_err(cgroup_err)
}

/// Write `pid` to `path` atomically (a temporary file renamed over it), as runc does: a reader
/// never sees an empty or partial file.
pub(crate) fn write_pid_file(path: &Path, pid: Pid) -> Result<()> {
    use crate::error::SysContext;
    let tmp = path.with_extension("hezi-tmp");
    std::fs::write(&tmp, pid.to_string()).ctx(|| format!("write pid file {}", tmp.display()))?;
    std::fs::rename(&tmp, path).ctx(|| format!("rename {} to {}", tmp.display(), path.display()))
}

impl Runtime {
    pub fn new(root: &Path) -> Result<Runtime> {
        Ok(Runtime {
            store: Store::open(root)?,
            systemd_cgroup: false,
            rootless: rootless::detect(),
        })
    }

    /// Use the systemd cgroup driver for containers this runtime creates.
    pub fn with_systemd_cgroup(mut self, on: bool) -> Runtime {
        self.systemd_cgroup = on;
        self
    }

    /// runc's `--rootless true|false`: override what [`detect_rootless`] found.
    pub fn with_rootless(mut self, rootless: bool) -> Runtime {
        self.rootless = rootless;
        self
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Whether new containers get a systemd scope (`--systemd-cgroup`).
    pub(crate) fn systemd_cgroup(&self) -> bool {
        self.systemd_cgroup
    }

    /// Whether this runtime is not the host's root (see rootless.rs).
    pub(crate) fn rootless(&self) -> bool {
        self.rootless
    }

    pub(crate) fn load(&self, id: &str) -> Result<ContainerState> {
        crate::id::validate(id)?;
        self.store.load(id)
    }

    pub fn state(&self, id: &str) -> Result<OciState> {
        let st = self.load(id)?;
        Ok(self.oci_state(&st))
    }

    fn oci_state(&self, st: &ContainerState) -> OciState {
        let status = self.status(st);
        OciState {
            oci_version: st.oci_version.clone(),
            id: st.id.clone(),
            // runc reports no pid once the container has stopped.
            pid: if status == Status::Stopped { 0 } else { st.pid },
            status,
            bundle: st.bundle.clone(),
            rootfs: st.rootfs.clone(),
            created: st.created.clone(),
            owner: st.owner.clone(),
            annotations: st.annotations.clone(),
        }
    }

    /// Every container under the root, in id order. A directory whose state cannot be read is
    /// skipped (it is being created or deleted right now).
    pub fn list(&self) -> Result<Vec<OciState>> {
        let mut out = Vec::new();
        for id in self.store.ids()? {
            if let Ok(st) = self.store.load(&id) {
                out.push(self.oci_state(&st));
            }
        }
        Ok(out)
    }

    /// Send `signal` to the container's init, or with `all` to every process in its cgroup.
    /// SIGKILL to a container that shares its pid namespace goes to every process, as runc does:
    /// there, the init's death does not take the others with it.
    pub fn kill(&self, id: &str, signal: Signal, all: bool) -> Result<()> {
        let st = self.load(id)?;
        let status = self.status(&st);
        // With --all a stopped container is signalled too, as runc does: one that shares another
        // pid namespace leaves its init's children behind, and containerd's runc shim kills them
        // with `kill --all` once the init has exited.
        if status == Status::Creating || (status == Status::Stopped && !all) {
            return Err(Error::WrongState {
                id: id.into(),
                op: "kill",
                status: status.to_string(),
            });
        }
        if all || (signal == Signal::SIGKILL && st.shared_pid_ns) {
            return match &st.cgroup {
                Some(cfg) => cgroups::manager(cfg)
                    .and_then(|m| m.kill_all(signal as i32))
                    .map_err(cgroup_err),
                // No cgroup to find the processes in (rootless): those of the init's pid
                // namespace, the init first.
                None if status == Status::Stopped => Ok(()),
                None => {
                    signal_init(&st, signal)?;
                    for pid in rootless::processes_without_cgroup(&st) {
                        if pid != st.pid {
                            // Gone meanwhile is fine: the init's death may take it first.
                            let _ = nix::sys::signal::kill(Pid::from_raw(pid), signal);
                        }
                    }
                    Ok(())
                }
            };
        }
        signal_init(&st, signal)
    }
}

impl Runtime {
    /// `kill ID 0`: signal 0 sends nothing and only checks, as kill(2) does, that the
    /// container's init is there to be signalled (runc: "container not running" otherwise).
    pub fn probe(&self, id: &str) -> Result<()> {
        let st = self.load(id)?;
        match self.status(&st) {
            Status::Created | Status::Running | Status::Paused => Ok(()),
            s => Err(Error::WrongState {
                id: id.into(),
                op: "kill",
                status: s.to_string(),
            }),
        }
    }

    /// The init of `id` has exited: kill what it left behind. With its own pid namespace the
    /// kernel ended every other process with it; in a shared one (the host's, a pod's) its
    /// children live on in the cgroup, holding its output open. containerd's runc shim does the
    /// same on every init exit.
    pub fn kill_leftovers(&self, id: &str) -> Result<()> {
        let st = self.load(id)?;
        match &st.cgroup {
            Some(cfg) if st.shared_pid_ns => cgroups::manager(cfg)
                .and_then(|m| m.kill_all(Signal::SIGKILL as i32))
                .map_err(cgroup_err),
            _ => Ok(()),
        }
    }
}

/// The state JSON a hook reads on stdin (runtime.md "State").
fn hook_state(st: &ContainerState, status: Status) -> String {
    serde_json::json!({
        "ociVersion": st.oci_version,
        "id": st.id,
        "status": status,
        "pid": st.pid,
        "bundle": st.bundle,
        "annotations": st.annotations,
    })
    .to_string()
}

/// Signal the init through a pidfd, after checking the pid still names it.
fn signal_init(st: &ContainerState, signal: Signal) -> Result<()> {
    let pid = Pid::from_raw(st.pid);
    let stopped = || Error::WrongState {
        id: st.id.clone(),
        op: "kill",
        status: "stopped".into(),
    };
    let fd = match sys::pidfd_open(pid) {
        Ok(fd) => fd,
        // Exited and reaped already: a cgroup-wide SIGKILL (cgroup.kill) can get there first.
        Err(nix::errno::Errno::ESRCH) => return Err(stopped()),
        Err(e) => return Err(Error::sys(format!("open pidfd of {pid}"), e)),
    };
    if !crate::procfs::is_alive(pid, st.init_start_time) {
        return Err(stopped());
    }
    match sys::pidfd_send_signal(std::os::fd::AsFd::as_fd(&fd), signal as i32) {
        Err(nix::errno::Errno::ESRCH) => Err(stopped()),
        r => r.map_err(|e| Error::sys(format!("send {signal} to {pid}"), e)),
    }
}
