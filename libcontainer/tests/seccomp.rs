//! Compiled filters against the real kernel: a forked child loads the filter (with no_new_privs,
//! so no privilege is needed), makes the syscall, and reports by exit status what it saw.

use std::ffi::CString;
use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::PathBuf;

use libcontainer::process::channel::{self, Msg};
use libcontainer::seccomp::{Filter, ProcessInfo};
use nix::sys::signal::Signal;
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, ForkResult};
use oci_spec::runtime::LinuxSeccomp;

fn filter(json: serde_json::Value) -> Filter {
    let spec: LinuxSeccomp = serde_json::from_value(json).expect("valid linux.seccomp");
    Filter::compile(&spec).expect("profile compiles")
}

/// Exit codes the child uses to say what went wrong before the check itself.
const LOAD_FAILED: i32 = 100;

/// Fork; the child sets no_new_privs, loads `f` and exits with `check()`. Only syscalls and
/// stack data in the child: the test harness is multi-threaded.
fn in_child(f: &Filter, check: impl FnOnce() -> i32) -> WaitStatus {
    // SAFETY: the child only makes system calls and exits; it takes no lock another thread could
    // hold (no allocation, no stdio).
    match unsafe { fork() }.expect("fork") {
        ForkResult::Child => {
            // SAFETY: plain prctl and _exit.
            unsafe {
                if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                    libc::_exit(LOAD_FAILED);
                }
                if f.load().is_err() {
                    libc::_exit(LOAD_FAILED);
                }
                libc::_exit(check());
            }
        }
        ForkResult::Parent { child } => waitpid(child, None).expect("waitpid"),
    }
}

fn exited(status: WaitStatus) -> i32 {
    match status {
        WaitStatus::Exited(_, code) => code,
        other => panic!("child did not exit normally: {other:?}"),
    }
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

fn tmpdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hezi-seccomp-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// 0 when `ret` is -1 with `want` errno, else 1 (0x100 + errno would not fit an exit code).
fn expect_errno(ret: libc::c_long, want: i32) -> i32 {
    i32::from(!(ret == -1 && errno() == want))
}

#[test]
fn errno_with_custom_errno_ret() {
    let dir = tmpdir("errno");
    let path = CString::new(dir.join("made").to_str().unwrap()).unwrap();
    let f = filter(serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            { "names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38 },
            { "names": ["getcwd"], "action": "SCMP_ACT_ERRNO", "errnoRet": 77 }
        ]
    }));
    let code = exited(in_child(&f, || {
        // SAFETY: valid NUL-terminated path and a stack buffer of the size passed.
        unsafe {
            if expect_errno(libc::mkdir(path.as_ptr(), 0o755) as libc::c_long, 38) != 0 {
                return 1;
            }
            let mut buf = [0u8; 256];
            let r = libc::syscall(libc::SYS_getcwd, buf.as_mut_ptr(), buf.len());
            if expect_errno(r, 77) != 0 {
                return 2;
            }
        }
        0
    }));
    assert_eq!(code, 0);
    assert!(!dir.join("made").exists());
    // Without the filter the same call works: the errno came from the filter.
    std::fs::create_dir(dir.join("made")).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn default_errno_ret_applies_to_unlisted_syscalls() {
    let f = filter(serde_json::json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 95,
        "syscalls": [{ "names": ["exit", "exit_group"], "action": "SCMP_ACT_ALLOW" }]
    }));
    let code = exited(in_child(&f, || {
        // SAFETY: getppid takes no arguments.
        expect_errno(unsafe { libc::syscall(libc::SYS_getppid) }, 95)
    }));
    assert_eq!(code, 0);
}

#[test]
fn kill_process_kills_with_sigsys() {
    for action in [
        "SCMP_ACT_KILL_PROCESS",
        "SCMP_ACT_KILL",
        "SCMP_ACT_KILL_THREAD",
        "SCMP_ACT_TRAP",
    ] {
        let f = filter(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{ "names": ["getppid"], "action": action }]
        }));
        let status = in_child(&f, || {
            // SAFETY: getppid takes no arguments.
            unsafe { libc::syscall(libc::SYS_getppid) };
            0
        });
        assert!(
            matches!(status, WaitStatus::Signaled(_, Signal::SIGSYS, _)),
            "{action}: {status:?}"
        );
    }
}

/// KILL_THREAD ends only the thread that made the call; KILL_PROCESS ends every thread.
#[test]
fn kill_thread_ends_the_thread_and_kill_process_the_process() {
    let run = |action: &str| {
        let f = filter(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{ "names": ["getppid"], "action": action }]
        }));
        in_child(&f, || {
            // The filter is inherited by threads made after it is loaded.
            std::thread::spawn(|| {
                // SAFETY: getppid takes no arguments.
                unsafe { libc::syscall(libc::SYS_getppid) };
            });
            // Not joined: a thread killed by seccomp never hands back its result. The main
            // thread outlives it unless the whole process goes.
            std::thread::sleep(std::time::Duration::from_millis(200));
            7
        })
    };
    assert_eq!(exited(run("SCMP_ACT_KILL_THREAD")), 7);
    let status = run("SCMP_ACT_KILL_PROCESS");
    assert!(
        matches!(status, WaitStatus::Signaled(_, Signal::SIGSYS, _)),
        "{status:?}"
    );
}

/// TRACE hands the call to a ptrace tracer; with none attached the kernel fails it with ENOSYS
/// and does not run it.
#[test]
fn trace_without_a_tracer_fails_the_call_with_enosys() {
    let f = filter(serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{ "names": ["getppid"], "action": "SCMP_ACT_TRACE" }]
    }));
    let code = exited(in_child(&f, || {
        // SAFETY: getppid takes no arguments.
        let ret = unsafe { libc::syscall(libc::SYS_getppid) };
        expect_errno(ret, libc::ENOSYS)
    }));
    assert_eq!(code, 0);
}

#[test]
fn log_allows() {
    let f = filter(serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "flags": ["SECCOMP_FILTER_FLAG_LOG"],
        "syscalls": [{ "names": ["getppid"], "action": "SCMP_ACT_LOG" }]
    }));
    let parent = std::process::id() as libc::c_long;
    let code = exited(in_child(&f, || {
        // SAFETY: getppid takes no arguments.
        i32::from(unsafe { libc::syscall(libc::SYS_getppid) } != parent)
    }));
    assert_eq!(code, 0);
}

#[test]
fn argument_compare_personality_query_only() {
    // Docker denies personality() except for a few values; here only the query 0xffffffff.
    let f = filter(serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{ "names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13,
                       "args": [{ "index": 0, "value": 4294967295u64, "op": "SCMP_CMP_EQ" }] }]
    }));
    let code = exited(in_child(&f, || {
        // SAFETY: personality with integer arguments.
        unsafe {
            if expect_errno(libc::syscall(libc::SYS_personality, 0xffff_ffffu64), 13) != 0 {
                return 1;
            }
            // PER_LINUX (0) is let through and returns the previous persona.
            if libc::syscall(libc::SYS_personality, 0u64) < 0 {
                return 2;
            }
        }
        0
    }));
    assert_eq!(code, 0);
}

#[test]
fn argument_compare_socket_family() {
    let f = filter(serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{ "names": ["socket"], "action": "SCMP_ACT_ERRNO", "errnoRet": 97,
                       "args": [{ "index": 0, "value": libc::AF_INET, "op": "SCMP_CMP_EQ" }] }]
    }));
    let code = exited(in_child(&f, || {
        // SAFETY: socket and close with integer arguments.
        unsafe {
            if expect_errno(libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0) as libc::c_long, 97) != 0 {
                return 1;
            }
            let fd = libc::socket(libc::AF_UNIX, libc::SOCK_STREAM, 0);
            if fd < 0 {
                return 2;
            }
            libc::close(fd);
        }
        0
    }));
    assert_eq!(code, 0);
}

#[test]
fn masked_eq_matches_bits() {
    // Deny sockets created with SOCK_CLOEXEC: (type & SOCK_CLOEXEC) == SOCK_CLOEXEC.
    let cloexec = libc::SOCK_CLOEXEC as u64;
    let f = filter(serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{ "names": ["socket"], "action": "SCMP_ACT_ERRNO", "errnoRet": 22,
                       "args": [{ "index": 1, "value": cloexec, "valueTwo": cloexec, "op": "SCMP_CMP_MASKED_EQ" }] }]
    }));
    let code = exited(in_child(&f, || {
        // SAFETY: socket and close with integer arguments.
        unsafe {
            let with = libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
            if expect_errno(with as libc::c_long, 22) != 0 {
                return 1;
            }
            let without = libc::socket(libc::AF_UNIX, libc::SOCK_STREAM, 0);
            if without < 0 {
                return 2;
            }
            libc::close(without);
        }
        0
    }));
    assert_eq!(code, 0);
}

#[test]
fn every_ordering_operator() {
    // umask(2) cannot fail on its own, so a -1 can only come from the filter. Each case: the
    // operator and value, a mask that must be denied and one that must pass.
    let cases: [(&str, u64, u64, u64); 5] = [
        ("SCMP_CMP_NE", 0o022, 0o077, 0o022),
        ("SCMP_CMP_LT", 0o022, 0o002, 0o022),
        ("SCMP_CMP_LE", 0o022, 0o022, 0o023),
        ("SCMP_CMP_GE", 0o022, 0o022, 0o021),
        ("SCMP_CMP_GT", 0o022, 0o077, 0o022),
    ];
    for (op, value, denied, allowed) in cases {
        let f = filter(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{ "names": ["umask"], "action": "SCMP_ACT_ERRNO", "errnoRet": 42,
                           "args": [{ "index": 0, "value": value, "op": op }] }]
        }));
        let code = exited(in_child(&f, || {
            // SAFETY: umask with an integer argument.
            unsafe {
                if expect_errno(libc::syscall(libc::SYS_umask, denied), 42) != 0 {
                    return 1;
                }
                if libc::syscall(libc::SYS_umask, allowed) < 0 {
                    return 2;
                }
            }
            0
        }));
        assert_eq!(code, 0, "{op} {value:#o}: denied {denied:#o}, allowed {allowed:#o}");
    }
}

#[test]
#[cfg(target_arch = "x86_64")]
fn x32_syscall_numbers_do_not_bypass_a_native_rule() {
    // An x32 syscall has x86_64's audit arch with bit 30 set in its number; libseccomp's
    // native-only filter must not let it reach a "default allow" past the mkdir rule.
    let dir = tmpdir("x32");
    let path = CString::new(dir.join("made").to_str().unwrap()).unwrap();
    let f = filter(serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{ "names": ["mkdir"], "action": "SCMP_ACT_ERRNO" }]
    }));
    let status = in_child(&f, || {
        const X32_SYSCALL_BIT: libc::c_long = 0x4000_0000;
        // SAFETY: x32 mkdir with a valid path; the kernel or the filter refuses it.
        let r = unsafe { libc::syscall(X32_SYSCALL_BIT | libc::SYS_mkdir, path.as_ptr(), 0o755) };
        i32::from(r == 0)
    });
    assert!(!dir.join("made").exists(), "x32 mkdir got through: {status:?}");
    // libseccomp sends syscalls of an architecture the filter lacks to its bad-arch action,
    // KILL_THREAD: SIGSYS.
    assert!(
        matches!(status, WaitStatus::Signaled(_, Signal::SIGSYS, _)),
        "{status:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// What the kernel holds for a child that loaded `f` and stopped: PTRACE_SECCOMP_GET_METADATA's
/// flags of its (only) filter, and its /proc status. The child is killed afterwards.
fn loaded_state(f: &Filter) -> (u64, String) {
    // SAFETY: the child only makes system calls (ptrace, prctl, seccomp, raise) and exits.
    match unsafe { fork() }.expect("fork") {
        ForkResult::Child => unsafe {
            // SAFETY: plain ptrace/prctl/raise and _exit.
            if libc::ptrace(libc::PTRACE_TRACEME, 0, 0, 0) != 0
                || libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
                || f.load().is_err()
            {
                libc::_exit(LOAD_FAILED);
            }
            libc::raise(libc::SIGSTOP);
            libc::_exit(0);
        },
        ForkResult::Parent { child } => {
            let status = waitpid(child, None).expect("waitpid");
            assert!(
                matches!(status, WaitStatus::Stopped(_, Signal::SIGSTOP)),
                "child did not stop traced: {status:?}"
            );
            #[repr(C)]
            struct Metadata {
                filter_off: u64,
                flags: u64,
            }
            const PTRACE_SECCOMP_GET_METADATA: libc::c_uint = 0x420d;
            let mut md = Metadata {
                filter_off: 0,
                flags: 0,
            };
            // SAFETY: the kernel writes at most size_of::<Metadata>() bytes into `md`.
            let r = unsafe {
                libc::ptrace(
                    PTRACE_SECCOMP_GET_METADATA,
                    child.as_raw(),
                    std::mem::size_of::<Metadata>(),
                    &mut md as *mut Metadata,
                )
            };
            let err = std::io::Error::last_os_error();
            let status_text = std::fs::read_to_string(format!("/proc/{child}/status")).unwrap_or_default();
            let _ = nix::sys::signal::kill(child, Signal::SIGKILL);
            let _ = waitpid(child, None);
            assert!(r >= 0, "PTRACE_SECCOMP_GET_METADATA: {err}");
            (md.flags, status_text)
        }
    }
}

fn status_line<'a>(status: &'a str, key: &str) -> &'a str {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix(':')))
        .map(str::trim)
        .unwrap_or("")
}

/// SECCOMP_FILTER_FLAG_LOG as the kernel's u64 metadata has it (c_ulong is 32 bits on 32-bit
/// targets).
#[allow(clippy::unnecessary_cast)]
const LOG: u64 = libc::SECCOMP_FILTER_FLAG_LOG as u64;

#[test]
fn filter_flags_reach_the_kernel() {
    let profile = |flags: serde_json::Value| {
        let mut p = serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{ "names": ["getppid"], "action": "SCMP_ACT_ERRNO" }]
        });
        if !flags.is_null() {
            p["flags"] = flags;
        }
        filter(p)
    };
    // LOG is the flag the kernel reports back per filter.
    let (flags, status) = loaded_state(&profile(serde_json::json!(["SECCOMP_FILTER_FLAG_LOG"])));
    assert_eq!(flags & LOG, LOG);
    assert_eq!(status_line(&status, "Seccomp"), "2");
    // One program: the -ENOSYS stub is part of it, not a second filter.
    assert_eq!(status_line(&status, "Seccomp_filters"), "1");
    let (flags, _) = loaded_state(&profile(serde_json::json!([])));
    assert_eq!(flags & LOG, 0);

    // Every flag the kernel knows loads (TSYNC on one thread, SPEC_ALLOW wherever).
    let all = serde_json::json!([
        "SECCOMP_FILTER_FLAG_TSYNC",
        "SECCOMP_FILTER_FLAG_LOG",
        "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
        "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"
    ]);
    let (flags, _) = loaded_state(&profile(all));
    assert_ne!(flags & LOG, 0);

    // SPEC_ALLOW only shows where the host mitigates speculative store bypass through seccomp:
    // a filter without it forces the mitigation on the thread.
    let ssb = std::fs::read_to_string("/sys/devices/system/cpu/vulnerabilities/spec_store_bypass").unwrap_or_default();
    if ssb.contains("seccomp") {
        let (_, with) = loaded_state(&profile(serde_json::json!(["SECCOMP_FILTER_FLAG_SPEC_ALLOW"])));
        let (_, without) = loaded_state(&profile(serde_json::json!([])));
        assert_eq!(
            status_line(&without, "Speculation_Store_Bypass"),
            "thread force mitigated"
        );
        assert_ne!(status_line(&with, "Speculation_Store_Bypass"), "thread force mitigated");
    } else {
        eprintln!("SPEC_ALLOW not observable here: spec_store_bypass is {:?}", ssb.trim());
    }
}

/// Set in the environment of the re-run of this test binary that checks TSYNC.
const TSYNC_CHILD: &str = "HEZI_SECCOMP_TSYNC_CHILD";

/// In a fresh process (this binary run again for `tsync_child`): a thread started before the
/// load sees the filter only when the profile asks for SECCOMP_FILTER_FLAG_TSYNC.
#[test]
fn tsync_puts_the_filter_on_every_thread() {
    let exe = std::env::current_exe().unwrap();
    for (flags, want) in [("[\"SECCOMP_FILTER_FLAG_TSYNC\"]", "filtered"), ("[]", "unfiltered")] {
        let out = std::process::Command::new(&exe)
            .args(["--exact", "tsync_child", "--nocapture", "--test-threads=1"])
            .env(TSYNC_CHILD, flags)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{flags}: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains(&format!("other thread: {want}\n")), "{flags}: {stdout}");
    }
}

#[test]
fn tsync_child() {
    let Ok(flags) = std::env::var(TSYNC_CHILD) else {
        return; // only meaningful when run by tsync_puts_the_filter_on_every_thread
    };
    let flags: serde_json::Value = serde_json::from_str(&flags).unwrap();
    let f = filter(serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "flags": flags,
        "syscalls": [{ "names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 77 }]
    }));
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let other = std::thread::spawn(move || {
        go_rx.recv().unwrap();
        // SAFETY: getppid takes no arguments.
        let r = unsafe { libc::syscall(libc::SYS_getppid) };
        if r == -1 && errno() == 77 {
            "filtered"
        } else {
            "unfiltered"
        }
    });
    // SAFETY: plain prctl.
    assert_eq!(unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) }, 0);
    f.load().expect("load the filter");
    // This thread has it either way.
    // SAFETY: getppid takes no arguments.
    assert_eq!(expect_errno(unsafe { libc::syscall(libc::SYS_getppid) }, 77), 0);
    go_tx.send(()).unwrap();
    println!("other thread: {}", other.join().unwrap());
}

#[test]
#[cfg(target_arch = "x86_64")]
fn syscalls_newer_than_a_deny_by_default_profile_get_enosys() {
    // Docker's shape: default ERRNO(EPERM) and an allow list whose highest syscall is exit_group
    // (231). Newer syscalls, real (clone3 435, faccessat2 439) or not (1000), must see ENOSYS so
    // that libc falls back to clone/faccessat; older ones keep the profile's EPERM. With and
    // without an explicit architectures list (the native arch is always covered).
    for arches in [
        serde_json::json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]),
        serde_json::Value::Null,
    ] {
        let mut profile = serde_json::json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "defaultErrnoRet": libc::EPERM,
            "syscalls": [
                { "names": ["exit", "exit_group", "getpid"], "action": "SCMP_ACT_ALLOW" },
                { "names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EPERM }
            ]
        });
        if !arches.is_null() {
            profile["architectures"] = arches.clone();
        }
        let f = filter(profile);
        let code = exited(in_child(&f, || {
            let at = c"/".as_ptr();
            // SAFETY: raw syscalls with scalar arguments or a valid path; clone3 gets a null
            // args pointer, which the filter refuses before the kernel reads it.
            unsafe {
                if expect_errno(libc::syscall(1000, 0, 0, 0), libc::ENOSYS) != 0 {
                    return 1;
                }
                if expect_errno(libc::syscall(libc::SYS_clone3, 0, 0), libc::ENOSYS) != 0 {
                    return 2;
                }
                let r = libc::syscall(libc::SYS_faccessat2, libc::AT_FDCWD, at, libc::F_OK, 0);
                if expect_errno(r, libc::ENOSYS) != 0 {
                    return 3;
                }
                // Named but not allowed, and unnamed but older: the profile's EPERM.
                if expect_errno(libc::syscall(libc::SYS_getppid), libc::EPERM) != 0 {
                    return 4;
                }
                if expect_errno(libc::syscall(libc::SYS_getuid), libc::EPERM) != 0 {
                    return 5;
                }
                if libc::syscall(libc::SYS_getpid) <= 0 {
                    return 6;
                }
            }
            0
        }));
        assert_eq!(code, 0, "architectures {arches}: check {code} failed");
    }
}

/// Receive the listener's one message: the JSON and the notify fd.
fn recv_state_and_fd(conn: RawFd) -> (serde_json::Value, OwnedFd) {
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
    let json = serde_json::from_slice(&buf[..n]).unwrap();
    (json, fd.expect("an fd with the state"))
}

#[test]
fn notify_goes_to_the_listener_which_answers() {
    use libseccomp::{ScmpNotifReq, ScmpNotifResp, ScmpNotifRespFlags, ScmpSyscall};

    let dir = tmpdir("notify");
    let sock = dir.join("agent.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let target = CString::new(dir.join("made").to_str().unwrap()).unwrap();
    let f = filter(serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": sock,
        "listenerMetadata": "test-agent",
        "flags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
        "syscalls": [{ "names": ["mkdir", "mkdirat", "getppid"], "action": "SCMP_ACT_NOTIFY" }]
    }));
    let (parent_end, child_end) = channel::pair().unwrap();
    // SAFETY: as in `in_child`; the channel send may allocate, which glibc makes safe after
    // fork (its malloc locks are reset in the child).
    let pid = match unsafe { fork() }.unwrap() {
        ForkResult::Child => unsafe {
            drop(parent_end);
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                libc::_exit(LOAD_FAILED);
            }
            // What the init does: load, hand the fd up the channel.
            if libcontainer::seccomp::install(Some(&f), &child_end).is_err() {
                libc::_exit(LOAD_FAILED);
            }
            // The listener answers EXDEV for mkdir, and 4242 for getppid.
            if expect_errno(libc::mkdir(target.as_ptr(), 0o755) as libc::c_long, libc::EXDEV) != 0 {
                libc::_exit(1);
            }
            if libc::syscall(libc::SYS_getppid) != 4242 {
                libc::_exit(2);
            }
            libc::_exit(0);
        },
        ForkResult::Parent { child } => child,
    };
    drop(child_end);
    // What `create` does: forward the fd with the process state.
    let Some(Msg::SeccompFd(fd)) = parent_end.recv().unwrap() else {
        panic!("expected the notify fd from the child");
    };
    let annotations = std::collections::HashMap::from([("k".to_string(), "v".to_string())]);
    let info = ProcessInfo {
        oci_version: "1.2.0",
        id: "notify-test",
        status: oci_spec::runtime::ContainerState::Creating,
        pid: pid.as_raw(),
        init_pid: pid.as_raw(),
        bundle: &dir,
        annotations: &annotations,
    };
    libcontainer::seccomp::forward(&f, &info, &fd).unwrap();
    drop(fd);

    // The agent's side.
    let (conn, _) = listener.accept().unwrap();
    let (state, notify_fd) = recv_state_and_fd(conn.as_raw_fd());
    assert_eq!(state["fds"], serde_json::json!(["seccompFd"]));
    assert_eq!(state["pid"], pid.as_raw());
    assert_eq!(state["metadata"], "test-agent");
    assert_eq!(state["state"]["id"], "notify-test");
    assert_eq!(state["state"]["status"], "creating");
    assert_eq!(state["state"]["annotations"]["k"], "v");
    for _ in 0..2 {
        let req = ScmpNotifReq::receive(notify_fd.as_raw_fd()).unwrap();
        assert_eq!(req.pid, pid.as_raw() as u32);
        let resp = if req.data.syscall == ScmpSyscall::from_name("getppid").unwrap() {
            ScmpNotifResp::new_val(req.id, 4242, ScmpNotifRespFlags::empty())
        } else {
            ScmpNotifResp::new_error(req.id, -libc::EXDEV, ScmpNotifRespFlags::empty())
        };
        resp.respond(notify_fd.as_raw_fd()).unwrap();
    }
    assert_eq!(exited(waitpid(pid, None).unwrap()), 0);
    assert!(!dir.join("made").exists());
    let _ = std::fs::remove_dir_all(&dir);
}
