//! `start`: release a created container's init by reading its exec fifo.

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::time::Duration;

use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::stat::Mode;
use nix::unistd::Pid;

use super::{Runtime, Status};
use crate::error::{Error, Result, SysContext};
use crate::procfs;
use crate::state::EXEC_FIFO;

/// How often to check that the init still lives while waiting on the fifo.
const POLL_EVERY: Duration = Duration::from_millis(100);

impl Runtime {
    pub fn start(&self, id: &str) -> Result<()> {
        crate::id::validate(id)?;
        let _lock = self.store().lock(id)?;
        let st = self.store().load(id)?;
        let status = self.status(&st);
        if status != Status::Created {
            return Err(Error::WrongState {
                id: id.into(),
                op: "start",
                status: status.to_string(),
            });
        }
        let path = self.store().dir(id).join(EXEC_FIFO);
        // Non-blocking open: a blocking one would hang forever if the init died meanwhile.
        let fifo = nix::fcntl::open(
            &path,
            OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .ctx(|| format!("open {}", path.display()))?;
        let report = wait_for_exec(&fifo, &path, Pid::from_raw(st.pid), st.init_start_time, id);
        let _ = std::fs::remove_file(&path);
        let report = report?;
        if !report.is_empty() {
            return Err(Error::Init(String::from_utf8_lossy(&report).into_owned()));
        }
        if st.hooks.is_some() {
            crate::hooks::run_logged(
                st.hooks.as_ref(),
                crate::hooks::Stage::Poststart,
                &super::hook_state(&st, Status::Running),
            );
        }
        Ok(())
    }
}

/// Wait until the init closes its end of the exec fifo, and return what it wrote: nothing once
/// its execve succeeded (the fd is close-on-exec), or the message of what failed (a
/// startContainer hook, the exec itself).
fn wait_for_exec(fifo: &OwnedFd, path: &Path, pid: Pid, start_time: u64, id: &str) -> Result<Vec<u8>> {
    let mut report = Vec::new();
    loop {
        let mut fds = [PollFd::new(fifo.as_fd(), PollFlags::POLLIN)];
        let n = match poll(&mut fds, PollTimeout::from(POLL_EVERY.as_millis() as u16)) {
            Err(nix::errno::Errno::EINTR) => 0,
            r => r.ctx(|| format!("poll {}", path.display()))?,
        };
        if n > 0 {
            // Ready means data or the writer's close (POLLHUP); never before the init opened it.
            let mut buf = [0u8; 4096];
            match nix::unistd::read(fifo, &mut buf) {
                Ok(0) => return Ok(report),
                Ok(k) => report.extend_from_slice(&buf[..k]),
                Err(nix::errno::Errno::EAGAIN) => {}
                Err(e) => return Err(Error::sys(format!("read {}", path.display()), e)),
            }
        } else if !procfs::is_alive(pid, start_time) {
            return Err(Error::Init(format!("container {id} init exited before start")));
        }
    }
}
