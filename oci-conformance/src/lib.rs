//! The harness of the OCI runtime-spec conformance suite: the runtime binary under test, busybox
//! bundles with a fixed spec-conformant config.json, a private `--root` per test, and cleanup.
//!
//! The suite drives any runtime through runc's command line (`--root DIR create --bundle B ID`,
//! `start`, `state`, `kill`, `delete`, `run`), so the same tests run against hezi, runc and crun.
//! `RUNTIME=/path/to/runtime` picks the binary; without it the workspace's `hezi` is used.
//!
//! Every test starts real containers, so it needs root and `/bin/busybox`. Without them a test
//! prints why and returns, except under CI (`CI` set), where a missing prerequisite panics: CI
//! installs everything, so a skip there would hide a broken setup.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

// Runtime-agnostic pieces shared with hezi's own end-to-end tests.
pub use hezi_e2e::{alive, busybox_rootfs, next_number, ns_link, unique_id, wait_until, TempDir, BUSYBOX};

/// The capability set of the template (Docker's default set): enough for busybox, far from all.
pub const DEFAULT_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// The runtime under test: `RUNTIME`, or the workspace's own `hezi`.
pub fn runtime_bin() -> PathBuf {
    std::env::var_os("RUNTIME")
        .map(PathBuf::from)
        .unwrap_or_else(hezi_e2e::hezi_bin)
}

/// Returns false (after saying why) when this test cannot run here: not root, no busybox, or no
/// runtime binary. Under CI a missing prerequisite panics instead.
pub fn prerequisites() -> bool {
    hezi_e2e::prerequisites_for(&runtime_bin(), "cargo build -p hezi, or set RUNTIME")
}

/// Skip the calling test (with a message) unless [`prerequisites`] hold.
#[macro_export]
macro_rules! require {
    () => {
        if !$crate::prerequisites() {
            return;
        }
    };
}

/// The fixed, minimal, spec-conformant config.json of every bundle, running `args`.
///
/// It declares `ociVersion` 1.0.2: it uses nothing newer, and runtimes refuse configs newer than
/// the spec they implement (crun 1.8 stops at 1.1). Tests of later fields still add them: a
/// runtime MUST ignore properties it does not know, so such a test fails on the feature itself.
pub fn base_config(args: &[&str]) -> Value {
    let mount = |dest: &str, typ: &str, src: &str, opts: &[&str]| json!({ "destination": dest, "type": typ, "source": src, "options": opts });
    json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": { "uid": 0, "gid": 0 },
            "args": args,
            "env": ["PATH=/bin:/sbin:/usr/bin:/usr/sbin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {
                "bounding": DEFAULT_CAPS,
                "effective": DEFAULT_CAPS,
                "permitted": DEFAULT_CAPS
            },
            "rlimits": [{ "type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024 }],
            "noNewPrivileges": true
        },
        "root": { "path": "rootfs", "readonly": false },
        "hostname": "conformance",
        "mounts": [
            mount("/proc", "proc", "proc", &[]),
            mount("/dev", "tmpfs", "tmpfs", &["nosuid", "strictatime", "mode=755", "size=65536k"]),
            mount("/dev/pts", "devpts", "devpts",
                &["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]),
            mount("/dev/shm", "tmpfs", "shm", &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]),
            mount("/dev/mqueue", "mqueue", "mqueue", &["nosuid", "noexec", "nodev"]),
            mount("/sys", "sysfs", "sysfs", &["nosuid", "noexec", "nodev", "ro"]),
        ],
        "linux": {
            "namespaces": [
                { "type": "pid" }, { "type": "network" }, { "type": "ipc" },
                { "type": "uts" }, { "type": "mount" }
            ]
        }
    })
}

/// A bundle: `rootfs/` with busybox and its applets, and a config.json from [`base_config`].
/// `path`, `rootfs`, `write`, `linux`, `namespaces` and `config` come from the e2e harness's
/// bundle; what is here is what the conformance tests add.
pub struct Bundle(hezi_e2e::Bundle);

impl std::ops::Deref for Bundle {
    type Target = hezi_e2e::Bundle;
    fn deref(&self) -> &hezi_e2e::Bundle {
        &self.0
    }
}

impl std::ops::DerefMut for Bundle {
    fn deref_mut(&mut self) -> &mut hezi_e2e::Bundle {
        &mut self.0
    }
}

impl Bundle {
    /// A busybox bundle whose process runs `args`.
    pub fn new(args: &[&str]) -> Bundle {
        Bundle(hezi_e2e::Bundle::with_config(base_config(args)))
    }

    /// A bundle running `sh -c script`.
    pub fn sh(script: &str) -> Bundle {
        Bundle::new(&["sh", "-c", script])
    }

    pub fn path_str(&self) -> &str {
        self.path().to_str().expect("utf-8 bundle path")
    }

    /// Append a mount entry.
    pub fn add_mount(&mut self, mount: Value) {
        self.config["mounts"].as_array_mut().expect("mounts array").push(mount);
    }

    /// Append a hook of `kind` (prestart, createRuntime, ...).
    pub fn add_hook(&mut self, kind: &str, hook: Value) {
        if self.config.get("hooks").is_none() {
            self.config["hooks"] = json!({});
        }
        let hooks = &mut self.config["hooks"];
        if hooks.get(kind).is_none() {
            hooks[kind] = json!([]);
        }
        hooks[kind].as_array_mut().expect("hook array").push(hook);
    }

    /// Write an executable `#!/bin/sh` script at `rel` under the bundle; returns its absolute path.
    pub fn script(&self, rel: &str, body: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = self.path().join(rel);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("mkdir for script");
        }
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("write script");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod script");
        path
    }

    /// Read a file the container (or a hook) wrote, relative to the bundle; "" when absent.
    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path().join(rel)).unwrap_or_default()
    }
}

/// What one runtime command did.
#[derive(Debug)]
pub struct Out {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

/// One test's view of the runtime: a private state root (`--root`), files for command output, and
/// the ids it created, each force-deleted on drop so a failing test leaks nothing.
pub struct Runtime {
    root: TempDir,
    io: TempDir,
    /// Container id → the file that holds the stdout of its `create` (its init's stdout).
    created: RefCell<HashMap<String, PathBuf>>,
}

impl Default for Runtime {
    fn default() -> Self {
        Self::new()
    }
}

impl Runtime {
    pub fn new() -> Runtime {
        Runtime {
            root: TempDir::new("root"),
            io: TempDir::new("io"),
            created: RefCell::default(),
        }
    }

    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// `RUNTIME --root <root> <args>` as a Command (stdin from /dev/null).
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(runtime_bin());
        c.arg("--root").arg(self.root.path()).args(args);
        c.stdin(Stdio::null());
        c
    }

    /// Run a prepared command, its stdout and stderr going to files (never pipes: a created
    /// container's init inherits them, and a pipe would not see EOF until the container exits).
    pub fn exec(&self, mut command: Command) -> (Out, PathBuf) {
        let n = next_number();
        let (out_path, err_path) = (
            self.io.path().join(format!("{n}.out")),
            self.io.path().join(format!("{n}.err")),
        );
        let status = command
            .stdout(std::fs::File::create(&out_path).expect("create stdout file"))
            .stderr(std::fs::File::create(&err_path).expect("create stderr file"))
            .status()
            .expect("spawn the runtime");
        let out = Out {
            code: status.code(),
            stdout: std::fs::read_to_string(&out_path).unwrap_or_default(),
            stderr: std::fs::read_to_string(&err_path).unwrap_or_default(),
        };
        (out, out_path)
    }

    /// Run `RUNTIME --root <root> <args>`.
    pub fn cmd(&self, args: &[&str]) -> Out {
        self.exec(self.command(args)).0
    }

    /// Run a command that must succeed; returns its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.cmd(args);
        assert!(
            out.success(),
            "{args:?} failed ({:?}): {}{}",
            out.code,
            out.stdout,
            out.stderr
        );
        out.stdout
    }

    /// Remember `id` so that drop force-deletes it.
    pub fn track(&self, id: &str, stdout: PathBuf) {
        self.created.borrow_mut().insert(id.to_string(), stdout);
    }

    /// `create --bundle B ID` after writing the bundle's config.json.
    pub fn create(&self, bundle: &Bundle, id: &str) -> Out {
        bundle.write();
        let (out, path) = self.exec(self.command(&["create", "--bundle", bundle.path_str(), id]));
        self.track(id, path);
        out
    }

    /// `create` that must succeed.
    pub fn create_ok(&self, bundle: &Bundle, id: &str) {
        let out = self.create(bundle, id);
        assert!(
            out.success(),
            "create {id} failed ({:?}): {}{}",
            out.code,
            out.stdout,
            out.stderr
        );
    }

    pub fn start(&self, id: &str) -> Out {
        self.cmd(&["start", id])
    }

    pub fn start_ok(&self, id: &str) {
        self.ok(&["start", id]);
    }

    pub fn kill(&self, id: &str, signal: &str) -> Out {
        self.cmd(&["kill", id, signal])
    }

    pub fn delete(&self, id: &str) -> Out {
        self.cmd(&["delete", id])
    }

    /// `run --bundle B ID` in the foreground: waits for the container to exit.
    pub fn run(&self, bundle: &Bundle, id: &str) -> Out {
        bundle.write();
        let (out, path) = self.exec(self.command(&["run", "--bundle", bundle.path_str(), id]));
        self.track(id, path);
        out
    }

    /// `run` a bundle that must exit 0; returns its stdout.
    pub fn run_ok(&self, bundle: &Bundle) -> String {
        let id = unique_id("run");
        let out = self.run(bundle, &id);
        assert!(
            out.success(),
            "container exited {:?}: stdout {:?} stderr {:?}",
            out.code,
            out.stdout,
            out.stderr
        );
        out.stdout
    }

    /// What the init of created container `id` has written to its stdout so far.
    pub fn container_stdout(&self, id: &str) -> String {
        self.created
            .borrow()
            .get(id)
            .and_then(|p| std::fs::read_to_string(p).ok())
            .unwrap_or_default()
    }

    /// The parsed `state ID`, or None when the command fails.
    pub fn state(&self, id: &str) -> Option<Value> {
        let out = self.cmd(&["state", id]);
        if !out.success() {
            return None;
        }
        Some(
            serde_json::from_str(&out.stdout)
                .unwrap_or_else(|e| panic!("state of {id} is not JSON ({e}): {}", out.stdout)),
        )
    }

    /// The state of a container that must exist.
    pub fn state_ok(&self, id: &str) -> Value {
        self.state(id).unwrap_or_else(|| panic!("state {id} failed"))
    }

    /// The `status` of `id` ("" when `state` fails).
    pub fn status(&self, id: &str) -> String {
        self.state(id)
            .and_then(|s| s["status"].as_str().map(str::to_string))
            .unwrap_or_default()
    }

    /// The host pid of the container's process, from `state`.
    pub fn pid(&self, id: &str) -> i64 {
        self.state_ok(id)["pid"]
            .as_i64()
            .unwrap_or_else(|| panic!("state of {id} has no pid"))
    }

    /// Wait (up to 10 s) until `state` reports `status`.
    pub fn wait_status(&self, id: &str, status: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.status(id) == status {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("{id} never reached status {status} (now {:?})", self.status(id));
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        for id in self.created.borrow().keys() {
            let _ = self
                .command(&["delete", "--force", id])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// The cgroup path of `pid` in v1 `controller`'s hierarchy, from /proc/PID/cgroup.
pub fn cgroup_of(pid: i64, controller: &str) -> Option<String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    text.lines().find_map(|l| {
        let mut parts = l.splitn(3, ':');
        let (_, ctrls, path) = (parts.next()?, parts.next()?, parts.next()?);
        ctrls.split(',').any(|c| c == controller).then(|| path.to_string())
    })
}

/// `run` a bundle whose process is `sh -c script`, edited by `edit`; returns its stdout (the
/// container must exit 0).
pub fn sh_out(edit: impl FnOnce(&mut Bundle), script: &str) -> String {
    let rt = Runtime::new();
    let mut bundle = Bundle::sh(script);
    edit(&mut bundle);
    rt.run_ok(&bundle)
}

/// Whether a bundle edited by `edit` is refused: by `create`, or, for runtimes that defer
/// checks of `process` to it, by `start`. Nothing may be left either way: the Runtime's drop
/// force-deletes whatever was created.
pub fn create_fails(edit: impl FnOnce(&mut Bundle)) -> bool {
    let rt = Runtime::new();
    let mut bundle = Bundle::new(&["true"]);
    edit(&mut bundle);
    let id = unique_id("bad");
    !rt.create(&bundle, &id).success() || !rt.start(&id).success()
}
