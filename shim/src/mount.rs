//! The rootfs containerd hands over with Create (a snapshot's mount list), mounted on
//! `bundle/rootfs` with hezi-rootfs-mounts, whose `{type, source, options}` shape is the same
//! as containerd's.

use std::path::Path;

use crate::proto::Mount as ProtoMount;
use hezi_rootfs_mounts::Mount;

pub fn mount(mounts: &[ProtoMount], rootfs: &Path) -> Result<(), String> {
    if mounts.is_empty() {
        // The bundle already holds a root filesystem (a caller that prepared it itself).
        return Ok(());
    }
    std::fs::create_dir_all(rootfs).map_err(|e| format!("create {}: {e}", rootfs.display()))?;
    let list: Vec<Mount> = mounts
        .iter()
        .map(|m| Mount {
            kind: m.kind.clone(),
            source: m.source.clone(),
            options: m.options.clone(),
        })
        .collect();
    hezi_rootfs_mounts::mount_rootfs(&list, rootfs).map_err(|e| format!("mount the rootfs: {e}"))
}

pub fn unmount(rootfs: &Path) -> Result<(), String> {
    hezi_rootfs_mounts::unmount_rootfs(rootfs).map_err(|e| format!("unmount {}: {e}", rootfs.display()))
}
