//! Namespaces the container joined by path (the spec's `linux.namespaces[].path`: a pod's,
//! podman's, the host's) are not the container's to dump: CRIU is told so, and on restore the
//! container joins them again, as runc describes them.
//! - network and pid: dumped as external (`net[INODE]:extRootNetNS`), and on restore given to
//!   CRIU as an open fd under the same key (inherit_fd);
//! - the others with a path: joined on restore (join_ns); a cgroup namespace path is refused,
//!   as runc does (CRIU cannot join one).

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;

use oci_spec::runtime::{LinuxNamespaceType, Spec};

use super::opts::Opts;
use crate::error::{Error, Result, SysContext};

/// CRIU's name of a namespace type, and the key runc gives it when it is external.
fn names(t: LinuxNamespaceType) -> (&'static str, Option<&'static str>) {
    match t {
        LinuxNamespaceType::Network => ("net", Some("extRootNetNS")),
        LinuxNamespaceType::Pid => ("pid", Some("extRootPidNS")),
        LinuxNamespaceType::Ipc => ("ipc", None),
        LinuxNamespaceType::Uts => ("uts", None),
        LinuxNamespaceType::Mount => ("mnt", None),
        LinuxNamespaceType::User => ("user", None),
        LinuxNamespaceType::Cgroup => ("cgroup", None),
        LinuxNamespaceType::Time => ("time", None),
    }
}

/// The namespaces of `spec` that have a path.
fn joined(spec: &Spec) -> impl Iterator<Item = (LinuxNamespaceType, &std::path::Path)> {
    spec.linux()
        .iter()
        .flat_map(|l| l.namespaces().iter().flatten())
        .filter_map(|n| n.path().as_deref().map(|p| (n.typ(), p)))
}

/// At dump: the joined network and pid namespaces are external.
pub(super) fn dump(spec: &Spec, o: &mut Opts) -> Result<()> {
    for (t, path) in joined(spec) {
        let (name, Some(key)) = names(t) else { continue };
        let ino = std::fs::metadata(path)
            .ctx(|| format!("stat the {name} namespace {}", path.display()))?
            .ino();
        o.external(&format!("{name}[{ino}]:{key}"));
    }
    Ok(())
}

/// At restore: the joined namespaces again. Returns the fds CRIU inherits, to be kept open
/// until it is done.
pub(super) fn restore(spec: &Spec, o: &mut Opts) -> Result<Vec<OwnedFd>> {
    let mut fds = Vec::new();
    for (t, path) in joined(spec) {
        let (name, key) = names(t);
        if t == LinuxNamespaceType::Cgroup {
            return Err(Error::InvalidArgument(format!(
                "restore into the cgroup namespace {}: CRIU cannot join a cgroup namespace",
                path.display()
            )));
        }
        let Some(key) = key else {
            o.join_ns(name, &path.to_string_lossy());
            continue;
        };
        let file = std::fs::File::open(path).map_err(|e| {
            Error::InvalidArgument(format!("the {name} namespace to restore into, {}: {e}", path.display()))
        })?;
        let fd = super::inheritable(file.as_raw_fd())
            .map_err(|e| Error::io(format!("copy the {name} namespace's fd"), e))?;
        o.inherit_fd(key, fd.as_raw_fd());
        fds.push(fd);
    }
    Ok(fds)
}

#[cfg(test)]
mod tests {
    use super::super::wire::{fields, Value};
    use super::*;

    fn spec(ns: serde_json::Value) -> Spec {
        serde_json::from_value(serde_json::json!({
            "ociVersion": "1.2.0",
            "root": {"path": "rootfs"},
            "linux": {"namespaces": ns}
        }))
        .unwrap()
    }

    #[test]
    fn joined_network_is_external_and_inherited_others_joined() {
        let s = spec(serde_json::json!([
            {"type": "network", "path": "/proc/self/ns/net"},
            {"type": "ipc", "path": "/proc/self/ns/ipc"},
            {"type": "pid"}
        ]));
        let (images, work) = (std::fs::File::open("/").unwrap(), std::fs::File::open("/").unwrap());
        let mut o = Opts::new(&images.into(), &work.into(), "x.log", &Default::default());
        dump(&s, &mut o).unwrap();
        let ino = std::fs::metadata("/proc/self/ns/net").unwrap().ino();
        let bytes = o.enc.into_bytes();
        let externals: Vec<&[u8]> = fields(&bytes)
            .unwrap()
            .into_iter()
            .filter_map(|(f, v)| match (f, v) {
                (37, Value::Bytes(b)) => Some(b),
                _ => None,
            })
            .collect();
        assert_eq!(externals, vec![format!("net[{ino}]:extRootNetNS").as_bytes()]);

        let (images, work) = (std::fs::File::open("/").unwrap(), std::fs::File::open("/").unwrap());
        let mut o = Opts::new(&images.into(), &work.into(), "x.log", &Default::default());
        let fds = restore(&s, &mut o).unwrap();
        assert_eq!(fds.len(), 1);
        let bytes = o.enc.into_bytes();
        let kinds: Vec<u32> = fields(&bytes).unwrap().into_iter().map(|(f, _)| f).collect();
        assert!(kinds.contains(&27) && kinds.contains(&39), "{kinds:?}");
    }

    #[test]
    fn a_cgroup_namespace_path_or_a_missing_one_is_refused() {
        let (images, work) = (std::fs::File::open("/").unwrap(), std::fs::File::open("/").unwrap());
        let mut o = Opts::new(&images.into(), &work.into(), "x.log", &Default::default());
        let s = spec(serde_json::json!([{"type": "cgroup", "path": "/proc/self/ns/cgroup"}]));
        assert!(restore(&s, &mut o).is_err());
        let s = spec(serde_json::json!([{"type": "network", "path": "/nonexistent/ns"}]));
        let e = restore(&s, &mut o).unwrap_err().to_string();
        assert!(e.contains("/nonexistent/ns"), "{e}");
    }
}
