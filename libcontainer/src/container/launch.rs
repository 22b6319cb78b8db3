//! The parent side of starting a process, for every kind of start: a container's init
//! (`create`) and a process exec'd into a running container (`exec`); restore will be a third.
//!
//! A start is: a channel pair, the clone (the caller's: flags, cgroup, the namespaces it joins
//! first), then the exchange of process/channel.rs as a state machine:
//!
//! ```text
//!             placed (id maps, cgroup, affinity) ── Go ──▶
//! Setup:      ◀── Hooks            run the runtime's hooks ── HooksDone ──▶   (init only)
//!             ◀── MountSource      open it in the child's mount tree ── MountFd | Failed ──▶
//!             ◀── IdmapSource      make the idmapped mount ── MountFd | Failed ──▶
//!             ◀── SeccompFd        forward it to the profile's listener
//!             ◀── Ready            record the pid (state, pid file, pidfd) ── Recorded ──▶
//! Recorded:   ◀── SeccompFd        (noNewPrivileges: the filter is loaded after Recorded)
//!             End::Waiting:  ◀── Waiting, then the channel closes: the init waits for `start`
//!             End::Exec:     the channel closes (close-on-exec): the program runs
//!             End::Recorded: done at once (a paused container's child execs after resume)
//! any state:  ◀── Failed(why), or the channel closes early: the child is reaped, an error
//! ```
//!
//! Any failure kills and reaps the child before the error is returned, so a caller never holds
//! a half-started process. A new kind of start plugs in as another [`Steps`] implementation and a
//! clone closure.

use std::convert::Infallible;
use std::os::fd::OwnedFd;
use std::path::Path;

use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;

use crate::error::{Error, Result, SysContext};
use crate::process::channel::{self, Channel, Msg, PassedFd};
use crate::seccomp::{Filter, ProcessInfo};
use crate::sys::Forked;

/// Where the exchange ends once the child is recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum End {
    /// The init reports `Waiting` and closes the channel.
    Waiting,
    /// The child execs: the channel closes.
    Exec,
    /// Right after `Recorded`.
    Recorded,
}

/// What the caller does at the steps of the exchange.
pub(super) trait Steps {
    /// After the clone, before `Go`: whatever the child must find done (id maps, cgroups).
    fn placed(&mut self, pid: Pid) -> Result<()>;
    /// `Hooks`: run the runtime's own hooks, and return the state JSON for the child's.
    fn hooks(&mut self, _pid: Pid) -> Result<String> {
        Err(Error::Other("hooks asked for by a process that runs none".into()))
    }
    /// `Ready`: record the pid where it must be before the child may outlive us.
    fn record(&mut self, pid: Pid) -> Result<()>;
    /// The exchange failed after `record`: take back what it wrote that the caller's own cleanup
    /// does not (exec's pid file).
    fn unrecord(&mut self) {}
    /// The child is cloned dumpable (and turns non-dumpable itself at `Go`): an unprivileged
    /// parent must write its id maps.
    fn child_dumpable_until_go(&self) -> bool {
        false
    }
    /// Who the process is, for a seccomp listener.
    fn seccomp_info(&self, pid: Pid) -> ProcessInfo<'_>;
    /// The error for a failure the child reported (`why`), in the caller's words.
    fn failed(&self, why: String) -> Error;
}

/// A start's fixed parts.
pub(super) struct Launch<'a> {
    pub end: End,
    pub seccomp: Option<&'a Filter>,
}

impl Launch<'_> {
    /// Clone with `clone` and run `child` there (it never returns: `Infallible` stands for `!`,
    /// which closures cannot name yet); then run the exchange with
    /// `steps`. Returns the child's pid once the exchange ended well.
    pub fn start(
        &self,
        steps: &mut dyn Steps,
        clone: impl FnOnce() -> Result<Forked>,
        child: impl FnOnce(Channel) -> Infallible,
    ) -> Result<Pid> {
        let (parent_end, child_end) = channel::pair()?;
        // CVE-2019-5736: until its execve the child is this binary, and a process in the
        // container could open /proc/<child>/exe and later write the binary through it.
        // Non-dumpable (inherited by the clone, reset by execve), its exe, fds and memory need
        // CAP_SYS_PTRACE in the host's user namespace.
        //
        // An unprivileged caller that made a user namespace writes the child's uid_map and
        // gid_map while the child waits for `Go`; it may open them only while the child is
        // dumpable (a non-dumpable process's /proc files belong to the host's root). Then the
        // child starts dumpable and turns non-dumpable at `Go`, before any step of the setup,
        // as runc's nsexec does around its map request; no process of the container exists yet,
        // and the only one who may trace the child meanwhile is the caller itself.
        if !steps.child_dumpable_until_go() {
            nix::sys::prctl::set_dumpable(false).ctx(|| "make the runtime non-dumpable".into())?;
        }
        let pid = match clone()? {
            // The child never returns from its closure (its Infallible result is the proof).
            #[allow(unreachable_code)]
            Forked::Child => {
                drop(parent_end);
                match child(child_end) {}
            }
            Forked::Parent(pid) => {
                if let Err(e) = nix::sys::prctl::set_dumpable(false) {
                    let _ = kill(pid, Signal::SIGKILL);
                    let _ = waitpid(pid, None);
                    return Err(Error::sys("make the runtime non-dumpable", e));
                }
                // What the child closure owns (fds it was to inherit) is closed here, now.
                drop(child);
                pid
            }
        };
        drop(child_end);
        let mut run = Exchange {
            launch: self,
            steps,
            channel: parent_end,
            pid,
            recorded: false,
        };
        match run.go() {
            Ok(()) => Ok(pid),
            Err(e) => {
                if run.recorded {
                    run.steps.unrecord();
                }
                let _ = kill(pid, Signal::SIGKILL);
                let _ = waitpid(pid, None);
                Err(e)
            }
        }
    }
}

/// One exchange in progress (parent side).
struct Exchange<'a, 's> {
    launch: &'a Launch<'a>,
    steps: &'s mut dyn Steps,
    channel: Channel,
    pid: Pid,
    recorded: bool,
}

impl Exchange<'_, '_> {
    fn go(&mut self) -> Result<()> {
        self.steps.placed(self.pid)?;
        self.channel
            .send(&Msg::Go)
            .map_err(|e| self.failure_or(self.channel.failure_or(e)))?;
        loop {
            let msg = self.channel.recv()?;
            match (msg, self.recorded) {
                (Some(Msg::Ready), false) => {
                    self.steps.record(self.pid)?;
                    self.channel.send(&Msg::Recorded)?;
                    self.recorded = true;
                    if self.launch.end == End::Recorded {
                        return Ok(());
                    }
                }
                (Some(Msg::Hooks), false) => {
                    let json = self.steps.hooks(self.pid)?;
                    self.channel.send(&Msg::HooksDone(json))?;
                }
                (Some(Msg::MountSource(path)), false) => {
                    self.answer(crate::rootfs::source::open_for(self.pid, &path))?;
                }
                (Some(Msg::IdmapSource(req)), false) => {
                    self.answer(crate::rootfs::idmap::make(self.pid, &req))?;
                }
                (Some(Msg::SeccompFd(fd)), _) => self.forward(&fd)?,
                (Some(Msg::Waiting), true) if self.launch.end == End::Waiting => {
                    // The init closes the channel last of what it no longer needs: once it is
                    // gone, the container is in its created state.
                    return match self.channel.recv()? {
                        None => Ok(()),
                        Some(other) => Err(self
                            .steps
                            .failed(format!("unexpected message after Waiting: {other:?}"))),
                    };
                }
                (None, true) if self.launch.end == End::Exec => return Ok(()),
                (Some(Msg::Failed(why)), _) => return Err(self.steps.failed(why)),
                (None, _) => return Err(self.steps.failed("exited during setup".into())),
                (Some(other), _) => return Err(self.steps.failed(format!("unexpected message: {other:?}"))),
            }
        }
    }

    /// The reply to a mount request: the fd made, or why not (the child fails with it).
    fn answer(&self, made: Result<OwnedFd>) -> Result<()> {
        let reply = match made {
            Ok(fd) => Msg::MountFd(PassedFd(fd)),
            Err(e) => Msg::Failed(e.to_string()),
        };
        self.channel
            .send(&reply)
            .map_err(|e| self.failure_or(self.channel.failure_or(e)))
    }

    fn forward(&self, fd: &PassedFd) -> Result<()> {
        let filter = self
            .launch
            .seccomp
            .ok_or_else(|| self.steps.failed("sent a seccomp fd but there is no filter".into()))?;
        crate::seccomp::forward(filter, &self.steps.seccomp_info(self.pid), fd)
    }

    /// A send failed: the child's own report, if it left one, is the better error.
    fn failure_or(&self, e: Error) -> Error {
        match e {
            Error::Init(why) => self.steps.failed(why),
            e => e,
        }
    }
}

/// The console socket a start connects itself (`--console-socket PATH`) when the process has a
/// terminal and the caller did not hand over a connected one.
pub(super) struct Console {
    connected: Option<OwnedFd>,
}

impl Console {
    pub fn connect(terminal: bool, path: Option<&Path>, given: Option<&OwnedFd>) -> Result<Console> {
        let connected = match (path, terminal) {
            (Some(path), true) if given.is_none() => Some(crate::tty::connect(path)?),
            _ => None,
        };
        Ok(Console { connected })
    }

    /// The socket the child sends its pty master to, if it has a terminal.
    pub fn for_child<'a>(&'a self, terminal: bool, given: Option<&'a OwnedFd>) -> Option<&'a OwnedFd> {
        terminal.then(|| self.connected.as_ref().or(given)).flatten()
    }
}
