//! The shim's error: a message with the ttrpc status code containerd will see. containerd maps
//! the code onto its errdefs (NotFound, AlreadyExists, ...) and the kubelet acts on those, so
//! the kind of a libcontainer error must survive to the edge: [`code_of`] is the one place that
//! says which libcontainer error is which code.

use std::fmt;

use libcontainer::cgroups::CgroupError;

use crate::proto::rpc::{Code, Status};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub code: Code,
    pub message: String,
}

pub type Result<T> = std::result::Result<T, Error>;

/// The status code for a libcontainer error.
pub fn code_of(e: &libcontainer::Error) -> Code {
    use libcontainer::Error as E;
    match e {
        E::NotFound(_) => Code::NotFound,
        E::Exists(_) => Code::AlreadyExists,
        E::WrongState { .. } => Code::FailedPrecondition,
        // A config.json that does not parse is as much the caller's mistake as a bad field.
        E::Spec { .. } | E::InvalidSpec(_) | E::InvalidArgument(_) => Code::InvalidArgument,
        // A cgroupsPath that climbs out of its root, a bad unified key: the request's fault.
        E::Cgroup(CgroupError::Invalid(_)) => Code::InvalidArgument,
        // The host lacks what the spec asks for (a controller not mounted).
        E::Cgroup(CgroupError::Unsupported(_)) => Code::FailedPrecondition,
        E::Sys { .. } | E::Io { .. } | E::Init(_) | E::Cgroup(_) | E::Other(_) => Code::Internal,
    }
}

impl Error {
    pub fn new(code: Code, message: impl Into<String>) -> Error {
        Error {
            code,
            message: message.into(),
        }
    }

    /// A failure of the shim's own machinery (a pipe, a mount, a fork): nothing the caller did.
    pub fn internal(message: impl Into<String>) -> Error {
        Error::new(Code::Internal, message)
    }

    /// libcontainer's error, with what the shim was doing in front of it.
    pub fn from_lc(what: impl fmt::Display, e: libcontainer::Error) -> Error {
        Error::new(code_of(&e), format!("{what}: {e}"))
    }
}

impl From<libcontainer::Error> for Error {
    fn from(e: libcontainer::Error) -> Error {
        Error::new(code_of(&e), e.to_string())
    }
}

impl From<Error> for Status {
    fn from(e: Error) -> Status {
        Status::new(e.code, e.message)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libcontainer_kinds_keep_their_codes() {
        use libcontainer::Error as E;
        let cases = [
            (E::NotFound("c".into()), Code::NotFound),
            (E::Exists("c".into()), Code::AlreadyExists),
            (
                E::WrongState {
                    id: "c".into(),
                    op: "start",
                    status: "running".into(),
                },
                Code::FailedPrecondition,
            ),
            (E::InvalidSpec("no root".into()), Code::InvalidArgument),
            (E::InvalidArgument("bad id".into()), Code::InvalidArgument),
            (
                E::Spec {
                    path: "/b/config.json".into(),
                    message: "eof".into(),
                },
                Code::InvalidArgument,
            ),
            (
                E::Cgroup(CgroupError::Invalid("cgroupsPath climbs above its root".into())),
                Code::InvalidArgument,
            ),
            (
                E::Cgroup(CgroupError::Unsupported("no hugetlb controller".into())),
                Code::FailedPrecondition,
            ),
            (
                E::Cgroup(CgroupError::Io {
                    op: "write".into(),
                    path: "/sys/fs/cgroup/x".into(),
                    errno: nix::errno::Errno::EBUSY,
                }),
                Code::Internal,
            ),
            (E::sys("mount proc", nix::errno::Errno::EPERM), Code::Internal),
        ];
        for (e, code) in cases {
            let text = e.to_string();
            let shim = Error::from_lc("create c", e);
            assert_eq!(shim.code, code, "{text}");
            assert_eq!(shim.message, format!("create c: {text}"));
            assert_eq!(Status::from(shim).code, code as i32);
        }
    }
}
