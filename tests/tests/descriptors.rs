//! What a created container's init holds while it waits for `start`: its stdio and the exec
//! fifo, as runc's does; nothing of the runtime (its log file, the state directory) and nothing
//! the runtime's caller let it inherit. An fd to a host directory there would let a process of
//! the container (or a hook) walk out to the host's filesystem through /proc/<init>/fd.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::Path;

use hezi_e2e::{require, unique_id, Bundle, Hezi, TempDir};

#[test]
fn a_created_init_holds_only_its_stdio_and_the_exec_fifo() {
    require!();
    let h = Hezi::new();
    let b = Bundle::busybox(&["sleep", "4001"]);
    b.write();
    let id = unique_id("fds");
    let io = TempDir::new("fds-io");
    let log = io.path().join("hezi.log");
    // The caller leaks a descriptor of a host directory into hezi (not close-on-exec).
    let leaked = File::open("/").expect("open /");
    let leaked_fd = leaked.as_raw_fd();
    let mut cmd = h.command(&[
        "--log",
        log.to_str().unwrap(),
        "create",
        "--bundle",
        b.path().to_str().unwrap(),
        &id,
    ]);
    cmd.stdout(File::create(io.path().join("out")).unwrap());
    cmd.stderr(File::create(io.path().join("err")).unwrap());
    // SAFETY: the closure only calls fcntl, which is async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            if libc::fcntl(leaked_fd, libc::F_SETFD, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let status = cmd.status().expect("run hezi create");
    let err = std::fs::read_to_string(io.path().join("err")).unwrap_or_default();
    assert!(status.success(), "create failed: {err}");
    drop(leaked);

    let pid = h.state(&id)["pid"].as_i64().unwrap();
    let fd_dir = format!("/proc/{pid}/fd");
    let mut unexpected = Vec::new();
    let mut fifos = 0;
    for entry in std::fs::read_dir(&fd_dir).expect("list the init's fds") {
        let entry = entry.unwrap();
        let fd: i32 = entry.file_name().to_string_lossy().parse().unwrap();
        let target = std::fs::read_link(entry.path()).unwrap_or_default();
        // Through the magic link: what the fd itself is (a directory, a fifo, a socket...).
        let is_dir = std::fs::metadata(entry.path()).is_ok_and(|m| m.is_dir());
        let is_fifo = target == h.root().join(&id).join("exec.fifo");
        match fd {
            _ if is_dir => unexpected.push(format!("{fd} -> {} (a directory)", target.display())),
            0..=2 => {}
            _ if is_fifo => fifos += 1,
            _ => unexpected.push(format!("{fd} -> {}", target.display())),
        }
    }
    h.ok(&["delete", "-f", &id]);
    assert!(
        unexpected.is_empty(),
        "the created init holds more than stdio and the exec fifo: {unexpected:?}"
    );
    assert_eq!(fifos, 1, "the created init does not hold the exec fifo");
    assert!(Path::new(&log).exists(), "--log was not used");
}
