//! A netlink socket, written out by hand (a netlink crate would be thousands of lines for the
//! six messages hezi sends): requests are built as the kernel lays them out, sent to the kernel
//! in one datagram, and answered up to the ack, the end of a dump or the kernel's error.
//!
//! Two families use it: rtnetlink, to move network devices into a container (netdev), and
//! nfnetlink, to delete the nftables table an old CRIU leaves behind (checkpoint::netlock).
//!
//! A netlink socket talks to the network namespace it was created in, so a socket for another
//! namespace is created on a short-lived thread that entered it ([`Socket::open_in`]).

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use nix::errno::Errno;

pub(crate) const NLMSG_HDR: usize = 16;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
pub(crate) const REQUEST: u16 = libc::NLM_F_REQUEST as u16;
pub(crate) const ACK: u16 = libc::NLM_F_ACK as u16;

pub(crate) fn align(n: usize) -> usize {
    (n + 3) & !3
}

/// A request being built: the header (its length and sequence number are filled in when it
/// is sent), the family's message, then attributes.
pub(crate) struct Request(Vec<u8>);

impl Request {
    pub(crate) fn new(kind: u16, flags: u16, body: &[u8]) -> Request {
        let mut b = vec![0u8; NLMSG_HDR];
        b[4..6].copy_from_slice(&kind.to_ne_bytes());
        b[6..8].copy_from_slice(&flags.to_ne_bytes());
        b.extend_from_slice(body);
        Request(b)
    }

    pub(crate) fn attr(mut self, kind: u16, data: &[u8]) -> Request {
        let len = 4 + data.len();
        self.0.extend_from_slice(&(len as u16).to_ne_bytes());
        self.0.extend_from_slice(&kind.to_ne_bytes());
        self.0.extend_from_slice(data);
        self.0.resize(align(self.0.len()), 0);
        self
    }

    /// A NUL-terminated string attribute.
    pub(crate) fn name(self, kind: u16, name: &str) -> Request {
        let mut z = name.as_bytes().to_vec();
        z.push(0);
        self.attr(kind, &z)
    }

    fn flags(&self) -> u16 {
        u16::from_ne_bytes([self.0[6], self.0[7]])
    }

    /// The message as sent: its length and sequence number in the header.
    pub(crate) fn finish(mut self, seq: u32) -> Vec<u8> {
        let len = self.0.len() as u32;
        self.0[0..4].copy_from_slice(&len.to_ne_bytes());
        self.0[8..12].copy_from_slice(&seq.to_ne_bytes());
        self.0
    }
}

/// The attributes after a family message, as (type, payload).
pub(crate) fn attrs(mut b: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    while b.len() >= 4 {
        let len = u16::from_ne_bytes([b[0], b[1]]) as usize;
        let kind = u16::from_ne_bytes([b[2], b[3]]) & 0x3fff;
        if len < 4 || len > b.len() {
            break;
        }
        out.push((kind, &b[4..len]));
        b = &b[align(len).min(b.len())..];
    }
    out
}

pub(crate) struct Socket {
    fd: OwnedFd,
    seq: u32,
}

impl Socket {
    /// A socket of netlink family `protocol` (NETLINK_ROUTE, NETLINK_NETFILTER) in the
    /// caller's network namespace.
    pub(crate) fn open(protocol: libc::c_int) -> Result<Socket, Errno> {
        // SAFETY: socket(2) with constant arguments; the fd returned is ours alone.
        let fd = unsafe { libc::socket(libc::AF_NETLINK, libc::SOCK_RAW | libc::SOCK_CLOEXEC, protocol) };
        if fd < 0 {
            return Err(Errno::last());
        }
        // SAFETY: `fd` was just returned by socket(2) and nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Socket { fd, seq: 0 })
    }

    /// A socket in the network namespace `ns` (an nsfs fd), made on a thread that entered it,
    /// so this process's own namespace never changes.
    pub(crate) fn open_in(ns: BorrowedFd<'_>, protocol: libc::c_int) -> Result<Socket, Errno> {
        std::thread::scope(|s| {
            s.spawn(|| {
                nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWNET)?;
                Socket::open(protocol)
            })
            .join()
            .unwrap_or(Err(Errno::EIO))
        })
    }

    /// Send one request and collect the messages answering it (type, payload after the
    /// header), up to the ack or the end of a dump. An error the kernel sends is the result.
    pub(crate) fn call(&mut self, req: Request) -> Result<Vec<(u16, Vec<u8>)>, Errno> {
        self.call_all(vec![req])
    }

    /// Send requests in one datagram (an nfnetlink batch is three), numbered in order, and
    /// collect what answers any of them, up to an ack, the end of a dump, or the first error.
    pub(crate) fn call_all(&mut self, reqs: Vec<Request>) -> Result<Vec<(u16, Vec<u8>)>, Errno> {
        let first = self.seq + 1;
        let flags = reqs.iter().fold(0, |f, r| f | r.flags());
        let (dump, ack) = (flags & libc::NLM_F_DUMP as u16 != 0, flags & ACK != 0);
        let mut datagram = Vec::new();
        for req in reqs {
            self.seq += 1;
            datagram.extend_from_slice(&req.finish(self.seq));
        }
        self.send(&datagram)?;
        let mut out = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = nix::sys::socket::recv(self.fd.as_raw_fd(), &mut buf, nix::sys::socket::MsgFlags::empty())?;
            let mut b = &buf[..n];
            while b.len() >= NLMSG_HDR {
                let len = u32::from_ne_bytes([b[0], b[1], b[2], b[3]]) as usize;
                let kind = u16::from_ne_bytes([b[4], b[5]]);
                let seq = u32::from_ne_bytes([b[8], b[9], b[10], b[11]]);
                if len < NLMSG_HDR || len > b.len() {
                    return Err(Errno::EBADMSG);
                }
                let body = &b[NLMSG_HDR..len];
                b = &b[align(len).min(b.len())..];
                if !(first..=self.seq).contains(&seq) {
                    continue;
                }
                match kind {
                    NLMSG_DONE => return Ok(out),
                    NLMSG_ERROR => {
                        let code = body
                            .get(0..4)
                            .map_or(-libc::EBADMSG, |c| i32::from_ne_bytes([c[0], c[1], c[2], c[3]]));
                        return if code == 0 {
                            Ok(out)
                        } else {
                            Err(Errno::from_raw(-code))
                        };
                    }
                    _ => out.push((kind, body.to_vec())),
                }
            }
            // A plain request without an ack is answered by one message.
            if !dump && !ack && !out.is_empty() {
                return Ok(out);
            }
        }
    }

    fn send(&self, datagram: &[u8]) -> Result<(), Errno> {
        // SAFETY: sockaddr_nl is plain data; zeroed it addresses the kernel (nl_pid 0).
        let mut kernel: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        kernel.nl_family = libc::AF_NETLINK as u16;
        // SAFETY: the buffer and the address are valid for the lengths given.
        let sent = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                datagram.as_ptr().cast(),
                datagram.len(),
                0,
                (&kernel as *const libc::sockaddr_nl).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as u32,
            )
        };
        if sent < 0 {
            return Err(Errno::last());
        }
        Ok(())
    }
}

impl AsFd for Socket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_laid_out_as_the_kernel_reads_them() {
        let r = Request::new(libc::RTM_NEWLINK, REQUEST | ACK, &[0u8; 16])
            .attr(libc::IFLA_NET_NS_FD, &5u32.to_ne_bytes())
            .name(libc::IFLA_IFNAME, "eth1")
            .finish(9);
        // header 16 + ifinfomsg 16 + (4+4) + (4+5 padded to 12)
        assert_eq!(r.len(), 16 + 16 + 8 + 12);
        assert_eq!(u32::from_ne_bytes([r[0], r[1], r[2], r[3]]) as usize, r.len());
        assert_eq!(u32::from_ne_bytes([r[8], r[9], r[10], r[11]]), 9);
        let a = attrs(&r[32..]);
        assert_eq!(a[0], (libc::IFLA_NET_NS_FD, &5u32.to_ne_bytes()[..]));
        assert_eq!(a[1], (libc::IFLA_IFNAME, &b"eth1\0"[..]));
    }
}
