//! README's "From ctr to hezi" walk, step by step, as a user types it: pull from a registry on
//! loopback, tag, export, import into another store, run detached with the host's network and
//! a bind mount, exec, pause, resume, kill, delete, and nothing left.

mod image_support;

use hezi_e2e::{require, unique_id, Hezi, TempDir};
use image_support::*;
use serde_json::Value;

#[test]
fn the_ctr_tutorial_with_hezi() {
    require!();
    if !tools(&["skopeo", "docker-registry"]) {
        return;
    }
    let h = Hezi::new();
    let tmp = TempDir::new("tutorial");
    // A registry holding the demo image (put there with skopeo from an export).
    h.ok(&["image", "demo"]);
    let seed = tmp.path().join("seed.tar");
    h.ok(&["image", "export", seed.to_str().unwrap(), "hezi.local/demo"]);
    let reg = Registry::start(None);
    let remote = format!("127.0.0.1:{}/library/demo:1.0", reg.port);
    sh(&format!(
        "skopeo --insecure-policy copy -q --dest-tls-verify=false oci-archive:{}:latest docker://{remote}",
        seed.display()
    ));
    h.ok(&["image", "rm", "hezi.local/demo"]);

    // 1. pull, 2. tag, 3. inspect and ls.
    assert!(h.ok(&["image", "pull", "--plain-http", &remote]).starts_with(&remote));
    h.ok(&["image", "tag", &remote, "hezi.test/demo:mine"]);
    let listed = h.ok(&["image", "ls", "-q"]);
    assert_eq!(listed, format!("{remote}\nhezi.test/demo:mine\n"));
    let ins: Value = serde_json::from_str(&h.ok(&["image", "inspect", "hezi.test/demo:mine"])).unwrap();
    assert_eq!(ins["config"]["config"]["Cmd"][2], "echo hello from hezi");

    // 4. export, 5. import into another store.
    let archive = tmp.path().join("demo.tar");
    h.ok(&["image", "export", archive.to_str().unwrap(), "hezi.test/demo:mine"]);
    let other = Hezi::new();
    assert!(other
        .ok(&["image", "import", archive.to_str().unwrap()])
        .starts_with("hezi.test/demo:mine sha256:"));

    // 6. run detached, with the host's network and a bind mount.
    let data = tmp.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let id = unique_id("tutorial");
    let mount = format!("type=bind,src={},dst=/data", data.display());
    let run = other.cmd(&[
        "run",
        "-d",
        "--image",
        "hezi.test/demo:mine",
        "--net-host",
        "--mount",
        &mount,
        &id,
        "--",
        "sh",
        "-c",
        "echo started > /data/log; exec sleep 1000",
    ]);
    assert!(run.status.success(), "{}", text(&run));
    assert_eq!(other.status(&id), "running");

    // 7. exec: the bind mount and the host's network namespace.
    let host_net = std::fs::read_link("/proc/self/ns/net").unwrap();
    assert_eq!(
        other.ok(&["exec", &id, "sh", "-c", "cat /data/log; readlink /proc/self/ns/net"]),
        format!("started\n{}\n", host_net.display())
    );

    // 8. pause, 9. resume, 10. kill, 11. delete.
    other.ok(&["pause", &id]);
    assert_eq!(other.status(&id), "paused");
    other.ok(&["resume", &id]);
    assert_eq!(other.status(&id), "running");
    other.ok(&["kill", &id, "KILL"]);
    other.wait_status(&id, "stopped");
    other.ok(&["delete", &id]);
    assert_bundle_gone(&other, &id);
    assert_eq!(other.ok(&["list", "-q"]), "");

    // 12. the images go, with everything they used.
    other.ok(&["image", "rm", "hezi.test/demo:mine"]);
    assert_store_clean(&other);
    h.ok(&["image", "rm", &remote, "hezi.test/demo:mine"]);
    assert_store_clean(&h);
}
