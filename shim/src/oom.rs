//! TaskOOM: one thread per container waits on libcontainer's OOM notifier for its cgroup and
//! publishes an event whenever the kernel's oom_kill counter grows.

use std::os::fd::AsFd;
use std::sync::Arc;
use std::thread;

use containerd_shim::protos::events::task::TaskOOM;
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
            if fds[1].revents().is_some_and(|r| !r.is_empty()) {
                return;
            }
            notifier.drain();
            match mgr.oom_kill_count() {
                Ok(n) if n > last => {
                    last = n;
                    events.publish(TaskOOM {
                        container_id: id.clone(),
                        ..Default::default()
                    });
                }
                Ok(_) => {}
                // The cgroup is gone with the container.
                Err(_) => return,
            }
        }
    });
    if let Err(e) = spawned {
        log::warn!("no OOM events for {}: {e}", c.id);
    }
}
