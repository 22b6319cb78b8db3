//! Entering the process's cwd the way runc does (`finalizeNamespace`): first as the runtime's
//! root, before the uid change, so a cwd the runtime can reach but the process user cannot
//! (mode 0700, owned by root) still works; if that is refused (EACCES or EPERM), again as the
//! user, for a cwd only the user may enter (a volume chowned to it, on a root-squashing mount).
//! Any other failure ends the setup at once.

use std::path::Path;

use nix::errno::Errno;

use crate::error::{Error, Result, SysContext};

/// The cwd, entered (and checked) already or still to enter once the user is set.
pub struct Cwd<'a> {
    path: &'a Path,
    entered: bool,
}

impl<'a> Cwd<'a> {
    /// Before the uid change, and before any seccomp filter (a profile may deny getcwd, as
    /// runtime-tools' linux_seccomp does): chdir with the runtime's privileges, and check the
    /// result.
    pub fn enter_as_runtime(path: &'a Path) -> Result<Cwd<'a>> {
        match nix::unistd::chdir(path) {
            Ok(()) => {
                check_inside(path)?;
                Ok(Cwd { path, entered: true })
            }
            Err(Errno::EACCES | Errno::EPERM) => Ok(Cwd { path, entered: false }),
            Err(e) => Err(Error::sys(format!("chdir to cwd {}", path.display()), e)),
        }
    }

    /// After the uid change (before the capabilities are set, as runc): the second try if the
    /// first was refused, checked the same way.
    pub fn enter_as_user(&self) -> Result<()> {
        if self.entered {
            return Ok(());
        }
        nix::unistd::chdir(self.path).ctx(|| format!("chdir to cwd {}", self.path.display()))?;
        check_inside(self.path)
    }
}

/// A cwd reached through a leaked fd lies outside the root (CVE-2024-21626): getcwd then finds
/// no path from the root (ENOENT, or a path that is not absolute). Any other failure of getcwd
/// is reported as it is.
fn check_inside(path: &Path) -> Result<()> {
    match std::env::current_dir() {
        Ok(p) if p.is_absolute() => Ok(()),
        Ok(_) => Err(outside(path)),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Err(outside(path)),
        Err(e) => Err(Error::io(format!("getcwd, to check that cwd {} is inside the container", path.display()), e)),
    }
}

fn outside(path: &Path) -> Error {
    Error::Other(format!("cwd {} is outside the container", path.display()))
}
