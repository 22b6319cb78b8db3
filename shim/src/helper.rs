//! Runs libcontainer's `create` and `exec` in a forked, single-threaded copy of the shim.
//!
//! Why not call them on a shim thread: they clone3 the container's process from the caller
//! with a raw syscall, which (unlike glibc's fork) does not take malloc's or anyone else's
//! locks first. In the multi-threaded shim the child could inherit a lock another thread
//! held at that instant and deadlock on its first allocation (`libcontainer::sys::clone3`
//! says so: "the caller must be single-threaded ... the shim forks a helper first"). glibc's
//! fork() does make malloc safe in the child, and the helper runs nothing but libcontainer.
//! It also gives the container process its stdio (dup2 onto 0-2 in the helper, inherited by
//! the clone), and keeps libcontainer's `set_dumpable(false)` and pid-namespace `setns` off the
//! shim process itself. The helper prints the new pid (or the error) on a pipe and exits; its
//! child is then reparented to the shim, a subreaper. No hezi binary is exec'd.

use std::io::{BufRead, BufReader};
use std::os::fd::{AsRawFd, OwnedFd};

use nix::unistd::{fork, ForkResult};

use crate::error::{Error, Result};
use crate::proto::rpc::Code;

/// The fds to make the process's stdin, stdout and stderr (`None`: /dev/null).
#[derive(Default)]
pub struct Stdio {
    pub stdin: Option<OwnedFd>,
    pub stdout: Option<OwnedFd>,
    pub stderr: Option<OwnedFd>,
}

/// Fork, set up stdio, run `f` (which returns the new process's pid) in the child, and return
/// that pid here. The caller holds the reaper's [`crate::reaper::SpawnGuard`]. An error keeps its
/// status code across the fork.
pub fn run(stdio: Stdio, f: impl FnOnce() -> Result<i32>) -> Result<i32> {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| Error::internal(format!("pipe for the helper: {e}")))?;
    let (mut reader, writer) = (std::fs::File::from(r), std::fs::File::from(w));
    let shim = nix::unistd::getpid();
    // SAFETY: the child only dup2s fds, runs libcontainer (which allocates: glibc's fork leaves
    // malloc usable in the child) and leaves through _exit, never returning into the shim's
    // threads' state. The shim's own locks are not touched on that path.
    match unsafe { fork() }.map_err(|e| Error::internal(format!("fork the helper: {e}")))? {
        ForkResult::Child => {
            drop(reader);
            // Die with the shim: a helper that outlived a killed shim would go on creating a
            // container nobody will clean up (containerd's `shim delete` may already have run).
            // Checked after it is set, in case the shim died first.
            if nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL).is_err()
                || nix::unistd::getppid() != shim
            {
                // SAFETY: as below, _exit leaves without touching the parent's state.
                unsafe { libc::_exit(1) }
            }
            let result = set_stdio(&stdio).map_err(Error::internal).and_then(|()| {
                drop(stdio);
                f()
            });
            let reply = format_reply(&result);
            let mut w = writer;
            let _ = std::io::Write::write_all(&mut w, reply.as_bytes());
            drop(w);
            // SAFETY: _exit ends the helper without running the shim's atexit handlers or
            // flushing buffers that belong to the parent.
            unsafe { libc::_exit(0) }
        }
        ForkResult::Parent { child } => {
            drop(writer);
            drop(stdio);
            // One line, not EOF: the container's process inherits the pipe's write end from the
            // helper and holds it until its execve (close-on-exec), which for an init waits
            // for Start. For the same reason a helper killed before it replied never shows as
            // EOF here: wait for its exit too, and read only what is there by then.
            wait_for_reply_or_exit(&reader, child)?;
            let mut reply = String::new();
            // A helper that exited without a reply leaves the pipe empty: never block on it then.
            let _ = nix::fcntl::fcntl(&reader, nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK));
            BufReader::new(&mut reader)
                .read_line(&mut reply)
                .or_else(|e| match e.kind() {
                    std::io::ErrorKind::WouldBlock => Ok(0),
                    _ => Err(Error::internal(format!("read the helper's reply: {e}"))),
                })?;
            parse_reply(reply.trim_end())
        }
    }
}

/// Block until the helper's reply can be read or the helper has exited (a pidfd becomes
/// readable when its process ends, reaped or not).
fn wait_for_reply_or_exit(reader: &std::fs::File, helper: nix::unistd::Pid) -> Result<()> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::os::fd::{AsFd, FromRawFd};
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1; nothing else is
    // touched. The helper is our unreaped child or already reaped (then ESRCH).
    let raw = unsafe { libc::syscall(libc::SYS_pidfd_open, helper.as_raw(), 0) };
    if raw < 0 {
        // Gone already (the reaper collected it): whatever it wrote is in the pipe.
        return Ok(());
    }
    // SAFETY: the syscall just returned this fd, and nothing else owns it.
    let pidfd = unsafe { OwnedFd::from_raw_fd(raw as i32) };
    loop {
        let mut fds = [
            PollFd::new(reader.as_fd(), PollFlags::POLLIN),
            PollFd::new(pidfd.as_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => return Ok(()),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(Error::internal(format!("wait for the helper: {e}"))),
        }
    }
}

/// One line: `ok PID`, or `err CODE MESSAGE` (the status code as a number, so the kind of a
/// libcontainer error made in the helper reaches containerd).
fn format_reply(result: &Result<i32>) -> String {
    match result {
        Ok(pid) => format!("ok {pid}\n"),
        Err(e) => format!("err {} {}\n", e.code as i32, e.message.replace('\n', " ")),
    }
}

fn parse_reply(reply: &str) -> Result<i32> {
    match reply.split_once(' ') {
        Some(("ok", pid)) => pid
            .parse()
            .map_err(|_| Error::internal(format!("helper: bad pid {pid:?}"))),
        Some(("err", rest)) => {
            let (code, msg) = rest.split_once(' ').unwrap_or((rest, ""));
            let code = code.parse().map_or(Code::Internal, Code::from_i32);
            Err(Error::new(code, msg))
        }
        _ => Err(Error::internal(format!("helper died without a reply ({reply:?})"))),
    }
}

/// Make `stdio` (`None`: /dev/null) this process's fds 0, 1 and 2.
pub fn set_stdio(stdio: &Stdio) -> std::result::Result<(), String> {
    let null = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(|e| format!("open /dev/null: {e}"))?;
    for (target, fd) in [(0, &stdio.stdin), (1, &stdio.stdout), (2, &stdio.stderr)] {
        let src = fd.as_ref().map_or(null.as_raw_fd(), |f| f.as_raw_fd());
        // SAFETY: dup2 onto a standard descriptor of this process (the helper, or the server
        // leaving containerd's pipes); the result clears close-on-exec, so a container process
        // made by the helper inherits it.
        if unsafe { libc::dup2(src, target) } < 0 {
            return Err(format!("dup2 onto fd {target}: {}", std::io::Error::last_os_error()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_keep_the_status_code() {
        assert_eq!(parse_reply(format_reply(&Ok(42)).trim_end()), Ok(42));
        let e = Error::new(Code::AlreadyExists, "container c already\nexists");
        assert_eq!(
            parse_reply(format_reply(&Err(e)).trim_end()),
            Err(Error::new(Code::AlreadyExists, "container c already exists"))
        );
        assert_eq!(parse_reply("err 99 odd").map_err(|e| e.code), Err(Code::Internal));
        assert!(parse_reply("").is_err());
    }
}
