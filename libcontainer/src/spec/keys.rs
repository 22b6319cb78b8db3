//! Object keys of config.json matched as runc's Go decoder matches them: a key that is not a
//! field's exact name still sets the field whose name equals it ignoring case (`pagesize` for
//! `pageSize`, `Type` for `type`). Before oci-spec (which is exact) reads the document, such
//! keys are renamed to the spec's spelling, with a warning; keys of free-form maps
//! (annotations, sysctl, ...) are left alone.
//!
//! The field names are not a hand-kept list: they are read from oci-spec's own `Deserialize`
//! impls at build time (shape_trace.rs, run by build.rs), into a table sorted by path.

use serde_json::Value;

pub use super::shape_trace::Shape;

// SHAPES: &[(&str, Shape)], sorted by path.
include!(concat!(env!("OUT_DIR"), "/spec_shapes.rs"));

/// The shape at `path`, from the build-time table.
fn shape(path: &str) -> Option<&'static Shape> {
    SHAPES
        .binary_search_by(|(p, _)| (*p).cmp(path))
        .ok()
        .map(|i| &SHAPES[i].1)
}

/// Rename, in place, every object key of `doc` that names a spec field in another case; returns
/// the renamed keys as `path/Key -> key`, for the caller to warn about.
pub fn normalise(doc: &mut Value) -> Vec<String> {
    let mut renamed = Vec::new();
    walk(doc, &mut String::new(), &mut renamed);
    renamed
}

/// The same for a process object on its own (the process.json of `exec -p`), whose keys runc
/// reads with the same decoder.
pub fn normalise_process(process: &mut Value) -> Vec<String> {
    let mut doc = serde_json::json!({ "process": process.take() });
    let renamed = normalise(&mut doc);
    *process = doc["process"].take();
    renamed
}

fn walk(v: &mut Value, path: &mut String, renamed: &mut Vec<String>) {
    let len = path.len();
    match v {
        Value::Array(items) => {
            path.push_str("/*");
            for item in items {
                walk(item, path, renamed);
            }
        }
        Value::Object(obj) => match shape(path) {
            Some(Shape::Fields(fields)) => {
                let odd: Vec<(String, &str)> = obj
                    .keys()
                    .filter(|k| !fields.contains(&k.as_str()))
                    .filter_map(|k| {
                        let canonical = fields.iter().find(|f| f.eq_ignore_ascii_case(k))?;
                        Some((k.clone(), *canonical))
                    })
                    .collect();
                for (key, canonical) in odd {
                    let value = obj.remove(&key).unwrap_or(Value::Null);
                    // Both spellings given: Go keeps the one later in the document; the
                    // order is lost here, so the spec's own spelling wins.
                    if !obj.contains_key(canonical) {
                        obj.insert(canonical.to_string(), value);
                    }
                    renamed.push(format!("{path}/{key} -> {canonical}"));
                }
                for (key, child) in obj.iter_mut() {
                    path.push('/');
                    path.push_str(key);
                    walk(child, path, renamed);
                    path.truncate(len);
                }
            }
            Some(Shape::Map) => {
                path.push_str("/*");
                for child in obj.values_mut() {
                    walk(child, path, renamed);
                }
            }
            None => {}
        },
        _ => {}
    }
    path.truncate(len);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The table compiled in is what oci-spec's Deserialize impls say now.
    #[test]
    fn the_build_time_table_is_the_trace() {
        let traced = crate::spec::shape_trace::trace();
        assert_eq!(traced.len(), SHAPES.len());
        for (path, shape) in SHAPES {
            assert_eq!(traced.get(*path), Some(shape), "{path}");
        }
    }

    #[test]
    fn traces_the_specs_fields_and_maps() {
        let fields = |p: &str| match shape(p) {
            Some(Shape::Fields(f)) => f.to_vec(),
            other => panic!("{p}: {other:?}"),
        };
        assert!(fields("").contains(&"ociVersion"));
        assert!(fields("/process").contains(&"noNewPrivileges"));
        assert!(fields("/process/user").contains(&"additionalGids"));
        assert!(fields("/linux/namespaces/*").contains(&"type"));
        assert!(fields("/linux/resources/hugepageLimits/*").contains(&"pageSize"));
        assert!(fields("/linux/seccomp/syscalls/*").contains(&"names"));
        assert!(fields("/mounts/*").contains(&"destination"));
        assert!(fields("/hooks/prestart/*").contains(&"timeout"));
        for map in ["/annotations", "/linux/sysctl", "/linux/resources/unified"] {
            assert!(matches!(shape(map), Some(Shape::Map)), "{map}");
        }
    }

    #[test]
    fn renames_odd_cased_keys_and_leaves_maps_alone() {
        let mut doc = json!({
            "OCIVERSION": "1.0.2",
            "Process": { "Cwd": "/", "args": ["sh"] },
            "annotations": { "Type": "kept", "OCIVersion": "kept" },
            "linux": {
                "namespaces": [{ "Type": "pid" }],
                "resources": { "hugepageLimits": [{ "pagesize": "2MB", "limit": 0 }] },
                "sysctl": { "Net.Core.X": "1" },
            },
            "unknownKey": 1,
        });
        let mut renamed = normalise(&mut doc);
        renamed.sort();
        assert_eq!(doc["ociVersion"], "1.0.2");
        assert_eq!(doc["process"]["cwd"], "/");
        assert_eq!(doc["linux"]["namespaces"][0]["type"], "pid");
        assert_eq!(doc["linux"]["resources"]["hugepageLimits"][0]["pageSize"], "2MB");
        assert_eq!(doc["annotations"], json!({ "Type": "kept", "OCIVersion": "kept" }));
        assert_eq!(doc["linux"]["sysctl"], json!({ "Net.Core.X": "1" }));
        assert_eq!(doc["unknownKey"], 1);
        assert!(
            renamed.iter().any(|r| r == "/linux/namespaces/*/Type -> type"),
            "{renamed:?}"
        );
        assert_eq!(renamed.len(), 5, "{renamed:?}");
    }

    #[test]
    fn the_specs_own_spelling_wins_over_another_case() {
        let mut doc = json!({ "hostname": "exact", "HostName": "other" });
        normalise(&mut doc);
        assert_eq!(doc, json!({ "hostname": "exact" }));
    }
}
