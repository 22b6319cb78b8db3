//! Rootless containers: an unprivileged user (tests/src/rootless.rs) runs hezi's commands on
//! bundles from `hezi spec --rootless` and `runc spec --rootless`, with hezi's default `--root`
//! ($XDG_RUNTIME_DIR/hezi). Without a cgroup the user owns, containers run without one; with a
//! delegated cgroup, limits are enforced. Id maps: the user's own id written directly (setgroups
//! denied), ranges from /etc/subuid through newuidmap.

use std::path::{Path, PathBuf};

use hezi_e2e::rootless::{user, user_hezi_bin, UserHezi, USER};
use hezi_e2e::{cgroup_dirs, unique_id, wait_until, Bundle, TempDir};
use serde_json::{json, Value};

/// A bundle whose config.json `generator` made as the user with `spec --rootless`, running
/// `args` without a terminal. The bundle (rootfs included) belongs to root and is readable by
/// all, as a system-wide image would be.
fn rootless_bundle(uh: &UserHezi, generator: &Path, args: &[&str]) -> Bundle {
    let dir: TempDir = uh.user.dir("spec");
    let d = dir.path().to_str().expect("utf-8 path");
    let out = uh.run_program(generator, &["spec", "--rootless", "--bundle", d]);
    assert_eq!(out.code, 0, "{} spec --rootless: {out:?}", generator.display());
    let text = std::fs::read_to_string(dir.path().join("config.json")).expect("read config.json");
    let mut config: Value = serde_json::from_str(&text).expect("parse config.json");
    config["process"]["terminal"] = json!(false);
    config["process"]["args"] = json!(args);
    let b = Bundle::with_config(config);
    b.write();
    b
}

fn setup() -> Option<UserHezi> {
    user().map(|u| UserHezi::new(&u))
}

fn bundle_arg(b: &Bundle) -> &str {
    b.path().to_str().expect("utf-8 path")
}

fn status(uh: &UserHezi, id: &str) -> String {
    let out = uh.cmd(&["state", id]);
    let v: Value = serde_json::from_str(&out.stdout).unwrap_or(Value::Null);
    v["status"].as_str().unwrap_or_default().to_string()
}

/// Nothing of `id` left: no state under the user's root, no cgroup at hezi's default place.
fn assert_gone(uh: &UserHezi, id: &str) {
    assert!(!uh.root().join(id).exists(), "state of {id} left");
    assert!(!uh.ok(&["list", "-q"]).lines().any(|l| l == id), "{id} still listed");
    assert!(cgroup_dirs(id).is_empty(), "cgroups of {id}: {:?}", cgroup_dirs(id));
}

#[test]
fn run_maps_the_callers_id_to_root_and_denies_setgroups() {
    let Some(uh) = setup() else { return };
    let b = rootless_bundle(
        &uh,
        &user_hezi_bin(),
        &[
            "sh",
            "-c",
            "id -u; cat /proc/self/uid_map /proc/self/gid_map /proc/self/setgroups",
        ],
    );
    let id = unique_id("rl-run");
    let out = uh.cmd(&["--debug", "run", "--bundle", bundle_arg(&b), &id]);
    assert_eq!(out.code, 0, "{out:?}");
    let words: Vec<&str> = out.stdout.split_whitespace().collect();
    let (uid, gid) = (uh.user.uid.to_string(), uh.user.gid.to_string());
    assert_eq!(words, ["0", "0", &uid, "1", "0", &gid, "1", "deny"], "{out:?}");
    // runc's behaviour, at debug level: no cgroup the user may make, so none.
    assert!(out.stderr.contains("running without a cgroup"), "{out:?}");
    assert!(uh.root().is_dir(), "state under $XDG_RUNTIME_DIR/hezi");
    assert_gone(&uh, &id);
}

#[test]
fn lifecycle_commands_as_an_unprivileged_user() {
    let Some(uh) = setup() else { return };
    let b = rootless_bundle(&uh, &user_hezi_bin(), &["sleep", "300"]);
    let id = unique_id("rl-life");
    uh.ok(&["create", "--bundle", bundle_arg(&b), &id]);
    assert_eq!(status(&uh, &id), "created");
    assert!(uh.root().join(&id).is_dir(), "state in the default root");
    uh.ok(&["start", &id]);
    assert_eq!(status(&uh, &id), "running");
    let list = uh.ok(&["list"]);
    assert!(list.contains(&id) && list.contains(USER), "OWNER is the user: {list}");

    assert_eq!(uh.ok(&["exec", &id, "id", "-u"]).trim(), "0");
    // A second process, seen by ps (no cgroup: the processes of the init's pid namespace).
    uh.ok(&["exec", "-d", &id, "sleep", "301"]);
    let ps = uh.ok(&["ps", &id]);
    assert!(ps.contains("sleep 300") && ps.contains("sleep 301"), "{ps}");

    // Without a cgroup there is nothing to freeze: a clear error, and the container runs on.
    let paused = uh.cmd(&["pause", &id]);
    assert_ne!(paused.code, 0, "{paused:?}");
    assert!(paused.stderr.contains("no cgroup"), "{paused:?}");
    assert_eq!(status(&uh, &id), "running");

    uh.ok(&["kill", "--all", &id, "KILL"]);
    assert!(wait_until(10, || status(&uh, &id) == "stopped"), "stopped after kill");
    uh.ok(&["delete", &id]);
    assert_gone(&uh, &id);

    // run -d, then delete --force of the running container.
    let id = unique_id("rl-detached");
    uh.ok(&["run", "-d", "--bundle", bundle_arg(&b), &id]);
    assert_eq!(status(&uh, &id), "running");
    uh.ok(&["delete", "--force", &id]);
    assert_gone(&uh, &id);
}

#[test]
fn runc_spec_rootless_bundle_runs() {
    if !hezi_e2e::containerd::prerequisites_with(&[("runc", "runc")]) {
        return;
    }
    let Some(uh) = setup() else { return };
    let runc = PathBuf::from("/usr/sbin/runc");
    let runc = if runc.exists() { runc } else { PathBuf::from("runc") };
    let b = rootless_bundle(&uh, &runc, &["sh", "-c", "id -u; hostname"]);
    let id = unique_id("rl-runc");
    let out = uh.cmd(&["run", "--bundle", bundle_arg(&b), &id]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.stdout, "0\nrunc\n", "{out:?}");
    assert_gone(&uh, &id);
}

#[test]
fn limits_without_a_cgroup_are_an_error_that_says_why() {
    let Some(uh) = setup() else { return };
    let mut b = rootless_bundle(&uh, &user_hezi_bin(), &["true"]);
    b.linux()["resources"] = json!({ "pids": { "limit": 10 } });
    b.write();
    let id = unique_id("rl-limits");
    let out = uh.cmd(&["run", "--bundle", bundle_arg(&b), &id]);
    assert_ne!(out.code, 0, "{out:?}");
    for words in ["linux.resources pids", "may not make one", "EACCES"] {
        assert!(out.stderr.contains(words), "{words:?} in {out:?}");
    }
    assert_gone(&uh, &id);
}

#[test]
fn an_unprivileged_user_needs_a_user_namespace() {
    let Some(uh) = setup() else { return };
    let mut b = rootless_bundle(&uh, &user_hezi_bin(), &["true"]);
    b.namespaces(&["pid", "mount", "uts", "ipc"]);
    let linux = b.linux().as_object_mut().expect("linux");
    linux.remove("uidMappings");
    linux.remove("gidMappings");
    b.write();
    let id = unique_id("rl-nouserns");
    let out = uh.cmd(&["run", "--bundle", bundle_arg(&b), &id]);
    assert_ne!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains("needs a user namespace"), "{out:?}");
    assert_gone(&uh, &id);
}

/// The user's first range in /etc/subuid (or /etc/subgid): (start, size).
fn subid_range(file: &str) -> (u32, u32) {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    text.lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() != 3 || f[0] != USER {
                return None;
            }
            Some((f[1].parse().ok()?, f[2].parse().ok()?))
        })
        .unwrap_or_else(|| panic!("{USER} has no range in {file} (useradd gives one)"))
}

#[test]
fn subordinate_ranges_are_mapped_through_newuidmap() {
    if !hezi_e2e::containerd::prerequisites_with(&[("newuidmap", "uidmap"), ("newgidmap", "uidmap")]) {
        return;
    }
    let Some(uh) = setup() else { return };
    let ((us, un), (gs, gn)) = (subid_range("/etc/subuid"), subid_range("/etc/subgid"));
    let mut b = rootless_bundle(
        &uh,
        &user_hezi_bin(),
        &["sh", "-c", "cat /proc/self/uid_map /proc/self/setgroups; id -u; id -G"],
    );
    b.linux()["uidMappings"] = json!([{ "containerID": 0, "hostID": uh.user.uid, "size": 1 },
                                      { "containerID": 1, "hostID": us, "size": un }]);
    b.linux()["gidMappings"] = json!([{ "containerID": 0, "hostID": uh.user.gid, "size": 1 },
                                      { "containerID": 1, "hostID": gs, "size": gn }]);
    b.config["process"]["user"] = json!({ "uid": 1000, "gid": 1000, "additionalGids": [5] });
    b.write();
    let id = unique_id("rl-subid");
    let out = uh.cmd(&["run", "--bundle", bundle_arg(&b), &id]);
    assert_eq!(out.code, 0, "{out:?}");
    let words: Vec<&str> = out.stdout.split_whitespace().collect();
    let (uid, us, un) = (uh.user.uid.to_string(), us.to_string(), un.to_string());
    // Both ranges, setgroups allowed (newgidmap checked them), and the supplementary group set.
    assert_eq!(
        words,
        ["0", &uid, "1", "1", &us, &un, "allow", "1000", "1000", "5"],
        "{out:?}"
    );
    assert_gone(&uh, &id);

    // A single own gid leaves setgroups denied: additionalGids cannot be set, and say so.
    let mut b = rootless_bundle(&uh, &user_hezi_bin(), &["true"]);
    b.config["process"]["user"] = json!({ "uid": 0, "gid": 0, "additionalGids": [1] });
    b.write();
    let id = unique_id("rl-nogroups");
    let out = uh.cmd(&["run", "--bundle", bundle_arg(&b), &id]);
    assert_ne!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains("setgroups"), "{out:?}");
    assert_gone(&uh, &id);
}

#[test]
fn a_joined_network_namespace_works() {
    let Some(uh) = setup() else { return };
    // A network namespace of the user's own, held by `unshare -rn`: owned by the user namespace
    // made with it, which the container joins too (runc's and rootlesskit's way: a namespace
    // the container may join must belong to a user namespace it is in).
    let holder = uh
        .user
        .command(uh.runtime_dir.path(), Path::new("unshare"), &["-rn", "sleep", "60"])
        .spawn()
        .expect("spawn unshare");
    let pid = holder.id().to_string();
    let _reap = Reaper(holder);
    assert!(
        wait_until(5, || hezi_e2e::ns_link(&pid, "net") != hezi_e2e::ns_link("self", "net")),
        "unshare made its namespaces"
    );
    let mut b = rootless_bundle(
        &uh,
        &user_hezi_bin(),
        &["sh", "-c", "readlink /proc/self/ns/net; id -u"],
    );
    b.linux()["namespaces"] = json!([
        { "type": "pid" }, { "type": "ipc" }, { "type": "uts" }, { "type": "mount" },
        { "type": "user", "path": format!("/proc/{pid}/ns/user") },
        { "type": "network", "path": format!("/proc/{pid}/ns/net") }
    ]);
    let linux = b.linux().as_object_mut().expect("linux");
    linux.remove("uidMappings");
    linux.remove("gidMappings");
    b.write();
    let id = unique_id("rl-netns");
    let out = uh.cmd(&["run", "--bundle", bundle_arg(&b), &id]);
    assert_eq!(out.code, 0, "{out:?}");
    let want = format!("{}\n0\n", hezi_e2e::ns_link(&pid, "net"));
    assert_eq!(out.stdout, want, "{out:?}");
    assert_gone(&uh, &id);
}

/// Kills and reaps a helper process on drop.
struct Reaper(std::process::Child);

impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A cgroup subtree delegated to the test user for one test: `/<name>` in every hierarchy,
/// owned by the user (directory and files, as systemd's Delegate=yes or an administrator would
/// make it), and in the v2 hierarchy a leaf `shell` that the user's commands start in: a process
/// may move processes only below a common ancestor whose cgroup.procs it may write. Removed on
/// drop, after the containers.
struct Delegated {
    name: String,
    dirs: Vec<PathBuf>,
    shell: Option<PathBuf>,
}

impl Delegated {
    fn new(uid: u32, gid: u32) -> Delegated {
        let base = Path::new("/sys/fs/cgroup");
        let pure_v2 = base.join("cgroup.controllers").exists();
        let (v1, v2): (Vec<PathBuf>, Option<PathBuf>) = if pure_v2 {
            (Vec::new(), Some(base.to_path_buf()))
        } else {
            let v1 = std::fs::read_dir(base)
                .expect("read /sys/fs/cgroup")
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.file_name().is_some_and(|n| n != "unified") && p.join("cgroup.procs").exists())
                .collect();
            let unified = base.join("unified");
            (v1, unified.join("cgroup.procs").exists().then_some(unified))
        };
        let name = unique_id("hezi-rl-delegated");
        let mut d = Delegated {
            name: name.clone(),
            dirs: Vec::new(),
            shell: None,
        };
        for root in v1.iter().chain(v2.iter()) {
            let dir = root.join(&name);
            std::fs::create_dir(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
            d.dirs.push(dir.clone());
            chown_tree(&dir, uid, gid);
        }
        if let Some(v2) = v2 {
            if pure_v2 {
                // The controllers the limits need, on at the root (the user may not write it).
                std::fs::write(v2.join("cgroup.subtree_control"), "+pids +memory").expect("enable pids, memory");
            }
            let shell = v2.join(&name).join("shell");
            std::fs::create_dir(&shell).expect("mkdir the shell cgroup");
            chown_tree(&shell, uid, gid);
            d.shell = Some(shell);
        }
        d
    }
}

fn chown_tree(dir: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::chown(dir, Some(uid), Some(gid)).expect("chown delegated cgroup");
    for e in std::fs::read_dir(dir).expect("read delegated cgroup").flatten() {
        if e.path().is_file() {
            std::os::unix::fs::chown(e.path(), Some(uid), Some(gid)).expect("chown delegated cgroup file");
        }
    }
}

impl Drop for Delegated {
    fn drop(&mut self) {
        if let Some(s) = &self.shell {
            let _ = std::fs::remove_dir(s);
        }
        for d in &self.dirs {
            // Whatever a failed test left below first (one level: the container's cgroup).
            if let Ok(entries) = std::fs::read_dir(d) {
                for e in entries.flatten().filter(|e| e.path().is_dir()) {
                    let _ = std::fs::remove_dir(e.path());
                }
            }
            let _ = std::fs::remove_dir(d);
        }
    }
}

#[test]
fn a_delegated_cgroup_is_used_and_its_limits_enforced() {
    let Some(mut uh) = setup() else { return };
    let cg = Delegated::new(uh.user.uid, uh.user.gid);
    uh.cgroup = cg.shell.clone();
    let mut b = rootless_bundle(&uh, &user_hezi_bin(), &["sleep", "300"]);
    let id = unique_id("rl-deleg");
    b.linux()["cgroupsPath"] = json!(format!("/{}/{id}", cg.name));
    b.linux()["resources"] = json!({ "pids": { "limit": 6 }, "memory": { "limit": 67108864 } });
    b.write();
    uh.ok(&["run", "-d", "--bundle", bundle_arg(&b), &id]);
    let own: Vec<PathBuf> = cg.dirs.iter().map(|d| d.join(&id)).collect();
    assert!(
        own.iter().all(|d| d.is_dir()),
        "the container's cgroup in every hierarchy: {own:?}"
    );
    let pids_max = own
        .iter()
        .map(|d| d.join("pids.max"))
        .find(|f| f.exists())
        .expect("a pids.max");
    assert_eq!(std::fs::read_to_string(&pids_max).unwrap().trim(), "6");
    let limit = own
        .iter()
        .find_map(|d| {
            std::fs::read_to_string(d.join("memory.max"))
                .or_else(|_| std::fs::read_to_string(d.join("memory.limit_in_bytes")))
                .ok()
        })
        .expect("a memory limit file");
    assert_eq!(limit.trim(), "67108864");

    // The pids limit holds: the seventh process cannot be forked.
    let out = uh.cmd(&[
        "exec",
        &id,
        "sh",
        "-c",
        "for i in 1 2 3 4 5 6 7 8; do sleep 5 & done; wait",
    ]);
    assert!(out.stderr.contains("can't fork"), "{out:?}");
    // ps reads the cgroup now: the init is listed.
    assert!(uh.ok(&["ps", &id]).contains("sleep 300"));

    uh.ok(&["pause", &id]);
    assert_eq!(status(&uh, &id), "paused");
    uh.ok(&["resume", &id]);
    assert_eq!(status(&uh, &id), "running");
    uh.ok(&["delete", "--force", &id]);
    assert!(own.iter().all(|d| !d.exists()), "cgroups removed: {own:?}");
    assert!(!uh.root().join(&id).exists());
}
