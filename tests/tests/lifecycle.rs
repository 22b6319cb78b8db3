//! runc's lifecycle commands end to end: create, start, state, kill, delete, run, list, and what
//! each leaves behind.

use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

use hezi_e2e::{alive, assert_nothing_left, process_with_cmdline, require, unique_id, Bundle, Hezi};

#[test]
fn run_passes_on_the_exit_code() {
    require!();
    let h = Hezi::new();
    let b = Bundle::busybox(&["sh", "-c", "echo out; echo err >&2; exit 7"]);
    let id = unique_id("exit");
    let (code, out, err) = h.run(&b, &id);
    assert_eq!(code, 7, "stderr: {err}");
    assert_eq!(out, "out\n", "stdout and stderr stay apart");
    assert!(err.contains("err"), "stderr: {err:?}");
    assert_nothing_left(&h, &id, &b, None);
}

/// Without a terminal the container's stdio is the caller's, stdin included (podman and
/// containerd's runc shim hand over pipes that way).
#[test]
fn run_without_a_terminal_passes_stdin_through() {
    require!();
    let h = Hezi::new();
    let b = Bundle::busybox(&["sh", "-c", "read line; echo \"got: $line\"; cat"]);
    b.write();
    let id = unique_id("stdin");
    let mut child = h
        .command(&["run", "-b", b.path().to_str().unwrap(), &id])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn hezi run");
    let mut stdin = child.stdin.take().expect("stdin pipe");
    stdin
        .write_all(b"first line\nthe rest\n")
        .expect("write to the container's stdin");
    // Closing it is the container's end of input: cat exits.
    drop(stdin);
    let out = child.wait_with_output().expect("wait for hezi run");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "got: first line\nthe rest\n");
    assert!(h.ids().is_empty());
}

#[test]
fn run_reports_128_plus_signal_of_a_killed_init() {
    require!();
    let h = Hezi::new();
    let b = Bundle::busybox(&["sleep", "1001"]);
    b.write();
    let id = unique_id("sig");
    let mut child = h
        .command(&["run", "-b", b.path().to_str().unwrap(), &id])
        .spawn()
        .expect("spawn hezi run");
    h.wait_status(&id, "running");
    h.ok(&["kill", &id, "KILL"]);
    let status = child.wait().expect("wait for hezi run");
    assert_eq!(status.code(), Some(128 + 9));
    assert_nothing_left(&h, &id, &b, Some("sleep 1001"));
}

#[test]
fn create_start_state_kill_delete() {
    require!();
    let h = Hezi::new();
    let mut b = Bundle::busybox(&["sleep", "1002"]);
    b.config["annotations"] = serde_json::json!({ "org.example.key": "value" });
    let id = unique_id("life");
    let pid_file = b.path().join("init.pid");
    b.write();
    h.ok(&[
        "create",
        "--bundle",
        b.path().to_str().unwrap(),
        "--pid-file",
        pid_file.to_str().unwrap(),
        &id,
    ]);
    let st = h.state(&id);
    assert_eq!(st["status"], "created");
    assert_eq!(st["id"], id.as_str());
    assert_eq!(st["ociVersion"], "1.2.0");
    assert_eq!(st["bundle"], b.path().canonicalize().unwrap().to_str().unwrap());
    assert_eq!(st["annotations"]["org.example.key"], "value");
    let pid = st["pid"].as_i64().expect("created container has a pid");
    assert!(pid > 0);
    assert_eq!(std::fs::read_to_string(&pid_file).unwrap().trim(), pid.to_string());
    // The init waits in hezi, not yet in the program.
    assert!(process_with_cmdline("sleep 1002").is_none(), "program ran before start");

    h.ok(&["start", &id]);
    assert_eq!(h.status(&id), "running");
    assert!(process_with_cmdline("sleep 1002").is_some());
    let again = h.cmd(&["start", &id]);
    assert!(!again.status.success(), "start of a running container must fail");
    assert!(String::from_utf8_lossy(&again.stderr).contains("running"));

    let busy = h.cmd(&["delete", &id]);
    assert!(
        !busy.status.success(),
        "delete of a running container without --force must fail"
    );
    // pid 1 of a pid namespace ignores signals it has no handler for: KILL, as runc's users do.
    h.ok(&["kill", &id, "KILL"]);
    h.wait_status(&id, "stopped");
    assert_eq!(h.state(&id)["pid"], 0, "a stopped container reports no pid");
    h.ok(&["delete", &id]);
    assert!(!pid_file.exists(), "pid file removed by delete");
    assert_nothing_left(&h, &id, &b, Some("sleep 1002"));
}

#[test]
fn kill_accepts_runc_signal_forms() {
    require!();
    let h = Hezi::new();
    // The shell traps each signal and reports it; pid 1 ignores signals it has no handler for.
    let b = Bundle::busybox(&[
        "sh",
        "-c",
        "trap 'echo HUP' HUP; trap 'echo USR1' USR1; trap 'echo INT' INT; echo ready; while :; do sleep 0.1; done",
    ]);
    b.write();
    let id = unique_id("kill");
    let log = b.path().join("out.log");
    let file = std::fs::File::create(&log).unwrap();
    let mut cmd = h.command(&["run", "-b", b.path().to_str().unwrap(), &id]);
    cmd.stdout(file);
    // An ignored signal stays ignored across execve, and a shell may not trap a signal it
    // started with ignored: under `nohup` (SIGHUP) or as a background job of a script (SIGINT)
    // the container's shell could never report them. runc passes such dispositions on too; the
    // test starts hezi from default ones, whatever ran the suite.
    // SAFETY: between fork and exec only signal(2) with SIG_DFL, which is async-signal-safe.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
            for s in [libc::SIGHUP, libc::SIGINT, libc::SIGUSR1] {
                libc::signal(s, libc::SIG_DFL);
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    h.wait_status(&id, "running");
    wait_for_text(&log, "ready");
    for (sig, seen) in [("HUP", "HUP"), ("SIGUSR1", "USR1"), ("2", "INT")] {
        h.ok(&["kill", &id, sig]);
        wait_for_text(&log, seen);
    }
    let bad = h.cmd(&["kill", &id, "SIGNOPE"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("invalid signal \"SIGNOPE\""));
    h.ok(&["kill", &id, "9"]);
    assert_eq!(child.wait().unwrap().code(), Some(137));
}

#[test]
fn kill_with_signal_0_checks_that_the_container_runs() {
    require!();
    let h = Hezi::new();
    let b = Bundle::busybox(&["sleep", "3051"]);
    b.write();
    let id = unique_id("kill0");
    h.ok(&["run", "-d", "-b", b.path().to_str().unwrap(), &id]);
    h.ok(&["kill", &id, "0"]);
    assert_eq!(h.status(&id), "running", "signal 0 changed the container");
    h.ok(&["kill", &id, "KILL"]);
    h.wait_status(&id, "stopped");
    let out = h.cmd(&["kill", &id, "0"]);
    assert!(!out.status.success(), "kill 0 of a stopped container succeeded");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("container not running"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    h.ok(&["delete", &id]);
    assert_nothing_left(&h, &id, &b, Some("sleep 3051"));
}

/// containerd's runc shim takes a kill failing with runc's "container not running" as the kill of
/// an exited container (done); any other words fail CRI's StopContainer and its exit handling.
#[test]
fn kill_of_a_stopped_container_says_not_running_like_runc() {
    require!();
    let h = Hezi::new();
    let b = Bundle::busybox(&["true"]);
    let id = unique_id("killstopped");
    h.create(&b, &id);
    h.ok(&["start", &id]);
    h.wait_status(&id, "stopped");
    // (`kill --all` of a stopped container succeeds, as runc's does: the shim sends it to clean
    // up what an init sharing its pid namespace left behind; runc_compat.rs tests that.)
    for args in [&["kill", &id, "KILL"][..], &["kill", &id, "TERM"]] {
        let out = h.cmd(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains("container not running"),
            "hezi {args:?} of a stopped container: {} {err:?}",
            out.status
        );
    }
    h.ok(&["delete", &id]);
    assert_nothing_left(&h, &id, &b, None);
}

fn wait_for_text(path: &std::path::Path, text: &str) {
    for _ in 0..200 {
        if std::fs::read_to_string(path).unwrap_or_default().contains(text) {
            return;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("{text:?} never appeared in {}", path.display());
}

#[test]
fn delete_force_kills_a_running_container_and_tolerates_a_missing_one() {
    require!();
    let h = Hezi::new();
    let b = Bundle::busybox(&["sleep", "1003"]);
    let id = unique_id("force");
    h.create(&b, &id);
    h.ok(&["start", &id]);
    h.ok(&["delete", "--force", &id]);
    assert_nothing_left(&h, &id, &b, Some("sleep 1003"));
    // runc: force-deleting what does not exist succeeds; a plain delete names the id.
    h.ok(&["delete", "-f", &id]);
    let out = h.cmd(&["delete", &id]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains(&id));
}

#[test]
fn delete_of_a_created_container_kills_its_waiting_init() {
    require!();
    let h = Hezi::new();
    let b = Bundle::busybox(&["sleep", "1004"]);
    let id = unique_id("created");
    h.create(&b, &id);
    let pid = h.state(&id)["pid"].as_i64().unwrap();
    h.ok(&["delete", &id]);
    assert!(!alive(pid), "init {pid} still alive");
    assert_nothing_left(&h, &id, &b, Some("sleep 1004"));
}

#[test]
fn racing_creates_of_one_id_have_exactly_one_winner() {
    require!();
    let h = Hezi::new();
    let b = Bundle::busybox(&["sleep", "1005"]);
    b.write();
    let id = unique_id("race");
    let bundle = b.path().to_str().unwrap();
    let outs: Vec<_> = std::thread::scope(|sc| {
        let running: Vec<_> = (0..6)
            .map(|_| sc.spawn(|| h.cmd(&["create", "-b", bundle, &id])))
            .collect();
        running.into_iter().map(|t| t.join().unwrap()).collect()
    });
    let winners = outs.iter().filter(|o| o.status.success()).count();
    assert_eq!(winners, 1, "exactly one create wins");
    for o in outs.iter().filter(|o| !o.status.success()) {
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("exists"), "loser's error: {err}");
    }
    assert_eq!(h.status(&id), "created");
    h.ok(&["delete", &id]);
    assert_nothing_left(&h, &id, &b, Some("sleep 1005"));
}

#[test]
fn concurrent_commands_on_one_container_are_safe() {
    require!();
    let h = Hezi::new();
    let b = Bundle::busybox(&["sleep", "1006"]);
    let id = unique_id("conc");
    h.create(&b, &id);
    // Several starts at once: exactly one releases the init; the others see it running.
    let (starts, states): (Vec<_>, Vec<_>) = std::thread::scope(|sc| {
        let starts: Vec<_> = (0..4).map(|_| sc.spawn(|| h.cmd(&["start", &id]))).collect();
        let states: Vec<_> = (0..4).map(|_| sc.spawn(|| h.cmd(&["state", &id]))).collect();
        (
            starts.into_iter().map(|t| t.join().unwrap()).collect(),
            states.into_iter().map(|t| t.join().unwrap()).collect(),
        )
    });
    let ok_starts = starts.iter().filter(|o| o.status.success()).count();
    assert_eq!(ok_starts, 1);
    for out in states {
        assert!(out.status.success());
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("state is whole JSON");
        assert!(matches!(v["status"].as_str(), Some("created" | "running")), "{v}");
    }
    h.ok(&["delete", "-f", &id]);
    assert_nothing_left(&h, &id, &b, Some("sleep 1006"));
}

/// Many containers run at once with the default spec (its /dev nodes and v1 device rules) all
/// succeed and leave nothing. Writing the cgroup limits while the init made its /dev nodes
/// failed about one run in fifty with `mknod .../dev/null: EPERM` (bench/run.sh's 50 at once).
#[test]
fn many_containers_at_once_all_run_and_leave_nothing() {
    require!();
    let h = Hezi::new();
    let b = Bundle::busybox(&["true"]);
    // Written once: each `run` reads it while the others run.
    b.write();
    for round in 0..8 {
        let ids: Vec<String> = (0..40).map(|i| unique_id(&format!("many{round}x{i}"))).collect();
        let outs: Vec<_> = std::thread::scope(|sc| {
            let running: Vec<_> = ids
                .iter()
                .map(|id| sc.spawn(|| h.cmd(&["run", "-b", b.path().to_str().unwrap(), id])))
                .collect();
            running.into_iter().map(|t| t.join().unwrap()).collect()
        });
        for (id, o) in ids.iter().zip(&outs) {
            assert!(o.status.success(), "{id}: {}", String::from_utf8_lossy(&o.stderr));
            assert_nothing_left(&h, id, &b, None);
        }
    }
}

#[test]
fn list_shows_table_json_and_ids() {
    require!();
    let h = Hezi::new();
    let b = Bundle::busybox(&["sleep", "1007"]);
    let (a, c) = (unique_id("lista"), unique_id("listb"));
    h.create(&b, &a);
    h.create(&b, &c);
    h.ok(&["start", &c]);
    assert_eq!(h.ids(), vec![a.clone(), c.clone()]);
    let table = h.ok(&["list"]);
    let mut lines = table.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]);
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(rows[0][0], a);
    assert_eq!(rows[0][2], "created");
    assert_eq!(rows[1][2], "running");
    assert_eq!(rows[1][5], "root");
    let json: serde_json::Value = serde_json::from_str(&h.ok(&["list", "--format", "json"])).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 2);
    assert_eq!(json[1]["id"], c.as_str());
    assert_eq!(json[1]["status"], "running");
    let bad = h.cmd(&["list", "--format", "yaml"]);
    assert!(!bad.status.success());
}

#[test]
fn run_detached_leaves_the_container_running() {
    require!();
    let h = Hezi::new();
    let b = Bundle::busybox(&["sleep", "1008"]);
    b.write();
    let id = unique_id("detach");
    h.ok(&["run", "-d", "-b", b.path().to_str().unwrap(), &id]);
    assert_eq!(h.status(&id), "running");
    h.ok(&["kill", &id, "KILL"]);
    h.wait_status(&id, "stopped");
    h.ok(&["delete", &id]);
    assert_nothing_left(&h, &id, &b, Some("sleep 1008"));
}

#[test]
fn run_keep_leaves_a_stopped_container() {
    require!();
    let h = Hezi::new();
    let b = Bundle::busybox(&["true"]);
    b.write();
    let id = unique_id("keep");
    h.ok(&["run", "--keep", "-b", b.path().to_str().unwrap(), &id]);
    assert_eq!(h.status(&id), "stopped");
    h.ok(&["delete", &id]);
    assert_nothing_left(&h, &id, &b, None);
}

/// What is wrong, how the bundle is broken, and what the error must name.
type SetupCase = (&'static str, fn(&mut Bundle), &'static [&'static str]);

/// A failure inside the container's setup comes back from `create` and `run` naming the step
/// and the path, with a non-zero exit and nothing left behind.
#[test]
fn setup_failures_name_the_step_and_leave_nothing() {
    require!();
    let h = Hezi::new();
    let cases: &[SetupCase] = &[
        (
            "missing executable",
            |b| b.config["process"]["args"] = serde_json::json!(["/bin/nope", "x"]),
            &["/bin/nope"],
        ),
        (
            "program not in PATH",
            |b| b.config["process"]["args"] = serde_json::json!(["nope-cmd"]),
            &["nope-cmd", "PATH"],
        ),
        (
            "bind source missing",
            |b| {
                b.config["mounts"].as_array_mut().unwrap().push(serde_json::json!({
                    "destination": "/data", "type": "bind", "source": "/no/such/source", "options": ["rbind"] }))
            },
            &["/no/such/source"],
        ),
        (
            "cwd is a file",
            |b| {
                std::fs::write(b.rootfs().join("etc/afile"), "x").unwrap();
                b.config["process"]["cwd"] = serde_json::json!("/etc/afile");
            },
            &["cwd", "/etc/afile"],
        ),
        (
            "mount refused",
            |b| {
                b.config["mounts"].as_array_mut().unwrap().push(serde_json::json!({
                    "destination": "/bad", "type": "no-such-fs", "source": "none" }))
            },
            &["/bad", "no-such-fs"],
        ),
    ];
    for (what, edit, needles) in cases {
        for command in ["create", "run"] {
            let mut b = Bundle::busybox(&["sleep", "1009"]);
            edit(&mut b);
            b.write();
            let id = unique_id("setupfail");
            let out = h.cmd(&[command, "-b", b.path().to_str().unwrap(), &id]);
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{what} ({command}): {err}");
            for n in *needles {
                assert!(err.contains(n), "{what} ({command}): error does not name {n:?}: {err}");
            }
            assert_nothing_left(&h, &id, &b, Some("sleep 1009"));
        }
    }
}

/// Failing poststart and poststop hooks do not fail the operation (the spec), and each
/// leaves a warning naming the hook and how it failed.
#[test]
fn failing_poststart_and_poststop_hooks_are_logged_not_fatal() {
    require!();
    let h = Hezi::new();
    let mut b = Bundle::busybox(&["true"]);
    b.config["hooks"] = serde_json::json!({
        "poststart": [{ "path": "/bin/false" }],
        "poststop": [{ "path": "/bin/sh", "args": ["sh", "-c", "exit 4"] }]
    });
    b.write();
    let id = unique_id("hookwarn");
    let out = h.cmd(&["run", "-b", b.path().to_str().unwrap(), &id]);
    assert!(out.status.success(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("level=warn msg=\"poststart hook #0 (/bin/false): failed: exit status: 1\""),
        "{err}"
    );
    assert!(
        err.contains("level=warn msg=\"poststop hook #0 (/bin/sh): failed: exit status: 4\""),
        "{err}"
    );
    assert!(h.ids().is_empty());
}
