//! `spec` (a default config.json, runc's defaults) and `features` (what hezi supports).

use std::path::Path;

use serde_json::{json, Value};

use crate::cli::{self, flag, opt};
use crate::Failure;

const CAPS: &[&str] = &["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"];

fn default_spec() -> Value {
    json!({
        "ociVersion": "1.2.0",
        "process": {
            "terminal": true,
            "user": { "uid": 0, "gid": 0 },
            "args": ["sh"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": { "bounding": CAPS, "effective": CAPS, "permitted": CAPS, "ambient": CAPS },
            "rlimits": [{ "type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024 }],
            "noNewPrivileges": true
        },
        "root": { "path": "rootfs", "readonly": true },
        "hostname": "hezi",
        "mounts": [
            { "destination": "/proc", "type": "proc", "source": "proc" },
            { "destination": "/dev", "type": "tmpfs", "source": "tmpfs",
              "options": ["nosuid", "strictatime", "mode=755", "size=65536k"] },
            { "destination": "/dev/pts", "type": "devpts", "source": "devpts",
              "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"] },
            { "destination": "/dev/shm", "type": "tmpfs", "source": "shm",
              "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"] },
            { "destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
              "options": ["nosuid", "noexec", "nodev"] },
            { "destination": "/sys", "type": "sysfs", "source": "sysfs",
              "options": ["nosuid", "noexec", "nodev", "ro"] },
            { "destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
              "options": ["nosuid", "noexec", "nodev", "relatime", "ro"] }
        ],
        "linux": {
            "resources": { "devices": [{ "allow": false, "access": "rwm" }] },
            "namespaces": [
                { "type": "pid" }, { "type": "network" }, { "type": "ipc" },
                { "type": "uts" }, { "type": "mount" }, { "type": "cgroup" }
            ],
            "maskedPaths": [
                "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"
            ],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
        }
    })
}

/// runc's rootless variant: a user namespace mapping the caller to root, no network namespace,
/// the host's /sys bound read-only, no cgroup mount or resources.
fn make_rootless(spec: &mut Value) {
    let uid = nix::unistd::geteuid().as_raw();
    let gid = nix::unistd::getegid().as_raw();
    let linux = &mut spec["linux"];
    linux["namespaces"] = json!([
        { "type": "pid" }, { "type": "ipc" }, { "type": "uts" }, { "type": "mount" }, { "type": "cgroup" }, { "type": "user" }
    ]);
    linux["uidMappings"] = json!([{ "containerID": 0, "hostID": uid, "size": 1 }]);
    linux["gidMappings"] = json!([{ "containerID": 0, "hostID": gid, "size": 1 }]);
    if let Some(obj) = linux.as_object_mut() {
        obj.remove("resources");
    }
    if let Some(mounts) = spec["mounts"].as_array_mut() {
        mounts.retain(|m| m["type"] != "cgroup" && m["destination"] != "/sys");
        mounts.push(json!({ "destination": "/sys", "type": "none", "source": "/sys",
                            "options": ["rbind", "nosuid", "noexec", "nodev", "ro"] }));
        for m in mounts.iter_mut() {
            if m["destination"] == "/dev/pts" {
                m["options"] = json!(["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]);
            }
        }
    }
}

pub fn spec(args: &[String]) -> Result<(), Failure> {
    let a = cli::parse(args, &[opt(&["b", "bundle"]), flag(&["rootless"])], false)?;
    let dir = Path::new(a.value("b").unwrap_or("."));
    let path = dir.join("config.json");
    if path.exists() {
        return Err(Failure::Error(format!(
            "File {} exists. Remove it first",
            path.display()
        )));
    }
    let mut spec = default_spec();
    if a.is_set("rootless") {
        make_rootless(&mut spec);
    }
    let text = serde_json::to_string_pretty(&spec).map_err(|e| Failure::Error(e.to_string()))?;
    std::fs::write(&path, text + "\n").map_err(|e| Failure::Error(format!("write {}: {e}", path.display())))
}

/// The OCI features document: only what hezi really does today (built by libcontainer, which
/// the shim's `-info` shares).
pub fn features(args: &[String]) -> Result<(), Failure> {
    cli::parse(args, &[], false)?;
    let doc = libcontainer::features::document();
    let text = serde_json::to_string_pretty(&doc).map_err(|e| Failure::Error(e.to_string()))?;
    println!("{text}");
    Ok(())
}
