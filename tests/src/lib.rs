//! Shared pieces of hezi's end-to-end tests: the built `hezi` binary, busybox bundles made from
//! Debian's busybox-static, a private `--root` per test, and host-side leak checks.
//!
//! Every test here starts real containers, so it needs root and `/bin/busybox`. Without them a
//! test prints why and returns, except under CI (`CI` set), where a missing prerequisite is a
//! failure: CI installs everything, so a skip there would hide a broken setup.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{json, Value};

pub mod containerd;
pub mod rootless;

/// The busybox applets every test rootfs gets as symlinks in /bin.
const APPLETS: &[&str] = &[
    "sh", "cat", "echo", "sleep", "true", "false", "ls", "grep", "wc", "head", "id", "kill", "mkdir", "touch",
    "readlink", "stat", "hostname", "ps", "env", "pwd", "umask", "ulimit", "test", "mount", "ln", "rm", "chmod",
    "nproc", "taskset", "ionice", "date", "uname", "tr", "cut", "awk", "sed", "seq", "dd", "mknod", "chroot", "mkfifo",
    "rmdir",
];

/// Where the busybox binary comes from (Debian's busybox-static).
pub const BUSYBOX: &str = "/bin/busybox";

/// Returns false (after saying why) when this test cannot run here: not root, no busybox, or no
/// hezi binary. Under CI a missing prerequisite panics instead.
pub fn prerequisites() -> bool {
    prerequisites_for(&hezi_bin(), "cargo build -p hezi first")
}

/// [`prerequisites`] for tests that drive `binary` (built or installed as `how` says).
pub fn prerequisites_for(binary: &Path, how: &str) -> bool {
    let mut missing = Vec::new();
    if !nix_is_root() {
        missing.push("root".to_string());
    }
    if !Path::new(BUSYBOX).exists() {
        missing.push(format!("{BUSYBOX} (apt-get install busybox-static)"));
    }
    if !binary.exists() {
        missing.push(format!("{} ({how})", binary.display()));
    }
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

/// Skip the calling test (with a message) unless [`prerequisites`] hold.
#[macro_export]
macro_rules! require {
    () => {
        if !$crate::prerequisites() {
            return;
        }
    };
}

fn nix_is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// The `hezi` binary next to this test executable (target/<profile>/hezi), or `HEZI_BIN`.
pub fn hezi_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("HEZI_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("path of the test executable");
    // target/<profile>/deps/<test>-<hash> → target/<profile>/hezi
    exe.parent()
        .and_then(Path::parent)
        .map(|d| d.join("hezi"))
        .expect("test executable lives in target/<profile>/deps")
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A name unique to this test process: `<prefix>-<pid>-<n>`. Container ids use it too, so tests
/// running in parallel (or a leftover from an earlier run) never collide.
pub fn unique_id(prefix: &str) -> String {
    format!("{prefix}-{}-{}", std::process::id(), next_number())
}

/// A number never handed out before in this process (for file names).
pub fn next_number() -> usize {
    COUNTER.fetch_add(1, Ordering::Relaxed)
}

/// Wait (up to `secs`) until `cond` holds; returns whether it did.
pub fn wait_until(secs: u64, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while std::time::Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    cond()
}

/// A temporary directory removed on drop (after unmounting anything a failed test left there).
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(prefix: &str) -> TempDir {
        let base = std::env::var_os("HEZI_TEST_TMP")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir);
        let dir = base.join(unique_id(prefix));
        std::fs::create_dir_all(&dir).expect("create test temp dir");
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Make `rootfs`: busybox-static with its applets in /bin, /etc/passwd and /etc/group (root and
/// nobody), and the empty directories a spec's mounts need.
pub fn busybox_rootfs(rootfs: &Path) {
    for d in ["bin", "proc", "sys", "dev", "etc", "tmp"] {
        std::fs::create_dir_all(rootfs.join(d)).expect("mkdir in rootfs");
    }
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
}

/// A bundle: `rootfs/` with busybox, and a config.json built from `hezi spec`.
pub struct Bundle {
    dir: TempDir,
    pub config: Value,
}

impl Bundle {
    /// A busybox bundle running `args`, without a terminal, otherwise `hezi spec`'s defaults.
    pub fn busybox(args: &[&str]) -> Bundle {
        let dir = TempDir::new("bundle");
        busybox_rootfs(&dir.path().join("rootfs"));
        let out = Command::new(hezi_bin())
            .args(["spec", "--bundle"])
            .arg(dir.path())
            .output()
            .expect("run hezi spec");
        assert!(
            out.status.success(),
            "hezi spec: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = std::fs::read_to_string(dir.path().join("config.json")).expect("read config.json");
        let mut config: Value = serde_json::from_str(&text).expect("parse config.json");
        config["process"]["terminal"] = json!(false);
        config["process"]["args"] = json!(args);
        Bundle { dir, config }
    }

    /// A busybox bundle with `config` as its config.json, as given (for suites that bring their
    /// own template instead of `hezi spec`'s).
    pub fn with_config(config: Value) -> Bundle {
        let dir = TempDir::new("bundle");
        busybox_rootfs(&dir.path().join("rootfs"));
        Bundle { dir, config }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn rootfs(&self) -> PathBuf {
        self.dir.path().join("rootfs")
    }

    /// Write the (edited) config.json.
    pub fn write(&self) {
        std::fs::write(
            self.dir.path().join("config.json"),
            serde_json::to_vec_pretty(&self.config).expect("serialize config"),
        )
        .expect("write config.json");
    }

    /// Mutable access to `linux`, created if missing.
    pub fn linux(&mut self) -> &mut Value {
        if self.config.get("linux").is_none() {
            self.config["linux"] = json!({});
        }
        &mut self.config["linux"]
    }

    /// Replace the namespace list (`["pid", "mount", ...]`). Without a uts namespace the
    /// hostname goes too: setting it would change the host's, which hezi refuses.
    pub fn namespaces(&mut self, types: &[&str]) {
        let list: Vec<Value> = types.iter().map(|t| json!({ "type": t })).collect();
        self.linux()["namespaces"] = json!(list);
        if !types.contains(&"uts") {
            if let Some(obj) = self.config.as_object_mut() {
                obj.remove("hostname");
            }
        }
    }
}

/// A private state root (`--root`) for one test; on drop, every container left in it is
/// force-deleted, so a failing test does not leak containers into the next.
pub struct Hezi {
    root: TempDir,
    /// Files that take each command's stdout and stderr (see [`Hezi::cmd`]).
    io: TempDir,
}

impl Default for Hezi {
    fn default() -> Self {
        Self::new()
    }
}

impl Hezi {
    pub fn new() -> Hezi {
        Hezi {
            root: TempDir::new("root"),
            io: TempDir::new("io"),
        }
    }

    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// `hezi --root <root> <args>` as a Command, for callers that need stdin or a pipe.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(hezi_bin());
        c.arg("--root").arg(self.root.path()).args(args);
        c.stdin(Stdio::null());
        c
    }

    /// Run `hezi --root <root> <args>` and collect its output. stdout and stderr go to files,
    /// not pipes: a container's processes inherit them (as with runc), and a pipe would not see
    /// its end until the container exits.
    pub fn cmd(&self, args: &[&str]) -> Output {
        let n = next_number();
        let (out_path, err_path) = (
            self.io.path().join(format!("{n}.out")),
            self.io.path().join(format!("{n}.err")),
        );
        let status = self
            .command(args)
            .stdout(std::fs::File::create(&out_path).expect("create stdout file"))
            .stderr(std::fs::File::create(&err_path).expect("create stderr file"))
            .status()
            .expect("spawn hezi");
        Output {
            status,
            stdout: std::fs::read(&out_path).unwrap_or_default(),
            stderr: std::fs::read(&err_path).unwrap_or_default(),
        }
    }

    /// Run a command that must succeed; returns its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.cmd(args);
        assert!(
            out.status.success(),
            "hezi {args:?} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `run` the bundle in the foreground; returns (exit code, stdout, stderr).
    pub fn run(&self, bundle: &Bundle, id: &str) -> (i32, String, String) {
        bundle.write();
        let out = self.cmd(&["run", "--bundle", bundle.path().to_str().expect("utf-8 path"), id]);
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// `run` a bundle that must exit 0; returns its stdout.
    pub fn run_ok(&self, bundle: &Bundle, id: &str) -> String {
        let (code, out, err) = self.run(bundle, id);
        assert_eq!(code, 0, "container {id} exited {code}: stdout {out:?} stderr {err:?}");
        out
    }

    /// `create` the bundle (must succeed).
    pub fn create(&self, bundle: &Bundle, id: &str) {
        bundle.write();
        self.ok(&["create", "--bundle", bundle.path().to_str().expect("utf-8 path"), id]);
    }

    /// The parsed output of `hezi state ID`.
    pub fn state(&self, id: &str) -> Value {
        serde_json::from_str(&self.ok(&["state", id])).expect("state prints JSON")
    }

    /// The `status` field of `hezi state ID`.
    pub fn status(&self, id: &str) -> String {
        self.state(id)["status"].as_str().unwrap_or_default().to_string()
    }

    /// Ids of every container under this root.
    pub fn ids(&self) -> Vec<String> {
        self.ok(&["list", "-q"]).lines().map(str::to_string).collect()
    }

    /// Wait (up to 10 s) until `state` reports `status` (a container that does not exist yet,
    /// because a spawned `run` has not got that far, counts as not there yet).
    pub fn wait_status(&self, id: &str, status: &str) {
        for _ in 0..200 {
            let out = self.cmd(&["state", id]);
            let now: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
            if now["status"] == status {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("{id} never reached status {status} (now {})", self.status(id));
    }
}

impl Drop for Hezi {
    fn drop(&mut self) {
        if let Ok(out) = self.command(&["list", "-q"]).output() {
            for id in String::from_utf8_lossy(&out.stdout).lines() {
                let _ = self.command(&["delete", "--force", id]).output();
            }
        }
    }
}

/// Mount points under `dir` (host view), from /proc/self/mountinfo.
pub fn mounts_under(dir: &Path) -> Vec<String> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").expect("read mountinfo");
    // Compare whole path components: /tmp/root-1-6 must not claim /tmp/root-1-61's mounts
    // (tests run in parallel, each under a root of its own).
    let dir = dir.to_string_lossy().into_owned();
    let below = format!("{}/", dir.trim_end_matches('/'));
    text.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| *m == dir || m.starts_with(&below))
        .map(str::to_string)
        .collect()
}

/// Whether a live process has `needle` in its command line (host-wide scan of /proc).
pub fn process_with_cmdline(needle: &str) -> Option<i32> {
    let entries = std::fs::read_dir("/proc").ok()?;
    for e in entries.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        if !alive(pid.into()) {
            continue;
        }
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if cmd.contains(needle) {
            return Some(pid);
        }
    }
    None
}

/// Whether `pid` is a live process: a zombie is dead (an init whose `create` has exited is
/// reparented to the host's pid 1, which may reap it late).
pub fn alive(pid: i64) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with(['Z', 'X'])),
        Err(_) => false,
    }
}

/// The namespace inode link of `pid` (`/proc/PID/ns/<kind>`), e.g. `pid:[4026531836]`.
pub fn ns_link(pid: &str, kind: &str) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/{kind}"))
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Assert that nothing of container `id` is left: no state, no mounts under the bundle, and no
/// process whose command line carries `marker`.
pub fn assert_nothing_left(h: &Hezi, id: &str, bundle: &Bundle, marker: Option<&str>) {
    assert!(
        !h.root().join(id).exists(),
        "state directory of {id} left in {}",
        h.root().display()
    );
    assert!(!h.ids().contains(&id.to_string()), "{id} still listed");
    let left = mounts_under(bundle.path());
    assert!(left.is_empty(), "mounts left under the bundle: {left:?}");
    if let Some(m) = marker {
        assert_eq!(process_with_cmdline(m), None, "process {m:?} still alive");
    }
    let cgroups = cgroup_dirs(id);
    assert!(cgroups.is_empty(), "cgroups of {id} left: {cgroups:?}");
}

/// The cgroup directories that exist for container `id` at hezi's default place (`/hezi/<id>`)
/// in any hierarchy mounted under /sys/fs/cgroup: the v2 root, or each v1 controller and the
/// hybrid layout's unified mount.
pub fn cgroup_dirs(id: &str) -> Vec<PathBuf> {
    let base = Path::new("/sys/fs/cgroup");
    let mut roots = vec![base.to_path_buf()];
    if let Ok(entries) = std::fs::read_dir(base) {
        roots.extend(entries.flatten().map(|e| e.path()).filter(|p| p.is_dir()));
    }
    roots
        .into_iter()
        .map(|r| r.join("hezi").join(id))
        .filter(|d| d.exists())
        .collect()
}
