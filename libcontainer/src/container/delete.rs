//! `delete`: remove a stopped (or, with force, any) container and everything it made.

use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::Signal;
use nix::unistd::Pid;

use super::{cgroup_err, signal_init, Runtime, Status};
use crate::cgroups;
use crate::error::{Error, Result};
use crate::state::ContainerState;
use crate::sys;

/// How long to wait for processes to die after SIGKILL before giving up.
const KILL_TIMEOUT: Duration = Duration::from_secs(10);

impl Runtime {
    pub fn delete(&self, id: &str, force: bool) -> Result<()> {
        crate::id::validate(id)?;
        let _lock = self.store().lock(id)?;
        let st = match self.store().load(id) {
            Ok(st) => st,
            // A create killed before it wrote any state left only the directory.
            Err(Error::NotFound(_)) if force => return self.store().remove(id),
            Err(e) => return Err(e),
        };
        match self.status(&st) {
            // runc deletes a created container by killing its waiting init.
            Status::Stopped | Status::Created => {}
            s @ (Status::Running | Status::Paused | Status::Creating) => {
                if !force {
                    return Err(Error::WrongState {
                        id: id.into(),
                        op: "delete",
                        status: s.to_string(),
                    });
                }
            }
        }
        return_net_devices(&st);
        self.kill_everything(&st)?;
        self.destroy(&st)
    }

    /// Kill every process of the container and wait until none is left, whatever the state
    /// says: a create killed before it recorded the init's pid (status "creating") still has a
    /// cgroup, and a container that shares another pid namespace (podman --pid host, a pod's
    /// shared one) leaves its init's children behind when the init dies. As runc: through the
    /// cgroup (cgroup.kill on v2; freeze, kill, thaw on v1), then the init by its pid, which is
    /// all there is to go by for a container without a cgroup of its own.
    fn kill_everything(&self, st: &ContainerState) -> Result<()> {
        let mgr = st
            .cgroup
            .as_ref()
            .map(cgroups::manager)
            .transpose()
            .map_err(cgroup_err)?;
        let deadline = Instant::now() + KILL_TIMEOUT;
        if let Some(m) = &mgr {
            // Again while any is left: a process that was being added when we looked (an exec
            // joining on v1) is not missed.
            while !m.pids().map_err(cgroup_err)?.is_empty() {
                if Instant::now() > deadline {
                    return Err(Error::Other(format!(
                        "container {}: processes {:?} still in its cgroup after SIGKILL",
                        st.id,
                        m.pids().unwrap_or_default()
                    )));
                }
                m.kill_all(Signal::SIGKILL as i32).map_err(cgroup_err)?;
                // A frozen cgroup would hold the SIGKILL pending forever.
                let _ = m.thaw();
                wait_cgroup_empty(m.as_ref(), Duration::from_millis(200));
            }
        }
        if st.pid != 0 {
            match signal_init(st, Signal::SIGKILL) {
                Ok(()) | Err(Error::WrongState { .. }) => {}
                Err(e) => return Err(e),
            }
            wait_gone(Pid::from_raw(st.pid), st.init_start_time)?;
        }
        Ok(())
    }

    fn destroy(&self, st: &ContainerState) -> Result<()> {
        if st.hooks.is_some() {
            crate::hooks::run_logged(
                st.hooks.as_ref(),
                crate::hooks::Stage::Poststop,
                &super::hook_state(st, Status::Stopped),
            );
        }
        if let Some(before) = st.host_mounts_below {
            super::host_mounts::detach_above(&st.rootfs, before)?;
        }
        if let Some(cfg) = &st.cgroup {
            cgroups::manager(cfg).and_then(|m| m.destroy()).map_err(cgroup_err)?;
        }
        if let Some(g) = &st.intel_rdt {
            crate::intelrdt::remove(g)?;
        }
        if let Some(p) = &st.pid_file {
            match std::fs::remove_file(p) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(Error::io(format!("remove pid file {}", p.display()), e))
                }
                _ => {}
            }
        }
        self.store().remove(&st.id)
    }
}

/// linux.netDevices back to the host, from the init's network namespace, before the init is
/// killed (with it would go the namespace). A failure is a warning: delete still cleans up the
/// rest, and the kernel hands physical devices back when the namespace goes.
fn return_net_devices(st: &ContainerState) {
    if st.net_devices.is_empty() {
        return;
    }
    let pid = Pid::from_raw(st.pid);
    if st.pid == 0 || !crate::procfs::is_alive(pid, st.init_start_time) {
        tracing::warn!(
            "container {}: its init has exited, and with it its network namespace: {:?} not moved back \
             (the kernel returns physical devices itself and destroys virtual ones)",
            st.id,
            st.net_devices.iter().map(|d| &d.host).collect::<Vec<_>>()
        );
        return;
    }
    let path = format!("/proc/{pid}/ns/net");
    let ns = nix::fcntl::open(
        path.as_str(),
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    );
    // The pid could have been reused between the check and the open: only move from the init's.
    let result = match ns {
        Ok(ns) if crate::procfs::is_alive(pid, st.init_start_time) => {
            crate::netdev::move_out(&st.net_devices, ns.as_fd())
        }
        Ok(_) => return,
        Err(e) => Err(Error::sys(format!("open {path}"), e)),
    };
    if let Err(e) = result {
        tracing::warn!("container {}: moving network devices back: {e}", st.id);
    }
}

/// Wait up to `limit` for the cgroup to hold no process (killed ones leave it as they exit).
fn wait_cgroup_empty(m: &dyn cgroups::Manager, limit: Duration) {
    let deadline = Instant::now() + limit;
    let mut pause = Duration::from_millis(1);
    while Instant::now() < deadline && !m.pids().unwrap_or_default().is_empty() {
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

/// Wait until the init has exited (a zombie counts: its parent reaps it, not us).
fn wait_gone(pid: Pid, start_time: u64) -> Result<()> {
    let deadline = Instant::now() + KILL_TIMEOUT;
    // A pidfd becomes readable when the process exits.
    let fd = match sys::pidfd_open(pid) {
        Ok(fd) => fd,
        Err(_) => return Ok(()),
    };
    while crate::procfs::is_alive(pid, start_time) {
        if Instant::now() > deadline {
            return Err(Error::Other(format!("process {pid} did not exit after SIGKILL")));
        }
        let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
        let _ = poll(&mut fds, PollTimeout::from(100u16));
    }
    Ok(())
}
