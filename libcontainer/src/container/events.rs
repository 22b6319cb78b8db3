//! What `events` and `ps` read from a container's cgroup: usage counters, OOM kills, and the
//! processes in it.

use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::unistd::Pid;

use super::manager_of;
use super::{cgroup_err, Runtime, Status};
use crate::cgroups::{Manager, OomWatch, Stats, OOM_COUNT_GRACE};
use crate::error::{Error, Result};
use crate::state::ContainerState;
use crate::sys;

/// One event of `events`.
#[derive(Debug)]
pub enum Event {
    /// The periodic usage counters.
    Stats(Box<Stats>),
    /// The OOM killer killed a process in the container's cgroup.
    Oom,
}

impl Runtime {
    /// The container's usage counters (runc refuses a stopped container: its cgroup is empty).
    pub fn stats(&self, id: &str) -> Result<Stats> {
        let st = self.live(id, "get stats of")?;
        manager_of(&st)?.stats().map_err(cgroup_err)
    }

    /// The pids (host view) of every process in the container's cgroup.
    pub fn pids(&self, id: &str) -> Result<Vec<i32>> {
        let st = self.load(id)?;
        if st.cgroup.is_none() {
            return Ok(super::rootless::processes_without_cgroup(&st));
        }
        let mut pids = manager_of(&st)?.pids().map_err(cgroup_err)?;
        pids.sort_unstable();
        Ok(pids)
    }

    /// Call `emit` with a stats event every `interval` and an OOM event whenever the OOM killer
    /// kills in the container, until its init exits (or `emit` fails, e.g. stdout closed).
    pub fn events(&self, id: &str, interval: Duration, mut emit: impl FnMut(&Event) -> Result<()>) -> Result<()> {
        let st = self.live(id, "get events of")?;
        let mgr = manager_of(&st)?;
        // The init's pidfd turns readable when it exits: the end of the container.
        let exit = match sys::pidfd_open(Pid::from_raw(st.pid)) {
            Ok(fd) => fd,
            Err(Errno::ESRCH) => return Ok(()),
            Err(e) => return Err(Error::sys(format!("open pidfd of {}", st.pid), e)),
        };
        let mut oom = match OomWatch::new(mgr.as_ref()) {
            Ok(w) => Some(w),
            Err(e) => {
                // Stats still work without a memory controller; only OOM events are missing.
                tracing::warn!("events: no OOM notification for {id}: {e}");
                None
            }
        };
        let mut next = Instant::now();
        loop {
            let now = Instant::now();
            if now >= next {
                match mgr.stats() {
                    Ok(s) => emit(&Event::Stats(Box::new(s)))?,
                    // The cgroup went away with the container.
                    Err(_) if !crate::procfs::is_alive(Pid::from_raw(st.pid), st.init_start_time) => return Ok(()),
                    Err(e) => return Err(cgroup_err(e)),
                }
                next = now + interval;
            }
            match wait(&exit, oom.as_ref(), next - Instant::now().min(next))? {
                Woke::Exit => {
                    // An OOM kill of the init wakes both: report it before ending.
                    report(&mut oom, mgr.as_ref(), Duration::ZERO, &mut emit)?;
                    return Ok(());
                }
                Woke::Oom => report(&mut oom, mgr.as_ref(), OOM_COUNT_GRACE, &mut emit)?,
                Woke::Timeout => {}
            }
        }
    }

    /// Load a container that must be neither stopped nor still being created.
    fn live(&self, id: &str, op: &'static str) -> Result<ContainerState> {
        let st = self.load(id)?;
        let status = self.status(&st);
        if matches!(status, Status::Stopped | Status::Creating) {
            return Err(Error::WrongState {
                id: id.into(),
                op,
                status: status.to_string(),
            });
        }
        Ok(st)
    }
}

/// An OOM event when the watcher saw the oom_kill counter grow (within `grace`).
fn report(
    oom: &mut Option<OomWatch>,
    mgr: &dyn Manager,
    grace: Duration,
    emit: &mut impl FnMut(&Event) -> Result<()>,
) -> Result<()> {
    if oom.as_mut().is_some_and(|w| w.check(mgr, grace)) {
        emit(&Event::Oom)?;
    }
    Ok(())
}

enum Woke {
    Exit,
    Oom,
    Timeout,
}

fn wait(exit: &OwnedFd, oom: Option<&OomWatch>, timeout: Duration) -> Result<Woke> {
    let ms = u16::try_from(timeout.as_millis()).unwrap_or(u16::MAX);
    let mut fds = vec![PollFd::new(exit.as_fd(), PollFlags::POLLIN)];
    if let Some(n) = oom {
        fds.push(PollFd::new(n.as_fd(), PollFlags::POLLIN));
    }
    match poll(&mut fds, PollTimeout::from(ms)) {
        Ok(0) | Err(Errno::EINTR) => return Ok(Woke::Timeout),
        Ok(_) => {}
        Err(e) => return Err(Error::sys("poll the init's pidfd and the OOM notifier", e)),
    }
    let ready = |f: &PollFd| f.revents().is_some_and(|r| !r.is_empty());
    if ready(&fds[0]) {
        return Ok(Woke::Exit);
    }
    Ok(if fds.len() > 1 && ready(&fds[1]) {
        Woke::Oom
    } else {
        Woke::Timeout
    })
}
