//! The stub run through a small classic-BPF interpreter, alone and in front of the programs
//! libseccomp makes, on made-up seccomp_data: no kernel needed, every architecture testable.

use libseccomp::{ScmpAction, ScmpArch, ScmpSyscall};
use oci_spec::runtime::LinuxSeccomp;

use super::*;
use crate::seccomp::compile;
use crate::seccomp::profile::Profile;

const RET_ALLOW: u32 = libc::SECCOMP_RET_ALLOW;
const RET_EPERM: u32 = libc::SECCOMP_RET_ERRNO | libc::EPERM as u32;
/// What a test appends to a bare stub: "reached the filter".
const FILTER_REACHED: u32 = 0x7ff0_1234;

/// Run `prog` on a seccomp_data with `nr` and `arch` (arguments and ip all 0).
fn run(prog: &[libc::sock_filter], arch: u32, nr: u32) -> u32 {
    let mut a: u32 = 0;
    let mut pc = 0usize;
    loop {
        let i = prog.get(pc).unwrap_or_else(|| panic!("ran off the program at {pc}"));
        pc += 1;
        let cls = u32::from(i.code) & 0x07;
        let op = u32::from(i.code) & 0xf0;
        match cls {
            c if c == libc::BPF_LD => {
                assert_eq!(
                    u32::from(i.code),
                    libc::BPF_LD | libc::BPF_W | libc::BPF_ABS,
                    "load {i:?}"
                );
                a = match i.k {
                    DATA_NR => nr,
                    DATA_ARCH => arch,
                    _ => 0,
                };
            }
            c if c == libc::BPF_ALU && op == libc::BPF_AND => a &= i.k,
            c if c == libc::BPF_RET => return i.k,
            c if c == libc::BPF_JMP => {
                let taken = match op {
                    o if o == libc::BPF_JA => {
                        pc += i.k as usize;
                        continue;
                    }
                    o if o == libc::BPF_JEQ => a == i.k,
                    o if o == libc::BPF_JGT => a > i.k,
                    o if o == libc::BPF_JGE => a >= i.k,
                    o if o == libc::BPF_JSET => a & i.k != 0,
                    _ => panic!("unknown jump {i:?}"),
                };
                pc += usize::from(if taken { i.jt } else { i.jf });
            }
            _ => panic!("unknown instruction {i:?}"),
        }
    }
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn nr(name: &str, arch: ScmpArch) -> u32 {
    let raw = ScmpSyscall::from_name_by_arch(name, arch).unwrap().as_raw_syscall();
    u32::try_from(raw).unwrap()
}

fn with_sentinel(mut stub: Vec<libc::sock_filter>) -> Vec<libc::sock_filter> {
    stub.push(insn(RET_K, 0, 0, FILTER_REACHED));
    stub
}

#[test]
fn no_stub_when_the_default_action_lets_new_syscalls_through() {
    let n = names(&["getpid", "read"]);
    for action in [
        ScmpAction::Allow,
        ScmpAction::Log,
        ScmpAction::Trace(1),
        ScmpAction::Errno(libc::ENOSYS),
    ] {
        assert!(stub(action, &[], &n).is_empty(), "{action:?}");
    }
    for action in [
        ScmpAction::Errno(libc::EPERM),
        ScmpAction::KillThread,
        ScmpAction::KillProcess,
        ScmpAction::Trap,
    ] {
        assert!(!stub(action, &[], &n).is_empty(), "{action:?}");
    }
    // Nothing the profile names resolves: no bound to judge by.
    assert!(stub(ScmpAction::KillProcess, &[], &names(&["no_such_syscall"])).is_empty());
}

/// Docker's shape: default ERRNO(EPERM), the three x86 ABIs, an allow list.
fn docker_like(extra: serde_json::Value) -> (Vec<libc::sock_filter>, usize) {
    let mut syscalls = vec![
        serde_json::json!({ "names": ["getpid", "exit_group", "read"], "action": "SCMP_ACT_ALLOW" }),
        serde_json::json!({ "names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1 }),
    ];
    if !extra.is_null() {
        syscalls.push(extra);
    }
    let spec: LinuxSeccomp = serde_json::from_value(serde_json::json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 1,
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": syscalls,
    }))
    .unwrap();
    let profile = Profile::from_oci(&spec).unwrap();
    let arches: Vec<_> = profile.arches.iter().map(|(a, _)| *a).collect();
    let stub_len = stub(profile.default_action, &arches, &profile.names).len();
    (compile::bpf(&profile).unwrap(), stub_len)
}

const X86_64: u32 = 62 | 0x8000_0000 | 0x4000_0000;
const I386: u32 = 3 | 0x4000_0000;
const AARCH64: u32 = 183 | 0x8000_0000 | 0x4000_0000;

#[test]
#[cfg(target_arch = "x86_64")]
fn newer_syscalls_get_enosys_and_named_ones_the_profiles_verdict() {
    let (full, stub_len) = docker_like(serde_json::Value::Null);
    assert!(stub_len > 0);
    let filter = &full[stub_len..];
    let x32 = |n: u32| n | X32_SYSCALL_BIT;
    // exit_group is the highest name: 231 on x86_64 and x32, 252 on i386.
    let cases: &[(u32, u32, u32)] = &[
        (X86_64, nr("getpid", ScmpArch::X8664), RET_ALLOW),
        (X86_64, nr("getppid", ScmpArch::X8664), RET_EPERM),
        (X86_64, nr("mkdir", ScmpArch::X8664), RET_EPERM),
        (X86_64, 231, RET_ALLOW),
        (X86_64, 232, RET_ENOSYS),
        (X86_64, nr("clone3", ScmpArch::X8664), RET_ENOSYS),
        (X86_64, nr("faccessat2", ScmpArch::X8664), RET_ENOSYS),
        (X86_64, 1000, RET_ENOSYS),
        (X86_64, x32(39), RET_ALLOW),
        (X86_64, x32(110), RET_EPERM),
        (X86_64, x32(232), RET_ENOSYS),
        (X86_64, x32(1000), RET_ENOSYS),
        (I386, nr("getpid", ScmpArch::X86), RET_ALLOW),
        (I386, nr("getppid", ScmpArch::X86), RET_EPERM),
        (I386, nr("mkdir", ScmpArch::X86), RET_EPERM),
        (I386, nr("clone3", ScmpArch::X86), RET_ENOSYS),
        (I386, 1000, RET_ENOSYS),
    ];
    for &(arch, n, want) in cases {
        assert_eq!(run(&full, arch, n), want, "arch {arch:#x} nr {n:#x}");
        if want != RET_ENOSYS {
            // Below the bound, the stub changes nothing.
            assert_eq!(run(filter, arch, n), want, "libseccomp's own verdict, nr {n:#x}");
        }
    }
    // An arch outside the filter: libseccomp's bad-arch action, untouched.
    assert_eq!(run(&full, AARCH64, 1000), run(filter, AARCH64, 1000));
    assert_ne!(run(&full, AARCH64, 1000), RET_ENOSYS);
}

#[test]
#[cfg(target_arch = "x86_64")]
fn every_named_syscall_raises_the_bound_whatever_its_action() {
    // faccessat2 (439) named with the default action: libseccomp drops the rule, but the profile
    // knows the syscall, so clone3 (435) below it keeps the default EPERM, as under runc.
    let extra = serde_json::json!({ "names": ["faccessat2"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1 });
    let (full, _) = docker_like(extra);
    assert_eq!(run(&full, X86_64, nr("clone3", ScmpArch::X8664)), RET_EPERM);
    assert_eq!(run(&full, X86_64, nr("faccessat2", ScmpArch::X8664)), RET_EPERM);
    assert_eq!(run(&full, X86_64, 440), RET_ENOSYS);
}

#[test]
fn x86_64_alone_leaves_x32_numbers_to_the_filter() {
    let prog = with_sentinel(stub(ScmpAction::KillProcess, &[ScmpArch::X8664], &names(&["getpid"])));
    let x32 = |n: u32| n | X32_SYSCALL_BIT;
    assert_eq!(run(&prog, X86_64, 39), FILTER_REACHED);
    assert_eq!(run(&prog, X86_64, 40), RET_ENOSYS);
    assert_eq!(run(&prog, X86_64, x32(1000)), FILTER_REACHED);
    // And x32 alone leaves x86_64 numbers alone.
    let prog = with_sentinel(stub(ScmpAction::KillProcess, &[ScmpArch::X32], &names(&["getpid"])));
    if ScmpArch::native() == ScmpArch::X8664 {
        // The native arch is always covered.
        assert_eq!(run(&prog, X86_64, 40), RET_ENOSYS);
    }
    assert_eq!(run(&prog, X86_64, x32(39)), FILTER_REACHED);
    assert_eq!(run(&prog, X86_64, x32(40)), RET_ENOSYS);
}

#[test]
fn every_architecture_gets_its_own_bound() {
    let arches = [
        ScmpArch::X86,
        ScmpArch::X8664,
        ScmpArch::X32,
        ScmpArch::Arm,
        ScmpArch::Aarch64,
        ScmpArch::Loongarch64,
        ScmpArch::M68k,
        ScmpArch::Mips,
        ScmpArch::Mips64,
        ScmpArch::Mips64N32,
        ScmpArch::Mipsel,
        ScmpArch::Mipsel64,
        ScmpArch::Mipsel64N32,
        ScmpArch::Ppc,
        ScmpArch::Ppc64,
        ScmpArch::Ppc64Le,
        ScmpArch::S390,
        ScmpArch::S390X,
        ScmpArch::Parisc,
        ScmpArch::Parisc64,
        ScmpArch::Riscv64,
        ScmpArch::Sheb,
        ScmpArch::Sh,
    ];
    let list = names(&["read", "write", "getpid", "exit_group", "openat"]);
    let prog = with_sentinel(stub(ScmpAction::Errno(libc::EPERM), &arches, &list));
    let mut checked = 0;
    for arch in arches {
        let (audit, _) = audit_arch(arch);
        // This libseccomp may not know every arch.
        let Some(max) = list
            .iter()
            .filter_map(|n| ScmpSyscall::from_name_by_arch(n, arch).ok())
            .filter_map(|s| u32::try_from(s.as_raw_syscall()).ok())
            .max()
        else {
            continue;
        };
        assert_eq!(run(&prog, audit, max), FILTER_REACHED, "{arch:?} at its bound {max}");
        assert_eq!(run(&prog, audit, max + 1), RET_ENOSYS, "{arch:?} above its bound");
        let zero = if matches!(arch, ScmpArch::S390 | ScmpArch::S390X) {
            RET_ENOSYS
        } else {
            FILTER_REACHED
        };
        assert_eq!(run(&prog, audit, 0), zero, "{arch:?} syscall 0");
        checked += 1;
    }
    assert!(checked >= 16, "only {checked} arches resolved");
    assert_eq!(run(&prog, 0x1234, 100_000), FILTER_REACHED, "unknown arch");
}
