//! hezi as the OCI runtime of a rootless podman (4.3): podman run as the unprivileged test user
//! (tests/src/rootless.rs) with `--runtime` hezi. podman runs conmon and hezi inside its own
//! user namespace (made with newuidmap from /etc/subuid), where hezi is root of that namespace
//! and not the host's: hezi's rootless rules (no cgroup the user may not make, its state under
//! XDG_RUNTIME_DIR) apply there.
//!
//! Storage is vfs under the user's private directory, cgroupfs, file events, no network.

use std::path::Path;
use std::process::Command;

use hezi_e2e::containerd::{busybox_image_archive, prerequisites_with, run_captured, Output, DEFAULT_OUTPUT, IMAGE};
use hezi_e2e::rootless::{user, user_hezi_bin, User};
use hezi_e2e::{unique_id, wait_until, TempDir};

/// Within the limits a user may set itself (podman asks for 1048576 otherwise).
const ULIMITS: &[&str] = &["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"];

struct RootlessPodman {
    user: User,
    /// The user's: storage, run root, XDG_RUNTIME_DIR, containers.conf.
    dir: TempDir,
    io: TempDir,
}

impl RootlessPodman {
    fn setup() -> Option<RootlessPodman> {
        if !prerequisites_with(&[("podman", "podman"), ("conmon", "conmon"), ("newuidmap", "uidmap")]) {
            return None;
        }
        let user = user()?;
        let p = RootlessPodman {
            dir: user.dir("podman-rootless"),
            io: TempDir::new("podman-rootless-io"),
            user,
        };
        let conf = p.dir.path().join("containers.conf");
        std::fs::write(
            &conf,
            "[engine]\nruntime_supports_json = [\"hezi\"]\nevents_logger = \"file\"\ncgroup_manager = \"cgroupfs\"\n",
        )
        .expect("write containers.conf");
        std::os::unix::fs::chown(&conf, Some(p.user.uid), Some(p.user.gid)).expect("chown containers.conf");
        // The archive in a directory the user can read (the io dir is root's, mode 0755).
        let archive = busybox_image_archive(p.io.path());
        let out = p.podman(&["load", "--input", archive.to_str().expect("utf-8 path")]);
        assert!(
            out.stdout.contains(IMAGE) || out.stderr.contains(IMAGE),
            "podman load: {out:?}"
        );
        Some(p)
    }

    fn command(&self, args: &[&str]) -> Command {
        let d = self.dir.path();
        let s = |p: &Path| p.to_str().expect("utf-8 path").to_string();
        let (root, runroot, tmp) = (s(&d.join("storage")), s(&d.join("run")), s(&d.join("tmp")));
        let hezi = s(&user_hezi_bin());
        let mut full: Vec<&str> = vec![
            "--root",
            &root,
            "--runroot",
            &runroot,
            "--tmpdir",
            &tmp,
            "--storage-driver",
            "vfs",
            "--cgroup-manager",
            "cgroupfs",
            "--events-backend",
            "file",
            "--runtime",
            &hezi,
        ];
        full.extend_from_slice(args);
        let mut c = self.user.command(&d.join("xdg"), Path::new("podman"), &full);
        c.env("CONTAINERS_CONF", d.join("containers.conf"));
        c
    }

    fn podman(&self, args: &[&str]) -> Output {
        let xdg = self.dir.path().join("xdg");
        if !xdg.exists() {
            std::fs::create_dir(&xdg).expect("mkdir XDG_RUNTIME_DIR");
            std::os::unix::fs::chown(&xdg, Some(self.user.uid), Some(self.user.gid)).expect("chown XDG_RUNTIME_DIR");
        }
        run_captured(self.command(args), self.io.path())
    }

    fn run(&self, extra: &[&str], cmd: &[&str]) -> Output {
        let mut args = vec!["run", "--network", "none"];
        args.extend_from_slice(ULIMITS);
        args.extend_from_slice(extra);
        args.push(IMAGE);
        args.extend_from_slice(cmd);
        self.podman(&args)
    }
}

impl Drop for RootlessPodman {
    fn drop(&mut self) {
        let _ = self.podman(&["rm", "--all", "--force", "--time", "0"]);
        // vfs layers belong to ids of the user's ranges: remove them inside its namespace.
        let _ = self.podman(&["system", "reset", "--force"]);
    }
}

#[test]
fn rootless_podman_run_exec_stop_rm() {
    let Some(p) = RootlessPodman::setup() else { return };
    let out = p.run(&["--rm"], &[]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.stdout.trim(), DEFAULT_OUTPUT, "{out:?}");

    // Root in the container is the user on the host (podman's own user namespace maps it).
    let out = p.run(&["--rm"], &["sh", "-c", "id -u; cat /proc/self/uid_map"]);
    assert_eq!(out.code, 0, "{out:?}");
    let uid = p.user.uid.to_string();
    assert!(out.stdout.starts_with("0\n") && out.stdout.contains(&uid), "{out:?}");

    let name = unique_id("rl-pod");
    let out = p.run(&["-d", "--name", &name], &["sleep", "300"]);
    assert_eq!(out.code, 0, "{out:?}");
    let out = p.podman(&["exec", &name, "sh", "-c", "echo in-$(hostname)"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.starts_with("in-"), "{out:?}");
    let out = p.podman(&["stop", "--time", "1", &name]);
    assert_eq!(out.code, 0, "{out:?}");
    let stopped = wait_until(20, || {
        p.podman(&["inspect", "--format", "{{.State.Status}}", &name])
            .stdout
            .trim()
            == "exited"
    });
    assert!(stopped, "exited after stop");
    let out = p.podman(&["rm", &name]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(!p.podman(&["ps", "-a", "--format", "{{.Names}}"]).stdout.contains(&name));
}

#[test]
fn rootless_podman_userns_keep_id() {
    let Some(p) = RootlessPodman::setup() else { return };
    // keep-id: the user's own uid inside, through a user namespace of the container's own
    // with several ranges (written by hezi from podman's namespace).
    let out = p.run(
        &["--rm", "--userns=keep-id"],
        &["sh", "-c", "id -u; wc -l < /proc/self/uid_map"],
    );
    assert_eq!(out.code, 0, "{out:?}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.first().copied(), Some(p.user.uid.to_string().as_str()), "{out:?}");
    let ranges: u32 = lines.get(1).and_then(|l| l.trim().parse().ok()).unwrap_or(0);
    assert!(ranges >= 2, "several ranges mapped: {out:?}");
}
