//! linux.intelRdt: where resctrl is not mounted (this project's VM: no RDT), create fails
//! before anything is made, naming the mount it needs. The schemata writing itself is
//! unit-tested against a directory laid out as resctrl is (libcontainer/src/intelrdt.rs).

use hezi_e2e::{assert_nothing_left, require, unique_id, Bundle, Hezi};
use serde_json::json;

fn resctrl_mounted() -> bool {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .any(|l| l.split(" - ").nth(1).is_some_and(|r| r.starts_with("resctrl ")))
}

#[test]
fn without_resctrl_create_is_a_clear_error_with_nothing_left() {
    require!();
    if resctrl_mounted() {
        eprintln!("SKIP: resctrl is mounted here; this test is for hosts without it");
        return;
    }
    let h = Hezi::new();
    for rdt in [
        json!({ "closID": "hezi-test", "l3CacheSchema": "L3:0=f" }),
        json!({ "schemata": ["MB:0=50"] }),
        json!({ "enableMonitoring": true }),
    ] {
        let mut b = Bundle::busybox(&["true"]);
        b.linux()["intelRdt"] = rdt.clone();
        let id = unique_id("rdt");
        let (code, _, err) = h.run(&b, &id);
        assert_ne!(code, 0, "{rdt}");
        assert!(err.contains("linux.intelRdt: resctrl is not mounted"), "{rdt}: {err}");
        assert_nothing_left(&h, &id, &b, None);
    }
}
