//! The -ENOSYS stub: a few BPF instructions put in front of libseccomp's program so that a
//! syscall newer than the profile knows fails with ENOSYS instead of the default action.
//!
//! Why: a profile lists the syscalls of the kernels its authors knew. Under a deny-by-default
//! profile (Docker's returns EPERM) a newer syscall, such as clone3 or faccessat2, would get
//! EPERM, and libc then reports the failure instead of falling back to the older call, which it
//! only does on ENOSYS. runc (libcontainer/seccomp/patchbpf) prepends such a stub; we follow its
//! rules so that profiles behave the same:
//! - only when the default action denies (ERRNO other than ENOSYS, KILL*, TRAP): under ALLOW,
//!   LOG or TRACE (a tracer handles new syscalls itself) a new syscall is not denied anyway;
//! - "newer" is per architecture: above the highest syscall number any rule of the profile
//!   names on that architecture, whatever the rule's action. So every syscall the profile names,
//!   allowed or not, still reaches the profile's own rules;
//! - x86_64 and x32 share an audit arch: x32 numbers carry bit 30, and each ABI gets its own
//!   bound; a number of the other ABI skips the stub (libseccomp's program decides);
//! - on s390/s390x, syscall 0 is what the kernel leaves for an unknown multiplexed syscall: it
//!   gets ENOSYS too;
//! - an architecture none of whose names resolves gets no stub; an architecture outside the
//!   filter falls through to libseccomp's bad-arch action.
//!
//! One difference from runc: the native architecture is always covered (libseccomp always
//! filters it); runc only covers `architectures`, so a profile without that list gets no stub
//! under runc.

use libseccomp::{ScmpAction, ScmpArch, ScmpSyscall};

/// Offsets in struct seccomp_data.
const DATA_NR: u32 = 0;
const DATA_ARCH: u32 = 4;

/// x32 syscalls are x86_64's audit arch with this bit set in the number.
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// What every stub verdict returns.
const RET_ENOSYS: u32 = libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32;

// Opcodes (linux/filter.h): the few the stub needs.
const LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
const JA: u16 = (libc::BPF_JMP | libc::BPF_JA) as u16;
const JEQ_K: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
const JGT_K: u16 = (libc::BPF_JMP | libc::BPF_JGT | libc::BPF_K) as u16;
const JSET_K: u16 = (libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K) as u16;
const RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;

/// The ABI of an audit arch, for the one arch (x86_64) that has two.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Abi {
    /// The only ABI of the arch.
    Only,
    /// x86_64 proper: numbers without bit 30.
    X86_64,
    /// x32: numbers with bit 30.
    X32,
}

/// The highest syscall numbers the profile names, for one audit arch.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Bounds {
    audit: u32,
    /// (abi, highest number); at most one entry per ABI.
    limits: Vec<(Abi, u32)>,
    /// s390 and s390x: syscall 0 is the unknown multiplexed syscall.
    zero_is_unknown: bool,
}

/// The stub for a profile, empty when it needs none. `arches` are the architectures of the filter
/// besides the native one; `names` every syscall name the profile has, in any rule.
pub fn stub(default_action: ScmpAction, arches: &[ScmpArch], names: &[String]) -> Vec<libc::sock_filter> {
    if !denies(default_action) {
        return Vec::new();
    }
    let bounds = bounds(arches, names);
    assemble(&bounds)
}

/// Whether a new syscall would be denied by the default action, so that ENOSYS is better.
fn denies(action: ScmpAction) -> bool {
    match action {
        ScmpAction::Allow | ScmpAction::Log | ScmpAction::Trace(_) | ScmpAction::Notify => false,
        // Already what the stub would return.
        ScmpAction::Errno(e) => e != libc::ENOSYS,
        _ => true,
    }
}

/// The audit arch (AUDIT_ARCH_* of linux/audit.h: the ELF machine, 64-bit and little-endian
/// bits) the kernel reports in seccomp_data.arch, and the ABI within it.
fn audit_arch(arch: ScmpArch) -> (u32, Abi) {
    const B64: u32 = 0x8000_0000;
    const LE: u32 = 0x4000_0000;
    const MIPS_N32: u32 = 0x2000_0000;
    let audit = match arch {
        ScmpArch::Native => return audit_arch(ScmpArch::native()),
        ScmpArch::X86 => 3 | LE,
        ScmpArch::X8664 => return (62 | B64 | LE, Abi::X86_64),
        ScmpArch::X32 => return (62 | B64 | LE, Abi::X32),
        ScmpArch::Arm => 40 | LE,
        ScmpArch::Aarch64 => 183 | B64 | LE,
        ScmpArch::Loongarch64 => 258 | B64 | LE,
        ScmpArch::M68k => 4,
        ScmpArch::Mips => 8,
        ScmpArch::Mips64 => 8 | B64,
        ScmpArch::Mips64N32 => 8 | B64 | MIPS_N32,
        ScmpArch::Mipsel => 8 | LE,
        ScmpArch::Mipsel64 => 8 | B64 | LE,
        ScmpArch::Mipsel64N32 => 8 | B64 | LE | MIPS_N32,
        ScmpArch::Ppc => 20,
        ScmpArch::Ppc64 => 21 | B64,
        ScmpArch::Ppc64Le => 21 | B64 | LE,
        ScmpArch::S390 => 22,
        ScmpArch::S390X => 22 | B64,
        ScmpArch::Parisc => 15,
        ScmpArch::Parisc64 => 15 | B64,
        ScmpArch::Riscv64 => 243 | B64 | LE,
        ScmpArch::Sheb => 42,
        ScmpArch::Sh => 42 | LE,
        // ScmpArch is non-exhaustive; an arch this list does not know gets no stub.
        _ => return (0, Abi::Only),
    };
    (audit, Abi::Only)
}

/// The highest named syscall per (audit arch, ABI): native first, then `arches` in order.
fn bounds(arches: &[ScmpArch], names: &[String]) -> Vec<Bounds> {
    let mut out: Vec<Bounds> = Vec::new();
    let mut seen: Vec<(u32, Abi)> = Vec::new();
    for arch in std::iter::once(ScmpArch::native()).chain(arches.iter().copied()) {
        let arch = if arch == ScmpArch::Native {
            ScmpArch::native()
        } else {
            arch
        };
        let (audit, abi) = audit_arch(arch);
        if audit == 0 || seen.contains(&(audit, abi)) {
            continue;
        }
        seen.push((audit, abi));
        // Names unknown on this arch resolve to an error or to libseccomp's negative
        // pseudo-numbers: neither bounds anything.
        let Some(max) = names
            .iter()
            .filter_map(|n| ScmpSyscall::from_name_by_arch(n, arch).ok())
            .filter_map(|s| u32::try_from(s.as_raw_syscall()).ok())
            .max()
        else {
            tracing::debug!("seccomp: no syscall of the profile resolves on {arch:?}: no -ENOSYS stub for it");
            continue;
        };
        match out.iter_mut().find(|b| b.audit == audit) {
            Some(b) => b.limits.push((abi, max)),
            None => out.push(Bounds {
                audit,
                limits: vec![(abi, max)],
                zero_is_unknown: matches!(arch, ScmpArch::S390 | ScmpArch::S390X),
            }),
        }
    }
    out
}

/// Where a jump of a section goes: `Skip(n)` is relative as in BPF; `Enosys` and `Filter` are
/// the section's last two instructions.
#[derive(Debug, Clone, Copy)]
enum To {
    Skip(u8),
    Enosys,
    Filter,
}

/// A section instruction before its jumps are resolved.
enum Op {
    Load(u32),
    Jump { code: u16, k: u32, jt: To, jf: To },
}

/// One audit arch's checks, ending in `ja <filter>; ret ENOSYS`.
fn section(b: &Bounds) -> Vec<Op> {
    let mut ops = vec![Op::Load(DATA_NR)];
    if b.zero_is_unknown {
        ops.push(Op::Jump {
            code: JEQ_K,
            k: 0,
            jt: To::Enosys,
            jf: To::Skip(0),
        });
    }
    let above = |max: u32| Op::Jump {
        code: JGT_K,
        k: max,
        jt: To::Enosys,
        jf: To::Filter,
    };
    let limit = |abi: Abi| b.limits.iter().find(|(a, _)| *a == abi).map(|(_, m)| *m);
    match (limit(Abi::X86_64), limit(Abi::X32)) {
        (Some(native), Some(x32)) => {
            ops.push(Op::Jump {
                code: JSET_K,
                k: X32_SYSCALL_BIT,
                jt: To::Skip(1),
                jf: To::Skip(0),
            });
            ops.push(above(native));
            ops.push(above(x32));
        }
        (Some(native), None) => {
            // An x32 number is not ours to judge.
            ops.push(Op::Jump {
                code: JSET_K,
                k: X32_SYSCALL_BIT,
                jt: To::Filter,
                jf: To::Skip(0),
            });
            ops.push(above(native));
        }
        (None, Some(x32)) => {
            ops.push(Op::Jump {
                code: JSET_K,
                k: X32_SYSCALL_BIT,
                jt: To::Skip(0),
                jf: To::Filter,
            });
            ops.push(above(x32));
        }
        (None, None) => {
            if let Some(max) = limit(Abi::Only) {
                ops.push(above(max));
            }
        }
    }
    ops
}

fn insn(code: u16, jt: u8, jf: u8, k: u32) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}

/// The whole stub: dispatch on the arch, one section per arch, then libseccomp's program.
///
/// ```text
///   ld [arch]
///   jeq AUDIT_1, 0, 1 ; ja section_1      (per arch)
///   ja filter                             (any other arch)
/// section_i:
///   ld [nr] ; <compares> ; ja filter ; ret ERRNO(ENOSYS)
/// filter:
/// ```
/// Conditional jumps stay inside their small section (8-bit offsets); the long ones are `ja`,
/// whose offset is 32 bits.
fn assemble(bounds: &[Bounds]) -> Vec<libc::sock_filter> {
    if bounds.is_empty() {
        return Vec::new();
    }
    let sections: Vec<Vec<Op>> = bounds.iter().map(section).collect();
    // Each section's ops plus its `ja filter` and `ret ENOSYS`.
    let lens: Vec<usize> = sections.iter().map(|s| s.len() + 2).collect();
    let head = 1 + 2 * bounds.len() + 1;
    let total = head + lens.iter().sum::<usize>();
    // A ja at index `at` to index `to`.
    let ja = |at: usize, to: usize| insn(JA, 0, 0, (to - at - 1) as u32);

    let mut out = Vec::with_capacity(total);
    out.push(insn(LD_W_ABS, 0, 0, DATA_ARCH));
    let mut start = head;
    for (b, len) in bounds.iter().zip(&lens) {
        out.push(insn(JEQ_K, 0, 1, b.audit));
        out.push(ja(out.len(), start));
        start += len;
    }
    out.push(ja(out.len(), total));
    for ops in &sections {
        let filter_at = out.len() + ops.len();
        let enosys_at = filter_at + 1;
        for op in ops {
            let at = out.len();
            let off = |to: To| -> u8 {
                let target = match to {
                    To::Skip(n) => return n,
                    To::Enosys => enosys_at,
                    To::Filter => filter_at,
                };
                // Sections are at most 6 instructions long.
                (target - at - 1) as u8
            };
            out.push(match *op {
                Op::Load(k) => insn(LD_W_ABS, 0, 0, k),
                Op::Jump { code, k, jt, jf } => insn(code, off(jt), off(jf), k),
            });
        }
        out.push(ja(out.len(), total));
        out.push(insn(RET_K, 0, 0, RET_ENOSYS));
    }
    debug_assert_eq!(out.len(), total);
    out
}

#[cfg(test)]
#[path = "enosys_tests.rs"]
mod tests;
