//! The parts of the OCI features document (runtime-spec features.md) that runtime-spec 1.2 and
//! 1.3 added, each built from the code that implements it, so the document cannot claim what the
//! code does not do: the hook stages, `linux.memoryPolicy`, `linux.netDevices`,
//! `linux.intelRdt`, `potentiallyUnsafeConfigAnnotations`, and the `annotations` runc reports
//! (checkpoint support, the libseccomp version). [`complete`] fills them into a document built elsewhere.

use serde_json::{json, Value};

use crate::hooks::Stage;
use crate::process::mempolicy;

/// Set this module's fields of a features document (replacing what is there).
pub fn complete(doc: &mut Value) {
    let hooks: Vec<&str> = Stage::ALL.iter().map(|s| s.name()).collect();
    doc["hooks"] = json!(hooks);
    // runc lists the annotations whose values change what it does ("bundle",
    // "org.systemd.property.", "org.criu.config"). hezi acts on no annotation of config.json:
    // they only reach the state, the hooks and seccomp listeners.
    doc["potentiallyUnsafeConfigAnnotations"] = json!([]);
    let linux = &mut doc["linux"];
    linux["memoryPolicy"] = json!({
        "modes": mempolicy::MODES.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
        "flags": mempolicy::FLAGS.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
    });
    linux["netDevices"] = json!({ "enabled": true });
    // "enabled" is whether support is built in, not whether this host has resctrl (features.md);
    // schemata and enableMonitoring are both implemented (intelrdt.rs).
    linux["intelRdt"] = json!({ "enabled": true, "schemata": true, "monitoring": true });
    // As runc (the same key, so what checks runc's works): checkpoint and restore are built in
    // (checkpoint/); whether this host's CRIU works is `criu check`'s to say, at checkpoint.
    doc["annotations"]["org.opencontainers.runc.checkpoint.enabled"] = json!("true");
    // As runc: the version of the libseccomp hezi runs with (not the one it was built against).
    if let Ok(v) = libseccomp::ScmpVersion::current() {
        doc["annotations"]["io.github.seccomp.libseccomp.version"] =
            json!(format!("{}.{}.{}", v.major, v.minor, v.micro));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rootfs::options;

    fn doc() -> Value {
        let mut d = json!({ "hooks": [], "linux": {}, "annotations": {} });
        complete(&mut d);
        d
    }

    #[test]
    fn checkpoint_support_is_reported_under_runcs_key() {
        assert_eq!(
            doc()["annotations"]["org.opencontainers.runc.checkpoint.enabled"],
            "true"
        );
    }

    fn strings(v: &Value) -> Vec<String> {
        serde_json::from_value(v.clone()).expect("a list of strings")
    }

    /// The hooks listed are exactly the stages oci-spec's Hooks has, and each is one that
    /// `hooks::of` reads from a config.json.
    #[test]
    fn hooks_are_the_stages_the_code_runs() {
        let listed = strings(&doc()["hooks"]);
        let hook = json!([{ "path": "/bin/true" }]);
        let all: serde_json::Map<String, Value> = listed.iter().map(|n| (n.clone(), hook.clone())).collect();
        let parsed: oci_spec::runtime::Hooks = serde_json::from_value(Value::Object(all)).expect("hooks");
        for stage in Stage::ALL {
            assert!(listed.contains(&stage.name().to_string()), "{stage:?}");
            assert_eq!(crate::hooks::of(Some(&parsed), stage).len(), 1, "{stage:?} not read");
        }
        // Every stage oci-spec knows appears in the list (a new one would be serialised here).
        let known = serde_json::to_value(&parsed).expect("serialise");
        let mut keys: Vec<String> = known.as_object().expect("object").keys().cloned().collect();
        keys.sort();
        let mut sorted = listed.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
    }

    /// Every mount option reported is one the parser takes as a flag, not as filesystem data;
    /// and of the names mount(8) and runc know, every one the parser takes is reported.
    #[test]
    fn mount_options_are_the_parser_s() {
        for name in options::KNOWN {
            let parsed = options::parse(&[name.to_string()]).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(
                parsed.data.is_empty(),
                "{name} is reported but parsed as filesystem data"
            );
        }
        for name in [
            "idmap",
            "ridmap",
            "nodev",
            "rnoexec",
            "rbind",
            "tmpcopyup",
            "noatime",
            "bind",
        ] {
            if options::parse(&[name.to_string()]).is_ok_and(|o| o.data.is_empty()) {
                assert!(options::KNOWN.contains(&name), "{name} is parsed but not reported");
            }
        }
    }

    #[test]
    fn memory_policy_is_the_parser_s() {
        let d = doc();
        for (field, table) in [("modes", mempolicy::MODES), ("flags", mempolicy::FLAGS)] {
            let listed = strings(&d["linux"]["memoryPolicy"][field]);
            assert_eq!(listed.len(), table.len());
            for name in listed {
                let policy = match field {
                    "modes" => json!({ "mode": name, "nodes": "0" }),
                    _ => json!({ "mode": "MPOL_BIND", "nodes": "0", "flags": [name] }),
                };
                let p: oci_spec::runtime::LinuxMemoryPolicy =
                    serde_json::from_value(policy).unwrap_or_else(|e| panic!("{name}: {e}"));
                let number = table.iter().find(|(n, _)| *n == name).map(|(_, v)| *v);
                let code = match field {
                    "modes" => mempolicy::mode_number(p.mode()),
                    _ => mempolicy::flag_number(p.flags().as_ref().expect("flags")[0]),
                };
                assert_eq!(number, Some(code), "{name}");
            }
        }
    }

    #[test]
    fn the_rest() {
        let d = doc();
        assert_eq!(d["linux"]["netDevices"]["enabled"], true);
        assert_eq!(
            d["linux"]["intelRdt"],
            json!({ "enabled": true, "schemata": true, "monitoring": true })
        );
        assert_eq!(d["potentiallyUnsafeConfigAnnotations"], json!([]));
        let v = d["annotations"]["io.github.seccomp.libseccomp.version"]
            .as_str()
            .expect("libseccomp version");
        assert_eq!(v.split('.').count(), 3, "{v}");
    }
}
