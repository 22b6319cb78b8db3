//! TaskOOM: one thread per container waits on libcontainer's OOM notifier for its cgroup and
//! publishes an event whenever the kernel's oom_kill counter grows.

use std::os::fd::AsFd;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use libcontainer::cgroups::Manager;
use libcontainer::Runtime;
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use crate::container::Container;
use crate::events::Events;

/// Start watching `c`'s cgroup; the watcher ends when `c.oom_stop` is dropped or the cgroup goes.
pub fn watch(rt: &Runtime, c: &Container, events: Arc<Events>) {
    let cfg = match rt.store().load(&c.id) {
        Ok(st) => match st.cgroup {
            Some(cfg) => cfg,
            None => return,
        },
        Err(e) => {
            log::warn!("no OOM events for {}: {e}", c.id);
            return;
        }
    };
    let (stop_r, stop_w) = match nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC) {
        Ok(p) => p,
        Err(e) => {
            log::warn!("no OOM events for {}: pipe: {e}", c.id);
            return;
        }
    };
    *c.oom_stop.lock().unwrap_or_else(|p| p.into_inner()) = Some(stop_w);
    let id = c.id.clone();
    // The cgroup manager is made on the thread: it is not Send.
    let spawned = thread::Builder::new().name("oom".into()).spawn(move || {
        let mgr = match libcontainer::cgroups::manager(&cfg) {
            Ok(m) => m,
            Err(e) => return log::warn!("no OOM events for {id}: {e}"),
        };
        let notifier = match mgr.oom_notifier() {
            Ok(n) => n,
            Err(e) => return log::warn!("no OOM events for {id}: {e}"),
        };
        let mut last = mgr.oom_kill_count().unwrap_or(0);
        loop {
            let mut fds = [
                PollFd::new(notifier.as_fd(), PollFlags::POLLIN),
                PollFd::new(stop_r.as_fd(), PollFlags::POLLIN),
            ];
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) => {}
                Err(Errno::EINTR) => continue,
                Err(e) => return log::warn!("OOM watch of {id}: poll: {e}"),
            }
            let stopping = fds[1].revents().is_some_and(|r| !r.is_empty());
            notifier.drain();
            // The kernel signals an OOM before its killer has counted the kill: give the
            // counter a moment to catch up. On the way out, one last look, so a kill that
            // came just before the container's end is still reported.
            let grace = if stopping { Duration::ZERO } else { COUNT_GRACE };
            let grown = wait_for_growth(&*mgr, last, grace);
            if let Some(n) = grown {
                last = n;
                events.publish(crate::proto::events::Event::oom(&id));
            }
            // The cgroup is gone with the container, or the container is being deleted.
            if stopping || mgr.oom_kill_count().is_err() {
                return;
            }
        }
    });
    if let Err(e) = spawned {
        log::warn!("no OOM events for {}: {e}", c.id);
    }
}

/// How long after a wake-up the oom_kill counter may lag behind the notification.
const COUNT_GRACE: Duration = Duration::from_millis(200);

/// The oom_kill counter once it is above `last`, checked for up to `grace`; None if it stays.
fn wait_for_growth(mgr: &dyn Manager, last: u64, grace: Duration) -> Option<u64> {
    let deadline = Instant::now() + grace;
    loop {
        match mgr.oom_kill_count() {
            Ok(n) if n > last => return Some(n),
            Ok(_) if Instant::now() < deadline => thread::sleep(Duration::from_millis(10)),
            _ => return None,
        }
    }
}
