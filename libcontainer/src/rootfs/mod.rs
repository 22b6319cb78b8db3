//! The container's root filesystem: mounts, devices, the root switch, and the paths hidden or
//! made read-only afterwards. Runs in the init, inside its new mount namespace.

pub mod cgroupfs;
pub mod copyup;
pub mod device_nodes;
pub mod idmap;
pub mod mounts;
pub mod options;
pub mod paths;
pub mod pivot;
pub mod resolve;
pub mod source;

use std::path::Path;

use nix::mount::{mount, MsFlags};
use oci_spec::runtime::Spec;

use crate::error::{Error, Result, SysContext};
use cgroupfs::CgroupMounts;
use resolve::Root;

pub struct Setup<'a> {
    pub spec: &'a Spec,
    pub rootfs: &'a Path,
    pub bundle: &'a Path,
    pub no_pivot: bool,
    pub in_userns: bool,
    /// No mount namespace of its own: the mounts are made in the host's, as runc allows. Unlike
    /// runc, hezi leaves the host's propagation alone (runc makes the host's / rslave) and never
    /// moves the rootfs onto the host's / (--no-pivot): the bind of the rootfs is made private,
    /// so nothing below it reaches the host's other mounts, and the root switch is a chroot, for
    /// this process only. `delete` detaches that bind (container/host_mounts.rs).
    pub host_mount_ns: bool,
    pub cgroups: Option<&'a CgroupMounts>,
    /// The runtime's help with bind sources out of a user namespace's reach and idmapped
    /// mounts (source.rs, idmap.rs); None outside a user namespace.
    pub runtime: Option<&'a dyn source::Runtime>,
}

fn root_propagation(spec: &Spec) -> Result<Option<MsFlags>> {
    match spec.linux().as_ref().and_then(|l| l.rootfs_propagation().as_deref()) {
        None | Some("") => Ok(None),
        Some(p) => options::propagation(p)
            .map(Some)
            .ok_or_else(|| Error::InvalidSpec(format!("unknown rootfsPropagation {p:?}"))),
    }
}

/// Everything up to and including the switch to the new root. `before_pivot` runs once the
/// mounts and devices are in place (the hooks' moment).
pub fn prepare(s: &Setup<'_>, before_pivot: &mut dyn FnMut() -> Result<()>) -> Result<()> {
    let propagation = root_propagation(s.spec)?;
    // Keep the host from seeing anything mounted below (slave), unless the spec says otherwise.
    // An unbindable / would refuse the bind of the rootfs onto itself below, so that one is
    // applied only after the root switch (as every requested propagation is, again).
    let flags = propagation
        .filter(|p| !p.contains(MsFlags::MS_UNBINDABLE))
        .unwrap_or(MsFlags::MS_SLAVE | MsFlags::MS_REC);
    if !s.host_mount_ns {
        mount(None::<&str>, "/", None::<&str>, flags, None::<&str>).ctx(|| "set propagation of /".into())?;
    }
    // pivot_root refuses a new root whose parent mount is shared (rootfsPropagation "rshared"
    // makes it so); the spec's propagation is applied to the new / after the switch instead.
    // After a recursive private or slave change no mount is shared: skip reading mountinfo.
    if !s.host_mount_ns && (!flags.contains(MsFlags::MS_REC) || flags.contains(MsFlags::MS_SHARED)) {
        make_parent_mount_private(s.rootfs)?;
    }
    // pivot_root needs the new root to be a mount point.
    mount(
        Some(s.rootfs),
        s.rootfs,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .ctx(|| format!("bind {} on itself", s.rootfs.display()))?;
    if s.host_mount_ns {
        mount(
            None::<&str>,
            s.rootfs,
            None::<&str>,
            MsFlags::MS_PRIVATE | MsFlags::MS_REC,
            None::<&str>,
        )
        .ctx(|| format!("make the bind of {} private", s.rootfs.display()))?;
    }
    let root = Root::open(s.rootfs)?;
    let spec_mounts = s.spec.mounts().as_deref().unwrap_or(&[]);
    let cx = mounts::Context {
        bundle: s.bundle,
        cgroups: s.cgroups,
        label: crate::lsm::mount_label(s.spec),
        runtime: s.runtime,
    };
    mounts::mount_all(&root, spec_mounts, &cx)?;
    if !dev_is_bind_mounted(s.spec) {
        let spec_devices = s
            .spec
            .linux()
            .as_ref()
            .and_then(|l| l.devices().as_deref())
            .unwrap_or(&[]);
        device_nodes::setup(&root, spec_devices, s.in_userns)?;
    }
    drop(root);
    before_pivot()?;
    if s.host_mount_ns {
        pivot::chroot(s.rootfs)?;
    } else if s.no_pivot {
        pivot::move_root(s.rootfs)?;
    } else {
        pivot::pivot(s.rootfs)?;
    }
    if let Some(p) = propagation {
        mount(None::<&str>, "/", None::<&str>, p, None::<&str>).ctx(|| "set rootfsPropagation of /".into())?;
    }
    Ok(())
}

/// After sysctls are written: a read-only /dev turns read-only, then readonlyPaths,
/// maskedPaths, and a read-only root.
pub fn finish(spec: &Spec) -> Result<()> {
    let root = Root::open(Path::new("/"))?;
    if let Some(dev) = spec.mounts().iter().flatten().find(|m| mounts::is_read_only_dev(m)) {
        let opts = options::parse(dev.options().as_deref().unwrap_or(&[])).map_err(Error::InvalidSpec)?;
        // A bind remount sets the mount's flags anew: keep nosuid, noexec and the rest.
        mounts::remount_bind(&root, Path::new("dev"), opts.bind_remount_flags())
            .ctx(|| "remount /dev read-only".into())?;
    }
    if let Some(linux) = spec.linux() {
        paths::readonly(&root, linux.readonly_paths().as_deref().unwrap_or(&[]))?;
        paths::mask(&root, linux.masked_paths().as_deref().unwrap_or(&[]))?;
    }
    if spec.root().as_ref().and_then(|r| r.readonly()).unwrap_or(false) {
        paths::readonly_root()?;
    }
    Ok(())
}

/// Make the mount that holds `path` private if it is shared (in our mount namespace only).
fn make_parent_mount_private(path: &Path) -> Result<()> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ctx(|| "read /proc/self/mountinfo".into())?;
    let Some((mount_point, shared)) = parent_mount(&info, path) else {
        return Ok(());
    };
    if !shared {
        return Ok(());
    }
    mount(
        None::<&str>,
        mount_point.as_str(),
        None::<&str>,
        MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .ctx(|| format!("make {mount_point} private"))
}

/// The mount point of the mount holding `path` (the longest mount point that is a prefix of
/// it; the last such line wins, as later mounts cover earlier ones), and whether it is shared.
fn parent_mount(mountinfo: &str, path: &Path) -> Option<(String, bool)> {
    let mut best: Option<(String, bool)> = None;
    for line in mountinfo.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let (Some(point), Some(sep)) = (fields.get(4), fields.iter().position(|f| *f == "-")) else {
            continue;
        };
        let point = crate::procfs::unescape(point);
        if !path.starts_with(&point) {
            continue;
        }
        if best.as_ref().is_some_and(|(b, _)| b.len() > point.len()) {
            continue;
        }
        let shared = fields[6..sep].iter().any(|f| f.starts_with("shared:"));
        best = Some((point, shared));
    }
    best
}

/// A spec that bind-mounts the host's /dev wants those devices, not ours.
fn dev_is_bind_mounted(spec: &Spec) -> bool {
    spec.mounts().iter().flatten().any(|m| {
        m.destination() == Path::new("/dev")
            && (m.typ().as_deref() == Some("bind") || m.options().iter().flatten().any(|o| o == "bind" || o == "rbind"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const INFO: &str = "\
27 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
40 27 0:5 / /tmp rw master:3 - tmpfs tmpfs rw
41 27 0:6 / /tmp/with\\040space rw shared:9 - tmpfs tmpfs rw
";

    #[test]
    fn finds_the_longest_covering_mount() {
        assert_eq!(parent_mount(INFO, Path::new("/srv/b")), Some(("/".into(), true)));
        assert_eq!(
            parent_mount(INFO, Path::new("/tmp/b/rootfs")),
            Some(("/tmp".into(), false))
        );
        assert_eq!(
            parent_mount(INFO, Path::new("/tmp/with space/rootfs")),
            Some(("/tmp/with space".into(), true))
        );
        // A prefix of the name is not a parent directory.
        assert_eq!(parent_mount(INFO, Path::new("/tmpx")), Some(("/".into(), true)));
    }
}
