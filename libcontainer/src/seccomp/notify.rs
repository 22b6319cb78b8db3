//! Handing a seccomp notify fd to the profile's listener (runtime.md, "Seccomp notify").
//!
//! The runtime connects to `linux.seccomp.listenerPath` (a unix stream socket) and sends, in one
//! sendmsg, the container process state as JSON with the notify fd as SCM_RIGHTS ancillary data:
//!
//! ```json
//! {"ociVersion": "1.2.0", "fds": ["seccompFd"], "pid": 4242, "metadata": "…",
//!  "state": {"ociVersion": "1.2.0", "id": "c1", "status": "creating", "pid": 4242,
//!            "bundle": "/bundles/c1", "annotations": {…}}}
//! ```
//!
//! `fds[i]` names the i-th fd of the SCM_RIGHTS array. `pid` is the process that loaded the
//! filter (the init, or an exec'd process), `state.pid` the container's init; both as the runtime
//! sees them. The init cannot do this itself: it has pivoted into the container's root by then
//! and the listener path is on the host, so it passes the fd to the runtime over the init channel
//! and the runtime forwards it (as runc does).

use std::collections::HashMap;
use std::io::IoSlice;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
use oci_spec::runtime::{ContainerProcessState, ContainerState, State, SECCOMP_FD_NAME};

use super::SeccompError;

/// Where to send the fd, from the profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    pub path: PathBuf,
    pub metadata: Option<String>,
}

/// What the listener is told about the process.
#[derive(Debug, Clone)]
pub struct ProcessInfo<'a> {
    pub oci_version: &'a str,
    pub id: &'a str,
    pub status: ContainerState,
    /// The process that loaded the filter.
    pub pid: i32,
    /// The container's init.
    pub init_pid: i32,
    pub bundle: &'a Path,
    pub annotations: &'a HashMap<String, String>,
}

/// The JSON payload, in the shape of the runtime spec's `ContainerProcessState`.
pub fn message(listener: &Listener, p: &ProcessInfo<'_>) -> Result<String, SeccompError> {
    let mut state = State::default();
    state
        .set_version(p.oci_version.to_string())
        .set_id(p.id.to_string())
        .set_status(p.status)
        .set_pid(Some(p.init_pid))
        .set_bundle(p.bundle.to_path_buf())
        .set_annotations(Some(p.annotations.clone()));
    let mut cps = ContainerProcessState::default();
    cps.set_version(p.oci_version.to_string())
        .set_fds(vec![SECCOMP_FD_NAME.to_string()])
        .set_pid(p.pid)
        .set_metadata(listener.metadata.clone())
        .set_state(state);
    serde_json::to_string(&cps).map_err(|e| SeccompError::Invalid(format!("serialize the process state: {e}")))
}

/// Connect to the listener and send `json` with `fd` attached. The connection is closed after
/// the one message, as with runc: the listener keeps the fd, not the connection.
pub fn send(listener: &Listener, json: &str, fd: BorrowedFd<'_>) -> Result<(), SeccompError> {
    let path = &listener.path;
    let failed = |what: &str, errno| SeccompError::Listener {
        path: path.clone(),
        what: what.to_string(),
        errno,
    };
    let stream = UnixStream::connect(path).map_err(|e| failed("connect", errno_of(&e)))?;
    let fds = [fd.as_raw_fd()];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    let iov = [IoSlice::new(json.as_bytes())];
    let sent = loop {
        match sendmsg::<()>(stream.as_raw_fd(), &iov, &cmsg, MsgFlags::MSG_NOSIGNAL, None) {
            Err(nix::errno::Errno::EINTR) => continue,
            r => break r.map_err(|e| failed("send the notify fd", e))?,
        }
    };
    if sent != json.len() {
        // A stream socket may take part of the payload; the fd went with the first byte, so
        // write the rest plainly.
        use std::io::Write;
        (&stream)
            .write_all(&json.as_bytes()[sent..])
            .map_err(|e| failed("send the process state", errno_of(&e)))?;
    }
    Ok(())
}

fn errno_of(e: &std::io::Error) -> nix::errno::Errno {
    nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_has_the_runtime_spec_shape() {
        let annotations = HashMap::from([("a".to_string(), "b".to_string())]);
        let listener = Listener {
            path: "/run/agent.sock".into(),
            metadata: Some("mkdir-agent".into()),
        };
        let json = message(
            &listener,
            &ProcessInfo {
                oci_version: "1.2.0",
                id: "c1",
                status: ContainerState::Creating,
                pid: 42,
                init_pid: 42,
                bundle: Path::new("/bundles/c1"),
                annotations: &annotations,
            },
        )
        .unwrap();
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "ociVersion": "1.2.0",
                "fds": ["seccompFd"],
                "pid": 42,
                "metadata": "mkdir-agent",
                "state": {
                    "ociVersion": "1.2.0",
                    "id": "c1",
                    "status": "creating",
                    "pid": 42,
                    "bundle": "/bundles/c1",
                    "annotations": {"a": "b"}
                }
            })
        );
    }

    #[test]
    fn message_without_metadata_leaves_it_out() {
        let listener = Listener {
            path: "/run/agent.sock".into(),
            metadata: None,
        };
        let json = message(
            &listener,
            &ProcessInfo {
                oci_version: "1.0.2",
                id: "c2",
                status: ContainerState::Running,
                pid: 7,
                init_pid: 3,
                bundle: Path::new("/b"),
                annotations: &HashMap::new(),
            },
        )
        .unwrap();
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert!(v.get("metadata").is_none());
        assert_eq!(v["pid"], 7);
        assert_eq!(v["state"]["pid"], 3);
        assert_eq!(v["state"]["status"], "running");
    }
}
