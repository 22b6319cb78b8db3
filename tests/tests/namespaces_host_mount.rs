//! A spec without a mount namespace runs in the host's, as runc allows: the container's mounts
//! are made on the host (below the rootfs), and its process is chrooted into the rootfs. hezi
//! removes those mounts when the container is deleted (runc leaves them), and refuses
//! maskedPaths and readonlyPaths there, as runc does.

use hezi_e2e::{assert_nothing_left, mounts_under, ns_link, require, unique_id, Bundle, Hezi};
use serde_json::json;

/// A bundle with new pid, ipc and uts namespaces and no mount namespace; without the paths runc
/// refuses to hide in the host's mount namespace.
fn host_mount_bundle(args: &[&str]) -> Bundle {
    let mut b = Bundle::busybox(args);
    b.namespaces(&["pid", "ipc", "uts"]);
    for key in ["maskedPaths", "readonlyPaths"] {
        b.linux().as_object_mut().unwrap().remove(key);
    }
    std::fs::write(b.rootfs().join("marker"), "in the rootfs\n").unwrap();
    b
}

#[test]
fn without_a_mount_namespace_the_container_mounts_in_the_hosts() {
    require!();
    let h = Hezi::new();
    let b = host_mount_bundle(&[
        "sh",
        "-c",
        "readlink /proc/self/ns/mnt; cat /marker; cat /proc/self/mountinfo",
    ]);
    let id = unique_id("hostmnt");
    let out = h.run_ok(&b, &id);
    let mut lines = out.lines();
    assert_eq!(
        lines.next(),
        Some(ns_link("self", "mnt").as_str()),
        "not the host's: {out}"
    );
    // Chrooted into the rootfs: its files are at /.
    assert_eq!(lines.next(), Some("in the rootfs"), "{out}");
    // Its root is the host's bind of the rootfs directory (mountinfo shows mount points as seen
    // from the reader's root, and each mount's source path within its filesystem).
    let bundle_name = b.path().file_name().unwrap().to_string_lossy().into_owned();
    let source = format!("{bundle_name}/rootfs");
    assert!(
        out.lines().any(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            f.get(3).is_some_and(|s| s.ends_with(&source)) && f.get(4) == Some(&"/")
        }),
        "its root is not the host's bind of {source}: {out}"
    );
    // `run` deleted it: nothing stays mounted on the host.
    assert_nothing_left(&h, &id, &b, None);
}

#[test]
fn the_hosts_mounts_of_a_container_go_with_delete() {
    require!();
    let h = Hezi::new();
    let b = host_mount_bundle(&["sleep", "1301"]);
    let id = unique_id("hostmnt-d");
    b.write();
    h.ok(&["run", "-d", "-b", b.path().to_str().unwrap(), &id]);
    let pid = h.state(&id)["pid"].as_i64().unwrap().to_string();
    assert_eq!(ns_link(&pid, "mnt"), ns_link("self", "mnt"));
    // The host sees them while the container lives...
    let rootfs = b.rootfs().to_string_lossy().into_owned();
    let mounted = mounts_under(&b.rootfs());
    assert!(mounted.contains(&format!("{rootfs}/proc")), "{mounted:?}");
    assert!(mounted.contains(&format!("{rootfs}/dev")), "{mounted:?}");
    // ...and not after delete.
    h.ok(&["delete", "-f", &id]);
    assert_nothing_left(&h, &id, &b, Some("sleep 1301"));
}

#[test]
fn hidden_paths_without_a_mount_namespace_are_refused_as_by_runc() {
    require!();
    let h = Hezi::new();
    let mut b = host_mount_bundle(&["true"]);
    b.linux()["maskedPaths"] = json!(["/proc/kcore"]);
    let id = unique_id("hostmnt-masked");
    let (code, _, err) = h.run(&b, &id);
    assert_ne!(code, 0);
    assert!(err.contains("maskedPaths") && err.contains("mount namespace"), "{err}");
    assert_nothing_left(&h, &id, &b, None);
}
