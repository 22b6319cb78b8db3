//! `exec`: run another process in a running container. The runtime joins the container's pid
//! namespace for its children (its own view is unchanged), clones one child straight into the
//! container's cgroup where cgroup v2 allows, and that child joins the other namespaces and execs.
//! The start itself is the launcher's (launch.rs), with exec's steps: the final CPU affinity,
//! the pid file and the pidfd at `Ready`.

use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;

use nix::fcntl::OFlag;
use nix::sched::CloneFlags;
use nix::sys::stat::Mode;
use nix::unistd::Pid;
use oci_spec::runtime::{LinuxNamespaceType, Process, Spec};

use super::launch::{Console, End, Launch, Steps};
use super::{cgroup_err, Runtime, Status};
use crate::cgroups::{self, TaskPlacement};
use crate::error::{Error, Result, SysContext};
use crate::process::affinity;
use crate::process::join::{self, JoinArgs};
use crate::process::spawn;
use crate::seccomp::ProcessInfo;
use crate::state::ContainerState;
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
        // A runtime that is not the host's root may not join the container's pid namespace (that
        // takes CAP_SYS_ADMIN in the container's user namespace), or may not return to its own
        // (root of podman's rootless namespace): an intermediate process joins the user
        // namespace and the pid namespace and clones the process from there (spawn.rs), which
        // then joins the rest.
        let via_intermediate = super::rootless::detect();
        let user_ns = match namespaces.first() {
            Some((flag, _)) if *flag == CloneFlags::CLONE_NEWUSER && via_intermediate => Some(namespaces.remove(0).1),
            _ => None,
        };
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
        // The child joins by itself (cgroups/join.rs): cloned into the v2 directory, writing
        // to the v1 tasks files first thing. Into a frozen cgroup only at the very end, by us:
        // a child frozen mid-setup could never report back.
        let join = match &placement {
            Some(p) if !paused => p.join_fds().map_err(cgroup_err)?,
            _ => None,
        };
        let placed_by_runtime = join.is_none();
        let (cgroup_fd, cgroup_tasks) = join.map(|j| (j.clone_into, j.tasks)).unwrap_or_default();
        let terminal = opts.process.terminal().unwrap_or(false);
        if terminal && opts.console_socket.is_none() && opts.console_fd.is_none() {
            return Err(Error::InvalidArgument(
                "exec with a terminal needs --console-socket".into(),
            ));
        }
        let console = Console::connect(terminal, opts.console_socket.as_deref(), opts.console_fd.as_ref())?;
        let join_pid_ns = if in_spec(LinuxNamespaceType::Pid) {
            Some(ns_fd("pid")?)
        } else {
            None
        };
        let mut steps = ExecSteps {
            id,
            st: &st,
            placement: placement.as_ref(),
            placed_by_runtime,
            paused,
            opts,
        };
        let launch = Launch {
            // A paused container's child is recorded, joins the frozen cgroup and execs after
            // `resume`; nobody waits for that.
            end: if paused { End::Recorded } else { End::Exec },
            seccomp: seccomp.as_ref(),
        };
        let personality = spec.linux().as_ref().and_then(|l| l.personality().as_ref());
        let filter = seccomp.as_ref();
        let pid = launch.start(
            &mut steps,
            || {
                if via_intermediate {
                    clone_through(id, user_ns, join_pid_ns, &opts.process, cgroup_fd.as_ref())
                } else {
                    clone_into(id, join_pid_ns, &opts.process, cgroup_fd.as_ref())
                }
            },
            // Moved in: the parent's copies of the namespace fds and the console close with it.
            move |channel| {
                join::run(JoinArgs {
                    process: &opts.process,
                    namespaces,
                    channel,
                    console: console.for_child(terminal, opts.console_fd.as_ref()),
                    preserve_fds: opts.preserve_fds,
                    seccomp: filter,
                    wait_for_cgroup: paused,
                    personality,
                    cgroup_tasks,
                })
            },
        )?;
        Ok(Execed { pid, terminal })
    }
}

/// clone3 the exec'd process: into the container's pid namespace (for our children only; we
/// return to our own at once, since while pid_for_children differs the kernel refuses new
/// threads, which the terminal relay needs), into `cgroup` (v2) when given, and born on
/// execCPUAffinity.initial if the process has one (our thread gets its own back).
/// [`clone_into`] for a runtime that is not the host's root: an intermediate joins `user_ns`
/// (when given) and the pid namespace, and clones the process as our child.
fn clone_through(
    id: &str,
    user_ns: Option<OwnedFd>,
    pid_ns: Option<OwnedFd>,
    process: &Process,
    cgroup: Option<&OwnedFd>,
) -> Result<Forked> {
    let initial_affinity = affinity::Initial::apply(process)?;
    let forked = spawn::clone_through(cgroup.map(|f| f.as_fd()), 0, "the exec process", || {
        if let Some(user_ns) = user_ns {
            nix::sched::setns(user_ns, CloneFlags::CLONE_NEWUSER)
                .ctx(|| format!("join the user namespace of container {id}"))?;
        }
        if let Some(target) = pid_ns {
            nix::sched::setns(target, CloneFlags::CLONE_NEWPID)
                .ctx(|| format!("join the pid namespace of container {id}"))?;
        }
        Ok(())
    })?;
    // The child keeps the initial affinity: the guard must not give it back there.
    if let Forked::Child = forked {
        std::mem::forget(initial_affinity);
    }
    Ok(forked)
}

fn clone_into(id: &str, pid_ns: Option<OwnedFd>, process: &Process, cgroup: Option<&OwnedFd>) -> Result<Forked> {
    let own_pid_ns = match pid_ns {
        Some(target) => {
            let own = nix::fcntl::open("/proc/self/ns/pid", OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())
                .ctx(|| "open /proc/self/ns/pid".into())?;
            nix::sched::setns(target, CloneFlags::CLONE_NEWPID)
                .ctx(|| format!("join the pid namespace of container {id}"))?;
            Some(own)
        }
        None => None,
    };
    let initial_affinity = affinity::Initial::apply(process)?;
    let forked = sys::clone3(0, cgroup.map(|f| f.as_fd())).ctx(|| "clone3 the exec process".into())?;
    match forked {
        // The child keeps the initial affinity: the guard must not give it back there.
        Forked::Child => std::mem::forget(initial_affinity),
        Forked::Parent(_) => {
            drop(initial_affinity);
            if let Some(own) = own_pid_ns {
                nix::sched::setns(own, CloneFlags::CLONE_NEWPID).ctx(|| "return to our own pid namespace".into())?;
            }
        }
    }
    Ok(forked)
}

/// exec's steps of the exchange (launch.rs).
struct ExecSteps<'a> {
    id: &'a str,
    st: &'a ContainerState,
    placement: Option<&'a TaskPlacement>,
    /// The child cannot join its cgroups itself; we move it (`add`).
    placed_by_runtime: bool,
    paused: bool,
    opts: &'a ExecOptions,
}

impl Steps for ExecSteps<'_> {
    /// Into its cgroup where the child cannot join by itself, unless the container is paused (a
    /// child frozen mid-setup could never report back; it joins at `Ready`).
    fn placed(&mut self, pid: Pid) -> Result<()> {
        if let (Some(p), true, false) = (self.placement, self.placed_by_runtime, self.paused) {
            p.add(pid.as_raw()).map_err(cgroup_err)?;
        }
        Ok(())
    }

    fn record(&mut self, pid: Pid) -> Result<()> {
        if self.paused {
            // Set up: in the cgroup it freezes with the rest, reads `Recorded` and execs once
            // resumed.
            if let Some(p) = self.placement {
                p.add(pid.as_raw()).map_err(cgroup_err)?;
            }
        }
        // In its cgroups by now (the child joins before it reports ready): moving a task may
        // reset its affinity, so the final one comes after.
        affinity::apply_final(pid, &self.opts.process)?;
        if let Some(path) = &self.opts.pidfd_socket {
            super::pidfd::send(path, pid, super::pidfd::Kind::Exec)?;
        }
        if let Some(p) = &self.opts.pid_file {
            super::write_pid_file(p, pid)?;
        }
        Ok(())
    }

    fn unrecord(&mut self) {
        if let Some(p) = &self.opts.pid_file {
            let _ = std::fs::remove_file(p);
        }
    }

    fn seccomp_info(&self, pid: Pid) -> ProcessInfo<'_> {
        ProcessInfo {
            oci_version: &self.st.oci_version,
            id: self.id,
            status: oci_spec::runtime::ContainerState::Running,
            pid: pid.as_raw(),
            init_pid: self.st.pid,
            bundle: &self.st.bundle,
            annotations: &self.st.annotations,
        }
    }

    fn failed(&self, why: String) -> Error {
        Error::Other(format!("exec in container {}: {why}", self.id))
    }
}
