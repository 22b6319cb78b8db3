//! The daemonless stack as a complete tool (issue 20), its last pieces: containerd's namespaces
//! for containers as for images, Ctrl-C during a transfer leaving nothing, and
//! `--log-uri binary://` (a logging program started as containerd's shims start it). Bad input
//! fails naming what was wrong and leaves nothing behind.

mod image_support;

use std::path::Path;

use hezi_e2e::{require, unique_id, Bundle, Hezi};
use image_support::*;
use serde_json::Value;

const DEMO: &str = "hezi.local/demo:latest";

/// Force-deletes, on drop, the containers the test left in namespace `ns` (the harness's own
/// cleanup sees only `default`'s).
struct NsCleanup<'a> {
    h: &'a Hezi,
    ns: &'static str,
}

impl Drop for NsCleanup<'_> {
    fn drop(&mut self) {
        let out = self.h.cmd(&["-n", self.ns, "list", "-q"]);
        for id in String::from_utf8_lossy(&out.stdout).lines() {
            let _ = self.h.cmd(&["-n", self.ns, "delete", "--force", id]);
        }
    }
}

fn ids(out: &str) -> Vec<&str> {
    out.lines().collect()
}

/// Containers made in a namespace are that namespace's alone: `list` there shows them and no
/// other, every command on an id of another namespace says it is not found there, `delete -f`
/// from elsewhere leaves them (and their bundle) alone, and an id is not taken twice. Without
/// `-n`, `--root` is the `default` namespace exactly as runc lays it out: bundle containers are
/// in it, and a root that never saw a namespace gains nothing.
#[test]
fn containers_belong_to_their_namespace() {
    require!();
    let h = Hezi::new();
    let _a = NsCleanup { h: &h, ns: "team-a" };
    let _b = NsCleanup { h: &h, ns: "team-b" };
    let bundle_only = unique_id("nsb");
    let b = Bundle::busybox(&["sleep", "1000"]);
    h.create(&b, &bundle_only);
    assert!(
        !h.root().join(".namespaces").exists(),
        "a root of bundle containers gained a namespace directory"
    );
    h.ok(&["image", "demo"]);
    h.ok(&["-n", "team-a", "image", "demo"]);
    let (a1, d1) = (unique_id("nsa"), unique_id("nsd"));
    h.ok(&["-n", "team-a", "run", "-d", "--image", DEMO, &a1, "--", "sleep", "1000"]);
    h.ok(&["run", "-d", "--image", DEMO, &d1, "--", "sleep", "1000"]);

    // list: each namespace its own; default is --root's (bundle containers included).
    assert_eq!(ids(&h.ok(&["-n", "team-a", "list", "-q"])), [a1.as_str()]);
    let mut default = vec![bundle_only.as_str(), d1.as_str()];
    default.sort();
    assert_eq!(ids(&h.ok(&["list", "-q"])), default);
    assert_eq!(ids(&h.ok(&["-n", "default", "list", "-q"])), default);
    assert_eq!(
        ids(&ok_env(&h, &[("CONTAINERD_NAMESPACE", "team-a")], &["list", "-q"])),
        [a1.as_str()]
    );
    assert_eq!(h.ok(&["-n", "team-b", "list", "-q"]), "");
    let table = h.ok(&["-n", "team-a", "list"]);
    assert!(table.contains(&a1) && table.contains(DEMO), "{table}");

    // The state carries image and namespace.
    let st: Value = serde_json::from_str(&h.ok(&["-n", "team-a", "state", &a1])).unwrap();
    assert_eq!(st["status"], "running");
    assert_eq!(st["annotations"]["org.hezi.namespace"], "team-a", "{st}");
    assert_eq!(st["annotations"]["org.hezi.image"], DEMO, "{st}");
    assert_eq!(h.state(&d1)["annotations"]["org.hezi.namespace"], "default");
    assert_eq!(h.ok(&["-n", "team-a", "exec", &a1, "echo", "in-a"]), "in-a\n");

    // Every command on another namespace's id: not found, as ctr says it (runc's words in
    // default, which podman and containerd's runc shim match on).
    for cmd in [
        &["state"][..],
        &["kill"],
        &["delete"],
        &["exec"],
        &["pause"],
        &["resume"],
        &["ps"],
        &["events", "--stats"],
        &["update", "--pids-limit", "10"],
        &["start"],
    ] {
        let run = |ns: Option<&str>, id: &str| {
            let mut args: Vec<&str> = ns.map(|n| vec!["-n", n]).unwrap_or_default();
            args.extend_from_slice(cmd);
            args.push(id);
            if cmd[0] == "exec" {
                args.push("true");
            }
            fails(&h, &args)
        };
        let e = run(None, &a1);
        assert!(e.contains(&format!("container {a1} does not exist")), "{cmd:?}: {e}");
        for id in [&d1, &bundle_only] {
            let e = run(Some("team-a"), id);
            assert!(
                e.contains(&format!("container {id} not found in namespace team-a")),
                "{cmd:?}: {e}"
            );
        }
        let e = run(Some("team-b"), &a1);
        assert!(
            e.contains(&format!("container {a1} not found in namespace team-b")),
            "{cmd:?}: {e}"
        );
    }
    // delete -f of a missing id succeeds (runc's rule) and touches no other namespace's bundle.
    h.ok(&["-n", "team-b", "delete", "-f", &a1]);
    h.ok(&["delete", "-f", &a1]);
    assert!(
        h.root().join(".bundles").join(&a1).join("rootfs/bin").exists(),
        "a1's bundle went"
    );
    assert_eq!(h.ok(&["-n", "team-a", "exec", &a1, "echo", "still"]), "still\n");

    // Ids are unique across namespaces (cgroups and bundles are named by them).
    let before = store_files(&h);
    for (ns, id) in [(None, &a1), (Some("team-b"), &d1), (Some("team-a"), &bundle_only)] {
        let mut args: Vec<&str> = ns.map(|n| vec!["-n", n]).unwrap_or_default();
        args.extend_from_slice(&["run", "-d", "--image", DEMO, id, "--", "true"]);
        let e = fails(&h, &args);
        assert!(e.contains(&format!("container {id} exists in namespace")), "{e}");
    }
    let e = fails(
        &h,
        &["-n", "team-b", "create", "--bundle", b.path().to_str().unwrap(), &d1],
    );
    assert!(
        e.contains(&format!("container {d1} exists in namespace default")),
        "{e}"
    );
    assert_eq!(store_files(&h), before, "a refused create changed the store");
    assert_eq!(h.ok(&["-n", "team-b", "list", "-q"]), "");

    // Bad namespaces, from the flag or the environment, are named and make nothing.
    let e = fails(&h, &["-n", "a..b", "list"]);
    assert!(e.contains("invalid namespace \"a..b\""), "{e}");
    let o = hezi_env(&h, &[("CONTAINERD_NAMESPACE", "x/y")], &["state", &a1]);
    assert!(
        !o.status.success() && text(&o).contains("invalid namespace \"x/y\""),
        "{}",
        text(&o)
    );
    assert!(!h.root().join(".namespaces/a..b").exists());

    // The namespace's own commands end its container, bundle and all.
    h.ok(&["-n", "team-a", "kill", &a1, "KILL"]);
    hezi_e2e::wait_until(10, || {
        h.cmd(&["-n", "team-a", "state", &a1])
            .stdout
            .windows(7)
            .any(|w| w == b"stopped")
    });
    h.ok(&["-n", "team-a", "delete", &a1]);
    assert_bundle_gone_of(&h, &a1);
    assert_eq!(h.ok(&["-n", "team-a", "list", "-q"]), "");
    h.ok(&["delete", "-f", &d1]);
    h.ok(&["delete", "-f", &bundle_only]);
}

/// No bundle of `id` is left (other containers' mounts may still be there).
fn assert_bundle_gone_of(h: &Hezi, id: &str) {
    let dir = h.root().join(".bundles").join(id);
    assert!(!dir.exists(), "bundle {} left", dir.display());
    assert!(
        hezi_e2e::mounts_under(Path::new(&dir)).is_empty(),
        "mounts left under {}",
        dir.display()
    );
}
