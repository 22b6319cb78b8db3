//! The network lock a dump leaves behind. CRIU 3.17 locks a dumped container's network (with
//! --tcp-established, its connections) in an nftables table named after the dumped init's pid
//! (`inet CRIU-PID`), and a restore unlocks the table named after the *restored* init's pid,
//! which differs: the dump's table stays, dropping every packet of restored connections. (CRIU 3.19 names both by a
//! run id kept in the image.) So after a restore hezi deletes the dump's table itself, in
//! the restored init's network namespace; where it is not there (a newer CRIU), nothing happens.
//!
//! One nfnetlink batch on crate::netlink's socket: NFT_MSG_DELTABLE between batch begin and end.

use std::os::fd::AsFd;

use nix::errno::Errno;

use crate::error::{Error, Result};
use crate::netlink::{Request, Socket, ACK, REQUEST};

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
    let result =
        Socket::open_in(ns.as_fd(), libc::NETLINK_NETFILTER).and_then(|mut socket| delete_table(&mut socket, name));
    match result {
        Ok(()) | Err(Errno::ENOENT) => Ok(()),
        Err(e) => Err(Error::sys(format!("delete nftables table inet {name}"), e)),
    }
}

/// Delete table `inet NAME` in the socket's network namespace.
fn delete_table(socket: &mut Socket, name: &str) -> std::result::Result<(), Errno> {
    socket.call_all(batch(NFT_MSG_DELTABLE, name)).map(drop)
}

/// The three messages: batch begin, `msg` on table `inet NAME` (acked), batch end.
fn batch(msg: u16, name: &str) -> Vec<Request> {
    // nfgenmsg: family, version, and the subsystem as res_id (big-endian) in the batch markers.
    let [hi, lo] = NFNL_SUBSYS_NFTABLES.to_be_bytes();
    let marker = |kind| Request::new(kind, REQUEST, &[0, 0, hi, lo]);
    let table = Request::new(
        (NFNL_SUBSYS_NFTABLES << 8) | msg,
        REQUEST | ACK,
        &[NFPROTO_INET, 0, 0, 0],
    )
    .name(NFTA_TABLE_NAME, name);
    vec![marker(NFNL_MSG_BATCH_BEGIN), table, marker(NFNL_MSG_BATCH_END)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_batch_holds_begin_delete_end() {
        let b: Vec<u8> = batch(NFT_MSG_DELTABLE, "CRIU-235")
            .into_iter()
            .zip(1..)
            .flat_map(|(r, seq)| r.finish(seq))
            .collect();
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
            let mut socket = match Socket::open(libc::NETLINK_NETFILTER) {
                Ok(s) => s,
                Err(Errno::EPROTONOSUPPORT) => return eprintln!("SKIP: no nf_tables"),
                Err(e) => panic!("nfnetlink socket: {e}"),
            };
            match socket.call_all(batch(NFT_MSG_NEWTABLE, "CRIU-4242")) {
                Ok(_) => {}
                Err(Errno::EPROTONOSUPPORT) => return eprintln!("SKIP: no nf_tables"),
                Err(e) => panic!("create the table: {e}"),
            }
            assert_eq!(delete_table(&mut socket, "CRIU-4242"), Ok(()));
            assert_eq!(delete_table(&mut socket, "CRIU-4242"), Err(Errno::ENOENT));
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
        match Socket::open(libc::NETLINK_NETFILTER).and_then(|mut s| delete_table(&mut s, &name)) {
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
