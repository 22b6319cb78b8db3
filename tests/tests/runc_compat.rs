//! runc behaviour that containerd's runc shim and podman depend on, checked on hezi's command
//! line directly (the containerd_runc_shim and podman tests show the same through the clients).

use hezi_e2e::{assert_nothing_left, process_with_cmdline, require, unique_id, wait_until, Bundle, Hezi};

/// `kill` of a stopped container fails in runc's words, which the shim reads as "already
/// finished"; `kill --all` of one succeeds, as in runc.
#[test]
fn kill_of_a_stopped_container() {
    require!();
    let h = Hezi::new();
    let b = Bundle::busybox(&["true"]);
    let id = unique_id("killstopped");
    h.create(&b, &id);
    h.ok(&["start", &id]);
    h.wait_status(&id, "stopped");
    let out = h.cmd(&["kill", &id, "KILL"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("container not running"), "{err}");
    h.ok(&["kill", "--all", &id, "KILL"]);
    h.ok(&["delete", &id]);
    assert_nothing_left(&h, &id, &b, None);
}

/// An init in a shared pid namespace leaves its children when it exits; `kill --all` on the
/// stopped container reaches them through its cgroup (what containerd's shim does on exit), and
/// `delete` kills what is left.
#[test]
fn children_of_an_exited_init_die_by_kill_all_or_delete() {
    require!();
    let h = Hezi::new();
    let mut b = Bundle::busybox(&["sh", "-c", "sleep 1301 & exit 0"]);
    b.namespaces(&["mount", "ipc", "uts", "network"]);
    let id = unique_id("orphans");
    h.create(&b, &id);
    h.ok(&["start", &id]);
    h.wait_status(&id, "stopped");
    assert!(
        wait_until(10, || process_with_cmdline("sleep 1301").is_some()),
        "the init's child runs on"
    );
    h.ok(&["kill", "--all", &id, "KILL"]);
    assert!(
        wait_until(10, || process_with_cmdline("sleep 1301").is_none()),
        "kill --all killed the child"
    );
    h.ok(&["delete", &id]);
    assert_nothing_left(&h, &id, &b, Some("sleep 1301"));

    // `delete` alone kills them too (podman --pid host deletes without kill --all), or the
    // cgroup could not be removed and the container would stay.
    let mut b = Bundle::busybox(&["sh", "-c", "sleep 1303 & exit 0"]);
    b.namespaces(&["mount", "ipc", "uts", "network"]);
    let id = unique_id("orphans");
    h.create(&b, &id);
    h.ok(&["start", &id]);
    h.wait_status(&id, "stopped");
    assert!(
        wait_until(10, || process_with_cmdline("sleep 1303").is_some()),
        "the init's child runs on"
    );
    h.ok(&["delete", &id]);
    assert_nothing_left(&h, &id, &b, Some("sleep 1303"));
}

/// `exec --apparmor` and `--process-label` set the exec'd process's settings: applied where the
/// host has the module, refused clearly where it has not ("unconfined" works anywhere).
#[test]
fn exec_apparmor_and_process_label() {
    require!();
    let h = Hezi::new();
    let b = Bundle::busybox(&["sleep", "1302"]);
    let id = unique_id("execlsm");
    h.create(&b, &id);
    h.ok(&["start", &id]);
    let out = h.ok(&[
        "exec",
        "--apparmor",
        "unconfined",
        &id,
        "sh",
        "-c",
        "cat /proc/self/attr/current 2>/dev/null; echo; echo ran",
    ]);
    assert!(out.ends_with("ran\n"), "{out}");
    let apparmor = std::fs::read("/sys/module/apparmor/parameters/enabled").is_ok_and(|v| v.starts_with(b"Y"));
    if apparmor {
        assert!(out.starts_with("unconfined"), "{out}");
    } else {
        let out = h.cmd(&["exec", "--apparmor", "hezi-profile", &id, "true"]);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("apparmorProfile \"hezi-profile\"") && err.contains("not enabled"),
            "{err}"
        );
    }
    if !std::path::Path::new("/sys/fs/selinux/enforce").exists() {
        let out = h.cmd(&[
            "exec",
            "--process-label",
            "system_u:system_r:container_t:s0",
            &id,
            "true",
        ]);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("selinux is disabled or not supported"), "{err}");
    }
    h.ok(&["delete", "--force", &id]);
    assert_nothing_left(&h, &id, &b, Some("sleep 1302"));
}

/// runc's `tmpcopyup` (podman's `--tmpfs` and `--read-only`): the tmpfs starts with a copy of
/// the directory it covers (files, modes, owners, symlinks as links), and is writable.
#[test]
fn tmpfs_with_tmpcopyup_starts_with_the_covered_content() {
    require!();
    let h = Hezi::new();
    let mut b = Bundle::busybox(&[
        "sh",
        "-c",
        "grep ' /etc ' /proc/mounts | cut -d' ' -f3; head -1 /etc/passwd; readlink /etc/link; \
         stat -c '%a %u:%g' /etc/secret; echo new > /etc/new && cat /etc/new",
    ]);
    let etc = b.rootfs().join("etc");
    std::os::unix::fs::symlink("/proc/self/mounts", etc.join("link")).unwrap();
    std::fs::write(etc.join("secret"), "s").unwrap();
    std::os::unix::fs::chown(etc.join("secret"), Some(65534), Some(65534)).unwrap();
    std::fs::set_permissions(etc.join("secret"), std::os::unix::fs::PermissionsExt::from_mode(0o640)).unwrap();
    let mounts = b.config["mounts"].as_array_mut().expect("spec mounts");
    mounts.push(
        serde_json::json!({ "destination": "/etc", "type": "tmpfs", "source": "tmpfs",
                                    "options": ["rw", "nosuid", "nodev", "tmpcopyup"] }),
    );
    let id = unique_id("copyup");
    let out = h.run_ok(&b, &id);
    assert_eq!(
        out,
        "tmpfs\nroot:x:0:0:root:/:/bin/sh\n/proc/self/mounts\n640 65534:65534\nnew\n"
    );
    assert!(!etc.join("new").exists(), "the write went to the tmpfs");
    assert_nothing_left(&h, &id, &b, None);
}
