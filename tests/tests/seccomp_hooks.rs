//! linux.seccomp and the hooks that run under the container's filter: startContainer hooks run
//! in the init after the filter is loaded, so a profile that kills a syscall kills the hook too.

use hezi_e2e::{assert_nothing_left, process_with_cmdline, require, unique_id, Bundle, Hezi};
use serde_json::json;

#[test]
fn start_container_hook_killed_by_the_filter_fails_start_naming_hook_and_signal() {
    require!();
    let h = Hezi::new();
    let marker = "hook-sigsys-program-never-runs";
    let mut b = Bundle::busybox(&["sh", "-c", &format!("echo {marker}; sleep 30")]);
    b.config["process"]["noNewPrivileges"] = json!(true);
    b.config["root"]["readonly"] = json!(false);
    b.config["hooks"] = json!({
        "startContainer": [{ "path": "/bin/busybox", "args": ["busybox", "mkdir", "/tmp/by-hook"] }]
    });
    b.linux()["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{ "names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_KILL_PROCESS" }]
    });
    let id = unique_id("hooksigsys");
    h.create(&b, &id);
    let out = h.cmd(&["start", &id]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "start succeeded: {stderr}");
    for part in [
        "startContainer hook #0",
        "/bin/busybox",
        "\"busybox\", \"mkdir\", \"/tmp/by-hook\"",
        "killed by signal SIGSYS",
        "seccomp",
    ] {
        assert!(stderr.contains(part), "no {part:?} in: {stderr}");
    }
    assert!(!b.rootfs().join("tmp/by-hook").exists(), "the hook's mkdir ran");
    // The spec's MUST: the container is stopped, its program never ran.
    assert_eq!(h.status(&id), "stopped");
    assert!(!String::from_utf8_lossy(&out.stdout).contains(marker));
    assert_eq!(process_with_cmdline(marker), None, "the program runs");
    h.ok(&["delete", &id]);
    assert_nothing_left(&h, &id, &b, Some(marker));
}

/// runtime-tools' linux_seccomp: a profile that denies getcwd, without noNewPrivileges, where
/// the filter loads before the user change. The cwd is entered and checked (CVE-2024-21626)
/// before the filter, so the container runs, and `exec` into it too; the program itself gets
/// the profile's errno from getcwd.
#[test]
fn a_profile_denying_getcwd_runs_and_execs_without_no_new_privileges() {
    require!();
    let h = Hezi::new();
    let mut b = Bundle::busybox(&["sh", "-c", "echo started; pwd -P"]);
    b.config["process"]["noNewPrivileges"] = json!(false);
    b.config["process"]["cwd"] = json!("/tmp");
    b.linux()["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{ "names": ["getcwd"], "action": "SCMP_ACT_ERRNO" }]
    });
    let id = unique_id("nogetcwd");
    let out = h.run_ok(&b, &id);
    // busybox's pwd prints an empty line when getcwd fails.
    assert_eq!(
        out, "started\n\n",
        "the filter was not in force, or the program did not run"
    );
    assert_nothing_left(&h, &id, &b, None);

    b.config["process"]["args"] = json!(["sleep", "30"]);
    let id = unique_id("nogetcwdexec");
    h.create(&b, &id);
    h.ok(&["start", &id]);
    let out = h.ok(&["exec", "--cwd", "/tmp", &id, "echo", "exec-ran"]);
    assert_eq!(out, "exec-ran\n");
    h.ok(&["delete", "-f", &id]);
    assert_nothing_left(&h, &id, &b, None);
}
