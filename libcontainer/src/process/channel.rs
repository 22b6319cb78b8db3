//! The socketpair between `create` (the parent) and the container's init.
//!
//! SOCK_SEQPACKET keeps message boundaries, so a message is one send and one recv: a tag byte and
//! an optional UTF-8 text. When the init dies, the parent's recv sees end-of-file.

use std::os::fd::{AsRawFd, OwnedFd};

use nix::sys::socket::{recv, send, socketpair, AddressFamily, MsgFlags, SockFlag, SockType};

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
}

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

    /// The next message, or None when the other side closed (the init died).
    pub fn recv(&self) -> Result<Option<Msg>> {
        let mut buf = vec![0u8; MAX];
        let n = loop {
            match recv(self.0.as_raw_fd(), &mut buf, MsgFlags::empty()) {
                Err(nix::errno::Errno::EINTR) => continue,
                r => break r.ctx(|| "receive on the init channel".into())?,
            }
        };
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
}
