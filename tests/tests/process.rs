//! The container process: args, env, cwd, user and groups, umask, rlimits, noNewPrivileges,
//! oomScoreAdj, sysctl, personality, ioPriority, scheduler and execCPUAffinity, each read back
//! from inside the container.

use hezi_e2e::{require, unique_id, Bundle, Hezi};
use serde_json::json;

#[test]
fn args_env_and_cwd() {
    require!();
    let h = Hezi::new();
    let mut b = Bundle::busybox(&["sh", "-c", "echo \"$0|$1|$FOO|$(pwd)\"", "zero arg", "one arg"]);
    b.config["process"]["env"] = json!(["PATH=/bin", "FOO=bar baz"]);
    b.config["process"]["cwd"] = json!("/tmp");
    assert_eq!(h.run_ok(&b, &unique_id("args")), "zero arg|one arg|bar baz|/tmp\n");
}

/// Whether SIGPIPE (signal 13, bit 12) is set in a `SigIgn:` mask of /proc/PID/status.
fn ignores_sigpipe(status: &str) -> bool {
    let mask = status
        .lines()
        .find_map(|l| l.strip_prefix("SigIgn:"))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no SigIgn line in {status}"));
    u64::from_str_radix(mask, 16).expect("a hex signal mask") & (1 << 12) != 0
}

#[test]
fn sigpipe_has_its_default_action_in_init_and_exec() {
    // hezi is a Rust program, and Rust ignores SIGPIPE; an ignored signal survives execve, so
    // without a reset `yes | head -1` would spin forever inside the container.
    require!();
    let h = Hezi::new();
    let b = Bundle::busybox(&["sh", "-c", "yes | head -n 1; cat /proc/self/status"]);
    let out = h.run_ok(&b, &unique_id("sigpipe"));
    assert!(out.starts_with("y\n"), "{out}");
    assert!(!ignores_sigpipe(&out), "the init ignores SIGPIPE:\n{out}");

    let b = Bundle::busybox(&["sleep", "3001"]);
    let id = unique_id("sigpipe-exec");
    h.create(&b, &id);
    h.ok(&["start", &id]);
    let out = h.ok(&["exec", &id, "cat", "/proc/self/status"]);
    h.ok(&["delete", "-f", &id]);
    assert!(!ignores_sigpipe(&out), "the exec'd process ignores SIGPIPE:\n{out}");
}

#[test]
fn a_missing_cwd_is_created_as_runc_does() {
    require!();
    let h = Hezi::new();
    let mut b = Bundle::busybox(&["pwd"]);
    b.config["process"]["cwd"] = json!("/work/deep/dir");
    b.config["root"]["readonly"] = json!(false);
    assert_eq!(h.run_ok(&b, &unique_id("mkcwd")), "/work/deep/dir\n");
}

#[test]
fn a_cwd_only_root_can_enter_works_for_another_user_as_with_runc() {
    // runc enters the cwd before it drops to the process user, so a root-only directory works.
    require!();
    use std::os::unix::fs::PermissionsExt;
    let h = Hezi::new();
    let script = "id -u; pwd; ls . >/dev/null 2>&1 && echo readable || echo unreadable";
    let mut b = Bundle::busybox(&["sh", "-c", script]);
    let private = b.rootfs().join("private");
    std::fs::create_dir(&private).unwrap();
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).unwrap();
    b.config["process"]["cwd"] = json!("/private");
    b.config["process"]["user"] = json!({ "uid": 1000, "gid": 1000 });
    // The user really cannot open the directory: the cwd was entered for it.
    assert_eq!(h.run_ok(&b, &unique_id("cwd700")), "1000\n/private\nunreadable\n");

    b.config["process"]["args"] = json!(["sleep", "3002"]);
    b.config["process"]["user"] = json!({ "uid": 0, "gid": 0 });
    let id = unique_id("cwd700-exec");
    h.create(&b, &id);
    h.ok(&["start", &id]);
    let out = h.ok(&[
        "exec",
        "--user",
        "1000:1000",
        "--cwd",
        "/private",
        &id,
        "sh",
        "-c",
        script,
    ]);
    h.ok(&["delete", "-f", &id]);
    assert_eq!(out, "1000\n/private\nunreadable\n");
}

#[test]
fn user_groups_and_umask() {
    require!();
    let h = Hezi::new();
    let mut b = Bundle::busybox(&["sh", "-c", "id; umask; touch /tmp/f; stat -c %a /tmp/f"]);
    b.config["process"]["user"] = json!({ "uid": 1000, "gid": 1001, "additionalGids": [10, 20], "umask": 0o027 });
    b.config["root"]["readonly"] = json!(false);
    std::fs::set_permissions(
        b.rootfs().join("tmp"),
        std::os::unix::fs::PermissionsExt::from_mode(0o1777),
    )
    .unwrap();
    let out = h.run_ok(&b, &unique_id("user"));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "uid=1000 gid=1001 groups=10,20", "{out}");
    assert_eq!(lines[1], "0027");
    assert_eq!(lines[2], "640");
}

#[test]
fn rlimits_are_applied() {
    require!();
    let h = Hezi::new();
    let mut b = Bundle::busybox(&["sh", "-c", "ulimit -Sn; ulimit -Hn; ulimit -Sc"]);
    b.config["process"]["rlimits"] = json!([
        { "type": "RLIMIT_NOFILE", "soft": 123, "hard": 456 },
        { "type": "RLIMIT_CORE", "soft": 4096, "hard": 8192 },
    ]);
    let out = h.run_ok(&b, &unique_id("rlimit"));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(&lines[..2], ["123", "456"]);
    let core: u64 = lines[2].parse().unwrap();
    assert_eq!(core, 8, "busybox's ulimit -c counts 512-byte blocks: 4096 bytes");
}

#[test]
fn no_new_privileges_and_oom_score_adj() {
    require!();
    let h = Hezi::new();
    let mut b = Bundle::busybox(&[
        "sh",
        "-c",
        "grep NoNewPrivs /proc/self/status; cat /proc/self/oom_score_adj",
    ]);
    b.config["process"]["oomScoreAdj"] = json!(345);
    let out = h.run_ok(&b, &unique_id("nnp"));
    assert_eq!(out.split_whitespace().collect::<Vec<_>>(), ["NoNewPrivs:", "1", "345"]);
    b.config["process"]["noNewPrivileges"] = json!(false);
    b.config["process"].as_object_mut().unwrap().remove("oomScoreAdj");
    let out = h.run_ok(&b, &unique_id("nnp0"));
    let host_adj = std::fs::read_to_string("/proc/self/oom_score_adj").unwrap();
    assert_eq!(
        out.split_whitespace().collect::<Vec<_>>(),
        ["NoNewPrivs:", "0", host_adj.trim()]
    );
}

#[test]
fn sysctls_are_written_in_the_containers_namespaces_only() {
    require!();
    let h = Hezi::new();
    let mut b = Bundle::busybox(&[
        "sh",
        "-c",
        "cat /proc/sys/kernel/shm_rmid_forced /proc/sys/net/ipv4/ip_forward",
    ]);
    let host_shm = std::fs::read_to_string("/proc/sys/kernel/shm_rmid_forced").unwrap();
    let host_fwd = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap();
    let want_shm = if host_shm.trim() == "1" { "0" } else { "1" };
    let want_fwd = if host_fwd.trim() == "1" { "0" } else { "1" };
    b.linux()["sysctl"] = json!({ "kernel.shm_rmid_forced": want_shm, "net.ipv4.ip_forward": want_fwd });
    let out = h.run_ok(&b, &unique_id("sysctl"));
    assert_eq!(out, format!("{want_shm}\n{want_fwd}\n"));
    assert_eq!(
        std::fs::read_to_string("/proc/sys/kernel/shm_rmid_forced").unwrap(),
        host_shm
    );
    assert_eq!(
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap(),
        host_fwd
    );
}

#[test]
fn personality_linux32() {
    require!();
    let h = Hezi::new();
    let mut b = Bundle::busybox(&["uname", "-m"]);
    b.linux()["personality"] = json!({ "domain": "LINUX32" });
    let out = h.run_ok(&b, &unique_id("pers"));
    if std::env::consts::ARCH == "x86_64" {
        assert_eq!(out, "i686\n");
    }
}

#[test]
fn io_priority() {
    require!();
    let h = Hezi::new();
    let mut b = Bundle::busybox(&["sh", "-c", "ionice -p $$"]);
    b.config["process"]["ioPriority"] = json!({ "class": "IOPRIO_CLASS_BE", "priority": 6 });
    let out = h.run_ok(&b, &unique_id("ioprio"));
    assert_eq!(out.trim(), "best-effort: prio 6");
}

#[test]
fn scheduler_policy() {
    require!();
    let h = Hezi::new();
    // Field 41 of /proc/PID/stat is the policy (3 = SCHED_BATCH); field 19 the nice value.
    let mut b = Bundle::busybox(&["sh", "-c", "cut -d' ' -f19,41 /proc/self/stat"]);
    b.config["process"]["scheduler"] = json!({ "policy": "SCHED_BATCH", "nice": 7 });
    let out = h.run_ok(&b, &unique_id("sched"));
    assert_eq!(out.trim(), "7 3");
}

/// The spec applies execCPUAffinity to `exec`'d processes only, never to the init.
#[test]
fn exec_cpu_affinity_applies_to_exec_not_init() {
    require!();
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let h = Hezi::new();
    let b = Bundle::busybox(&["sleep", "1302"]);
    let id = unique_id("affinity");
    h.create(&b, &id);
    h.ok(&["start", &id]);
    let last = (cpus - 1).to_string();
    let mut process = b.config["process"].clone();
    process["args"] = json!(["grep", "Cpus_allowed_list", "/proc/self/status"]);
    process["execCPUAffinity"] = json!({ "initial": "0", "final": last });
    let file = b.path().join("process.json");
    std::fs::write(&file, process.to_string()).unwrap();
    let out = h.ok(&["exec", "-p", file.to_str().unwrap(), &id]);
    assert_eq!(out.split_whitespace().nth(1), Some(last.as_str()), "{out}");
    let pid = h.state(&id)["pid"].as_i64().unwrap();
    let init = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let host = std::fs::read_to_string("/proc/self/status").unwrap();
    let list = |s: &str| {
        s.lines()
            .find(|l| l.starts_with("Cpus_allowed_list"))
            .map(str::to_string)
    };
    assert_eq!(list(&init), list(&host), "the init keeps the host's affinity");
    h.ok(&["delete", "-f", &id]);
}

#[test]
fn hezi_exec_shares_the_containers_view() {
    require!();
    let h = Hezi::new();
    let mut b = Bundle::busybox(&["sleep", "1301"]);
    b.config["hostname"] = json!("exec-box");
    let id = unique_id("exec");
    h.create(&b, &id);
    h.ok(&["start", &id]);
    let out = h.cmd(&["exec", &id, "sh", "-c", "hostname; echo $$; exit 5"]);
    assert_eq!(out.status.code(), Some(5));
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "exec-box");
    assert_ne!(lines[1], "1", "exec'd process is not pid 1");
    h.ok(&["delete", "-f", &id]);
}

/// A session keyring of the container's own, named after its id, as runc makes; with
/// `--no-new-keyring` the container keeps the caller's.
#[test]
fn each_container_gets_a_session_keyring_unless_no_new_keyring() {
    require!();
    if !std::path::Path::new("/proc/keys").exists() {
        eprintln!("SKIP: this kernel has no /proc/keys");
        return;
    }
    let h = Hezi::new();
    let mut b = Bundle::busybox(&["cat", "/proc/keys"]);
    // The default spec masks /proc/keys.
    b.linux()["maskedPaths"]
        .as_array_mut()
        .expect("maskedPaths")
        .retain(|p| p != "/proc/keys");
    b.write();
    let bundle = b.path().to_str().unwrap();
    let id = unique_id("keyring");
    let named = |keys: &str, id: &str| {
        keys.lines()
            .any(|l| l.contains(" keyring ") && l.trim_end().ends_with(&format!(" {id}: empty")))
    };
    let own = h.ok(&["run", "-b", bundle, &id]);
    assert!(named(&own, &id), "no keyring named {id} in:\n{own}");
    let id = unique_id("nokeyring");
    let kept = h.ok(&["run", "--no-new-keyring", "-b", bundle, &id]);
    assert!(!named(&kept, &id), "--no-new-keyring still made keyring {id}:\n{kept}");
}
