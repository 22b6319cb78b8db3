//! What `hezi run --image` and `hezi create --image` change in the spec an image gives, with
//! ctr's flags. [`Flags`] holds them as typed; [`Overrides::new`] checks every one (and reads
//! `--env-file`) before anything is made, so bad input leaves no snapshot or bundle;
//! [`Overrides::apply`] changes the spec once the image's rootfs is mounted, where a `--user`
//! name is looked up. They are applied in ctr's order: env, mounts, read-only, cwd, user, tty,
//! privileged, host network, capabilities, seccomp (which sees the final capabilities),
//! resources, hostname, labels.

mod caps;
mod devices;
mod envfile;
mod mount;
mod resources;

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::spec::merge_env;
use crate::user;

pub use mount::parse_mount;
pub use resources::CPU_PERIOD;

/// The annotation that names the image a container was made from (`hezi list` shows it).
pub const IMAGE_ANNOTATION: &str = "org.hezi.image";

/// The annotation that names the containerd namespace a container from an image belongs to
/// (where its state lives is the runtime's business; this lets `state` and `list` show it).
pub const NAMESPACE_ANNOTATION: &str = "org.hezi.namespace";

/// The flags as given on the command line.
#[derive(Debug, Default, Clone)]
pub struct Flags {
    /// `--env KEY=VALUE`, repeatable.
    pub env: Vec<String>,
    /// `--env-file FILE`: its variables come before `--env`'s, which win.
    pub env_file: Option<PathBuf>,
    pub cwd: Option<String>,
    pub hostname: Option<String>,
    pub net_host: bool,
    pub read_only: bool,
    /// `--mount` in ctr's form, repeatable.
    pub mounts: Vec<String>,
    /// `--user UID[:GID]` or names from the image's /etc/passwd and /etc/group.
    pub user: Option<String>,
    /// `--label K=V` (or K, meaning "true"), stored as annotations.
    pub labels: Vec<String>,
    pub memory_limit: Option<String>,
    pub cpus: Option<String>,
    pub privileged: bool,
    pub seccomp: bool,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    /// `-t`: the process gets a terminal (and TERM=xterm, as ctr sets).
    pub tty: bool,
}

/// The flags, checked.
#[derive(Debug, Default)]
pub struct Overrides {
    env: Vec<String>,
    cwd: Option<String>,
    hostname: Option<String>,
    net_host: bool,
    read_only: bool,
    mounts: Vec<Value>,
    user: Option<String>,
    labels: Vec<(String, String)>,
    limits: resources::Limits,
    privileged: bool,
    seccomp: bool,
    caps: caps::Changes,
    tty: bool,
}

impl Overrides {
    /// Check every flag: env entries are KEY=VALUE, cwd absolute, mounts in ctr's form,
    /// numbers numbers, capabilities known; read the env file.
    pub fn new(f: Flags) -> Result<Overrides> {
        if let Some(bad) = f.env.iter().find(|e| !e.contains('=') || e.starts_with('=')) {
            return Err(Error::Invalid(format!("--env {bad:?}: not KEY=VALUE")));
        }
        if let Some(c) = f.cwd.as_deref().filter(|c| !c.starts_with('/')) {
            return Err(Error::Invalid(format!("--cwd {c:?}: not an absolute path")));
        }
        if f.user.as_deref().is_some_and(|u| u.trim().is_empty()) {
            return Err(Error::Invalid(
                "--user \"\": give a user (UID, UID:GID or a name from the image's /etc/passwd)".into(),
            ));
        }
        let mut env = match &f.env_file {
            Some(p) => envfile::read(p)?,
            None => Vec::new(),
        };
        env.extend(f.env);
        let labels = f.labels.iter().map(|l| parse_label(l)).collect::<Result<Vec<_>>>()?;
        Ok(Overrides {
            env,
            cwd: f.cwd,
            hostname: f.hostname,
            net_host: f.net_host,
            read_only: f.read_only,
            mounts: f.mounts.iter().map(|m| parse_mount(m)).collect::<Result<Vec<_>>>()?,
            user: f.user,
            labels,
            limits: resources::Limits::new(f.memory_limit.as_deref(), f.cpus.as_deref())?,
            privileged: f.privileged,
            seccomp: f.seccomp,
            caps: caps::Changes::new(&f.cap_add, &f.cap_drop)?,
            tty: f.tty,
        })
    }

    /// Apply to a spec made by `spec::for_image`, the image mounted at `rootfs`.
    pub fn apply(&self, spec: &mut Value, rootfs: &Path) -> Result<()> {
        if !self.env.is_empty() {
            set_env(spec, &self.env);
        }
        if let Some(m) = spec["mounts"].as_array_mut() {
            m.extend(self.mounts.iter().cloned());
        }
        if self.read_only {
            spec["root"]["readonly"] = json!(true);
        }
        if let Some(c) = &self.cwd {
            spec["process"]["cwd"] = json!(c);
        }
        if let Some(u) = &self.user {
            let u = user::resolve(rootfs, u).map_err(|e| Error::NotFound(format!("--user: {e}")))?;
            spec["process"]["user"] = json!({ "uid": u.uid, "gid": u.gid });
            if !u.additional_gids.is_empty() {
                spec["process"]["user"]["additionalGids"] = json!(u.additional_gids);
            }
        }
        if self.tty {
            spec["process"]["terminal"] = json!(true);
            set_env(spec, &["TERM=xterm".to_string()]);
        }
        if self.privileged {
            privileged(spec)?;
        }
        if self.net_host {
            if let Some(ns) = spec["linux"]["namespaces"].as_array_mut() {
                ns.retain(|n| n["type"] != "network");
            }
        }
        if !self.caps.is_empty() {
            self.caps.apply(spec)?;
        }
        if self.seccomp {
            let bounding: Vec<String> = spec["process"]["capabilities"]["bounding"]
                .as_array()
                .map(|a| a.iter().filter_map(|c| c.as_str().map(str::to_string)).collect())
                .unwrap_or_default();
            spec["linux"]["seccomp"] = crate::seccomp::default_profile(&bounding);
        }
        self.limits.apply(spec);
        if let Some(h) = &self.hostname {
            spec["hostname"] = json!(h);
        }
        for (k, v) in &self.labels {
            spec["annotations"][k] = json!(v);
        }
        Ok(())
    }
}

/// The spec's env with `over` on top.
fn set_env(spec: &mut Value, over: &[String]) {
    let base: Vec<String> = spec["process"]["env"]
        .as_array()
        .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    spec["process"]["env"] = json!(merge_env(&base, over));
}

/// ctr's `--label K=V`; a label without `=` is `K=true`, as ctr has it.
fn parse_label(l: &str) -> Result<(String, String)> {
    let (k, v) = l.split_once('=').unwrap_or((l, "true"));
    if k.trim().is_empty() {
        return Err(Error::Invalid(format!("--label {l:?}: no key (K=V)")));
    }
    if k == IMAGE_ANNOTATION || k == NAMESPACE_ANNOTATION {
        return Err(Error::Invalid(format!(
            "--label {l:?}: {k} is hezi's own (the image and namespace the container came from)"
        )));
    }
    Ok((k.to_string(), v.to_string()))
}

/// ctr's `--privileged`: every capability hezi holds, no masked or read-only paths, /sys
/// writable, no seccomp filter, and the host's devices, all allowed by the device cgroup.
fn privileged(spec: &mut Value) -> Result<()> {
    caps::set_all(spec, &caps::current()?);
    spec["linux"]["maskedPaths"] = json!([]);
    spec["linux"]["readonlyPaths"] = json!([]);
    if let Some(mounts) = spec["mounts"].as_array_mut() {
        for m in mounts
            .iter_mut()
            .filter(|m| m["type"] == "sysfs" || m["type"] == "cgroup")
        {
            if let Some(opts) = m["options"].as_array_mut() {
                for o in opts.iter_mut().filter(|o| *o == "ro") {
                    *o = json!("rw");
                }
            }
        }
    }
    if let Some(l) = spec["linux"].as_object_mut() {
        l.remove("seccomp");
    }
    spec["linux"]["resources"]["devices"] = json!([{ "allow": true, "access": "rwm" }]);
    spec["linux"]["devices"] = json!(devices::host_devices(Path::new("/dev"))?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags() -> Flags {
        Flags::default()
    }

    fn spec() -> Value {
        let mut spec = crate::spec::default_spec("c1");
        spec["process"]["env"] = json!(["PATH=/bin", "A=1"]);
        spec
    }

    #[test]
    fn flags_change_the_spec() {
        let o = Overrides::new(Flags {
            env: vec!["A=2".into(), "B=x=y".into()],
            cwd: Some("/srv".into()),
            hostname: Some("box".into()),
            net_host: true,
            read_only: true,
            mounts: vec!["src=/tmp,dst=/host".into()],
            labels: vec!["team=a".into(), "flag".into()],
            ..flags()
        })
        .unwrap();
        let mut spec = spec();
        o.apply(&mut spec, Path::new("/nonexistent")).unwrap();
        assert_eq!(spec["process"]["env"], json!(["PATH=/bin", "A=2", "B=x=y"]));
        assert_eq!(spec["process"]["cwd"], "/srv");
        assert_eq!(spec["hostname"], "box");
        assert_eq!(spec["root"]["readonly"], true);
        assert_eq!(spec["annotations"], json!({"team": "a", "flag": "true"}));
        let ns: Vec<&str> = spec["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["type"].as_str().unwrap())
            .collect();
        assert!(!ns.contains(&"network") && ns.contains(&"pid"), "{ns:?}");
        assert_eq!(
            spec["mounts"].as_array().unwrap().last().unwrap()["destination"],
            "/host"
        );
        // Nothing asked, nothing changed.
        let mut plain = self::spec();
        Overrides::new(flags())
            .unwrap()
            .apply(&mut plain, Path::new("/"))
            .unwrap();
        assert_eq!(plain, self::spec());
    }

    #[test]
    fn bad_flags_are_named() {
        for (f, why) in [
            (
                Flags {
                    env: vec!["NOEQUALS".into()],
                    ..flags()
                },
                "--env \"NOEQUALS\"",
            ),
            (
                Flags {
                    cwd: Some("rel".into()),
                    ..flags()
                },
                "--cwd \"rel\"",
            ),
            (
                Flags {
                    user: Some(" ".into()),
                    ..flags()
                },
                "--user",
            ),
            (
                Flags {
                    labels: vec!["=v".into()],
                    ..flags()
                },
                "--label \"=v\"",
            ),
            (
                Flags {
                    labels: vec![format!("{IMAGE_ANNOTATION}=x")],
                    ..flags()
                },
                "hezi's own",
            ),
            (
                Flags {
                    env_file: Some("/no/such/file".into()),
                    ..flags()
                },
                "--env-file /no/such/file",
            ),
            (
                Flags {
                    cpus: Some("lots".into()),
                    ..flags()
                },
                "--cpus \"lots\"",
            ),
            (
                Flags {
                    memory_limit: Some("1g".into()),
                    ..flags()
                },
                "--memory-limit \"1g\"",
            ),
            (
                Flags {
                    cap_add: vec!["CAP_NOPE".into()],
                    ..flags()
                },
                "--cap-add \"CAP_NOPE\"",
            ),
        ] {
            let e = Overrides::new(f).unwrap_err().to_string();
            assert!(e.contains(why), "{why}: {e}");
        }
    }

    #[test]
    fn env_file_then_env() {
        let dir = std::env::temp_dir().join(format!("bridge-envfile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("env");
        std::fs::write(&file, "# defaults\nA=from-file\nC=3\n").unwrap();
        let o = Overrides::new(Flags {
            env_file: Some(file),
            env: vec!["C=flag".into()],
            ..flags()
        })
        .unwrap();
        let mut spec = spec();
        o.apply(&mut spec, Path::new("/")).unwrap();
        assert_eq!(spec["process"]["env"], json!(["PATH=/bin", "A=from-file", "C=flag"]));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn user_from_the_image() {
        let dir = std::env::temp_dir().join(format!("bridge-user-flag-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("etc")).unwrap();
        std::fs::write(
            dir.join("etc/passwd"),
            "root:x:0:0::/:/bin/sh\napp:x:1000:1000::/:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(dir.join("etc/group"), "app:x:1000:\nextra:x:2000:app\n").unwrap();
        let with = |u: &str| {
            let mut spec = spec();
            Overrides::new(Flags {
                user: Some(u.into()),
                ..flags()
            })
            .unwrap()
            .apply(&mut spec, &dir)
            .map(|()| spec["process"]["user"].clone())
        };
        assert_eq!(
            with("app").unwrap(),
            json!({"uid": 1000, "gid": 1000, "additionalGids": [2000]})
        );
        assert_eq!(with("4242:7").unwrap(), json!({"uid": 4242, "gid": 7}));
        let e = with("nobody").unwrap_err().to_string();
        assert!(e.contains("--user") && e.contains("\"nobody\""), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn tty_seccomp_and_privileged() {
        let mut spec = spec();
        Overrides::new(Flags {
            tty: true,
            seccomp: true,
            cap_drop: vec!["ALL".into()],
            ..flags()
        })
        .unwrap()
        .apply(&mut spec, Path::new("/"))
        .unwrap();
        assert_eq!(spec["process"]["terminal"], true);
        assert_eq!(spec["process"]["env"], json!(["PATH=/bin", "A=1", "TERM=xterm"]));
        assert_eq!(spec["linux"]["seccomp"]["defaultAction"], "SCMP_ACT_ERRNO");
        assert_eq!(spec["process"]["capabilities"]["bounding"], json!([]));

        let mut spec = self::spec();
        Overrides::new(Flags {
            privileged: true,
            ..flags()
        })
        .unwrap()
        .apply(&mut spec, Path::new("/"))
        .unwrap();
        assert_eq!(spec["linux"]["maskedPaths"], json!([]));
        assert_eq!(spec["linux"]["readonlyPaths"], json!([]));
        assert!(spec["linux"].get("seccomp").is_none());
        assert_eq!(
            spec["linux"]["resources"]["devices"],
            json!([{ "allow": true, "access": "rwm" }])
        );
        assert!(spec["linux"]["devices"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["path"] == "/dev/null"));
        let sys = spec["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["type"] == "sysfs")
            .unwrap();
        assert!(sys["options"].as_array().unwrap().contains(&json!("rw")), "{sys}");
        assert_eq!(
            spec["process"]["capabilities"]["effective"],
            json!(caps::current().unwrap())
        );
    }
}
