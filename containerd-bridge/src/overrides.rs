//! What `hezi run --image` changes in the spec an image gives, with ctr's flags: `--env`,
//! `--cwd`, `--hostname`, `--net-host`, `--read-only` and `--mount`. Parsed in full before
//! anything is made, so a bad flag leaves no snapshot or bundle.

use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::spec::merge_env;

/// The flags, checked.
#[derive(Debug, Default)]
pub struct Overrides {
    pub env: Vec<String>,
    pub cwd: Option<String>,
    pub hostname: Option<String>,
    pub net_host: bool,
    pub read_only: bool,
    mounts: Vec<Value>,
}

impl Overrides {
    /// Check every flag: `env` entries are KEY=VALUE, `cwd` absolute, `mounts` in ctr's form.
    pub fn new(
        env: Vec<String>,
        cwd: Option<String>,
        hostname: Option<String>,
        net_host: bool,
        read_only: bool,
        mounts: &[String],
    ) -> Result<Overrides> {
        if let Some(bad) = env.iter().find(|e| !e.contains('=') || e.starts_with('=')) {
            return Err(Error::Invalid(format!("--env {bad:?}: not KEY=VALUE")));
        }
        if let Some(c) = cwd.as_deref().filter(|c| !c.starts_with('/')) {
            return Err(Error::Invalid(format!("--cwd {c:?}: not an absolute path")));
        }
        let mounts = mounts.iter().map(|m| parse_mount(m)).collect::<Result<Vec<_>>>()?;
        Ok(Overrides {
            env,
            cwd,
            hostname,
            net_host,
            read_only,
            mounts,
        })
    }

    /// Apply to a spec made by `spec::for_image`.
    pub fn apply(&self, spec: &mut Value) {
        if !self.env.is_empty() {
            let base: Vec<String> = spec["process"]["env"]
                .as_array()
                .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
                .unwrap_or_default();
            spec["process"]["env"] = json!(merge_env(&base, &self.env));
        }
        if let Some(c) = &self.cwd {
            spec["process"]["cwd"] = json!(c);
        }
        if let Some(h) = &self.hostname {
            spec["hostname"] = json!(h);
        }
        if self.net_host {
            if let Some(ns) = spec["linux"]["namespaces"].as_array_mut() {
                ns.retain(|n| n["type"] != "network");
            }
        }
        if self.read_only {
            spec["root"]["readonly"] = json!(true);
        }
        if let Some(m) = spec["mounts"].as_array_mut() {
            m.extend(self.mounts.iter().cloned());
        }
    }
}

/// ctr's `--mount type=bind,src=/a,dst=/b,options=rbind:ro` as an OCI mount. `source` and
/// `destination` (and `target`) are accepted for src and dst; the type defaults to bind, and a
/// bind without options gets `rbind`.
pub fn parse_mount(s: &str) -> Result<Value> {
    let bad = |why: &str| Error::Invalid(format!("--mount {s:?}: {why}"));
    let (mut kind, mut src, mut dst, mut options) = (None, None, None, Vec::new());
    for field in s.split(',') {
        let (k, v) = field
            .split_once('=')
            .ok_or_else(|| bad(&format!("{field:?} is not key=value")))?;
        match k {
            "type" => kind = Some(v.to_string()),
            "src" | "source" => src = Some(v.to_string()),
            "dst" | "destination" | "target" => dst = Some(v.to_string()),
            "options" => options = v.split(':').filter(|o| !o.is_empty()).map(str::to_string).collect(),
            other => return Err(bad(&format!("unknown key {other:?} (type, src, dst, options)"))),
        }
    }
    let dst = dst.ok_or_else(|| bad("no dst"))?;
    if !dst.starts_with('/') {
        return Err(bad("dst is not an absolute path"));
    }
    let kind = kind.unwrap_or_else(|| "bind".to_string());
    if kind == "bind" {
        if !src.as_deref().is_some_and(|s| s.starts_with('/')) {
            return Err(bad("a bind mount needs an absolute src"));
        }
        if !options.iter().any(|o| o == "bind" || o == "rbind") {
            options.push("rbind".to_string());
        }
    }
    let mut m = json!({ "destination": dst, "type": kind, "options": options });
    if let Some(src) = src {
        m["source"] = json!(src);
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ctr_mount_strings() {
        let m = parse_mount("type=bind,src=/tmp/a,dst=/data,options=rbind:ro").unwrap();
        assert_eq!(
            m,
            json!({"destination": "/data", "type": "bind", "source": "/tmp/a", "options": ["rbind", "ro"]})
        );
        let m = parse_mount("source=/x,target=/y").unwrap();
        assert_eq!(m["options"], json!(["rbind"]));
        let m = parse_mount("type=tmpfs,src=tmpfs,dst=/scratch,options=size=1m").unwrap();
        assert_eq!(m["options"], json!(["size=1m"]));
        for (s, why) in [
            ("src=/a", "no dst"),
            ("src=/a,dst=rel", "not an absolute path"),
            ("dst=/a", "absolute src"),
            ("src=/a,dst=/b,colour=red", "unknown key \"colour\""),
            ("garbage", "not key=value"),
        ] {
            let e = parse_mount(s).unwrap_err().to_string();
            assert!(e.contains(why) && e.contains(s), "{s}: {e}");
        }
    }

    #[test]
    fn flags_change_the_spec() {
        let o = Overrides::new(
            vec!["A=2".into(), "B=x=y".into()],
            Some("/srv".into()),
            Some("box".into()),
            true,
            true,
            &["src=/tmp,dst=/host".into()],
        )
        .unwrap();
        let mut spec = crate::spec::default_spec("c1");
        spec["process"]["env"] = json!(["PATH=/bin", "A=1"]);
        o.apply(&mut spec);
        assert_eq!(spec["process"]["env"], json!(["PATH=/bin", "A=2", "B=x=y"]));
        assert_eq!(spec["process"]["cwd"], "/srv");
        assert_eq!(spec["hostname"], "box");
        assert_eq!(spec["root"]["readonly"], true);
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
        for (env, cwd) in [(vec!["NOEQUALS".to_string()], None), (vec![], Some("rel".to_string()))] {
            assert!(Overrides::new(env, cwd, None, false, false, &[]).is_err());
        }
    }
}
