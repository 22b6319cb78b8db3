//! The commands built on cgroups, end to end on this host's cgroupfs: placement and cleanup of a
//! container's cgroup in every hierarchy, pause/resume, update, events (stats and OOM), ps,
//! kill --all, the pids limit, and the --systemd-cgroup errors on a host without systemd.
//!
//! Written for v1 and hybrid hosts (one directory per controller under /sys/fs/cgroup); on a
//! pure cgroup v2 host the tests that read v1 files skip, and scripts/vm/guest-tests.sh covers
//! the same commands there.

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use hezi_e2e::{alive, assert_nothing_left, require, unique_id, Bundle, Hezi};
use serde_json::{json, Value};

const CG: &str = "/sys/fs/cgroup";

/// The container's directory in every mounted hierarchy: each v1 mount and, on hybrid hosts,
/// the unified one, with cgroupsPath left to its default `/hezi/<id>`.
fn cgroup_dirs(id: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if Path::new(CG).join("cgroup.procs").exists() {
        out.push(Path::new(CG).join("hezi").join(id));
        return out;
    }
    for e in std::fs::read_dir(CG).expect("read /sys/fs/cgroup").flatten() {
        if e.path().join("cgroup.procs").exists() {
            out.push(e.path().join("hezi").join(id));
        }
    }
    out.sort();
    out
}

/// The container's directory in the v1 hierarchy of `controller`; None (after saying so) on a
/// host without one, where the caller skips.
fn v1_dir(controller: &str, id: &str) -> Option<PathBuf> {
    let h = Path::new(CG).join(controller);
    if h.join("cgroup.procs").exists() {
        return Some(h.join("hezi").join(id));
    }
    eprintln!("SKIP: no cgroup v1 {controller} hierarchy here; scripts/vm covers cgroup v2");
    None
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p)
        .unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
        .trim()
        .to_string()
}

fn procs(dir: &Path) -> Vec<i64> {
    std::fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// Poll `cond` for up to `secs` seconds.
fn wait_for(secs: u64, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out after {secs}s waiting for {what}");
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// create + start a bundle running `args`, with `resources` as linux.resources when given.
fn started(h: &Hezi, args: &[&str], resources: Option<Value>, prefix: &str) -> (Bundle, String) {
    let mut b = Bundle::busybox(args);
    if let Some(r) = resources {
        b.linux()["resources"] = r;
    }
    let id = unique_id(prefix);
    h.create(&b, &id);
    h.ok(&["start", &id]);
    (b, id)
}

fn stderr_of(h: &Hezi, args: &[&str]) -> String {
    let out = h.cmd(args);
    assert!(!out.status.success(), "hezi {args:?} should have failed");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn cgroup_dirs_live_with_the_container_and_go_with_delete() {
    require!();
    let h = Hezi::new();
    let (b, id) = started(&h, &["sleep", "2001"], None, "cgdirs");
    let pid = h.state(&id)["pid"].as_i64().unwrap();
    let dirs = cgroup_dirs(&id);
    assert!(!dirs.is_empty());
    for d in &dirs {
        assert!(procs(d).contains(&pid), "init {pid} not in {}", d.display());
    }
    h.ok(&["kill", &id, "KILL"]);
    h.wait_status(&id, "stopped");
    h.ok(&["delete", &id]);
    for d in &dirs {
        assert!(!d.exists(), "{} left after delete", d.display());
    }
    assert_nothing_left(&h, &id, &b, Some("sleep 2001"));

    // delete --force of a running container.
    let (b, id) = started(&h, &["sleep", "2002"], None, "cgforce");
    let dirs = cgroup_dirs(&id);
    assert!(dirs.iter().all(|d| d.exists()));
    h.ok(&["delete", "--force", &id]);
    for d in &dirs {
        assert!(!d.exists(), "{} left after delete --force", d.display());
    }
    assert_nothing_left(&h, &id, &b, Some("sleep 2002"));
}

#[test]
fn a_failed_create_leaves_no_cgroup() {
    require!();
    let h = Hezi::new();
    let mut b = Bundle::busybox(&["sleep", "2003"]);
    // Made after the cgroup exists, refused while the resources are written.
    b.linux()["resources"] = json!({ "pids": { "limit": 10 }, "memory": { "swappiness": 1000 } });
    b.write();
    let id = unique_id("cgfail");
    let err = stderr_of(&h, &["create", "-b", b.path().to_str().unwrap(), &id]);
    assert!(err.contains("swappiness"), "{err}");
    for d in cgroup_dirs(&id) {
        assert!(!d.exists(), "{} left after a failed create", d.display());
    }
    assert_nothing_left(&h, &id, &b, Some("sleep 2003"));
}

/// runc's promise for `delete --force`: whatever a create left when the runtime was SIGKILLed
/// half-way (state, cgroups, the waiting init) goes.
#[test]
fn a_create_killed_half_way_is_cleaned_up_by_delete_force() {
    require!();
    let h = Hezi::new();
    let mut b = Bundle::busybox(&["sleep", "2004"]);
    // createRuntime hooks run in hezi's create once the init is in its cgroup: this one kills
    // the hezi that runs it.
    b.config["hooks"] = json!({ "createRuntime": [{ "path": "/bin/sh", "args": ["sh", "-c", "kill -9 $PPID"] }] });
    b.write();
    let id = unique_id("cgkilled");
    let out = h.cmd(&["create", "-b", b.path().to_str().unwrap(), &id]);
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGKILL),
        "create was not killed: {out:?}"
    );
    assert!(h.ids().contains(&id), "the killed create left no state to clean up");
    let dirs = cgroup_dirs(&id);
    assert!(dirs.iter().all(|d| d.exists()), "the killed create made no cgroup");
    h.ok(&["delete", "--force", &id]);
    for d in &dirs {
        assert!(!d.exists(), "{} left after delete --force", d.display());
    }
    // The init is a clone of that create, with its command line: the id marks it.
    assert_nothing_left(&h, &id, &b, Some(&id));
}

#[test]
fn pause_freezes_and_resume_thaws() {
    require!();
    let h = Hezi::new();
    let (b, id) = started(&h, &["sh", "-c", "sleep 2004 & exec sleep 2005"], None, "pause");
    let Some(freezer) = v1_dir("freezer", &id) else { return };
    wait_for(10, "two processes", || procs(&freezer).len() == 2);
    h.ok(&["pause", &id]);
    assert_eq!(h.status(&id), "paused");
    assert_eq!(read(&freezer.join("freezer.state")), "FROZEN");
    for pid in procs(&freezer) {
        // A frozen task sleeps uninterruptibly in the refrigerator: D in /proc/PID/stat.
        let stat = read(Path::new(&format!("/proc/{pid}/stat")));
        let state = stat.rsplit_once(") ").map(|(_, r)| &r[..1]).unwrap_or("?");
        assert_eq!(state, "D", "pid {pid} of a paused container: {stat}");
    }
    assert!(stderr_of(&h, &["pause", &id]).contains("paused"));
    h.ok(&["resume", &id]);
    assert_eq!(h.status(&id), "running");
    assert_eq!(read(&freezer.join("freezer.state")), "THAWED");
    assert!(stderr_of(&h, &["resume", &id]).contains("running"));
    h.ok(&["delete", "-f", &id]);
    assert_nothing_left(&h, &id, &b, Some("sleep 2005"));

    // Neither a created nor a stopped container can be paused.
    let b = Bundle::busybox(&["sleep", "2006"]);
    let id = unique_id("pausec");
    h.create(&b, &id);
    assert!(stderr_of(&h, &["pause", &id]).contains("created"));
    h.ok(&["kill", &id, "KILL"]);
    h.wait_status(&id, "stopped");
    assert!(stderr_of(&h, &["pause", &id]).contains("container not running"));
    assert!(stderr_of(&h, &["resume", &id]).contains("container not running"));
    h.ok(&["delete", &id]);
    assert!(stderr_of(&h, &["pause", &id]).contains("does not exist"));
}

#[test]
fn update_changes_limits_of_a_running_container() {
    require!();
    let h = Hezi::new();
    let (b, id) = started(
        &h,
        &["sleep", "2007"],
        Some(json!({ "pids": { "limit": 50 } })),
        "update",
    );
    let (Some(mem), Some(pids), Some(cpu)) = (v1_dir("memory", &id), v1_dir("pids", &id), v1_dir("cpu", &id)) else {
        return;
    };
    assert_eq!(read(&pids.join("pids.max")), "50");
    h.ok(&["update", "--memory", "64m", "--pids-limit", "20", &id]);
    assert_eq!(read(&mem.join("memory.limit_in_bytes")), "67108864");
    assert_eq!(read(&pids.join("pids.max")), "20");

    // A later update starts from the saved resources: the memory limit stays.
    h.ok(&["update", "--memory-reservation", "32M", "--cpu-share", "512", &id]);
    assert_eq!(read(&mem.join("memory.soft_limit_in_bytes")), "33554432");
    assert_eq!(read(&mem.join("memory.limit_in_bytes")), "67108864");
    assert_eq!(read(&cpu.join("cpu.shares")), "512");
    assert_eq!(read(&pids.join("pids.max")), "20");

    // -r FILE, then -r - from stdin.
    let file = b.path().join("resources.json");
    std::fs::write(
        &file,
        r#"{"memory":{"limit":134217728},"pids":{"limit":30},"cpu":{"quota":50000,"period":100000}}"#,
    )
    .unwrap();
    h.ok(&["update", "-r", file.to_str().unwrap(), &id]);
    assert_eq!(read(&mem.join("memory.limit_in_bytes")), "134217728");
    assert_eq!(read(&pids.join("pids.max")), "30");
    assert_eq!(read(&cpu.join("cpu.cfs_quota_us")), "50000");
    let mut child = h
        .command(&["update", "-r", "-", &id])
        .stdin(Stdio::piped())
        .spawn()
        .expect("spawn hezi update -r -");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(br#"{"pids":{"limit":-1}}"#).unwrap();
    }
    assert!(child.wait().unwrap().success());
    assert_eq!(read(&pids.join("pids.max")), "max");

    // Bad values name the flag; a value the kernel refuses names the file.
    assert!(stderr_of(&h, &["update", "--memory", "lots", &id]).contains("--memory"));
    assert!(stderr_of(&h, &["update", "--cpuset-cpus", "9999", &id]).contains("cpuset.cpus"));
    h.ok(&["delete", "-f", &id]);
    assert!(stderr_of(&h, &["update", "--memory", "1g", &id]).contains("does not exist"));
    assert_nothing_left(&h, &id, &b, Some("sleep 2007"));
}

#[test]
fn events_stats_has_runcs_shape() {
    require!();
    let h = Hezi::new();
    let (b, id) = started(
        &h,
        &["sh", "-c", "sleep 2008 & exec sleep 2009"],
        Some(json!({ "memory": { "limit": 67108864 }, "pids": { "limit": 40 } })),
        "stats",
    );
    wait_for(10, "two processes", || {
        h.ok(&["ps", "--format", "json", &id]).contains(',')
    });
    let out = h.ok(&["events", "--stats", &id]);
    assert_eq!(out.lines().count(), 1, "one line: {out}");
    let ev: Value = serde_json::from_str(&out).expect("events --stats prints JSON");
    assert_eq!(ev["type"], "stats");
    assert_eq!(ev["id"], id.as_str());
    let d = &ev["data"];
    for k in ["cpu", "memory", "pids", "blkio", "hugetlb"] {
        assert!(d.get(k).is_some(), "data.{k} missing: {d}");
    }
    assert!(d["cpu"]["usage"]["total"].as_u64().unwrap_or(0) > 0, "{d}");
    assert!(d["cpu"]["usage"].get("kernel").is_some() && d["cpu"]["usage"].get("user").is_some());
    assert!(d["cpu"].get("throttling").is_some());
    assert_eq!(d["memory"]["usage"]["limit"], 67108864);
    assert!(d["memory"]["usage"]["usage"].as_u64().unwrap_or(0) > 0, "{d}");
    for k in ["swap", "kernel", "kernelTCP"] {
        assert!(d["memory"][k].get("limit").is_some(), "memory.{k}: {d}");
    }
    assert!(d["memory"]["raw"].is_object());
    assert_eq!(d["pids"], json!({ "current": 2, "limit": 40 }));

    // The stream: a stats line per interval, ending when the container stops.
    let mut child = h
        .command(&["events", "--interval", "200ms", &id])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn hezi events");
    std::thread::sleep(Duration::from_millis(700));
    h.ok(&["kill", &id, "KILL"]);
    let lines = wait_output(&mut child, 10);
    let stats = lines.iter().filter(|l| l["type"] == "stats").count();
    assert!(stats >= 2, "stats every 200ms: {lines:?}");
    assert!(stderr_of(&h, &["events", "--stats", &id]).contains("container not running"));
    assert!(stderr_of(&h, &["events", "--interval", "0s", &id]).contains("greater than 0"));
    h.ok(&["delete", &id]);
    assert_nothing_left(&h, &id, &b, Some("sleep 2009"));
}

/// Wait (up to `secs`) for a spawned `events` to exit by itself; its stdout as JSON lines.
fn wait_output(child: &mut Child, secs: u64) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "events exited {status}");
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("events did not exit when the container stopped");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut text = String::new();
    use std::io::Read;
    child.stdout.take().unwrap().read_to_string(&mut text).unwrap();
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect()
}

#[test]
fn events_reports_an_oom_kill() {
    require!();
    let h = Hezi::new();
    // Swap limited to the memory limit, so the hog cannot escape into swap.
    let limit = 16 << 20;
    let (b, id) = started(
        &h,
        &[
            "sh",
            "-c",
            "sleep 1; x=$(head -c 64000000 /dev/zero | tr '\\0' a); echo survived; sleep 2010",
        ],
        Some(json!({ "memory": { "limit": limit, "swap": limit } })),
        "oom",
    );
    let mut child = h
        .command(&["events", "--interval", "10s", &id])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn hezi events");
    let Some(mem) = v1_dir("memory", &id) else {
        let _ = child.kill();
        let _ = child.wait();
        return;
    };
    // One kill or more (the killer may take the pipeline's processes one by one).
    let oom_kills = || {
        read(&mem.join("memory.oom_control"))
            .lines()
            .find_map(|l| l.strip_prefix("oom_kill ")?.trim().parse::<u64>().ok())
            .unwrap_or(0)
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while oom_kills() == 0 {
        assert!(
            Instant::now() < deadline,
            "no OOM kill in 30s: memory.oom_control {:?}, usage {:?}, limit {:?}, state {}",
            read(&mem.join("memory.oom_control")),
            read(&mem.join("memory.max_usage_in_bytes")),
            read(&mem.join("memory.limit_in_bytes")),
            h.status(&id)
        );
        std::thread::sleep(Duration::from_millis(25));
    }
    // The init may survive (the hog was its subshell); stop it so events ends.
    let _ = h.cmd(&["kill", &id, "KILL"]);
    let lines = wait_output(&mut child, 15);
    assert!(
        lines.iter().any(|l| *l == json!({ "type": "oom", "id": id })),
        "no oom event: {lines:?}"
    );
    h.ok(&["delete", "-f", &id]);
    assert_nothing_left(&h, &id, &b, Some("sleep 2010"));
}

#[test]
fn pids_limit_holds_a_fork_loop() {
    require!();
    let h = Hezi::new();
    // A duration no other test uses: the leak check below scans the whole host for it.
    let mut b = Bundle::busybox(&[
        "sh",
        "-c",
        "for i in $(seq 1 50); do sleep 4.913 & done; wait; echo done",
    ]);
    b.linux()["resources"] = json!({ "pids": { "limit": 10 } });
    let id = unique_id("forks");
    let (code, out, err) = h.run(&b, &id);
    let all = format!("{out}{err}");
    assert!(
        all.contains("can't fork") || all.contains("Resource temporarily unavailable"),
        "no fork failure (exit {code}): {all}"
    );
    assert_nothing_left(&h, &id, &b, Some("sleep 4.913"));
}

#[test]
fn ps_lists_the_containers_processes() {
    require!();
    let h = Hezi::new();
    let (b, id) = started(&h, &["sh", "-c", "sleep 2011 & exec sleep 2012"], None, "ps");
    let init = h.state(&id)["pid"].as_i64().unwrap();
    wait_for(10, "two processes", || {
        h.ok(&["ps", "--format", "json", &id]).contains(',')
    });
    let pids: Vec<i64> = serde_json::from_str(&h.ok(&["ps", "--format", "json", &id])).unwrap();
    assert_eq!(pids.len(), 2, "{pids:?}");
    assert!(pids.contains(&init));
    let mut in_cgroup = procs(&cgroup_dirs(&id)[0]);
    in_cgroup.sort();
    assert_eq!(pids, in_cgroup);

    let table = h.ok(&["ps", &id]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    assert!(lines[0].contains("PID") && lines[0].contains("CMD"), "{table}");
    assert!(table.contains("sleep 2011") && table.contains("sleep 2012"), "{table}");
    // ps options after the id go to ps.
    let table = h.ok(&["ps", &id, "-o", "pid,comm"]);
    assert_eq!(table.lines().count(), 3, "{table}");
    assert!(table.lines().skip(1).all(|l| l.contains("sleep")), "{table}");
    assert!(stderr_of(&h, &["ps", "--format", "yaml", &id]).contains("invalid format"));
    h.ok(&["delete", "-f", &id]);
    assert_nothing_left(&h, &id, &b, Some("sleep 2012"));
}

#[test]
fn kill_all_leaves_no_process_in_the_cgroup() {
    require!();
    let h = Hezi::new();
    let (b, id) = started(
        &h,
        &["sh", "-c", "sleep 2013 & sleep 2014 & (sleep 2015 &) ; exec sleep 2016"],
        None,
        "killall",
    );
    let dirs = cgroup_dirs(&id);
    wait_for(10, "four processes", || procs(&dirs[0]).len() == 4);
    let pids = procs(&dirs[0]);
    h.ok(&["kill", "--all", &id, "KILL"]);
    wait_for(10, "an empty cgroup", || dirs.iter().all(|d| procs(d).is_empty()));
    // A killed task leaves its cgroup a moment before it turns zombie: give it that moment.
    for p in pids {
        wait_for(10, &format!("{p} to die of kill --all"), || !alive(p));
    }
    h.wait_status(&id, "stopped");
    h.ok(&["delete", &id]);
    assert_nothing_left(&h, &id, &b, Some("sleep 2016"));
}

#[test]
fn systemd_cgroup_driver_without_systemd_is_a_clear_error() {
    require!();
    if std::path::Path::new("/run/systemd/system").is_dir() {
        eprintln!("SKIP: systemd is the init system here; scripts/vm/systemd-tests.sh covers the driver");
        return;
    }
    let h = Hezi::new();
    let b = Bundle::busybox(&["true"]);
    b.write();
    let id = unique_id("sd");
    let err = stderr_of(
        &h,
        &["--systemd-cgroup", "create", "-b", b.path().to_str().unwrap(), &id],
    );
    assert!(
        err.contains("systemd is not running on this host") && err.contains("without --systemd-cgroup"),
        "{err}"
    );
    assert_nothing_left(&h, &id, &b, None);
}

#[test]
fn systemd_cgroup_path_must_be_slice_prefix_name() {
    require!();
    let h = Hezi::new();
    let mut b = Bundle::busybox(&["true"]);
    b.linux()["cgroupsPath"] = serde_json::json!("/hezi/plain-path");
    b.write();
    let id = unique_id("sdpath");
    let err = stderr_of(
        &h,
        &["--systemd-cgroup", "create", "-b", b.path().to_str().unwrap(), &id],
    );
    assert!(
        err.contains(
            r#"cgroupsPath "/hezi/plain-path": with --systemd-cgroup it must have the form slice:prefix:name"#
        ),
        "{err}"
    );
    assert_nothing_left(&h, &id, &b, None);
}
