//! The container side of the daemonless tool (issue 20): `hezi run --image` and
//! `hezi create --image` with ctr's flags, each checked from inside the container (its
//! /proc/self/status, its fds, its terminal) or in the cgroup it runs in; `create --image` through
//! start, exec, ps, pause, resume, kill and delete; `list` naming the image; help; and bad input
//! that must fail with the culprit named and leave nothing behind. The demo image
//! (`hezi image demo`: busybox, users root and nobody) is the image throughout.

mod image_support;

use std::path::{Path, PathBuf};

use hezi_e2e::{cgroup_dirs, mounts_under, require, unique_id, Hezi, TempDir};
use image_support::*;
use serde_json::Value;

const DEMO: &str = "hezi.local/demo:latest";

/// containerd's default capabilities, by number: what a container from an image holds.
const DEFAULT_CAP_BITS: &[u32] = &[0, 1, 3, 4, 5, 6, 7, 8, 10, 13, 18, 27, 29, 31];
const CAP_CHOWN: u32 = 0;
const CAP_KILL: u32 = 5;
const CAP_NET_ADMIN: u32 = 12;

fn demo() -> Hezi {
    let h = Hezi::new();
    h.ok(&["image", "demo"]);
    h
}

/// `hezi run --image DEMO FLAGS... ID -- sh -c SCRIPT`, which must exit 0; its stdout.
fn run_sh(h: &Hezi, flags: &[&str], script: &str) -> String {
    let id = unique_id("irun");
    let mut args = vec!["run", "--image", DEMO];
    args.extend_from_slice(flags);
    args.extend_from_slice(&[&id, "--", "sh", "-c", script]);
    let out = h.ok(&args);
    assert_bundle_gone(h, &id);
    out
}

/// The value of `field` in /proc/self/status text (`CapEff`, `Seccomp`).
fn status_field(status: &str, field: &str) -> String {
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in {status}"))
        .trim()
        .to_string()
}

fn mask(bits: &[u32]) -> u64 {
    bits.iter().fold(0, |m, b| m | 1 << b)
}

/// The container's effective capabilities, as it sees them.
fn cap_eff(h: &Hezi, flags: &[&str]) -> u64 {
    let status = run_sh(h, flags, "cat /proc/self/status");
    u64::from_str_radix(&status_field(&status, "CapEff"), 16).unwrap()
}

/// Nothing of container `id` left after a failed run or create: no state directory, no
/// bundle, no mount under the root, no snapshot but the image's own, no cgroup.
fn assert_nothing_left(h: &Hezi, id: &str) {
    assert!(!h.root().join(id).exists(), "state directory of {id} left");
    assert!(!h.ids().contains(&id.to_string()), "{id} listed");
    assert_bundle_gone(h, id);
    assert_eq!(count(&h.root().join(".bundles")), 0, "a bundle is left");
    assert_eq!(
        count(&store(h).join("snapshots")),
        1,
        "a snapshot besides the image's is left"
    );
    assert_eq!(cgroup_dirs(id), Vec::<PathBuf>::new(), "cgroups of {id} left");
}

#[test]
fn env_file_user_and_labels() {
    require!();
    let h = demo();
    let tmp = TempDir::new("envfile");
    let file = tmp.path().join("env");
    std::fs::write(&file, "# settings\n\nA=from-file\n  B=two words\nC=file\n").unwrap();
    let f = file.to_str().unwrap();
    // --env wins over the file, as in ctr.
    let out = run_sh(
        &h,
        &["--env-file", f, "--env", "C=flag"],
        "echo \"$A|$B|$C\"; env | grep -c '^#' || true",
    );
    assert_eq!(out, "from-file|two words|flag\n0\n");

    // Names from the image's /etc/passwd and /etc/group, numbers without them.
    for (user, id) in [
        ("nobody", "uid=65534(nobody) gid=65534(nogroup)"),
        ("nobody:root", "uid=65534(nobody) gid=0(root)"),
        ("0:nogroup", "uid=0(root) gid=65534(nogroup)"),
        ("1234:5678", "uid=1234 gid=5678"),
    ] {
        let out = run_sh(&h, &["--user", user], "id");
        assert!(out.starts_with(id), "--user {user}: {out}");
    }
    assert!(run_sh(&h, &["-u", "nobody"], "id -u").starts_with("65534"));

    // Labels are annotations in the container's state.
    let id = unique_id("labels");
    h.ok(&[
        "run",
        "--keep",
        "--image",
        DEMO,
        "--label",
        "team=blue",
        "--label",
        "solo",
        &id,
        "--",
        "true",
    ]);
    let st = h.state(&id);
    assert_eq!(st["annotations"]["team"], "blue", "{st}");
    assert_eq!(st["annotations"]["solo"], "true", "{st}");
    assert_eq!(st["annotations"]["org.hezi.image"], DEMO, "{st}");
    h.ok(&["delete", &id]);
    assert_bundle_gone(&h, &id);
}

#[test]
fn capabilities_added_and_dropped() {
    require!();
    let h = demo();
    let default = mask(DEFAULT_CAP_BITS);
    assert_eq!(cap_eff(&h, &[]), default);
    let changed = cap_eff(&h, &["--cap-add", "CAP_NET_ADMIN", "--cap-drop", "chown"]);
    assert_eq!(changed, default & !(1 << CAP_CHOWN) | 1 << CAP_NET_ADMIN);
    assert_eq!(cap_eff(&h, &["--cap-drop", "ALL", "--cap-add", "kill"]), 1 << CAP_KILL);
    let all_but_chown = cap_eff(&h, &["--cap-add", "ALL", "--cap-drop", "CAP_CHOWN"]);
    let ours = std::fs::read_to_string("/proc/self/status").unwrap();
    let ours = u64::from_str_radix(&status_field(&ours, "CapEff"), 16).unwrap();
    assert_eq!(all_but_chown, ours & !(1 << CAP_CHOWN));
    // Dropped means gone from the bounding set too: not even a setuid root program gets it.
    let status = run_sh(&h, &["--cap-drop", "NET_RAW"], "cat /proc/self/status");
    let bnd = u64::from_str_radix(&status_field(&status, "CapBnd"), 16).unwrap();
    assert_eq!(bnd & 1 << 13, 0, "CAP_NET_RAW in the bounding set: {status}");
}

#[test]
fn seccomp_turns_on_the_default_profile() {
    require!();
    let h = demo();
    let status = run_sh(&h, &[], "cat /proc/self/status");
    assert_eq!(status_field(&status, "Seccomp"), "0");
    let status = run_sh(&h, &["--seccomp"], "cat /proc/self/status");
    assert_eq!(status_field(&status, "Seccomp"), "2", "no filter: {status}");
    // swapon is outside the allow-list whatever the capabilities: EPERM from the filter instead
    // of the kernel's EINVAL for a file that is not swap. sethostname is allowed with
    // CAP_SYS_ADMIN, and busybox's ordinary work (fork, exec, pipes) runs under the filter.
    let probe = "swapon /etc/passwd 2>&1; hostname renamed 2>&1; hostname; echo a b | wc -w";
    let open = run_sh(&h, &["--cap-add", "SYS_ADMIN"], probe);
    assert_eq!(open, "swapon: /etc/passwd: Invalid argument\nrenamed\n2\n");
    let filtered = run_sh(&h, &["--seccomp", "--cap-add", "SYS_ADMIN"], probe);
    assert_eq!(filtered, "swapon: /etc/passwd: Operation not permitted\nrenamed\n2\n");
    // Without CAP_SYS_ADMIN the filter refuses sethostname itself.
    let plain = run_sh(&h, &["--seccomp"], "hostname x 2>&1; true");
    assert!(plain.contains("Operation not permitted"), "{plain}");
    // --privileged turns seccomp off, unless --seccomp asks for it again (as ctr).
    let both = run_sh(&h, &["--privileged", "--seccomp"], "cat /proc/self/status");
    assert_eq!(status_field(&both, "Seccomp"), "2");
}

/// The first block device in the host's /dev: --privileged passes it on.
fn a_host_block_device() -> Option<String> {
    use std::os::unix::fs::FileTypeExt;
    let mut devs: Vec<String> = std::fs::read_dir("/dev")
        .ok()?
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_block_device()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    devs.sort();
    devs.into_iter().next()
}

#[test]
fn privileged() {
    require!();
    let h = demo();
    let ours = std::fs::read_to_string("/proc/self/status").unwrap();
    let dev = a_host_block_device();
    let probe = format!(
        "grep -E '^(CapEff|Seccomp):' /proc/self/status; grep -c -E ' /proc/(kcore|keys|sys) ' /proc/self/mountinfo; \
         awk '$5 == \"/sys\" {{ split($6, o, \",\"); print \"sys-\" o[1] }}' /proc/self/mountinfo; {}",
        dev.as_ref()
            .map_or(String::new(), |d| format!("test -b /dev/{d} && echo dev-{d}"))
    );
    let out = run_sh(&h, &["--privileged"], &format!("{probe}; true"));
    assert_eq!(status_field(&out, "CapEff"), status_field(&ours, "CapEff"), "{out}");
    assert_eq!(status_field(&out, "Seccomp"), "0", "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[2], "0", "masked or read-only /proc paths: {out}");
    assert_eq!(lines[3], "sys-rw", "{out}");
    if let Some(d) = &dev {
        assert_eq!(lines[4], format!("dev-{d}"), "{out}");
    }
    // And without it: the defaults.
    let out = run_sh(&h, &[], &format!("{probe}; true"));
    let lines: Vec<&str> = out.lines().collect();
    assert_ne!(lines[2], "0", "no masked paths: {out}");
    assert_eq!(lines[3], "sys-ro", "{out}");
    assert_eq!(lines.len(), 4, "a host device without --privileged: {out}");
}

/// The file `name` of the container's cgroup for `controller` (v1), or of its unified cgroup,
/// found from where its init runs: /proc/PID/cgroup.
fn cgroup_file(pid: i64, controller: &str, name: &str) -> PathBuf {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let v1 = text.lines().find_map(|l| {
        let mut f = l.splitn(3, ':');
        let (_, ctrls, path) = (f.next()?, f.next()?, f.next()?);
        ctrls.split(',').any(|c| c == controller).then(|| path.to_string())
    });
    match v1 {
        Some(path) => Path::new("/sys/fs/cgroup")
            .join(controller)
            .join(path.trim_start_matches('/'))
            .join(name),
        None => {
            let path = text.lines().find_map(|l| l.strip_prefix("0::")).expect("a cgroup");
            Path::new("/sys/fs/cgroup")
                .join(path.trim_start_matches('/'))
                .join(name)
        }
    }
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p)
        .unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
        .trim()
        .to_string()
}

#[test]
fn memory_limit_and_cpus_in_the_containers_cgroup() {
    require!();
    let h = demo();
    let id = unique_id("limits");
    h.ok(&[
        "run",
        "-d",
        "--image",
        DEMO,
        "--memory-limit",
        "67108864",
        "--cpus",
        "0.5",
        &id,
        "--",
        "sleep",
        "1000",
    ]);
    h.wait_status(&id, "running");
    let pid = h.state(&id)["pid"].as_i64().unwrap();
    // The container's own view names the same cgroup.
    let inside = h.ok(&["exec", &id, "cat", "/proc/1/cgroup"]);
    assert!(inside.contains(&format!("/hezi/{id}")), "{inside}");
    let v2 = Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    if v2 {
        assert_eq!(read(&cgroup_file(pid, "memory", "memory.max")), "67108864");
        assert_eq!(read(&cgroup_file(pid, "cpu", "cpu.max")), "50000 100000");
    } else {
        assert_eq!(read(&cgroup_file(pid, "memory", "memory.limit_in_bytes")), "67108864");
        assert_eq!(read(&cgroup_file(pid, "cpu", "cpu.cfs_quota_us")), "50000");
        assert_eq!(read(&cgroup_file(pid, "cpu", "cpu.cfs_period_us")), "100000");
    }
    h.ok(&["kill", &id, "KILL"]);
    h.wait_status(&id, "stopped");
    h.ok(&["delete", &id]);
    assert_bundle_gone(&h, &id);
    assert_eq!(cgroup_dirs(&id), Vec::<PathBuf>::new());
}

#[test]
fn null_io_and_log_uri() {
    require!();
    let h = demo();
    let tmp = TempDir::new("io");
    let out_dir = tmp.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let mount = format!("type=bind,src={},dst=/out", out_dir.display());
    // The shell's own fds are the container's stdio (read before any redirection of its own).
    let fds = "i=$(readlink /proc/$$/fd/0); o=$(readlink /proc/$$/fd/1); e=$(readlink /proc/$$/fd/2); \
               printf '%s\\n' \"$i\" \"$o\" \"$e\" > /out/fds";
    let id = unique_id("nullio");
    let o = h.cmd(&[
        "run",
        "--image",
        DEMO,
        "--null-io",
        "--mount",
        &mount,
        &id,
        "--",
        "sh",
        "-c",
        &format!("{fds}; echo to-stdout; echo to-stderr >&2; exit 3"),
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert_eq!(text(&o), "", "output reached hezi's stdio");
    assert_eq!(
        std::fs::read_to_string(out_dir.join("fds")).unwrap(),
        "/dev/null\n/dev/null\n/dev/null\n"
    );
    assert_bundle_gone(&h, &id);

    // --log-uri: stdout and stderr appended (two runs), the directory made; stdin /dev/null.
    let log = tmp.path().join("logs/sub/c.log");
    let uri = format!("file://{}", log.display());
    for n in 1..=2 {
        let out = h.ok(&[
            "run",
            "--image",
            DEMO,
            "--log-uri",
            &uri,
            "--mount",
            &mount,
            &id,
            "--",
            "sh",
            "-c",
            &format!("{fds}; echo out{n}; echo err{n} >&2"),
        ]);
        assert_eq!(out, "", "output reached hezi's stdout");
    }
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "out1\nerr1\nout2\nerr2\n");
    assert_eq!(
        std::fs::read_to_string(out_dir.join("fds")).unwrap(),
        format!("/dev/null\n{}\n{}\n", log.display(), log.display())
    );
    // A detached container writes there too, after hezi has gone.
    h.ok(&[
        "run",
        "-d",
        "--image",
        DEMO,
        "--log-uri",
        &uri,
        &id,
        "--",
        "sh",
        "-c",
        "echo detached",
    ]);
    h.wait_status(&id, "stopped");
    h.ok(&["delete", &id]);
    assert!(std::fs::read_to_string(&log).unwrap().ends_with("err2\ndetached\n"));
    assert_bundle_gone(&h, &id);

    for (flags, why) in [
        (
            &["--log-uri", "binary://relative/logger"][..],
            "needs the logging program's absolute path",
        ),
        (&["--log-uri", "/plain/path"], "not a URI"),
        (&["--null-io", "--log-uri", &uri], "cannot be used together"),
        (&["-t", "--null-io"], "--tty cannot be used with --null-io"),
    ] {
        let mut args = vec!["run", "--image", DEMO];
        args.extend_from_slice(flags);
        args.push(&id);
        let e = fails(&h, &args);
        assert!(e.contains(why), "{flags:?}: {e}");
        assert_nothing_left(&h, &id);
    }
}

#[test]
fn tty_attaches_the_containers_terminal() {
    require!();
    let h = demo();
    let out = run_sh(
        &h,
        &["-t"],
        "tty; test -t 0 && echo stdin-tty; test -t 1 && echo stdout-tty; echo TERM=$TERM",
    );
    // hezi relays the terminal with the container's bytes as written (no \r added).
    assert_eq!(out, "/dev/pts/0\nstdin-tty\nstdout-tty\nTERM=xterm\n");
    let out = run_sh(&h, &["--tty"], "echo $TERM");
    assert_eq!(out, "xterm\n");
    // Without: no terminal, and no TERM from hezi.
    let out = run_sh(&h, &[], "tty; echo TERM=$TERM");
    assert_eq!(out, "not a tty\nTERM=\n");
}

#[test]
fn rm_keep_and_detach() {
    require!();
    let h = demo();
    let id = unique_id("rm");
    assert_eq!(
        h.ok(&["run", "--rm", "--image", DEMO, &id, "--", "echo", "gone"]),
        "gone\n"
    );
    assert!(!h.ids().contains(&id));
    assert_nothing_left(&h, &id);
    for (flags, why) in [
        (&["--rm", "-d"][..], "--rm and --detach"),
        (&["--rm", "--keep"], "--rm and --keep"),
    ] {
        let mut args = vec!["run", "--image", DEMO];
        args.extend_from_slice(flags);
        args.push(&id);
        let e = fails(&h, &args);
        assert!(e.contains(why), "{e}");
        assert_nothing_left(&h, &id);
    }
    // --keep leaves the stopped container and its rootfs until delete.
    h.ok(&[
        "run",
        "--keep",
        "--image",
        DEMO,
        &id,
        "--",
        "sh",
        "-c",
        "echo kept > /file",
    ]);
    assert_eq!(h.status(&id), "stopped");
    let bundle = h.root().join(".bundles").join(&id);
    assert_eq!(read(&bundle.join("rootfs/file")), "kept");
    assert_eq!(count(&store(&h).join("snapshots")), 2);
    h.ok(&["delete", &id]);
    assert_nothing_left(&h, &id);
}

#[test]
fn create_image_then_the_lifecycle() {
    require!();
    let h = demo();
    let id = unique_id("create");
    h.ok(&[
        "create",
        "--image",
        DEMO,
        "--env",
        "GREETING=hi",
        "--label",
        "tier=web",
        "--cap-add",
        "NET_ADMIN",
        &id,
        "--",
        "sleep",
        "1000",
    ]);
    assert_eq!(h.status(&id), "created");
    let st = h.state(&id);
    assert_eq!(st["annotations"]["org.hezi.image"], DEMO);
    assert_eq!(st["annotations"]["tier"], "web");
    // list names the image.
    let table = h.ok(&["list"]);
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER", "IMAGE"]);
    let row = table.lines().find(|l| l.starts_with(&id)).expect("listed");
    assert!(row.trim_end().ends_with(DEMO), "{table}");
    let json: Value = serde_json::from_str(&h.ok(&["list", "--format", "json"])).unwrap();
    assert_eq!(json[0]["annotations"]["org.hezi.image"], DEMO);

    h.ok(&["start", &id]);
    assert_eq!(h.status(&id), "running");
    let out = h.ok(&["exec", &id, "sh", "-c", "echo $GREETING; grep CapEff /proc/1/status"]);
    let eff = u64::from_str_radix(&status_field(&out, "CapEff"), 16).unwrap();
    assert!(out.starts_with("hi\n"), "{out}");
    assert_eq!(eff, mask(DEFAULT_CAP_BITS) | 1 << CAP_NET_ADMIN);
    let ps = h.ok(&["ps", &id]);
    assert!(ps.contains("sleep 1000"), "{ps}");
    h.ok(&["pause", &id]);
    assert_eq!(h.status(&id), "paused");
    h.ok(&["resume", &id]);
    assert_eq!(h.status(&id), "running");
    h.ok(&["kill", &id, "KILL"]);
    h.wait_status(&id, "stopped");
    h.ok(&["delete", &id]);
    assert_nothing_left(&h, &id);
    // A root of bundles alone keeps runc's columns.
    assert_eq!(
        h.ok(&["list"]).split_whitespace().collect::<Vec<_>>(),
        ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
    );

    // A created container that never started goes the same way.
    h.ok(&["create", "--image", DEMO, &id, "--", "true"]);
    h.ok(&["delete", &id]);
    assert_nothing_left(&h, &id);
}

#[test]
fn help_and_unknown_flags() {
    require!();
    let h = Hezi::new();
    for args in [
        &["run", "--help"][..],
        &["run", "-h"],
        &["create", "--help"],
        &["run", "--image", DEMO, "--seccomp", "-h"],
        &["create", "--image", DEMO, "--help"],
    ] {
        let out = h.ok(args);
        for flag in [
            "--image",
            "--env-file",
            "--user",
            "--label",
            "--memory-limit",
            "--cpus",
            "--privileged",
            "--seccomp",
            "--cap-add",
            "--cap-drop",
            "--null-io",
            "--log-uri",
            "--tty",
            "--mount",
        ] {
            assert!(out.contains(&format!("   {flag}")), "{args:?} lacks {flag}: {out}");
        }
        assert!(out.contains(&format!("hezi {} [command options]", args[0])), "{out}");
    }
    assert!(h.ok(&["run", "--help"]).contains("   --rm"));
    for sub in ["import", "pull", "ls", "rm", "tag", "inspect", "export", "demo"] {
        let out = h.ok(&["image", sub, "--help"]);
        assert!(
            out.contains("usage: hezi image COMMAND") && out.contains(sub),
            "{sub}: {out}"
        );
    }
    for (args, named) in [
        (
            &["run", "--image", DEMO, "--frobnicate", "x"][..],
            "run: flag provided but not defined: -frobnicate",
        ),
        (
            &["create", "--frobnicate", "x"],
            "create: flag provided but not defined: -frobnicate",
        ),
        (
            &["image", "import", "--frobnicate", "f"],
            "image import: flag provided but not defined",
        ),
    ] {
        let e = fails(&h, args);
        assert!(e.contains(named), "{args:?}: {e}");
    }
    // ctr's flags that change the spec need an image: a bundle's config.json says it.
    let e = fails(&h, &["create", "--cpus", "1", "-b", "/nonexistent", "x"]);
    assert!(e.contains("--cpus needs --image"), "{e}");
}

#[test]
fn bad_input_fails_cleanly() {
    require!();
    let h = demo();
    let id = unique_id("bad");
    for command in ["run", "create"] {
        for (flags, named) in [
            (
                &["--image", "hezi.test/no-such:image"][..],
                "hezi.test/no-such:image not found",
            ),
            (
                &["--image", DEMO, "--mount", "src=/tmp"],
                "--mount \"src=/tmp\": no dst",
            ),
            (
                &["--image", DEMO, "--mount", "src=/tmp,dst=/x,size=1"],
                "unknown key \"size\"",
            ),
            (
                &["--image", DEMO, "--user", "alice"],
                "user \"alice\" not found in the image's /etc/passwd",
            ),
            (
                &["--image", DEMO, "--user", "nobody:staff"],
                "group \"staff\" not found in the image's /etc/group",
            ),
            (
                &["--image", DEMO, "--cpus", "two"],
                "--cpus \"two\": not a number of CPUs",
            ),
            (&["--image", DEMO, "--cpus", "-1"], "--cpus \"-1\""),
            (&["--image", DEMO, "--cpus", "0.001"], "less than 0.01"),
            (
                &["--image", DEMO, "--memory-limit", "64m"],
                "--memory-limit \"64m\": not a whole number of bytes",
            ),
            (&["--image", DEMO, "--memory-limit", "-5"], "--memory-limit \"-5\""),
            (
                &["--image", DEMO, "--env-file", "/nonexistent/env"],
                "--env-file /nonexistent/env",
            ),
            (
                &["--image", DEMO, "--cap-add", "CAP_TELEPORT"],
                "--cap-add \"CAP_TELEPORT\": unknown capability",
            ),
            (
                &["--image", DEMO, "--cap-drop", "FLY"],
                "--cap-drop \"FLY\": unknown capability",
            ),
            (
                &["--image", DEMO, "--env", "NOVALUE"],
                "--env \"NOVALUE\": not KEY=VALUE",
            ),
            (&["--image", DEMO, "--log-uri", "binary://relative/logger"], "binary://"),
        ] {
            let mut args = vec![command];
            args.extend_from_slice(flags);
            args.extend_from_slice(&[&id, "--", "true"]);
            let e = fails(&h, &args);
            assert!(e.contains(named), "{args:?}: {e}");
            assert_nothing_left(&h, &id);
        }
    }
    // A malformed env file names the line.
    let tmp = TempDir::new("badenv");
    let file = tmp.path().join("env");
    std::fs::write(&file, "A=1\n# fine\nJUSTAWORD\n").unwrap();
    let e = fails(&h, &["run", "--image", DEMO, "--env-file", file.to_str().unwrap(), &id]);
    assert!(
        e.contains(&format!("{}:3", file.display())) && e.contains("JUSTAWORD"),
        "{e}"
    );
    assert_nothing_left(&h, &id);
    // The log file is made only once the container is about to be: not for a missing image.
    let log = tmp.path().join("logs/c.log");
    let uri = format!("file://{}", log.display());
    let e = fails(&h, &["run", "--image", "hezi.test/gone:1", "--log-uri", &uri, &id]);
    assert!(e.contains("hezi.test/gone:1 not found"), "{e}");
    assert!(
        !log.exists() && !log.parent().unwrap().exists(),
        "log made for a failed run"
    );
    assert_nothing_left(&h, &id);
    assert!(mounts_under(h.root()).is_empty());
}
