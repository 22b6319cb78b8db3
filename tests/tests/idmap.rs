//! Idmapped bind mounts (`idmap`, `ridmap`, a mount's own `uidMappings`/`gidMappings`) in
//! user-namespaced containers: owners seen from inside (stat), and the host's files unchanged.

use std::os::unix::fs::{chown, MetadataExt};

use hezi_e2e::{assert_nothing_left, require, unique_id, Bundle, Hezi, TempDir};
use serde_json::{json, Value};

/// A user namespace mapping the container's ids 0..65536 to host 100000.., without the cgroupfs
/// mount (a user namespace without its own cgroup namespace may not mount the host's).
fn userns_bundle(args: &[&str]) -> Bundle {
    let mut b = Bundle::busybox(args);
    b.namespaces(&["pid", "mount", "user", "ipc", "uts", "network"]);
    b.linux()["uidMappings"] = json!([{ "containerID": 0, "hostID": 100000, "size": 65536 }]);
    b.linux()["gidMappings"] = json!([{ "containerID": 0, "hostID": 100000, "size": 65536 }]);
    if let Some(m) = b.config["mounts"].as_array_mut() {
        m.retain(|m| m["destination"] != "/sys/fs/cgroup");
    }
    std::fs::create_dir(b.rootfs().join("mnt")).unwrap();
    b
}

/// A host directory with a file of root's and one of uid/gid 1000.
fn host_tree() -> TempDir {
    let dir = TempDir::new("idmap-src");
    std::fs::write(dir.path().join("roots"), "r").unwrap();
    std::fs::write(dir.path().join("users"), "u").unwrap();
    chown(dir.path().join("users"), Some(1000), Some(1000)).unwrap();
    dir
}

fn bind<'a>(b: &'a mut Bundle, source: &std::path::Path, options: Value) -> &'a mut Value {
    let mounts = b.config["mounts"].as_array_mut().unwrap();
    mounts.push(json!({ "destination": "/mnt", "type": "bind", "source": source, "options": options }));
    mounts.last_mut().unwrap()
}

#[test]
fn idmap_shows_host_owners_through_the_containers_user_namespace() {
    require!();
    let h = Hezi::new();
    let host = host_tree();
    // Without idmap the host's root is nobody inside; with it, the container's root.
    for (options, want) in [
        (json!(["rbind"]), "65534 65534\n65534 65534\n"),
        (json!(["rbind", "idmap"]), "0 0\n1000 1000\n"),
    ] {
        let mut b = userns_bundle(&["sh", "-c", "stat -c '%u %g' /mnt/roots /mnt/users"]);
        bind(&mut b, host.path(), options.clone());
        assert_eq!(h.run_ok(&b, &unique_id("idmap")), want, "{options}");
    }
    // The container's root writes through the mount as the host's root; nothing changed owner.
    let mut b = userns_bundle(&["sh", "-c", "touch /mnt/made && stat -c %u /mnt/made"]);
    bind(&mut b, host.path(), json!(["rbind", "idmap"]));
    assert_eq!(h.run_ok(&b, &unique_id("idmapw")), "0\n");
    let meta = |f: &str| std::fs::metadata(host.path().join(f)).unwrap();
    assert_eq!(
        (meta("made").uid(), meta("roots").uid(), meta("users").uid()),
        (0, 0, 1000)
    );
}

/// The mount's own mappings: on-disk ids are read as ids of that mapping, so host uid 0 maps to
/// 101000, which the container (0 → 100000) sees as 1000.
#[test]
fn mount_mappings_of_its_own() {
    require!();
    let h = Hezi::new();
    let host = host_tree();
    let mut b = userns_bundle(&["stat", "-c", "%u %g", "/mnt/roots"]);
    let m = bind(&mut b, host.path(), json!(["rbind", "idmap"]));
    m["uidMappings"] = json!([{ "containerID": 0, "hostID": 101000, "size": 65536 }]);
    m["gidMappings"] = json!([{ "containerID": 0, "hostID": 102000, "size": 65536 }]);
    assert_eq!(h.run_ok(&b, &unique_id("idmapown")), "1000 2000\n");
}

/// `idmap` maps the top mount only; `ridmap` the submounts of an rbind too.
#[test]
fn ridmap_reaches_submounts_and_idmap_does_not() {
    require!();
    let h = Hezi::new();
    let host = host_tree();
    let sub = host.path().join("sub");
    std::fs::create_dir(&sub).unwrap();
    assert!(std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "mode=755", "tmpfs"])
        .arg(&sub)
        .status()
        .unwrap()
        .success());
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(&self.0).status();
        }
    }
    let _guard = Unmount(sub);
    for (opt, want) in [("idmap", "0\n65534\n"), ("ridmap", "0\n0\n")] {
        let mut b = userns_bundle(&["stat", "-c", "%u", "/mnt/roots", "/mnt/sub"]);
        bind(&mut b, host.path(), json!(["rbind", opt]));
        assert_eq!(h.run_ok(&b, &unique_id("ridmap")), want, "{opt}");
    }
}

#[test]
fn idmapped_mounts_that_cannot_be_are_refused_clearly() {
    require!();
    let host = host_tree();
    // Without a user namespace; on a tmpfs mount; from a filesystem without idmapping (sysfs).
    let cases: [(bool, Value, &str, &str); 3] = [
        (
            false,
            json!({ "type": "bind", "options": ["rbind", "idmap"] }),
            "",
            "user namespace",
        ),
        (
            true,
            json!({ "type": "tmpfs", "source": "tmpfs", "options": ["idmap"] }),
            "-",
            "only bind mounts",
        ),
        (
            true,
            json!({ "type": "bind", "source": "/sys/kernel", "options": ["rbind", "idmap"] }),
            "-",
            "cannot be idmapped",
        ),
    ];
    for (userns, mut m, source, needle) in cases {
        let h = Hezi::new();
        let mut b = if userns {
            userns_bundle(&["true"])
        } else {
            Bundle::busybox(&["true"])
        };
        if source.is_empty() {
            m["source"] = json!(host.path());
        }
        m["destination"] = json!("/mnt");
        b.config["mounts"].as_array_mut().unwrap().push(m);
        let id = unique_id("idmapbad");
        let (code, _, err) = h.run(&b, &id);
        assert_ne!(code, 0, "{needle}: accepted");
        assert!(err.contains(needle), "{needle}: {err}");
        assert_nothing_left(&h, &id, &b, None);
    }
}
