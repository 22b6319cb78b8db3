//! The container's stdio: `--console-socket` receiving the pty master (consoleSize applied),
//! `--preserve-fds` passing extra descriptors, and LISTEN_FDS socket activation.

use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::os::unix::process::CommandExt;

use hezi_e2e::{hezi_bin, require, unique_id, Bundle, Hezi, TempDir};
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use serde_json::json;

/// Accept one connection on `listener` and receive the fd it carries (SCM_RIGHTS).
fn receive_fd(listener: &UnixListener) -> OwnedFd {
    let (conn, _) = listener.accept().expect("accept console socket");
    let mut buf = [0u8; 4096];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = recvmsg::<()>(conn.as_raw_fd(), &mut iov, Some(&mut space), MsgFlags::empty()).expect("recvmsg");
    for c in msg.cmsgs().expect("control messages") {
        if let ControlMessageOwned::ScmRights(fds) = c {
            // SAFETY: the kernel just installed this descriptor for us; nothing else owns it.
            return unsafe { OwnedFd::from_raw_fd(fds[0]) };
        }
    }
    panic!("no fd received on the console socket");
}

#[test]
fn console_socket_receives_the_pty_master() {
    require!();
    let h = Hezi::new();
    let dir = TempDir::new("console");
    let sock = dir.path().join("console.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let mut b = Bundle::busybox(&["sh", "-c", "tty; stty size; echo done"]);
    b.config["process"]["terminal"] = json!(true);
    b.config["process"]["consoleSize"] = json!({ "height": 33, "width": 111 });
    let id = unique_id("tty");
    b.write();
    let receiver = std::thread::spawn(move || receive_fd(&listener));
    h.ok(&[
        "create",
        "-b",
        b.path().to_str().unwrap(),
        "--console-socket",
        sock.to_str().unwrap(),
        &id,
    ]);
    let master = receiver.join().unwrap();
    h.ok(&["start", &id]);
    let mut file = std::fs::File::from(master);
    let mut out = Vec::new();
    // Reading the master ends with EIO once the container's side is closed.
    let mut chunk = [0u8; 1024];
    loop {
        match file.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&chunk[..n]),
        }
        if String::from_utf8_lossy(&out).contains("done") {
            break;
        }
    }
    let text = String::from_utf8_lossy(&out).replace('\r', "");
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("/dev/pts/") || lines[0] == "/dev/console",
        "{text:?}"
    );
    assert_eq!(lines[1], "33 111", "consoleSize applied: {text:?}");
    h.ok(&["delete", "-f", &id]);
}

#[test]
fn terminal_without_console_socket_is_refused() {
    require!();
    let h = Hezi::new();
    let mut b = Bundle::busybox(&["true"]);
    b.config["process"]["terminal"] = json!(true);
    b.write();
    let id = unique_id("notty");
    let out = h.cmd(&["create", "-b", b.path().to_str().unwrap(), &id]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("console-socket"));
    assert!(h.ids().is_empty());
}

/// Run `hezi` with `file` as its fd 3 (and fd 4 when given), so `--preserve-fds` or
/// LISTEN_FDS can hand them on.
fn with_fds(cmd: &mut std::process::Command, fds: Vec<std::fs::File>) {
    // SAFETY: between fork and exec only async-signal-safe dup2 and fcntl are called.
    unsafe {
        cmd.pre_exec(move || {
            for (i, f) in fds.iter().enumerate() {
                let target = 3 + i as i32;
                // dup2 onto itself keeps close-on-exec: where the file is that fd already,
                // clear the flag instead.
                let r = if f.as_raw_fd() == target {
                    libc::fcntl(target, libc::F_SETFD, 0)
                } else {
                    libc::dup2(f.as_raw_fd(), target)
                };
                if r < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
}

#[test]
fn preserve_fds_hands_on_extra_descriptors() {
    require!();
    let h = Hezi::new();
    let b = Bundle::busybox(&["sh", "-c", "echo through-fd3 >&3; ls /proc/self/fd"]);
    b.write();
    let dir = TempDir::new("fds");
    let target = dir.path().join("fd3.txt");
    let id = unique_id("pfds");
    let out_path = dir.path().join("stdout");
    let mut cmd = h.command(&["run", "--preserve-fds", "1", "-b", b.path().to_str().unwrap(), &id]);
    cmd.stdout(std::fs::File::create(&out_path).unwrap());
    with_fds(&mut cmd, vec![std::fs::File::create(&target).unwrap()]);
    assert!(cmd.status().unwrap().success());
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "through-fd3\n");
    let fds: Vec<String> = std::fs::read_to_string(&out_path)
        .unwrap()
        .split_whitespace()
        .map(str::to_string)
        .collect();
    // 0-2, the preserved 3, and the one `ls` opens for the directory: nothing of hezi's.
    assert!(
        fds.len() <= 5 && fds.starts_with(&["0".into(), "1".into(), "2".into(), "3".into()]),
        "{fds:?}"
    );
}

#[test]
fn without_preserve_fds_no_extra_descriptor_leaks_in() {
    require!();
    let h = Hezi::new();
    let b = Bundle::busybox(&["ls", "/proc/self/fd"]);
    b.write();
    let dir = TempDir::new("nofds");
    let id = unique_id("nofds");
    let out_path = dir.path().join("stdout");
    let mut cmd = h.command(&["run", "-b", b.path().to_str().unwrap(), &id]);
    cmd.stdout(std::fs::File::create(&out_path).unwrap());
    with_fds(&mut cmd, vec![std::fs::File::create(dir.path().join("x")).unwrap()]);
    assert!(cmd.status().unwrap().success());
    let fds = std::fs::read_to_string(&out_path).unwrap();
    assert_eq!(
        fds.split_whitespace().collect::<Vec<_>>(),
        ["0", "1", "2", "3"],
        "3 is ls's own dir fd"
    );
}

#[test]
fn listen_fds_are_passed_on_with_listen_pid_1() {
    require!();
    let h = Hezi::new();
    let b = Bundle::busybox(&["sh", "-c", "echo $LISTEN_FDS $LISTEN_PID; echo activated >&3"]);
    b.write();
    let dir = TempDir::new("listen");
    let target = dir.path().join("sock.txt");
    let id = unique_id("listen");
    let out_path = dir.path().join("stdout");
    // LISTEN_PID must name hezi itself: a shell sets it to its own pid and execs hezi.
    let mut cmd = std::process::Command::new("/bin/sh");
    cmd.args(["-c", "LISTEN_PID=$$ LISTEN_FDS=1 exec \"$0\" \"$@\""])
        .arg(hezi_bin())
        .arg("--root")
        .arg(h.root())
        .args(["run", "-b", b.path().to_str().unwrap(), &id]);
    cmd.stdout(std::fs::File::create(&out_path).unwrap());
    with_fds(&mut cmd, vec![std::fs::File::create(&target).unwrap()]);
    assert!(cmd.status().unwrap().success());
    assert_eq!(std::fs::read_to_string(&out_path).unwrap(), "1 1\n");
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "activated\n");
}

#[test]
fn exec_preserve_fds_hands_on_extra_descriptors() {
    require!();
    let h = Hezi::new();
    let b = Bundle::busybox(&["sleep", "3101"]);
    let id = unique_id("execfds");
    h.create(&b, &id);
    h.ok(&["start", &id]);
    let dir = TempDir::new("execfds");
    let target = dir.path().join("fd3.txt");
    let mut cmd = h.command(&["exec", "--preserve-fds", "1", &id, "sh", "-c", "echo via-fd3 >&3"]);
    with_fds(&mut cmd, vec![std::fs::File::create(&target).unwrap()]);
    assert!(cmd.status().unwrap().success());
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "via-fd3\n");
    // Without the flag the descriptor stays outside.
    let mut cmd = h.command(&["exec", &id, "sh", "-c", "echo leaked >&3"]);
    with_fds(&mut cmd, vec![std::fs::File::create(&target).unwrap()]);
    assert!(!cmd.status().unwrap().success(), "fd 3 reached the exec'd process");
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "");
    h.ok(&["delete", "-f", &id]);
}

/// `hezi run` of a terminal process in the foreground attaches it to the caller's terminal,
/// with the container's /dev/console on the same pty, and passes on the exit code.
#[test]
fn foreground_run_with_a_terminal_attaches_to_the_callers() {
    require!();
    let h = Hezi::new();
    let mut b = Bundle::busybox(&[
        "sh",
        "-c",
        "tty; stat -c console=%t:%T /dev/console; stat -c tty=%t:%T $(tty); echo typed-out; exit 3",
    ]);
    b.config["process"]["terminal"] = json!(true);
    b.write();
    let id = unique_id("fgtty");
    let (code, out) = hezi_e2e::containerd::run_in_pty(h.command(&["run", "-b", b.path().to_str().unwrap(), &id]));
    assert_eq!(code, 3, "{out}");
    let lines: Vec<&str> = out.lines().map(|l| l.trim_end_matches('\r')).collect();
    assert!(lines[0].starts_with("/dev/pts/"), "{out}");
    let console = lines[1].strip_prefix("console=").expect("stat of /dev/console");
    let tty = lines[2].strip_prefix("tty=").expect("stat of the tty");
    assert_eq!(console, tty, "/dev/console is not the container's terminal: {out}");
    assert_eq!(lines[3], "typed-out");
    assert!(h.ids().is_empty());
}

/// A pty pair for a caller's terminal: (master, slave), close-on-exec.
fn caller_pty() -> (OwnedFd, OwnedFd) {
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
    (master.into(), slave)
}

/// Run `cmd` with a terminal as stdin and stderr but a pipe as stdout, typing `input` on the
/// terminal: returns its exit code and the exact bytes it wrote to stdout, untouched by any
/// terminal on the way.
fn stdout_bytes_on_a_terminal(mut cmd: std::process::Command, input: &[u8]) -> (i32, Vec<u8>) {
    use std::io::Write;
    use std::process::Stdio;
    let (master, slave) = caller_pty();
    let dup = |fd: &OwnedFd| Stdio::from(fd.try_clone().expect("dup the pty slave"));
    let child = cmd
        .stdin(dup(&slave))
        .stderr(dup(&slave))
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn hezi");
    std::fs::File::from(master.try_clone().unwrap())
        .write_all(input)
        .expect("type on the terminal");
    let out = child.wait_with_output().expect("wait for hezi");
    drop(master);
    (out.status.code().unwrap_or(-1), out.stdout)
}

/// As runc (ClearONLCR on the master it relays), hezi turns off the container pty's `\n` ->
/// `\r\n` translation when it relays the terminal itself (`run`, `exec -t` in the foreground):
/// output redirected to a file gets the container's bytes as written, and the caller's terminal
/// (kept with its output processing, as runc keeps it) starts new lines itself.
#[test]
fn foreground_terminal_output_keeps_plain_newlines() {
    require!();
    let h = Hezi::new();
    let mut b = Bundle::busybox(&["sh", "-c", "printf 'a\\nb\\n'"]);
    b.config["process"]["terminal"] = json!(true);
    b.write();
    let id = unique_id("onlcr");
    let (code, out) = stdout_bytes_on_a_terminal(h.command(&["run", "-b", b.path().to_str().unwrap(), &id]), b"");
    assert_eq!(code, 0);
    assert_eq!(String::from_utf8_lossy(&out), "a\nb\n");

    // An exec'd process runs as soon as its master is sent, before hezi has received it (runc's
    // too): it writes only after reading a line, which reaches it through hezi's relay (set up
    // after the translation is off), so what it writes does not race hezi.
    let b = Bundle::busybox(&["sleep", "30"]);
    let id = unique_id("onlcr-exec");
    h.create(&b, &id);
    h.ok(&["start", &id]);
    let (code, out) = stdout_bytes_on_a_terminal(
        h.command(&["exec", "-t", &id, "sh", "-c", "read x; printf 'c\\nd\\n'"]),
        b"go\r",
    );
    assert_eq!(code, 0);
    // The typed line is echoed first (the pty's echo, also without the translation).
    let out = String::from_utf8_lossy(&out);
    assert!(out.ends_with("c\nd\n") && !out.contains('\r'), "{out:?}");
    h.ok(&["delete", "-f", &id]);
}

/// Through `--console-socket`, hezi hands out the master as runc does: with the pty's default
/// `\n` -> `\r\n` translation on (runc clears it only on a master it relays itself; containerd
/// and other receivers set their own).
#[test]
fn console_socket_master_keeps_the_ptys_default_translation() {
    require!();
    let h = Hezi::new();
    let dir = TempDir::new("console-onlcr");
    let sock = dir.path().join("console.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let mut b = Bundle::busybox(&["sh", "-c", "printf 'a\\nb\\n'"]);
    b.config["process"]["terminal"] = json!(true);
    b.write();
    let id = unique_id("tty-onlcr");
    let receiver = std::thread::spawn(move || receive_fd(&listener));
    h.ok(&[
        "create",
        "-b",
        b.path().to_str().unwrap(),
        "--console-socket",
        sock.to_str().unwrap(),
        &id,
    ]);
    let mut file = std::fs::File::from(receiver.join().unwrap());
    h.ok(&["start", &id]);
    let mut out = Vec::new();
    let mut chunk = [0u8; 1024];
    // Reading the master ends with EIO once the container's side is closed.
    while let Ok(n @ 1..) = file.read(&mut chunk) {
        out.extend_from_slice(&chunk[..n]);
    }
    assert_eq!(String::from_utf8_lossy(&out), "a\r\nb\r\n");
    h.ok(&["delete", "-f", &id]);
}

/// As runc (fixStdioPermissions): a process running as user 1000 owns its console, in the
/// devpts `tty` group (5 under `hezi spec`'s devpts mount), mode 620.
#[test]
fn the_console_belongs_to_the_process_user() {
    require!();
    let h = Hezi::new();
    let mut b = Bundle::busybox(&["stat", "-L", "-c", "%u %g %a", "/proc/self/fd/0"]);
    b.config["process"]["terminal"] = json!(true);
    b.config["process"]["user"] = json!({ "uid": 1000, "gid": 1000 });
    b.write();
    let id = unique_id("ttyowner");
    let (code, out) = hezi_e2e::containerd::run_in_pty(h.command(&["run", "-b", b.path().to_str().unwrap(), &id]));
    assert_eq!(code, 0, "{out}");
    assert_eq!(out.trim_end(), "1000 5 620");
}
