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
            Status::Stopped => self.kill_leftovers(&st)?,
            // runc deletes a created container by killing its waiting init.
            Status::Created => self.kill_and_wait(&st)?,
            Status::Creating if force => {}
            s @ (Status::Running | Status::Paused | Status::Creating) => {
                if !force {
                    return Err(Error::WrongState {
                        id: id.into(),
                        op: "delete",
                        status: s.to_string(),
                    });
                }
                self.kill_and_wait(&st)?;
            }
        }
        self.destroy(&st)
    }

    fn kill_and_wait(&self, st: &ContainerState) -> Result<()> {
        let mgr = st
            .cgroup
            .as_ref()
            .map(cgroups::manager)
            .transpose()
            .map_err(cgroup_err)?;
        if let Some(m) = &mgr {
            // A frozen cgroup would hold the SIGKILL pending forever.
            m.kill_all(Signal::SIGKILL as i32).map_err(cgroup_err)?;
            let _ = m.thaw();
        }
        match signal_init(st, Signal::SIGKILL) {
            Ok(()) | Err(Error::WrongState { .. }) => {}
            Err(e) => return Err(e),
        }
        wait_gone(Pid::from_raw(st.pid), st.init_start_time)
    }

    /// Kill what a stopped container's cgroup still holds, as runc does before removing it: an
    /// init that shared another pid namespace leaves its children running (podman --pid host),
    /// and the cgroup cannot go while they live. With its own pid namespace there is nothing.
    fn kill_leftovers(&self, st: &ContainerState) -> Result<()> {
        let Some(cfg) = &st.cgroup else { return Ok(()) };
        let m = cgroups::manager(cfg).map_err(cgroup_err)?;
        if m.pids().map_err(cgroup_err)?.is_empty() {
            return Ok(());
        }
        m.kill_all(Signal::SIGKILL as i32).map_err(cgroup_err)?;
        // Removing the cgroup (destroy) waits for them to be gone.
        let _ = m.thaw();
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
        if let Some(cfg) = &st.cgroup {
            cgroups::manager(cfg).and_then(|m| m.destroy()).map_err(cgroup_err)?;
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
