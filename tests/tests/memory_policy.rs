//! linux.memoryPolicy: the NUMA policy set for the container's process, read back from inside
//! (/proc/self/numa_maps shows the policy of every mapping that has none of its own, which is
//! the task's), and invalid policies refused before anything is made.

use hezi_e2e::{assert_nothing_left, require, unique_id, Bundle, Hezi};
use serde_json::{json, Value};

fn with_policy(policy: Value) -> Bundle {
    let mut b = Bundle::busybox(&[
        "sh",
        "-c",
        "grep Mems_allowed_list /proc/self/status; grep -m1 busybox /proc/self/numa_maps",
    ]);
    b.linux()["memoryPolicy"] = policy;
    b
}

#[test]
fn the_policy_is_the_container_process_s() {
    require!();
    let h = Hezi::new();
    // This machine has node 0 only; every mode below takes it.
    for (policy, shown) in [
        (json!({ "mode": "MPOL_BIND", "nodes": "0" }), "bind:0"),
        (
            json!({ "mode": "MPOL_BIND", "nodes": "0", "flags": ["MPOL_F_STATIC_NODES"] }),
            "bind=static:0",
        ),
        (
            json!({ "mode": "MPOL_INTERLEAVE", "nodes": "0", "flags": ["MPOL_F_RELATIVE_NODES"] }),
            "interleave=relative:0",
        ),
        (json!({ "mode": "MPOL_PREFERRED", "nodes": "0" }), "prefer:0"),
        (json!({ "mode": "MPOL_LOCAL" }), "local"),
    ] {
        let out = h.run_ok(&with_policy(policy.clone()), &unique_id("mempolicy"));
        let mut lines = out.lines();
        let mems = lines.next().unwrap_or_default();
        assert!(
            mems.starts_with("Mems_allowed_list:") && mems.ends_with('0'),
            "{policy}: {out}"
        );
        let mapping = lines.next().unwrap_or_default();
        let field = mapping.split_whitespace().nth(1).unwrap_or_default();
        assert_eq!(field, shown, "{policy}: {out}");
    }
    // Without a policy the container has the default one, not hezi's or the shell's.
    let mut b = with_policy(json!(null));
    b.linux().as_object_mut().map(|l| l.remove("memoryPolicy"));
    let out = h.run_ok(&b, &unique_id("mempolicy"));
    assert!(out.lines().nth(1).is_some_and(|l| l.contains(" default ")), "{out}");
}

#[test]
fn invalid_policies_are_refused_with_nothing_left() {
    require!();
    let h = Hezi::new();
    for (policy, says) in [
        (json!({ "mode": "MPOL_FOO", "nodes": "0" }), "MPOL_FOO"),
        (
            json!({ "mode": "MPOL_BIND", "nodes": "0", "flags": ["MPOL_F_FOO"] }),
            "MPOL_F_FOO",
        ),
        (json!({ "mode": "MPOL_BIND" }), "needs at least one node"),
        (json!({ "mode": "MPOL_LOCAL", "nodes": "0" }), "takes no nodes"),
        (json!({ "mode": "MPOL_BIND", "nodes": "1-0" }), "runs backwards"),
        (
            json!({ "mode": "MPOL_BIND", "nodes": "0", "flags": ["MPOL_F_STATIC_NODES", "MPOL_F_RELATIVE_NODES"] }),
            "exclude each other",
        ),
        // Well-formed, but the kernel has no node 63: its refusal, named.
        (json!({ "mode": "MPOL_BIND", "nodes": "63" }), "set_mempolicy"),
    ] {
        let b = with_policy(policy.clone());
        let id = unique_id("badpolicy");
        let (code, out, err) = h.run(&b, &id);
        assert_ne!(code, 0, "{policy}: {out}");
        assert!(err.contains(says), "{policy}: wanted {says:?} in {err}");
        assert_nothing_left(&h, &id, &b, None);
    }
}
