//! The rtnetlink requests moving a network device takes: find a link by name, move and rename
//! it (RTM_NEWLINK with IFLA_NET_NS_FD and IFLA_IFNAME), set it up, list and add its addresses.
//! The socket and the message layout are crate::netlink's.

use std::os::fd::{AsRawFd, BorrowedFd};

use nix::errno::Errno;

use crate::netlink::{attrs, Request, Socket, ACK, REQUEST};

const IFINFOMSG: usize = 16;
const IFADDRMSG: usize = 8;

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

fn ifinfomsg(index: i32, flags: u32, change: u32) -> [u8; IFINFOMSG] {
    let mut m = [0u8; IFINFOMSG];
    m[4..8].copy_from_slice(&index.to_ne_bytes());
    m[8..12].copy_from_slice(&flags.to_ne_bytes());
    m[12..16].copy_from_slice(&change.to_ne_bytes());
    m
}

impl Socket {
    /// An rtnetlink socket in the caller's network namespace.
    pub fn route() -> Result<Socket, Errno> {
        Socket::open(libc::NETLINK_ROUTE)
    }

    /// An rtnetlink socket in the network namespace `ns`.
    pub fn route_in(ns: BorrowedFd<'_>) -> Result<Socket, Errno> {
        Socket::open_in(ns, libc::NETLINK_ROUTE)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_loopback_link_is_found() {
        // Every network namespace has lo; an unprivileged socket may read links.
        let mut s = Socket::route().expect("netlink socket");
        let lo = s.link("lo").expect("RTM_GETLINK").expect("lo exists");
        assert!(lo.index > 0);
        assert!(s.link("no-such-link0").expect("RTM_GETLINK").is_none());
    }
}
