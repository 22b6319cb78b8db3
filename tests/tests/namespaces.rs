//! Namespaces: new ones differ from the host's, joined ones are the same, user namespaces map ids,
//! time namespaces shift clocks, uts sets names. Checked from inside and from the host.

use hezi_e2e::{ns_link, require, unique_id, Bundle, Hezi};
use serde_json::json;

const KINDS: &[(&str, &str)] = &[
    ("pid", "pid"),
    ("network", "net"),
    ("ipc", "ipc"),
    ("uts", "uts"),
    ("mount", "mnt"),
    ("cgroup", "cgroup"),
];

/// `KIND=link` lines for each of /proc/self/ns/<kind>, as the container sees them.
fn ns_script() -> String {
    KINDS
        .iter()
        .map(|(_, k)| format!("echo {k}=$(readlink /proc/self/ns/{k});"))
        .collect()
}

fn parse(out: &str, kind: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix(&format!("{kind}=")))
        .unwrap_or_default()
        .to_string()
}

#[test]
fn new_namespaces_differ_from_the_hosts() {
    require!();
    let h = Hezi::new();
    let mut b = Bundle::busybox(&["sh", "-c", &ns_script()]);
    b.namespaces(&KINDS.iter().map(|(t, _)| *t).collect::<Vec<_>>());
    let out = h.run_ok(&b, &unique_id("ns"));
    for (_, k) in KINDS {
        let inside = parse(&out, k);
        assert!(inside.starts_with(&format!("{k}:[")), "{k}: {out}");
        assert_ne!(inside, ns_link("self", k), "{k} namespace is the host's");
    }
}

#[test]
fn without_a_namespace_the_hosts_is_kept() {
    require!();
    let h = Hezi::new();
    let mut b = Bundle::busybox(&["sh", "-c", &ns_script()]);
    b.namespaces(&["pid", "mount"]);
    let out = h.run_ok(&b, &unique_id("hostns"));
    for k in ["net", "ipc", "uts", "cgroup"] {
        assert_eq!(parse(&out, k), ns_link("self", k), "{k} should be the host's");
    }
    assert_ne!(parse(&out, "pid"), ns_link("self", "pid"));
}

#[test]
fn pid_namespace_makes_the_program_pid_1() {
    require!();
    let h = Hezi::new();
    let b = Bundle::busybox(&["sh", "-c", "echo $$; ps -o pid,comm | wc -l"]);
    let out = h.run_ok(&b, &unique_id("pid1"));
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("1"));
    // header, sh, ps, wc: nothing of the host is visible.
    let count: u32 = lines.next().unwrap().trim().parse().unwrap();
    assert!(count <= 4, "host processes visible: {count} lines");
}

#[test]
fn joining_namespaces_by_path() {
    require!();
    let h = Hezi::new();
    let first = Bundle::busybox(&["sleep", "1101"]);
    let a = unique_id("nsa");
    first.write();
    h.ok(&["run", "-d", "-b", first.path().to_str().unwrap(), &a]);
    let pid = h.state(&a)["pid"].as_i64().unwrap().to_string();

    let mut second = Bundle::busybox(&["sh", "-c", &ns_script()]);
    second.linux()["namespaces"] = json!([
        { "type": "pid" },
        { "type": "mount" },
        { "type": "network", "path": format!("/proc/{pid}/ns/net") },
        { "type": "ipc", "path": format!("/proc/{pid}/ns/ipc") },
        { "type": "uts", "path": format!("/proc/{pid}/ns/uts") },
    ]);
    second.config["hostname"] = json!(null);
    let out = h.run_ok(&second, &unique_id("nsb"));
    for k in ["net", "ipc", "uts"] {
        assert_eq!(parse(&out, k), ns_link(&pid, k), "{k} not joined");
    }
    assert_ne!(
        parse(&out, "pid"),
        ns_link(&pid, "pid"),
        "pid namespace was not asked to be joined"
    );
    h.ok(&["delete", "-f", &a]);
}

#[test]
fn joining_a_pid_namespace_puts_the_process_in_it() {
    require!();
    let h = Hezi::new();
    let first = Bundle::busybox(&["sleep", "1102"]);
    let a = unique_id("pida");
    first.write();
    h.ok(&["run", "-d", "-b", first.path().to_str().unwrap(), &a]);
    let pid = h.state(&a)["pid"].as_i64().unwrap().to_string();
    let mut second = Bundle::busybox(&["sh", "-c", "echo pid=$(readlink /proc/self/ns/pid); ps -o comm"]);
    second.linux()["namespaces"] = json!([
        { "type": "pid", "path": format!("/proc/{pid}/ns/pid") },
        { "type": "mount" },
        { "type": "uts" },
    ]);
    let out = h.run_ok(&second, &unique_id("pidb"));
    assert_eq!(parse(&out, "pid"), ns_link(&pid, "pid"));
    assert!(out.contains("sleep"), "the first container's sleep is visible: {out}");
    h.ok(&["delete", "-f", &a]);
}

#[test]
fn user_namespace_maps_ids() {
    require!();
    let h = Hezi::new();
    let mut b = Bundle::busybox(&["sh", "-c", "cat /proc/self/uid_map /proc/self/gid_map; id -u; id -g"]);
    b.namespaces(&["pid", "mount", "user", "ipc", "uts", "network"]);
    b.linux()["uidMappings"] = json!([{ "containerID": 0, "hostID": 100000, "size": 65536 }]);
    b.linux()["gidMappings"] = json!([{ "containerID": 0, "hostID": 200000, "size": 65536 }]);
    // Without a cgroup namespace of its own a user namespace may not mount the host's cgroupfs.
    drop_mount(&mut b, "/sys/fs/cgroup");
    let id = unique_id("userns");
    let (code, out, err) = h.run(&b, &id);
    assert_eq!(code, 0, "{err}");
    let fields: Vec<Vec<&str>> = out.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(fields[0], ["0", "100000", "65536"]);
    assert_eq!(fields[1], ["0", "200000", "65536"]);
    assert_eq!(fields[2], ["0"]);
    assert_eq!(fields[3], ["0"]);
}

#[test]
fn time_namespace_offsets_shift_the_clocks() {
    require!();
    if !std::path::Path::new("/proc/self/ns/time").exists() {
        eprintln!("SKIP: kernel without time namespaces");
        return;
    }
    let h = Hezi::new();
    let mut b = Bundle::busybox(&["cat", "/proc/uptime"]);
    b.namespaces(&["pid", "mount", "time"]);
    let day = 86_400i64;
    b.linux()["timeOffsets"] = json!({ "boottime": { "secs": 1000 * day, "nanosecs": 0 } });
    let out = h.run_ok(&b, &unique_id("time"));
    let uptime: f64 = out.split_whitespace().next().unwrap().parse().unwrap();
    let host: f64 = std::fs::read_to_string("/proc/uptime")
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let shift = uptime - host;
    assert!(
        (shift - (1000 * day) as f64).abs() < 60.0,
        "uptime {uptime} vs host {host}"
    );
}

#[test]
fn uts_namespace_sets_hostname_and_domainname() {
    require!();
    let h = Hezi::new();
    let mut b = Bundle::busybox(&["sh", "-c", "hostname; cat /proc/sys/kernel/domainname"]);
    b.config["hostname"] = json!("box-one");
    b.config["domainname"] = json!("example.test");
    let out = h.run_ok(&b, &unique_id("uts"));
    assert_eq!(out, "box-one\nexample.test\n");
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_ne!(host.trim(), "box-one", "the host's hostname changed");
}

#[test]
fn cgroup_namespace_roots_the_container_cgroup() {
    require!();
    let h = Hezi::new();
    let b = Bundle::busybox(&["cat", "/proc/self/cgroup"]);
    let out = h.run_ok(&b, &unique_id("cgns"));
    for line in out.lines() {
        assert!(line.ends_with(":/"), "cgroup path not rooted at the container: {line}");
    }
}

#[test]
fn unknown_or_duplicate_namespaces_are_refused() {
    require!();
    let h = Hezi::new();
    let mut b = Bundle::busybox(&["true"]);
    b.linux()["namespaces"] = json!([{ "type": "pid" }, { "type": "bogus" }]);
    let id = unique_id("nsbad");
    let (code, _, err) = h.run(&b, &id);
    assert_ne!(code, 0);
    assert!(err.contains("bogus") && err.contains("config.json"), "{err}");
    b.linux()["namespaces"] = json!([{ "type": "pid" }, { "type": "mount" }, { "type": "pid" }]);
    let (code, _, err) = h.run(&b, &id);
    assert_ne!(code, 0);
    assert!(err.contains("namespace pid is listed more than once"), "{err}");
    assert!(h.ids().is_empty());
}

fn drop_mount(b: &mut Bundle, dest: &str) {
    if let Some(m) = b.config["mounts"].as_array_mut() {
        m.retain(|m| m["destination"] != dest);
    }
}
