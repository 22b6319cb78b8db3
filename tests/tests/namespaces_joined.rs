//! Namespaces in combination: a time namespace inside a new user namespace, and a second
//! container that joins a first one's user (and time) namespace by path while creating its own
//! mount, pid and uts namespaces, as runc allows.

use std::path::Path;

use hezi_e2e::{ns_link, require, unique_id, Bundle, Hezi};
use serde_json::json;

const DAY: i64 = 86_400;
/// The boottime offset the tests give: far beyond any plausible uptime of the host.
const BOOT_SHIFT: i64 = 1000 * DAY;

fn has_time_namespaces() -> bool {
    if Path::new("/proc/self/ns/time").exists() {
        return true;
    }
    eprintln!("SKIP: kernel without time namespaces");
    false
}

/// The first field of /proc/uptime (CLOCK_BOOTTIME, shifted by a time namespace's offset).
fn uptime(text: &str) -> f64 {
    text.split_whitespace()
        .next()
        .and_then(|f| f.parse().ok())
        .unwrap_or_else(|| panic!("not /proc/uptime: {text:?}"))
}

fn host_uptime() -> f64 {
    uptime(&std::fs::read_to_string("/proc/uptime").expect("read /proc/uptime"))
}

/// `inside` was read in a namespace whose boottime is `BOOT_SHIFT` ahead of the host's.
fn assert_shifted(inside: &str) {
    let shift = uptime(inside) - host_uptime();
    assert!(
        (shift - BOOT_SHIFT as f64).abs() < 60.0,
        "boottime inside {inside:?} is not {BOOT_SHIFT} s ahead of the host's ({})",
        host_uptime()
    );
}

/// A bundle with a new user namespace mapping root to host uid/gid 100000 (65536 ids), and
/// without the host's cgroupfs, which a user namespace without its own cgroup one may not mount.
fn userns_bundle(args: &[&str], namespaces: &[&str]) -> Bundle {
    let mut b = Bundle::busybox(args);
    b.namespaces(namespaces);
    b.linux()["uidMappings"] = json!([{ "containerID": 0, "hostID": 100000, "size": 65536 }]);
    b.linux()["gidMappings"] = json!([{ "containerID": 0, "hostID": 100000, "size": 65536 }]);
    if let Some(m) = b.config["mounts"].as_array_mut() {
        m.retain(|m| m["destination"] != "/sys/fs/cgroup");
    }
    b
}

fn run_detached(h: &Hezi, b: &Bundle, id: &str) -> String {
    b.write();
    h.ok(&["run", "-d", "-b", b.path().to_str().unwrap(), id]);
    h.state(id)["pid"].as_i64().unwrap().to_string()
}

#[test]
fn time_offsets_work_in_a_new_user_namespace_and_for_exec() {
    require!();
    if !has_time_namespaces() {
        return;
    }
    let h = Hezi::new();
    let mut b = userns_bundle(
        &["cat", "/proc/uptime"],
        &["pid", "mount", "ipc", "uts", "user", "time"],
    );
    b.linux()["timeOffsets"] = json!({
        "boottime": { "secs": BOOT_SHIFT, "nanosecs": 0 },
        "monotonic": { "secs": 3600, "nanosecs": 0 },
    });
    let out = h.run_ok(&b, &unique_id("timeuser"));
    assert_shifted(&out);

    // A process exec'd into the running container enters its time namespace too.
    b.config["process"]["args"] = json!(["sleep", "1201"]);
    let id = unique_id("timeexec");
    let pid = run_detached(&h, &b, &id);
    assert_ne!(ns_link(&pid, "time"), ns_link("self", "time"));
    assert_shifted(&h.ok(&["exec", &id, "cat", "/proc/uptime"]));
    h.ok(&["delete", "-f", &id]);
}

#[test]
fn a_container_joining_a_time_namespace_by_path_sees_its_offsets() {
    require!();
    if !has_time_namespaces() {
        return;
    }
    let h = Hezi::new();
    let mut first = userns_bundle(&["sleep", "1202"], &["pid", "mount", "ipc", "uts", "user", "time"]);
    first.linux()["timeOffsets"] = json!({ "boottime": { "secs": BOOT_SHIFT, "nanosecs": 0 } });
    let a = unique_id("timea");
    let pid = run_detached(&h, &first, &a);

    // Host root may join a time namespace owned by any user namespace.
    let mut second = Bundle::busybox(&["sh", "-c", "readlink /proc/self/ns/time; cat /proc/uptime"]);
    second.linux()["namespaces"] = json!([
        { "type": "pid" },
        { "type": "mount" },
        { "type": "time", "path": format!("/proc/{pid}/ns/time") },
    ]);
    second.config.as_object_mut().unwrap().remove("hostname");
    let out = h.run_ok(&second, &unique_id("timeb"));
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some(ns_link(&pid, "time").as_str()), "{out}");
    assert_shifted(lines.next().unwrap_or_default());
    h.ok(&["delete", "-f", &a]);
}
