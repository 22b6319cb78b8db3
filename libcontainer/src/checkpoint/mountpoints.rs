//! A restore may start from a rootfs that never ran the container (podman's `restore --import`,
//! another host): the mount points a create makes there (a file for a bind of a file, such as
//! podman's /etc/hosts; a directory otherwise) are missing, and CRIU cannot mount over what is
//! not there ("Can't stat mountpoint"). They are made first, as a create would, inside the
//! rootfs (openat2 RESOLVE_IN_ROOT: a symlink in the image cannot send one outside); runc's
//! restore does the same.

use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;

use crate::error::Result;
use crate::rootfs::resolve::{relative, Kind, Root};

/// Make the mount points of `spec`'s mounts in `rootfs`. Mounts below a tmpfs of the spec are
/// left alone: CRIU restores a tmpfs with what was in it, mount points included.
pub(super) fn make(spec: &Spec, rootfs: &Path) -> Result<()> {
    let mounts: Vec<_> = spec.mounts().iter().flatten().collect();
    let tmpfs: Vec<PathBuf> = mounts
        .iter()
        .filter(|m| m.typ().as_deref() == Some("tmpfs"))
        .map(|m| m.destination().clone())
        .collect();
    let root = Root::open(rootfs)?;
    for m in &mounts {
        let dest = m.destination();
        if tmpfs.iter().any(|t| dest != t && dest.starts_with(t)) {
            continue;
        }
        let bind =
            m.typ().as_deref() == Some("bind") || m.options().iter().flatten().any(|o| o == "bind" || o == "rbind");
        let file = bind
            && m.source()
                .as_ref()
                .is_some_and(|s| s.metadata().is_ok_and(|md| !md.is_dir()));
        root.ensure(relative(dest), if file { Kind::File } else { Kind::Dir })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn makes_files_for_file_binds_and_skips_what_a_tmpfs_holds() {
        let dir = std::env::temp_dir().join(format!("hezi-mountpoints-{}", std::process::id()));
        let rootfs = dir.join("rootfs");
        std::fs::create_dir_all(&rootfs).unwrap();
        let hosts = dir.join("hosts");
        std::fs::write(&hosts, "127.0.0.1 localhost\n").unwrap();
        let spec: Spec = serde_json::from_value(serde_json::json!({
            "ociVersion": "1.2.0",
            "root": {"path": "rootfs"},
            "mounts": [
                {"destination": "/etc/hosts", "type": "bind", "source": hosts, "options": ["rbind"]},
                {"destination": "/data", "type": "bind", "source": dir, "options": ["bind"]},
                {"destination": "/dev", "type": "tmpfs", "source": "tmpfs"},
                {"destination": "/dev/shm", "type": "tmpfs", "source": "shm"}
            ]
        }))
        .unwrap();
        make(&spec, &rootfs).unwrap();
        assert!(rootfs.join("etc/hosts").is_file());
        assert!(rootfs.join("data").is_dir());
        assert!(rootfs.join("dev").is_dir());
        assert!(!rootfs.join("dev/shm").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
