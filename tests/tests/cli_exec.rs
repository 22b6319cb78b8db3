//! `run --pid-file`, `exec`'s exit statuses (runtime errors 255, the program's own status
//! otherwise, as runc) and `exec -p` with a process.json that leaves fields out.

use hezi_e2e::{require, unique_id, wait_until, Bundle, Hezi, TempDir};
use serde_json::json;

/// create + start a busybox `sleep`; the bundle must live as long as the container.
fn running(h: &Hezi, prefix: &str) -> (Bundle, String) {
    let b = Bundle::busybox(&["sleep", "3001"]);
    let id = unique_id(prefix);
    h.create(&b, &id);
    h.ok(&["start", &id]);
    (b, id)
}

#[test]
fn run_writes_the_pid_file() {
    require!();
    let h = Hezi::new();
    let dir = TempDir::new("run-pidfile");
    let pid_file = dir.path().join("init.pid");
    let b = Bundle::busybox(&["sleep", "3001"]);
    b.write();
    let id = unique_id("run-pidfile");
    let mut run = h
        .command(&[
            "run",
            "--pid-file",
            pid_file.to_str().unwrap(),
            "-b",
            b.path().to_str().unwrap(),
            &id,
        ])
        .spawn()
        .expect("spawn hezi run");
    assert!(
        wait_until(10, || pid_file.exists()),
        "no pid file while the container runs"
    );
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    assert_eq!(
        pid,
        h.state(&id)["pid"].to_string(),
        "the pid file holds the init's pid"
    );
    h.ok(&["kill", &id, "KILL"]);
    let status = run.wait().unwrap();
    assert_eq!(status.code(), Some(128 + 9));
}

#[test]
fn exec_runtime_errors_exit_255_and_the_programs_status_passes_through() {
    require!();
    let h = Hezi::new();
    let (_b, id) = running(&h, "exec-status");
    let code = |args: &[&str]| h.cmd(args).status.code();
    assert_eq!(code(&["exec", &id, "sh", "-c", "exit 7"]), Some(7));
    assert_eq!(code(&["exec", &id, "sh", "-c", "exit 255"]), Some(255));
    // Runtime errors, each 255 with runc's `exec failed:` prefix.
    let failed = |args: &[&str], says: &str| {
        let out = h.cmd(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(255), "{args:?}: {err}");
        assert!(err.contains("exec failed") && err.contains(says), "{args:?}: {err}");
    };
    failed(&["exec", &id, "/no/such/program"], "/no/such/program");
    failed(&["exec", "no-such-container", "true"], "does not exist");
    failed(&["exec", "--pid-file", "/nonexistent/dir/pid", &id, "true"], "pid");
    failed(&["exec", &id], "command");
    h.ok(&["pause", &id]);
    failed(&["exec", &id, "true"], "paused");
    assert_eq!(code(&["exec", "--ignore-paused", "-d", &id, "true"]), Some(0));
    h.ok(&["resume", &id]);
    // A wrong command line stays a usage error, 1, as runc's.
    assert_eq!(code(&["exec"]), Some(1));
    assert_eq!(code(&["exec", "--nope", &id, "true"]), Some(1));
    h.ok(&["delete", "-f", &id]);
}

#[test]
fn exec_process_file_with_fields_left_out_is_filled_as_runc_fills_it() {
    require!();
    let h = Hezi::new();
    let (_b, id) = running(&h, "exec-pfile");
    let dir = TempDir::new("pfile");
    let exec_p = |process: serde_json::Value| {
        let path = dir.path().join("process.json");
        std::fs::write(&path, process.to_string()).unwrap();
        h.cmd(&["exec", "-p", path.to_str().unwrap(), &id])
    };
    // No user (uid 0, gid 0), no env (only HOME), no capabilities (the container's).
    let out = exec_p(json!({
        "args": ["/bin/sh", "-c", "id -u; id -g; echo $HOME; grep CapEff /proc/self/status"],
        "cwd": "/"
    }));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let in_init = h.ok(&["exec", &id, "grep", "CapEff", "/proc/1/status"]);
    assert_eq!(text, format!("0\n0\n/\n{in_init}"));
    // Keys in another case, as runc's Go decoder reads them.
    let out =
        exec_p(json!({ "Args": ["/bin/sh", "-c", "pwd; id -u"], "Cwd": "/tmp", "User": { "UID": 65534, "gid": 0 } }));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "/tmp\n65534\n");
    // No cwd, a relative one, no args: refused with runc's words.
    for (process, says) in [
        (json!({ "args": ["true"] }), "Cwd property must not be empty"),
        (
            json!({ "args": ["true"], "cwd": "tmp" }),
            "Cwd must be an absolute path",
        ),
        (json!({ "cwd": "/" }), "args must not be empty"),
    ] {
        let out = exec_p(process.clone());
        assert_eq!(out.status.code(), Some(255), "{process}");
        assert!(String::from_utf8_lossy(&out.stderr).contains(says), "{process}");
    }
    h.ok(&["delete", "-f", &id]);
}

/// `--help` lists the flags `exec --cgroup` and `--pidfd-socket` added, as runc's does.
#[test]
fn help_lists_cgroup_and_pidfd_socket() {
    require!();
    let h = Hezi::new();
    for (command, flags) in [
        (
            "exec",
            &["--cgroup value", "--pidfd-socket value", "--ignore-paused"][..],
        ),
        ("create", &["--pidfd-socket value", "--console-socket value"]),
        ("run", &["--pidfd-socket value", "--detach, -d"]),
    ] {
        let text = h.ok(&[command, "--help"]);
        for flag in flags {
            assert!(
                text.lines().any(|l| l.trim_start().starts_with(flag)),
                "{command} --help: no {flag} in {text}"
            );
        }
    }
}
