//! Containers that do not own their pid namespace (the host's, or another container's joined
//! by path, as a pod's containers join the sandbox's): killing the init does not take the other
//! processes with it, so `kill ID KILL` and `delete` go through the container's cgroup, as runc
//! does.

use hezi_e2e::*;

/// Three processes: two background sleeps and the init, each with a marker of its own.
fn several_processes(id: &str, marks: [&str; 3]) -> Vec<String> {
    let script = format!("sleep {} & sleep {} & exec sleep {}", marks[0], marks[1], marks[2]);
    vec!["sh".into(), "-c".into(), script, id.into()]
}

/// A bundle whose namespaces leave out pid (the host's pid namespace), or join `pid_path`.
fn bundle(args: &[String], pid_path: Option<&str>) -> Bundle {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut b = Bundle::busybox(&args);
    b.namespaces(&["mount", "ipc", "uts", "network"]);
    if let Some(path) = pid_path {
        let ns = b.linux()["namespaces"].as_array_mut().expect("namespaces");
        ns.push(serde_json::json!({ "type": "pid", "path": path }));
    }
    b.write();
    b
}

fn all_running(marks: &[&str]) -> bool {
    marks
        .iter()
        .all(|m| process_with_cmdline(&format!("sleep {m}")).is_some())
}

fn none_running(marks: &[&str]) -> bool {
    marks
        .iter()
        .all(|m| process_with_cmdline(&format!("sleep {m}")).is_none())
}

#[test]
fn kill_in_the_host_pid_namespace_ends_every_process() {
    require!();
    let h = Hezi::new();
    let id = unique_id("hostpid");
    let marks = ["3011", "3012", "3013"];
    let b = bundle(&several_processes(&id, marks), None);
    h.ok(&["run", "-d", "--bundle", b.path().to_str().unwrap(), &id]);
    assert!(
        wait_until(10, || all_running(&marks)),
        "the container's processes did not start"
    );
    h.ok(&["kill", &id, "KILL"]);
    assert!(
        wait_until(10, || none_running(&marks)),
        "kill KILL left processes of a host-pid container running"
    );
    h.wait_status(&id, "stopped");
    h.ok(&["delete", &id]);
    assert_nothing_left(&h, &id, &b, Some(&id));
}

#[test]
fn delete_force_in_the_host_pid_namespace_ends_every_process() {
    require!();
    let h = Hezi::new();
    let id = unique_id("hostpiddel");
    let marks = ["3021", "3022", "3023"];
    let b = bundle(&several_processes(&id, marks), None);
    h.ok(&["run", "-d", "--bundle", b.path().to_str().unwrap(), &id]);
    assert!(
        wait_until(10, || all_running(&marks)),
        "the container's processes did not start"
    );
    h.ok(&["delete", "--force", &id]);
    // delete returns once the cgroup is empty: no wait here.
    assert!(
        none_running(&marks),
        "delete --force left processes of a host-pid container"
    );
    assert_nothing_left(&h, &id, &b, Some(&id));
}

#[test]
fn killing_the_init_of_a_joined_pid_namespace_ends_its_processes_only() {
    require!();
    let h = Hezi::new();
    // The "sandbox": a container owning its pid namespace, as a pod's pause container.
    let sandbox_id = unique_id("pidsandbox");
    let sandbox = Bundle::busybox(&["sleep", "3030"]);
    sandbox.write();
    h.ok(&["run", "-d", "--bundle", sandbox.path().to_str().unwrap(), &sandbox_id]);
    let sandbox_pid = h.state(&sandbox_id)["pid"].as_i64().expect("sandbox pid");
    let id = unique_id("pidmember");
    let marks = ["3031", "3032", "3033"];
    let b = bundle(
        &several_processes(&id, marks),
        Some(&format!("/proc/{sandbox_pid}/ns/pid")),
    );
    h.ok(&["run", "-d", "--bundle", b.path().to_str().unwrap(), &id]);
    assert!(
        wait_until(10, || all_running(&marks)),
        "the member's processes did not start"
    );
    h.ok(&["kill", &id, "KILL"]);
    assert!(
        wait_until(10, || none_running(&marks)),
        "kill KILL left processes of a container in a joined pid namespace"
    );
    assert_eq!(h.status(&sandbox_id), "running", "the sandbox went too");
    h.wait_status(&id, "stopped");
    h.ok(&["delete", &id]);
    assert_nothing_left(&h, &id, &b, Some(&id));
    h.ok(&["delete", "--force", &sandbox_id]);
    assert_nothing_left(&h, &sandbox_id, &sandbox, Some("sleep 3030"));
}
