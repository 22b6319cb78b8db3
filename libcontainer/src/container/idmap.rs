//! A new user namespace's id maps, written by `create` (the init's parent) while the init waits.
//!
//! Root (or a process with CAP_SETUID/CAP_SETGID over the parent namespace, such as podman's
//! rootless user namespace) writes /proc/PID/uid_map and gid_map itself. An unprivileged caller
//! may only map its own euid and egid, one id each, and for the gid only once setgroups(2) is
//! denied in the namespace (user_namespaces(7)): otherwise a process could drop a supplementary
//! group that a file's permissions deny access by. Anything more (several ranges, other ids) goes
//! through the setuid helpers newuidmap and newgidmap (Debian's `uidmap`), which check the
//! ranges against /etc/subuid and /etc/subgid, and leave setgroups allowed (runc does the same).

use std::process::Command;

use nix::unistd::{getegid, geteuid, Pid};
use oci_spec::runtime::LinuxIdMapping;

use crate::error::{Error, Result, SysContext};
use crate::namespaces;

/// Which kind of id a map is for.
#[derive(Clone, Copy)]
enum Kind {
    Uid,
    Gid,
}

impl Kind {
    fn file(self) -> &'static str {
        match self {
            Kind::Uid => "uid_map",
            Kind::Gid => "gid_map",
        }
    }

    fn helper(self) -> &'static str {
        match self {
            Kind::Uid => "newuidmap",
            Kind::Gid => "newgidmap",
        }
    }

    fn own_id(self) -> u32 {
        match self {
            Kind::Uid => geteuid().as_raw(),
            Kind::Gid => getegid().as_raw(),
        }
    }

    fn subid_file(self) -> &'static str {
        match self {
            Kind::Uid => "/etc/subuid",
            Kind::Gid => "/etc/subgid",
        }
    }
}

/// Write the spec's uidMappings and gidMappings for the init `pid`.
pub(super) fn write(spec: &oci_spec::runtime::Spec, pid: Pid) -> Result<()> {
    let linux = spec.linux().as_ref();
    let uid = linux.and_then(|l| l.uid_mappings().as_deref()).unwrap_or(&[]);
    let gid = linux.and_then(|l| l.gid_mappings().as_deref()).unwrap_or(&[]);
    if uid.is_empty() || gid.is_empty() {
        return Err(Error::InvalidSpec(
            "a new user namespace needs uidMappings and gidMappings".into(),
        ));
    }
    let privileged = geteuid().is_root();
    write_one(Kind::Uid, uid, pid, privileged)?;
    write_one(Kind::Gid, gid, pid, privileged)
}

fn write_one(kind: Kind, maps: &[LinuxIdMapping], pid: Pid, privileged: bool) -> Result<()> {
    if privileged {
        return write_file(kind, maps, pid);
    }
    if only_own_id(kind, maps) {
        if let Kind::Gid = kind {
            // The kernel takes an unprivileged gid_map only after this.
            let path = format!("/proc/{pid}/setgroups");
            std::fs::write(&path, "deny").ctx(|| format!("write deny to {path}"))?;
        }
        return write_file(kind, maps, pid);
    }
    helper(kind, maps, pid)
}

/// One mapping of the caller's own id, all an unprivileged process may write itself.
fn only_own_id(kind: Kind, maps: &[LinuxIdMapping]) -> bool {
    matches!(maps, [m] if m.size() == 1 && m.host_id() == kind.own_id())
}

fn write_file(kind: Kind, maps: &[LinuxIdMapping], pid: Pid) -> Result<()> {
    let path = format!("/proc/{pid}/{}", kind.file());
    std::fs::write(&path, namespaces::id_map_text(maps)).ctx(|| format!("write {path}"))
}

/// Run newuidmap/newgidmap: `PID CONTAINER_ID HOST_ID SIZE...`.
fn helper(kind: Kind, maps: &[LinuxIdMapping], pid: Pid) -> Result<()> {
    let name = kind.helper();
    let mut cmd = Command::new(name);
    cmd.arg(pid.to_string());
    for m in maps {
        cmd.args([m.container_id(), m.host_id(), m.size()].map(|n| n.to_string()));
    }
    let why = || {
        format!(
            "{} {} maps more than your own id {} as an unprivileged user: that needs {name} \
             (Debian package uidmap) and the ranges in {}",
            kind.file(),
            namespaces::id_map_text(maps).trim_end().replace('\n', ", "),
            kind.own_id(),
            kind.subid_file()
        )
    };
    let out = match cmd.output() {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::Other(format!("{}: {name} is not installed", why())))
        }
        Err(e) => return Err(Error::Other(format!("{}: run {name}: {e}", why()))),
    };
    if !out.status.success() {
        return Err(Error::Other(format!(
            "{}: {name} failed ({}): {}",
            why(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(c: u32, h: u32, s: u32) -> LinuxIdMapping {
        oci_spec::runtime::LinuxIdMappingBuilder::default()
            .container_id(c)
            .host_id(h)
            .size(s)
            .build()
            .unwrap()
    }

    #[test]
    fn own_id_is_one_single_mapping() {
        let me = Kind::Uid.own_id();
        assert!(only_own_id(Kind::Uid, &[map(0, me, 1)]));
        assert!(only_own_id(Kind::Uid, &[map(1000, me, 1)]));
        assert!(!only_own_id(Kind::Uid, &[map(0, me, 2)]));
        assert!(!only_own_id(Kind::Uid, &[map(0, me, 1), map(1, 100000, 65536)]));
        assert!(!only_own_id(Kind::Uid, &[map(0, me.wrapping_add(1), 1)]));
    }
}
