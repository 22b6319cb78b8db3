//! A private containerd for the shim's end-to-end tests: its own root, state and sockets in a
//! temp dir, `containerd-shim-hezi-v2` from this build on its PATH, an image built here from
//! the host's busybox-static, and everything (containers, shims, mounts, files) cleaned up on
//! Drop.

#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use containerd_bridge::demo::Layer;
use containerd_bridge::digest::Digest;

pub const RUNTIME: &str = "io.containerd.hezi.v2";
pub const IMAGE: &str = "hezi.test/busybox:latest";
pub const NS: &str = "hezi-shim-test";
const BUSYBOX: &str = "/bin/busybox";

static SEQ: AtomicUsize = AtomicUsize::new(0);

/// Why the tests cannot run here, if they cannot. Under CI a missing prerequisite is a failure.
pub fn skip_reason() -> Option<String> {
    let reason = if !nix::unistd::geteuid().is_root() {
        Some("needs root".to_string())
    } else if which("containerd").is_none() || which("ctr").is_none() {
        Some("containerd and ctr not installed (apt-get install containerd)".to_string())
    } else if !Path::new(BUSYBOX).exists() {
        Some(format!("{BUSYBOX} missing (apt-get install busybox-static)"))
    } else {
        None
    };
    if let Some(r) = &reason {
        if std::env::var_os("CI").is_some() {
            panic!("containerd shim tests cannot run under CI: {r}");
        }
        eprintln!("skipped: {r}");
    }
    reason
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(name))
        .find(|p| p.exists())
}

/// The directory holding the shim binary: target/<profile>/, or that of `HEZI_SHIM_BIN` (the
/// static release build, which scripts/test.sh runs these tests against too).
fn shim_dir() -> PathBuf {
    let bin = std::env::var_os("HEZI_SHIM_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_containerd-shim-hezi-v2")));
    bin.parent().map(Path::to_path_buf).unwrap_or_default()
}

pub struct Containerd {
    pub dir: PathBuf,
    child: Option<Child>,
}

impl Containerd {
    /// Start a private containerd with the test image imported; `None` when the tests must be
    /// skipped (the reason is printed).
    pub fn start() -> Option<Containerd> {
        skip_reason().is_none().then(|| {
            let n = SEQ.fetch_add(1, Ordering::SeqCst);
            let dir = PathBuf::from(format!("/tmp/hezi-shim-{}-{n}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("create the test dir");
            std::fs::write(dir.join("config.toml"), config(&dir)).expect("write config.toml");
            let mut c = Containerd { dir, child: None };
            c.launch();
            c.import_image();
            c
        })
    }

    pub fn address(&self) -> String {
        self.dir.join("containerd.sock").display().to_string()
    }

    fn launch(&mut self) {
        let path = format!(
            "{}:{}",
            shim_dir().display(),
            std::env::var("PATH").unwrap_or_else(|_| "/usr/sbin:/usr/bin:/sbin:/bin".into())
        );
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("containerd.log"))
            .expect("open containerd.log");
        let err = log.try_clone().expect("dup containerd.log");
        let child = Command::new("containerd")
            .arg("--config")
            .arg(self.dir.join("config.toml"))
            .env("PATH", path)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .expect("start containerd");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if self.try_ctr(&["version"]).status.success() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("containerd did not come up; log:\n{}", self.log());
    }

    /// Stop containerd (SIGTERM, as systemd would) and start it again on the same state.
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = nix::unistd::Pid::from_raw(child.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("containerd.log")).unwrap_or_default()
    }

    pub fn try_ctr(&self, args: &[&str]) -> Output {
        Command::new("ctr")
            .args(["--address", &self.address(), "--namespace", NS])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run ctr")
    }

    /// Run ctr; panics with its output (and containerd's log) if it fails.
    pub fn ctr(&self, args: &[&str]) -> Output {
        let out = self.try_ctr(args);
        if !out.status.success() {
            panic!(
                "ctr {args:?} failed ({}):\nstdout: {}\nstderr: {}\ncontainerd log (tail):\n{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                tail(&self.log(), 40)
            );
        }
        out
    }

    pub fn stdout(&self, args: &[&str]) -> String {
        String::from_utf8_lossy(&self.ctr(args).stdout).into_owned()
    }

    fn import_image(&self) {
        let tar = self.dir.join("image.tar");
        std::fs::write(&tar, oci_archive()).expect("write the image archive");
        self.ctr(&["images", "import", tar.to_str().expect("utf-8 path")]);
    }

    /// Pids of the shims serving this containerd (their command line names our socket).
    pub fn shim_pids(&self) -> Vec<i32> {
        let address = self.address();
        let mut found = Vec::new();
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
            let is_shim = args.first().is_some_and(|a| a.ends_with(b"containerd-shim-hezi-v2"));
            if is_shim && args.contains(&address.as_bytes()) {
                found.push((pid, parent_of(pid)));
            }
        }
        // A shim's forks (its create/exec helper, a container's init before it execs) show the
        // shim's command line for a moment: only shims whose parent is no shim are shims.
        let shims: Vec<i32> = found.iter().map(|(pid, _)| *pid).collect();
        found
            .into_iter()
            .filter(|(_, parent)| !parent.is_some_and(|p| shims.contains(&p)))
            .map(|(pid, _)| pid)
            .collect()
    }

    /// The STATUS column of `ctr tasks ls` for `id`.
    pub fn task_status(&self, id: &str) -> Option<String> {
        self.stdout(&["tasks", "ls"])
            .lines()
            .find(|l| l.split_whitespace().next() == Some(id))
            .and_then(|l| l.split_whitespace().nth(2).map(str::to_string))
    }

    /// Kill the task, wait until it no longer runs, delete it and its container.
    pub fn remove(&self, id: &str) {
        let _ = self.try_ctr(&["tasks", "kill", "-s", "SIGKILL", id]);
        wait_for("the task to stop", Duration::from_secs(10), || {
            self.task_status(id).as_deref() != Some("RUNNING")
        });
        self.ctr(&["tasks", "delete", id]);
        self.ctr(&["containers", "delete", id]);
    }

    /// Kill and delete whatever tasks and containers are left.
    pub fn clean_containers(&self) {
        let list = self.try_ctr(&["containers", "list", "-q"]);
        for id in String::from_utf8_lossy(&list.stdout).lines() {
            let _ = self.try_ctr(&["tasks", "kill", "-a", "-s", "SIGKILL", id]);
            let _ = self.try_ctr(&["tasks", "delete", "-f", id]);
            let _ = self.try_ctr(&["containers", "delete", id]);
        }
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        if self.child.is_some() {
            self.clean_containers();
        }
        self.stop();
        // Shims that outlived their containers (a failed test) are ours: end them by pid.
        for pid in self.shim_pids() {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
        }
        unmount_below(&self.dir);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn unmount_below(dir: &Path) {
    // Whole path components only: a sibling test's dir that shares this one's name as a prefix
    // (/tmp/x-1 and /tmp/x-12) keeps its mounts.
    let dir = dir.display().to_string();
    let below = format!("{}/", dir.trim_end_matches('/'));
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut targets: Vec<&str> = mounts
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| *m == dir || m.starts_with(&below))
        .collect();
    // Deepest first.
    targets.sort_by_key(|t| std::cmp::Reverse(t.len()));
    for t in targets {
        let _ = nix::mount::umount2(t, nix::mount::MntFlags::MNT_DETACH);
    }
}

pub fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn config(dir: &Path) -> String {
    let d = dir.display();
    // The CRI plugin is not needed and slows start-up; hezi's tests use ctr only.
    format!(
        r#"version = 2
root = "{d}/root"
state = "{d}/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[grpc]
  address = "{d}/containerd.sock"

[ttrpc]
  address = "{d}/containerd.sock.ttrpc"

[debug]
  address = "{d}/debug.sock"
  level = "debug"
"#
    )
}

/// An OCI image layout, tarred: one layer with busybox, its applets, /etc/passwd and /etc/group;
/// Cmd `sh -c 'echo hello from hezi'`.
pub fn oci_archive() -> Vec<u8> {
    let busybox = std::fs::read(BUSYBOX).expect("read busybox");
    let mut l = Layer::default();
    for (d, mode) in [
        ("bin", 0o755),
        ("dev", 0o755),
        ("etc", 0o755),
        ("proc", 0o555),
        ("root", 0o700),
        ("sys", 0o555),
        ("tmp", 0o1777),
    ] {
        l.dir(d, mode).expect("layer dir");
    }
    l.file("bin/busybox", 0o755, &busybox).expect("layer busybox");
    for applet in [
        "sh", "cat", "echo", "ls", "id", "env", "sleep", "true", "false", "ps", "hostname", "grep", "wc", "head",
        "stty", "tty", "test", "kill", "yes",
    ] {
        l.symlink(&format!("bin/{applet}"), "busybox").expect("layer applet");
    }
    l.file("etc/passwd", 0o644, b"root:x:0:0:root:/root:/bin/sh\n")
        .expect("layer passwd");
    l.file("etc/group", 0o644, b"root:x:0:\n").expect("layer group");
    let layer = l.finish().expect("layer tar");
    let layer_d = Digest::of(&layer);
    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Cmd": ["sh", "-c", "echo hello from hezi"],
            "WorkingDir": "/"
        },
        "rootfs": {"type": "layers", "diff_ids": [layer_d.to_string()]}
    })
    .to_string()
    .into_bytes();
    let config_d = Digest::of(&config);
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_d.to_string(), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_d.to_string(), "size": layer.len()}]
    })
    .to_string()
    .into_bytes();
    let manifest_d = Digest::of(&manifest);
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_d.to_string(),
            "size": manifest.len(),
            "annotations": {"io.containerd.image.name": IMAGE, "org.opencontainers.image.ref.name": "latest"},
            "platform": {"architecture": "amd64", "os": "linux"}
        }]
    })
    .to_string()
    .into_bytes();
    let mut a = Layer::default();
    a.file("oci-layout", 0o644, br#"{"imageLayoutVersion":"1.0.0"}"#)
        .expect("archive");
    a.file("index.json", 0o644, &index).expect("archive");
    a.dir("blobs", 0o755).expect("archive");
    a.dir("blobs/sha256", 0o755).expect("archive");
    for (d, data) in [(&layer_d, &layer), (&config_d, &config), (&manifest_d, &manifest)] {
        a.file(&format!("blobs/sha256/{}", d.hex()), 0o644, data)
            .expect("archive");
    }
    a.finish().expect("archive tar")
}

/// A unique container id for this test process.
pub fn id(name: &str) -> String {
    format!("{name}-{}-{}", std::process::id(), SEQ.fetch_add(1, Ordering::SeqCst))
}

/// Make `path` executable (a logger script for binary:// tests).
pub fn make_executable(path: &Path) {
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755));
}

/// Poll `f` until it holds; panics naming `what` after `timeout`.
pub fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The PPid line of /proc/PID/status.
fn parent_of(pid: i32) -> Option<i32> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("PPid:"))
        .and_then(|v| v.trim().parse().ok())
}
