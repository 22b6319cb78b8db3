//! config.md "POSIX-platform Hooks" and the hook steps of runtime.md's lifecycle.
//!
//! Hooks are host scripts in the bundle directory that append a line to `hooks.log` there, except
//! startContainer hooks, whose path resolves in the container: those live in the rootfs.

use oci_conformance::{alive, ns_link, require, runtime_bin, unique_id, wait_until, Bundle, Runtime};
use serde_json::{json, Value};

/// A host hook script `name` appending `line` to the bundle's hooks.log; returns the hook entry.
fn log_hook(bundle: &Bundle, name: &str, line: &str) -> Value {
    let log = bundle.path().join("hooks.log");
    let path = bundle.script(
        &format!("hooks/{name}.sh"),
        &format!("echo {line} >> {}", log.display()),
    );
    json!({ "path": path })
}

/// A host hook script running `body`; returns the hook entry.
fn hook(bundle: &Bundle, name: &str, body: &str) -> Value {
    json!({ "path": bundle.script(&format!("hooks/{name}.sh"), body) })
}

/// Hooks MUST be called in the listed order: prestart, createRuntime and createContainer during
/// `create` (in that order), startContainer and poststart during `start`, poststop during
/// `delete` — and the entries of one hook list in their order.
/// <https://github.com/opencontainers/runtime-spec/blob/v1.2.0/config.md#posix-platform-hooks>
#[test]
fn config_hooks_called_in_order() {
    require!();
    let rt = Runtime::new();
    let mut bundle = Bundle::new(&["sleep", "1000"]);
    let log = bundle.path().join("hooks.log");
    for (kind, lines) in [
        ("prestart", ["prestart1", "prestart2"]),
        ("createRuntime", ["createRuntime1", "createRuntime2"]),
        ("createContainer", ["createContainer1", "createContainer2"]),
        ("poststart", ["poststart1", "poststart2"]),
        ("poststop", ["poststop1", "poststop2"]),
    ] {
        for line in lines {
            let h = log_hook(&bundle, line, line);
            bundle.add_hook(kind, h);
        }
    }
    // startContainer runs in the container; it appends to the same log through a bind mount.
    bundle
        .add_mount(json!({ "destination": "/hooklog", "type": "bind", "source": bundle.path(), "options": ["bind"] }));
    bundle.script("rootfs/bin/start-hook.sh", "echo $1 >> /hooklog/hooks.log");
    for n in ["startContainer1", "startContainer2"] {
        bundle.add_hook(
            "startContainer",
            json!({ "path": "/bin/start-hook.sh", "args": ["start-hook.sh", n] }),
        );
    }
    let id = unique_id("order");
    rt.create_ok(&bundle, &id);
    let lines = |s: &str| s.lines().map(str::to_string).collect::<Vec<_>>();
    let read = || std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(
        lines(&read()),
        [
            "prestart1",
            "prestart2",
            "createRuntime1",
            "createRuntime2",
            "createContainer1",
            "createContainer2"
        ],
        "hooks run by create"
    );
    rt.start_ok(&id);
    assert_eq!(
        lines(&read())[6..],
        ["startContainer1", "startContainer2", "poststart1", "poststart2"],
        "hooks run by start"
    );
    rt.ok(&["kill", &id, "KILL"]);
    rt.wait_status(&id, "stopped");
    rt.ok(&["delete", &id]);
    assert_eq!(lines(&read())[10..], ["poststop1", "poststop2"], "hooks run by delete");
}

/// "The state of the container MUST be passed to hooks over stdin so that they may do work
/// appropriate to the current state of the container."
/// <https://github.com/opencontainers/runtime-spec/blob/v1.2.0/config.md#posix-platform-hooks>
#[test]
fn config_hooks_state_on_stdin() {
    require!();
    let rt = Runtime::new();
    let mut bundle = Bundle::new(&["sleep", "1000"]);
    for kind in ["prestart", "createRuntime", "createContainer", "poststart", "poststop"] {
        let out = bundle.path().join(format!("{kind}.json"));
        let h = hook(&bundle, kind, &format!("cat > {}", out.display()));
        bundle.add_hook(kind, h);
    }
    let id = unique_id("stdin");
    // startContainer runs in the container: it writes through a bind of the bundle.
    bundle
        .add_mount(json!({ "destination": "/hooklog", "type": "bind", "source": bundle.path(), "options": ["bind"] }));
    bundle.script("rootfs/bin/start-hook.sh", "cat > /hooklog/startContainer.json");
    bundle.add_hook("startContainer", json!({ "path": "/bin/start-hook.sh" }));
    rt.create_ok(&bundle, &id);
    let pid = rt.pid(&id);
    rt.start_ok(&id);
    rt.ok(&["kill", &id, "KILL"]);
    rt.wait_status(&id, "stopped");
    rt.ok(&["delete", &id]);
    let bundle_path = std::fs::canonicalize(bundle.path()).expect("canonical bundle");
    // runtime.md's lifecycle: `created` is "after step 2" (the environment made); prestart,
    // createRuntime and createContainer are steps 3 to 5, startContainer step 7, before the
    // program runs. runtime-tools' validation (hooks_stdin) asks the same.
    for (kind, status) in [
        ("prestart", "created"),
        ("createRuntime", "created"),
        ("createContainer", "created"),
        ("startContainer", "created"),
        ("poststart", "running"),
        ("poststop", "stopped"),
    ] {
        let text = bundle.read(&format!("{kind}.json"));
        let state: Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{kind} stdin is not JSON ({e}): {text:?}"));
        assert_eq!(state["id"], json!(id), "{kind}: {state}");
        assert_eq!(state["bundle"], json!(bundle_path.to_str()), "{kind}: {state}");
        assert!(state["ociVersion"].is_string(), "{kind}: {state}");
        if kind != "poststop" {
            assert_eq!(state["pid"], json!(pid), "{kind}: {state}");
        }
        assert_eq!(state["status"], json!(status), "{kind}: {state}");
    }
}

/// State `status` `creating`: "the container is being created (step 2 in the lifecycle)". Only
/// a hook can ask while `create` is still going: `state` from a createRuntime hook.
/// <https://github.com/opencontainers/runtime-spec/blob/v1.2.0/runtime.md#state>
#[test]
fn runtime_state_status_creating() {
    require!();
    let rt = Runtime::new();
    let mut bundle = Bundle::new(&["sleep", "1000"]);
    let id = unique_id("creating");
    let seen = bundle.path().join("state-during-create.json");
    let rt_state = format!(
        "{} --root {} state {id} > {}",
        runtime_bin().display(),
        rt.root().display(),
        seen.display()
    );
    let h = hook(&bundle, "state-during-create", &rt_state);
    bundle.add_hook("createRuntime", h);
    rt.create_ok(&bundle, &id);
    rt.ok(&["delete", "--force", &id]);
    let during: Value = serde_json::from_str(&bundle.read("state-during-create.json")).expect("state JSON");
    assert_eq!(during["status"], json!("creating"), "state during create: {during}");
}

/// Hook entries: `path` with `execv` semantics, `args` as its argv, `env` as its environment.
/// <https://github.com/opencontainers/runtime-spec/blob/v1.2.0/config.md#posix-platform-hooks>
#[test]
fn config_hooks_args_and_env() {
    require!();
    let rt = Runtime::new();
    let mut bundle = Bundle::new(&["true"]);
    let out = bundle.path().join("args.out");
    let path = bundle.script(
        "hooks/args.sh",
        &format!("echo \"$0|$1|$2|$HOOK_VAR\" > {}", out.display()),
    );
    bundle.add_hook(
        "createRuntime",
        json!({ "path": path, "args": ["ignored-argv0", "one", "two"], "env": ["HOOK_VAR=from-env"] }),
    );
    let id = unique_id("args");
    rt.create_ok(&bundle, &id);
    // $0 of a script is its path (the kernel runs the interpreter with it), $1.. are args[1..].
    assert_eq!(
        bundle.read("args.out"),
        format!("{}|one|two|from-env\n", path.display())
    );
}

/// prestart and createRuntime hooks "MUST be executed in the runtime namespace"; createContainer
/// hooks "MUST be executed in the container namespace".
/// <https://github.com/opencontainers/runtime-spec/blob/v1.2.0/config.md#posix-platform-hooks>
#[test]
fn config_hooks_namespaces() {
    require!();
    let rt = Runtime::new();
    let mut bundle = Bundle::new(&["sleep", "1000"]);
    for kind in ["prestart", "createRuntime", "createContainer", "poststart"] {
        let out = bundle.path().join(format!("{kind}.ns"));
        let body = format!(
            "readlink /proc/self/ns/mnt /proc/self/ns/uts /proc/self/ns/ipc > {}",
            out.display()
        );
        let h = hook(&bundle, kind, &body);
        bundle.add_hook(kind, h);
    }
    let id = unique_id("hookns");
    rt.create_ok(&bundle, &id);
    rt.start_ok(&id);
    let pid = rt.pid(&id).to_string();
    let of = |p: &str| ["mnt", "uts", "ipc"].map(|k| ns_link(p, k)).join("\n") + "\n";
    for kind in ["prestart", "createRuntime", "poststart"] {
        assert_eq!(
            bundle.read(&format!("{kind}.ns")),
            of("self"),
            "{kind} did not run in the runtime namespaces"
        );
    }
    assert_eq!(
        bundle.read("createContainer.ns"),
        of(&pid),
        "createContainer did not run in the container namespaces"
    );
}

/// startContainer: "The `startContainer` hooks' path MUST resolve in the container namespace. The
/// `startContainer` hooks MUST be executed in the container namespace." and they "MUST be called
/// before the user-specified process is executed as part of the start operation".
/// <https://github.com/opencontainers/runtime-spec/blob/v1.2.0/config.md#startcontainer-hooks>
#[test]
fn config_hooks_start_container_in_container() {
    require!();
    let rt = Runtime::new();
    // The program records whether the hook had already run when it started.
    let mut bundle = Bundle::sh("cat /hook-ran > /program-saw; exec sleep 1000");
    // Only the rootfs has this path: the host has no /bin/in-container-hook.sh.
    bundle.script("rootfs/bin/in-container-hook.sh", "hostname > /hook-ran");
    bundle.add_hook("startContainer", json!({ "path": "/bin/in-container-hook.sh" }));
    let id = unique_id("startc");
    rt.create_ok(&bundle, &id);
    assert_eq!(bundle.read("rootfs/hook-ran"), "", "startContainer ran at create");
    rt.start_ok(&id);
    assert!(
        wait_until(10, || !bundle.read("rootfs/program-saw").is_empty()),
        "program never ran"
    );
    assert_eq!(
        bundle.read("rootfs/program-saw"),
        "conformance\n",
        "hook did not run (in the container) first"
    );
}

/// Poststart: "The `poststart` hooks MUST be called after the user-specified process is executed
/// but before the `start` operation returns."
/// <https://github.com/opencontainers/runtime-spec/blob/v1.2.0/config.md#poststart>
#[test]
fn config_hooks_poststart_before_start_returns() {
    require!();
    let rt = Runtime::new();
    let mut bundle = Bundle::new(&["sleep", "1000"]);
    let out = bundle.path().join("poststart.cmdline");
    // Record what the container process runs at that moment: the user program by now.
    let h = hook(
        &bundle,
        "poststart",
        &format!(
            "pid=$(sed -n 's/.*\"pid\": *\\([0-9]*\\).*/\\1/p'); tr '\\0' ' ' < /proc/$pid/cmdline > {}",
            out.display()
        ),
    );
    bundle.add_hook("poststart", h);
    let id = unique_id("poststart");
    rt.create_ok(&bundle, &id);
    rt.start_ok(&id);
    assert_eq!(
        bundle.read("poststart.cmdline"),
        "sleep 1000 ",
        "poststart did not see the user program"
    );
}

/// Poststop: "The `poststop` hooks MUST be called after the container is deleted but before the
/// `delete` operation returns."
/// <https://github.com/opencontainers/runtime-spec/blob/v1.2.0/config.md#poststop>
#[test]
fn config_hooks_poststop_on_delete() {
    require!();
    let rt = Runtime::new();
    let mut bundle = Bundle::new(&["true"]);
    let h = log_hook(&bundle, "poststop", "poststop");
    bundle.add_hook("poststop", h);
    let id = unique_id("poststop");
    rt.create_ok(&bundle, &id);
    rt.start_ok(&id);
    rt.wait_status(&id, "stopped");
    assert_eq!(bundle.read("hooks.log"), "", "poststop ran before delete");
    rt.ok(&["delete", &id]);
    assert_eq!(bundle.read("hooks.log"), "poststop\n");
}

/// Lifecycle steps 3–5: if a prestart, createRuntime or createContainer hook fails, "the runtime
/// MUST generate an error, stop the container, and continue the lifecycle at step 12" (destroy).
/// <https://github.com/opencontainers/runtime-spec/blob/v1.2.0/runtime.md#lifecycle>
#[test]
fn runtime_lifecycle_create_hook_failure() {
    require!();
    for kind in ["prestart", "createRuntime", "createContainer"] {
        let rt = Runtime::new();
        let mut bundle = Bundle::sh("touch /ran; exec sleep 1000");
        let h = hook(&bundle, kind, "exit 3");
        bundle.add_hook(kind, h);
        let id = unique_id("hookfail");
        assert!(
            !rt.create(&bundle, &id).success(),
            "create succeeded although {kind} failed"
        );
        if let Some(pid) = rt.state(&id).and_then(|s| s["pid"].as_i64()).filter(|p| *p > 0) {
            assert!(
                wait_until(5, || !alive(pid)),
                "{kind} failed but the container process lives on"
            );
        }
        assert_ne!(
            rt.status(&id),
            "created",
            "{kind} failed but the container is still created"
        );
        assert!(
            !bundle.rootfs().join("ran").exists(),
            "{kind} failed but the program ran"
        );
    }
}

/// Lifecycle step 7: if a startContainer hook fails, "the runtime MUST generate an error, stop the
/// container, and continue the lifecycle at step 12"; the user program must not run.
/// <https://github.com/opencontainers/runtime-spec/blob/v1.2.0/runtime.md#lifecycle>
#[test]
fn runtime_lifecycle_start_container_hook_failure() {
    require!();
    let rt = Runtime::new();
    let mut bundle = Bundle::sh("touch /ran; exec sleep 1000");
    bundle.script("rootfs/bin/failing-hook.sh", "exit 3");
    bundle.add_hook("startContainer", json!({ "path": "/bin/failing-hook.sh" }));
    let id = unique_id("startfail");
    rt.create_ok(&bundle, &id);
    let pid = rt.pid(&id);
    assert!(
        !rt.start(&id).success(),
        "start succeeded although startContainer failed"
    );
    assert!(wait_until(5, || !alive(pid)), "the container process lives on");
    assert!(!bundle.rootfs().join("ran").exists(), "the program ran");
}

/// Lifecycle step 9: "If any `poststart` hook fails, the runtime MUST log a warning, but the
/// remaining hooks and lifecycle continue as if the hook had succeeded."
/// <https://github.com/opencontainers/runtime-spec/blob/v1.2.0/runtime.md#lifecycle>
#[test]
fn runtime_lifecycle_poststart_failure_warns() {
    require!();
    let rt = Runtime::new();
    let mut bundle = Bundle::new(&["sleep", "1000"]);
    let failing = hook(&bundle, "fail", "exit 3");
    bundle.add_hook("poststart", failing);
    let after = log_hook(&bundle, "after", "after");
    bundle.add_hook("poststart", after);
    let id = unique_id("postfail");
    rt.create_ok(&bundle, &id);
    let out = rt.start(&id);
    assert!(
        out.success(),
        "start failed because of a poststart hook: {}",
        out.stderr
    );
    assert_eq!(
        bundle.read("hooks.log"),
        "after\n",
        "the remaining poststart hook did not run"
    );
    assert_eq!(rt.status(&id), "running");
}

/// Lifecycle step 13: "If any `poststop` hook fails, the runtime MUST log a warning, but the
/// remaining hooks and lifecycle continue as if the hook had succeeded."
/// <https://github.com/opencontainers/runtime-spec/blob/v1.2.0/runtime.md#lifecycle>
#[test]
fn runtime_lifecycle_poststop_failure_warns() {
    require!();
    let rt = Runtime::new();
    let mut bundle = Bundle::new(&["true"]);
    let failing = hook(&bundle, "fail", "exit 3");
    bundle.add_hook("poststop", failing);
    let after = log_hook(&bundle, "after", "after");
    bundle.add_hook("poststop", after);
    let id = unique_id("stopfail");
    rt.create_ok(&bundle, &id);
    rt.start_ok(&id);
    rt.wait_status(&id, "stopped");
    let out = rt.delete(&id);
    assert!(
        out.success(),
        "delete failed because of a poststop hook: {}",
        out.stderr
    );
    assert_eq!(
        bundle.read("hooks.log"),
        "after\n",
        "the remaining poststop hook did not run"
    );
    assert!(rt.state(&id).is_none(), "the container was not deleted");
}

/// Hook `timeout`: "the number of seconds before aborting the hook" — a hook that outlives it is
/// aborted (and so fails the create).
/// <https://github.com/opencontainers/runtime-spec/blob/v1.2.0/config.md#posix-platform-hooks>
#[test]
fn config_hooks_timeout_aborts() {
    require!();
    let rt = Runtime::new();
    let mut bundle = Bundle::new(&["true"]);
    let mut h = hook(&bundle, "slow", "exec sleep 30");
    h["timeout"] = json!(1);
    bundle.add_hook("createRuntime", h);
    let id = unique_id("timeout");
    let began = std::time::Instant::now();
    let out = rt.create(&bundle, &id);
    assert!(began.elapsed().as_secs() < 15, "the hook was not aborted after 1 s");
    assert!(!out.success(), "create succeeded although its hook timed out");
}

/// Hook `timeout`: "If set, `timeout` MUST be greater than zero." — config.md "Valid values":
/// "Runtimes MUST generate an error when invalid or unsupported values are encountered."
/// <https://github.com/opencontainers/runtime-spec/blob/v1.2.0/config.md#posix-platform-hooks>
#[test]
fn config_hooks_timeout_zero_error() {
    require!();
    let rt = Runtime::new();
    let mut bundle = Bundle::new(&["true"]);
    let mut h = hook(&bundle, "zero", "true");
    h["timeout"] = json!(0);
    bundle.add_hook("createRuntime", h);
    assert!(
        !rt.create(&bundle, &unique_id("zero")).success(),
        "timeout 0 was accepted"
    );
}

/// Hook `path`: "This specification extends the IEEE standard in that `path` MUST be absolute."
/// — with "Valid values", a relative path is an error.
/// <https://github.com/opencontainers/runtime-spec/blob/v1.2.0/config.md#posix-platform-hooks>
#[test]
fn config_hooks_path_absolute() {
    require!();
    let rt = Runtime::new();
    let mut bundle = Bundle::new(&["true"]);
    bundle.script("hooks/rel.sh", "true");
    bundle.add_hook("createRuntime", json!({ "path": "hooks/rel.sh" }));
    assert!(
        !rt.create(&bundle, &unique_id("relhook")).success(),
        "a relative hook path was accepted"
    );
}
