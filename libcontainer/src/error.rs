//! The one error type of libcontainer. Every variant carries what was being done and to what, so
//! a CLI can print it as is: `mount proc on /proc: EPERM`, never a bare errno.

use std::fmt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;

#[derive(Debug)]
pub enum Error {
    /// A system call failed: `what` says which step and on which path.
    Sys { what: String, errno: Errno },
    /// An I/O error from std, with the step and path.
    Io { what: String, source: std::io::Error },
    /// config.json could not be read or parsed; the message names the file and position.
    Spec { path: PathBuf, message: String },
    /// The spec parsed but asks for something invalid or unsupported.
    InvalidSpec(String),
    /// A command-line argument or API input is invalid (bad id, bad signal, ...).
    InvalidArgument(String),
    /// No container with this id under the state root.
    NotFound(String),
    /// A container with this id already exists.
    Exists(String),
    /// The container is in a state that does not allow the operation.
    WrongState {
        id: String,
        op: &'static str,
        status: String,
    },
    /// The container's init reported a failure during setup.
    Init(String),
    /// A cgroup operation failed; its kind (I/O on a named file, unsupported, invalid request)
    /// survives to the front ends.
    Cgroup(crate::cgroups::CgroupError),
    /// Anything else, with context.
    Other(String),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn sys(what: impl Into<String>, errno: Errno) -> Self {
        Error::Sys {
            what: what.into(),
            errno,
        }
    }

    pub fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            what: what.into(),
            source,
        }
    }

    pub fn sys_path(op: &str, path: &Path, errno: Errno) -> Self {
        Error::Sys {
            what: format!("{op} {}", path.display()),
            errno,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Sys { what, errno } => write!(f, "{what}: {errno}"),
            Error::Io { what, source } => write!(f, "{what}: {source}"),
            Error::Spec { path, message } => write!(f, "{}: {message}", path.display()),
            Error::InvalidSpec(m) => write!(f, "invalid spec: {m}"),
            Error::InvalidArgument(m) => write!(f, "{m}"),
            Error::NotFound(id) => write!(f, "container {id} does not exist"),
            Error::Exists(id) => write!(f, "container with id {id} already exists"),
            // runc's words: containerd's shim matches "container not running" to treat a kill of an exited container as done.
            Error::WrongState { id, op, status } if status == "stopped" => {
                write!(f, "cannot {op} container {id}: container not running")
            }
            Error::WrongState { id, op, status } => {
                write!(f, "cannot {op} container {id}: container is {status}")
            }
            Error::Init(m) => write!(f, "container init: {m}"),
            Error::Cgroup(m) => write!(f, "cgroup: {m}"),
            Error::Other(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            Error::Sys { errno, .. } => Some(errno),
            _ => None,
        }
    }
}

/// Attach context to a nix result: `.ctx(|| format!("mount proc on {dest}"))`.
pub trait SysContext<T> {
    fn ctx<F: FnOnce() -> String>(self, what: F) -> Result<T>;
}

impl<T> SysContext<T> for nix::Result<T> {
    fn ctx<F: FnOnce() -> String>(self, what: F) -> Result<T> {
        self.map_err(|errno| Error::Sys { what: what(), errno })
    }
}

impl<T> SysContext<T> for std::io::Result<T> {
    fn ctx<F: FnOnce() -> String>(self, what: F) -> Result<T> {
        self.map_err(|source| Error::Io { what: what(), source })
    }
}
