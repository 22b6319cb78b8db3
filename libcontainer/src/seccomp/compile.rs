//! A checked [`Profile`] compiled into a classic BPF program by libseccomp.
//!
//! libseccomp does the architecture-specific work: the arch check at the top of the program,
//! x32's syscall bit on x86_64, socketcall/ipc multiplexing on 32-bit x86 and s390, and 64-bit
//! argument compares split into two 32-bit halves. We only ask it for the program
//! (`seccomp_export_bpf`) and load it ourselves (see `kernel.rs`), so that the flags and the
//! no_new_privs bit are ours to set, whatever version of libseccomp is installed.

use std::io::{Read, Seek, SeekFrom};

use libseccomp::{ScmpAction, ScmpFilterContext};
use nix::sys::memfd::{memfd_create, MFdFlags};

use super::profile::Profile;
use super::{action_name, enosys, SeccompError};

/// BPF_MAXINSNS: the kernel refuses longer programs.
const MAX_INSNS: usize = 4096;

/// libseccomp's binary-tree optimisation pays off for long rule lists; like runc, only turn it
/// on past 32 rules (libseccomp <= 2.5.4 misbehaves with it on an empty rule set).
const OPTIMIZE_ABOVE: usize = 32;

/// libseccomp's program for `profile`, behind the -ENOSYS stub (see `enosys`).
pub fn bpf(profile: &Profile) -> Result<Vec<libc::sock_filter>, SeccompError> {
    let lib = |what: String| move |source| SeccompError::Libseccomp { what, source };
    let mut ctx = ScmpFilterContext::new(profile.default_action).map_err(lib(format!(
        "create a filter with default action {}",
        action_name(profile.default_action)
    )))?;
    for (arch, name) in &profile.arches {
        // The native architecture is always there; adding it again is an error in libseccomp.
        let present = ctx.is_arch_present(*arch).map_err(|e| SeccompError::UnsupportedArch {
            arch: name.clone(),
            source: e,
        })?;
        if !present {
            ctx.add_arch(*arch).map_err(|e| SeccompError::UnsupportedArch {
                arch: name.clone(),
                source: e,
            })?;
        }
    }
    if profile.rules.len() > OPTIMIZE_ABOVE {
        if let Err(e) = ctx.set_ctl_optimize(2) {
            tracing::debug!("seccomp: libseccomp binary tree optimisation unavailable: {e}");
        }
    }
    for rule in &profile.rules {
        ctx.add_rule_conditional(rule.action, rule.syscall, &rule.conditions)
            .map_err(|source| SeccompError::Rule {
                syscall: rule.name.clone(),
                action: action_name(rule.action),
                source,
            })?;
    }
    let arches: Vec<_> = profile.arches.iter().map(|(a, _)| *a).collect();
    let mut program = enosys::stub(profile.default_action, &arches, &profile.names);
    program.extend(export(&ctx)?);
    if program.len() > MAX_INSNS {
        return Err(SeccompError::Invalid(format!(
            "the compiled filter has {} BPF instructions; the kernel takes at most {MAX_INSNS}",
            program.len()
        )));
    }
    Ok(program)
}

/// The program as the kernel takes it. seccomp_export_bpf_mem needs libseccomp 2.6; writing to
/// a memfd works with every 2.x.
fn export(ctx: &ScmpFilterContext) -> Result<Vec<libc::sock_filter>, SeccompError> {
    let io = |what: &'static str| move |e: std::io::Error| SeccompError::Io { what, source: e };
    let fd = memfd_create(c"hezi-seccomp-bpf", MFdFlags::MFD_CLOEXEC).map_err(|e| SeccompError::Sys {
        what: "memfd_create for the BPF program".into(),
        errno: e,
    })?;
    ctx.export_bpf(&fd).map_err(|source| SeccompError::Libseccomp {
        what: "export the BPF program".into(),
        source,
    })?;
    let mut file = std::fs::File::from(fd);
    file.seek(SeekFrom::Start(0)).map_err(io("rewind the BPF program"))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).map_err(io("read the BPF program"))?;
    let program = decode(&bytes)?;
    if program.is_empty() {
        return Err(SeccompError::Invalid("libseccomp exported an empty BPF program".into()));
    }
    Ok(program)
}

/// struct sock_filter, native-endian: u16 code, u8 jt, u8 jf, u32 k.
fn decode(bytes: &[u8]) -> Result<Vec<libc::sock_filter>, SeccompError> {
    const SIZE: usize = std::mem::size_of::<libc::sock_filter>();
    let chunks = bytes.chunks_exact(SIZE);
    if !chunks.remainder().is_empty() {
        return Err(SeccompError::Invalid(format!(
            "libseccomp exported {} bytes, not a whole number of BPF instructions",
            bytes.len()
        )));
    }
    Ok(chunks
        .map(|c| libc::sock_filter {
            code: u16::from_ne_bytes([c[0], c[1]]),
            jt: c[2],
            jf: c[3],
            k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
        })
        .collect())
}

/// Whether this libseccomp accepts the action at all (NOTIFY needs API level 6, LOG level 3):
/// for `features`.
pub fn action_supported(action: ScmpAction) -> bool {
    // A rule with the filter's default action is refused, so the default must differ.
    let default = if action == ScmpAction::Allow {
        ScmpAction::KillProcess
    } else {
        ScmpAction::Allow
    };
    let Ok(mut ctx) = ScmpFilterContext::new(default) else {
        return false;
    };
    let Ok(getpid) = libseccomp::ScmpSyscall::from_name("getpid") else {
        return false;
    };
    ctx.add_rule(action, getpid).is_ok()
}

/// Whether this libseccomp knows the architecture: for `features`, whose `archs` are the names
/// the runtime recognizes (runtime-spec features-linux.md), as runc lists them. One filter only
/// holds architectures of the native byte order, so a big-endian one is listed but refused on
/// x86_64 with an error that says so.
pub fn arch_known(arch: libseccomp::ScmpArch) -> bool {
    libseccomp::ScmpSyscall::from_name_by_arch("read", arch).is_ok()
}
