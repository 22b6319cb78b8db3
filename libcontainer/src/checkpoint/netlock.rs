//! The network lock a dump leaves behind. CRIU 3.17 locks a dumped container's network (with
//! --tcp-established, its connections) in an nftables table named after the dumped init's pid
//! (`inet CRIU-PID`), and a restore unlocks the table named after the *restored* init's pid,
//! which differs: the dump's table stays, dropping every packet of restored connections. (CRIU 3.19 names both by a
//! run id kept in the image.) So after a restore hezi deletes the dump's table itself, in
//! the restored init's network namespace; where it is not there (a newer CRIU), nothing happens.
//!
//! One netlink batch (NFT_MSG_DELTABLE between batch begin and end), written out by hand as
//! netdev/netlink.rs does for rtnetlink.

use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};

use nix::errno::Errno;

use crate::error::{Error, Result};

const NLMSG_HDR: usize = 16;
const NLMSG_ERROR: u16 = 2;
const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFNL_MSG_BATCH_BEGIN: u16 = 0x10;
const NFNL_MSG_BATCH_END: u16 = 0x11;
const NFT_MSG_DELTABLE: u16 = 2;
const NFTA_TABLE_NAME: u16 = 1;
const NFPROTO_INET: u8 = 1;

/// The name CRIU 3.17 gave the dump's table.
pub(super) fn dump_table(dumped_pid: i32) -> String {
    format!("CRIU-{dumped_pid}")
}

/// Delete table `inet NAME` in the network namespace of `pid`; Ok when there is none.
pub(super) fn delete_table_of(pid: i32, name: &str) -> Result<()> {
    let ns_path = format!("/proc/{pid}/ns/net");
    let ns = std::fs::File::open(&ns_path).map_err(|e| Error::io(format!("open {ns_path}"), e))?;
    let result = std::thread::scope(|s| {
        s.spawn(|| {
            nix::sched::setns(ns.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)?;
            delete_table(name)
        })
        .join()
        .unwrap_or(Err(Errno::EIO))
    });
    match result {
        Ok(()) | Err(Errno::ENOENT) => Ok(()),
        Err(e) => Err(Error::sys(format!("delete nftables table inet {name}"), e)),
    }
}

/// Delete table `inet NAME` in this thread's network namespace.
fn delete_table(name: &str) -> std::result::Result<(), Errno> {
    send_batch(&batch(NFT_MSG_DELTABLE, name))
}

/// Send a batch on a fresh nfnetlink socket and wait for its one acked message's answer.
fn send_batch(batch: &[u8]) -> std::result::Result<(), Errno> {
    // SAFETY: socket(2) with constant arguments; the fd returned is ours alone.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::NETLINK_NETFILTER,
        )
    };
    if fd < 0 {
        return Err(Errno::last());
    }
    // SAFETY: `fd` was just returned by socket(2) and nothing else owns it.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: sockaddr_nl is plain data; zeroed it addresses the kernel (nl_pid 0).
    let mut kernel: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    kernel.nl_family = libc::AF_NETLINK as u16;
    // SAFETY: the buffer and the address are valid for the lengths given.
    let sent = unsafe {
        libc::sendto(
            fd.as_raw_fd(),
            batch.as_ptr().cast(),
            batch.len(),
            0,
            (&kernel as *const libc::sockaddr_nl).cast(),
            std::mem::size_of::<libc::sockaddr_nl>() as u32,
        )
    };
    if sent < 0 {
        return Err(Errno::last());
    }
    // Only the delete asks for an ack (seq 2); an error in the batch is answered too.
    let mut buf = vec![0u8; 8192];
    loop {
        let n = nix::sys::socket::recv(fd.as_raw_fd(), &mut buf, nix::sys::socket::MsgFlags::empty())?;
        let mut b = &buf[..n];
        while b.len() >= NLMSG_HDR {
            let len = u32::from_ne_bytes([b[0], b[1], b[2], b[3]]) as usize;
            let kind = u16::from_ne_bytes([b[4], b[5]]);
            if len < NLMSG_HDR || len > b.len() {
                return Err(Errno::EBADMSG);
            }
            if kind == NLMSG_ERROR {
                let code = b
                    .get(NLMSG_HDR..NLMSG_HDR + 4)
                    .map_or(-libc::EBADMSG, |c| i32::from_ne_bytes([c[0], c[1], c[2], c[3]]));
                return if code == 0 { Ok(()) } else { Err(Errno::from_raw(-code)) };
            }
            b = &b[((len + 3) & !3).min(b.len())..];
        }
    }
}

/// The three messages: batch begin, `msg` on table `inet NAME` (acked), batch end.
fn batch(msg: u16, name: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let subsys = NFNL_SUBSYS_NFTABLES.to_be_bytes();
    message(&mut out, NFNL_MSG_BATCH_BEGIN, 0, 1, [0, 0, subsys[0], subsys[1]], &[]);
    let mut attr = Vec::new();
    let value_len = name.len() + 1;
    attr.extend_from_slice(&((4 + value_len) as u16).to_ne_bytes());
    attr.extend_from_slice(&NFTA_TABLE_NAME.to_ne_bytes());
    attr.extend_from_slice(name.as_bytes());
    attr.push(0);
    attr.resize((attr.len() + 3) & !3, 0);
    let kind = (NFNL_SUBSYS_NFTABLES << 8) | msg;
    let flags = (libc::NLM_F_REQUEST | libc::NLM_F_ACK) as u16;
    message(&mut out, kind, flags, 2, [NFPROTO_INET, 0, 0, 0], &attr);
    message(&mut out, NFNL_MSG_BATCH_END, 0, 3, [0, 0, subsys[0], subsys[1]], &[]);
    out
}

/// Append one netlink message: header, nfgenmsg (family, version, res_id), attributes.
fn message(out: &mut Vec<u8>, kind: u16, flags: u16, seq: u32, nfgen: [u8; 4], attrs: &[u8]) {
    let len = (NLMSG_HDR + 4 + attrs.len()) as u32;
    out.extend_from_slice(&len.to_ne_bytes());
    out.extend_from_slice(&kind.to_ne_bytes());
    out.extend_from_slice(&(flags | libc::NLM_F_REQUEST as u16).to_ne_bytes());
    out.extend_from_slice(&seq.to_ne_bytes());
    out.extend_from_slice(&0u32.to_ne_bytes());
    out.extend_from_slice(&nfgen);
    out.extend_from_slice(attrs);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_batch_holds_begin_delete_end() {
        let b = batch(NFT_MSG_DELTABLE, "CRIU-235");
        // begin (20 bytes), delete (20 + 4 + "CRIU-235\0" padded to 12), end (20).
        assert_eq!(b.len(), 20 + 36 + 20);
        assert_eq!(u16::from_ne_bytes([b[24], b[25]]), (10 << 8) | 2);
        assert_eq!(b[36], NFPROTO_INET);
        assert_eq!(&b[44..53], b"CRIU-235\0");
        assert_eq!(u16::from_ne_bytes([b[60], b[61]]), NFNL_MSG_BATCH_END);
    }

    /// In a network namespace of its own: a table made there is deleted, and a second delete
    /// finds none.
    #[test]
    fn deletes_a_table_and_then_finds_none() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("SKIP: needs root for a network namespace");
            return;
        }
        const NFT_MSG_NEWTABLE: u16 = 0;
        std::thread::spawn(|| {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
            match send_batch(&batch(NFT_MSG_NEWTABLE, "CRIU-4242")) {
                Ok(()) => {}
                Err(Errno::EPROTONOSUPPORT) => return eprintln!("SKIP: no nf_tables"),
                Err(e) => panic!("create the table: {e}"),
            }
            assert_eq!(delete_table("CRIU-4242"), Ok(()));
            assert_eq!(delete_table("CRIU-4242"), Err(Errno::ENOENT));
        })
        .join()
        .unwrap();
    }

    #[test]
    fn a_table_that_is_not_there_is_no_error() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("SKIP: needs root for netlink");
            return;
        }
        // Whatever the host's nftables hold, no table has this name.
        let name = format!("hezi-test-none-{}", std::process::id());
        match delete_table(&name) {
            Err(Errno::ENOENT) => {}
            // Without nf_tables in the kernel there is nothing to delete either.
            Err(Errno::EPROTONOSUPPORT) | Err(Errno::ENOPROTOOPT) => eprintln!("SKIP: no nf_tables"),
            other => panic!("{other:?}"),
        }
        delete_table_of(std::process::id() as i32, &name).unwrap_or_else(|e| {
            assert!(
                e.to_string().contains("nf_tables") || e.to_string().contains("not supported"),
                "{e}"
            )
        });
    }
}
