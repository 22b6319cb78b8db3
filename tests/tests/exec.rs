//! `hezi exec` with runc's flags, checked from inside the exec'd process: user and groups, env,
//! cwd, capabilities (added with --cap, and inherited from the container), rlimits,
//! no_new_privs, and exec into a paused container.

use hezi_e2e::{require, unique_id, Bundle, Hezi};
use serde_json::json;

/// create + start a bundle running `sleep`, after `edit` changed its config. The bundle must
/// live as long as the container.
fn running(h: &Hezi, prefix: &str, edit: impl FnOnce(&mut Bundle)) -> (Bundle, String) {
    let mut b = Bundle::busybox(&["sleep", "3001"]);
    edit(&mut b);
    let id = unique_id(prefix);
    h.create(&b, &id);
    h.ok(&["start", &id]);
    (b, id)
}

/// The value of `key:` in the exec'd process's /proc/self/status.
fn status_field(h: &Hezi, id: &str, flags: &[&str], key: &str) -> String {
    let pattern = format!("^{key}:");
    let mut args = vec!["exec"];
    args.extend_from_slice(flags);
    args.extend_from_slice(&[id, "grep", &pattern, "/proc/self/status"]);
    let out = h.ok(&args);
    out.split_whitespace().nth(1).unwrap_or_default().to_string()
}

fn bit(mask_hex: &str, n: u32) -> bool {
    u64::from_str_radix(mask_hex, 16).expect("a hex capability mask") & (1 << n) != 0
}

const CAP_NET_RAW: u32 = 13;
const CAP_SYS_ADMIN: u32 = 21;

#[test]
fn user_groups_env_and_cwd_flags() {
    require!();
    let h = Hezi::new();
    let (_b, id) = running(&h, "execflags", |_| {});
    let out = h.ok(&[
        "exec",
        "-u",
        "1000:1001",
        "--additional-gids",
        "2000",
        "--additional-gids",
        "3000",
        "-e",
        "FOO=bar",
        "-e",
        "PATH=/bin",
        "--cwd",
        "/tmp",
        &id,
        "sh",
        "-c",
        "id -u; id -g; id -G; echo $FOO $PATH; pwd",
    ]);
    assert_eq!(out, "1000\n1001\n1001 2000 3000\nbar /bin\n/tmp\n");
    h.ok(&["delete", "-f", &id]);
}

#[test]
fn exec_inherits_the_containers_capabilities_and_rlimits_and_cap_adds() {
    require!();
    let h = Hezi::new();
    let (_b, id) = running(&h, "execcaps", |b| {
        b.config["process"]["rlimits"] = json!([{ "type": "RLIMIT_NOFILE", "soft": 321, "hard": 654 }]);
    });
    let pid = h.state(&id)["pid"].as_i64().unwrap();
    let host = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let init = |key: &str| {
        host.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}:")))
            .unwrap_or_default()
            .trim()
            .to_string()
    };
    for key in ["CapBnd", "CapEff", "CapPrm"] {
        assert_eq!(status_field(&h, &id, &[], key), init(key), "{key}");
    }
    assert!(!bit(&init("CapEff"), CAP_SYS_ADMIN));
    assert_eq!(h.ok(&["exec", &id, "sh", "-c", "ulimit -n; ulimit -Hn"]), "321\n654\n");
    // --cap adds to bounding, effective and permitted, not ambient without inheritable bits.
    for key in ["CapBnd", "CapEff", "CapPrm"] {
        let mask = status_field(&h, &id, &["--cap", "CAP_SYS_ADMIN"], key);
        assert!(bit(&mask, CAP_SYS_ADMIN), "{key} {mask}");
    }
    assert!(!bit(
        &status_field(&h, &id, &["--cap", "CAP_SYS_ADMIN"], "CapAmb"),
        CAP_SYS_ADMIN
    ));
    h.ok(&["delete", "-f", &id]);

    // With an inheritable set in the process, --cap makes the capability ambient too (runc);
    // the kernel keeps an ambient bit only where the inheritable one is set.
    let (_b, id) = running(&h, "execamb", |b| {
        let caps = &mut b.config["process"]["capabilities"];
        caps["bounding"].as_array_mut().unwrap().push(json!("CAP_NET_RAW"));
        caps["inheritable"] = json!(["CAP_NET_RAW"]);
    });
    let amb = status_field(&h, &id, &[], "CapAmb");
    assert!(!bit(&amb, CAP_NET_RAW), "CapAmb without --cap {amb}");
    let amb = status_field(&h, &id, &["-c", "CAP_NET_RAW"], "CapAmb");
    assert!(bit(&amb, CAP_NET_RAW), "CapAmb {amb}");
    h.ok(&["delete", "-f", &id]);
}

#[test]
fn no_new_privs_flag() {
    require!();
    let h = Hezi::new();
    let (_b, id) = running(&h, "execnnp", |b| {
        b.config["process"]["noNewPrivileges"] = json!(false);
    });
    assert_eq!(status_field(&h, &id, &[], "NoNewPrivs"), "0");
    assert_eq!(status_field(&h, &id, &["--no-new-privs"], "NoNewPrivs"), "1");
    h.ok(&["delete", "-f", &id]);
}

#[test]
fn exec_into_a_paused_container_needs_ignore_paused() {
    require!();
    let h = Hezi::new();
    let (_b, id) = running(&h, "execpaused", |_| {});
    h.ok(&["pause", &id]);
    let refused = h.cmd(&["exec", &id, "true"]);
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("paused"), "{err}");
    // Allowed with the flag: the process starts frozen with the rest, and runs once resumed.
    h.ok(&[
        "exec",
        "--ignore-paused",
        "-d",
        &id,
        "sh",
        "-c",
        "echo ran > /dev/shm/ran",
    ]);
    // Frozen until resume: nothing written yet (seen from the host through the init's root).
    let pid = h.state(&id)["pid"].as_i64().unwrap();
    let file = std::path::PathBuf::from(format!("/proc/{pid}/root/dev/shm/ran"));
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert!(!file.exists(), "the exec'd process ran in a paused container");
    h.ok(&["resume", &id]);
    let mut seen = String::new();
    for _ in 0..100 {
        seen = h
            .cmd(&["exec", &id, "cat", "/dev/shm/ran"])
            .stdout
            .iter()
            .map(|&b| b as char)
            .collect();
        if seen == "ran\n" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(seen, "ran\n");
    h.ok(&["delete", "-f", &id]);
}
