//! Drop-in clients for the end-to-end tests: a private containerd (driving hezi through its own
//! runc shim, `io.containerd.runc.v2`) and the busybox OCI image archive that both the containerd
//! and the podman tests import.
//!
//! Everything a [`Containerd`] makes lives under its temp dir (root, state, sockets, the custom
//! runc root) or in its own namespace (`/run/containerd/runc/<namespace>`, the shim's default
//! runc root), so tests can run side by side and against a containerd the host may run itself.

use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{hezi_bin, mounts_under, unique_id, TempDir, BUSYBOX};

/// The image the suite builds and imports, under a full reference as a registry would give it.
pub const IMAGE: &str = "docker.io/library/hezi-busybox:latest";

/// What the image runs without a command of its own.
pub const DEFAULT_OUTPUT: &str = "hezi-busybox default command";

/// The applets the image carries (as symlinks to /bin/busybox).
const APPLETS: &[&str] = &[
    "sh", "cat", "echo", "sleep", "true", "false", "ls", "id", "kill", "ps", "env", "tty", "stat", "readlink", "test",
    "grep", "wc", "head", "mkdir", "touch", "hostname", "pwd", "ulimit", "nproc", "cut", "tr",
];

/// The runc shim's default state root: `--runc-root` absent, it uses `<this>/<namespace>`.
pub const SHIM_DEFAULT_RUNC_ROOT: &str = "/run/containerd/runc";

/// How long one client command may take before the test calls it hung.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// Whether `prog` is an executable on PATH.
pub fn on_path(prog: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(prog).is_file()))
        .unwrap_or(false)
}

/// [`crate::prerequisites`] plus the client programs `programs` (each named with its Debian
/// package). Missing ones skip the test with a message, or fail it under CI.
pub fn prerequisites_with(programs: &[(&str, &str)]) -> bool {
    if !crate::prerequisites() {
        return false;
    }
    let missing: Vec<String> = programs
        .iter()
        .filter(|(prog, _)| !on_path(prog))
        .map(|(prog, pkg)| format!("{prog} (apt-get install {pkg})"))
        .collect();
    if missing.is_empty() {
        return true;
    }
    let msg = format!("needs {}", missing.join(", "));
    if std::env::var_os("CI").is_some() {
        panic!("{msg}: CI must provide it");
    }
    eprintln!("SKIP: {msg}");
    false
}

/// The programs a containerd test needs, with their packages.
pub const CONTAINERD_PROGRAMS: &[(&str, &str)] = &[
    ("containerd", "containerd"),
    ("ctr", "containerd"),
    ("containerd-shim-runc-v2", "containerd"),
    ("tar", "tar"),
    ("sha256sum", "coreutils"),
];

/// A finished client command.
#[derive(Debug)]
pub struct Output {
    /// Exit code; -1 when killed by a signal or by the timeout.
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// Panic (with everything it printed) unless the command exited 0; returns stdout.
    pub fn ok(self, what: &str) -> String {
        assert_eq!(
            self.code, 0,
            "{what} exited {}: stdout {:?} stderr {:?}",
            self.code, self.stdout, self.stderr
        );
        self.stdout
    }
}

/// Run `cmd` with stdin from /dev/null and stdout/stderr in files under `io`, never pipes: a
/// container's processes may inherit them, and a pipe's reader would then wait for the container.
/// A command that runs past [`COMMAND_TIMEOUT`] is killed and reported with code -1.
pub fn run_captured(mut cmd: Command, io: &Path) -> Output {
    let n = unique_id("cmd");
    let (out_path, err_path) = (io.join(format!("{n}.out")), io.join(format!("{n}.err")));
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).expect("create stdout file"))
        .stderr(std::fs::File::create(&err_path).expect("create stderr file"))
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let code = wait_with_timeout(&mut child, COMMAND_TIMEOUT);
    let read = |p: &Path| String::from_utf8_lossy(&std::fs::read(p).unwrap_or_default()).into_owned();
    let mut stderr = read(&err_path);
    if code.is_none() {
        stderr.push_str(&format!("\n[killed after {COMMAND_TIMEOUT:?}: {cmd:?}]"));
    }
    Output {
        code: code.unwrap_or(-1),
        stdout: read(&out_path),
        stderr,
    }
}

/// Wait for `child` up to `limit`: its exit code, or None when it was still running then (it
/// is killed) or died by a signal.
fn wait_with_timeout(child: &mut Child, limit: Duration) -> Option<i32> {
    let deadline = Instant::now() + limit;
    loop {
        match child.try_wait().expect("wait for a client command") {
            Some(status) => return status.code(),
            None if Instant::now() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// Run `cmd` with a new pseudo-terminal as its stdin, stdout and stderr (what `ctr run -t` and
/// `podman run -t` insist on); returns its exit code and everything it wrote to the terminal.
pub fn run_in_pty(mut cmd: Command) -> (i32, String) {
    let (master, slave) = open_pty();
    let dup = |fd: &OwnedFd| Stdio::from(fd.try_clone().expect("dup the pty slave"));
    let mut child = cmd
        .stdin(dup(&slave))
        .stdout(dup(&slave))
        .stderr(dup(&slave))
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let shown = format!("{cmd:?}");
    // Only the child may keep the slave open (the Command holds copies too): reading the master
    // then ends (EIO) when it is done.
    drop(cmd);
    drop(slave);
    let reader = std::thread::spawn(move || {
        let mut master = master;
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match master.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
        out
    });
    let code = wait_with_timeout(&mut child, COMMAND_TIMEOUT).unwrap_or(-1);
    // The reader ends once the last slave fd closes; a container that kept it (a bug) would hang
    // this join, so give it a moment and report rather than wait forever.
    let done = crate::wait_until(10, || reader.is_finished());
    assert!(done, "the terminal stayed open after {shown} exited");
    let out = reader.join().expect("pty reader");
    (code, String::from_utf8_lossy(&out).into_owned())
}

/// A new pseudo-terminal pair, both ends close-on-exec: the test runs many threads, and a
/// program another thread starts must not inherit (and hold open) either end.
fn open_pty() -> (std::fs::File, OwnedFd) {
    use nix::fcntl::OFlag;
    let master = nix::pty::posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC).expect("posix_openpt");
    nix::pty::grantpt(&master).expect("grantpt");
    nix::pty::unlockpt(&master).expect("unlockpt");
    let name = nix::pty::ptsname_r(&master).expect("ptsname");
    let slave = nix::fcntl::open(
        name.as_str(),
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .expect("open the pty slave");
    (std::fs::File::from(OwnedFd::from(master)), slave)
}

/// Write the busybox image as an OCI image layout in a tar archive (what `ctr images import`
/// and `podman load` both take) under `dir`; returns the archive's path. One uncompressed layer:
/// /bin/busybox with applet symlinks, /etc/passwd and /etc/group, empty /proc /sys /dev /tmp.
pub fn busybox_image_archive(dir: &Path) -> PathBuf {
    let rootfs = dir.join("image-rootfs");
    let layout = dir.join("image-layout");
    let blobs = layout.join("blobs/sha256");
    for d in ["bin", "etc", "proc", "sys", "dev", "tmp"] {
        std::fs::create_dir_all(rootfs.join(d)).expect("mkdir in the image rootfs");
    }
    std::fs::create_dir_all(&blobs).expect("mkdir blobs");
    std::fs::copy(BUSYBOX, rootfs.join("bin/busybox")).expect("copy busybox");
    for a in APPLETS {
        std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(a)).expect("applet symlink");
    }
    std::fs::write(
        rootfs.join("etc/passwd"),
        "root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n",
    )
    .expect("write passwd");
    std::fs::write(rootfs.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n").expect("write group");

    let layer = dir.join("layer.tar");
    tar(
        &["--numeric-owner", "--owner=0", "--group=0", "--sort=name", "-C"],
        &rootfs,
        &layer,
    );
    let (layer_digest, layer_size) = add_blob(&blobs, &std::fs::read(&layer).expect("read layer"));
    let config = serde_json::json!({
        "architecture": go_arch(),
        "os": "linux",
        "config": {
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Cmd": ["sh", "-c", format!("echo {DEFAULT_OUTPUT}")],
            "WorkingDir": "/",
        },
        "rootfs": { "type": "layers", "diff_ids": [layer_digest] },
    });
    let (config_digest, config_size) = add_blob(&blobs, config.to_string().as_bytes());
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": { "mediaType": "application/vnd.oci.image.config.v1+json",
                    "digest": config_digest, "size": config_size },
        "layers": [{ "mediaType": "application/vnd.oci.image.layer.v1.tar",
                     "digest": layer_digest, "size": layer_size }],
    });
    let (manifest_digest, manifest_size) = add_blob(&blobs, manifest.to_string().as_bytes());
    // containerd names an imported image from io.containerd.image.name, podman from the OCI
    // ref.name: both carry the full reference.
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest, "size": manifest_size,
            "platform": { "architecture": go_arch(), "os": "linux" },
            "annotations": { "io.containerd.image.name": IMAGE,
                             "org.opencontainers.image.ref.name": IMAGE },
        }],
    });
    std::fs::write(layout.join("index.json"), index.to_string()).expect("write index.json");
    std::fs::write(layout.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).expect("write oci-layout");
    let archive = dir.join("hezi-busybox.oci.tar");
    tar(&["-C"], &layout, &archive);
    archive
}

/// `tar <opts> <dir> -cf <out> .`
fn tar(opts: &[&str], dir: &Path, out: &Path) {
    let status = Command::new("tar")
        .args(opts)
        .arg(dir)
        .arg("-cf")
        .arg(out)
        .arg(".")
        .status()
        .expect("run tar");
    assert!(status.success(), "tar of {} failed: {status}", dir.display());
}

/// Store `data` as a blob; its digest (`sha256:...`) and size.
fn add_blob(blobs: &Path, data: &[u8]) -> (String, usize) {
    let tmp = blobs.join("incoming");
    std::fs::write(&tmp, data).expect("write blob");
    let out = Command::new("sha256sum").arg(&tmp).output().expect("run sha256sum");
    assert!(out.status.success(), "sha256sum failed");
    let text = String::from_utf8_lossy(&out.stdout);
    let hex = text
        .split_whitespace()
        .next()
        .expect("sha256sum prints the digest")
        .to_string();
    std::fs::rename(&tmp, blobs.join(&hex)).expect("name blob by digest");
    (format!("sha256:{hex}"), data.len())
}

/// This machine's architecture as OCI (Go) names it.
fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

/// A private containerd: its own config, root, state and sockets under a temp dir, its own
/// namespace, killed and cleaned on drop (tasks, containers, snapshots, mounts, shims).
pub struct Containerd {
    dir: TempDir,
    io: TempDir,
    child: Option<Child>,
    namespace: String,
    /// Held for the instance's life: one private containerd (and its shims) at a time per test
    /// binary. The tests look for their processes host-wide, and parallel instances on a busy
    /// 2-core CI machine made one of them fail intermittently.
    _serial: std::sync::MutexGuard<'static, ()>,
}

static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

impl Containerd {
    /// Start containerd and wait until it answers on its socket.
    pub fn start() -> Containerd {
        // A test that panicked while holding it poisons it; the next one may still run.
        let serial = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
        let dir = TempDir::new("containerd");
        let io = TempDir::new("ctr-io");
        let namespace = unique_id("hezi");
        let d = dir.path();
        let config = format!(
            r#"version = 2
root = "{root}"
state = "{state}"
plugin_dir = "{d}/plugins"
# The CRI plugin wants CNI and a sandbox image; ctr needs neither.
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[grpc]
  address = "{d}/containerd.sock"
[ttrpc]
  address = "{d}/containerd.sock.ttrpc"
[debug]
  address = "{d}/debug.sock"
  level = "debug"
[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "{d}/opt"
[plugins."io.containerd.runtime.v1.linux"]
  runtime_root = "{d}/v1-runtime"

# hezi as a runtime the way a CRI client selects it (containerd 1.6 reads this table only in the
# CRI plugin; ctr passes the same runc shim options, BinaryName and Root, with --runc-binary and
# --runc-root, which the tests use).
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.hezi-runc]
  runtime_type = "io.containerd.runc.v2"
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.hezi-runc.options]
  BinaryName = "{hezi}"
  Root = "{runc_root}"
"#,
            root = d.join("root").display(),
            state = d.join("state").display(),
            d = d.display(),
            hezi = hezi_bin().display(),
            runc_root = d.join("hezi-runc-root").display(),
        );
        std::fs::write(d.join("config.toml"), config).expect("write config.toml");
        let log = std::fs::File::create(d.join("containerd.log")).expect("create containerd.log");
        let child = Command::new("containerd")
            .arg("--config")
            .arg(d.join("config.toml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup log fd"))
            .stderr(log)
            .spawn()
            .expect("spawn containerd");
        let mut c = Containerd {
            dir,
            io,
            child: Some(child),
            namespace,
            _serial: serial,
        };
        let up = crate::wait_until(30, || c.address().exists() && c.ctr(&["version"]).code == 0);
        if !up {
            let exited = c.child.as_mut().and_then(|ch| ch.try_wait().ok().flatten());
            panic!("containerd did not come up (exited: {exited:?}); log:\n{}", c.log());
        }
        c
    }

    pub fn address(&self) -> PathBuf {
        self.dir.path().join("containerd.sock")
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The `Root` option of the runtime that has one (`ctr run --runc-root`).
    pub fn custom_root_option(&self) -> PathBuf {
        self.dir.path().join("hezi-runc-root")
    }

    /// The `--root` hezi gets with that option: the shim adds the namespace to `Root`.
    pub fn custom_runc_root(&self) -> PathBuf {
        self.custom_root_option().join(&self.namespace)
    }

    /// The `--root` hezi gets without a `Root` option: shared with other containerds, but ours
    /// is the only one using this namespace.
    pub fn default_runc_root(&self) -> PathBuf {
        Path::new(SHIM_DEFAULT_RUNC_ROOT).join(&self.namespace)
    }

    /// containerd's own log (debug level), for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("containerd.log")).unwrap_or_default()
    }

    /// The task bundle directory the shim gives the runtime (`create --bundle`).
    pub fn bundle_dir(&self, id: &str) -> PathBuf {
        self.dir
            .path()
            .join("state/io.containerd.runtime.v2.task")
            .join(&self.namespace)
            .join(id)
    }

    /// `ctr` with this instance's address and namespace.
    pub fn ctr_command(&self, args: &[&str]) -> Command {
        let mut c = Command::new("ctr");
        c.arg("--address")
            .arg(self.address())
            .args(["--namespace", &self.namespace])
            .args(args);
        c
    }

    /// Run `ctr ARGS`: exit code, stdout, stderr (files, never pipes; killed after a minute).
    pub fn ctr(&self, args: &[&str]) -> Output {
        run_captured(self.ctr_command(args), self.io.path())
    }

    /// Import the suite's busybox image (built once per instance); returns its reference.
    pub fn import_busybox(&self) -> &'static str {
        let archive = busybox_image_archive(self.dir.path());
        let archive = archive.to_str().expect("utf-8 path");
        self.ctr(&["images", "import", "--all-platforms", archive])
            .ok("ctr images import");
        IMAGE
    }

    /// Ids of the tasks containerd knows in this namespace.
    pub fn task_ids(&self) -> Vec<String> {
        self.ctr(&["tasks", "ls", "-q"])
            .stdout
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// `(pid, status)` of task `id` from `ctr task ls`, if listed.
    pub fn task_status(&self, id: &str) -> Option<(String, String)> {
        let out = self.ctr(&["tasks", "ls"]).stdout;
        out.lines().skip(1).find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.first() == Some(&id) && f.len() >= 3).then(|| (f[1].to_string(), f[2].to_string()))
        })
    }

    /// Wait (up to 20 s) until `ctr task ls` shows task `id` with `status`.
    pub fn wait_task_status(&self, id: &str, status: &str) {
        let reached = crate::wait_until(20, || self.task_status(id).is_some_and(|(_, s)| s == status));
        assert!(
            reached,
            "task {id} never became {status} (now {:?})",
            self.task_status(id)
        );
    }

    /// Container state directories left in either runc root (hezi's `--root` as the shim
    /// passes it): after a test's containers are gone, there must be none.
    pub fn runc_state_left(&self) -> Vec<PathBuf> {
        [self.default_runc_root(), self.custom_runc_root()]
            .iter()
            .filter_map(|r| std::fs::read_dir(r).ok())
            .flat_map(|entries| entries.flatten().map(|e| e.path()))
            .collect()
    }

    /// Shim processes serving this containerd (their command line names its address).
    fn shim_pids(&self) -> Vec<i32> {
        let addr = self.address().to_string_lossy().into_owned();
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
            .filter(|pid| {
                std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
                    let c = String::from_utf8_lossy(&c);
                    c.contains("containerd-shim") && c.contains(&addr)
                })
            })
            .collect()
    }

    /// Kill and delete every task and container this instance has (each step best effort).
    fn remove_everything(&self) {
        for id in self.task_ids() {
            let _ = self.ctr(&["tasks", "kill", "--all", "--signal", "SIGKILL", &id]);
            let _ = self.ctr(&["tasks", "delete", "--force", &id]);
        }
        let containers = self.ctr(&["containers", "ls", "-q"]).stdout;
        for id in containers.lines() {
            let _ = self.ctr(&["containers", "delete", id]);
        }
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        self.remove_everything();
        if let Some(mut child) = self.child.take() {
            // SAFETY: kill(2) on the pid of our own child, which we have not yet reaped.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            // Killed with SIGKILL by the wait when it has not exited in time.
            wait_with_timeout(&mut child, Duration::from_secs(10));
        }
        for pid in self.shim_pids() {
            // SAFETY: kill(2) has no memory effects; the pid names a shim of this instance.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        // Rootfs mounts of tasks a failed test left behind, innermost first.
        let mut mounts = mounts_under(self.dir.path());
        mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in mounts {
            let _ = nix::mount::umount2(m.as_str(), nix::mount::MntFlags::MNT_DETACH);
        }
        let _ = std::fs::remove_dir_all(self.default_runc_root());
    }
}
