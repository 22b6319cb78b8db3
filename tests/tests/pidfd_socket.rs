//! `--pidfd-socket PATH` on create, run and exec (runc 1.2): a listener here receives the
//! process's pidfd as SCM_RIGHTS with runc's payload ("standard" for the init, "setns" for an
//! exec'd process), checks it names the process (/proc/self/fdinfo's Pid:) and kills it through
//! it with pidfd_send_signal. A socket nobody listens on fails the command with nothing left.

use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::PathBuf;

use hezi_e2e::{assert_nothing_left, process_with_cmdline, require, unique_id, wait_until, Bundle, Hezi, TempDir};
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};

/// A listening unix socket in a directory of its own.
struct Listener {
    _dir: TempDir,
    path: PathBuf,
    listener: UnixListener,
}

impl Listener {
    fn new() -> Listener {
        let dir = TempDir::new("pidfd-sock");
        let path = dir.path().join("pidfd.sock");
        let listener = UnixListener::bind(&path).unwrap();
        Listener {
            _dir: dir,
            path,
            listener,
        }
    }

    fn path(&self) -> &str {
        self.path.to_str().unwrap()
    }

    /// Accept the runtime's connection (made while the command ran) and take its one message:
    /// (payload, the fd).
    fn receive(&self) -> (String, OwnedFd) {
        let (conn, _) = self.listener.accept().unwrap();
        let mut buf = [0u8; 64];
        let mut iov = [IoSliceMut::new(&mut buf)];
        let mut space = nix::cmsg_space!([RawFd; 1]);
        let msg = recvmsg::<()>(conn.as_raw_fd(), &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC).unwrap();
        let mut fd = None;
        for c in msg.cmsgs().unwrap() {
            if let ControlMessageOwned::ScmRights(fds) = c {
                assert_eq!(fds.len(), 1, "one fd per message");
                // SAFETY: SCM_RIGHTS just installed this fd in our table; nothing else owns it.
                fd = Some(unsafe { OwnedFd::from_raw_fd(fds[0]) });
            }
        }
        let n = msg.bytes;
        let payload = String::from_utf8_lossy(&buf[..n]).into_owned();
        (payload, fd.expect("the message carries an fd"))
    }
}

/// The pid a pidfd refers to, from /proc/self/fdinfo (`Pid:`).
fn pid_of(pidfd: &OwnedFd) -> i64 {
    let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", pidfd.as_raw_fd())).unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("Pid:"))
        .unwrap_or_else(|| panic!("not a pidfd: {info}"))
        .trim()
        .parse()
        .unwrap()
}

fn pidfd_kill(pidfd: &OwnedFd) {
    // SAFETY: pidfd_send_signal(2) with a pidfd we own, SIGKILL, no siginfo, no flags.
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            libc::SIGKILL,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    assert_eq!(r, 0, "pidfd_send_signal: {}", std::io::Error::last_os_error());
}

#[test]
fn create_and_run_send_the_inits_pidfd() {
    require!();
    let h = Hezi::new();
    let b = Bundle::busybox(&["sleep", "3301"]);
    b.write();
    let bundle = b.path().to_str().unwrap();
    for command in ["create", "run"] {
        let l = Listener::new();
        let id = unique_id(&format!("pidfd-{command}"));
        let mut args = vec![command, "--pidfd-socket", l.path(), "-b", bundle];
        if command == "run" {
            args.push("-d");
        }
        args.push(&id);
        h.ok(&args);
        let (payload, pidfd) = l.receive();
        assert_eq!(payload, "standard", "{command}");
        assert_eq!(pid_of(&pidfd), h.state(&id)["pid"].as_i64().unwrap(), "{command}");
        pidfd_kill(&pidfd);
        h.wait_status(&id, "stopped");
        h.ok(&["delete", &id]);
    }
}

#[test]
fn exec_sends_the_processs_pidfd() {
    require!();
    let h = Hezi::new();
    let b = Bundle::busybox(&["sleep", "3302"]);
    let id = unique_id("pidfd-exec");
    h.create(&b, &id);
    h.ok(&["start", &id]);
    let l = Listener::new();
    let dir = TempDir::new("pidfd-exec");
    let pid_file = dir.path().join("pid");
    h.ok(&[
        "exec",
        "-d",
        "--pid-file",
        pid_file.to_str().unwrap(),
        "--pidfd-socket",
        l.path(),
        &id,
        "sleep",
        "3303",
    ]);
    let (payload, pidfd) = l.receive();
    assert_eq!(payload, "setns");
    let pid: i64 = std::fs::read_to_string(&pid_file).unwrap().trim().parse().unwrap();
    assert_eq!(pid_of(&pidfd), pid);
    pidfd_kill(&pidfd);
    assert!(
        wait_until(10, || process_with_cmdline("sleep 3303").is_none()),
        "the exec'd process outlived SIGKILL through its pidfd"
    );
    assert_eq!(h.status(&id), "running", "the container lost its init");
    h.ok(&["delete", "-f", &id]);
}

#[test]
fn a_pidfd_socket_nobody_listens_on_fails_with_nothing_left() {
    require!();
    let h = Hezi::new();
    let dir = TempDir::new("pidfd-none");
    let nowhere = dir.path().join("nobody.sock");
    let nowhere = nowhere.to_str().unwrap();
    let b = Bundle::busybox(&["sleep", "3304"]);
    b.write();
    let id = unique_id("pidfd-none");
    let out = h.cmd(&[
        "create",
        "--pidfd-socket",
        nowhere,
        "-b",
        b.path().to_str().unwrap(),
        &id,
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("pidfd socket"));
    assert_nothing_left(&h, &id, &b, Some("sleep 3304"));

    h.create(&b, &id);
    h.ok(&["start", &id]);
    let out = h.cmd(&["exec", "--pidfd-socket", nowhere, &id, "sleep", "3305"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(255), "{err}");
    assert!(err.contains("pidfd socket"), "{err}");
    assert_eq!(process_with_cmdline("sleep 3305"), None);
    h.ok(&["delete", "-f", &id]);
}
