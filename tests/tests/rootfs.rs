//! The root filesystem: the spec's mounts in order with their flags, pivot_root and --no-pivot,
//! a read-only root, masked and read-only paths, devices and /dev's links, and mount
//! destinations that try to leave the rootfs.

use std::os::unix::fs::{FileTypeExt, MetadataExt};

use hezi_e2e::{assert_nothing_left, mounts_under, require, unique_id, Bundle, Hezi, TempDir};
use serde_json::json;

/// Fields of the container's /proc/self/mountinfo line for `dest`: (mount options, fs type).
fn mount_of(mountinfo: &str, dest: &str) -> Option<(String, String)> {
    mountinfo.lines().rev().find_map(|l| {
        let f: Vec<&str> = l.split(' ').collect();
        let sep = f.iter().position(|x| *x == "-")?;
        (f[4] == dest).then(|| (f[5].to_string(), f[sep + 1].to_string()))
    })
}

/// The atime options pick one of the kernel's atime modes each (relatime is the kernel's default,
/// so noatime and strictatime show that the option was applied, not defaulted).
#[test]
fn atime_mount_options_are_applied() {
    require!();
    let h = Hezi::new();
    let mut b = Bundle::busybox(&["cat", "/proc/self/mountinfo"]);
    let mounts = b.config["mounts"].as_array_mut().unwrap();
    for (dest, opt) in [("/rel", "relatime"), ("/no", "noatime"), ("/strict", "strictatime")] {
        mounts.push(json!({ "destination": dest, "type": "tmpfs", "source": "tmpfs", "options": [opt] }));
    }
    let out = h.run_ok(&b, &unique_id("atime"));
    let opts = |dest| mount_of(&out, dest).unwrap_or_else(|| panic!("{dest} not mounted")).0;
    let has = |o: &str, flag| o.split(',').any(|x| x == flag);
    assert!(has(&opts("/rel"), "relatime"), "{}", opts("/rel"));
    assert!(has(&opts("/no"), "noatime"), "{}", opts("/no"));
    let strict = opts("/strict");
    assert!(!has(&strict, "relatime") && !has(&strict, "noatime"), "{strict}");
}

#[test]
fn spec_mounts_land_with_their_flags() {
    require!();
    let h = Hezi::new();
    let host = TempDir::new("hostdir");
    std::fs::write(host.path().join("greeting"), "hello from the host\n").unwrap();
    let mut b = Bundle::busybox(&[
        "sh",
        "-c",
        "cat /data/greeting; touch /data/x 2>/dev/null && echo data-writable || echo data-readonly; \
         touch /scratch/y && echo scratch-writable; cat /proc/self/mountinfo",
    ]);
    let mounts = b.config["mounts"].as_array_mut().unwrap();
    mounts.push(json!({ "destination": "/data", "type": "bind", "source": host.path(),
                        "options": ["rbind", "ro", "nosuid", "nodev"] }));
    mounts.push(json!({ "destination": "/scratch", "type": "tmpfs", "source": "tmpfs",
                        "options": ["noexec", "size=1m", "mode=1777"] }));
    let id = unique_id("mounts");
    let out = h.run_ok(&b, &id);
    assert!(
        out.starts_with("hello from the host\ndata-readonly\nscratch-writable\n"),
        "{out}"
    );
    let (opts, fstype) = mount_of(&out, "/data").expect("/data mounted");
    for o in ["ro", "nosuid", "nodev"] {
        assert!(opts.split(',').any(|x| x == o), "/data lacks {o}: {opts}");
    }
    assert_eq!(
        fstype,
        std::fs::read_to_string("/proc/self/mountinfo")
            .map(|_| fstype.clone())
            .unwrap()
    );
    let (opts, fstype) = mount_of(&out, "/scratch").expect("/scratch mounted");
    assert_eq!(fstype, "tmpfs");
    assert!(opts.contains("noexec"), "{opts}");
    for (dest, fs) in [
        ("/proc", "proc"),
        ("/dev", "tmpfs"),
        ("/dev/pts", "devpts"),
        ("/dev/shm", "tmpfs"),
        ("/dev/mqueue", "mqueue"),
        ("/sys", "sysfs"),
    ] {
        assert_eq!(mount_of(&out, dest).map(|m| m.1).as_deref(), Some(fs), "{dest}");
    }
    // The default spec's cgroup mount: the host's hierarchies (v1 controllers, or cgroup2),
    // read-only.
    let cgroup_mounts: Vec<(String, String)> = out
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let sep = f.iter().position(|x| *x == "-")?;
            f[4].starts_with("/sys/fs/cgroup")
                .then(|| (f[5].to_string(), f[sep + 1].to_string()))
        })
        .filter(|(_, fs)| fs == "cgroup" || fs == "cgroup2")
        .collect();
    assert!(!cgroup_mounts.is_empty(), "no cgroup mount: {out}");
    for (opts, _) in &cgroup_mounts {
        for flag in ["ro", "nosuid", "nodev", "noexec"] {
            assert!(opts.split(',').any(|o| o == flag), "cgroup mount not {flag}: {opts}");
        }
    }
    // On a v1 or hybrid host the hierarchies sit in a tmpfs, made read-only with them.
    if let Some((opts, fstype)) = mount_of(&out, "/sys/fs/cgroup").filter(|m| m.1 == "tmpfs") {
        assert!(
            opts.split(',').any(|o| o == "ro"),
            "{fstype} on /sys/fs/cgroup not read-only: {opts}"
        );
    }
    assert!(!host.path().join("x").exists(), "read-only bind was written");
    assert_nothing_left(&h, &id, &b, None);
}

#[test]
fn pivot_root_hides_the_host_and_no_pivot_works_too() {
    require!();
    let h = Hezi::new();
    for no_pivot in [false, true] {
        let b = Bundle::busybox(&["sh", "-c", "ls /; ls /work /root 2>&1 | head -1"]);
        b.write();
        let id = unique_id("pivot");
        let mut args = vec!["run", "-b", b.path().to_str().unwrap()];
        if no_pivot {
            args.push("--no-pivot");
        }
        args.push(&id);
        let out = String::from_utf8_lossy(&h.cmd(&args).stdout).into_owned();
        let top: Vec<&str> = out.lines().take_while(|l| !l.contains("No such")).collect();
        assert_eq!(
            top,
            ["bin", "dev", "etc", "proc", "sys", "tmp"],
            "no_pivot={no_pivot}: {out}"
        );
        assert_nothing_left(&h, &id, &b, None);
    }
}

#[test]
fn readonly_root_and_writable_root() {
    require!();
    let h = Hezi::new();
    let mut b = Bundle::busybox(&["sh", "-c", "touch /etc/x 2>/dev/null && echo writable || echo readonly"]);
    assert_eq!(b.config["root"]["readonly"], true, "hezi spec's default");
    assert_eq!(h.run_ok(&b, &unique_id("ro")), "readonly\n");
    b.config["root"]["readonly"] = json!(false);
    assert_eq!(h.run_ok(&b, &unique_id("rw")), "writable\n");
    assert!(b.rootfs().join("etc/x").exists());
}

#[test]
fn masked_and_readonly_paths() {
    require!();
    let h = Hezi::new();
    let mut b = Bundle::busybox(&[
        "sh",
        "-c",
        "wc -c < /proc/keys; ls /sys/firmware | wc -l; \
         echo 1 > /proc/sys/kernel/printk 2>/dev/null && echo sys-writable || echo sys-readonly; \
         cat /etc/secret.d/key 2>&1 | head -1",
    ]);
    std::fs::create_dir_all(b.rootfs().join("etc/secret.d")).unwrap();
    std::fs::write(b.rootfs().join("etc/secret.d/key"), "s3cret").unwrap();
    b.linux()["maskedPaths"]
        .as_array_mut()
        .unwrap()
        .push(json!("/etc/secret.d"));
    let out = h.run_ok(&b, &unique_id("mask"));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0].trim(), "0", "/proc/keys masked by /dev/null: {out}");
    assert_eq!(lines[1].trim(), "0", "/sys/firmware masked by an empty tmpfs");
    assert_eq!(lines[2], "sys-readonly");
    assert!(!lines[3].contains("s3cret"), "masked directory readable: {out}");
}

#[test]
fn default_devices_spec_devices_and_dev_links() {
    require!();
    let h = Hezi::new();
    let mut b = Bundle::busybox(&[
        "sh",
        "-c",
        "for d in null zero full random urandom tty mydev; do stat -c '%n %F %t:%T %a %u:%g' /dev/$d; done; \
         for l in fd stdin stdout stderr ptmx core; do echo $l=$(readlink /dev/$l); done; \
         test -d /dev/pts && test -d /dev/shm && echo dirs-ok; head -c 4 /dev/zero | wc -c",
    ]);
    b.linux()["devices"] = json!([{ "path": "/dev/mydev", "type": "c", "major": 1, "minor": 3,
                                    "fileMode": 0o640, "uid": 7, "gid": 8 }]);
    let out = h.run_ok(&b, &unique_id("dev"));
    let want_dev = [
        ("null", "1:3"),
        ("zero", "1:5"),
        ("full", "1:7"),
        ("random", "1:8"),
        ("urandom", "1:9"),
        ("tty", "5:0"),
    ];
    for (name, numbers) in want_dev {
        let line = out
            .lines()
            .find(|l| l.starts_with(&format!("/dev/{name} ")))
            .unwrap_or_default();
        assert!(
            line.contains("character special") && line.contains(numbers),
            "{name}: {line:?}"
        );
    }
    let mydev = out
        .lines()
        .find(|l| l.starts_with("/dev/mydev "))
        .expect("spec device made");
    assert!(mydev.ends_with("1:3 640 7:8"), "{mydev}");
    for (l, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("ptmx", "pts/ptmx"),
    ] {
        assert!(out.contains(&format!("{l}={target}\n")), "/dev/{l} -> {target}: {out}");
    }
    // As runc: /dev/core only where the kernel has /proc/kcore.
    let core = if std::path::Path::new("/proc/kcore").exists() {
        "/proc/kcore"
    } else {
        ""
    };
    assert!(out.contains(&format!("core={core}\n")), "{out}");
    assert!(out.contains("dirs-ok"));
    assert!(out.ends_with("4\n"));
}

#[test]
fn mount_destinations_cannot_leave_the_rootfs() {
    require!();
    let h = Hezi::new();
    let outside = TempDir::new("outside");
    let mut b = Bundle::busybox(&["sh", "-c", "ls /escape/target; readlink /escape"]);
    // An absolute symlink and a `..` chain, both pointing at a host directory.
    std::os::unix::fs::symlink(outside.path(), b.rootfs().join("escape")).unwrap();
    let climb = format!("../../../../../../..{}", outside.path().display());
    std::os::unix::fs::symlink(&climb, b.rootfs().join("tmp/climb")).unwrap();
    let mounts = b.config["mounts"].as_array_mut().unwrap();
    mounts.push(json!({ "destination": "/escape/target", "type": "tmpfs", "source": "tmpfs" }));
    mounts.push(json!({ "destination": "/tmp/climb/x", "type": "tmpfs", "source": "tmpfs" }));
    mounts.push(
        json!({ "destination": "/../../../../../../..".to_string() + outside.path().to_str().unwrap() + "/y",
                        "type": "tmpfs", "source": "tmpfs" }),
    );
    let id = unique_id("escape");
    let (code, out, err) = h.run(&b, &id);
    assert_eq!(code, 0, "{out} {err}");
    let made: Vec<_> = std::fs::read_dir(outside.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(made.is_empty(), "a mount destination escaped into the host: {made:?}");
    // Resolved inside the rootfs instead.
    let inside = b.rootfs().join(outside.path().strip_prefix("/").unwrap());
    assert!(inside.join("target").is_dir(), "target created inside the rootfs");
    assert_nothing_left(&h, &id, &b, None);
}

#[test]
fn host_sees_no_container_mounts_and_delete_leaves_none() {
    require!();
    let h = Hezi::new();
    let b = Bundle::busybox(&["sleep", "1201"]);
    let id = unique_id("mntleak");
    h.create(&b, &id);
    h.ok(&["start", &id]);
    assert!(
        mounts_under(b.path()).is_empty(),
        "host sees mounts: {:?}",
        mounts_under(b.path())
    );
    let pid = h.state(&id)["pid"].as_i64().unwrap();
    let inside = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap();
    assert!(inside.lines().count() > 5);
    h.ok(&["delete", "-f", &id]);
    assert_nothing_left(&h, &id, &b, Some("sleep 1201"));
}

#[test]
fn rootfs_propagation_private_and_shared() {
    require!();
    let h = Hezi::new();
    for prop in ["rprivate", "rslave", "rshared"] {
        let mut b = Bundle::busybox(&["sh", "-c", "awk '$5 == \"/\"' /proc/self/mountinfo"]);
        b.linux()["rootfsPropagation"] = json!(prop);
        let out = h.run_ok(&b, &unique_id("prop"));
        let shared = out.contains("shared:");
        let slave = out.contains("master:");
        match prop {
            "rshared" => assert!(shared, "{prop}: {out}"),
            // A slave of a private mount is private: `master:` shows only where the host shares.
            "rslave" => assert!(!shared && (slave || !host_root_shared()), "{prop}: {out}"),
            _ => assert!(!shared && !slave, "{prop}: {out}"),
        }
    }
}

#[test]
fn devices_are_real_device_nodes_on_the_host_side() {
    require!();
    let h = Hezi::new();
    let b = Bundle::busybox(&["sleep", "1202"]);
    let id = unique_id("devnode");
    h.create(&b, &id);
    let pid = h.state(&id)["pid"].as_i64().unwrap();
    let null = std::fs::metadata(format!("/proc/{pid}/root/dev/null")).unwrap();
    assert!(null.file_type().is_char_device());
    assert_eq!(null.rdev(), libc::makedev(1, 3));
    h.ok(&["delete", &id]);
}

fn host_root_shared() -> bool {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .any(|l| l.split(' ').nth(4) == Some("/") && l.contains("shared:"))
}
