//! The OCI `linux.seccomp` object, checked and translated into libseccomp's terms: one default
//! action, the extra architectures, the requested flags and a flat list of rules. Nothing here
//! touches the kernel, so every translation rule is unit-tested.
//!
//! The semantics follow runc's, so that profiles written for runc (Docker's, Podman's,
//! Kubernetes' RuntimeDefault) mean the same here:
//! - ERRNO and TRACE without errnoRet return EPERM (TRACE passes it as the tracer's message);
//! - SCMP_ACT_KILL is SCMP_ACT_KILL_THREAD;
//! - a syscall name this host's libseccomp does not know is skipped (logged at debug): profiles
//!   list syscalls of newer kernels and of other architectures;
//! - a rule whose action equals the default action is dropped (libseccomp refuses it, and it
//!   changes nothing);
//! - SCMP_CMP_MASKED_EQ compares `(arg & value) == valueTwo`;
//! - when one rule compares the same argument twice, libseccomp cannot AND the two in one rule,
//!   so each comparison becomes a rule of its own (runc's long-standing behaviour: the rule then
//!   matches when any of them holds).

use libseccomp::{ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpSyscall};
use oci_spec::runtime::{Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompFilterFlag};
use oci_spec::runtime::{LinuxSeccompOperator, LinuxSyscall};

use super::{oci_name, SeccompError};

/// The kernel looks at six syscall arguments (struct seccomp_data.args).
const MAX_ARGS: usize = 6;

/// The syscall the init and the exec child use to hand the notify fd to the runtime: a NOTIFY
/// rule on it would block that very hand-over forever (runc refuses `write` for the same reason).
const FD_HANDOVER_SYSCALL: &str = "sendmsg";

/// One libseccomp rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub name: String,
    pub syscall: ScmpSyscall,
    pub action: ScmpAction,
    pub conditions: Vec<ScmpArgCompare>,
}

/// A checked `linux.seccomp`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    pub default_action: ScmpAction,
    /// Architectures to add besides the native one, in the spec's order.
    pub arches: Vec<(ScmpArch, String)>,
    /// `flags` as given; `None` (absent) lets the loader pick runc's default.
    pub flags: Option<Vec<LinuxSeccompFilterFlag>>,
    pub rules: Vec<Rule>,
    /// Names this host does not know, skipped.
    pub skipped: Vec<String>,
    /// Every syscall name of the profile, whatever its rule's action: what the profile knows of
    /// (see `enosys`).
    pub names: Vec<String>,
    /// Some rule uses SCMP_ACT_NOTIFY.
    pub notify: bool,
}

impl Profile {
    pub fn from_oci(spec: &LinuxSeccomp) -> Result<Profile, SeccompError> {
        let default_action = action(spec.default_action(), spec.default_errno_ret(), "defaultAction")?;
        if default_action == ScmpAction::Notify {
            return Err(SeccompError::Invalid(
                "SCMP_ACT_NOTIFY cannot be the default action: the runtime's own syscalls after \
                 loading the filter would wait for a listener that does not have the fd yet"
                    .into(),
            ));
        }
        let arches = spec
            .architectures()
            .iter()
            .flatten()
            .map(|a| (arch(*a), oci_name(a)))
            .collect();
        let mut profile = Profile {
            default_action,
            arches,
            flags: spec.flags().clone(),
            rules: Vec::new(),
            skipped: Vec::new(),
            names: Vec::new(),
            notify: false,
        };
        for (i, call) in spec.syscalls().iter().flatten().enumerate() {
            profile.add(call, i, default_action)?;
        }
        if profile.notify && !matches!(spec.listener_path(), Some(p) if !p.as_os_str().is_empty()) {
            return Err(SeccompError::Invalid(
                "SCMP_ACT_NOTIFY is used but linux.seccomp.listenerPath is not set".into(),
            ));
        }
        Ok(profile)
    }

    fn add(&mut self, call: &LinuxSyscall, index: usize, default_action: ScmpAction) -> Result<(), SeccompError> {
        let what = || format!("syscalls[{index}] ({})", call.names().join(", "));
        if call.names().is_empty() {
            // config-linux.md: names MUST contain at least one entry.
            return Err(SeccompError::Invalid(format!("syscalls[{index}]: names is empty")));
        }
        let act = action(call.action(), call.errno_ret(), &what())?;
        if act == ScmpAction::Notify {
            if let Some(name) = call.names().iter().find(|n| *n == FD_HANDOVER_SYSCALL) {
                return Err(SeccompError::Invalid(format!(
                    "SCMP_ACT_NOTIFY cannot be used for {name}: the runtime sends the notify fd with it"
                )));
            }
        }
        let conditions = conditions(call.args().as_deref().unwrap_or(&[]), &what)?;
        for name in call.names() {
            if name.is_empty() {
                return Err(SeccompError::Invalid(format!("{}: empty syscall name", what())));
            }
            self.names.push(name.clone());
            if act == default_action {
                tracing::debug!("seccomp: rule for {name} has the default action, dropped");
                continue;
            }
            let Ok(syscall) = ScmpSyscall::from_name(name) else {
                tracing::debug!("seccomp: syscall {name} is unknown on this host, skipped");
                self.skipped.push(name.clone());
                continue;
            };
            self.notify |= act == ScmpAction::Notify;
            for conds in &conditions {
                self.rules.push(Rule {
                    name: name.clone(),
                    syscall,
                    action: act,
                    conditions: conds.clone(),
                });
            }
        }
        Ok(())
    }
}

/// An OCI action with its errnoRet, as libseccomp's action. `what` names the rule in errors.
pub fn action(a: LinuxSeccompAction, errno_ret: Option<u32>, what: &str) -> Result<ScmpAction, SeccompError> {
    let ret = |default: u32| -> Result<u16, SeccompError> {
        let v = errno_ret.unwrap_or(default);
        // SECCOMP_RET_DATA is the low 16 bits of the filter's return value.
        u16::try_from(v).map_err(|_| {
            SeccompError::Invalid(format!(
                "{what}: errnoRet {v} of {} does not fit in 16 bits",
                oci_name(&a)
            ))
        })
    };
    let takes_errno = matches!(a, LinuxSeccompAction::ScmpActErrno | LinuxSeccompAction::ScmpActTrace);
    if let (Some(v), false) = (errno_ret, takes_errno) {
        // config-linux.md: errnoRet is only for actions that return an errno.
        return Err(SeccompError::Invalid(format!(
            "{what}: errnoRet {v} is only valid with SCMP_ACT_ERRNO or SCMP_ACT_TRACE, not {}",
            oci_name(&a)
        )));
    }
    Ok(match a {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => ScmpAction::KillThread,
        LinuxSeccompAction::ScmpActKillProcess => ScmpAction::KillProcess,
        LinuxSeccompAction::ScmpActTrap => ScmpAction::Trap,
        LinuxSeccompAction::ScmpActErrno => ScmpAction::Errno(i32::from(ret(libc::EPERM as u32)?)),
        LinuxSeccompAction::ScmpActTrace => ScmpAction::Trace(ret(libc::EPERM as u32)?),
        LinuxSeccompAction::ScmpActLog => ScmpAction::Log,
        LinuxSeccompAction::ScmpActNotify => ScmpAction::Notify,
        LinuxSeccompAction::ScmpActAllow => ScmpAction::Allow,
    })
}

pub fn arch(a: Arch) -> ScmpArch {
    match a {
        Arch::ScmpArchNative => ScmpArch::Native,
        Arch::ScmpArchX86 => ScmpArch::X86,
        Arch::ScmpArchX86_64 => ScmpArch::X8664,
        Arch::ScmpArchX32 => ScmpArch::X32,
        Arch::ScmpArchArm => ScmpArch::Arm,
        Arch::ScmpArchAarch64 => ScmpArch::Aarch64,
        Arch::ScmpArchMips => ScmpArch::Mips,
        Arch::ScmpArchMips64 => ScmpArch::Mips64,
        Arch::ScmpArchMips64n32 => ScmpArch::Mips64N32,
        Arch::ScmpArchMipsel => ScmpArch::Mipsel,
        Arch::ScmpArchMipsel64 => ScmpArch::Mipsel64,
        Arch::ScmpArchMipsel64n32 => ScmpArch::Mipsel64N32,
        Arch::ScmpArchPpc => ScmpArch::Ppc,
        Arch::ScmpArchPpc64 => ScmpArch::Ppc64,
        Arch::ScmpArchPpc64le => ScmpArch::Ppc64Le,
        Arch::ScmpArchS390 => ScmpArch::S390,
        Arch::ScmpArchS390x => ScmpArch::S390X,
        Arch::ScmpArchParisc => ScmpArch::Parisc,
        Arch::ScmpArchParisc64 => ScmpArch::Parisc64,
        Arch::ScmpArchRiscv64 => ScmpArch::Riscv64,
        Arch::ScmpArchLoongarch64 => ScmpArch::Loongarch64,
        Arch::ScmpArchM68k => ScmpArch::M68k,
        Arch::ScmpArchSh => ScmpArch::Sh,
        Arch::ScmpArchSheb => ScmpArch::Sheb,
    }
}

/// One comparison.
pub fn compare(arg: &LinuxSeccompArg, what: &dyn Fn() -> String) -> Result<ScmpArgCompare, SeccompError> {
    if arg.index() >= MAX_ARGS {
        return Err(SeccompError::Invalid(format!(
            "{}: argument index {} is out of range (0 to {})",
            what(),
            arg.index(),
            MAX_ARGS - 1
        )));
    }
    let op = match arg.op() {
        LinuxSeccompOperator::ScmpCmpNe => ScmpCompareOp::NotEqual,
        LinuxSeccompOperator::ScmpCmpLt => ScmpCompareOp::Less,
        LinuxSeccompOperator::ScmpCmpLe => ScmpCompareOp::LessOrEqual,
        LinuxSeccompOperator::ScmpCmpEq => ScmpCompareOp::Equal,
        LinuxSeccompOperator::ScmpCmpGe => ScmpCompareOp::GreaterEqual,
        LinuxSeccompOperator::ScmpCmpGt => ScmpCompareOp::Greater,
        LinuxSeccompOperator::ScmpCmpMaskedEq => {
            // value is the mask, valueTwo the expected result: (arg & value) == valueTwo.
            let index = arg.index() as u32;
            return Ok(ScmpArgCompare::new(
                index,
                ScmpCompareOp::MaskedEqual(arg.value()),
                arg.value_two().unwrap_or(0),
            ));
        }
    };
    // Profiles often spell "valueTwo": 0 on every comparison; only a real second value is wrong.
    if let Some(v2) = arg.value_two().filter(|v| *v != 0) {
        return Err(SeccompError::Invalid(format!(
            "{}: valueTwo {v2} is only meaningful with SCMP_CMP_MASKED_EQ, not {}",
            what(),
            oci_name(&arg.op())
        )));
    }
    Ok(ScmpArgCompare::new(arg.index() as u32, op, arg.value()))
}

/// The condition sets of one OCI rule: one set with every comparison, or (when an argument is
/// compared twice) one set per comparison, as runc does.
fn conditions(args: &[LinuxSeccompArg], what: &dyn Fn() -> String) -> Result<Vec<Vec<ScmpArgCompare>>, SeccompError> {
    let all = args.iter().map(|a| compare(a, what)).collect::<Result<Vec<_>, _>>()?;
    let mut seen = [0usize; MAX_ARGS];
    for a in args {
        seen[a.index()] += 1;
    }
    if seen.iter().any(|n| *n > 1) {
        tracing::debug!(
            "seccomp: {} compares one argument twice: one rule per comparison",
            what()
        );
        return Ok(all.into_iter().map(|c| vec![c]).collect());
    }
    Ok(vec![all])
}

#[cfg(test)]
#[path = "profile_tests.rs"]
mod tests;
