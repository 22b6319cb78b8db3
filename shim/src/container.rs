//! One container of this shim: its bundle, its init and exec'd processes, and the operations
//! that make processes (create, exec start), each through the single-threaded helper.

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use libcontainer::{CreateOptions, ExecOptions, Runtime};
use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};

use crate::error::{Error, Result};
use crate::helper;
use crate::io::ProcessIo;
use crate::process::{Phase, Process};
use crate::reaper::SpawnGuard;

pub struct Container {
    pub id: String,
    pub bundle: PathBuf,
    /// We mounted `bundle/rootfs` (containerd passed mounts) and unmount it at delete.
    pub mounted_rootfs: bool,
    pub init: Arc<Process>,
    execs: Mutex<HashMap<String, Arc<Process>>>,
    /// Dropping it stops the OOM watcher.
    pub oom_stop: Mutex<Option<OwnedFd>>,
    /// The OOM watch, which the init's exit path checks too.
    pub oom: Mutex<Option<Arc<crate::oom::Shared>>>,
    /// Created from a checkpoint: what Start restores (taken by Start or Delete).
    pub restore: Mutex<Option<crate::service::checkpoint::PendingRestore>>,
}

/// A made process, to be registered with the reaper's pid map while the guard is held.
pub struct Spawned {
    pub pid: i32,
    pub guard: SpawnGuard,
    console: Option<OwnedFd>,
}

impl Container {
    pub fn new(id: &str, bundle: PathBuf, mounted_rootfs: bool, init: Arc<Process>) -> Container {
        Container {
            id: id.to_string(),
            bundle,
            mounted_rootfs,
            init,
            execs: Mutex::new(HashMap::new()),
            oom_stop: Mutex::new(None),
            oom: Mutex::new(None),
            restore: Mutex::new(None),
        }
    }

    /// The checkpoint a Create named, once (Start restores it; Delete drops it unstarted).
    pub fn take_restore(&self) -> Option<crate::service::checkpoint::PendingRestore> {
        self.restore.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    pub fn execs(&self) -> MutexGuard<'_, HashMap<String, Arc<Process>>> {
        self.execs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The process `exec_id` names ("" is the init).
    pub fn process(&self, exec_id: &str) -> Option<Arc<Process>> {
        if exec_id.is_empty() {
            Some(Arc::clone(&self.init))
        } else {
            self.execs().get(exec_id).cloned()
        }
    }
}

/// A socket pair for a terminal: the child end goes to libcontainer as the console socket, the
/// pty master arrives on ours.
fn console_pair(terminal: bool) -> Result<(Option<OwnedFd>, Option<OwnedFd>)> {
    if !terminal {
        return Ok((None, None));
    }
    let (ours, theirs) = socketpair(AddressFamily::Unix, SockType::Stream, None, SockFlag::SOCK_CLOEXEC)
        .map_err(|e| Error::internal(format!("console socket pair: {e}")))?;
    // Never hang a request on a master that does not come.
    let timeout = nix::sys::time::TimeVal::new(10, 0);
    nix::sys::socket::setsockopt(&ours, nix::sys::socket::sockopt::ReceiveTimeout, &timeout)
        .map_err(|e| Error::internal(format!("console socket timeout: {e}")))?;
    Ok((Some(ours), Some(theirs)))
}

/// Make a process through the helper: `make` gets the console pair's end for libcontainer (with
/// a terminal) and returns the new pid; ours receives the pty master later (`finish`). The
/// reaper's guard is held from before the fork until the pid is registered.
fn spawn_through_helper(
    stdio: helper::Stdio,
    terminal: bool,
    make: impl FnOnce(Option<OwnedFd>) -> Result<i32>,
) -> Result<Spawned> {
    let (ours, theirs) = console_pair(terminal)?;
    let guard = SpawnGuard::lock();
    let pid = helper::run(stdio, || make(theirs))?;
    Ok(Spawned {
        pid,
        guard,
        console: ours,
    })
}

/// Create container `id` from `bundle` with the init's stdio from `io`.
pub fn spawn_init(
    rt: &Runtime,
    id: &str,
    bundle: &std::path::Path,
    stdio: helper::Stdio,
    terminal: bool,
) -> Result<Spawned> {
    spawn_through_helper(stdio, terminal, |console_fd| {
        let opts = CreateOptions {
            bundle: bundle.to_path_buf(),
            console_fd,
            ..Default::default()
        };
        rt.create(id, &opts)
            .map(|c| c.pid.as_raw())
            .map_err(|e| Error::from_lc(format_args!("create container {id}"), e))
    })
}

/// Restore container `id` from the checkpoint at `image` with the init's stdio from `io` (CRIU
/// restores it as the helper's child; the shim, a subreaper, inherits it when the helper exits).
/// With a terminal, CRIU's new pty master arrives on the console pair as at create.
pub fn spawn_restore(
    rt: &Runtime,
    id: &str,
    bundle: &std::path::Path,
    image: &std::path::Path,
    stdio: helper::Stdio,
    terminal: bool,
) -> Result<Spawned> {
    spawn_through_helper(stdio, terminal, |console_fd| {
        let opts = libcontainer::checkpoint::RestoreOptions {
            image_path: image.to_path_buf(),
            bundle: Some(bundle.to_path_buf()),
            console: console_fd.map(libcontainer::checkpoint::Console::Fd),
            ..Default::default()
        };
        rt.restore(id, &opts)
            .map(|r| r.pid.as_raw())
            .map_err(|e| Error::from_lc(format_args!("restore container {id}"), e))
    })
}

/// Start exec'd process `p` in container `id`.
pub fn spawn_exec(rt: &Runtime, id: &str, p: &Process, stdio: helper::Stdio) -> Result<Spawned> {
    let spec = p.spec.clone().ok_or_else(|| {
        Error::new(
            crate::proto::rpc::Code::InvalidArgument,
            format!("exec {}: no process spec", p.exec_id),
        )
    })?;
    spawn_through_helper(stdio, p.io_cfg.terminal, |console_fd| {
        let opts = ExecOptions {
            process: spec,
            console_socket: None,
            console_fd,
            pid_file: None,
            ..Default::default()
        };
        rt.exec(id, &opts)
            .map(|e| e.pid.as_raw())
            .map_err(|e| Error::from_lc(format_args!("exec {} in container {id}", p.exec_id), e))
    })
}

impl Spawned {
    /// After the pid is registered: wire up the terminal if any, hand over the stdio, then let
    /// the reaper go (so an immediate exit already finds the output copies to wait for).
    pub fn finish(self, p: &Process, io: ProcessIo, phase: Phase) -> Result<()> {
        {
            let mut st = p.state();
            st.pid = self.pid;
            st.phase = phase;
        }
        let attached = match &self.console {
            Some(sock) => libcontainer::tty::recv_fd(std::os::fd::AsFd::as_fd(sock))
                .map_err(|e| format!("receive the terminal: {e}"))
                .and_then(|master| io.attach_console(master))
                .map_err(Error::internal),
            None => Ok(()),
        };
        p.set_io(io);
        drop(self.guard);
        attached
    }
}

/// How long Delete waits for the reaper to report an init that delete itself killed.
pub const DELETE_EXIT_WAIT: Duration = Duration::from_secs(5);
