//! The OCI features document (runtime-spec's features.md): what hezi really supports. One
//! builder for every caller, so `hezi features` and the shim's `-info` (which containerd reads
//! to decide, for example, whether a handler can take user namespaces) cannot drift apart.

use serde_json::{json, Value};

pub fn document() -> Value {
    let caps: Vec<String> = {
        let mut v: Vec<String> = caps::all().iter().map(|c| c.to_string()).collect();
        v.sort();
        v
    };
    let mut doc = json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": "1.3.0",
        "hooks": [],
        "mountOptions": crate::rootfs::options::KNOWN,
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"],
            "capabilities": caps,
            "cgroup": { "v1": true, "v2": true, "systemd": true, "systemdUser": false, "rdma": false },
            "seccomp": crate::seccomp::features(),
            "apparmor": { "enabled": false },
            "selinux": { "enabled": false },
            "intelRdt": { "enabled": false },
            "mountExtensions": { "idmap": { "enabled": crate::sys::has_mount_setattr() } }
        },
        "annotations": { "io.github.hezi.version": env!("CARGO_PKG_VERSION") }
    });
    // Spec 1.2–1.3's fields (hooks, memoryPolicy, netDevices, intelRdt, ...), built from the
    // code that implements them.
    crate::feature_report::complete(&mut doc);
    doc
}
