//! One process the shim runs for containerd: a container's init (exec id "") or an exec'd
//! process. Holds its pid, its stdio, and its exit once the reaper has seen it; Wait blocks on
//! the condition variable until then.

use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use crate::io::{IoConfig, ProcessIo};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Exec'd process not started yet, or init created but not started.
    Created,
    Running,
    Stopped,
}

#[derive(Clone, Copy, Debug)]
pub struct Exit {
    pub code: u32,
    pub at: SystemTime,
}

pub struct State {
    pub pid: i32,
    pub phase: Phase,
    pub exit: Option<Exit>,
}

pub struct Process {
    pub exec_id: String,
    pub io_cfg: IoConfig,
    /// Exec'd processes only: the OCI process spec containerd sent.
    pub spec: Option<oci_spec::runtime::Process>,
    /// Held by Start while it makes the process and announces it, and by the exit handler
    /// before it announces the exit: TaskExit never overtakes TaskStart / TaskExecStarted.
    pub lifecycle: Mutex<()>,
    state: Mutex<State>,
    exited: Condvar,
    io: Mutex<Option<ProcessIo>>,
}

impl Process {
    pub fn new(exec_id: &str, io_cfg: IoConfig, spec: Option<oci_spec::runtime::Process>) -> Process {
        Process {
            exec_id: exec_id.to_string(),
            io_cfg,
            spec,
            lifecycle: Mutex::new(()),
            state: Mutex::new(State {
                pid: 0,
                phase: Phase::Created,
                exit: None,
            }),
            exited: Condvar::new(),
            io: Mutex::new(None),
        }
    }

    pub fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn pid(&self) -> i32 {
        self.state().pid
    }

    pub fn set_io(&self, io: ProcessIo) {
        *self.io.lock().unwrap_or_else(|p| p.into_inner()) = Some(io);
    }

    pub fn with_io<T>(&self, f: impl FnOnce(&ProcessIo) -> T) -> Option<T> {
        self.io.lock().unwrap_or_else(|p| p.into_inner()).as_ref().map(f)
    }

    /// Record the exit (first one wins) after the output has drained, and wake Wait.
    pub fn set_exited(&self, code: u32) -> Exit {
        // Outside the state lock: draining can take a moment and State must stay answerable.
        self.with_io(|io| {
            io.release_stdin();
            io.wait_output(Duration::from_secs(2))
        });
        let mut st = self.state();
        let exit = *st.exit.get_or_insert(Exit {
            code,
            at: SystemTime::now(),
        });
        st.phase = Phase::Stopped;
        self.exited.notify_all();
        exit
    }

    pub fn lifecycle(&self) -> MutexGuard<'_, ()> {
        self.lifecycle.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Wait up to `timeout` for the exit.
    pub fn wait_timeout(&self, timeout: Duration) -> Option<Exit> {
        let st = self.state();
        let (st, _) = self
            .exited
            .wait_timeout_while(st, timeout, |s| s.exit.is_none())
            .unwrap_or_else(|p| p.into_inner());
        st.exit
    }

    /// Block until the process has exited.
    pub fn wait(&self) -> Exit {
        let mut st = self.state();
        loop {
            if let Some(e) = st.exit {
                return e;
            }
            st = self.exited.wait(st).unwrap_or_else(|p| p.into_inner());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn wait_returns_the_first_exit() {
        let p = Arc::new(Process::new("", IoConfig::default(), None));
        let waiter = {
            let p = Arc::clone(&p);
            std::thread::spawn(move || p.wait().code)
        };
        p.set_exited(3);
        p.set_exited(9);
        assert_eq!(waiter.join().ok(), Some(3));
        assert_eq!(p.state().phase, Phase::Stopped);
    }
}
