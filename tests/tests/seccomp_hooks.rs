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
