//! `--pidfd-socket PATH` (runc 1.2) on create, run and exec: once the process is set up, a pidfd
//! of it goes to whoever listens on the unix socket at PATH, as runc sends it: one message with
//! the fd as SCM_RIGHTS and, as data, runc's name for the kind of process ("standard" for a
//! container's init, "setns" for an exec'd one). With it the listener can signal or wait for
//! exactly that process, never a later one that reuses the pid.
//!
//! Connected in the runtime after the clone, so the process never holds the socket (the init
//! would keep it open until `start`). A failure fails the command, which then undoes what it made.

use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::path::Path;

use nix::unistd::Pid;

use crate::error::{Error, Result, SysContext};
use crate::sys;

/// Which process the pidfd is of; the payload runc writes for it.
#[derive(Debug, Clone, Copy)]
pub(super) enum Kind {
    Init,
    Exec,
}

impl Kind {
    fn payload(self) -> &'static str {
        match self {
            Kind::Init => "standard",
            Kind::Exec => "setns",
        }
    }
}

/// Send a pidfd of `pid` to the socket at `path`. `pid` is our child and not reaped yet, so it
/// names that process and no other while pidfd_open runs.
pub(super) fn send(path: &Path, pid: Pid, kind: Kind) -> Result<()> {
    let socket = UnixStream::connect(path).ctx(|| format!("connect to pidfd socket {}", path.display()))?;
    let pidfd = sys::pidfd_open(pid).map_err(|e| Error::sys(format!("open a pidfd of process {pid}"), e))?;
    crate::tty::send_fd(
        socket.as_fd(),
        pidfd.as_fd(),
        kind.payload(),
        &format!("the pidfd of process {pid} on {}", path.display()),
    )
}
