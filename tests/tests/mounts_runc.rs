//! Mounts and the root filesystem as runc makes them, on the configs where hezi once differed
//! (issue 14): tmpfs modes, bind sources inside the container or out of the user namespace's
//! reach, dangling-symlink destinations, a read-only /dev, /proc and /sys that are symlinks,
//! --no-pivot's host procfs, masked directories, mount options hezi does not know, and
//! filesystem data given to a bind.

use std::os::unix::fs::{symlink, PermissionsExt};

use hezi_e2e::{assert_nothing_left, require, unique_id, Bundle, Hezi, TempDir};
use serde_json::{json, Value};

fn push_mount(b: &mut Bundle, m: Value) {
    b.config["mounts"].as_array_mut().expect("mounts").push(m);
}

fn drop_mount(b: &mut Bundle, dest: &str) {
    if let Some(m) = b.config["mounts"].as_array_mut() {
        m.retain(|m| m["destination"] != dest);
    }
}

/// A user namespace mapping the container's root to host uid/gid 100000. The cgroupfs mount
/// goes: without a cgroup namespace of its own, a user namespace may not mount the host's.
fn with_userns(b: &mut Bundle) {
    b.namespaces(&["pid", "mount", "user", "ipc", "uts", "network"]);
    b.linux()["uidMappings"] = json!([{ "containerID": 0, "hostID": 100000, "size": 65536 }]);
    b.linux()["gidMappings"] = json!([{ "containerID": 0, "hostID": 100000, "size": 65536 }]);
    drop_mount(b, "/sys/fs/cgroup");
}

/// The mountinfo lines of the container whose mount point is `dest`.
fn mount_lines<'a>(mountinfo: &'a str, dest: &str) -> Vec<&'a str> {
    mountinfo
        .lines()
        .filter(|l| l.split(' ').nth(4) == Some(dest))
        .collect()
}

#[test]
fn tmpfs_takes_the_mode_of_the_directory_it_covers() {
    require!();
    let h = Hezi::new();
    let mut b = Bundle::busybox(&["stat", "-c", "%n %a", "/covered", "/given", "/fresh"]);
    for d in ["covered", "given"] {
        let p = b.rootfs().join(d);
        std::fs::create_dir(&p).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o710)).unwrap();
    }
    push_mount(
        &mut b,
        json!({ "destination": "/covered", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid"] }),
    );
    push_mount(
        &mut b,
        json!({ "destination": "/given", "type": "tmpfs", "source": "tmpfs", "options": ["mode=700"] }),
    );
    // A destination that did not exist is made 0755 and the tmpfs keeps its own default.
    push_mount(
        &mut b,
        json!({ "destination": "/fresh", "type": "tmpfs", "source": "tmpfs" }),
    );
    let out = h.run_ok(&b, &unique_id("tmpfsmode"));
    assert_eq!(out, "/covered 710\n/given 700\n/fresh 1777\n");
}

/// A bind source below an earlier mount of the same spec names what that mount put there: the
/// host's path does not exist, only the container's mount tree has it.
fn bind_source_inside_the_container(userns: bool) {
    let h = Hezi::new();
    let host = TempDir::new("inner-src");
    std::fs::write(host.path().join("marker"), "from the inner bind\n").unwrap();
    let mut b = Bundle::busybox(&["cat", "/other/marker"]);
    if userns {
        with_userns(&mut b);
    }
    let rootfs = b.rootfs();
    // Mount points the container's root (an unprivileged uid with a user namespace) cannot make
    // in a rootfs owned by host root.
    for d in ["data", "other"] {
        std::fs::create_dir(rootfs.join(d)).unwrap();
    }
    push_mount(
        &mut b,
        json!({ "destination": "/data", "type": "tmpfs", "source": "tmpfs" }),
    );
    push_mount(
        &mut b,
        json!({ "destination": "/data/sub", "type": "bind", "source": host.path(), "options": ["rbind"] }),
    );
    push_mount(
        &mut b,
        json!({ "destination": "/other", "type": "bind", "source": rootfs.join("data/sub"), "options": ["rbind"] }),
    );
    assert!(!rootfs.join("data/sub").exists());
    let (code, out, err) = h.run(&b, &unique_id("innerbind"));
    assert_eq!(code, 0, "userns={userns}: {err}");
    assert_eq!(out, "from the inner bind\n", "userns={userns}");
    assert!(!rootfs.join("data/sub").exists(), "created on the host");
}

#[test]
fn bind_source_inside_the_container_resolves_in_spec_order() {
    require!();
    bind_source_inside_the_container(false);
}

#[test]
fn bind_source_inside_the_container_resolves_in_spec_order_in_a_user_namespace() {
    require!();
    bind_source_inside_the_container(true);
}

/// A source only host root may enter (0700, root-owned) cannot be opened by the container's root
/// (host uid 100000): the runtime opens it for the init, as runc does.
#[test]
fn bind_source_out_of_the_user_namespaces_reach_is_opened_by_the_runtime() {
    require!();
    let h = Hezi::new();
    let private = TempDir::new("private-src");
    std::fs::set_permissions(private.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::create_dir(private.path().join("dir")).unwrap();
    std::fs::write(private.path().join("dir/foo.txt"), "secret but shared\n").unwrap();
    let mut b = Bundle::busybox(&["cat", "/mnt/foo.txt"]);
    with_userns(&mut b);
    std::fs::create_dir(b.rootfs().join("mnt")).unwrap();
    push_mount(
        &mut b,
        json!({ "destination": "/mnt", "type": "bind", "source": private.path().join("dir"), "options": ["bind"] }),
    );
    let (code, out, err) = h.run(&b, &unique_id("privsrc"));
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "secret but shared\n");
}

#[test]
fn destinations_through_dangling_symlinks_are_made_where_they_point() {
    require!();
    let h = Hezi::new();
    let mut b = Bundle::busybox(&["cat", "/proc/self/mountinfo"]);
    let rootfs = b.rootfs();
    // The last component dangles (absolute target), and a middle one (relative target).
    symlink("/made/here", rootfs.join("last")).unwrap();
    symlink("made2", rootfs.join("middle")).unwrap();
    push_mount(
        &mut b,
        json!({ "destination": "/last", "type": "tmpfs", "source": "tmpfs" }),
    );
    push_mount(
        &mut b,
        json!({ "destination": "/middle/sub", "type": "tmpfs", "source": "tmpfs" }),
    );
    let out = h.run_ok(&b, &unique_id("dangling"));
    assert_eq!(mount_lines(&out, "/made/here").len(), 1, "{out}");
    assert_eq!(mount_lines(&out, "/made2/sub").len(), 1, "{out}");
    assert!(rootfs.join("made/here").is_dir() && rootfs.join("made2/sub").is_dir());
}

#[test]
fn a_read_only_dev_is_populated_before_it_turns_read_only() {
    require!();
    let h = Hezi::new();
    let mut b = Bundle::busybox(&[
        "sh",
        "-c",
        "ls /dev/null /dev/zero /dev/ptmx /dev/fd >/dev/null && echo nodes; \
         touch /dev/x 2>/dev/null && echo dev-writable || echo dev-readonly; \
         grep -c ' /dev/pts \\| /dev/shm ' /proc/self/mountinfo",
    ]);
    for m in b.config["mounts"].as_array_mut().unwrap() {
        if m["destination"] == "/dev" {
            m["options"].as_array_mut().unwrap().push(json!("ro"));
        }
    }
    let out = h.run_ok(&b, &unique_id("rodev"));
    assert_eq!(out, "nodes\ndev-readonly\n2\n");
}

#[test]
fn proc_or_sys_that_is_a_symlink_is_refused() {
    require!();
    for dir in ["proc", "sys"] {
        let h = Hezi::new();
        let b = Bundle::busybox(&["true"]);
        let rootfs = b.rootfs();
        std::fs::remove_dir(rootfs.join(dir)).unwrap();
        std::fs::create_dir(rootfs.join("elsewhere")).unwrap();
        symlink("/elsewhere", rootfs.join(dir)).unwrap();
        let id = unique_id("procsym");
        let (code, _, err) = h.run(&b, &id);
        assert_ne!(code, 0, "{dir} as a symlink was accepted");
        assert!(err.contains("ordinary directory"), "{dir}: {err}");
        assert!(
            std::fs::read_dir(rootfs.join("elsewhere")).unwrap().next().is_none(),
            "{dir}: something was mounted through the symlink"
        );
        assert_nothing_left(&h, &id, &b, None);
    }
}

/// A user namespace may mount a fresh procfs or sysfs only where a fully visible one is in its
/// mount namespace. After --no-pivot's chroot the host's would still be there, out of sight, so
/// the runtime takes them away (runc does the same). To look under the chroot, the test detaches
/// the container's root in its mount namespace (the init keeps it as its root) and enters that
/// namespace again: /proc and /sys are then what the host's tree left there.
#[test]
fn no_pivot_takes_the_hosts_procfs_and_sysfs_away() {
    require!();
    if std::process::Command::new("nsenter").arg("--version").output().is_err() {
        eprintln!("SKIP: no nsenter");
        return;
    }
    let h = Hezi::new();
    let b = Bundle::busybox(&["true"]);
    b.write();
    let id = unique_id("nopivotproc");
    h.ok(&["create", "--no-pivot", "--bundle", b.path().to_str().unwrap(), &id]);
    let pid = h.state(&id)["pid"].to_string();
    let nsenter = |args: &[&str]| {
        std::process::Command::new("nsenter")
            .args(["-t", &pid, "-m", "--"])
            .args(args)
            .output()
            .unwrap()
    };
    let detach = nsenter(&["/bin/busybox", "umount", "-l", "/"]);
    let out = nsenter(&["stat", "-f", "-c", "%T", "/proc", "/sys"]);
    h.ok(&["delete", "-f", &id]);
    assert!(detach.status.success(), "{}", String::from_utf8_lossy(&detach.stderr));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let types = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(types.lines().count(), 2, "{types}");
    assert!(
        !types.lines().any(|t| t == "proc" || t == "sysfs"),
        "the host's procfs or sysfs is still in the container's mount namespace: {types}"
    );
}

#[test]
fn masked_directories_share_one_read_only_tmpfs() {
    require!();
    let h = Hezi::new();
    let mut b = Bundle::busybox(&["cat", "/proc/self/mountinfo"]);
    for d in ["m1", "m2", "m3"] {
        std::fs::create_dir(b.rootfs().join(d)).unwrap();
    }
    b.linux()["maskedPaths"] = json!(["/m1", "/m2", "/m3", "/proc/kcore"]);
    let out = h.run_ok(&b, &unique_id("maskdirs"));
    let devs: Vec<(String, String)> = ["/m1", "/m2", "/m3"]
        .iter()
        .map(|d| {
            let lines = mount_lines(&out, d);
            assert_eq!(lines.len(), 1, "{d}: {out}");
            let f: Vec<&str> = lines[0].split(' ').collect();
            let sep = f.iter().position(|x| *x == "-").unwrap();
            assert_eq!(f[sep + 1], "tmpfs", "{d}: {}", lines[0]);
            assert!(f[5].split(',').any(|o| o == "ro"), "{d} not read-only: {}", lines[0]);
            (f[2].to_string(), f[3].to_string())
        })
        .collect();
    assert!(devs.windows(2).all(|w| w[0].0 == w[1].0), "not one tmpfs: {devs:?}");
}

#[test]
fn unknown_bind_options_and_idmapping_without_a_user_namespace_are_refused() {
    require!();
    let host = TempDir::new("opt-src");
    let cases = [
        (json!(["rbind", "nosuchoption"]), None, "nosuchoption"),
        // Mappings make the mount idmapped, which needs a user namespace; this container has none.
        (
            json!(["rbind"]),
            Some(json!([{ "containerID": 0, "hostID": 100000, "size": 1 }])),
            "user namespace",
        ),
    ];
    for (options, maps, needle) in cases {
        let h = Hezi::new();
        let mut b = Bundle::busybox(&["true"]);
        let mut m = json!({ "destination": "/mnt", "type": "bind", "source": host.path(), "options": options });
        if let Some(maps) = maps {
            m["uidMappings"] = maps.clone();
            m["gidMappings"] = maps;
        }
        push_mount(&mut b, m);
        let id = unique_id("badopt");
        let (code, _, err) = h.run(&b, &id);
        assert_ne!(code, 0, "{needle}: accepted");
        assert!(err.contains(needle), "{needle}: {err}");
        assert_nothing_left(&h, &id, &b, None);
    }
}

#[test]
fn recursive_mount_attributes_reach_every_submount() {
    require!();
    let h = Hezi::new();
    let host = TempDir::new("rro-src");
    let sub = host.path().join("sub");
    std::fs::create_dir(&sub).unwrap();
    let mut b = Bundle::busybox(&["sh", "-c", "cat /proc/self/mountinfo"]);
    // A host tree with a submount: ro alone reaches the top mount only; rro both.
    let status = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "tmpfs"])
        .arg(&sub)
        .status()
        .unwrap();
    assert!(status.success());
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(&self.0).status();
        }
    }
    let _guard = Unmount(sub.clone());
    push_mount(
        &mut b,
        json!({ "destination": "/r", "type": "bind", "source": host.path(), "options": ["rbind", "rro", "rnosuid"] }),
    );
    let out = h.run_ok(&b, &unique_id("rro"));
    for dest in ["/r", "/r/sub"] {
        let lines = mount_lines(&out, dest);
        assert_eq!(lines.len(), 1, "{dest}: {out}");
        let opts: Vec<&str> = lines[0].split(' ').nth(5).unwrap().split(',').collect();
        assert!(opts.contains(&"ro") && opts.contains(&"nosuid"), "{dest}: {}", lines[0]);
    }
}

/// Filesystem data on a bind (runtime-tools' mounts test gives every mount
/// `nosuid,strictatime,mode=755,size=1k`): runc and crun hand it to mount(2), which drops it
/// for a bind. hezi binds without it, says so, and applies the flags.
#[test]
fn filesystem_data_on_a_bind_is_dropped_with_a_warning() {
    require!();
    let host = TempDir::new("data-src");
    std::fs::write(host.path().join("f"), "from the host\n").unwrap();
    let h = Hezi::new();
    let mut b = Bundle::busybox(&["sh", "-c", "cat /mnt/f; grep ' /mnt ' /proc/self/mountinfo"]);
    push_mount(
        &mut b,
        json!({ "destination": "/mnt", "type": "bind", "source": host.path(),
                "options": ["bind", "nosuid", "mode=755", "size=1k"] }),
    );
    let id = unique_id("binddata");
    let (code, out, err) = h.run(&b, &id);
    assert_eq!(code, 0, "{err}");
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("from the host"), "{out}");
    let opts = lines.next().and_then(|l| l.split(' ').nth(5)).unwrap_or_default();
    assert!(
        opts.split(',').any(|o| o == "nosuid"),
        "the flags were not applied: {out}"
    );
    assert!(err.contains("mode=755,size=1k ignored"), "no warning: {err}");
    assert_nothing_left(&h, &id, &b, None);
}
