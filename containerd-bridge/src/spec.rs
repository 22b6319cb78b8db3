//! The runtime spec for a container from an image: containerd's default Linux spec (its
//! mounts, namespaces, capability set, masked and read-only paths; no rlimits, no terminal)
//! with the image config on top: Entrypoint + Cmd (user arguments replace Cmd), Env over the
//! default PATH, WorkingDir, and User resolved in the image's rootfs.

use std::path::Path;

use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::manifest::ImageConfig;
use crate::user;

pub const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// containerd's default capabilities (oci/spec.go defaultUnixCaps).
pub const DEFAULT_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// containerd's default spec for container `id` (rootfs `rootfs`, relative to the bundle).
pub fn default_spec(id: &str) -> Value {
    json!({
        "ociVersion": "1.2.0",
        "process": {
            "terminal": false,
            "user": { "uid": 0, "gid": 0 },
            "args": [],
            "env": [DEFAULT_PATH],
            "cwd": "/",
            "capabilities": { "bounding": DEFAULT_CAPS, "effective": DEFAULT_CAPS, "permitted": DEFAULT_CAPS },
            "noNewPrivileges": true
        },
        "root": { "path": "rootfs" },
        "hostname": id,
        "mounts": [
            { "destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"] },
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
            { "destination": "/run", "type": "tmpfs", "source": "tmpfs",
              "options": ["nosuid", "strictatime", "mode=755", "size=65536k"] }
        ],
        "linux": {
            "resources": { "devices": [{ "allow": false, "access": "rwm" }] },
            "namespaces": [
                { "type": "pid" }, { "type": "ipc" }, { "type": "uts" }, { "type": "mount" }, { "type": "network" }
            ],
            "maskedPaths": [
                "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware",
                "/sys/devices/virtual/powercap", "/proc/scsi"
            ],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
        }
    })
}

/// `base` env with `over` on top: a variable in `over` replaces the one of the same name.
pub fn merge_env(base: &[String], over: &[String]) -> Vec<String> {
    let key = |e: &str| e.split_once('=').map_or(e, |(k, _)| k).to_string();
    let mut out: Vec<String> = base.to_vec();
    for e in over {
        match out.iter().position(|b| key(b) == key(e)) {
            Some(i) => out[i] = e.clone(),
            None => out.push(e.clone()),
        }
    }
    out
}

/// The process args: Entrypoint, then the user's arguments or else Cmd.
pub fn args(cfg: &ImageConfig, user_args: &[String]) -> Result<Vec<String>> {
    let mut out = cfg.config.entrypoint.clone().unwrap_or_default();
    if user_args.is_empty() {
        out.extend(cfg.config.cmd.clone().unwrap_or_default());
    } else {
        out.extend(user_args.iter().cloned());
    }
    if out.is_empty() {
        return Err(Error::Invalid(
            "the image has no Entrypoint or Cmd: give a command after --".into(),
        ));
    }
    Ok(out)
}

/// The spec for container `id` from image config `cfg`, its rootfs mounted at `rootfs`.
pub fn for_image(id: &str, cfg: &ImageConfig, rootfs: &Path, user_args: &[String]) -> Result<Value> {
    let mut spec = default_spec(id);
    let p = &mut spec["process"];
    p["args"] = json!(args(cfg, user_args)?);
    p["env"] = json!(merge_env(
        &[DEFAULT_PATH.to_string()],
        cfg.config.env.as_deref().unwrap_or(&[])
    ));
    if let Some(wd) = cfg.config.working_dir.as_deref().filter(|w| !w.is_empty()) {
        p["cwd"] = json!(wd);
    }
    let u = user::resolve(rootfs, cfg.config.user.as_deref().unwrap_or(""))?;
    p["user"] = json!({ "uid": u.uid, "gid": u.gid });
    if !u.additional_gids.is_empty() {
        p["user"]["additionalGids"] = json!(u.additional_gids);
    }
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::RunConfig;

    fn cfg(entry: Option<&[&str]>, cmd: Option<&[&str]>) -> ImageConfig {
        let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        ImageConfig {
            config: RunConfig {
                entrypoint: entry.map(v),
                cmd: cmd.map(v),
                env: Some(vec!["PATH=/custom".into(), "A=1".into()]),
                working_dir: Some("/work".into()),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn entrypoint_cmd_and_user_args() {
        let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(args(&cfg(Some(&["/ep"]), Some(&["a"])), &[]).unwrap(), s(&["/ep", "a"]));
        assert_eq!(
            args(&cfg(Some(&["/ep"]), Some(&["a"])), &s(&["b"])).unwrap(),
            s(&["/ep", "b"])
        );
        assert_eq!(
            args(&cfg(None, Some(&["sh"])), &s(&["ls", "/"])).unwrap(),
            s(&["ls", "/"])
        );
        assert!(args(&cfg(None, None), &[]).is_err());
    }

    #[test]
    fn env_and_defaults() {
        let merged = merge_env(
            &[DEFAULT_PATH.into(), "X=1".into()],
            &["PATH=/custom".into(), "A=1".into()],
        );
        assert_eq!(merged, ["PATH=/custom", "X=1", "A=1"]);
        let d = std::env::temp_dir();
        let spec = for_image("c1", &cfg(None, Some(&["sh"])), &d.join("no-such-rootfs-here"), &[]);
        // No rootfs to read passwd from is only a problem for a named user.
        let spec = spec.unwrap();
        assert_eq!(spec["hostname"], "c1");
        assert_eq!(spec["process"]["cwd"], "/work");
        assert_eq!(spec["process"]["terminal"], false);
        assert_eq!(spec["process"]["env"], json!(["PATH=/custom", "A=1"]));
        assert!(spec["process"].get("rlimits").is_none());
        assert_eq!(
            spec["process"]["capabilities"]["bounding"].as_array().unwrap().len(),
            14
        );
        let ns: Vec<&str> = spec["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["type"].as_str().unwrap())
            .collect();
        assert_eq!(ns, ["pid", "ipc", "uts", "mount", "network"]);
    }
}
