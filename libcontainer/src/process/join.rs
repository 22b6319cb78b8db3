//! The child side of `exec`: join the running container's namespaces, take on the process's
//! attributes, user and capabilities, exec. Its CPU affinity is set by the runtime (affinity.rs). Reports failure over the channel; success is the channel closing
//! on exec (its fd is close-on-exec), so even a failing execve is reported.

use std::ffi::CString;
use std::os::fd::OwnedFd;

use nix::sched::CloneFlags;
use nix::sys::signal::Signal;
use nix::sys::stat::Mode;
use oci_spec::runtime::{LinuxPersonality, Process};

use super::channel::{Channel, Msg};
use super::cwd::Cwd;
use super::{attrs, privileges, program};
use crate::error::{Error, Result, SysContext};
use crate::sys;

pub struct JoinArgs<'a> {
    pub process: &'a Process,
    /// Namespace fds of the container's init, in joining order (user first), pid excluded: the
    /// parent joined that one before cloning us.
    pub namespaces: Vec<(CloneFlags, OwnedFd)>,
    pub channel: Channel,
    pub console: Option<&'a OwnedFd>,
    pub preserve_fds: u32,
    /// The container's linux.seccomp, compiled by the runtime: exec'd processes get it too.
    pub seccomp: Option<&'a crate::seccomp::Filter>,
    /// The container is paused: once set up, ask the runtime to place us in its (frozen)
    /// cgroup and wait for the go-ahead, which we read only after `resume`.
    pub wait_for_cgroup: bool,
    /// The container's linux.personality: exec'd processes get it too, as in runc.
    pub personality: Option<&'a LinuxPersonality>,
    /// The v1 cgroups' `tasks` files, opened by the runtime: we join them ourselves first
    /// (cgroups/join.rs).
    pub cgroup_tasks: Vec<(std::path::PathBuf, OwnedFd)>,
}

pub fn run(a: JoinArgs<'_>) -> ! {
    let err = match setup(&a) {
        Ok((program, argv, envp)) => match nix::unistd::execve(&program, &argv, &envp) {
            Err(e) => Error::sys(format!("exec {program:?}"), e),
            Ok(never) => match never {},
        },
        Err(e) => e,
    };
    let _ = a.channel.send(&Msg::Failed(err.to_string()));
    std::process::exit(127);
}

type Prepared = (CString, Vec<CString>, Vec<CString>);

fn setup(a: &JoinArgs<'_>) -> Result<Prepared> {
    super::reset_signals()?;
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).ctx(|| "set the parent-death signal".into())?;
    // Into the container's v1 cgroups before anything else; the files close with the exec.
    crate::cgroups::join_tasks(&a.cgroup_tasks).map_err(Error::Cgroup)?;
    match a.channel.recv()? {
        Some(Msg::Go) => {}
        other => {
            return Err(Error::Other(format!(
                "expected go-ahead from the runtime, got {other:?}"
            )))
        }
    }
    for (flag, fd) in &a.namespaces {
        nix::sched::setns(fd, *flag).ctx(|| format!("join the container's namespace ({flag:?})"))?;
    }
    let p = a.process;
    if let Some(socket) = a.console {
        nix::unistd::setsid().ctx(|| "setsid".into())?;
        crate::tty::setup(socket, p.console_size(), false)?;
    }
    // The same attributes, in the same order, as the init's (init.rs).
    attrs::rlimits(p)?;
    attrs::personality(a.personality)?;
    attrs::io_priority(p)?;
    attrs::scheduler(p)?;
    // As in the init: without no_new_privs the filter needs CAP_SYS_ADMIN, so before the drop.
    let no_new_privs = p.no_new_privileges().unwrap_or(false);
    crate::lsm::apply_exec(p)?;
    // Nothing the runtime opened may reach the program; before any filter, as runc does
    // (profiles older than close_range deny it).
    sys::cloexec_from(3 + a.preserve_fds).map_err(|e| Error::sys("mark file descriptors close-on-exec", e))?;
    // runc's fixStdioPermissions: stdio belongs to the process user, before the uid changes.
    crate::tty::give_stdio_to(p.user().uid())?;
    // The cwd, entered and checked as root, before the filter (which may deny getcwd).
    let cwd = Cwd::enter_as_runtime(p.cwd())?;
    if !no_new_privs {
        crate::seccomp::install(a.seccomp, &a.channel)?;
    }
    privileges::apply(p, || cwd.enter_as_user())?;
    nix::sys::stat::umask(Mode::from_bits_truncate(p.user().umask().unwrap_or(0o022)));
    privileges::no_new_privs(p)?;
    let env: &[String] = &super::env::for_process(p)?;
    let argv: &[String] = p.args().as_deref().unwrap_or(&[]);
    let first = argv
        .first()
        .ok_or_else(|| Error::InvalidArgument("exec: no command given".into()))?;
    let path = program::lookup(first, env)?;
    let prepared = (
        program::path_cstring(&path)?,
        program::cstrings(argv.iter().map(String::as_str))?,
        program::cstrings(env.iter().map(String::as_str))?,
    );
    // Steps 2–4 of the exchange (channel.rs): until the runtime has recorded our pid (its pid
    // file) we die with it. A paused container's child stops tying its life to the runtime
    // first: frozen in the cgroup it reads `Recorded` only after `resume`.
    if a.wait_for_cgroup {
        nix::sys::prctl::set_pdeathsig(None).ctx(|| "clear the parent-death signal".into())?;
    }
    a.channel.send(&Msg::Ready)?;
    match a.channel.recv()? {
        Some(Msg::Recorded) => {}
        other => {
            return Err(Error::Other(format!(
                "expected the runtime to record the process's pid, got {other:?}"
            )))
        }
    }
    // pdeathsig survives execve; the program must not die because hezi exec -d exits.
    if !a.wait_for_cgroup {
        nix::sys::prctl::set_pdeathsig(None).ctx(|| "clear the parent-death signal".into())?;
    }
    // With no_new_privs, last: only sendmsg (a notify fd) and execve run under it.
    if no_new_privs {
        crate::seccomp::install(a.seccomp, &a.channel)?;
    }
    Ok(prepared)
}
