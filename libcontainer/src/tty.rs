//! Terminals: the init opens a pty pair on the container's own devpts, makes the slave its
//! stdio, controlling terminal and /dev/console, and hands the master to whoever listens on the
//! console socket, over SCM_RIGHTS (the protocol runc, containerd and podman speak: the fd plus
//! the pty's name as payload).

use std::io::IoSlice;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use nix::fcntl::OFlag;
use nix::pty::{posix_openpt, ptsname_r, unlockpt};
use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};
use oci_spec::runtime::Box as ConsoleSize;

use crate::error::{Error, Result, SysContext};
use crate::rootfs::mounts::bind;
use crate::rootfs::resolve::{Kind, Root};

/// Connect to the caller's console socket (`--console-socket`), in the runtime before clone3, so
/// the init inherits a connected fd and needs no path on the host after the root switch.
pub fn connect(path: &Path) -> Result<OwnedFd> {
    let stream = UnixStream::connect(path).ctx(|| format!("connect to console socket {}", path.display()))?;
    Ok(OwnedFd::from(stream))
}

/// In the container (after the root switch, or after joining its mount namespace): make the
/// pty, make it our stdio and controlling terminal, send the master. `console`: also bind the
/// slave on /dev/console (the init does; an exec'd process does not).
pub fn setup(socket: &OwnedFd, size: Option<ConsoleSize>, console: bool) -> Result<()> {
    let master = posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC).ctx(|| "open /dev/ptmx".into())?;
    unlockpt(&master).ctx(|| "unlock the pty".into())?;
    let name = ptsname_r(&master).ctx(|| "name the pty".into())?;
    // TIOCGPTPEER opens the slave through the master, immune to anything at /dev/pts/N.
    // SAFETY: ioctl on a valid pty master fd with integer flags; returns a new fd or -1.
    let raw = unsafe {
        libc::ioctl(
            master.as_raw_fd(),
            libc::TIOCGPTPEER,
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    };
    if raw < 0 {
        return Err(Error::sys("open the pty slave", nix::errno::Errno::last()));
    }
    // SAFETY: the kernel just returned this fd to us.
    let slave = unsafe { OwnedFd::from_raw_fd(raw) };
    if let Some(s) = size {
        resize(master.as_fd(), s.height() as u16, s.width() as u16)?;
    }
    if console {
        let target = console_target()?;
        bind(&slave, &target, false).ctx(|| format!("bind {name} on /dev/console"))?;
    }
    send_fd(
        socket.as_fd(),
        master.as_fd(),
        &name,
        "the pty master on the console socket",
    )?;
    drop(master);
    for fd in 0..3 {
        // SAFETY: dup2 onto the standard descriptors, which this process owns.
        if unsafe { libc::dup2(slave.as_raw_fd(), fd) } < 0 {
            return Err(Error::sys(
                format!("dup the pty onto fd {fd}"),
                nix::errno::Errno::last(),
            ));
        }
    }
    // SAFETY: TIOCSCTTY on our stdin (now the pty slave) in a session we lead (setsid was called).
    if unsafe { libc::ioctl(0, libc::TIOCSCTTY, 0) } < 0 {
        return Err(Error::sys(
            "make the pty the controlling terminal",
            nix::errno::Errno::last(),
        ));
    }
    Ok(())
}

/// An O_PATH fd of /dev/console to bind the pty on, made if missing. The image (through a
/// bind-mounted /dev) may have put a symlink or a /proc or /sys file there, and a bind over that
/// would land elsewhere (CVE-2025-52565); refuse anything but a regular file or character device.
fn console_target() -> Result<OwnedFd> {
    use nix::sys::statfs::{PROC_SUPER_MAGIC, SYSFS_MAGIC};
    let root = Root::open(Path::new("/"))?;
    let path = Path::new("dev/console");
    let fd = match root.open_path(path, OFlag::O_NOFOLLOW) {
        Ok(fd) => fd,
        Err(nix::errno::Errno::ENOENT) => {
            root.ensure(path, Kind::File)?;
            root.open_path(path, OFlag::O_NOFOLLOW)
                .map_err(|e| Error::sys("open /dev/console", e))?
        }
        Err(e) => return Err(Error::sys("open /dev/console", e)),
    };
    let st = nix::sys::stat::fstat(fd.as_fd()).ctx(|| "stat /dev/console".into())?;
    let kind = st.st_mode & libc::S_IFMT;
    if kind != libc::S_IFREG && kind != libc::S_IFCHR {
        return Err(Error::Other(
            "/dev/console in the container is not a regular file or character device (a symlink?); \
             refusing to mount the terminal on it"
                .into(),
        ));
    }
    let fs = nix::sys::statfs::fstatfs(fd.as_fd()).ctx(|| "statfs /dev/console".into())?;
    if [PROC_SUPER_MAGIC, SYSFS_MAGIC].contains(&fs.filesystem_type()) {
        return Err(Error::Other(
            "/dev/console in the container is a /proc or /sys file; refusing to mount the terminal on it".into(),
        ));
    }
    Ok(fd)
}

/// Give the process's stdio (0, 1, 2) to `uid`, keeping each one's group, as runc does before
/// switching to the container's user: its console then belongs to that user (and the devpts
/// `tty` group), so a non-root process can use its own terminal. Stdio on /dev/null, or already
/// the user's, is left alone, as is one the kernel will not let us change (a gid or owner not
/// mapped in a user namespace: EINVAL, EPERM; a read-only /dev: EROFS).
///
/// To be called in the init and in an exec'd process after `setup`, before the uid changes.
pub fn give_stdio_to(uid: u32) -> Result<()> {
    let null = nix::sys::stat::stat("/dev/null").ctx(|| "stat /dev/null".into())?;
    for fd in 0..3 {
        // SAFETY: the standard descriptors stay open for the whole call; only borrowed here.
        let fd = unsafe { BorrowedFd::borrow_raw(fd) };
        give_to(fd, uid, null.st_rdev)?;
    }
    Ok(())
}

/// `fd` to `uid` (its group kept), unless it is the device `null_rdev` or `uid`'s already.
fn give_to(fd: BorrowedFd<'_>, uid: u32, null_rdev: libc::dev_t) -> Result<()> {
    use nix::errno::Errno;
    let st = nix::sys::stat::fstat(fd).ctx(|| format!("stat fd {}", fd.as_raw_fd()))?;
    let is_null = st.st_mode & libc::S_IFMT == libc::S_IFCHR && st.st_rdev == null_rdev;
    if st.st_uid == uid || is_null {
        return Ok(());
    }
    let owner = Some(nix::unistd::Uid::from_raw(uid));
    let group = Some(nix::unistd::Gid::from_raw(st.st_gid));
    match nix::unistd::fchown(fd, owner, group) {
        Ok(()) | Err(Errno::EINVAL | Errno::EPERM | Errno::EROFS) => Ok(()),
        Err(e) => Err(Error::sys(format!("give fd {} to uid {uid}", fd.as_raw_fd()), e)),
    }
}

/// Set a terminal's window size.
pub fn resize(fd: BorrowedFd<'_>, rows: u16, cols: u16) -> Result<()> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a valid winsize from the pointer.
    if unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &ws) } < 0 {
        return Err(Error::sys("set the terminal size", nix::errno::Errno::last()));
    }
    Ok(())
}

/// Send `fd` over a unix socket as one message: `payload` as data, the fd as SCM_RIGHTS. `what`
/// names the fd and the socket in the error.
pub fn send_fd(socket: BorrowedFd<'_>, fd: BorrowedFd<'_>, payload: &str, what: &str) -> Result<()> {
    let fds = [fd.as_raw_fd()];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    let iov = [IoSlice::new(payload.as_bytes())];
    sendmsg::<()>(socket.as_raw_fd(), &iov, &cmsg, MsgFlags::empty(), None).ctx(|| format!("send {what}"))?;
    Ok(())
}

/// Receive an fd sent by `send_fd`.
pub fn recv_fd(socket: BorrowedFd<'_>) -> Result<OwnedFd> {
    let mut name = [0u8; 4096];
    let mut iov = [std::io::IoSliceMut::new(&mut name)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(
        socket.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .ctx(|| "receive the pty master".into())?;
    for c in msg.cmsgs().ctx(|| "read the control message".into())? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            if let Some(&fd) = fds.first() {
                // SAFETY: SCM_RIGHTS just installed this fd in our table; we take ownership.
                return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
    }
    Err(Error::Other("console socket: no file descriptor received".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn stdio_goes_to_the_user_with_its_group_kept() {
        if !nix::unistd::geteuid().is_root() {
            return;
        }
        let path = std::env::temp_dir().join(format!("hezi-tty-owner-{}", std::process::id()));
        let file = std::fs::File::create(&path).unwrap();
        nix::unistd::fchown(&file, None, Some(nix::unistd::Gid::from_raw(5))).unwrap();
        let null = nix::sys::stat::stat("/dev/null").unwrap().st_rdev;
        give_to(file.as_fd(), 1000, null).unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!((meta.uid(), meta.gid()), (1000, 5));
        std::fs::remove_file(&path).unwrap();
        // /dev/null is never changed.
        let dev_null = std::fs::File::open("/dev/null").unwrap();
        give_to(dev_null.as_fd(), 1000, null).unwrap();
        assert_eq!(std::fs::metadata("/dev/null").unwrap().uid(), 0);
    }
}
