//! The container's root filesystem: mounts, devices, the root switch, and the paths hidden or
//! made read-only afterwards. Runs in the init, inside its new mount namespace.

pub mod cgroupfs;
pub mod devices;
pub mod mounts;
pub mod options;
pub mod paths;
pub mod pivot;
pub mod resolve;

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
    pub cgroups: Option<&'a CgroupMounts>,
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
    let flags = propagation.unwrap_or(MsFlags::MS_SLAVE | MsFlags::MS_REC);
    mount(None::<&str>, "/", None::<&str>, flags, None::<&str>).ctx(|| "set propagation of /".into())?;
    // pivot_root needs the new root to be a mount point.
    mount(
        Some(s.rootfs),
        s.rootfs,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .ctx(|| format!("bind {} on itself", s.rootfs.display()))?;
    let root = Root::open(s.rootfs)?;
    let spec_mounts = s.spec.mounts().as_deref().unwrap_or(&[]);
    mounts::mount_all(&root, s.bundle, spec_mounts, s.cgroups)?;
    if !dev_is_bind_mounted(s.spec) {
        let spec_devices = s
            .spec
            .linux()
            .as_ref()
            .and_then(|l| l.devices().as_deref())
            .unwrap_or(&[]);
        devices::setup(&root, spec_devices, s.in_userns)?;
    }
    drop(root);
    before_pivot()?;
    if s.no_pivot {
        pivot::move_root(s.rootfs)?;
    } else {
        pivot::pivot(s.rootfs)?;
    }
    if let Some(p) = propagation {
        mount(None::<&str>, "/", None::<&str>, p, None::<&str>).ctx(|| "set rootfsPropagation of /".into())?;
    }
    Ok(())
}

/// After sysctls are written: readonlyPaths, maskedPaths, then a read-only root.
pub fn finish(spec: &Spec) -> Result<()> {
    let root = Root::open(Path::new("/"))?;
    if let Some(linux) = spec.linux() {
        paths::readonly(&root, linux.readonly_paths().as_deref().unwrap_or(&[]))?;
        paths::mask(&root, linux.masked_paths().as_deref().unwrap_or(&[]))?;
    }
    if spec.root().as_ref().and_then(|r| r.readonly()).unwrap_or(false) {
        paths::readonly_root()?;
    }
    Ok(())
}

/// A spec that bind-mounts the host's /dev wants those devices, not ours.
fn dev_is_bind_mounted(spec: &Spec) -> bool {
    spec.mounts().iter().flatten().any(|m| {
        m.destination() == Path::new("/dev")
            && (m.typ().as_deref() == Some("bind") || m.options().iter().flatten().any(|o| o == "bind" || o == "rbind"))
    })
}
