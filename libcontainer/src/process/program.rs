//! Finding the program to exec, the way execvp would but with the container's PATH, and checked
//! before `create` returns so a missing executable fails `create`, not `start`.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

fn is_executable(p: &Path) -> bool {
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Resolve `arg0` against `env`'s PATH. Runs inside the container, after the root switch.
pub fn lookup(arg0: &str, env: &[String]) -> Result<PathBuf> {
    if arg0.contains('/') {
        let p = PathBuf::from(arg0);
        if is_executable(&p) {
            return Ok(p);
        }
        return Err(Error::Other(format!("exec: {arg0:?}: no such executable file")));
    }
    let path = env
        .iter()
        .rev()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH);
    for dir in path.split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let candidate = Path::new(dir).join(arg0);
        if is_executable(&candidate) {
            return Ok(candidate);
        }
    }
    Err(Error::Other(format!(
        "exec: {arg0:?}: executable file not found in $PATH"
    )))
}

pub fn cstrings<'a>(items: impl IntoIterator<Item = &'a str>) -> Result<Vec<CString>> {
    items
        .into_iter()
        .map(|s| CString::new(s).map_err(|_| Error::InvalidSpec(format!("{s:?} contains a NUL byte"))))
        .collect()
}

pub fn path_cstring(p: &Path) -> Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| Error::InvalidSpec(format!("{p:?} contains a NUL byte")))
}
