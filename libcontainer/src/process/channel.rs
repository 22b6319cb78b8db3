//! The socketpair between the runtime (the parent) and a process it starts: a container's init
//! (`create`) or an exec'd process (`exec`).
//!
//! SOCK_SEQPACKET keeps message boundaries, so a message is one send and one recv: a tag byte and
//! an optional UTF-8 text, or (SeccompFd) a tag byte with one fd as SCM_RIGHTS. When the child
//! dies, the parent's recv sees end-of-file; when the parent dies, the child's does.
//!
//! # The exchange
//!
//! The parent's side is one state machine for every kind of start, in container/launch.rs;
//! the child's is in process/init.rs (`create`) and process/join.rs (`exec`).
//!
//! `create` (parent ⇄ init):
//! 1. parent → `Go`: id maps written, cgroups joined.
//! 2. init → `Hooks`, parent → `HooksDone(state)`: only when the spec has prestart,
//!    createRuntime, createContainer or startContainer hooks; mounts made, root not yet switched.
//!    Between `Go` and `Ready`, in a user namespace: init → `MountSource(path)` for each bind
//!    source the init cannot open itself, parent → `MountFd` (that source, opened in the init's
//!    mount tree with the runtime's credentials) or `Failed(why)`. See rootfs/source.rs. The
//!    same for an idmapped bind: init → `IdmapSource(request)`, parent → `MountFd` (a detached
//!    mount, idmapped) or `Failed(why)`; see rootfs/idmap.rs.
//! 3. init → `SeccompFd` (0 or 1 times, without noNewPrivileges): the notify fd to forward.
//! 4. init → `Ready`: set up. Until now the init dies with the parent (parent-death signal).
//! 5. parent records the pid in the state (atomically), then → `Recorded`.
//! 6. init clears its parent-death signal; with noNewPrivileges loads the filter now
//!    (→ `SeccompFd` 0 or 1 times), then → `Waiting`, closes the runtime's log file and its end
//!    of the channel, and blocks on the exec fifo until `start`, holding nothing but its stdio
//!    and the fifo. The parent returns once it sees that end-of-file.
//!
//! `exec` (parent ⇄ exec'd process):
//! 1. parent → `Go`: the child may join the container (its cgroup, on v1 hybrid hosts, joined).
//! 2. child → `SeccompFd` (0 or 1, without noNewPrivileges), then → `Ready`: set up.
//! 3. parent writes the pid file and joins a paused container's cgroup, then → `Recorded`.
//! 4. child clears its parent-death signal, loads the filter with noNewPrivileges (→ `SeccompFd`),
//!    execs: the channel closes (close-on-exec), which the parent takes as success.
//!
//! A paused container's exec child clears its parent-death signal before `Ready`: once in the
//! frozen cgroup it reads `Recorded` only after `resume`, and the parent does not wait that long.
//!
//! `Failed(text)` may come from the child instead of any of its messages; it ends the exchange.
//! A child never outlives a parent that died before step 5 (resp. 3): the parent-death signal
//! kills it, and a parent gone before the signal was set shows as end-of-file on its next recv.

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::sys::socket::{
    recvmsg, send, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag,
    SockType,
};

use crate::error::{Error, Result, SysContext};

#[derive(Debug, PartialEq, Eq)]
pub enum Msg {
    /// Parent → init: uid/gid maps written and cgroups joined; go on.
    Go,
    /// Child → parent: fully set up; record my pid before I go on.
    Ready,
    /// Parent → child: your pid is recorded (state or pid file); you may outlive me now.
    Recorded,
    /// Init → parent: no longer tied to the parent, and blocking on the exec fifo until `start`.
    Waiting,
    /// Init → parent: setup failed at this step.
    Failed(String),
    /// Init → parent: mounts are made, pivot_root is next: run prestart and createRuntime hooks.
    Hooks,
    /// Parent → init: those hooks ran; here is the state JSON for the init's own hooks.
    HooksDone(String),
    /// Init (or exec child) → parent: the seccomp notify fd, for the parent to pass to the
    /// profile's listener (the child cannot reach the host's listener path).
    SeccompFd(PassedFd),
    /// Init → parent: open this bind source for me (I am in a user namespace and cannot).
    MountSource(String),
    /// Init → parent: make this idmapped bind mount for me (rootfs/idmap.rs; JSON).
    IdmapSource(String),
    /// Parent → init: the bind source asked for, as an O_PATH fd.
    MountFd(PassedFd),
}

/// An fd carried by a message. Equal when it is the same slot of our fd table.
#[derive(Debug)]
pub struct PassedFd(pub OwnedFd);

impl PartialEq for PassedFd {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_raw_fd() == other.0.as_raw_fd()
    }
}

impl Eq for PassedFd {}

pub struct Channel(OwnedFd);

impl AsFd for Channel {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

/// Largest message: an error text. Longer texts are cut at a char boundary.
const MAX: usize = 8192;

pub fn pair() -> Result<(Channel, Channel)> {
    let (a, b) = socketpair(AddressFamily::Unix, SockType::SeqPacket, None, SockFlag::SOCK_CLOEXEC)
        .ctx(|| "socketpair for the init channel".into())?;
    Ok((Channel(a), Channel(b)))
}

impl Channel {
    pub fn send(&self, msg: &Msg) -> Result<()> {
        let mut buf = Vec::with_capacity(64);
        match msg {
            Msg::Go => buf.push(b'G'),
            Msg::Ready => buf.push(b'R'),
            Msg::Recorded => buf.push(b'P'),
            Msg::Waiting => buf.push(b'W'),
            Msg::Hooks => buf.push(b'H'),
            Msg::SeccompFd(fd) => return self.send_fd(b'S', fd),
            Msg::MountFd(fd) => return self.send_fd(b'F', fd),
            Msg::Failed(text) | Msg::HooksDone(text) | Msg::MountSource(text) | Msg::IdmapSource(text) => {
                buf.push(match msg {
                    Msg::Failed(_) => b'E',
                    Msg::HooksDone(_) => b'D',
                    Msg::MountSource(_) => b'M',
                    _ => b'I',
                });
                let mut end = text.len().min(MAX - 1);
                while !text.is_char_boundary(end) {
                    end -= 1;
                }
                buf.extend_from_slice(&text.as_bytes()[..end]);
            }
        }
        send(self.0.as_raw_fd(), &buf, MsgFlags::MSG_NOSIGNAL).ctx(|| "send on the init channel".into())?;
        Ok(())
    }

    fn send_fd(&self, tag: u8, fd: &PassedFd) -> Result<()> {
        let fds = [fd.0.as_raw_fd()];
        let cmsg = [ControlMessage::ScmRights(&fds)];
        let iov = [IoSlice::new(std::slice::from_ref(&tag))];
        sendmsg::<()>(self.0.as_raw_fd(), &iov, &cmsg, MsgFlags::MSG_NOSIGNAL, None)
            .ctx(|| "send an fd on the init channel".into())?;
        Ok(())
    }

    /// A send to the child failed (EPIPE): it died, usually after reporting why. Its report is
    /// the error to give, not the broken pipe.
    pub fn failure_or(&self, send_error: Error) -> Error {
        match self.recv() {
            Ok(Some(Msg::Failed(m))) => Error::Init(m),
            _ => send_error,
        }
    }

    /// The next message, or None when the other side closed (the init died).
    pub fn recv(&self) -> Result<Option<Msg>> {
        let mut buf = vec![0u8; MAX];
        let mut space = nix::cmsg_space!([RawFd; 1]);
        let (n, fd) = loop {
            let mut iov = [IoSliceMut::new(&mut buf)];
            match recvmsg::<()>(
                self.0.as_raw_fd(),
                &mut iov,
                Some(&mut space),
                MsgFlags::MSG_CMSG_CLOEXEC,
            ) {
                Err(nix::errno::Errno::EINTR) => continue,
                r => {
                    let msg = r.ctx(|| "receive on the init channel".into())?;
                    let mut fd = None;
                    for c in msg
                        .cmsgs()
                        .ctx(|| "read a control message on the init channel".into())?
                    {
                        if let ControlMessageOwned::ScmRights(fds) = c {
                            for raw in fds {
                                // SAFETY: SCM_RIGHTS just installed this fd in our table; we
                                // take ownership (a second one is closed on drop).
                                let owned = unsafe { OwnedFd::from_raw_fd(raw) };
                                fd.get_or_insert(owned);
                            }
                        }
                    }
                    break (msg.bytes, fd);
                }
            }
        };
        if let [tag @ (b'S' | b'F')] = buf[..n] {
            let Some(fd) = fd else {
                return Err(Error::Other(format!(
                    "fd message {:?} came without its fd",
                    tag as char
                )));
            };
            let fd = PassedFd(fd);
            return Ok(Some(if tag == b'S' {
                Msg::SeccompFd(fd)
            } else {
                Msg::MountFd(fd)
            }));
        }
        // Any fd that came with another message is closed here.
        drop(fd);
        Ok(match &buf[..n] {
            [] => None,
            [b'G'] => Some(Msg::Go),
            [b'R'] => Some(Msg::Ready),
            [b'P'] => Some(Msg::Recorded),
            [b'W'] => Some(Msg::Waiting),
            [b'H'] => Some(Msg::Hooks),
            [b'E', text @ ..] => Some(Msg::Failed(String::from_utf8_lossy(text).into_owned())),
            [b'D', text @ ..] => Some(Msg::HooksDone(String::from_utf8_lossy(text).into_owned())),
            [b'M', text @ ..] => Some(Msg::MountSource(String::from_utf8_lossy(text).into_owned())),
            [b'I', text @ ..] => Some(Msg::IdmapSource(String::from_utf8_lossy(text).into_owned())),
            other => {
                return Err(Error::Other(format!(
                    "unexpected message on the init channel: {other:?}"
                )))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_eof() {
        let (a, b) = pair().unwrap();
        a.send(&Msg::Go).unwrap();
        a.send(&Msg::Recorded).unwrap();
        a.send(&Msg::Waiting).unwrap();
        a.send(&Msg::Failed("mount proc on /proc: EPERM".into())).unwrap();
        assert_eq!(b.recv().unwrap(), Some(Msg::Go));
        assert_eq!(b.recv().unwrap(), Some(Msg::Recorded));
        assert_eq!(b.recv().unwrap(), Some(Msg::Waiting));
        assert_eq!(
            b.recv().unwrap(),
            Some(Msg::Failed("mount proc on /proc: EPERM".into()))
        );
        drop(a);
        assert_eq!(b.recv().unwrap(), None);
    }

    #[test]
    fn passes_an_fd() {
        let (a, b) = pair().unwrap();
        let (r, w) = nix::unistd::pipe().unwrap();
        a.send(&Msg::SeccompFd(PassedFd(w))).unwrap();
        a.send(&Msg::Ready).unwrap();
        let Some(Msg::SeccompFd(PassedFd(got))) = b.recv().unwrap() else {
            panic!("expected an fd");
        };
        // The received fd is the pipe's write end: what goes in comes out of `r`.
        nix::unistd::write(&got, b"x").unwrap();
        let mut buf = [0u8; 1];
        assert_eq!(nix::unistd::read(&r, &mut buf).unwrap(), 1);
        assert_eq!(&buf, b"x");
        assert_eq!(b.recv().unwrap(), Some(Msg::Ready));
    }

    #[test]
    fn mount_source_request_and_reply() {
        let (a, b) = pair().unwrap();
        a.send(&Msg::MountSource("/srv/data dir".into())).unwrap();
        assert_eq!(b.recv().unwrap(), Some(Msg::MountSource("/srv/data dir".into())));
        let (r, _w) = nix::unistd::pipe().unwrap();
        b.send(&Msg::MountFd(PassedFd(r))).unwrap();
        assert!(matches!(a.recv().unwrap(), Some(Msg::MountFd(_))));
    }
}
