//! The socketpair between `create` (the parent) and the container's init.
//!
//! SOCK_SEQPACKET keeps message boundaries, so a message is one send and one recv: a tag byte and
//! an optional UTF-8 text, or (SeccompFd) a tag byte with one fd as SCM_RIGHTS. When the init
//! dies, the parent's recv sees end-of-file.

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::sys::socket::{
    recvmsg, send, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag,
    SockType,
};

use crate::error::{Error, Result, SysContext};

#[derive(Debug, PartialEq, Eq)]
pub enum Msg {
    /// Parent → init: uid/gid maps written and cgroups joined; go on.
    Go,
    /// Init → parent: fully set up, now waiting for `start`.
    Ready,
    /// Init → parent: setup failed at this step.
    Failed(String),
    /// Init → parent: mounts are made, pivot_root is next: run prestart and createRuntime hooks.
    Hooks,
    /// Parent → init: those hooks ran; here is the state JSON for the init's own hooks.
    HooksDone(String),
    /// Init (or exec child) → parent: the seccomp notify fd, for the parent to pass to the
    /// profile's listener (the child cannot reach the host's listener path).
    SeccompFd(PassedFd),
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
            Msg::Hooks => buf.push(b'H'),
            Msg::SeccompFd(fd) => return self.send_fd(b'S', fd),
            Msg::Failed(text) | Msg::HooksDone(text) => {
                buf.push(if matches!(msg, Msg::Failed(_)) { b'E' } else { b'D' });
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
        if buf[..n] == [b'S'] {
            return match fd {
                Some(fd) => Ok(Some(Msg::SeccompFd(PassedFd(fd)))),
                None => Err(Error::Other("seccomp fd message came without its fd".into())),
            };
        }
        // Any fd that came with another message is closed here.
        drop(fd);
        Ok(match &buf[..n] {
            [] => None,
            [b'G'] => Some(Msg::Go),
            [b'R'] => Some(Msg::Ready),
            [b'H'] => Some(Msg::Hooks),
            [b'E', text @ ..] => Some(Msg::Failed(String::from_utf8_lossy(text).into_owned())),
            [b'D', text @ ..] => Some(Msg::HooksDone(String::from_utf8_lossy(text).into_owned())),
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
        a.send(&Msg::Failed("mount proc on /proc: EPERM".into())).unwrap();
        assert_eq!(b.recv().unwrap(), Some(Msg::Go));
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
}
