//! `checkpoint` and `restore` on the host. The real dump and restore run in the cgroup v2 VM
//! (scripts/vm/guest-tests.sh, t_checkpoint_restore), where Debian's CRIU passes `criu check`;
//! here CRIU 3.17 may fail it on the host's newer kernel, and then checkpoint must say so by
//! name and leave the container as it was. Bad input is refused the same way with or without
//! a working CRIU, with nothing left behind.

use std::process::Command;

use hezi_e2e::{assert_nothing_left, require, unique_id, Bundle, Hezi, TempDir};

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Whether CRIU works here, and what `criu check` said when not.
fn criu_check() -> Result<(), String> {
    match Command::new("criu").arg("check").output() {
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => Err(String::from_utf8_lossy(&o.stderr)
            .lines()
            .find(|l| l.starts_with("Error"))
            .unwrap_or("failed")
            .to_string()),
        Err(e) => Err(format!("criu: {e}")),
    }
}

fn sleeper(h: &Hezi, id: &str) -> Bundle {
    let b = Bundle::busybox(&["sleep", "1000"]);
    b.write();
    h.ok(&["run", "-d", "--bundle", b.path().to_str().unwrap(), id]);
    b
}

#[test]
fn checkpoint_without_a_working_criu_names_what_criu_check_said() {
    require!();
    let Err(why) = criu_check() else {
        eprintln!("SKIP: criu check passes here; the VM's t_checkpoint_restore covers the dump");
        return;
    };
    let h = Hezi::new();
    let id = unique_id("cr-nocriu");
    let _b = sleeper(&h, &id);
    let img = TempDir::new("cr-img");
    let dir = img.path().join("images");
    let out = h.cmd(&["checkpoint", "--image-path", dir.to_str().unwrap(), &id]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("criu check") && err.contains(why.trim()),
        "{err} (criu check said {why})"
    );
    assert_eq!(
        h.status(&id),
        "running",
        "a failed checkpoint leaves the container running"
    );
    assert!(!dir.exists(), "image directory made although nothing was dumped");
}

#[test]
fn checkpoint_of_a_stopped_or_missing_container_is_refused() {
    require!();
    let h = Hezi::new();
    let id = unique_id("cr-stopped");
    let b = Bundle::busybox(&["true"]);
    h.create(&b, &id);
    h.ok(&["start", &id]);
    h.wait_status(&id, "stopped");
    let img = TempDir::new("cr-img");
    let dir = img.path().join("images");
    let out = h.cmd(&["checkpoint", "--image-path", dir.to_str().unwrap(), &id]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(&format!("cannot checkpoint container {id}: container not running")),
        "{}",
        stderr(&out)
    );
    assert!(!dir.exists(), "image directory made for a stopped container");
    assert_eq!(h.status(&id), "stopped");

    let out = h.cmd(&["checkpoint", "--image-path", dir.to_str().unwrap(), "cr-no-such"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("container cr-no-such does not exist"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn restore_from_a_missing_image_dir_leaves_nothing() {
    require!();
    let h = Hezi::new();
    let id = unique_id("cr-noimg");
    let b = Bundle::busybox(&["true"]);
    b.write();
    let img = TempDir::new("cr-img");
    let dir = img.path().join("no-such-dir");
    let out = h.cmd(&[
        "restore",
        "-d",
        "--image-path",
        dir.to_str().unwrap(),
        "--bundle",
        b.path().to_str().unwrap(),
        &id,
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("image path {}", dir.display())) && err.contains("no hezi checkpoint"),
        "{err}"
    );
    assert_nothing_left(&h, &id, &b, None);
}

#[test]
fn restore_over_a_running_container_is_refused_and_leaves_it_alone() {
    require!();
    let h = Hezi::new();
    let id = unique_id("cr-busy");
    let b = sleeper(&h, &id);
    let pid = h.state(&id)["pid"].as_i64().unwrap();
    // An image directory naming this container, as a checkpoint with --leave-running leaves.
    let img = TempDir::new("cr-img");
    std::fs::copy(
        h.root().join(&id).join("state.json"),
        img.path().join("hezi-state.json"),
    )
    .unwrap();
    let out = h.cmd(&[
        "restore",
        "-d",
        "--image-path",
        img.path().to_str().unwrap(),
        "--bundle",
        b.path().to_str().unwrap(),
        &id,
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(&id) && stderr(&out).contains("already exists"),
        "{}",
        stderr(&out)
    );
    assert_eq!(h.status(&id), "running");
    assert_eq!(h.state(&id)["pid"].as_i64().unwrap(), pid);
}

#[test]
fn unsupported_flags_are_refused_by_name() {
    require!();
    let h = Hezi::new();
    let id = unique_id("cr-flags");
    let _b = sleeper(&h, &id);
    let out = h.cmd(&["restore", "--lsm-profile", "x", "--image-path", "/nonexistent", &id]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("--lsm-profile is not supported"),
        "{}",
        stderr(&out)
    );
    assert_eq!(h.status(&id), "running");
}

#[test]
fn bad_flag_values_are_refused_before_anything_is_made() {
    require!();
    let h = Hezi::new();
    let id = unique_id("cr-values");
    let _b = sleeper(&h, &id);
    let img = TempDir::new("cr-values-img");
    let dir = img.path().join("dump");
    let dir_arg = dir.to_str().unwrap();
    let cases: [(&[&str], &str); 6] = [
        (&["--manage-cgroups-mode", "bogus"], "soft, full, strict or ignore"),
        (&["--empty-ns", "ipc"], "only \"network\""),
        (&["--parent-path", "../nothing"], "no pre-dump"),
        (&["--lazy-pages"], "needs --page-server"),
        (&["--page-server", "nowhere"], "want ADDRESS:PORT"),
        (
            &["--lazy-pages", "--page-server", "127.0.0.1:1", "--status-fd", "99"],
            "--status-fd 99",
        ),
    ];
    for (flags, says) in cases {
        let mut args = vec!["checkpoint", "--image-path", dir_arg];
        args.extend_from_slice(flags);
        args.push(&id);
        let out = h.cmd(&args);
        assert_ne!(out.status.code(), Some(0), "{flags:?}");
        assert!(stderr(&out).contains(says), "{flags:?}: {}", stderr(&out));
        assert!(!dir.exists(), "{flags:?} made {}", dir.display());
    }
    assert_eq!(h.status(&id), "running");
    let out = h.cmd(&[
        "restore",
        "--manage-cgroups-mode",
        "x",
        "--image-path",
        dir_arg,
        "other",
    ]);
    assert!(
        stderr(&out).contains("soft, full, strict or ignore"),
        "{}",
        stderr(&out)
    );
    assert!(h.cmd(&["state", "other"]).status.code() != Some(0));
}
