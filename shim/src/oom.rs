//! TaskOOM: one thread per container waits on libcontainer's OOM watcher (the one `hezi
//! events` uses) and publishes an event whenever the kernel's oom_kill counter grows.
//!
//! containerd's CRI marks a container OOMKilled only if TaskOOM arrives before its TaskExit
//! (the exit handler sets the reason once, "Error" unless OOM was seen). The watcher thread
//! alone cannot promise that: the kill, the reaper and the watcher race. So the init's exit
//! path looks at the counter itself, before the exit is published ([`before_exit`]); the
//! watch's count is shared under a lock, so a kill is reported once, by whoever sees it first.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use libcontainer::cgroups::OOM_COUNT_GRACE;
use libcontainer::container::OomEvents;
use libcontainer::Runtime;
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use crate::container::Container;
use crate::events::Events;
use crate::proto::events::Event;

/// One container's watch, shared by its watcher thread and its exit path.
pub struct Shared {
    id: String,
    watch: Mutex<OomEvents>,
    events: Arc<Events>,
}

impl Shared {
    /// One look at the counter: publish TaskOOM (under the lock, so the event is queued before
    /// whatever the caller publishes next) if it grew. True if it did.
    fn check(&self) -> bool {
        let mut watch = self.watch.lock().unwrap_or_else(|p| p.into_inner());
        match watch.check(Duration::ZERO) {
            Ok(true) => {
                self.events.publish(Event::oom(&self.id));
                true
            }
            Ok(false) => false,
            Err(e) => {
                log::warn!("OOM check of {}: {e}", self.id);
                false
            }
        }
    }
}

/// Start watching `c`'s cgroup; the watcher ends when `c.oom_stop` is dropped or the cgroup goes.
pub fn watch(rt: &Runtime, c: &Container, events: Arc<Events>) {
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
    let watch = match rt.oom_events(&c.id) {
        Ok(Some(w)) => w,
        // No cgroup of its own (rootless): nothing to watch.
        Ok(None) => return,
        Err(e) => return log::warn!("no OOM events for {}: {e}", c.id),
    };
    // The thread polls its own copy of the fd: the watch itself is under the lock.
    let fd = match watch.as_fd().try_clone_to_owned() {
        Ok(fd) => fd,
        Err(e) => return log::warn!("no OOM events for {}: dup: {e}", c.id),
    };
    let shared = Arc::new(Shared {
        id: c.id.clone(),
        watch: Mutex::new(watch),
        events,
    });
    *c.oom_stop.lock().unwrap_or_else(|p| p.into_inner()) = Some(stop_w);
    *c.oom.lock().unwrap_or_else(|p| p.into_inner()) = Some(Arc::clone(&shared));
    let spawned = thread::Builder::new()
        .name("oom".into())
        .spawn(move || run(&shared, &fd, &stop_r));
    if let Err(e) = spawned {
        log::warn!("no OOM events for {}: {e}", c.id);
    }
}

fn run(shared: &Shared, fd: &OwnedFd, stop: &OwnedFd) {
    let id = &shared.id;
    loop {
        let mut fds = [
            PollFd::new(fd.as_fd(), PollFlags::POLLIN),
            PollFd::new(stop.as_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(Errno::EINTR) => continue,
            Err(e) => return log::warn!("OOM watch of {id}: poll: {e}"),
        }
        let stopping = fds[1].revents().is_some_and(|r| !r.is_empty());
        // The v1 notification comes before the killer counts its victim: look again for a
        // while, without holding the lock between looks (the exit path must not wait on it).
        // On the way out, one last look only.
        let deadline = Instant::now() + if stopping { Duration::ZERO } else { OOM_COUNT_GRACE };
        while !shared.check() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(10));
        }
        // The cgroup is gone with the container, or the container is being deleted.
        let gone = shared.watch.lock().unwrap_or_else(|p| p.into_inner()).cgroup_gone();
        if stopping || gone {
            return;
        }
    }
}

/// Before the init's exit is published: report a kill the watcher has not (yet), so TaskOOM
/// reaches containerd first. The cgroup still exists here (Delete comes after the exit).
pub fn before_exit(c: &Container) {
    let shared = c.oom.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let Some(shared) = shared else { return };
    shared.check();
}
