//! ctr's `--mount` strings as OCI mounts.

use serde_json::{json, Value};

use crate::error::{Error, Result};

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
}
