//! The few rtnetlink requests moving a network device takes, written out by hand (a netlink
//! crate would be thousands of lines for five messages): find a link by name, move and rename
//! it (RTM_NEWLINK with IFLA_NET_NS_FD and IFLA_IFNAME), set it up, list and add its addresses.
//!
//! A netlink socket talks to the network namespace it was created in, so a socket for another
//! namespace is created on a short-lived thread that entered it ([`Socket::open_in`]).

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use nix::errno::Errno;

const NLMSG_HDR: usize = 16;
const IFINFOMSG: usize = 16;
const IFADDRMSG: usize = 8;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const REQUEST: u16 = libc::NLM_F_REQUEST as u16;
const ACK: u16 = libc::NLM_F_ACK as u16;

/// A link as the kernel reports it.
#[derive(Debug, Clone)]
pub struct Link {
    pub index: i32,
    pub flags: u32,
}

/// An address of a link, as RTM_GETADDR gives it: enough to add it again elsewhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Addr {
    pub family: u8,
    pub prefix_len: u8,
    pub flags: u32,
    pub scope: u8,
    /// IFA_LOCAL and IFA_ADDRESS, as present (IPv4 has both; IPv6 only IFA_ADDRESS).
    pub local: Option<Vec<u8>>,
    pub address: Option<Vec<u8>>,
}

pub struct Socket {
    fd: OwnedFd,
    seq: u32,
}

fn align(n: usize) -> usize {
    (n + 3) & !3
}

/// A request being built: the header, the family message, then attributes.
struct Request(Vec<u8>);

impl Request {
    fn new(kind: u16, flags: u16, body: &[u8]) -> Request {
        let mut b = vec![0u8; NLMSG_HDR];
        b[4..6].copy_from_slice(&kind.to_ne_bytes());
        b[6..8].copy_from_slice(&flags.to_ne_bytes());
        b.extend_from_slice(body);
        Request(b)
    }

    fn attr(mut self, kind: u16, data: &[u8]) -> Request {
        let len = 4 + data.len();
        self.0.extend_from_slice(&(len as u16).to_ne_bytes());
        self.0.extend_from_slice(&kind.to_ne_bytes());
        self.0.extend_from_slice(data);
        self.0.resize(align(self.0.len()), 0);
        self
    }

    fn name(self, kind: u16, name: &str) -> Request {
        let mut z = name.as_bytes().to_vec();
        z.push(0);
        self.attr(kind, &z)
    }
}

fn ifinfomsg(index: i32, flags: u32, change: u32) -> [u8; IFINFOMSG] {
    let mut m = [0u8; IFINFOMSG];
    m[4..8].copy_from_slice(&index.to_ne_bytes());
    m[8..12].copy_from_slice(&flags.to_ne_bytes());
    m[12..16].copy_from_slice(&change.to_ne_bytes());
    m
}

/// The attributes after a family message, as (type, payload).
fn attrs(mut b: &[u8]) -> Vec<(u16, &[u8])> {
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

impl Socket {
    /// A socket in the caller's network namespace.
    pub fn open() -> Result<Socket, Errno> {
        // SAFETY: socket(2) with constant arguments; the fd returned is ours alone.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_ROUTE,
            )
        };
        if fd < 0 {
            return Err(Errno::last());
        }
        // SAFETY: `fd` was just returned by socket(2) and nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Socket { fd, seq: 0 })
    }

    /// A socket in the network namespace `ns` (an nsfs fd), made on a thread that entered it,
    /// so this process's own namespace never changes.
    pub fn open_in(ns: BorrowedFd<'_>) -> Result<Socket, Errno> {
        std::thread::scope(|s| {
            s.spawn(|| {
                nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWNET)?;
                Socket::open()
            })
            .join()
            .unwrap_or(Err(Errno::EIO))
        })
    }

    /// Send one request and collect the messages answering it (type, payload after the
    /// header), up to the ack or the end of a dump. An error the kernel sends is the result.
    fn call(&mut self, mut req: Request) -> Result<Vec<(u16, Vec<u8>)>, Errno> {
        self.seq += 1;
        let len = req.0.len() as u32;
        req.0[0..4].copy_from_slice(&len.to_ne_bytes());
        req.0[8..12].copy_from_slice(&self.seq.to_ne_bytes());
        let flags = u16::from_ne_bytes([req.0[6], req.0[7]]);
        let (dump, ack) = (flags & libc::NLM_F_DUMP as u16 != 0, flags & ACK != 0);
        // SAFETY: sockaddr_nl is plain data; zeroed it addresses the kernel (nl_pid 0).
        let mut kernel: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        kernel.nl_family = libc::AF_NETLINK as u16;
        // SAFETY: the buffer and the address are valid for the lengths given.
        let sent = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                req.0.as_ptr().cast(),
                req.0.len(),
                0,
                (&kernel as *const libc::sockaddr_nl).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as u32,
            )
        };
        if sent < 0 {
            return Err(Errno::last());
        }
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
                if seq != self.seq {
                    continue;
                }
                match kind {
                    NLMSG_DONE => return Ok(out),
                    NLMSG_ERROR => {
                        let code = body.get(0..4).map_or(-libc::EBADMSG, |c| i32::from_ne_bytes([c[0], c[1], c[2], c[3]]));
                        return if code == 0 { Ok(out) } else { Err(Errno::from_raw(-code)) };
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

    /// The link called `name`, or None.
    pub fn link(&mut self, name: &str) -> Result<Option<Link>, Errno> {
        let req = Request::new(libc::RTM_GETLINK, REQUEST, &ifinfomsg(0, 0, 0)).name(libc::IFLA_IFNAME, name);
        match self.call(req) {
            Ok(msgs) => Ok(msgs.iter().find(|(k, b)| *k == libc::RTM_NEWLINK && b.len() >= IFINFOMSG).map(|(_, b)| {
                Link {
                    index: i32::from_ne_bytes([b[4], b[5], b[6], b[7]]),
                    flags: u32::from_ne_bytes([b[8], b[9], b[10], b[11]]),
                }
            })),
            Err(Errno::ENODEV) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Move link `index` into the network namespace `ns`, named `name` there. The kernel
    /// flushes its addresses and takes it down on the way.
    pub fn move_to(&mut self, index: i32, ns: BorrowedFd<'_>, name: &str) -> Result<(), Errno> {
        let fd = ns.as_raw_fd() as u32;
        let req = Request::new(libc::RTM_NEWLINK, REQUEST | ACK, &ifinfomsg(index, 0, 0))
            .attr(libc::IFLA_NET_NS_FD, &fd.to_ne_bytes())
            .name(libc::IFLA_IFNAME, name);
        self.call(req).map(drop)
    }

    pub fn set_up(&mut self, index: i32) -> Result<(), Errno> {
        let up = libc::IFF_UP as u32;
        self.call(Request::new(libc::RTM_NEWLINK, REQUEST | ACK, &ifinfomsg(index, up, up)))
            .map(drop)
    }

    /// Every address of link `index`.
    pub fn addresses(&mut self, index: i32) -> Result<Vec<Addr>, Errno> {
        let flags = REQUEST | libc::NLM_F_DUMP as u16;
        let msgs = self.call(Request::new(libc::RTM_GETADDR, flags, &[0u8; IFADDRMSG]))?;
        let mut out = Vec::new();
        for (kind, b) in msgs {
            if kind != libc::RTM_NEWADDR || b.len() < IFADDRMSG {
                continue;
            }
            if u32::from_ne_bytes([b[4], b[5], b[6], b[7]]) as i32 != index {
                continue;
            }
            let mut a = Addr {
                family: b[0],
                prefix_len: b[1],
                flags: b[2] as u32,
                scope: b[3],
                local: None,
                address: None,
            };
            for (t, data) in attrs(&b[IFADDRMSG..]) {
                match t {
                    libc::IFA_LOCAL => a.local = Some(data.to_vec()),
                    libc::IFA_ADDRESS => a.address = Some(data.to_vec()),
                    // The full flags; ifa_flags holds only the low eight.
                    libc::IFA_FLAGS if data.len() == 4 => a.flags = u32::from_ne_bytes([data[0], data[1], data[2], data[3]]),
                    _ => {}
                }
            }
            out.push(a);
        }
        Ok(out)
    }

    pub fn add_address(&mut self, index: i32, a: &Addr) -> Result<(), Errno> {
        let mut msg = [0u8; IFADDRMSG];
        msg[0] = a.family;
        msg[1] = a.prefix_len;
        msg[3] = a.scope;
        msg[4..8].copy_from_slice(&index.to_ne_bytes());
        let flags = REQUEST | ACK | libc::NLM_F_CREATE as u16 | libc::NLM_F_EXCL as u16;
        let mut req = Request::new(libc::RTM_NEWADDR, flags, &msg);
        if let Some(l) = &a.local {
            req = req.attr(libc::IFA_LOCAL, l);
        }
        if let Some(x) = &a.address {
            req = req.attr(libc::IFA_ADDRESS, x);
        }
        self.call(req).map(drop)
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
        let r = Request::new(libc::RTM_NEWLINK, REQUEST | ACK, &ifinfomsg(7, 1, 1))
            .attr(libc::IFLA_NET_NS_FD, &5u32.to_ne_bytes())
            .name(libc::IFLA_IFNAME, "eth1");
        // header 16 + ifinfomsg 16 + (4+4) + (4+5 padded to 12)
        assert_eq!(r.0.len(), 16 + 16 + 8 + 12);
        let a = attrs(&r.0[32..]);
        assert_eq!(a[0], (libc::IFLA_NET_NS_FD, &5u32.to_ne_bytes()[..]));
        assert_eq!(a[1], (libc::IFLA_IFNAME, &b"eth1\0"[..]));
    }

    #[test]
    fn the_loopback_link_is_found() {
        // Every network namespace has lo; an unprivileged socket may read links.
        let mut s = Socket::open().expect("netlink socket");
        let lo = s.link("lo").expect("RTM_GETLINK").expect("lo exists");
        assert!(lo.index > 0);
        assert!(s.link("no-such-link0").expect("RTM_GETLINK").is_none());
    }
}
