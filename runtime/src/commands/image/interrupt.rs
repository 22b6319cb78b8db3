//! Ctrl-C (SIGINT) and SIGTERM during `image pull`, `push` and `import`: the transfer is asked
//! to stop (containerd_bridge::cancel), unwinds through its error path (temp files removed,
//! blobs and snapshots it brought collected, no record written), and hezi exits 128+N (130,
//! 143) as a shell expects of a process a signal ended. A second signal ends hezi at once,
//! for a read stuck on a registry that stopped answering (`image prune` removes what that
//! leaves).

use containerd_bridge::cancel;
use nix::sys::signal::{SigSet, Signal};

use crate::Failure;

/// Watch for SIGINT and SIGTERM from now on. Call before the transfer starts any thread: the
/// signals are blocked in the calling thread, and the threads it starts inherit that, so only
/// the watcher takes them.
pub fn watch() -> Result<(), Failure> {
    let mut set = SigSet::empty();
    set.add(Signal::SIGINT);
    set.add(Signal::SIGTERM);
    set.thread_block()
        .map_err(|e| Failure::Error(format!("block SIGINT and SIGTERM: {e}")))?;
    std::thread::spawn(move || {
        let Ok(first) = set.wait() else { return };
        cancel::request(first as i32);
        if let Ok(second) = set.wait() {
            // SAFETY: _exit ends the process without running anything of ours; nothing is
            // left half-written in memory that exit handlers would need to flush.
            unsafe { libc::_exit(128 + second as i32) };
        }
    });
    Ok(())
}

/// The transfer's result, unless a signal stopped it: then the exit status a shell expects,
/// with what happened. A transfer that finished before it saw the signal keeps its result.
pub fn outcome<T>(what: &str, r: Result<T, Failure>) -> Result<T, Failure> {
    match (cancel::requested(), r) {
        (Some(sig), Err(_)) => {
            let name = Signal::try_from(sig).map_or_else(|_| format!("signal {sig}"), |s| s.to_string());
            Err(Failure::ErrorExit(
                format!("{what} interrupted by {name}: nothing of it was kept"),
                128 + sig,
            ))
        }
        (_, r) => r,
    }
}
