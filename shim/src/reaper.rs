//! The SIGCHLD reaper. The shim is a subreaper, so every container process ends up as its child
//! (inits and exec'd processes are reparented to it when the short-lived helper that made them
//! exits). One thread collects every exit with `waitpid(-1)` and hands `(pid, status)` to the
//! service.
//!
//! A process can exit before whoever made it has recorded its pid. [`SpawnGuard`] closes that
//! race: the reaper only reaps while holding the same lock that a spawner holds from before the
//! fork until the new pid is registered, so an exit is never seen for a pid nobody knows yet.

use std::sync::{Mutex, MutexGuard};
use std::thread;

use nix::errno::Errno;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use signal_hook::consts::SIGCHLD;
use signal_hook::iterator::Signals;

static SPAWN_LOCK: Mutex<()> = Mutex::new(());

/// Held while a process is being made and registered: the reaper waits meanwhile.
pub struct SpawnGuard(#[allow(dead_code)] MutexGuard<'static, ()>);

impl SpawnGuard {
    pub fn lock() -> SpawnGuard {
        // A poisoned lock only means a panic elsewhere; the `()` it guards cannot be inconsistent.
        SpawnGuard(SPAWN_LOCK.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// A wait status as containerd reports it: the exit code, or 128 + the signal that killed it.
fn exit_code(status: WaitStatus) -> Option<(i32, u32)> {
    match status {
        WaitStatus::Exited(pid, code) => Some((pid.as_raw(), code as u32)),
        WaitStatus::Signaled(pid, sig, _) => Some((pid.as_raw(), 128 + sig as u32)),
        _ => None,
    }
}

/// Start the reaper thread; `on_exit(pid, code)` runs on it for every child that exits.
pub fn start(on_exit: impl Fn(i32, u32) + Send + 'static) -> std::io::Result<()> {
    let mut signals = Signals::new([SIGCHLD])?;
    thread::Builder::new().name("reaper".into()).spawn(move || {
        // The first pass also collects anything that exited before the handler was installed.
        loop {
            let exits = reap_all();
            for (pid, code) in exits {
                on_exit(pid, code);
            }
            // Blocks until the next SIGCHLD (coalesced ones included: reap_all drains them all).
            // The wake-up may carry no signal: a forked helper inherits the signal handler and
            // its own SIGCHLD writes to the same wake-up pipe. Reaping once more is harmless.
            signals.wait().for_each(drop);
        }
    })?;
    Ok(())
}

fn reap_all() -> Vec<(i32, u32)> {
    let _guard = SpawnGuard::lock();
    let mut exits = Vec::new();
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => break,
            Ok(status) => exits.extend(exit_code(status)),
            Err(Errno::EINTR) => continue,
            Err(e) => {
                log::warn!("waitpid: {e}");
                break;
            }
        }
    }
    exits
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::signal::Signal;

    #[test]
    fn codes_follow_containerd() {
        let p = Pid::from_raw(7);
        assert_eq!(exit_code(WaitStatus::Exited(p, 3)), Some((7, 3)));
        assert_eq!(
            exit_code(WaitStatus::Signaled(p, Signal::SIGKILL, false)),
            Some((7, 137))
        );
        assert_eq!(exit_code(WaitStatus::StillAlive), None);
    }
}
