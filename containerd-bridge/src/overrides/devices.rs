//! The host's device nodes, for `--privileged` (ctr's WithHostDevices): every character and
//! block device under /dev, as the spec's `linux.devices`, with its numbers, mode and owner.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use serde_json::{json, Value};

use crate::error::{IoContext, Result};

/// Directories under /dev that are not devices of the host's to pass on: the container gets its
/// own pts, shm and mqueue mounts and fd link; the others are container managers' (LXC's, LXD's)
/// and udev's private state.
const SKIPPED_DIRS: &[&str] = &["pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev"];

/// The device nodes under `dir` (recursively), as OCI `linux.devices` entries.
pub fn host_devices(dir: &Path) -> Result<Vec<Value>> {
    let mut out = Vec::new();
    walk(dir, &mut out)?;
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<Value>) -> Result<()> {
    let entries = std::fs::read_dir(dir).ctx(|| format!("read {} for --privileged", dir.display()))?;
    let mut paths: Vec<_> = entries
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<_>>()
        .ctx(|| format!("read {} for --privileged", dir.display()))?;
    paths.sort();
    for path in paths {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let meta = match std::fs::symlink_metadata(&path) {
            Ok(m) => m,
            // Gone since the listing (a hot-unplugged device): nothing to pass on.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(crate::Error::io(format!("stat {}", path.display()), e)),
        };
        let ft = meta.file_type();
        if ft.is_dir() {
            if !SKIPPED_DIRS.contains(&name.as_str()) {
                walk(&path, out)?;
            }
            continue;
        }
        // The container's /dev/console is its own terminal (or none), never the host's.
        let kind = match () {
            _ if name == "console" && dir == Path::new("/dev") => continue,
            _ if ft.is_char_device() => "c",
            _ if ft.is_block_device() => "b",
            _ => continue,
        };
        let rdev = meta.rdev();
        out.push(json!({
            "path": path,
            "type": kind,
            "major": libc::major(rdev),
            "minor": libc::minor(rdev),
            "fileMode": meta.mode() & 0o7777,
            "uid": meta.uid(),
            "gid": meta.gid(),
        }));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hosts_dev() {
        let devs = host_devices(Path::new("/dev")).unwrap();
        let null = devs.iter().find(|d| d["path"] == "/dev/null").expect("/dev/null");
        assert_eq!(
            (null["type"].as_str(), null["major"].as_u64(), null["minor"].as_u64()),
            (Some("c"), Some(1), Some(3))
        );
        assert!(devs
            .iter()
            .all(|d| !d["path"].as_str().unwrap().starts_with("/dev/pts/")));
        assert!(devs.iter().all(|d| d["path"] != "/dev/console"));
    }
}
