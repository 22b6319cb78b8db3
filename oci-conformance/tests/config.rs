//! config.md: specification version, root, mounts, process, user, hostname, domainname,
//! annotations, extensibility and valid values. Hooks are in hooks.rs.

use oci_conformance::{create_fails, require, sh_out, unique_id, Bundle, Runtime};
use serde_json::json;

/// The mountinfo line (from inside the container) of mount point `dest`.
fn mountinfo_line(edit: impl FnOnce(&mut Bundle), dest: &str) -> String {
    let out = sh_out(edit, "cat /proc/self/mountinfo");
    out.lines()
        .rfind(|l| l.split(' ').nth(4) == Some(dest))
        .unwrap_or_else(|| panic!("{dest} is no mount point in the container: {out}"))
        .to_string()
}

/// "`ociVersion` (string, REQUIRED) MUST be in SemVer v2.0.0 format" — with "Valid values":
/// "Runtimes MUST generate an error when invalid or unsupported values are encountered."
/// <https://github.com/opencontainers/runtime-spec/blob/v1.2.0/config.md#specification-version>
#[test]
fn config_oci_version_invalid_error() {
    require!();
    assert!(
        create_fails(|b| b.config["ociVersion"] = json!("not-a-version")),
        "ociVersion \"not-a-version\" accepted"
    );
}

/// Root `path`: "On POSIX platforms, `path` is either an absolute path or a relative path to the
/// bundle." (here: absolute)
/// <https://github.com/opencontainers/runtime-spec/blob/v1.2.0/config.md#root>
#[test]
fn config_root_path_absolute() {
    require!();
    let out = sh_out(
        |b| {
            let abs = b.rootfs();
            b.config["root"]["path"] = json!(abs);
        },
        "echo absolute rootfs",
    );
    assert_eq!(out, "absolute rootfs\n");
}

/// Root `path`: "A directory MUST exist at the path declared by the field." (a file is no root)
/// <https://github.com/opencontainers/runtime-spec/blob/v1.2.0/config.md#root>
#[test]
fn config_root_path_must_be_directory() {
    require!();
    assert!(
        create_fails(|b| {
            std::fs::write(b.path().join("file"), "").expect("write file");
            b.config["root"]["path"] = json!("file");
        }),
        "a regular file was accepted as the root filesystem"
    );
}

/// Root `readonly`: "If true then the root filesystem MUST be read-only inside the container".
/// <https://github.com/opencontainers/runtime-spec/blob/v1.2.0/config.md#root>
#[test]
fn config_root_readonly() {
    require!();
    let out = sh_out(
        |b| b.config["root"]["readonly"] = json!(true),
        "touch /x 2>/dev/null && echo rw || echo ro",
    );
    assert_eq!(out, "ro\n");
    let out = sh_out(|_| {}, "touch /x 2>/dev/null && echo rw || echo ro");
    assert_eq!(out, "rw\n", "readonly defaults to false");
}

/// Mounts: "The runtime MUST mount entries in the listed order." Two tmpfs on one destination:
/// the one listed last is the one seen.
/// <https://github.com/opencontainers/runtime-spec/blob/v1.2.0/config.md#mounts>
#[test]
fn config_mounts_listed_order() {
    require!();
    let out = sh_out(
        |b| {
            for mode in ["711", "750"] {
                b.add_mount(json!({ "destination": "/stack", "type": "tmpfs", "source": "tmpfs",
                    "options": [format!("mode={mode}")] }));
            }
        },
        "stat -c %a /stack",
    );
    assert_eq!(out, "750\n");
}

/// Mount `destination`: "it MAY be a relative path, in which case it MUST be interpreted as
/// relative to \"/\"."
/// <https://github.com/opencontainers/runtime-spec/blob/v1.2.0/config.md#mounts>
#[test]
fn config_mounts_destination_relative_to_root() {
    require!();
    let line = mountinfo_line(
        |b| b.add_mount(json!({ "destination": "relative", "type": "tmpfs", "source": "tmpfs" })),
        "/relative",
    );
    assert!(line.contains(" - tmpfs "), "{line}");
}

/// Mount `source`: "Path values for bind mounts are either absolute or relative to the bundle. A
/// mount is a bind mount if it has either `bind` or `rbind` in the options." (relative source,
/// and no `type`, which is OPTIONAL)
/// <https://github.com/opencontainers/runtime-spec/blob/v1.2.0/config.md#mounts>
#[test]
fn config_mounts_bind_source_relative_to_bundle() {
    require!();
    let out = sh_out(
        |b| {
            std::fs::create_dir(b.path().join("shared")).expect("mkdir");
            std::fs::write(b.path().join("shared/file"), "from the bundle\n").expect("write");
            b.add_mount(json!({ "destination": "/shared", "source": "shared", "options": ["bind"] }));
        },
        "cat /shared/file",
    );
    assert_eq!(out, "from the bundle\n");
}

/// Linux mount options: `ro` is a MUST ("Runtimes MUST/SHOULD/MAY implement the following option
/// strings").
/// <https://github.com/opencontainers/runtime-spec/blob/v1.2.0/config.md#linux-mount-options>
#[test]
fn config_mounts_option_ro() {
    require!();
    let out = sh_out(
        |b| b.add_mount(json!({ "destination": "/ro", "type": "tmpfs", "source": "tmpfs", "options": ["ro"] })),
        "touch /ro/x 2>/dev/null && echo rw || echo ro",
    );
    assert_eq!(out, "ro\n");
}

/// Linux mount options `nosuid`, `nodev`, `noexec` (MUST) reach the mount.
/// <https://github.com/opencontainers/runtime-spec/blob/v1.2.0/config.md#linux-mount-options>
#[test]
fn config_mounts_options_flags() {
    require!();
    let line = mountinfo_line(
        |b| {
            b.add_mount(json!({ "destination": "/flags", "type": "tmpfs", "source": "tmpfs",
                "options": ["nosuid", "nodev", "noexec"] }))
        },
        "/flags",
    );
    let opts = line.split(' ').nth(5).unwrap_or_default();
    for flag in ["nosuid", "nodev", "noexec"] {
        assert!(opts.split(',').any(|o| o == flag), "{flag} missing: {line}");
    }
}

/// Linux mount options: "Runtimes SHOULD treat unknown options as filesystem-specific ones and pass
/// those as a comma-separated string to the fifth (`const void *data`) argument of mount(2)."
/// <https://github.com/opencontainers/runtime-spec/blob/v1.2.0/config.md#linux-mount-options>
#[test]
fn config_mounts_filesystem_specific_options() {
    require!();
    let line = mountinfo_line(
        |b| {
            b.add_mount(json!({ "destination": "/sized", "type": "tmpfs", "source": "tmpfs",
                "options": ["size=1m", "nr_inodes=100"] }))
        },
        "/sized",
    );
    assert!(line.contains("size=1024k") && line.contains("nr_inodes=100"), "{line}");
}

/// Linux mount options: bind mount propagation `rshared` (MUST) — the mount joins a peer group.
/// <https://github.com/opencontainers/runtime-spec/blob/v1.2.0/config.md#linux-mount-options>
#[test]
fn config_mounts_option_propagation() {
    require!();
    let line = mountinfo_line(
        |b| {
            std::fs::create_dir(b.path().join("prop")).expect("mkdir");
            let src = b.path().join("prop");
            b.add_mount(
                json!({ "destination": "/prop", "type": "bind", "source": src, "options": ["rbind", "rshared"] }),
            );
        },
        "/prop",
    );
    let optional = line.split(" - ").next().unwrap_or_default();
    assert!(optional.contains("shared:"), "not shared: {line}");
}

/// Process `cwd`: "is the working directory that will be set for the executable."
/// <https://github.com/opencontainers/runtime-spec/blob/v1.2.0/config.md#process>
#[test]
fn config_process_cwd() {
    require!();
    assert_eq!(sh_out(|b| b.config["process"]["cwd"] = json!("/tmp"), "pwd"), "/tmp\n");
}

/// Process `cwd`: "This value MUST be an absolute path." (a relative one is an invalid value)
/// <https://github.com/opencontainers/runtime-spec/blob/v1.2.0/config.md#process>
#[test]
fn config_process_cwd_relative_error() {
    require!();
    assert!(
        create_fails(|b| b.config["process"]["cwd"] = json!("tmp")),
        "relative cwd accepted"
    );
}

/// Process `env`: "with the same semantics as IEEE Std 1003.1-2008's `environ`".
/// <https://github.com/opencontainers/runtime-spec/blob/v1.2.0/config.md#process>
#[test]
fn config_process_env() {
    require!();
    let out = sh_out(
        |b| b.config["process"]["env"] = json!(["PATH=/bin", "CONFORMANCE=a b=c", "EMPTY="]),
        "echo \"[$CONFORMANCE][${EMPTY-unset}]\"",
    );
    assert_eq!(out, "[a b=c][]\n");
}

/// Process `args`: "at least one entry is REQUIRED (non-Windows), and that entry is used with the
/// same semantics as `execvp`'s *file*" (searched in PATH when it has no slash).
/// <https://github.com/opencontainers/runtime-spec/blob/v1.2.0/config.md#process>
#[test]
fn config_process_args_execvp() {
    require!();
    let rt = Runtime::new();
    let mut bundle = Bundle::new(&["only-in-sbin", "arg one"]);
    std::fs::create_dir(bundle.rootfs().join("sbin")).expect("mkdir sbin");
    bundle.script("rootfs/sbin/only-in-sbin", "echo \"$1\"");
    bundle.config["process"]["env"] = json!(["PATH=/bin:/sbin"]);
    assert_eq!(rt.run_ok(&bundle), "arg one\n");
}

/// Process `args`: "at least one entry is REQUIRED" — an empty `args` is an error.
/// <https://github.com/opencontainers/runtime-spec/blob/v1.2.0/config.md#process>
#[test]
fn config_process_args_empty_error() {
    require!();
    assert!(
        create_fails(|b| b.config["process"]["args"] = json!([])),
        "empty args accepted"
    );
}

/// Process `consoleSize`: "Runtimes MUST ignore `consoleSize` if `terminal` is `false` or unset."
/// <https://github.com/opencontainers/runtime-spec/blob/v1.2.0/config.md#process>
#[test]
fn config_process_console_size_ignored_without_terminal() {
    require!();
    let out = sh_out(
        |b| b.config["process"]["consoleSize"] = json!({ "height": 25, "width": 80 }),
        "echo no terminal",
    );
    assert_eq!(out, "no terminal\n");
}

/// Process `rlimits`: "`rlim.rlim_cur` MUST match the configured value" and "`rlim.rlim_max` MUST
/// match the configured value".
/// <https://github.com/opencontainers/runtime-spec/blob/v1.2.0/config.md#posix-process>
#[test]
fn config_process_rlimits() {
    require!();
    let out = sh_out(
        |b| {
            b.config["process"]["rlimits"] = json!([
                { "type": "RLIMIT_NOFILE", "soft": 256, "hard": 512 },
                { "type": "RLIMIT_CORE", "soft": 4096, "hard": 8192 }
            ])
        },
        "grep -E 'open files|core file size' /proc/self/limits | awk '{print $(NF-2), $(NF-1)}'",
    );
    assert_eq!(out, "4096 8192\n256 512\n");
}

/// Process `rlimits` `type`: "The runtime MUST generate an error for any values which cannot be
/// mapped to a relevant kernel interface."
/// <https://github.com/opencontainers/runtime-spec/blob/v1.2.0/config.md#posix-process>
#[test]
fn config_process_rlimits_invalid_type_error() {
    require!();
    assert!(
        create_fails(|b| b.config["process"]["rlimits"] = json!([{ "type": "RLIMIT_BOGUS", "soft": 1, "hard": 1 }])),
        "RLIMIT_BOGUS accepted"
    );
}

/// "If `rlimits` contains duplicated entries with same `type`, the runtime MUST generate an error."
/// <https://github.com/opencontainers/runtime-spec/blob/v1.2.0/config.md#posix-process>
#[test]
fn config_process_rlimits_duplicate_error() {
    require!();
    assert!(
        create_fails(|b| {
            b.config["process"]["rlimits"] = json!([
                { "type": "RLIMIT_NOFILE", "soft": 256, "hard": 256 },
                { "type": "RLIMIT_NOFILE", "soft": 512, "hard": 512 }
            ])
        }),
        "duplicate RLIMIT_NOFILE accepted"
    );
}

/// The capability lines of /proc/self/status, as "Name:hex" pairs.
fn cap_lines(out: &str) -> Vec<String> {
    out.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

/// Process `capabilities`: the `bounding`, `effective`, `permitted` and `inheritable` sets are
/// those kept for the process.
/// <https://github.com/opencontainers/runtime-spec/blob/v1.2.0/config.md#linux-process>
#[test]
fn config_process_capabilities() {
    require!();
    // CAP_CHOWN (0), CAP_KILL (5): mask 0x21.
    let set = json!(["CAP_CHOWN", "CAP_KILL"]);
    let out = sh_out(
        |b| {
            b.config["process"]["capabilities"] =
                json!({ "bounding": set, "effective": set, "permitted": set, "inheritable": set });
        },
        "grep -E '^Cap(Inh|Prm|Eff|Bnd)' /proc/self/status",
    );
    assert_eq!(
        cap_lines(&out),
        [
            "CapInh: 0000000000000021",
            "CapPrm: 0000000000000021",
            "CapEff: 0000000000000021",
            "CapBnd: 0000000000000021"
        ]
    );
}

/// Process `capabilities` `ambient`: kept for a non-root process across execve.
/// <https://github.com/opencontainers/runtime-spec/blob/v1.2.0/config.md#linux-process>
#[test]
fn config_process_capabilities_ambient() {
    require!();
    // CAP_NET_BIND_SERVICE (10): mask 0x400.
    let set = json!(["CAP_NET_BIND_SERVICE"]);
    let out = sh_out(
        |b| {
            b.config["process"]["user"] = json!({ "uid": 1000, "gid": 1000 });
            b.config["process"]["capabilities"] = json!({ "bounding": set, "effective": set, "permitted": set,
                "inheritable": set, "ambient": set });
        },
        "grep -E '^Cap(Eff|Amb)' /proc/self/status",
    );
    assert_eq!(
        cap_lines(&out),
        ["CapEff: 0000000000000400", "CapAmb: 0000000000000400"]
    );
}

/// Process `capabilities`: "Any value which cannot be mapped to a relevant kernel interface, or
/// cannot be granted otherwise MUST be logged as a warning by the runtime. Runtimes SHOULD NOT
/// fail if the container configuration requests capabilities that cannot be granted".
/// <https://github.com/opencontainers/runtime-spec/blob/v1.2.0/config.md#linux-process>
#[test]
fn config_process_capabilities_unknown_not_fatal() {
    require!();
    let set = json!(["CAP_KILL", "CAP_NOT_A_CAPABILITY"]);
    let out = sh_out(
        |b| b.config["process"]["capabilities"] = json!({ "bounding": set, "effective": set, "permitted": set }),
        "echo still runs",
    );
    assert_eq!(out, "still runs\n");
}

/// Process `noNewPrivileges`: "setting `noNewPrivileges` to true prevents the process from gaining
/// additional privileges" (the kernel's no_new_privs bit).
/// <https://github.com/opencontainers/runtime-spec/blob/v1.2.0/config.md#linux-process>
#[test]
fn config_process_no_new_privileges() {
    require!();
    let nnp = |on: bool| {
        sh_out(
            |b| b.config["process"]["noNewPrivileges"] = json!(on),
            "grep NoNewPrivs /proc/self/status",
        )
        .split_whitespace()
        .last()
        .unwrap_or_default()
        .to_string()
    };
    assert_eq!(nnp(true), "1");
    assert_eq!(nnp(false), "0");
}

/// Process `oomScoreAdj`: "If `oomScoreAdj` is set, the runtime MUST set `oom_score_adj` to the
/// given value."
/// <https://github.com/opencontainers/runtime-spec/blob/v1.2.0/config.md#linux-process>
#[test]
fn config_process_oom_score_adj() {
    require!();
    let out = sh_out(
        |b| b.config["process"]["oomScoreAdj"] = json!(345),
        "cat /proc/self/oom_score_adj",
    );
    assert_eq!(out, "345\n");
}

/// Process `oomScoreAdj`: "If `oomScoreAdj` is not set, the runtime MUST NOT change the value of
/// `oom_score_adj`." The runtime is started with 37; the container must keep it.
/// <https://github.com/opencontainers/runtime-spec/blob/v1.2.0/config.md#linux-process>
#[test]
fn config_process_oom_score_adj_unset() {
    require!();
    let rt = Runtime::new();
    let bundle = Bundle::sh("cat /proc/self/oom_score_adj");
    bundle.write();
    let id = unique_id("oom");
    let mut cmd = std::process::Command::new("/bin/sh");
    cmd.args(["-c", "echo 37 > /proc/self/oom_score_adj && exec \"$@\"", "sh"])
        .arg(oci_conformance::runtime_bin())
        .arg("--root")
        .arg(rt.root())
        .args(["run", "--bundle", bundle.path_str(), &id])
        .stdin(std::process::Stdio::null());
    let (out, stdout) = rt.exec(cmd);
    rt.track(&id, stdout);
    assert!(out.success(), "run failed: {}", out.stderr);
    assert_eq!(out.stdout, "37\n");
}

/// Process `scheduler`: `policy` and `nice` set the scheduling policy and nice value.
/// <https://github.com/opencontainers/runtime-spec/blob/v1.2.0/config.md#linux-process>
#[test]
fn config_process_scheduler() {
    require!();
    // /proc/self/stat field 19 is the nice value, field 41 the policy (SCHED_BATCH = 3).
    let out = sh_out(
        |b| b.config["process"]["scheduler"] = json!({ "policy": "SCHED_BATCH", "nice": 7 }),
        "cut -d' ' -f19,41 /proc/self/stat",
    );
    assert_eq!(out, "7 3\n");
}

/// Process `ioPriority`: `class` and `priority` set the I/O scheduling class and level.
/// <https://github.com/opencontainers/runtime-spec/blob/v1.2.0/config.md#linux-process>
#[test]
fn config_process_io_priority() {
    require!();
    let out = sh_out(
        |b| b.config["process"]["ioPriority"] = json!({ "class": "IOPRIO_CLASS_BE", "priority": 6 }),
        "ionice",
    );
    assert_eq!(out, "best-effort: prio 6\n");
}

/// User `uid` and `gid`: "specifies the user ID / group ID in the container namespace".
/// <https://github.com/opencontainers/runtime-spec/blob/v1.2.0/config.md#posix-platform-user>
#[test]
fn config_process_user_uid_gid() {
    require!();
    let out = sh_out(
        |b| b.config["process"]["user"] = json!({ "uid": 1234, "gid": 5678 }),
        "grep -E '^(Uid|Gid)' /proc/self/status",
    );
    assert_eq!(
        cap_lines(&out),
        ["Uid: 1234 1234 1234 1234", "Gid: 5678 5678 5678 5678"]
    );
}

/// User `additionalGids`: "specifies additional group IDs in the container namespace to be added
/// to the process".
/// <https://github.com/opencontainers/runtime-spec/blob/v1.2.0/config.md#posix-platform-user>
#[test]
fn config_process_user_additional_gids() {
    require!();
    let out = sh_out(
        |b| b.config["process"]["user"] = json!({ "uid": 1234, "gid": 1234, "additionalGids": [11, 22] }),
        "grep '^Groups' /proc/self/status",
    );
    let groups: Vec<&str> = out.split_whitespace().skip(1).collect();
    assert!(groups.contains(&"11") && groups.contains(&"22"), "{out}");
}

/// User `umask`: "specifies the umask of the user".
/// <https://github.com/opencontainers/runtime-spec/blob/v1.2.0/config.md#posix-platform-user>
#[test]
fn config_process_user_umask() {
    require!();
    let out = sh_out(
        |b| b.config["process"]["user"]["umask"] = json!(0o027),
        "grep Umask /proc/self/status",
    );
    assert_eq!(out.split_whitespace().last(), Some("0027"), "{out}");
}

/// `hostname`: "specifies the container's hostname as seen by processes running inside the
/// container."
/// <https://github.com/opencontainers/runtime-spec/blob/v1.2.0/config.md#hostname>
#[test]
fn config_hostname() {
    require!();
    assert_eq!(
        sh_out(|b| b.config["hostname"] = json!("spec-host"), "hostname"),
        "spec-host\n"
    );
}

/// `domainname`: "specifies the container's domainname as seen by processes running inside the
/// container."
/// <https://github.com/opencontainers/runtime-spec/blob/v1.2.0/config.md#domainname>
#[test]
fn config_domainname() {
    require!();
    let out = sh_out(
        |b| b.config["domainname"] = json!("spec.test"),
        "cat /proc/sys/kernel/domainname",
    );
    assert_eq!(out, "spec.test\n");
}

/// Extensibility: "Runtimes MAY log unknown properties but MUST otherwise ignore them. That
/// includes not generating errors if they encounter an unknown property." Annotations: "Runtimes
/// MUST handle unknown annotation keys like any other unknown property."
/// <https://github.com/opencontainers/runtime-spec/blob/v1.2.0/config.md#extensibility>
#[test]
fn config_extensibility_unknown_properties_ignored() {
    require!();
    let out = sh_out(
        |b| {
            b.config["org.example.unknown"] = json!({ "nested": [1, 2] });
            b.config["process"]["org.example.unknown"] = json!(true);
            b.config["linux"]["org.example.unknown"] = json!("x");
            b.config["annotations"] = json!({ "org.example.never-heard-of": "1" });
        },
        "echo ignored",
    );
    assert_eq!(out, "ignored\n");
}
