//! TaskOOM: one thread per container waits on libcontainer's OOM watcher (the one `hezi
//! events` uses) and publishes an event whenever the kernel's oom_kill counter grows.

use std::os::fd::AsFd;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use libcontainer::cgroups::{OomWatch, OOM_COUNT_GRACE};
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
    // The baseline is taken here, in Create, before the container's program can run: taken on
    // the watcher thread, a kill that came before the thread first ran would count as old and
    // never be reported (CRI then says "Error", not "OOMKilled"; seen under load).
    let watch = libcontainer::cgroups::manager(&cfg).and_then(|m| OomWatch::new(&*m));
    let mut watch = match watch {
        Ok(w) => w,
        Err(e) => return log::warn!("no OOM events for {}: {e}", c.id),
    };
    *c.oom_stop.lock().unwrap_or_else(|p| p.into_inner()) = Some(stop_w);
    let id = c.id.clone();
    // The cgroup manager is made again on the thread: it is not Send.
    let spawned = thread::Builder::new().name("oom".into()).spawn(move || {
        let mgr = match libcontainer::cgroups::manager(&cfg) {
            Ok(m) => m,
            Err(e) => return log::warn!("no OOM events for {id}: {e}"),
        };
        loop {
            let mut fds = [
                PollFd::new(watch.as_fd(), PollFlags::POLLIN),
                PollFd::new(stop_r.as_fd(), PollFlags::POLLIN),
            ];
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) => {}
                Err(Errno::EINTR) => continue,
                Err(e) => return log::warn!("OOM watch of {id}: poll: {e}"),
            }
            let stopping = fds[1].revents().is_some_and(|r| !r.is_empty());
            // On the way out, one last look without waiting, so a kill that came just before
            // the container's end is still reported.
            let grace = if stopping { Duration::ZERO } else { OOM_COUNT_GRACE };
            if watch.check(&*mgr, grace) {
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
