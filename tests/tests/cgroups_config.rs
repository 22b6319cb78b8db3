//! Resources a cgroup v1 or hybrid host cannot take are refused at create with runc's words,
//! and the refused create leaves nothing behind.

use std::path::Path;

use hezi_e2e::{assert_nothing_left, require, unique_id, Bundle, Hezi};
use serde_json::{json, Value};

/// `create` with `resources` must fail; its stderr, after checking nothing is left.
fn refused(h: &Hezi, resources: Value, prefix: &str) -> String {
    let mut b = Bundle::busybox(&["sleep", "3021"]);
    b.linux()["resources"] = resources;
    b.write();
    let id = unique_id(prefix);
    let out = h.cmd(&["create", "--bundle", b.path().to_str().unwrap(), &id]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "create with unsupported resources succeeded");
    assert_nothing_left(h, &id, &b, Some("sleep 3021"));
    err
}

#[test]
fn unified_keys_on_a_v1_host_are_an_invalid_configuration() {
    require!();
    if Path::new("/sys/fs/cgroup/cgroup.procs").exists() {
        eprintln!("SKIP: pure cgroup v2 host, where unified keys are taken");
        return;
    }
    let h = Hezi::new();
    let err = refused(&h, json!({ "unified": { "memory.max": "100000000" } }), "cgunified");
    assert!(
        err.contains("invalid configuration: cannot use unified on cgroup v1"),
        "{err}"
    );
}

#[test]
fn a_hugepage_limit_without_page_size_is_refused() {
    require!();
    let h = Hezi::new();
    let err = refused(&h, json!({ "hugepageLimits": [{ "limit": 1048576 }] }), "cghugenosz");
    assert!(
        err.contains("cannot set hugetlb limit: a hugepageLimits entry has no pageSize"),
        "{err}"
    );
}
