//! `exec --cgroup [controller[,controller]:]PATH` (runc 1.1+): the process runs in a sub-cgroup
//! of the container's, in every hierarchy or only the controllers named; paths leaving the
//! container's cgroup and sub-cgroups that do not exist are refused (exit 255) with nothing left.
//! Read back from the host in /proc/PID/cgroup.

use std::path::{Path, PathBuf};

use hezi_e2e::{assert_nothing_left, cgroup_dirs, process_with_cmdline, require, unique_id, Bundle, Hezi, TempDir};

/// The lines of /proc/PID/cgroup as (controllers, path): `("pids", "/hezi/x")`, `("", …)` for v2.
fn cgroups_of(pid: i32) -> Vec<(String, String)> {
    std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .unwrap()
        .lines()
        .filter_map(|l| {
            let mut f = l.splitn(3, ':');
            let (_, c, p) = (f.next()?, f.next()?, f.next()?);
            Some((c.to_string(), p.to_string()))
        })
        .collect()
}

/// `exec -d` with `flags`, running `sleep SECS`; the exec'd process's host pid.
fn exec_sleep(h: &Hezi, id: &str, flags: &[&str], secs: &str) -> i32 {
    let dir = TempDir::new("exec-cg");
    let pid_file = dir.path().join("pid");
    let mut args = vec!["exec", "-d", "--pid-file", pid_file.to_str().unwrap()];
    args.extend_from_slice(flags);
    args.extend_from_slice(&[id, "sleep", secs]);
    h.ok(&args);
    std::fs::read_to_string(&pid_file).unwrap().trim().parse().unwrap()
}

/// mkdir `sub` below the container's cgroup in each of `dirs`; a v1 cpuset takes no task until
/// it has CPUs and memory nodes, so those are copied from the container's.
fn make_sub(dirs: &[PathBuf], sub: &str) {
    for d in dirs {
        let s = d.join(sub);
        std::fs::create_dir(&s).unwrap_or_else(|e| panic!("mkdir {}: {e}", s.display()));
        for f in ["cpuset.cpus", "cpuset.mems"] {
            if d.join(f).exists() && !d.join("cgroup.subtree_control").exists() {
                std::fs::write(s.join(f), std::fs::read_to_string(d.join(f)).unwrap().trim()).unwrap();
            }
        }
    }
}

#[test]
fn exec_runs_in_the_sub_cgroups_named_and_refuses_others() {
    require!();
    let h = Hezi::new();
    let b = Bundle::busybox(&["sleep", "3201"]);
    let id = unique_id("exec-cg");
    h.create(&b, &id);
    h.ok(&["start", &id]);
    let own = format!("/hezi/{id}");
    let sub = format!("{own}/sub");
    let dirs = cgroup_dirs(&id);
    let pure_v2 = Path::new("/sys/fs/cgroup/cgroup.procs").exists();
    make_sub(&dirs, "sub");

    // No controller: every hierarchy, the unified one of a hybrid host included (as runc).
    let pid = exec_sleep(&h, &id, &["--cgroup", "sub"], "3202");
    // A v1 host without the unified mount shows a 0:: line that no runtime can move.
    let has_unified = pure_v2 || Path::new("/sys/fs/cgroup/unified/cgroup.procs").exists();
    for (c, p) in cgroups_of(pid) {
        if has_unified || !c.is_empty() {
            assert_eq!(p, sub, "hierarchy {c:?}");
        }
    }

    if !pure_v2 {
        // Per controller: the hierarchies named go to the sub-cgroup, the others (the unified
        // one too) stay in the container's.
        let pid = exec_sleep(
            &h,
            &id,
            &["--cgroup", "pids:sub", "--cgroup", "memory,freezer:/sub"],
            "3203",
        );
        for (c, p) in cgroups_of(pid) {
            let named = ["pids", "memory", "freezer"].contains(&c.as_str());
            assert_eq!(&p, if named { &sub } else { &own }, "hierarchy {c:?}");
        }
    }

    // Refused, exit 255, and no process made: paths out of the container's cgroup, a sub-cgroup
    // that does not exist.
    for (arg, says) in [
        ("..", "outside"),
        ("sub/../../other", "outside"),
        ("pids:../../x", "outside"),
        ("missing", "does not exist"),
    ] {
        let out = h.cmd(&["exec", "--cgroup", arg, &id, "sleep", "3299"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(255), "--cgroup {arg}: {err}");
        assert!(err.contains(says), "--cgroup {arg}: {err}");
        assert_eq!(
            process_with_cmdline("sleep 3299"),
            None,
            "--cgroup {arg} left a process"
        );
    }
    // hezi makes no cgroup for --cgroup, refused or not.
    for d in &dirs {
        let root = d.ancestors().nth(2).unwrap();
        for made in [d.join("missing"), root.join("other"), root.parent().unwrap().join("x")] {
            assert!(!made.exists(), "{} was made", made.display());
        }
    }

    h.ok(&["delete", "-f", &id]);
    assert_nothing_left(&h, &id, &b, Some("sleep 3202"));
}
