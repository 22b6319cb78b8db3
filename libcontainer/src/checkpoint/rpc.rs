//! Driving `criu swrk FD`: one request over a SOCK_SEQPACKET socketpair, then replies until the
//! final one, acknowledging each notify callback (CRIU waits for the ack before going on).

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use nix::sys::socket::{recvmsg, send, socketpair, AddressFamily, ControlMessageOwned, MsgFlags, SockFlag, SockType};

use super::opts::Opts;
use super::wire::{fields, Encoder, Value};
use crate::error::{Error, Result};

/// criu_req_type values of rpc.proto.
pub const DUMP: i32 = 1;
pub const RESTORE: i32 = 2;
pub const PRE_DUMP: i32 = 4;
const NOTIFY: i32 = 6;

/// What the final reply said.
#[derive(Debug, Default)]
pub struct Reply {
    /// criu_restore_resp.pid: the restored tree's root.
    pub restored_pid: Option<i32>,
    /// Notify callbacks CRIU made, in order, with the pid each named (post-restore names the
    /// restored init).
    pub notifies: Vec<(String, i32)>,
}

/// The largest reply CRIU sends is far below this (its own receive buffer is similar).
const MAX_MSG: usize = 1 << 16;

/// Send `criu_req{type, opts}` to a fresh `criu swrk` and collect its replies. The fds `opts`
/// names (images and work directories) are not close-on-exec, so the child inherits them.
/// `prepare` runs once the child exists and before it gets the request, with its pid and the
/// options to add to (restore places the child in the container's cgroup there, as runc does,
/// and names that cgroup to CRIU). The child's own stdin is /dev/null, and so are its stdout
/// and stderr on restore: what it prints there (libnftables' complaints, say) would otherwise
/// reach the restored container's output, which is often the caller's. The stdio CRIU gives
/// the restored init comes through descriptors.rs's copies instead.
/// `on_notify` sees each notify before it is acknowledged, with the file CRIU passes along if
/// any (the new pty master of an orphaned slave, "orphan-pts-master"; "status-ready" of a lazy
/// dump's page server has none).
pub fn call(
    req_type: i32,
    mut opts: Opts,
    prepare: impl FnOnce(i32, &mut Opts) -> Result<()>,
    on_notify: &mut dyn FnMut(&str, Option<OwnedFd>) -> Result<()>,
) -> Result<Reply> {
    let (ours, theirs) = socketpair(AddressFamily::Unix, SockType::SeqPacket, None, SockFlag::SOCK_CLOEXEC)
        .map_err(|e| Error::sys("socketpair for criu swrk", e))?;
    let mut child = spawn_swrk(&theirs, req_type == RESTORE)?;
    drop(theirs);

    let result = prepare(child.id() as i32, &mut opts).and_then(|()| {
        let mut req = Encoder::new();
        req.int32(1, req_type).bytes(2, &opts.enc.into_bytes());
        exchange(&ours, req_type, &req.into_bytes(), on_notify)
    });
    drop(ours);
    // CRIU exits once the socket closes; reap it whatever the exchange said.
    let status = child.wait().map_err(|e| Error::io("wait for criu swrk", e))?;
    let reply = result?;
    if !status.success() && reply.restored_pid.is_none() && req_type == RESTORE {
        return Err(Error::Other(format!("criu swrk exited with {status}")));
    }
    Ok(reply)
}

fn spawn_swrk(theirs: &OwnedFd, quiet: bool) -> Result<std::process::Child> {
    let fd = theirs.as_raw_fd();
    let mut cmd = Command::new("criu");
    cmd.arg("swrk").arg("3").stdin(Stdio::null());
    if quiet {
        cmd.stdout(Stdio::null()).stderr(Stdio::null());
    }
    // SAFETY: between fork and exec only async-signal-safe calls: dup2 onto fd 3 (which also
    // clears close-on-exec on the copy) and returning its error.
    unsafe {
        cmd.pre_exec(move || {
            if libc::dup2(fd, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.spawn().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::Other("criu is not installed (no criu in PATH); checkpoint and restore need CRIU".into())
        } else {
            Error::io("start criu swrk", e)
        }
    })
}

fn exchange(
    sock: &OwnedFd,
    req_type: i32,
    req: &[u8],
    on_notify: &mut dyn FnMut(&str, Option<OwnedFd>) -> Result<()>,
) -> Result<Reply> {
    send(sock.as_raw_fd(), req, MsgFlags::empty()).map_err(|e| Error::sys("send request to criu", e))?;
    let mut reply = Reply::default();
    let mut buf = vec![0u8; MAX_MSG];
    loop {
        let (n, fd) = recv_with_fd(sock, &mut buf)?;
        if n == 0 {
            return Err(Error::Other(
                "criu swrk closed the socket without a reply (see its log in the work directory)".into(),
            ));
        }
        let resp = parse_resp(&buf[..n])?;
        if resp.kind == NOTIFY {
            on_notify(&resp.script, fd)?;
            reply.notifies.push((resp.script.clone(), resp.notify_pid));
            let mut ack = Encoder::new();
            ack.int32(1, NOTIFY).bool(3, true);
            send(sock.as_raw_fd(), &ack.into_bytes(), MsgFlags::empty())
                .map_err(|e| Error::sys("acknowledge criu notify", e))?;
            continue;
        }
        if !resp.success {
            let what = match req_type {
                DUMP => "dump",
                PRE_DUMP => "pre-dump",
                _ => "restore",
            };
            let mut msg = format!("criu {what} failed");
            if !resp.errmsg.is_empty() {
                msg.push_str(&format!(": {}", resp.errmsg));
            }
            if resp.errno != 0 {
                msg.push_str(&format!(" ({})", nix::errno::Errno::from_raw(resp.errno)));
            }
            msg.push_str(" (criu's log is in the work directory)");
            return Err(Error::Other(msg));
        }
        reply.restored_pid = resp.restored_pid;
        return Ok(reply);
    }
}

/// One message from CRIU, and the file it carries if any (SCM_RIGHTS).
fn recv_with_fd(sock: &OwnedFd, buf: &mut [u8]) -> Result<(usize, Option<OwnedFd>)> {
    let mut iov = [std::io::IoSliceMut::new(buf)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(sock.as_raw_fd(), &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC)
        .map_err(|e| Error::sys("receive reply from criu", e))?;
    let mut fd = None;
    for c in msg.cmsgs().map_err(|e| Error::sys("read criu's control message", e))? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            for (i, raw) in fds.into_iter().enumerate() {
                // SAFETY: SCM_RIGHTS just installed these fds in our table; we own them (the
                // first is kept, any other closed on drop).
                let owned = unsafe { OwnedFd::from_raw_fd(raw) };
                if i == 0 {
                    fd = Some(owned);
                }
            }
        }
    }
    Ok((msg.bytes, fd))
}

#[derive(Default)]
struct Resp {
    kind: i32,
    success: bool,
    restored_pid: Option<i32>,
    script: String,
    notify_pid: i32,
    errno: i32,
    errmsg: String,
}

/// criu_resp: type 1, success 2, restore 4 {pid 1}, notify 5 {script 1, pid 2}, cr_errno 7,
/// cr_errmsg 9.
fn parse_resp(buf: &[u8]) -> Result<Resp> {
    let bad = |e: String| Error::Other(format!("malformed reply from criu: {e}"));
    let mut r = Resp::default();
    for (field, v) in fields(buf).map_err(bad)? {
        match (field, v) {
            (1, Value::Varint(t)) => r.kind = t as i32,
            (2, Value::Varint(b)) => r.success = b != 0,
            (4, Value::Bytes(m)) => {
                for (f, v) in fields(m).map_err(bad)? {
                    if let (1, Value::Varint(p)) = (f, v) {
                        r.restored_pid = Some(p as i32);
                    }
                }
            }
            (5, Value::Bytes(m)) => {
                for (f, v) in fields(m).map_err(bad)? {
                    match (f, v) {
                        (1, Value::Bytes(s)) => r.script = String::from_utf8_lossy(s).into_owned(),
                        (2, Value::Varint(p)) => r.notify_pid = p as i32,
                        _ => {}
                    }
                }
            }
            (7, Value::Varint(e)) => r.errno = e as i32,
            (9, Value::Bytes(s)) => r.errmsg = String::from_utf8_lossy(s).into_owned(),
            _ => {}
        }
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_restore_reply_and_a_notify() {
        let mut inner = Encoder::new();
        inner.int32(1, 4242);
        let mut e = Encoder::new();
        e.int32(1, RESTORE).bool(2, true).bytes(4, &inner.into_bytes());
        let r = parse_resp(&e.into_bytes()).unwrap();
        assert!(r.success);
        assert_eq!(r.restored_pid, Some(4242));

        let mut n = Encoder::new();
        n.string(1, "post-restore").int32(2, 77);
        let mut e = Encoder::new();
        e.int32(1, NOTIFY).bool(2, true).bytes(5, &n.into_bytes());
        let r = parse_resp(&e.into_bytes()).unwrap();
        assert_eq!((r.kind, r.script.as_str(), r.notify_pid), (NOTIFY, "post-restore", 77));
    }
}
