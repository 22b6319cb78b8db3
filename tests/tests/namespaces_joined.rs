//! Namespaces in combination: a time namespace inside a new user namespace, and a second
//! container that joins a first one's user (and time) namespace by path while creating its own
//! mount, pid and uts namespaces, as runc allows.

use std::path::Path;

use hezi_e2e::{assert_nothing_left, ns_link, require, unique_id, Bundle, Hezi};
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

/// A field of /proc/PID/status, e.g. `Uid` → "101000 101000 101000 101000".
fn status_field(pid: &str, field: &str) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

#[test]
fn joining_a_user_namespace_by_path_while_creating_the_others() {
    require!();
    let h = Hezi::new();
    let with_time = Path::new("/proc/self/ns/time").exists();
    let mut kinds = vec!["pid", "mount", "ipc", "uts", "user", "network"];
    if with_time {
        kinds.push("time");
    }
    let mut first = userns_bundle(&["sleep", "1203"], &kinds);
    if with_time {
        first.linux()["timeOffsets"] = json!({ "boottime": { "secs": BOOT_SHIFT, "nanosecs": 0 } });
    }
    let a = unique_id("usera");
    let pid_a = run_detached(&h, &first, &a);

    // The second joins the first's user (and time) namespace and makes its own of the rest; it
    // brings no id mappings: the joined namespace has them.
    let mut second = Bundle::busybox(&["sleep", "1204"]);
    let mut namespaces = vec![json!({ "type": "user", "path": format!("/proc/{pid_a}/ns/user") })];
    if with_time {
        namespaces.push(json!({ "type": "time", "path": format!("/proc/{pid_a}/ns/time") }));
    }
    namespaces.extend(["pid", "mount", "ipc", "uts", "network"].map(|t| json!({ "type": t })));
    second.linux()["namespaces"] = json!(namespaces);
    second.config["hostname"] = json!("joiner");
    second.config["process"]["user"] = json!({ "uid": 1000, "gid": 1000 });
    if let Some(m) = second.config["mounts"].as_array_mut() {
        m.retain(|m| m["destination"] != "/sys/fs/cgroup");
    }
    let b = unique_id("userb");
    let pid_b = run_detached(&h, &second, &b);

    assert_eq!(
        ns_link(&pid_b, "user"),
        ns_link(&pid_a, "user"),
        "user namespace not joined"
    );
    for k in ["mnt", "pid", "uts", "ipc", "net"] {
        let mine = ns_link(&pid_b, k);
        assert_ne!(mine, ns_link(&pid_a, k), "{k} namespace is the first container's");
        assert_ne!(mine, ns_link("self", k), "{k} namespace is the host's");
    }
    // Made inside the joined user namespace, they belong to it: uid 1000 there is host 101000,
    // as the first container maps it, and the init is pid 1 of its own pid namespace.
    assert_eq!(status_field(&pid_b, "Uid"), "101000 101000 101000 101000");
    assert_eq!(status_field(&pid_b, "Gid"), "101000 101000 101000 101000");
    assert_eq!(status_field(&pid_b, "NSpid"), format!("{pid_b} 1"));

    let out = h.ok(&[
        "exec",
        &b,
        "sh",
        "-c",
        "cat /proc/self/uid_map; hostname; cat /proc/uptime",
    ]);
    let mut lines = out.lines();
    let map: Vec<&str> = lines.next().unwrap_or_default().split_whitespace().collect();
    assert_eq!(map, ["0", "100000", "65536"], "{out}");
    assert_eq!(lines.next(), Some("joiner"), "{out}");
    if with_time {
        assert_shifted(lines.next().unwrap_or_default());
    }
    h.ok(&["delete", "-f", &b]);

    // A path that is no user namespace is refused, naming it, and leaves nothing behind.
    second.linux()["namespaces"][0]["path"] = json!(format!("/proc/{pid_a}/ns/net"));
    let c = unique_id("userbad");
    let (code, _, err) = h.run(&second, &c);
    assert_ne!(code, 0);
    assert!(err.contains("user namespace") && err.contains("/ns/net"), "{err}");
    assert_nothing_left(&h, &c, &second, Some("sleep 1204"));
    h.ok(&["delete", "-f", &a]);
}

/// A Kubernetes pod with `hostUsers: false`, as containerd's CRI describes it: a new user
/// namespace, and a network namespace by path that the host's user namespace owns, behind a
/// directory only root may search (containerd's 0700 state directory). The init could neither
/// reach that path nor join a namespace of the host's from inside its new user namespace: it
/// is opened and joined before the user namespace is made, and the container lands in it.
#[test]
fn a_new_user_namespace_beside_a_host_network_namespace_behind_a_private_directory() {
    require!();
    let h = Hezi::new();
    let id = unique_id("userns-netns");
    // A network namespace of the host's user namespace, kept by a bind of a process's ns file
    // in a 0700 directory.
    let private = hezi_e2e::TempDir::new("netns-0700");
    std::fs::set_permissions(private.path(), std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let ns_file = private.path().join("net");
    std::fs::write(&ns_file, "").unwrap();
    let mut holder = std::process::Command::new("unshare")
        .args(["--net", "sleep", "1208"])
        .spawn()
        .expect("unshare --net sleep");
    let holder_pid = holder.id().to_string();
    assert!(
        hezi_e2e::wait_until(10, || ns_link(&holder_pid, "net") != ns_link("self", "net")),
        "the holder never got its own network namespace"
    );
    let src = format!("/proc/{holder_pid}/ns/net");
    nix::mount::mount(
        Some(src.as_str()),
        &ns_file,
        None::<&str>,
        nix::mount::MsFlags::MS_BIND,
        None::<&str>,
    )
    .expect("bind the network namespace");
    let want = ns_link(&holder_pid, "net");

    let mut b = userns_bundle(&["sleep", "1207"], &["user", "mount", "pid", "uts", "ipc"]);
    b.linux()["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "network", "path": ns_file}));
    let pid = run_detached(&h, &b, &id);
    assert_eq!(
        ns_link(&pid, "net"),
        want,
        "the container is in the given network namespace"
    );
    assert_ne!(
        ns_link(&pid, "user"),
        ns_link("self", "user"),
        "and in a user namespace of its own"
    );
    h.ok(&["delete", "-f", &id]);
    let _ = nix::mount::umount2(&ns_file, nix::mount::MntFlags::MNT_DETACH);
    let _ = holder.kill();
    let _ = holder.wait();
    assert_nothing_left(&h, &id, &b, Some("sleep 1207"));
}
