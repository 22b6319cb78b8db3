//! `exec`: run another process in a running container. The runtime joins the container's pid
//! namespace for its children (its own view is unchanged), clones one child straight into the
//! container's cgroup where cgroup v2 allows, and that child joins the other namespaces and execs.

use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;

use nix::fcntl::OFlag;
use nix::sched::CloneFlags;
use nix::sys::stat::Mode;
use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use oci_spec::runtime::{LinuxNamespaceType, Process, Spec};

use super::{cgroup_err, Runtime, Status};
use crate::cgroups;
use crate::error::{Error, Result, SysContext};
use crate::process::affinity;
use crate::process::channel::{self, Msg};
use crate::process::join::{self, JoinArgs};
use crate::sys::{self, Forked};

#[derive(Debug, Default)]
pub struct ExecOptions {
    pub process: Process,
    pub console_socket: Option<PathBuf>,
    /// An already connected console socket (`exec -t` in the foreground).
    pub console_fd: Option<OwnedFd>,
    pub pid_file: Option<PathBuf>,
    pub preserve_fds: u32,
    pub ignore_paused: bool,
    /// `--pidfd-socket`: where to send a pidfd of the process once it is set up.
    pub pidfd_socket: Option<PathBuf>,
    /// `--cgroup`: sub-cgroups of the container's cgroup to run the process in.
    pub sub_cgroups: cgroups::SubCgroups,
}

/// The process `exec` started; the caller is its parent.
#[derive(Debug, Clone, Copy)]
pub struct Execed {
    pub pid: Pid,
    pub terminal: bool,
}

/// The /proc/PID/ns name and setns flag of a namespace type, in the order the child joins them:
/// user first (the others are owned by it), mount last (it changes the root and cwd).
const JOIN_ORDER: &[(LinuxNamespaceType, &str, CloneFlags)] = &[
    (LinuxNamespaceType::User, "user", CloneFlags::CLONE_NEWUSER),
    (LinuxNamespaceType::Ipc, "ipc", CloneFlags::CLONE_NEWIPC),
    (LinuxNamespaceType::Uts, "uts", CloneFlags::CLONE_NEWUTS),
    (LinuxNamespaceType::Network, "net", CloneFlags::CLONE_NEWNET),
    (LinuxNamespaceType::Cgroup, "cgroup", CloneFlags::CLONE_NEWCGROUP),
    (
        LinuxNamespaceType::Time,
        "time",
        CloneFlags::from_bits_retain(libc::CLONE_NEWTIME),
    ),
    (LinuxNamespaceType::Mount, "mnt", CloneFlags::CLONE_NEWNS),
];

impl Runtime {
    /// The spec the container was created from (its bundle's config.json).
    pub fn spec_of(&self, id: &str) -> Result<Spec> {
        let st = self.load(id)?;
        crate::spec::parse_file(&st.bundle.join("config.json"))
    }

    pub fn exec(&self, id: &str, opts: &ExecOptions) -> Result<Execed> {
        let st = self.load(id)?;
        let paused = match self.status(&st) {
            Status::Running | Status::Created => false,
            Status::Paused if opts.ignore_paused => true,
            s => {
                return Err(Error::WrongState {
                    id: id.into(),
                    op: "exec in",
                    status: s.to_string(),
                })
            }
        };
        let spec = crate::spec::parse_file(&st.bundle.join("config.json"))?;
        crate::lsm::check_process(&opts.process)?;
        crate::process::attrs::warn_personality_flags(spec.linux().as_ref().and_then(|l| l.personality().as_ref()));
        // runc gives exec'd processes the container's seccomp filter: compile it before cloning.
        let seccomp = match spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
            Some(s) => Some(crate::seccomp::Filter::compile(s)?),
            None => None,
        };
        if paused && seccomp.as_ref().is_some_and(|f| f.listener().is_some()) {
            // The notify fd would reach the runtime only after `resume`, when it is gone.
            return Err(Error::InvalidArgument(format!(
                "exec --ignore-paused in container {id}: its seccomp profile has a listenerPath, whose \
                 notify fd cannot be handed over while the container is paused"
            )));
        }
        let in_spec = |t: LinuxNamespaceType| {
            spec.linux()
                .as_ref()
                .and_then(|l| l.namespaces().as_ref())
                .into_iter()
                .flatten()
                .any(|n| n.typ() == t)
        };
        let ns_fd = |name: &str| {
            let path = format!("/proc/{}/ns/{name}", st.pid);
            nix::fcntl::open(path.as_str(), OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())
                .ctx(|| format!("open {path}"))
        };
        let mut namespaces = Vec::new();
        for (t, name, flag) in JOIN_ORDER {
            if in_spec(*t) {
                namespaces.push((*flag, ns_fd(name)?));
            }
        }
        // Recheck after opening: the fds must belong to the init we checked, not a recycled pid.
        if !crate::procfs::is_alive(Pid::from_raw(st.pid), st.init_start_time) {
            return Err(Error::WrongState {
                id: id.into(),
                op: "exec in",
                status: "stopped".into(),
            });
        }
        // Where the process goes, checked before anything is made: a sub-cgroup outside the
        // container's, or missing, fails here.
        let placement = match &st.cgroup {
            Some(cfg) => Some(
                cgroups::manager(cfg)
                    .and_then(|m| m.task_placement(&opts.sub_cgroups))
                    .map_err(cgroup_err)?,
            ),
            None if !opts.sub_cgroups.is_empty() => {
                return Err(Error::InvalidArgument(format!(
                    "exec --cgroup: container {id} has no cgroup"
                )))
            }
            None => None,
        };
        // Into a frozen cgroup only at the very end: a child frozen mid-setup could never
        // report back.
        let cgroup_fd = match &placement {
            Some(p) if !paused => p.clone_fd().map_err(cgroup_err)?,
            _ => None,
        };
        // CVE-2019-5736: the child is this binary inside the container until its execve.
        // Non-dumpable (inherited by the clone, reset by execve), a container process cannot open
        // its /proc/PID/exe to overwrite the binary later.
        nix::sys::prctl::set_dumpable(false).ctx(|| "make the runtime non-dumpable".into())?;
        // Our own pid namespace, to return to once the child exists: while pid_for_children
        // differs from it, the kernel refuses to create threads (the terminal relay needs them).
        let own_pid_ns = if in_spec(LinuxNamespaceType::Pid) {
            let own = nix::fcntl::open("/proc/self/ns/pid", OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())
                .ctx(|| "open /proc/self/ns/pid".into())?;
            nix::sched::setns(ns_fd("pid")?, CloneFlags::CLONE_NEWPID)
                .ctx(|| format!("join the pid namespace of container {id}"))?;
            Some(own)
        } else {
            None
        };
        let terminal = opts.process.terminal().unwrap_or(false);
        let connected = match (&opts.console_socket, terminal) {
            (Some(path), true) if opts.console_fd.is_none() => Some(crate::tty::connect(path)?),
            (None, true) if opts.console_fd.is_none() => {
                return Err(Error::InvalidArgument(
                    "exec with a terminal needs --console-socket".into(),
                ))
            }
            _ => None,
        };
        let console = if terminal {
            connected.as_ref().or(opts.console_fd.as_ref())
        } else {
            None
        };
        let (parent_end, child_end) = channel::pair()?;
        // Born on execCPUAffinity.initial, if given; our thread gets its own back after the clone.
        let initial_affinity = affinity::Initial::apply(&opts.process)?;
        let pid =
            match sys::clone3(0, cgroup_fd.as_ref().map(|f| f.as_fd())).ctx(|| "clone3 the exec process".into())? {
                Forked::Child => {
                    drop(parent_end);
                    join::run(JoinArgs {
                        process: &opts.process,
                        namespaces,
                        channel: child_end,
                        console,
                        preserve_fds: opts.preserve_fds,
                        seccomp: seccomp.as_ref(),
                        wait_for_cgroup: paused,
                        personality: spec.linux().as_ref().and_then(|l| l.personality().as_ref()),
                    })
                }
                Forked::Parent(pid) => pid,
            };
        drop(initial_affinity);
        drop(child_end);
        drop(namespaces);
        if let Some(own) = own_pid_ns {
            nix::sched::setns(own, CloneFlags::CLONE_NEWPID).ctx(|| "return to our own pid namespace".into())?;
        }
        drop(connected);
        let fail = |e: Error| {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            let _ = waitpid(pid, None);
            e
        };
        if let (Some(p), None, false) = (&placement, &cgroup_fd, paused) {
            p.add(pid.as_raw()).map_err(cgroup_err).map_err(fail)?;
        }
        // In its cgroup now (a paused container's child joins it later, below): moving a task
        // may reset its affinity, so the final one comes after.
        if !paused {
            affinity::apply_final(pid, &opts.process).map_err(fail)?;
        }
        parent_end.send(&Msg::Go).map_err(|e| fail(parent_end.failure_or(e)))?;
        // The rest of the exchange (process/channel.rs): until `Recorded` the child dies with us.
        let mut recorded = false;
        loop {
            match parent_end.recv().map_err(fail)? {
                // The channel closed on exec: the program runs.
                None if recorded => break,
                Some(Msg::Ready) if !recorded => {
                    // Paused container: the child is set up; in the cgroup it freezes with the
                    // rest, reads `Recorded` and execs once resumed.
                    if paused {
                        if let Some(p) = &placement {
                            p.add(pid.as_raw()).map_err(cgroup_err).map_err(fail)?;
                        }
                        affinity::apply_final(pid, &opts.process).map_err(fail)?;
                    }
                    if let Some(path) = &opts.pidfd_socket {
                        super::pidfd::send(path, pid, super::pidfd::Kind::Exec).map_err(fail)?;
                    }
                    if let Some(p) = &opts.pid_file {
                        super::create::write_pid_file(p, pid).map_err(fail)?;
                    }
                    parent_end.send(&Msg::Recorded).map_err(fail)?;
                    recorded = true;
                    if paused {
                        break;
                    }
                }
                Some(Msg::Failed(m)) => {
                    let _ = waitpid(pid, None);
                    if let (Some(p), true) = (&opts.pid_file, recorded) {
                        let _ = std::fs::remove_file(p);
                    }
                    return Err(Error::Other(format!("exec in container {id}: {m}")));
                }
                Some(Msg::SeccompFd(fd)) => {
                    let Some(filter) = seccomp.as_ref() else {
                        return Err(fail(Error::Other(
                            "exec child sent a seccomp fd without a filter".into(),
                        )));
                    };
                    let info = crate::seccomp::ProcessInfo {
                        oci_version: &st.oci_version,
                        id,
                        status: oci_spec::runtime::ContainerState::Running,
                        pid: pid.as_raw(),
                        init_pid: st.pid,
                        bundle: &st.bundle,
                        annotations: &st.annotations,
                    };
                    crate::seccomp::forward(filter, &info, &fd).map_err(fail)?;
                }
                None => {
                    let _ = waitpid(pid, None);
                    return Err(Error::Other(format!(
                        "exec in container {id}: the process died during setup"
                    )));
                }
                Some(other) => {
                    return Err(fail(Error::Other(format!(
                        "unexpected message from exec child: {other:?}"
                    ))))
                }
            }
        }
        Ok(Execed { pid, terminal })
    }
}
