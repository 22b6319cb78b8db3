//! Process attributes applied before the privileges drop: hostname, sysctls, rlimits, oom score
//! by the init; personality, I/O priority and scheduler by the init and by `exec`'s child alike
//! (runc applies all three to exec'd processes too). CPU affinity is `affinity`'s.

use std::ffi::CString;

use oci_spec::runtime::{
    IOPriorityClass, LinuxPersonality, LinuxPersonalityDomain, LinuxSchedulerFlag, LinuxSchedulerPolicy,
    PosixRlimitType, Process, Spec,
};

use crate::error::{Error, Result, SysContext};

pub fn hostname(spec: &Spec) -> Result<()> {
    if let Some(h) = spec.hostname().as_deref().filter(|h| !h.is_empty()) {
        nix::unistd::sethostname(h).ctx(|| format!("set hostname {h:?}"))?;
    }
    if let Some(d) = spec.domainname().as_deref().filter(|d| !d.is_empty()) {
        // SAFETY: `d` is a valid buffer of the given length; setdomainname copies it.
        let r = unsafe { libc::setdomainname(d.as_ptr().cast(), d.len()) };
        if r != 0 {
            return Err(Error::sys(format!("set domainname {d:?}"), nix::errno::Errno::last()));
        }
    }
    Ok(())
}

pub fn sysctl(spec: &Spec) -> Result<()> {
    let Some(sysctl) = spec.linux().as_ref().and_then(|l| l.sysctl().as_ref()) else {
        return Ok(());
    };
    if sysctl.is_empty() {
        return Ok(());
    }
    let proc = crate::procfs::checked_root("sysctls")?;
    for (key, value) in sysctl {
        crate::procfs::write_beneath(&proc, &format!("sys/{}", key.replace('.', "/")), value)?;
    }
    Ok(())
}

/// Runs first in the init, while /proc is still the host's trusted one.
pub fn oom_score_adj(process: &Process) -> Result<()> {
    if let Some(v) = process.oom_score_adj() {
        std::fs::write("/proc/self/oom_score_adj", v.to_string()).ctx(|| format!("set oom_score_adj {v}"))?;
    }
    Ok(())
}

fn rlimit_resource(t: PosixRlimitType) -> i32 {
    (match t {
        PosixRlimitType::RlimitCpu => libc::RLIMIT_CPU,
        PosixRlimitType::RlimitFsize => libc::RLIMIT_FSIZE,
        PosixRlimitType::RlimitData => libc::RLIMIT_DATA,
        PosixRlimitType::RlimitStack => libc::RLIMIT_STACK,
        PosixRlimitType::RlimitCore => libc::RLIMIT_CORE,
        PosixRlimitType::RlimitRss => libc::RLIMIT_RSS,
        PosixRlimitType::RlimitNproc => libc::RLIMIT_NPROC,
        PosixRlimitType::RlimitNofile => libc::RLIMIT_NOFILE,
        PosixRlimitType::RlimitMemlock => libc::RLIMIT_MEMLOCK,
        PosixRlimitType::RlimitAs => libc::RLIMIT_AS,
        PosixRlimitType::RlimitLocks => libc::RLIMIT_LOCKS,
        PosixRlimitType::RlimitSigpending => libc::RLIMIT_SIGPENDING,
        PosixRlimitType::RlimitMsgqueue => libc::RLIMIT_MSGQUEUE,
        PosixRlimitType::RlimitNice => libc::RLIMIT_NICE,
        PosixRlimitType::RlimitRtprio => libc::RLIMIT_RTPRIO,
        PosixRlimitType::RlimitRttime => libc::RLIMIT_RTTIME,
    }) as i32
}

pub fn rlimits(process: &Process) -> Result<()> {
    for r in process.rlimits().iter().flatten() {
        let lim = libc::rlimit {
            rlim_cur: r.soft(),
            rlim_max: r.hard(),
        };
        // SAFETY: `lim` is a valid rlimit; the resource number comes from the table above.
        let ret = unsafe { libc::setrlimit(rlimit_resource(r.typ()) as _, &lim) };
        if ret != 0 {
            return Err(Error::sys(
                format!("set rlimit {:?} soft={} hard={}", r.typ(), r.soft(), r.hard()),
                nix::errno::Errno::last(),
            ));
        }
    }
    Ok(())
}

/// linux.personality, for the init and for every exec'd process. Its `flags` name nothing yet
/// (the spec defines none); runc ignores them with a warning, and so does
/// [`warn_personality_flags`].
pub fn personality(p: Option<&LinuxPersonality>) -> Result<()> {
    let Some(p) = p else { return Ok(()) };
    let persona = match p.domain() {
        LinuxPersonalityDomain::PerLinux => 0x0000,
        LinuxPersonalityDomain::PerLinux32 => 0x0008,
    };
    // SAFETY: personality(2) takes a plain integer.
    if unsafe { libc::personality(persona) } == -1 {
        return Err(Error::sys(
            format!("set personality {}", p.domain()),
            nix::errno::Errno::last(),
        ));
    }
    Ok(())
}

/// Said by the runtime (create, exec), where the log reaches the caller.
pub fn warn_personality_flags(p: Option<&LinuxPersonality>) {
    if let Some(flags) = p.and_then(|p| p.flags().as_ref()).filter(|f| !f.is_empty()) {
        tracing::warn!("ignoring personality flags {flags:?}: none is defined (runc ignores them too)");
    }
}

pub fn io_priority(process: &Process) -> Result<()> {
    let Some(p) = process.io_priority() else { return Ok(()) };
    let class: i64 = match p.class() {
        IOPriorityClass::IoprioClassRt => 1,
        IOPriorityClass::IoprioClassBe => 2,
        IOPriorityClass::IoprioClassIdle => 3,
    };
    const IOPRIO_WHO_PROCESS: i64 = 1;
    let value = (class << 13) | p.priority();
    // SAFETY: ioprio_set(2) with integer arguments, for the calling process (who = 0).
    if unsafe { libc::syscall(libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, value) } != 0 {
        return Err(Error::sys(
            format!("set I/O priority {value}"),
            nix::errno::Errno::last(),
        ));
    }
    Ok(())
}

/// The kernel's struct sched_attr (SCHED_ATTR_SIZE_VER1).
#[repr(C)]
#[derive(Default)]
struct SchedAttr {
    size: u32,
    policy: u32,
    flags: u64,
    nice: i32,
    priority: u32,
    runtime: u64,
    deadline: u64,
    period: u64,
    util_min: u32,
    util_max: u32,
}

pub fn scheduler(process: &Process) -> Result<()> {
    let Some(s) = process.scheduler() else { return Ok(()) };
    let policy = match s.policy() {
        LinuxSchedulerPolicy::SchedOther => 0,
        LinuxSchedulerPolicy::SchedFifo => 1,
        LinuxSchedulerPolicy::SchedRr => 2,
        LinuxSchedulerPolicy::SchedBatch => 3,
        LinuxSchedulerPolicy::SchedIso => 4,
        LinuxSchedulerPolicy::SchedIdle => 5,
        LinuxSchedulerPolicy::SchedDeadline => 6,
    };
    let mut flags = 0u64;
    for f in s.flags().iter().flatten() {
        flags |= match f {
            LinuxSchedulerFlag::SchedResetOnFork => 0x01,
            LinuxSchedulerFlag::SchedFlagReclaim => 0x02,
            LinuxSchedulerFlag::SchedFlagDLOverrun => 0x04,
            LinuxSchedulerFlag::SchedFlagKeepPolicy => 0x08,
            LinuxSchedulerFlag::SchedFlagKeepParams => 0x10,
            LinuxSchedulerFlag::SchedFlagUtilClampMin => 0x20,
            LinuxSchedulerFlag::SchedFlagUtilClampMax => 0x40,
        };
    }
    let attr = SchedAttr {
        size: std::mem::size_of::<SchedAttr>() as u32,
        policy,
        flags,
        nice: s.nice().unwrap_or(0),
        priority: s.priority().unwrap_or(0) as u32,
        runtime: s.runtime().unwrap_or(0),
        deadline: s.deadline().unwrap_or(0),
        period: s.period().unwrap_or(0),
        ..Default::default()
    };
    // SAFETY: `attr` is a valid sched_attr whose size field matches; pid 0 is the caller.
    if unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const SchedAttr, 0) } != 0 {
        return Err(Error::sys("set scheduler attributes", nix::errno::Errno::last()));
    }
    Ok(())
}

/// Give the container a session keyring of its own named after it (as runc does), so it cannot
/// read or change the keys of the session that started the runtime. Kernels without keyrings
/// (ENOSYS) or that refuse it to us (EACCES) are skipped, as runc does.
pub fn session_keyring(id: &str) -> Result<()> {
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
    const KEYCTL_SETPERM: libc::c_long = 5;
    let name = CString::new(id).map_err(|_| Error::InvalidArgument(format!("id {id:?} contains NUL")))?;
    // SAFETY: keyctl(2) with a NUL-terminated name; returns the new keyring's serial.
    let serial = unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, name.as_ptr()) };
    if serial < 0 {
        return match nix::errno::Errno::last() {
            nix::errno::Errno::ENOSYS | nix::errno::Errno::EACCES => Ok(()),
            e => Err(Error::sys("join a new session keyring", e)),
        };
    }
    // Possessor: all; user: view, read, search; group and other: nothing.
    const PERM: libc::c_long = 0x3f0b_0000;
    // SAFETY: keyctl(2) KEYCTL_SETPERM on the serial just returned, with integer arguments.
    if unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_SETPERM, serial, PERM) } < 0 {
        return Err(Error::sys("set session keyring permissions", nix::errno::Errno::last()));
    }
    Ok(())
}
