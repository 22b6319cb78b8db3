//! containerd's namespaces for containers (`hezi -n NS create|run|list|state|...`, or
//! `CONTAINERD_NAMESPACE`). The `default` namespace is `--root` itself, exactly as runc lays it
//! out, so runc's callers (podman, containerd's runc shim), which never name a namespace, see
//! what they always saw. Any other namespace NS keeps its containers' state in
//! `<root>/.namespaces/NS`: a container of one namespace is simply not there for another, and
//! every command that takes an id finds only its own namespace's. A dot name cannot be a
//! container id, so the directory never shows up as a container of `default`.
//!
//! Ids stay unique across namespaces (unlike containerd's): a container's cgroup
//! (`/hezi/<id>`), systemd scope and image bundle are named by its id alone, so two containers
//! of one id would share them. Creating an id another namespace holds is refused, naming it.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use containerd_bridge::namespace::DEFAULT;

use crate::{Failure, Global};

/// Under `--root`: one state root per namespace other than `default`.
const NS_DIR: &str = ".namespaces";
/// Taken while a create checks and claims an id (a dot name: no namespace can be called so).
const LOCK: &str = ".lock";

/// The namespace the runtime was opened in, when not `default`: the "not found" errors of
/// libcontainer (which knows nothing of namespaces) are reworded to name it. Set once, by
/// [`state_root`]; a hezi process works in one namespace.
static VIEW: OnceLock<String> = OnceLock::new();

/// Where the containers of the chosen namespace keep their state.
pub fn state_root(g: &Global) -> Result<PathBuf, Failure> {
    let ns = super::image::namespace(g)?;
    if ns == DEFAULT {
        return Ok(g.root.clone());
    }
    let _ = VIEW.set(ns.clone());
    Ok(g.root.join(NS_DIR).join(ns))
}

/// libcontainer's error as the user reads it: a container missing from a namespace other than
/// `default` is "not found in namespace NS", as ctr says it. `default` keeps runc's words,
/// which containerd's runc shim and podman match on.
pub fn describe(e: &libcontainer::Error) -> String {
    match (e, VIEW.get()) {
        (libcontainer::Error::NotFound(id), Some(ns)) => format!("container {id} not found in namespace {ns}"),
        _ => e.to_string(),
    }
}

/// Held from the check that no other namespace has the id until the create has claimed it.
pub struct IdClaim {
    _lock: Option<File>,
}

/// Check that `id` is not a container of another namespace, and keep other namespaces' creates
/// from taking it until the returned claim drops. A root that has never seen a namespace
/// (runc's callers) takes no lock and makes nothing.
pub fn claim_id(g: &Global, id: &str) -> Result<IdClaim, Failure> {
    let ns = super::image::namespace(g)?;
    let dir = g.root.join(NS_DIR);
    if ns == DEFAULT && !dir.exists() {
        return Ok(IdClaim { _lock: None });
    }
    std::fs::create_dir_all(&dir).map_err(|e| Failure::Error(format!("create {}: {e}", dir.display())))?;
    let lock = lock(&dir.join(LOCK))?;
    let mut others: Vec<(String, PathBuf)> = Vec::new();
    if ns != DEFAULT {
        others.push((DEFAULT.to_string(), g.root.clone()));
    }
    let entries = std::fs::read_dir(&dir).map_err(|e| Failure::Error(format!("list {}: {e}", dir.display())))?;
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name != ns && !name.starts_with('.') {
            others.push((name, e.path()));
        }
    }
    if let Some((other, _)) = others.iter().find(|(_, root)| root.join(id).is_dir()) {
        return Err(Failure::Error(format!(
            "container {id} exists in namespace {other}: ids are unique across namespaces \
             (a container's cgroup and bundle are named by its id)"
        )));
    }
    Ok(IdClaim { _lock: Some(lock) })
}

fn lock(path: &Path) -> Result<File, Failure> {
    let f = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| Failure::Error(format!("open {}: {e}", path.display())))?;
    loop {
        // SAFETY: flock on a descriptor we own; no memory is passed. The lock goes with the fd.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } == 0 {
            return Ok(f);
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(Failure::Error(format!("lock {}: {e}", path.display())));
        }
    }
}
