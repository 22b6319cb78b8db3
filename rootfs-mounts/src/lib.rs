//! Mount lists as containerd hands them to a shim (`{type, source, options}`), mounted onto a
//! target directory (a bundle's rootfs) and unmounted again.

use std::io;
use std::path::Path;

use serde::{Deserialize, Serialize};

mod idmapped;

/// A mount or unmount that failed: what was tried, and the kernel's answer.
#[derive(Debug)]
pub struct Error {
    pub context: String,
    pub source: io::Error,
}

impl Error {
    fn io(context: impl Into<String>, source: io::Error) -> Error {
        Error {
            context: context.into(),
            source,
        }
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.context, self.source)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

pub type Result<T> = std::result::Result<T, Error>;

fn path_cstring(p: &Path) -> io::Result<std::ffi::CString> {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::CString::new(p.as_os_str().as_bytes()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mount {
    #[serde(rename = "type")]
    pub kind: String,
    pub source: String,
    #[serde(default)]
    pub options: Vec<String>,
}

/// Flags for the options mount(2) takes as flags; the rest go to the filesystem as data.
fn split_options(options: &[String]) -> (libc::c_ulong, bool, String) {
    let mut flags: libc::c_ulong = 0;
    let mut readonly = false;
    let mut data = Vec::new();
    for o in options {
        match o.as_str() {
            "ro" => readonly = true,
            "rw" => {}
            "bind" => flags |= libc::MS_BIND,
            "rbind" => flags |= libc::MS_BIND | libc::MS_REC,
            "nosuid" => flags |= libc::MS_NOSUID,
            "nodev" => flags |= libc::MS_NODEV,
            "noexec" => flags |= libc::MS_NOEXEC,
            other => data.push(other),
        }
    }
    (flags, readonly, data.join(","))
}

/// Mount `mounts`, in order, onto `target` (containerd's `mount.All`): the shim's job of putting
/// a container's rootfs together from a snapshot.
pub fn mount_rootfs(mounts: &[Mount], target: &Path) -> Result<()> {
    for (i, m) in mounts.iter().enumerate() {
        if let Err(e) = mount_one(m, target) {
            // Leave nothing half-mounted.
            for _ in 0..i {
                let _ = umount(target, 0);
            }
            return Err(e);
        }
    }
    Ok(())
}

fn mount_one(m: &Mount, target: &Path) -> Result<()> {
    let mut options = m.options.clone();
    // Held until the overlay is made, then detached (the overlay keeps what it needs).
    let _idmapped = if m.kind == "overlay" {
        idmapped::prepare(&mut options, target)?
    } else {
        None
    };
    let (mut flags, readonly, data) = split_options(&options);
    let fail = |e: io::Error| Error::io(format!("mount {} ({}) on {}", m.source, m.kind, target.display()), e);
    let fstype = if m.kind == "bind" {
        flags |= libc::MS_BIND;
        None
    } else {
        Some(m.kind.as_str())
    };
    if readonly && flags & libc::MS_BIND == 0 {
        flags |= libc::MS_RDONLY;
    }
    sys_mount(&m.source, target, fstype, flags, &data).map_err(fail)?;
    if readonly && flags & libc::MS_BIND != 0 {
        // A bind mount takes MS_RDONLY only on a remount.
        let r = sys_mount(
            "",
            target,
            None,
            libc::MS_REMOUNT | libc::MS_BIND | libc::MS_RDONLY | flags,
            "",
        );
        if let Err(e) = r {
            let _ = umount(target, 0);
            return Err(fail(e));
        }
    }
    Ok(())
}

fn sys_mount(source: &str, target: &Path, fstype: Option<&str>, flags: libc::c_ulong, data: &str) -> io::Result<()> {
    let c = |s: &str| std::ffi::CString::new(s).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput));
    let src = c(source)?;
    let tgt = path_cstring(target)?;
    let fst = fstype.map(c).transpose()?;
    let dat = c(data)?;
    // SAFETY: every pointer is a NUL-terminated string that outlives the call (or null).
    let r = unsafe {
        libc::mount(
            src.as_ptr(),
            tgt.as_ptr(),
            fst.as_ref().map_or(std::ptr::null(), |f| f.as_ptr()),
            flags,
            if data.is_empty() {
                std::ptr::null()
            } else {
                dat.as_ptr().cast()
            },
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn umount(target: &Path, flags: libc::c_int) -> io::Result<()> {
    let t = path_cstring(target)?;
    // SAFETY: t is a NUL-terminated path.
    if unsafe { libc::umount2(t.as_ptr(), flags | libc::UMOUNT_NOFOLLOW) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Unmount everything mounted on `target` (as many layers as were stacked). Not mounted is
/// fine; a busy mount is detached, so the snapshot under it can go.
pub fn unmount_rootfs(target: &Path) -> Result<()> {
    for _ in 0..64 {
        match umount(target, 0) {
            Ok(()) => continue,
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) || e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                umount(target, libc::MNT_DETACH).map_err(|e| Error::io(format!("unmount {}", target.display()), e))?
            }
            Err(e) => return Err(Error::io(format!("unmount {}", target.display()), e)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_split_into_flags_and_data() {
        let o: Vec<String> = ["ro", "rbind", "nosuid", "lowerdir=/a:/b", "upperdir=/u"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let (flags, ro, data) = split_options(&o);
        assert!(ro);
        assert_eq!(flags, libc::MS_BIND | libc::MS_REC | libc::MS_NOSUID);
        assert_eq!(data, "lowerdir=/a:/b,upperdir=/u");
    }
}
