//! The init side of `create`. It runs in the clone3'd child, on a copy of the parent's memory,
//! so it can use the parsed spec directly; it never returns.
//!
//! Order (runc's, which the kernel's rules dictate): wait for the parent (maps, cgroups) → become
//! root of the user namespace → join namespaces by path → cgroup and time namespaces → rootfs and
//! root switch → hostname, sysctls → readonly and masked paths → process attributes → cwd (see
//! process/cwd.rs) → user and capabilities → find the program → report ready → wait until the
//! runtime recorded our pid → seccomp → block on the exec fifo → exec. Without noNewPrivileges
//! the seccomp filter loads before the user and capabilities change.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;
use std::sync::atomic::{AtomicI32, Ordering};

use nix::fcntl::OFlag;
use nix::sys::signal::Signal;
use nix::sys::stat::Mode;
use oci_spec::runtime::Spec;

use super::channel::{Channel, Msg};
use super::cwd::Cwd;
use super::{attrs, privileges, program};
use crate::error::{Error, Result, SysContext};
use crate::hooks::Stage;
use crate::namespaces::{self, Plan};
use crate::rootfs::{self, cgroupfs::CgroupMounts};
use crate::sys;

pub struct InitArgs<'a> {
    pub id: &'a str,
    pub spec: &'a Spec,
    pub rootfs: &'a Path,
    pub bundle: &'a Path,
    pub plan: &'a Plan,
    pub channel: Channel,
    /// O_PATH fd of the exec fifo, reopened for writing through /proc/self/fd once set up.
    pub exec_fifo: OwnedFd,
    pub no_pivot: bool,
    pub preserve_fds: u32,
    pub listen_fds: u32,
    pub no_new_keyring: bool,
    /// Connected console socket, when process.terminal is set.
    pub console: Option<&'a OwnedFd>,
    /// linux.seccomp, compiled by the runtime.
    pub seccomp: Option<&'a crate::seccomp::Filter>,
    /// The v1 cgroups' `tasks` files, opened by the runtime: the init joins them itself
    /// (cgroups/join.rs).
    pub cgroup_tasks: Vec<(std::path::PathBuf, OwnedFd)>,
    /// The host's cgroup hierarchies as create found them (its CgroupConfig), for the
    /// container's view of /sys/fs/cgroup; None: read here.
    pub cgroup_layout: Option<&'a crate::cgroups::Layout>,
}

/// What is left to do once `start` releases the init.
struct Ready {
    /// State JSON for the startContainer hooks, when there are any hooks.
    state_json: Option<String>,
    program: CString,
    argv: Vec<CString>,
    envp: Vec<CString>,
}

pub fn run(mut args: InitArgs<'_>) -> ! {
    let cgroup_tasks = std::mem::take(&mut args.cgroup_tasks);
    match setup(&args, cgroup_tasks) {
        Ok(ready) => {
            // Past `Waiting` the parent may be gone; `start` hears of a failure through the fifo.
            // In the created state the init holds only its stdio and the fifo.
            let InitArgs {
                channel,
                exec_fifo,
                spec,
                ..
            } = args;
            // The log first: `create` returns when it sees the channel close.
            close_runtime_log();
            drop(channel);
            let _ = wait_and_exec(spec, exec_fifo, ready);
            std::process::exit(127);
        }
        Err(err) => {
            let _ = args.channel.send(&Msg::Failed(err.to_string()));
            std::process::exit(1);
        }
    }
}

fn setup(a: &InitArgs<'_>, cgroup_tasks: Vec<(std::path::PathBuf, OwnedFd)>) -> Result<Ready> {
    super::reset_signals()?;
    // Die with `create` if it dies before it has recorded our pid: no half-made container lives
    // on. A parent that died before this call shows as end-of-file on the next recv.
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).ctx(|| "set the parent-death signal".into())?;
    // Into the v1 cgroups first, while the runtime writes the id maps and the resources: the
    // cgroup namespace, the layout read below and every later allocation need it done.
    crate::cgroups::join_tasks(&cgroup_tasks).map_err(Error::Cgroup)?;
    drop(cgroup_tasks);
    let process = a
        .spec
        .process()
        .as_ref()
        .ok_or_else(|| Error::InvalidSpec("process is required".into()))?;
    attrs::oom_score_adj(process)?;
    match a.channel.recv()? {
        Some(Msg::Go) => {}
        other => {
            return Err(Error::Other(format!(
                "expected go-ahead from the runtime, got {other:?}"
            )))
        }
    }
    // An unprivileged parent cloned us dumpable, to write our id maps (launch.rs); they are
    // written now, and the rest of the setup is the runtime's code again (CVE-2019-5736).
    nix::sys::prctl::set_dumpable(false).ctx(|| "make the init non-dumpable".into())?;
    if a.plan.new_user || a.plan.user_before_clone.is_some() {
        // uid/gid 0 of the namespace: needed to create files and mount as "root" (joining one
        // kept our host ids, which it may not even map).
        nix::unistd::setresgid(0.into(), 0.into(), 0.into()).ctx(|| "setgid 0 in the user namespace".into())?;
        nix::unistd::setresuid(0.into(), 0.into(), 0.into()).ctx(|| "setuid 0 in the user namespace".into())?;
    }
    namespaces::join_all(a.plan)?;
    let wants_cgroup_mount = a
        .spec
        .mounts()
        .iter()
        .flatten()
        .any(|m| matches!(m.typ().as_deref(), Some("cgroup" | "cgroup2")));
    // Read the cgroup layout while /proc/self/cgroup still shows host paths.
    let cgroupns = a.plan.unshare_cgroup || a.plan.clone_flags & libc::CLONE_NEWCGROUP as u64 != 0;
    let cgroup_mounts = if wants_cgroup_mount {
        // A mount namespace joined by path may show other mounts than the runtime's.
        let known = a.cgroup_layout.filter(|_| a.plan.new_mount);
        Some(CgroupMounts::detect(cgroupns, known)?)
    } else {
        None
    };
    if a.plan.unshare_cgroup {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWCGROUP).ctx(|| "unshare cgroup namespace".into())?;
    }
    let in_userns = a.plan.in_user_ns();
    if a.plan.new_time {
        namespaces::enter_new_time(a.spec, in_userns)?;
    }
    nix::unistd::setsid().ctx(|| "setsid".into())?;
    let hooks = a.spec.hooks().as_ref();
    let wants_hooks = [
        Stage::Prestart,
        Stage::CreateRuntime,
        Stage::CreateContainer,
        Stage::StartContainer,
    ]
    .iter()
    .any(|stage| !crate::hooks::of(hooks, *stage).is_empty());
    let mut state_json = None;
    let mut before_pivot = || -> Result<()> {
        if !wants_hooks {
            return Ok(());
        }
        // The runtime runs prestart and createRuntime now, and sends the state JSON back.
        a.channel.send(&Msg::Hooks)?;
        let json = match a.channel.recv()? {
            Some(Msg::HooksDone(json)) => json,
            other => {
                return Err(Error::Other(format!(
                    "expected the runtime's hooks to finish, got {other:?}"
                )))
            }
        };
        crate::hooks::run(hooks, Stage::CreateContainer, &json)?;
        state_json = Some(json);
        Ok(())
    };
    let ask_runtime = rootfs::source::Ask(&a.channel);
    rootfs::prepare(
        &rootfs::Setup {
            spec: a.spec,
            rootfs: a.rootfs,
            bundle: a.bundle,
            no_pivot: a.no_pivot,
            // Device nodes are bound from the host's /dev where mknod is not allowed: in a user
            // namespace of the container's, or with the runtime itself in one (rootless podman).
            in_userns: in_userns || !namespaces::in_initial_user_ns(),
            host_mount_ns: namespaces::in_host_mount_ns(a.spec),
            cgroups: cgroup_mounts.as_ref(),
            runtime: in_userns.then_some(&ask_runtime as &dyn rootfs::source::Runtime),
        },
        &mut before_pivot,
    )?;
    if let Some(socket) = a.console {
        crate::tty::setup(socket, process.console_size(), true)?;
    }
    if a.plan.new_uts {
        attrs::hostname(a.spec)?;
    }
    attrs::sysctl(a.spec)?;
    // As runc: a missing cwd is made, after the root switch (so it lands inside the container)
    // and before a read-only root is remounted.
    make_cwd(process.cwd())?;
    rootfs::finish(a.spec)?;
    // The fifo is reopened through procfs when `start` comes; a failure then would reach
    // nobody (`start` sees only that the init died), so make sure now that it will work.
    check_fifo_reachable(&a.exec_fifo)?;
    if !a.no_new_keyring {
        attrs::session_keyring(a.id)?;
    }
    attrs::rlimits(process)?;
    attrs::personality(a.spec.linux().as_ref().and_then(|l| l.personality().as_ref()))?;
    attrs::io_priority(process)?;
    attrs::scheduler(process)?;
    // Checked by `create` already; set before any seccomp filter, which may deny it.
    if let Some(p) = a.spec.linux().as_ref().and_then(|l| l.memory_policy().as_ref()) {
        super::mempolicy::apply(&super::mempolicy::check(p)?)?;
    }
    // Nothing the runtime opened may reach the program (or the startContainer hooks), nor stay
    // open while the container waits for `start`: --preserve-fds keeps 3..3+N, and of ours only
    // the channel and the fifo (both close-on-exec) remain; everything opened after this is
    // close-on-exec. Before any filter is loaded, as runc does: profiles written before
    // close_range existed deny it (with EPERM, or ENOSYS as the default action).
    close_inherited_fds(a)?;
    // Without no_new_privs, loading a filter needs CAP_SYS_ADMIN, which the next step may drop:
    // load it now (as runc does), and the profile must then allow the rest of this setup
    // (seccomp/mod.rs lists those syscalls).
    let no_new_privs = process.no_new_privileges().unwrap_or(false);
    // runc's fixStdioPermissions: the console or pipes the runtime handed over belong to the
    // process user, before the uid changes (and before any filter).
    crate::tty::give_stdio_to(process.user().uid())?;
    // Before the filter and the uid change, as runc: both may forbid writing our /proc attrs.
    crate::lsm::apply_exec(process)?;
    // The cwd, entered and checked as root, before the filter (which may deny getcwd).
    let cwd = Cwd::enter_as_runtime(process.cwd())?;
    if !no_new_privs {
        crate::seccomp::install(a.seccomp, &a.channel)?;
    }
    privileges::apply(process, || cwd.enter_as_user())?;
    nix::sys::stat::umask(Mode::from_bits_truncate(process.user().umask().unwrap_or(0o022)));
    privileges::no_new_privs(process)?;
    let mut env: Vec<String> = super::env::for_process(process)?;
    if a.listen_fds > 0 {
        env.retain(|e| !e.starts_with("LISTEN_FDS=") && !e.starts_with("LISTEN_PID="));
        env.push(format!("LISTEN_FDS={}", a.listen_fds));
        env.push("LISTEN_PID=1".into());
    }
    let env = env.as_slice();
    let argv: &[String] = process.args().as_deref().unwrap_or(&[]);
    let program = program::lookup(&argv[0], env)?;
    let ready = Ready {
        state_json,
        program: program::path_cstring(&program)?,
        argv: program::cstrings(argv.iter().map(String::as_str))?,
        envp: program::cstrings(env.iter().map(String::as_str))?,
    };
    // Steps 4–6 of the exchange (channel.rs). Until the runtime has recorded our pid we die with
    // it: an init nobody knows of must never wait for a `start`, nor hold its cgroup.
    a.channel.send(&Msg::Ready)?;
    match a.channel.recv()? {
        Some(Msg::Recorded) => {}
        other => {
            return Err(Error::Other(format!(
                "expected the runtime to record the container's pid, got {other:?}"
            )))
        }
    }
    nix::sys::prctl::set_pdeathsig(None).ctx(|| "clear the parent-death signal".into())?;
    // With no_new_privs, as late as we can while a load error still reaches `create` (and a notify
    // fd reaches the runtime before it stops listening at Waiting). Under the filter from here:
    // sendmsg (the notify fd), send (Waiting), openat+write+close (exec fifo), the startContainer
    // hooks and execve, as in runc's init. Any profile that lets a program run allows these.
    if no_new_privs {
        crate::seccomp::install(a.seccomp, &a.channel)?;
    }
    a.channel.send(&Msg::Waiting)?;
    Ok(ready)
}

/// The runtime's log file (`--log`), which its `tracing` subscriber writes to; -1 for none.
static RUNTIME_LOG_FD: AtomicI32 = AtomicI32::new(-1);

/// Tell the init which fd is the runtime's log file: the init keeps it, for its own log lines,
/// until it waits for `start`, and closes it then.
pub fn set_runtime_log_fd(fd: RawFd) {
    RUNTIME_LOG_FD.store(fd, Ordering::Relaxed);
}

/// Close every fd beyond stdio, the preserved ones, the channel, the fifo and the log file: the
/// runtime's console socket, cgroup fd, whatever its caller let it inherit. Ours are used up.
fn close_inherited_fds(a: &InitArgs<'_>) -> Result<()> {
    let first = 3 + a.preserve_fds;
    let keep = [
        a.channel.as_fd().as_raw_fd(),
        a.exec_fifo.as_raw_fd(),
        RUNTIME_LOG_FD.load(Ordering::Relaxed),
    ];
    // SAFETY: the init never returns into the runtime's frames, so none of the runtime's
    // OwnedFds and Files (console socket, cgroup fd) is used or dropped after this; of the
    // init's own, only `keep`'s are open now.
    unsafe { sys::close_from_except(first, &keep) }.ctx(|| "close the runtime's file descriptors".into())?;
    sys::cloexec_from(first).ctx(|| "mark file descriptors close-on-exec".into())
}

/// Done with logging: waiting for `start`, the init holds only its stdio and the fifo.
fn close_runtime_log() {
    let fd = RUNTIME_LOG_FD.swap(-1, Ordering::Relaxed);
    if fd < 0 {
        return;
    }
    // The logger's File keeps the number: nothing may write through it from now on (the fifo
    // may get that number next).
    std::mem::forget(tracing::subscriber::set_default(
        tracing::subscriber::NoSubscriber::default(),
    ));
    // SAFETY: `fd` is the runtime's log file; the subscriber that owns its File is never called
    // again in this process (above) and never dropped (it is the global default).
    unsafe { libc::close(fd) };
}

/// Create the process's cwd (mode 0755) if it does not exist yet.
fn make_cwd(cwd: &Path) -> Result<()> {
    match std::fs::metadata(cwd) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(cwd)
            .ctx(|| format!("create cwd {}", cwd.display())),
        Err(e) => Err(Error::io(format!("stat cwd {}", cwd.display()), e)),
    }
}

/// Block until `start` opens the fifo, run the startContainer hooks, then exec. The fifo tells
/// `start` how that went: a successful execve closes it (O_CLOEXEC) with nothing written, so
/// `start` returns only once the program runs (and poststart hooks follow it); a failure writes
/// its message first. Returns only on failure.
fn wait_and_exec(spec: &Spec, exec_fifo: OwnedFd, r: Ready) -> Error {
    let path = fifo_path(&exec_fifo);
    let fifo = match nix::fcntl::open(path.as_str(), OFlag::O_WRONLY | OFlag::O_CLOEXEC, Mode::empty()) {
        Ok(fd) => fd,
        Err(e) => return Error::sys(format!("reopen the exec fifo through {path}"), e),
    };
    // Only the fifo opened for writing goes on: execve closes it, which tells `start`.
    drop(exec_fifo);
    let err = hooks_and_exec(spec, r);
    let msg = err.to_string();
    if !matches!(nix::unistd::write(&fifo, msg.as_bytes()), Ok(n) if n == msg.len()) {
        // Nobody reads the fifo any more: stderr is the only place left to report.
        eprintln!("hezi init: {msg}");
    }
    err
}

fn check_fifo_reachable(exec_fifo: &OwnedFd) -> Result<()> {
    let path = fifo_path(exec_fifo);
    match nix::sys::stat::stat(path.as_str()) {
        Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFIFO => Ok(()),
        Ok(_) => Err(Error::Other(format!("{path} is not the exec fifo: is /proc procfs?"))),
        Err(e) => Err(Error::sys(
            format!("reach the exec fifo through {path} (the container needs procfs at /proc, as with runc)"),
            e,
        )),
    }
}

/// The exec fifo's O_PATH fd as a path that opens the fifo itself (procfs' magic link).
fn fifo_path(exec_fifo: &OwnedFd) -> String {
    format!("/proc/self/fd/{}", exec_fifo.as_raw_fd())
}

fn hooks_and_exec(spec: &Spec, r: Ready) -> Error {
    if let Some(json) = &r.state_json {
        // A failing startContainer hook fails `start` and stops the container (the spec's MUST).
        if let Err(e) = crate::hooks::run(spec.hooks().as_ref(), Stage::StartContainer, json) {
            return e;
        }
    }
    // The fds were marked close-on-exec in `setup`, before the seccomp filter.
    match nix::unistd::execve(&r.program, &r.argv, &r.envp) {
        Err(e) => Error::sys(format!("exec {:?}", r.program), e),
        Ok(never) => match never {},
    }
}
