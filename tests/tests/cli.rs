//! runc's command line: global flags, `spec`, `features`, `--log` in runc's JSON shape, ids and
//! usage errors.

use hezi_e2e::{hezi_bin, require, unique_id, Bundle, Hezi, TempDir};
use serde_json::Value;

fn hezi(args: &[&str]) -> std::process::Output {
    std::process::Command::new(hezi_bin())
        .args(args)
        .output()
        .expect("spawn hezi")
}

#[test]
fn version_and_help() {
    require!();
    let out = hezi(&["--version"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("hezi version "), "{text}");
    // runc's shape: `key: value` lines after the first, among them `spec: 1.x.y`.
    assert!(lines.iter().any(|l| l.starts_with("spec: 1.")), "{text}");
    assert!(lines[1..].iter().all(|l| l.contains(": ")), "{text}");
    for args in [&["--help"][..], &["-h"]] {
        let out = hezi(args);
        assert!(out.status.success());
        assert!(String::from_utf8_lossy(&out.stdout).contains("create"));
    }
}

/// Every command prints its usage and exits 0 for `help CMD`, `CMD -h` and `CMD --help`, as runc
/// does, also where a flag comes first and for commands hezi does not implement yet.
#[test]
fn every_command_has_help() {
    require!();
    let commands = [
        "checkpoint",
        "create",
        "delete",
        "events",
        "exec",
        "features",
        "image",
        "kill",
        "list",
        "pause",
        "ps",
        "restore",
        "resume",
        "run",
        "spec",
        "start",
        "state",
        "update",
    ];
    for command in commands {
        for args in [vec!["help", command], vec![command, "-h"], vec![command, "--help"]] {
            let out = hezi(&args);
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert_eq!(
                out.status.code(),
                Some(0),
                "{args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(
                stdout.contains(&format!("hezi {command} [command options]")),
                "{args:?}: {stdout}"
            );
        }
    }
    let out = hezi(&["run", "--bundle", "/nonexistent", "--help"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("hezi run"));
    // runc: `No help topic for 'x'`, exit 3.
    let out = hezi(&["help", "frobnicate"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("frobnicate"));
}

#[test]
fn unknown_command_and_flag_are_usage_errors() {
    require!();
    let out = hezi(&["frobnicate"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("frobnicate"));
    let out = hezi(&["create", "--nope", "x"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("-nope"));
    let out = hezi(&["state"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("container id"));
}

#[test]
fn spec_writes_a_default_config_and_refuses_to_overwrite() {
    require!();
    let dir = TempDir::new("spec");
    let b = dir.path().to_str().unwrap();
    assert!(hezi(&["spec", "--bundle", b]).status.success());
    let spec: Value = serde_json::from_slice(&std::fs::read(dir.path().join("config.json")).unwrap()).unwrap();
    assert_eq!(spec["ociVersion"], "1.2.0");
    assert_eq!(spec["root"]["path"], "rootfs");
    assert_eq!(spec["process"]["args"][0], "sh");
    let again = hezi(&["spec", "-b", b]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists"));

    let rootless = TempDir::new("spec-rootless");
    assert!(hezi(&["spec", "--rootless", "-b", rootless.path().to_str().unwrap()])
        .status
        .success());
    let spec: Value = serde_json::from_slice(&std::fs::read(rootless.path().join("config.json")).unwrap()).unwrap();
    let ns: Vec<&str> = spec["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["type"].as_str().unwrap())
        .collect();
    assert!(ns.contains(&"user") && !ns.contains(&"network"), "{ns:?}");
    assert_eq!(spec["linux"]["uidMappings"][0]["containerID"], 0);
}

#[test]
fn features_is_the_oci_features_document() {
    require!();
    let out = hezi(&["features"]);
    assert!(out.status.success());
    let f: Value = serde_json::from_slice(&out.stdout).expect("features prints JSON");
    assert_eq!(f["ociVersionMin"], "1.0.0");
    let ns = f["linux"]["namespaces"].as_array().unwrap();
    for want in ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"] {
        assert!(ns.iter().any(|n| n == want), "{want} missing");
    }
    assert!(f["linux"]["capabilities"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c == "CAP_SYS_ADMIN"));
    let options = f["mountOptions"].as_array().unwrap();
    for want in ["rbind", "rro", "idmap", "ridmap"] {
        assert!(options.iter().any(|o| o == want), "{want} missing");
    }
    // This kernel (6.x) idmaps mounts (tests/idmap.rs), and features says so.
    assert_eq!(f["linux"]["mountExtensions"]["idmap"]["enabled"], true);
}

#[test]
fn root_is_created_0700() {
    require!();
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("newroot");
    let root = dir.path().join("a/b");
    let out = hezi(&["--root", root.to_str().unwrap(), "list"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::metadata(&root).unwrap().permissions().mode() & 0o777, 0o700);
}

/// The log file of a `create` that fails (its program does not exist), written in `format`.
fn log_of_a_failed_create(h: &Hezi, format: &str) -> String {
    let dir = TempDir::new("log");
    let log = dir.path().join("hezi.log");
    let b = Bundle::busybox(&["/no/such/program"]);
    b.write();
    let id = unique_id("log");
    let out = h.cmd(&[
        "--log",
        log.to_str().unwrap(),
        "--log-format",
        format,
        "create",
        "-b",
        b.path().to_str().unwrap(),
        &id,
    ]);
    assert!(!out.status.success());
    std::fs::read_to_string(&log).expect("log file written")
}

#[test]
fn log_json_lines_are_shaped_like_runcs() {
    require!();
    let h = Hezi::new();
    let text = log_of_a_failed_create(&h, "json");
    let last: Value = serde_json::from_str(text.lines().last().expect("a log line")).expect("JSON line");
    assert_eq!(last["level"], "error");
    assert!(last["msg"].as_str().unwrap().contains("/no/such/program"), "{last}");
    let time = last["time"].as_str().expect("time field");
    assert!(time.contains('T') && time.len() >= 20, "RFC 3339 time: {time}");
    let bad = h.cmd(&["--log-format", "xml", "list"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("xml"));
}

/// The text format is logrus's, as runc writes it: `time="…" level=error msg="…"`.
#[test]
fn log_text_lines_are_shaped_like_runcs() {
    require!();
    let h = Hezi::new();
    let text = log_of_a_failed_create(&h, "text");
    let last = text.lines().last().expect("a log line");
    let rest = last
        .strip_prefix("time=\"")
        .unwrap_or_else(|| panic!("no time first: {last}"));
    let (time, rest) = rest.split_once("\" ").expect("quoted time");
    assert!(time.contains('T') && time.len() >= 20, "RFC 3339 time: {time}");
    let msg = rest
        .strip_prefix("level=error msg=\"")
        .unwrap_or_else(|| panic!("level, msg: {last}"));
    assert!(msg.ends_with('"') && msg.contains("/no/such/program"), "{last}");
    assert!(!text.trim_start().starts_with('{'), "text format wrote JSON: {text}");
}

#[test]
fn debug_flag_logs_debug_lines() {
    require!();
    let h = Hezi::new();
    let dir = TempDir::new("debuglog");
    let log = dir.path().join("hezi.log");
    let b = Bundle::busybox(&["true"]);
    b.write();
    let id = unique_id("dbg");
    let out = h.cmd(&[
        "--debug",
        "--log",
        log.to_str().unwrap(),
        "--log-format",
        "json",
        "run",
        "-b",
        b.path().to_str().unwrap(),
        &id,
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        text.lines()
            .any(|l| serde_json::from_str::<Value>(l).is_ok_and(|v| v["level"] == "debug")),
        "no debug line in {text:?}"
    );
}

#[test]
fn invalid_ids_are_refused_before_anything_is_made() {
    require!();
    let h = Hezi::new();
    let b = Bundle::busybox(&["true"]);
    b.write();
    for id in ["..", ".", "../escape", "a/b", "-x", "", "with space", "x\u{e9}"] {
        let out = h.cmd(&["create", "-b", b.path().to_str().unwrap(), "--", id]);
        assert_eq!(out.status.code(), Some(1), "id {id:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("container id"),
            "id {id:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(h.ids().is_empty());
    assert_eq!(
        std::fs::read_dir(h.root()).unwrap().count(),
        0,
        "nothing made under the root"
    );
}

/// A report piped into a reader that has gone (`hezi list | head`): hezi ends as runc does, by
/// SIGPIPE, without a panic's "failed printing to stdout" on stderr.
#[test]
fn reports_end_quietly_on_a_closed_pipe() {
    use std::os::unix::process::ExitStatusExt;
    require!();
    let root = TempDir::new("broken-pipe");
    let root_arg = root.path().to_string_lossy().into_owned();
    for args in [
        vec!["features"],
        vec!["--root", &root_arg, "list"],
        vec!["help"],
        vec!["--version"],
    ] {
        let (reader, writer) = nix::unistd::pipe().expect("pipe");
        // The reader is gone before hezi writes a byte.
        drop(reader);
        let out = std::process::Command::new(hezi_bin())
            .args(&args)
            .stdout(std::process::Stdio::from(writer))
            .stderr(std::process::Stdio::piped())
            .output()
            .expect("spawn hezi");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.signal(),
            Some(libc::SIGPIPE),
            "{args:?}: {:?} {stderr}",
            out.status
        );
        assert!(stderr.is_empty(), "{args:?}: {stderr}");
    }
}
