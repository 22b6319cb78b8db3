//! What `events` and `ps` read from a container's cgroup: usage counters, OOM kills, and the
//! processes in it.

use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::unistd::Pid;

use super::pause::manager_of;
use super::{cgroup_err, Runtime, Status};
use crate::cgroups::{Manager, OomNotifier, Stats};
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
        let oom = match mgr.oom_notifier() {
            Ok(n) => Some(n),
            Err(e) => {
                // Stats still work without a memory controller; only OOM events are missing.
                tracing::warn!("events: no OOM notification for {id}: {e}");
                None
            }
        };
        let mut watch = OomWatch {
            mgr: mgr.as_ref(),
            seen: mgr.oom_kill_count().unwrap_or(0),
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
                    watch.report(&mut emit)?;
                    return Ok(());
                }
                Woke::Oom => {
                    if let Some(n) = &oom {
                        n.drain();
                    }
                    watch.report(&mut emit)?;
                }
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

/// The OOM kill counter last seen, so each wake-up reports only new kills.
struct OomWatch<'a> {
    mgr: &'a dyn Manager,
    seen: u64,
}

impl OomWatch<'_> {
    fn report(&mut self, emit: &mut impl FnMut(&Event) -> Result<()>) -> Result<()> {
        // The cgroup may be gone already: nothing more to report then.
        let Ok(now) = self.mgr.oom_kill_count() else {
            return Ok(());
        };
        if now > self.seen {
            self.seen = now;
            emit(&Event::Oom)?;
        }
        Ok(())
    }
}

enum Woke {
    Exit,
    Oom,
    Timeout,
}

fn wait(exit: &OwnedFd, oom: Option<&OomNotifier>, timeout: Duration) -> Result<Woke> {
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
