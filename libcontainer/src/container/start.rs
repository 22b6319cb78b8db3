//! `start`: release a created container's init by reading its exec fifo.

use std::os::fd::AsFd;
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
        let pid = Pid::from_raw(st.pid);
        loop {
            let mut fds = [PollFd::new(fifo.as_fd(), PollFlags::POLLIN)];
            let n = poll(&mut fds, PollTimeout::from(POLL_EVERY.as_millis() as u16)).or_else(|e| {
                if e == nix::errno::Errno::EINTR {
                    Ok(0)
                } else {
                    Err(e)
                }
            });
            if n.ctx(|| format!("poll {}", path.display()))? > 0 {
                let mut byte = [0u8; 1];
                match nix::unistd::read(&fifo, &mut byte) {
                    Ok(1) => break,
                    Ok(_) | Err(nix::errno::Errno::EAGAIN) => {}
                    Err(e) => return Err(Error::sys(format!("read {}", path.display()), e)),
                }
            }
            if !procfs::is_alive(pid, st.init_start_time) {
                let _ = std::fs::remove_file(&path);
                return Err(Error::Init(format!("container {id} init exited before start")));
            }
        }
        std::fs::remove_file(&path).ctx(|| format!("remove {}", path.display()))?;
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
