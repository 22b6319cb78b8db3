//! linux.netDevices: host network interfaces moved into the container's network namespace at
//! create (renamed per `name`), and back to the host's when the container is deleted or its
//! create fails.
//!
//! The kernel flushes a device's addresses and takes it down when it changes namespace; as runc
//! does, the permanent addresses of global scope are added again on the other side, and a device
//! that was up is set up again. Everything is checked before anything moves (every device
//! exists on the host, no name is taken inside), and a move that fails half-way takes back the
//! devices it moved, so a failed create leaves the host as it was.
//!
//! A container whose init has exited has lost its network namespace: the kernel has given
//! physical devices back to the host under a name of its choosing and destroyed virtual ones
//! (as it does under runc, which never moves them back itself).

mod netlink;

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use nix::unistd::Pid;
use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::error::{Error, Result, SysContext};
pub use crate::state::NetDevice;
use crate::netlink::Socket;

/// A valid interface name (the kernel's dev_valid_name): 1 to 15 bytes, not `.` or `..`, no
/// `/`, `:` or white space.
fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() < 16
        && n != "."
        && n != ".."
        && !n.bytes().any(|b| b == b'/' || b == b':' || b.is_ascii_whitespace())
}

/// The spec's devices, checked: valid names, a network namespace of the container's own, no
/// two devices with one name inside. Sorted by host name, so the order never depends on the
/// map's.
pub fn from_spec(spec: &Spec) -> Result<Vec<NetDevice>> {
    let Some(map) = spec.linux().as_ref().and_then(|l| l.net_devices().as_ref()) else {
        return Ok(Vec::new());
    };
    let bad = |why: String| Error::InvalidSpec(format!("linux.netDevices: {why}"));
    if !map.is_empty() && net_ns_entry(spec).is_none() {
        return Err(bad("moving network devices needs a network namespace (linux.namespaces has none)".into()));
    }
    let mut out: Vec<NetDevice> = Vec::new();
    for (host, dev) in map {
        let inside = dev.name().as_deref().filter(|n| !n.is_empty()).unwrap_or(host);
        for n in [host.as_str(), inside] {
            if !valid_name(n) {
                return Err(bad(format!("{n:?} is not a valid interface name")));
            }
        }
        if let Some(other) = out.iter().find(|d| d.inside == inside) {
            return Err(bad(format!("{} and {host} would both be {inside} inside", other.host)));
        }
        out.push(NetDevice {
            host: host.clone(),
            inside: inside.to_string(),
        });
    }
    out.sort_by(|a, b| a.host.cmp(&b.host));
    Ok(out)
}

/// linux.namespaces' network entry, with its path if it joins one.
fn net_ns_entry(spec: &Spec) -> Option<Option<PathBuf>> {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .into_iter()
        .flatten()
        .find(|n| n.typ() == LinuxNamespaceType::Network)
        .map(|n| n.path().clone())
}

fn open_ns(path: &str) -> Result<OwnedFd> {
    nix::fcntl::open(path, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty()).ctx(|| format!("open {path}"))
}

/// The container's network namespace, held open (which keeps it alive after the init dies): the
/// one it joins by path, or the one the init was cloned with. Never the host's.
pub fn container_ns(spec: &Spec, init: Pid) -> Result<OwnedFd> {
    let path = match net_ns_entry(spec).flatten() {
        Some(p) => p.to_string_lossy().into_owned(),
        None => format!("/proc/{init}/ns/net"),
    };
    let ns = open_ns(&path)?;
    let inode = |fd: &OwnedFd| {
        std::fs::File::from(fd.try_clone().ctx(|| "dup a namespace fd".into())?)
            .metadata()
            .map(|m| (m.dev(), m.ino()))
            .map_err(|e| Error::io("stat a network namespace", e))
    };
    if inode(&ns)? == inode(&open_ns("/proc/self/ns/net")?)? {
        return Err(Error::InvalidSpec(format!(
            "linux.netDevices: {path} is the host's network namespace"
        )));
    }
    Ok(ns)
}

/// Move every device into `ns`, or none: see the module's comment.
pub fn move_in(devices: &[NetDevice], ns: BorrowedFd<'_>) -> Result<()> {
    if devices.is_empty() {
        return Ok(());
    }
    let mut host = Socket::route().ctx(|| "open a netlink socket".into())?;
    let mut inside = Socket::route_in(ns).ctx(|| "open a netlink socket in the container's network namespace".into())?;
    for d in devices {
        if host.link(&d.host).ctx(|| format!("look up {}", d.host))?.is_none() {
            return Err(Error::InvalidSpec(format!(
                "linux.netDevices: no network interface {} on the host",
                d.host
            )));
        }
        if inside.link(&d.inside).ctx(|| format!("look up {}", d.inside))?.is_some() {
            return Err(Error::InvalidSpec(format!(
                "linux.netDevices: {} is taken in the container's network namespace (for {})",
                d.inside, d.host
            )));
        }
    }
    for (i, d) in devices.iter().enumerate() {
        if let Err(e) = move_one(&mut host, &mut inside, &d.host, &d.inside, ns) {
            // Back with the ones that made it (this one too, if it got across before failing).
            if let Err(back) = move_out(&devices[..=i], ns) {
                tracing::warn!("network devices after a failed move: {back}");
            }
            return Err(e);
        }
    }
    Ok(())
}

/// Move every device still in `ns` back to this process's network namespace, under its host
/// name. Each is tried; the first failure is returned.
pub fn move_out(devices: &[NetDevice], ns: BorrowedFd<'_>) -> Result<()> {
    let host_ns = open_ns("/proc/thread-self/ns/net")?;
    let mut host = Socket::route().ctx(|| "open a netlink socket".into())?;
    let mut inside = Socket::route_in(ns).ctx(|| "open a netlink socket in the container's network namespace".into())?;
    let mut first = None;
    for d in devices {
        match inside.link(&d.inside) {
            Ok(Some(_)) => {}
            Ok(None) => continue,
            Err(e) => {
                first.get_or_insert(Error::sys(format!("look up {} in the container", d.inside), e));
                continue;
            }
        }
        if let Err(e) = move_one(&mut inside, &mut host, &d.inside, &d.host, host_ns.as_fd()) {
            first.get_or_insert(e);
        }
    }
    first.map_or(Ok(()), Err)
}

/// Move `name` from `from`'s namespace into `to_ns` (where `to` talks) as `new_name`, with its
/// permanent global addresses and its up state.
fn move_one(from: &mut Socket, to: &mut Socket, name: &str, new_name: &str, to_ns: BorrowedFd<'_>) -> Result<()> {
    let link = from
        .link(name)
        .ctx(|| format!("look up {name}"))?
        .ok_or_else(|| Error::Other(format!("network interface {name} is gone")))?;
    // As runc: dynamic addresses, and those of host or link scope, belong where they were made.
    let addrs: Vec<_> = from
        .addresses(link.index)
        .ctx(|| format!("list the addresses of {name}"))?
        .into_iter()
        .filter(|a| a.flags & libc::IFA_F_PERMANENT != 0 && a.scope == libc::RT_SCOPE_UNIVERSE)
        .collect();
    from.move_to(link.index, to_ns, new_name)
        .ctx(|| format!("move network interface {name} to another namespace as {new_name}"))?;
    let moved = to
        .link(new_name)
        .ctx(|| format!("look up {new_name}"))?
        .ok_or_else(|| Error::Other(format!("{name} moved, but {new_name} is not there")))?;
    for a in &addrs {
        match to.add_address(moved.index, a) {
            Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
            Err(e) => return Err(Error::sys(format!("add address {a:?} to {new_name}"), e)),
        }
    }
    if link.flags & libc::IFF_UP as u32 != 0 {
        to.set_up(moved.index).ctx(|| format!("set {new_name} up"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(linux: serde_json::Value) -> Spec {
        serde_json::from_value(serde_json::json!({ "ociVersion": "1.3.0", "linux": linux })).expect("spec")
    }

    #[test]
    fn names_and_namespace_are_checked() {
        let ok = spec(serde_json::json!({
            "namespaces": [{ "type": "network" }],
            "netDevices": { "eth9": { "name": "ctr0" }, "dummy1": {} }
        }));
        let devs = from_spec(&ok).unwrap();
        assert_eq!(
            devs,
            vec![
                NetDevice { host: "dummy1".into(), inside: "dummy1".into() },
                NetDevice { host: "eth9".into(), inside: "ctr0".into() },
            ]
        );
        for (linux, says) in [
            (serde_json::json!({ "netDevices": { "eth9": {} } }), "needs a network namespace"),
            (serde_json::json!({ "namespaces": [{ "type": "network" }], "netDevices": { "a/b": {} } }), "not a valid"),
            (
                serde_json::json!({ "namespaces": [{ "type": "network" }], "netDevices": { "eth9": { "name": "0123456789abcdef" } } }),
                "not a valid",
            ),
            (
                serde_json::json!({ "namespaces": [{ "type": "network" }], "netDevices": { "a": { "name": "x" }, "b": { "name": "x" } } }),
                "both be x",
            ),
        ] {
            let err = from_spec(&spec(linux.clone())).expect_err(&linux.to_string()).to_string();
            assert!(err.contains(says), "{linux}: {err}");
        }
    }
}
