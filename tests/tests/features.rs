//! `hezi features` against what hezi does: each 1.2–1.3 field the document reports is checked
//! here from the outside, and unit tests in libcontainer/src/feature_report.rs hold the lists to
//! the code that implements them (hook stages, mount option parser, memory policy parser).

use hezi_e2e::{hezi_bin, require};
use serde_json::{json, Value};

fn features() -> Value {
    let out = std::process::Command::new(hezi_bin())
        .arg("features")
        .output()
        .expect("run hezi features");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("features prints JSON")
}

#[test]
fn the_spec_1_3_fields_are_reported() {
    require!();
    let f = features();
    assert_eq!(
        f["hooks"],
        json!([
            "prestart",
            "createRuntime",
            "createContainer",
            "startContainer",
            "poststart",
            "poststop"
        ])
    );
    let modes = f["linux"]["memoryPolicy"]["modes"]
        .as_array()
        .expect("memoryPolicy.modes");
    for m in [
        "MPOL_DEFAULT",
        "MPOL_BIND",
        "MPOL_INTERLEAVE",
        "MPOL_WEIGHTED_INTERLEAVE",
        "MPOL_PREFERRED",
        "MPOL_PREFERRED_MANY",
        "MPOL_LOCAL",
    ] {
        assert!(modes.iter().any(|x| x == m), "{m} missing: {modes:?}");
    }
    assert_eq!(
        f["linux"]["memoryPolicy"]["flags"],
        json!(["MPOL_F_NUMA_BALANCING", "MPOL_F_RELATIVE_NODES", "MPOL_F_STATIC_NODES"])
    );
    assert_eq!(f["linux"]["netDevices"], json!({ "enabled": true }));
    assert_eq!(
        f["linux"]["intelRdt"],
        json!({ "enabled": true, "schemata": true, "monitoring": true })
    );
    assert_eq!(f["potentiallyUnsafeConfigAnnotations"], json!([]));
    let v = f["annotations"]["io.github.seccomp.libseccomp.version"]
        .as_str()
        .expect("libseccomp version");
    assert!(v.split('.').all(|p| p.parse::<u32>().is_ok()), "{v}");
}
