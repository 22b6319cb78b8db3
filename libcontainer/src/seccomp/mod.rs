//! The OCI `linux.seccomp` object: checked and compiled by the runtime before the container's
//! process exists, loaded by that process as late as its privileges allow.
//!
//! - [`profile`]: the OCI object → libseccomp rules (pure, unit-tested);
//! - [`compile`]: rules → BPF program, by libseccomp;
//! - [`enosys`]: the stub in front of that program that gives ENOSYS to syscalls newer than the
//!   profile, so that libc falls back to older ones (as runc);
//! - [`kernel`]: seccomp(2) with our flags, and flag probing;
//! - [`notify`]: the SCMP_ACT_NOTIFY fd and the process state to `listenerPath`.
//!
//! Why libseccomp rather than a BPF generator of our own: the filter is a security boundary, and
//! the hard parts are architecture details that a small generator easily gets wrong and no test
//! on one machine catches — the x32 ABI sharing x86_64's audit arch (syscall numbers with bit 30
//! set must not slip past an x86_64 rule), socketcall/ipc multiplexing on 32-bit x86 and s390,
//! 64-bit argument compares done as two 32-bit loads, per-arch syscall tables for every name in
//! a profile. libseccomp is what runc, crun and the Go and Python tooling use, so profiles mean
//! the same under hezi. We keep the loading (seccomp(2)) ourselves: the flags then work whatever
//! libseccomp version is installed (WAIT_KILLABLE_RECV needs libseccomp 2.6 otherwise), and the
//! runtime never has to call into libseccomp in the container's process.
//!
//! # What the runtime itself calls under the filter
//!
//! The container's process loads the filter before the runtime's last steps, so any profile that
//! lets the program start must allow these. As of `process/init.rs` and `process/join.rs` (read
//! there and checked with strace on x86_64; update this list when the load moves). Throughout:
//! the allocator may call brk/mmap/munmap/mremap, and debug builds call fcntl(F_GETFD) before
//! each close. A syscall above the profile's highest named one gets ENOSYS (see [`enosys`]).
//!
//! Both the init and `exec`'s child mark their fds close-on-exec (close_range; the init first
//! closes the runtime's, also with close_range) and give their stdio to the process user
//! (fchown) before any filter is loaded, as runc does, so profiles that predate close_range
//! work.
//!
//! Init of `create`/`run`, `process.noNewPrivileges` false (loaded right after
//! `lsm::apply_exec`, before the user and capability change, which needs CAP_SYS_ADMIN):
//! - sendmsg: the notify fd to the runtime, only when a rule is SCMP_ACT_NOTIFY (`install`);
//! - only when the cwd refused root (EACCES, EPERM; entered and checked before the filter
//!   otherwise): chdir and getcwd right after setresuid (`process::cwd`);
//! - `privileges::apply`: prctl(PR_CAPBSET_READ) for every capability and prctl(PR_CAPBSET_DROP)
//!   for each one dropped, prctl(PR_SET_KEEPCAPS, 1), setgroups, setresgid, setresuid,
//!   prctl(PR_SET_KEEPCAPS, 0), capget (what the process holds, all it can grant), capget+capset
//!   three times (effective, permitted, inheritable),
//!   prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL) and PR_CAP_AMBIENT_RAISE per ambient one;
//! - umask;
//! - statx for each candidate of the PATH lookup of `args[0]`;
//! - sendto (Ready), recvmsg (Recorded: the runtime saved the pid), prctl(PR_SET_PDEATHSIG, 0);
//! - then as with noNewPrivileges true, below, from `Waiting`.
//!
//! Init, `process.noNewPrivileges` true (loaded last in the setup, after Recorded):
//! - sendmsg: the notify fd, only with SCMP_ACT_NOTIFY;
//! - send (sendto): Waiting on the init channel, then close (the channel);
//! - after `start`: openat of `/proc/self/fd/N`, the exec fifo's O_PATH fd (blocks until `start`
//!   opens it), then close (that O_PATH fd);
//! - each startContainer hook, through std's Command (posix_spawn): pipe2, prlimit64, mmap,
//!   rt_sigprocmask, clone3 (glibc falls back to clone on ENOSYS), munmap, close, write (the
//!   state to the hook's stdin), wait4 and clock_nanosleep (polling for the timeout), kill on a
//!   timeout; and then whatever the hook program itself calls;
//! - execve of the program;
//! - on a failure: write (the error to the fifo, or to stderr) and exit_group; a setup failure
//!   after the load instead sends Failed (sendto) on the channel, then exit_group.
//!
//! `exec`'s child, `process.noNewPrivileges` false (loaded after `lsm::apply_exec`):
//! - sendmsg (notify fd, with NOTIFY only); the same `privileges::apply` calls as the init;
//!   chdir and getcwd after setresuid as in the init, only for a cwd refused to root; umask;
//!   statx (PATH lookup);
//! - sendto (Ready), recvmsg (Recorded: the pid file is written; into a paused container, after
//!   the resume), prctl(PR_SET_PDEATHSIG, 0);
//! - execve; on a failure sendto (Failed) and exit_group.
//!
//! `exec`'s child, `process.noNewPrivileges` true (loaded last, after Recorded): sendmsg
//! (notify fd, with NOTIFY only), then execve; on a failure sendto (Failed) and exit_group.

pub mod compile;
pub mod enosys;
pub mod kernel;
pub mod notify;
pub mod profile;

use std::fmt;
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;

use libseccomp::ScmpAction;
use nix::errno::Errno;
use oci_spec::runtime::{Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompOperator};
use serde::Serialize;

use crate::process::channel::{Channel, Msg, PassedFd};
pub use notify::{Listener, ProcessInfo};
use profile::Profile;

/// What can go wrong between a profile and a loaded filter. Each names the syscall, action,
/// architecture or flag at fault.
#[derive(Debug)]
pub enum SeccompError {
    /// The profile asks for something impossible or contradictory.
    Invalid(String),
    /// libseccomp does not know the architecture (or cannot add it).
    UnsupportedArch {
        arch: String,
        source: libseccomp::error::SeccompError,
    },
    /// The running kernel does not know the filter flag.
    UnsupportedFlag {
        flag: &'static str,
    },
    /// libseccomp refused a rule.
    Rule {
        syscall: String,
        action: String,
        source: libseccomp::error::SeccompError,
    },
    /// Another libseccomp call failed.
    Libseccomp {
        what: String,
        source: libseccomp::error::SeccompError,
    },
    /// seccomp(2) refused the program.
    Load {
        flags: String,
        errno: Errno,
    },
    Sys {
        what: String,
        errno: Errno,
    },
    Io {
        what: &'static str,
        source: std::io::Error,
    },
    /// Talking to the notify listener failed.
    Listener {
        path: PathBuf,
        what: String,
        errno: Errno,
    },
}

impl fmt::Display for SeccompError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SeccompError::Invalid(m) => write!(f, "{m}"),
            SeccompError::UnsupportedArch { arch, source } => {
                if source.errno() == Some(libseccomp::error::SeccompErrno::EDOM) {
                    // libseccomp's EDOM: the arch's byte order differs from the native one.
                    write!(
                        f,
                        "architecture {arch} cannot share a filter with the native one (byte order)"
                    )
                } else {
                    write!(
                        f,
                        "architecture {arch} is not supported by libseccomp {}: {source}",
                        lib_version()
                    )
                }
            }
            SeccompError::UnsupportedFlag { flag } => write!(f, "filter flag {flag} is not supported by this kernel"),
            SeccompError::Rule {
                syscall,
                action,
                source,
            } => {
                write!(f, "add rule {action} for syscall {syscall}: {source}")
            }
            SeccompError::Libseccomp { what, source } => write!(f, "{what}: {source}"),
            SeccompError::Load { flags, errno } => {
                write!(f, "load the seccomp filter (flags: {flags}): {errno}")?;
                if *errno == Errno::EACCES {
                    write!(f, " (loading a filter needs no_new_privs or CAP_SYS_ADMIN)")?;
                }
                Ok(())
            }
            SeccompError::Sys { what, errno } => write!(f, "{what}: {errno}"),
            SeccompError::Io { what, source } => write!(f, "{what}: {source}"),
            SeccompError::Listener { path, what, errno } => {
                write!(f, "seccomp listener {}: {what}: {errno}", path.display())
            }
        }
    }
}

impl std::error::Error for SeccompError {}

impl From<SeccompError> for crate::Error {
    fn from(e: SeccompError) -> Self {
        match e {
            SeccompError::Invalid(_)
            | SeccompError::UnsupportedArch { .. }
            | SeccompError::UnsupportedFlag { .. }
            | SeccompError::Rule { .. } => crate::Error::InvalidSpec(format!("linux.seccomp: {e}")),
            other => crate::Error::Other(format!("seccomp: {other}")),
        }
    }
}

/// A compiled filter, ready to load. Built by the runtime before it clones the container's
/// process, so profile errors fail `create`/`exec` before anything runs, and the child only
/// makes one system call.
pub struct Filter {
    program: Vec<libc::sock_filter>,
    flags: libc::c_ulong,
    listener: Option<Listener>,
    skipped: Vec<String>,
}

impl fmt::Debug for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Filter")
            .field("instructions", &self.program.len())
            .field("flags", &flag_names(self.flags))
            .field("listener", &self.listener)
            .field("skipped", &self.skipped)
            .finish()
    }
}

impl Filter {
    pub fn compile(spec: &LinuxSeccomp) -> Result<Filter, SeccompError> {
        let profile = Profile::from_oci(spec)?;
        let program = compile::bpf(&profile)?;
        let flags = resolve_flags(&profile)?;
        let listener = match (profile.notify, spec.listener_path()) {
            (true, Some(path)) => Some(Listener {
                path: path.clone(),
                metadata: spec.listener_metadata().clone(),
            }),
            _ => None,
        };
        Ok(Filter {
            program,
            flags,
            listener,
            skipped: profile.skipped,
        })
    }

    /// Install the filter on the calling thread; the notify fd when the profile uses NOTIFY.
    pub fn load(&self) -> Result<Option<OwnedFd>, SeccompError> {
        kernel::load(&self.program, self.flags).map_err(|errno| SeccompError::Load {
            flags: flag_names(self.flags),
            errno,
        })
    }

    /// Where the notify fd goes, when the profile uses SCMP_ACT_NOTIFY.
    pub fn listener(&self) -> Option<&Listener> {
        self.listener.as_ref()
    }

    /// The seccomp(2) flags the filter loads with (for tests and the fuzz targets, as are the
    /// two below).
    #[cfg_attr(not(feature = "internals"), allow(dead_code))]
    pub fn flags(&self) -> libc::c_ulong {
        self.flags
    }

    #[cfg_attr(not(feature = "internals"), allow(dead_code))]
    pub fn instructions(&self) -> usize {
        self.program.len()
    }

    /// Syscall names of the profile that this host does not know (skipped, as runc does).
    #[cfg_attr(not(feature = "internals"), allow(dead_code))]
    pub fn skipped(&self) -> &[String] {
        &self.skipped
    }
}

/// The flags to load with. Absent `flags` means runc's default, SPEC_ALLOW where the kernel has
/// it (no forced speculative-store-bypass mitigation); an empty list means none.
fn resolve_flags(profile: &Profile) -> Result<libc::c_ulong, SeccompError> {
    let mut bits = 0;
    match &profile.flags {
        None => {
            if kernel::flag_supported(libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW) {
                bits |= libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW;
            }
        }
        Some(list) => {
            for flag in list {
                let (name, b) = kernel::flag_bits(*flag);
                if !kernel::flag_supported(b) {
                    return Err(SeccompError::UnsupportedFlag { flag: name });
                }
                if b == libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV && !profile.notify {
                    // The kernel only takes it with a listener; without NOTIFY it means nothing.
                    tracing::debug!("seccomp: {name} ignored: no SCMP_ACT_NOTIFY rule");
                    continue;
                }
                bits |= b;
            }
        }
    }
    if profile.notify {
        bits |= libc::SECCOMP_FILTER_FLAG_NEW_LISTENER;
        // TSYNC reports a failing thread by its id in the return value, which collides with the
        // listener fd; the kernel wants TSYNC_ESRCH with the pair.
        if bits & libc::SECCOMP_FILTER_FLAG_TSYNC != 0 {
            bits |= libc::SECCOMP_FILTER_FLAG_TSYNC_ESRCH;
        }
    }
    Ok(bits)
}

fn flag_names(bits: libc::c_ulong) -> String {
    let mut names: Vec<&str> = kernel::KNOWN_FLAGS
        .iter()
        .map(|f| kernel::flag_bits(*f))
        .filter(|(_, b)| bits & b != 0)
        .map(|(n, _)| n)
        .collect();
    if bits & libc::SECCOMP_FILTER_FLAG_NEW_LISTENER != 0 {
        names.push("SECCOMP_FILTER_FLAG_NEW_LISTENER");
    }
    if bits & libc::SECCOMP_FILTER_FLAG_TSYNC_ESRCH != 0 {
        names.push("SECCOMP_FILTER_FLAG_TSYNC_ESRCH");
    }
    if names.is_empty() {
        "none".into()
    } else {
        names.join("|")
    }
}

/// Load `filter` (if any) in the container's process; a notify fd goes to the runtime over the
/// init channel, to be forwarded to the listener (the process cannot reach the host's path).
pub fn install(filter: Option<&Filter>, channel: &Channel) -> crate::Result<()> {
    let Some(filter) = filter else {
        return Ok(());
    };
    if let Some(fd) = filter.load()? {
        // The fd is O_CLOEXEC (the kernel makes it so); ours closes when the message drops.
        channel.send(&Msg::SeccompFd(PassedFd(fd)))?;
    }
    Ok(())
}

/// Runtime side: send the notify fd the process passed up to the profile's listener.
pub fn forward(filter: &Filter, info: &ProcessInfo<'_>, fd: &PassedFd) -> crate::Result<()> {
    let listener = filter
        .listener()
        .ok_or_else(|| crate::Error::Other("got a seccomp notify fd but the profile has no listener".into()))?;
    let json = notify::message(listener, info)?;
    notify::send(listener, &json, fd.0.as_fd())?;
    Ok(())
}

/// The OCI name of a spec enum value, as written in config.json (SCMP_ARCH_X86_64, ...).
pub(crate) fn oci_name<T: Serialize + fmt::Debug>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        _ => format!("{value:?}"),
    }
}

/// An action as the OCI spells it, with its value where it has one.
pub(crate) fn action_name(a: ScmpAction) -> String {
    match a {
        ScmpAction::KillProcess => "SCMP_ACT_KILL_PROCESS".into(),
        ScmpAction::KillThread => "SCMP_ACT_KILL_THREAD".into(),
        ScmpAction::Trap => "SCMP_ACT_TRAP".into(),
        ScmpAction::Notify => "SCMP_ACT_NOTIFY".into(),
        ScmpAction::Errno(e) => format!("SCMP_ACT_ERRNO({e})"),
        ScmpAction::Trace(m) => format!("SCMP_ACT_TRACE({m})"),
        ScmpAction::Log => "SCMP_ACT_LOG".into(),
        ScmpAction::Allow => "SCMP_ACT_ALLOW".into(),
        other => format!("{other:?}"),
    }
}

fn lib_version() -> String {
    match libseccomp::ScmpVersion::current() {
        Ok(v) => format!("{}.{}.{}", v.major, v.minor, v.micro),
        Err(_) => "(unknown version)".into(),
    }
}

/// `features.linux.seccomp` of the OCI features document, as runc reports it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Features {
    pub enabled: bool,
    pub actions: Vec<String>,
    pub operators: Vec<String>,
    pub archs: Vec<String>,
    pub known_flags: Vec<String>,
    pub supported_flags: Vec<String>,
}

const ACTIONS: &[LinuxSeccompAction] = &[
    LinuxSeccompAction::ScmpActAllow,
    LinuxSeccompAction::ScmpActErrno,
    LinuxSeccompAction::ScmpActKill,
    LinuxSeccompAction::ScmpActKillProcess,
    LinuxSeccompAction::ScmpActKillThread,
    LinuxSeccompAction::ScmpActLog,
    LinuxSeccompAction::ScmpActNotify,
    LinuxSeccompAction::ScmpActTrace,
    LinuxSeccompAction::ScmpActTrap,
];

const OPERATORS: &[LinuxSeccompOperator] = &[
    LinuxSeccompOperator::ScmpCmpEq,
    LinuxSeccompOperator::ScmpCmpGe,
    LinuxSeccompOperator::ScmpCmpGt,
    LinuxSeccompOperator::ScmpCmpLe,
    LinuxSeccompOperator::ScmpCmpLt,
    LinuxSeccompOperator::ScmpCmpMaskedEq,
    LinuxSeccompOperator::ScmpCmpNe,
];

const ARCHS: &[Arch] = &[
    Arch::ScmpArchX86,
    Arch::ScmpArchX86_64,
    Arch::ScmpArchX32,
    Arch::ScmpArchArm,
    Arch::ScmpArchAarch64,
    Arch::ScmpArchMips,
    Arch::ScmpArchMips64,
    Arch::ScmpArchMips64n32,
    Arch::ScmpArchMipsel,
    Arch::ScmpArchMipsel64,
    Arch::ScmpArchMipsel64n32,
    Arch::ScmpArchPpc,
    Arch::ScmpArchPpc64,
    Arch::ScmpArchPpc64le,
    Arch::ScmpArchS390,
    Arch::ScmpArchS390x,
    Arch::ScmpArchParisc,
    Arch::ScmpArchParisc64,
    Arch::ScmpArchRiscv64,
    Arch::ScmpArchLoongarch64,
    Arch::ScmpArchM68k,
    Arch::ScmpArchSh,
    Arch::ScmpArchSheb,
];

/// What this build, this libseccomp and this kernel support.
pub fn features() -> Features {
    let mut actions: Vec<String> = ACTIONS
        .iter()
        .filter(|a| {
            profile::action(**a, None, "features")
                .map(compile::action_supported)
                .unwrap_or(false)
        })
        .map(oci_name)
        .collect();
    actions.sort();
    let mut operators: Vec<String> = OPERATORS.iter().map(oci_name).collect();
    operators.sort();
    let mut archs: Vec<String> = ARCHS
        .iter()
        .filter(|a| compile::arch_known(profile::arch(**a)))
        .map(oci_name)
        .collect();
    archs.sort();
    let flags: Vec<(&str, libc::c_ulong)> = kernel::KNOWN_FLAGS.iter().map(|f| kernel::flag_bits(*f)).collect();
    let known_flags = flags.iter().map(|(n, _)| n.to_string()).collect();
    let supported_flags = flags
        .iter()
        .filter(|(_, b)| kernel::flag_supported(*b))
        .map(|(n, _)| n.to_string())
        .collect();
    Features {
        enabled: true,
        actions,
        operators,
        archs,
        known_flags,
        supported_flags,
    }
}
