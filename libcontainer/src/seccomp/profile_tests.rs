//! OCI object → rules, without the kernel.

use libseccomp::{ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpSyscall};
use oci_spec::runtime::LinuxSeccomp;

use super::Profile;
use crate::seccomp::{Filter, SeccompError};

fn parse(json: serde_json::Value) -> LinuxSeccomp {
    serde_json::from_value(json).expect("valid LinuxSeccomp")
}

fn profile(json: serde_json::Value) -> Result<Profile, SeccompError> {
    Profile::from_oci(&parse(json))
}

fn sys(name: &str) -> ScmpSyscall {
    ScmpSyscall::from_name(name).unwrap()
}

#[test]
fn actions_and_errno_ret() {
    let p = profile(serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            { "names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38 },
            { "names": ["chmod"], "action": "SCMP_ACT_ERRNO" },
            { "names": ["getcwd"], "action": "SCMP_ACT_KILL" },
            { "names": ["getppid"], "action": "SCMP_ACT_KILL_THREAD" },
            { "names": ["getpgrp"], "action": "SCMP_ACT_KILL_PROCESS" },
            { "names": ["sync"], "action": "SCMP_ACT_TRAP" },
            { "names": ["setsid"], "action": "SCMP_ACT_TRACE", "errnoRet": 7 },
            { "names": ["uname"], "action": "SCMP_ACT_TRACE" },
            { "names": ["getuid"], "action": "SCMP_ACT_LOG" }
        ]
    }))
    .unwrap();
    let got: Vec<(&str, ScmpAction)> = p.rules.iter().map(|r| (r.name.as_str(), r.action)).collect();
    assert_eq!(
        got,
        vec![
            ("mkdir", ScmpAction::Errno(38)),
            ("chmod", ScmpAction::Errno(libc::EPERM)),
            ("getcwd", ScmpAction::KillThread),
            ("getppid", ScmpAction::KillThread),
            ("getpgrp", ScmpAction::KillProcess),
            ("sync", ScmpAction::Trap),
            ("setsid", ScmpAction::Trace(7)),
            ("uname", ScmpAction::Trace(libc::EPERM as u16)),
            ("getuid", ScmpAction::Log),
        ]
    );
    assert_eq!(p.rules[0].syscall, sys("mkdir"));
    assert!(p.rules.iter().all(|r| r.conditions.is_empty()));
    assert_eq!(p.default_action, ScmpAction::Allow);
    assert!(!p.notify);
}

#[test]
fn default_errno_ret() {
    let p = profile(serde_json::json!({ "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38 })).unwrap();
    assert_eq!(p.default_action, ScmpAction::Errno(38));
    let p = profile(serde_json::json!({ "defaultAction": "SCMP_ACT_ERRNO" })).unwrap();
    assert_eq!(p.default_action, ScmpAction::Errno(libc::EPERM));
}

#[test]
fn errno_ret_must_fit_16_bits() {
    let e = profile(serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{ "names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 70000 }]
    }))
    .unwrap_err()
    .to_string();
    assert!(e.contains("70000") && e.contains("mkdir"), "{e}");
}

#[test]
fn every_operator() {
    let p = profile(serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{
            "names": ["clone"], "action": "SCMP_ACT_ERRNO",
            "args": [
                { "index": 0, "value": 1, "op": "SCMP_CMP_NE" },
                { "index": 1, "value": 2, "op": "SCMP_CMP_LT" },
                { "index": 2, "value": 3, "op": "SCMP_CMP_LE" },
                { "index": 3, "value": 4, "valueTwo": 0, "op": "SCMP_CMP_EQ" },
                { "index": 4, "value": 5, "op": "SCMP_CMP_GE" },
                { "index": 5, "value": 6, "op": "SCMP_CMP_GT" }
            ]
        }, {
            "names": ["personality"], "action": "SCMP_ACT_ERRNO",
            "args": [{ "index": 0, "value": 4294967295u64, "op": "SCMP_CMP_EQ" }]
        }]
    }))
    .unwrap();
    assert_eq!(p.rules.len(), 2);
    assert_eq!(
        p.rules[0].conditions,
        vec![
            ScmpArgCompare::new(0, ScmpCompareOp::NotEqual, 1),
            ScmpArgCompare::new(1, ScmpCompareOp::Less, 2),
            ScmpArgCompare::new(2, ScmpCompareOp::LessOrEqual, 3),
            ScmpArgCompare::new(3, ScmpCompareOp::Equal, 4),
            ScmpArgCompare::new(4, ScmpCompareOp::GreaterEqual, 5),
            ScmpArgCompare::new(5, ScmpCompareOp::Greater, 6),
        ]
    );
    assert_eq!(
        p.rules[1].conditions,
        vec![ScmpArgCompare::new(0, ScmpCompareOp::Equal, 0xffff_ffff)]
    );
}

#[test]
fn masked_eq_takes_value_as_mask_and_value_two_as_result() {
    // Docker's clone rule: no namespace flag set, i.e. (flags & 0x7e020000) == 0.
    let p = profile(serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            { "names": ["clone"], "action": "SCMP_ACT_ERRNO",
              "args": [{ "index": 0, "value": 2114060288u64, "op": "SCMP_CMP_MASKED_EQ" }] },
            { "names": ["open"], "action": "SCMP_ACT_ERRNO",
              "args": [{ "index": 1, "value": 3, "valueTwo": 1, "op": "SCMP_CMP_MASKED_EQ" }] }
        ]
    }))
    .unwrap();
    assert_eq!(
        p.rules[0].conditions,
        vec![ScmpArgCompare::new(0, ScmpCompareOp::MaskedEqual(2114060288), 0)]
    );
    assert_eq!(
        p.rules[1].conditions,
        vec![ScmpArgCompare::new(1, ScmpCompareOp::MaskedEqual(3), 1)]
    );
}

#[test]
fn value_two_only_with_masked_eq() {
    let e = profile(serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{ "names": ["socket"], "action": "SCMP_ACT_ERRNO",
                       "args": [{ "index": 0, "value": 2, "valueTwo": 5, "op": "SCMP_CMP_EQ" }] }]
    }))
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("socket") && e.contains("SCMP_CMP_EQ") && e.contains("valueTwo"),
        "{e}"
    );
}

#[test]
fn argument_index_out_of_range() {
    let e = profile(serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{ "names": ["socket"], "action": "SCMP_ACT_ERRNO",
                       "args": [{ "index": 6, "value": 2, "op": "SCMP_CMP_EQ" }] }]
    }))
    .unwrap_err()
    .to_string();
    assert!(e.contains("socket") && e.contains("index 6"), "{e}");
}

#[test]
fn one_argument_compared_twice_becomes_one_rule_per_comparison() {
    let p = profile(serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{ "names": ["socket"], "action": "SCMP_ACT_ERRNO",
                       "args": [{ "index": 0, "value": 2, "op": "SCMP_CMP_EQ" },
                                { "index": 0, "value": 10, "op": "SCMP_CMP_EQ" }] }]
    }))
    .unwrap();
    let conds: Vec<_> = p.rules.iter().map(|r| r.conditions.clone()).collect();
    assert_eq!(
        conds,
        vec![
            vec![ScmpArgCompare::new(0, ScmpCompareOp::Equal, 2)],
            vec![ScmpArgCompare::new(0, ScmpCompareOp::Equal, 10)],
        ]
    );
}

#[test]
fn unknown_syscall_is_skipped_and_the_rest_kept() {
    let p = profile(serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{ "names": ["no_such_syscall_hezi", "mkdir"], "action": "SCMP_ACT_ERRNO" }]
    }))
    .unwrap();
    assert_eq!(p.skipped, vec!["no_such_syscall_hezi".to_string()]);
    assert_eq!(p.rules.len(), 1);
    assert_eq!(p.rules[0].name, "mkdir");
}

#[test]
fn rule_with_the_default_action_is_dropped() {
    let p = profile(serde_json::json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [
            { "names": ["mkdir"], "action": "SCMP_ACT_ERRNO" },
            { "names": ["chmod"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38 },
            { "names": ["read"], "action": "SCMP_ACT_ALLOW" }
        ]
    }))
    .unwrap();
    let names: Vec<&str> = p.rules.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, vec!["chmod", "read"]);
}

#[test]
fn architectures_keep_their_names() {
    let p = profile(serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    }))
    .unwrap();
    assert_eq!(
        p.arches,
        vec![
            (ScmpArch::X8664, "SCMP_ARCH_X86_64".to_string()),
            (ScmpArch::X86, "SCMP_ARCH_X86".to_string()),
            (ScmpArch::X32, "SCMP_ARCH_X32".to_string()),
        ]
    );
}

#[test]
fn unknown_action_arch_op_flag_fail_at_parse_naming_the_value() {
    // oci-spec's enums reject unknown strings when config.json is parsed; serde's message names
    // the value, and the bundle loader adds the file, line and column.
    for (field, json) in [
        ("SCMP_ACT_FOO", serde_json::json!({ "defaultAction": "SCMP_ACT_FOO" })),
        (
            "SCMP_ARCH_VAX",
            serde_json::json!({ "defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_VAX"] }),
        ),
        (
            "SCMP_CMP_ODD",
            serde_json::json!({ "defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                { "names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{ "index": 0, "value": 1, "op": "SCMP_CMP_ODD" }] }
            ]}),
        ),
        (
            "SECCOMP_FILTER_FLAG_FAST",
            serde_json::json!({ "defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_FAST"] }),
        ),
    ] {
        let e = serde_json::from_value::<LinuxSeccomp>(json).unwrap_err().to_string();
        assert!(e.contains(field), "{e}");
    }
}

#[test]
fn arch_unknown_to_libseccomp_is_an_error_naming_it() {
    let supported = libseccomp::ScmpVersion::current()
        .map(|v| (v.major, v.minor) >= (2, 6))
        .unwrap_or(false);
    if supported {
        eprintln!("libseccomp >= 2.6 knows SCMP_ARCH_SH; nothing to check");
        return;
    }
    let e = Filter::compile(&parse(serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_SH"]
    })))
    .unwrap_err()
    .to_string();
    assert!(e.contains("SCMP_ARCH_SH"), "{e}");
}

#[test]
fn notify_needs_a_listener_and_is_not_default() {
    let e = profile(serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{ "names": ["mkdir"], "action": "SCMP_ACT_NOTIFY" }]
    }))
    .unwrap_err()
    .to_string();
    assert!(e.contains("listenerPath"), "{e}");
    let e = profile(serde_json::json!({ "defaultAction": "SCMP_ACT_NOTIFY", "listenerPath": "/x" }))
        .unwrap_err()
        .to_string();
    assert!(e.contains("default action"), "{e}");
    let e = profile(serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/x",
        "syscalls": [{ "names": ["sendmsg"], "action": "SCMP_ACT_NOTIFY" }]
    }))
    .unwrap_err()
    .to_string();
    assert!(e.contains("sendmsg"), "{e}");
    let p = profile(serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/x",
        "syscalls": [{ "names": ["mkdir"], "action": "SCMP_ACT_NOTIFY" }]
    }))
    .unwrap();
    assert!(p.notify);
}

#[test]
fn compiles_to_bpf_with_listener_flags() {
    let f = Filter::compile(&parse(serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": "/run/agent.sock",
        "listenerMetadata": "meta",
        "flags": ["SECCOMP_FILTER_FLAG_LOG"],
        "syscalls": [
            { "names": ["mkdir"], "action": "SCMP_ACT_NOTIFY" },
            { "names": ["chmod"], "action": "SCMP_ACT_ERRNO" }
        ]
    })))
    .unwrap();
    assert!(f.instructions() > 4);
    assert_eq!(
        f.flags(),
        libc::SECCOMP_FILTER_FLAG_LOG | libc::SECCOMP_FILTER_FLAG_NEW_LISTENER
    );
    let l = f.listener().unwrap();
    assert_eq!(l.path, std::path::Path::new("/run/agent.sock"));
    assert_eq!(l.metadata.as_deref(), Some("meta"));
}

#[test]
fn absent_flags_mean_spec_allow_and_empty_means_none() {
    let f = Filter::compile(&parse(serde_json::json!({ "defaultAction": "SCMP_ACT_ALLOW" }))).unwrap();
    if super::super::kernel::flag_supported(libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW) {
        assert_eq!(f.flags(), libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW);
    }
    let f = Filter::compile(&parse(
        serde_json::json!({ "defaultAction": "SCMP_ACT_ALLOW", "flags": [] }),
    ))
    .unwrap();
    assert_eq!(f.flags(), 0);
}

#[test]
fn features_list_what_runc_lists() {
    let f = crate::seccomp::features();
    assert!(f.enabled);
    assert!(f.actions.contains(&"SCMP_ACT_ERRNO".to_string()));
    assert!(f.actions.contains(&"SCMP_ACT_ALLOW".to_string()));
    assert!(f.actions.contains(&"SCMP_ACT_KILL_PROCESS".to_string()));
    assert_eq!(f.operators.len(), 7);
    // Every arch libseccomp knows, as runc lists them: the big-endian ones too (recognized,
    // though refused next to a little-endian native arch).
    for arch in [
        "SCMP_ARCH_X86_64",
        "SCMP_ARCH_X86",
        "SCMP_ARCH_X32",
        "SCMP_ARCH_AARCH64",
        "SCMP_ARCH_ARM",
        "SCMP_ARCH_MIPS",
        "SCMP_ARCH_MIPS64N32",
        "SCMP_ARCH_PPC64",
        "SCMP_ARCH_PPC64LE",
        "SCMP_ARCH_S390",
        "SCMP_ARCH_S390X",
    ] {
        assert!(f.archs.contains(&arch.to_string()), "{arch} missing from {:?}", f.archs);
    }
    assert_eq!(
        f.known_flags,
        [
            "SECCOMP_FILTER_FLAG_TSYNC",
            "SECCOMP_FILTER_FLAG_LOG",
            "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
            "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"
        ]
    );
    // Supported: what this kernel takes, probed; a subset of the known ones.
    for flag in &f.supported_flags {
        assert!(f.known_flags.contains(flag), "{flag}");
    }
    for flag in &f.known_flags {
        let bits = super::super::kernel::KNOWN_FLAGS
            .iter()
            .map(|k| super::super::kernel::flag_bits(*k))
            .find(|(n, _)| n == flag)
            .unwrap()
            .1;
        assert_eq!(
            f.supported_flags.contains(flag),
            super::super::kernel::flag_supported(bits),
            "{flag}"
        );
    }
}

#[test]
fn names_of_other_architectures_compile_on_this_one() {
    // Docker's profile lists x86-only and arm-only names; libseccomp resolves them to pseudo
    // syscall numbers and leaves them out where they do not exist.
    let f = Filter::compile(&parse(serde_json::json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [{ "names": ["socketcall", "_llseek", "ipc", "arm_fadvise64_64", "read", "write"],
                       "action": "SCMP_ACT_ALLOW" }]
    })));
    assert!(f.is_ok(), "{f:?}");
}

#[test]
fn errno_ret_only_with_errno_actions_and_names_never_empty() {
    let Err(err) = profile(serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{ "names": ["mkdir"], "action": "SCMP_ACT_KILL", "errnoRet": 1 }]
    })) else {
        panic!("errnoRet with KILL is refused");
    };
    let err = err.to_string();
    assert!(
        err.contains("errnoRet 1 is only valid with SCMP_ACT_ERRNO or SCMP_ACT_TRACE"),
        "{err}"
    );
    let Err(err) = profile(serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{ "names": [], "action": "SCMP_ACT_ERRNO" }]
    })) else {
        panic!("empty names are refused");
    };
    let err = err.to_string();
    assert!(err.contains("syscalls[0]: names is empty"), "{err}");
}
