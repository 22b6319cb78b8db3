//! config.json read as runc reads it: object keys in another case than the spec's (Go's decoder
//! matches field names ignoring case) set the same fields, with a warning in the log.

use hezi_e2e::{require, unique_id, Bundle, Hezi, TempDir};
use serde_json::{json, Value};

/// Move `obj[from]` to `obj[to]`.
fn rename(obj: &mut Value, from: &str, to: &str) {
    let v = obj
        .as_object_mut()
        .unwrap()
        .remove(from)
        .unwrap_or_else(|| panic!("no {from}"));
    obj[to] = v;
}

#[test]
fn keys_in_another_case_are_read_as_runc_reads_them() {
    require!();
    let h = Hezi::new();
    let mut b = Bundle::busybox(&["sh", "-c", "hostname; pwd; echo $FOO"]);
    b.config["process"]["env"] = json!(["PATH=/bin", "FOO=bar"]);
    b.config["process"]["cwd"] = json!("/tmp");
    b.config["hostname"] = json!("oddhost");
    // Spellings runc 1.1 accepts for this very config (checked on the same bundle).
    rename(&mut b.config["process"], "cwd", "Cwd");
    rename(&mut b.config["process"], "args", "Args");
    rename(&mut b.config, "process", "Process");
    rename(&mut b.config, "hostname", "Hostname");
    for ns in b.config["linux"]["namespaces"].as_array_mut().unwrap() {
        rename(ns, "type", "Type");
    }
    // An annotation is the user's key: kept as written.
    b.config["annotations"] = json!({ "Org.Example.Key": "v" });
    b.write();
    let dir = TempDir::new("oddkeys-log");
    let log = dir.path().join("hezi.log");
    let id = unique_id("oddkeys");
    let out = h.cmd(&[
        "--log",
        log.to_str().unwrap(),
        "run",
        "-b",
        b.path().to_str().unwrap(),
        &id,
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "oddhost\n/tmp\nbar\n");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("level=warn") && text.contains("/process/Cwd -> cwd"),
        "{text}"
    );
    assert!(!text.contains("Org.Example.Key"), "{text}");
}
