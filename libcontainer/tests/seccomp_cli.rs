//! linux.seccomp end to end: busybox bundles run through the hezi binary.
//!
//! Needs root, /bin/busybox (static) and a built hezi (`cargo build -p hezi`; or HEZI_BIN). Each
//! test says why it skips when one is missing.

use std::io::IoSliceMut;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const BUSYBOX: &str = "/bin/busybox";
const APPLETS: &[&str] = &["sh", "mkdir", "chmod", "echo", "grep", "sleep", "cat", "true"];

fn hezi_bin() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("HEZI_BIN") {
        return Some(PathBuf::from(p));
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let p = target.join("debug/hezi");
    p.exists().then_some(p)
}

/// The hezi binary, or None (with the reason printed) when this test cannot run here.
fn setup(test: &str) -> Option<PathBuf> {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipping {test}: needs root to create containers");
        return None;
    }
    if !Path::new(BUSYBOX).exists() {
        eprintln!("skipping {test}: {BUSYBOX} is not installed");
        return None;
    }
    match hezi_bin() {
        Some(p) => Some(p),
        None => {
            eprintln!("skipping {test}: no hezi binary (cargo build -p hezi, or set HEZI_BIN)");
            None
        }
    }
}

struct Bundle {
    hezi: PathBuf,
    dir: PathBuf,
    root: PathBuf,
    id: String,
}

impl Bundle {
    /// A busybox bundle from `hezi spec`, with a writable root, no terminal, `args`, and
    /// `edit` applied to the config.
    fn new(hezi: &Path, name: &str, args: &[&str], edit: impl FnOnce(&mut Value)) -> Bundle {
        let base = std::env::temp_dir().join(format!("hezi-seccomp-cli-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let dir = base.join("bundle");
        let bin = dir.join("rootfs/bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::create_dir_all(dir.join("rootfs/tmp")).unwrap();
        std::fs::copy(BUSYBOX, bin.join("busybox")).unwrap();
        for applet in APPLETS {
            std::os::unix::fs::symlink("busybox", bin.join(applet)).unwrap();
        }
        let status = Command::new(hezi).args(["spec", "-b"]).arg(&dir).status().unwrap();
        assert!(status.success(), "hezi spec failed");
        let path = dir.join("config.json");
        let mut config: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        config["process"]["terminal"] = json!(false);
        config["process"]["args"] = json!(args);
        // Writable, so that a failing mkdir is the filter's doing, not EROFS.
        config["root"]["readonly"] = json!(false);
        edit(&mut config);
        std::fs::write(&path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
        Bundle {
            hezi: hezi.to_path_buf(),
            dir,
            root: base.join("state"),
            id: format!("sc-{name}-{}", std::process::id()),
        }
    }

    fn hezi(&self) -> Command {
        let mut c = Command::new(&self.hezi);
        c.arg("--root").arg(&self.root);
        c
    }

    fn run(&self) -> Output {
        self.hezi()
            .args(["run", "-b"])
            .arg(&self.dir)
            .arg(&self.id)
            .output()
            .unwrap()
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        let _ = self.hezi().args(["delete", "--force", &self.id]).output();
        if let Some(base) = self.dir.parent() {
            let _ = std::fs::remove_dir_all(base);
        }
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn mkdir_denied_with_eperm_and_run_exits_with_the_shells_code() {
    let Some(hezi) = setup("mkdir_denied") else { return };
    let script = "mkdir /tmp/x; echo mkdir=$?; exit 3";
    let b = Bundle::new(&hezi, "eperm", &["sh", "-c", script], |c| {
        c["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{ "names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO" }]
        });
    });
    let out = b.run();
    assert_eq!(out.status.code(), Some(3), "stderr: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "mkdir=1");
    assert!(
        text(&out.stderr).contains("Operation not permitted"),
        "{}",
        text(&out.stderr)
    );
    assert!(!b.dir.join("rootfs/tmp/x").exists());

    // The same bundle without the filter: mkdir works, so the EPERM was the filter's.
    let control = Bundle::new(&hezi, "eperm-control", &["sh", "-c", script], |_| {});
    let out = control.run();
    assert_eq!(out.status.code(), Some(3), "stderr: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "mkdir=0");
}

#[test]
fn filter_loads_before_the_capability_drop_without_no_new_privileges() {
    let Some(hezi) = setup("without_nnp") else { return };
    let script = "mkdir /tmp/x; echo mkdir=$?; chmod 600 /bin/busybox; echo chmod=$?; \
                  grep -E '^(NoNewPrivs|Seccomp):' /proc/self/status";
    let b = Bundle::new(&hezi, "nonnp", &["sh", "-c", script], |c| {
        c["process"]["noNewPrivileges"] = json!(false);
        c["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [
                { "names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::ENOSPC },
                { "names": ["chmod", "fchmodat", "fchmodat2"], "action": "SCMP_ACT_ERRNO" },
                { "names": ["this_syscall_does_not_exist"], "action": "SCMP_ACT_KILL" }
            ]
        });
    });
    let out = b.run();
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    assert!(stdout.contains("mkdir=1") && stdout.contains("chmod=1"), "{stdout}");
    assert!(stdout.contains("NoNewPrivs:\t0"), "{stdout}");
    assert!(stdout.contains("Seccomp:\t2"), "{stdout}");
    assert!(
        text(&out.stderr).contains("No space left on device"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn default_deny_profile_still_lets_the_init_exec() {
    // An allow-list profile, everything else ENOSYS (Docker's returns EPERM). The init's own
    // syscalls after loading (send, openat/write on the exec fifo, execve) are in any such list;
    // close_range is left out on purpose: older profiles lack it, and the init sweeps its fds
    // before loading the filter, as runc does.
    let Some(hezi) = setup("default_deny") else { return };
    let allowed = [
        "read",
        "write",
        "readv",
        "writev",
        "pread64",
        "pwrite64",
        "open",
        "openat",
        "close",
        "stat",
        "fstat",
        "lstat",
        "newfstatat",
        "statx",
        "lseek",
        "mmap",
        "mprotect",
        "munmap",
        "brk",
        "rt_sigaction",
        "rt_sigprocmask",
        "rt_sigreturn",
        "ioctl",
        "access",
        "faccessat",
        "faccessat2",
        "pipe",
        "pipe2",
        "dup",
        "dup2",
        "dup3",
        "getpid",
        "getppid",
        "getuid",
        "geteuid",
        "getgid",
        "getegid",
        "gettid",
        "getpgrp",
        "setpgid",
        "getpgid",
        "getcwd",
        "chdir",
        "fcntl",
        "clone",
        "clone3",
        "fork",
        "vfork",
        "execve",
        "execveat",
        "exit",
        "exit_group",
        "wait4",
        "waitid",
        "kill",
        "uname",
        "arch_prctl",
        "set_tid_address",
        "set_robust_list",
        "rseq",
        "prlimit64",
        "getrandom",
        "sendto",
        "sendmsg",
        "recvfrom",
        "recvmsg",
        "futex",
        "sched_yield",
        "nanosleep",
        "clock_nanosleep",
        "clock_gettime",
        "gettimeofday",
        "getdents64",
        "readlink",
        "readlinkat",
        "umask",
        "sysinfo",
        "poll",
        "ppoll",
        "select",
        "pselect6",
        "madvise",
        "getrlimit",
        "setrlimit",
    ];
    let b = Bundle::new(
        &hezi,
        "deny",
        &["sh", "-c", "echo hello; mkdir /tmp/x; echo mkdir=$?"],
        |c| {
            c["linux"]["seccomp"] = json!({
                "defaultAction": "SCMP_ACT_ERRNO",
                "defaultErrnoRet": libc::ENOSYS,
                "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
                "syscalls": [{ "names": &allowed[..], "action": "SCMP_ACT_ALLOW" }]
            });
        },
    );
    let out = b.run();
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "hello\nmkdir=1\n");
    assert!(text(&out.stderr).contains("not implemented"), "{}", text(&out.stderr));
}

#[test]
fn exec_gets_the_containers_filter() {
    let Some(hezi) = setup("exec") else { return };
    let b = Bundle::new(&hezi, "exec", &["sleep", "60"], |c| {
        c["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{ "names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EROFS }]
        });
    });
    // The detached container keeps run's stdio: give it files, not pipes we would wait on.
    let log = b.dir.join("run.log");
    let file = std::fs::File::create(&log).unwrap();
    let stdio = || file.try_clone().unwrap();
    let status = b
        .hezi()
        .args(["run", "-d", "-b"])
        .arg(&b.dir)
        .arg(&b.id)
        .stdin(std::process::Stdio::null())
        .stdout(stdio())
        .stderr(stdio())
        .status()
        .unwrap();
    assert!(
        status.success(),
        "run -d: {}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    let out = b
        .hezi()
        .args([
            "exec",
            &b.id,
            "sh",
            "-c",
            "mkdir /tmp/y; echo mkdir=$?; grep '^Seccomp:' /proc/self/status",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("mkdir=1") && stdout.contains("Seccomp:\t2"), "{stdout}");
    assert!(
        text(&out.stderr).contains("Read-only file system"),
        "{}",
        text(&out.stderr)
    );
    let _ = b.hezi().args(["kill", &b.id, "KILL"]).output();
}

#[test]
fn bad_profiles_fail_create_naming_the_culprit() {
    let Some(hezi) = setup("bad_profiles") else { return };
    let cases = [
        (
            "arch",
            json!({ "defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_S390X"] }),
            "SCMP_ARCH_S390X",
        ),
        (
            "action",
            json!({ "defaultAction": "SCMP_ACT_EXPLODE" }),
            "SCMP_ACT_EXPLODE",
        ),
        (
            "listener",
            json!({ "defaultAction": "SCMP_ACT_ALLOW",
                    "syscalls": [{ "names": ["mkdir"], "action": "SCMP_ACT_NOTIFY" }] }),
            "listenerPath",
        ),
        (
            "index",
            json!({ "defaultAction": "SCMP_ACT_ALLOW",
                    "syscalls": [{ "names": ["socket"], "action": "SCMP_ACT_ERRNO",
                                   "args": [{ "index": 7, "value": 1, "op": "SCMP_CMP_EQ" }] }] }),
            "socket",
        ),
        (
            "flag",
            json!({ "defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_NEW_LISTENER"] }),
            "unknown variant `SECCOMP_FILTER_FLAG_NEW_LISTENER`",
        ),
    ];
    for (name, seccomp, culprit) in cases {
        let b = Bundle::new(&hezi, &format!("bad-{name}"), &["true"], |c| {
            c["linux"]["seccomp"] = seccomp;
        });
        let out = b.run();
        let stderr = text(&out.stderr);
        assert!(!out.status.success(), "{name}: ran with a bad profile");
        assert!(stderr.contains(culprit), "{name}: {stderr}");
        let list = b.hezi().args(["list", "-q"]).output().unwrap();
        assert!(!text(&list.stdout).contains(&b.id), "{name}: container left behind");
    }
}

/// Accept one connection within `limit`, so a broken runtime fails the test instead of hanging it.
fn accept_within(listener: &UnixListener, limit: Duration) -> std::os::unix::net::UnixStream {
    listener.set_nonblocking(true).unwrap();
    let start = Instant::now();
    loop {
        match listener.accept() {
            Ok((s, _)) => {
                s.set_nonblocking(false).unwrap();
                return s;
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && start.elapsed() < limit => {
                std::thread::sleep(Duration::from_millis(20))
            }
            Err(e) => panic!("no connection from the runtime: {e}"),
        }
    }
}

fn recv_state_and_fd(conn: RawFd) -> (Value, OwnedFd) {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    let mut buf = vec![0u8; 65536];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let mut iov = [IoSliceMut::new(&mut buf)];
    let msg = recvmsg::<()>(conn, &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC).unwrap();
    let mut fd = None;
    for c in msg.cmsgs().unwrap() {
        if let ControlMessageOwned::ScmRights(fds) = c {
            // SAFETY: SCM_RIGHTS just gave us this fd.
            fd = Some(unsafe { OwnedFd::from_raw_fd(fds[0]) });
        }
    }
    let n = msg.bytes;
    (serde_json::from_slice(&buf[..n]).unwrap(), fd.expect("the notify fd"))
}

#[test]
fn notify_listener_gets_the_fd_and_decides() {
    use libseccomp::{ScmpNotifReq, ScmpNotifResp, ScmpNotifRespFlags};
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

    let Some(hezi) = setup("notify") else { return };
    let sock = std::env::temp_dir().join(format!("hezi-seccomp-agent-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&sock);
    let listener = UnixListener::bind(&sock).unwrap();
    let b = Bundle::new(
        &hezi,
        "notify",
        &["sh", "-c", "mkdir /tmp/n; echo mkdir=$?; [ -d /tmp/n ] || echo absent"],
        |c| {
            c["annotations"] = json!({ "org.example.agent": "yes" });
            c["linux"]["seccomp"] = json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "listenerPath": sock,
                "listenerMetadata": "cli-agent",
                "syscalls": [{ "names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY" }]
            });
        },
    );
    let child = b
        .hezi()
        .args(["run", "-b"])
        .arg(&b.dir)
        .arg(&b.id)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let conn = accept_within(&listener, Duration::from_secs(30));
    let (state, fd) = recv_state_and_fd(conn.as_raw_fd());
    assert_eq!(state["fds"], json!(["seccompFd"]));
    assert_eq!(state["metadata"], "cli-agent");
    assert_eq!(state["state"]["id"], json!(b.id));
    assert_eq!(state["state"]["status"], "creating");
    assert_eq!(state["state"]["annotations"]["org.example.agent"], "yes");
    assert_eq!(state["pid"], state["state"]["pid"]);
    let bundle = std::fs::canonicalize(&b.dir).unwrap();
    assert_eq!(state["state"]["bundle"], json!(bundle));

    // The agent answers the container's mkdir: "done", without doing it.
    let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
    let ready = poll(&mut fds, PollTimeout::from(30_000u16)).unwrap();
    assert_eq!(ready, 1, "no notification from the container");
    let req = ScmpNotifReq::receive(fd.as_raw_fd()).unwrap();
    ScmpNotifResp::new_val(req.id, 0, ScmpNotifRespFlags::empty())
        .respond(fd.as_raw_fd())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "mkdir=0\nabsent\n");
    let _ = std::fs::remove_file(&sock);
}

#[test]
fn exec_sends_its_own_notify_fd_to_the_listener() {
    use libseccomp::{ScmpNotifReq, ScmpNotifResp, ScmpNotifRespFlags};
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

    let Some(hezi) = setup("exec_notify") else { return };
    let sock = std::env::temp_dir().join(format!("hezi-seccomp-exec-agent-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&sock);
    let listener = UnixListener::bind(&sock).unwrap();
    let b = Bundle::new(&hezi, "exec-notify", &["sleep", "60"], |c| {
        c["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "listenerPath": sock,
            "syscalls": [{ "names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY" }]
        });
    });
    let log = b.dir.join("run.log");
    let file = std::fs::File::create(&log).unwrap();
    let status = b
        .hezi()
        .args(["run", "-d", "-b"])
        .arg(&b.dir)
        .arg(&b.id)
        .stdin(std::process::Stdio::null())
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .status()
        .unwrap();
    assert!(
        status.success(),
        "run -d: {}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    // The init's fd came first (the backlog held it while run -d finished).
    let init_conn = accept_within(&listener, Duration::from_secs(5));
    let (init_state, _init_fd) = recv_state_and_fd(init_conn.as_raw_fd());
    assert_eq!(init_state["state"]["status"], "creating");

    let exec = b
        .hezi()
        .args(["exec", &b.id, "sh", "-c", "mkdir /tmp/e; echo mkdir=$?"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let conn = accept_within(&listener, Duration::from_secs(30));
    let (state, fd) = recv_state_and_fd(conn.as_raw_fd());
    assert_eq!(state["state"]["status"], "running");
    assert_eq!(state["state"]["pid"], init_state["pid"], "state.pid is the init");
    assert_ne!(state["pid"], state["state"]["pid"], "pid is the exec'd process");
    let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
    assert_eq!(
        poll(&mut fds, PollTimeout::from(30_000u16)).unwrap(),
        1,
        "no notification"
    );
    let req = ScmpNotifReq::receive(fd.as_raw_fd()).unwrap();
    ScmpNotifResp::new_error(req.id, -libc::EXDEV, ScmpNotifRespFlags::empty())
        .respond(fd.as_raw_fd())
        .unwrap();
    let out = exec.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "mkdir=1\n");
    assert!(text(&out.stderr).contains("cross-device"), "{}", text(&out.stderr));
    let _ = b.hezi().args(["kill", &b.id, "KILL"]).output();
    let _ = std::fs::remove_file(&sock);
}
