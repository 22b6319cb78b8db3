//! The process's environment as runc builds it, for `run` and `exec`: HOME from the container's
//! /etc/passwd when unset or empty (else `/`), a name given twice keeping its first position and
//! last value, values with newlines kept, malformed entries refused.

use hezi_e2e::{require, unique_id, Bundle, Hezi};
use serde_json::json;

/// A busybox bundle running `env` as `uid` with `env`, and a passwd where root's home is /root
/// and uid 1000's is /home/u (so neither is the `/` fallback).
fn env_bundle(uid: u32, env: &[&str]) -> Bundle {
    let mut b = Bundle::busybox(&["env"]);
    std::fs::write(
        b.rootfs().join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nu:x:1000:1000:u:/home/u:/bin/sh\n",
    )
    .expect("write passwd");
    b.config["process"]["user"] = json!({ "uid": uid, "gid": uid });
    b.config["process"]["env"] = json!(env);
    b
}

#[test]
fn run_fills_home_from_passwd_and_merges_duplicates_as_runc() {
    require!();
    let h = Hezi::new();
    // Byte for byte what runc 1.1 prints for this config.
    let b = env_bundle(1000, &["A=1", "PATH=/bin", "B=x", "A=2", "NL=l1\nl2", "C=3"]);
    let out = h.run_ok(&b, &unique_id("env-dup"));
    assert_eq!(out, "A=2\nPATH=/bin\nB=x\nNL=l1\nl2\nC=3\nHOME=/home/u\n");

    // Set but empty is filled too, in its place; a set HOME stays.
    let b = env_bundle(0, &["HOME=", "PATH=/bin"]);
    assert_eq!(h.run_ok(&b, &unique_id("env-empty")), "HOME=/root\nPATH=/bin\n");
    let b = env_bundle(0, &["PATH=/bin", "HOME=/elsewhere"]);
    assert_eq!(h.run_ok(&b, &unique_id("env-set")), "PATH=/bin\nHOME=/elsewhere\n");

    // A uid without a passwd entry gets /.
    let b = env_bundle(1234, &["PATH=/bin"]);
    assert_eq!(h.run_ok(&b, &unique_id("env-nouser")), "PATH=/bin\nHOME=/\n");
}

#[test]
fn malformed_entries_are_refused() {
    require!();
    let h = Hezi::new();
    for (entry, says) in [("NOEQ", "invalid environment variable"), ("=v", "name can't be empty")] {
        let b = env_bundle(0, &["PATH=/bin", entry]);
        let (code, _, err) = h.run(&b, &unique_id("env-bad"));
        assert_ne!(code, 0, "{entry:?} accepted");
        assert!(err.contains(says) && err.contains(entry), "{entry:?}: {err}");
        assert!(h.ids().is_empty(), "{entry:?} left a container");
    }
}

#[test]
fn exec_fills_home_for_its_user_and_merges_its_env() {
    require!();
    let h = Hezi::new();
    let mut b = env_bundle(0, &["PATH=/bin", "X=spec"]);
    b.config["process"]["args"] = json!(["sleep", "3001"]);
    let id = unique_id("env-exec");
    h.create(&b, &id);
    h.ok(&["start", &id]);
    assert_eq!(
        h.ok(&["exec", "-u", "1000", &id, "env"]),
        "PATH=/bin\nX=spec\nHOME=/home/u\n"
    );
    // -e appends as runc does: the spec's X keeps its place with the last value.
    assert_eq!(
        h.ok(&["exec", "-e", "X=a", "-e", "Y=1", "-e", "X=b", &id, "env"]),
        "PATH=/bin\nX=b\nY=1\nHOME=/root\n"
    );
    h.ok(&["delete", "-f", &id]);
}
