//! OOM notification: on v1 an eventfd registered for memory.oom_control through
//! cgroup.event_control; on v2 an inotify watch on memory.events. Either fd becomes readable
//! when an OOM may have happened (also when the cgroup goes away); the caller then reads the
//! `oom_kill` counter. [`OomWatch`] does both, for `events` and the shim alike.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::errno::Errno;

use super::{fs, CgroupError, Manager, Result};

/// An fd to poll for OOM events. Drop it to stop listening.
#[derive(Debug)]
pub struct OomNotifier {
    fd: OwnedFd,
    /// v1: memory.oom_control, open while the registration lives.
    _control: Option<std::fs::File>,
}

impl AsFd for OomNotifier {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl OomNotifier {
    /// Register an eventfd for `memory.oom_control` of the v1 memory cgroup `dir`.
    pub(crate) fn v1(dir: &Path) -> Result<OomNotifier> {
        // SAFETY: plain syscall with integer arguments.
        let raw = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if raw < 0 {
            return Err(CgroupError::Io {
                op: "eventfd for".into(),
                path: dir.join("memory.oom_control"),
                errno: Errno::last(),
            });
        }
        // SAFETY: the kernel just returned this fd and nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let control_path = dir.join("memory.oom_control");
        let control = std::fs::File::open(&control_path).map_err(|e| CgroupError::io("open", &control_path, &e))?;
        fs::write(
            &dir.join("cgroup.event_control"),
            &format!("{} {}", fd.as_raw_fd(), control.as_raw_fd()),
        )?;
        Ok(OomNotifier {
            fd,
            _control: Some(control),
        })
    }

    /// Watch `memory.events` of the v2 cgroup `dir`.
    pub(crate) fn v2(dir: &Path) -> Result<OomNotifier> {
        let events = dir.join("memory.events");
        // SAFETY: plain syscall with integer arguments.
        let raw = unsafe { libc::inotify_init1(libc::IN_CLOEXEC | libc::IN_NONBLOCK) };
        if raw < 0 {
            return Err(CgroupError::Io {
                op: "inotify_init1 for".into(),
                path: events,
                errno: Errno::last(),
            });
        }
        // SAFETY: the kernel just returned this fd and nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let c = std::ffi::CString::new(events.as_os_str().as_bytes())
            .map_err(|_| CgroupError::Invalid(format!("{} contains a NUL byte", events.display())))?;
        // SAFETY: `fd` is an inotify instance we own and `c` is NUL-terminated.
        let wd = unsafe { libc::inotify_add_watch(fd.as_raw_fd(), c.as_ptr(), libc::IN_MODIFY) };
        if wd < 0 {
            return Err(CgroupError::Io {
                op: "inotify_add_watch".into(),
                path: events,
                errno: Errno::last(),
            });
        }
        Ok(OomNotifier { fd, _control: None })
    }

    /// Consume what made the fd readable, so the next poll waits for a new event.
    pub fn drain(&self) {
        let mut buf = [0u8; 4096];
        loop {
            match nix::unistd::read(&self.fd, &mut buf) {
                Ok(n) if n > 0 => continue,
                Err(Errno::EINTR) => continue,
                _ => break,
            }
        }
    }
}

/// How long after a notification the oom_kill counter may lag behind it: the v1 eventfd fires
/// when the cgroup hits its limit, before the killer has chosen and counted its victim.
pub const OOM_COUNT_GRACE: Duration = Duration::from_millis(200);

/// One container's OOM watcher, shared by `events` and the shim: the notifier to poll, and the
/// oom_kill count last reported, so that each wake-up reports only new kills.
#[derive(Debug)]
pub struct OomWatch {
    notifier: OomNotifier,
    seen: u64,
}

impl AsFd for OomWatch {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.notifier.as_fd()
    }
}

impl OomWatch {
    /// Register for `mgr`'s cgroup; kills before this call are not reported.
    pub fn new(mgr: &dyn Manager) -> Result<OomWatch> {
        let notifier = mgr.oom_notifier()?;
        let seen = mgr.oom_kill_count()?;
        Ok(OomWatch { notifier, seen })
    }

    /// Call when the fd was readable (`grace` [`OOM_COUNT_GRACE`]), or once more at the
    /// container's end (`grace` zero): consumes the notification and waits up to `grace` for
    /// the counter to grow. True when there were new kills since the last true. A cgroup that
    /// is gone has nothing more to report.
    pub fn check(&mut self, mgr: &dyn Manager, grace: Duration) -> bool {
        self.notifier.drain();
        let deadline = Instant::now() + grace;
        loop {
            match mgr.oom_kill_count() {
                Ok(n) if n > self.seen => {
                    self.seen = n;
                    return true;
                }
                Ok(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
                _ => return false,
            }
        }
    }
}
