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
///
/// The errors are runc's (Go's exec.LookPath) word for word, because clients classify them by
/// text: podman exits 127 for "no such file or directory" and "executable file not found in",
/// 126 for "permission denied".
pub fn lookup(arg0: &str, env: &[String]) -> Result<PathBuf> {
    if arg0.contains('/') {
        let p = PathBuf::from(arg0);
        return match std::fs::metadata(&p) {
            Err(e) => Err(Error::Other(format!("exec: {arg0:?}: stat {arg0}: {}", errno_text(&e)))),
            Ok(_) if is_executable(&p) => Ok(p),
            Ok(_) => Err(Error::Other(format!("exec: {arg0:?}: permission denied"))),
        };
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

/// An I/O error as Go prints an errno: "no such file or directory", not std's
/// "No such file or directory (os error 2)".
fn errno_text(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(n) => nix::errno::Errno::from_raw(n).desc().to_lowercase(),
        None => e.to_string(),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_errors_are_runcs() {
        let err = lookup("/no/such/program", &[]).unwrap_err().to_string();
        assert_eq!(
            err,
            "exec: \"/no/such/program\": stat /no/such/program: no such file or directory"
        );
        // A file without the execute bit, and a directory.
        let file = std::env::temp_dir().join(format!("hezi-lookup-{}", std::process::id()));
        std::fs::write(&file, "not a program").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = lookup(file.to_str().unwrap(), &[]).unwrap_err().to_string();
        std::fs::remove_file(&file).unwrap();
        assert_eq!(err, format!("exec: {:?}: permission denied", file.to_str().unwrap()));
        let err = lookup("/etc", &[]).unwrap_err().to_string();
        assert_eq!(err, "exec: \"/etc\": permission denied");
        let err = lookup("no-such-program", &["PATH=/bin".into()])
            .unwrap_err()
            .to_string();
        assert_eq!(err, "exec: \"no-such-program\": executable file not found in $PATH");
        assert_eq!(lookup("sh", &["PATH=/nope:/bin".into()]).unwrap(), Path::new("/bin/sh"));
    }
}
