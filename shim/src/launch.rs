//! The shim's command line, as containerd calls it (runtime v2's shim protocol):
//!
//! - `-namespace NS -address A -publish-binary B -id ID start`, in the bundle directory: start
//!   (or reuse) the long-lived shim of the container's group and print its ttrpc address;
//! - `... -id ID -bundle DIR delete`: clean up after a shim that died, and print a
//!   DeleteResponse;
//! - `-v`: the version; `-info`: a RuntimeInfo protobuf (see `info`).
//!
//! What `start` reads on stdin and prints back depends on the containerd calling: see
//! `bootstrap`.
//!
//! `start` binds the socket itself and forks the server off: no second exec, and the socket
//! already accepts (its backlog queues containerd's connect) by the time the address is printed.

use std::io::Write;
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::bootstrap;
use crate::options::Options;
use crate::proto::bootstrap::LOG_LEVEL_DEBUG;
use crate::proto::task::DeleteResponse;
use crate::proto::{Message, Timestamp};
use crate::service::{state_root, Service};

/// Containers with the same pod share one shim, as with containerd's runc shim.
const SANDBOX_ANNOTATION: &str = "io.kubernetes.cri.sandbox-id";
/// Where containerd's shims keep their sockets.
const SOCKET_DIR: &str = "/run/containerd/s";

/// The flags containerd passes (Go's flag syntax: `-name value`, `-name=value`, `--name`).
#[derive(Debug, Default, PartialEq)]
pub struct Flags {
    pub debug: bool,
    pub version: bool,
    pub info: bool,
    pub namespace: String,
    pub id: String,
    pub address: String,
    pub publish_binary: String,
    pub bundle: String,
    pub socket: String,
    pub action: String,
}

pub fn parse(args: &[String]) -> Result<Flags, String> {
    let mut f = Flags::default();
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        let Some(flag) = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-')) else {
            f.action = arg.clone();
            break;
        };
        let (name, inline) = match flag.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (flag, None),
        };
        let bool_value = |v: Option<String>| match v.as_deref() {
            None | Some("true") | Some("1") => Ok(true),
            Some("false") | Some("0") => Ok(false),
            Some(v) => Err(format!("invalid boolean value {v:?} for -{name}")),
        };
        match name {
            "debug" => f.debug = bool_value(inline)?,
            "v" | "version" => f.version = bool_value(inline)?,
            "info" => f.info = bool_value(inline)?,
            "namespace" | "id" | "address" | "publish-binary" | "bundle" | "socket" => {
                let value = match inline {
                    Some(v) => v,
                    None => {
                        i += 1;
                        args.get(i)
                            .cloned()
                            .ok_or_else(|| format!("flag needs an argument: -{name}"))?
                    }
                };
                let slot = match name {
                    "namespace" => &mut f.namespace,
                    "id" => &mut f.id,
                    "address" => &mut f.address,
                    "publish-binary" => &mut f.publish_binary,
                    "bundle" => &mut f.bundle,
                    _ => &mut f.socket,
                };
                *slot = value;
            }
            _ => return Err(format!("flag provided but not defined: -{name}")),
        }
        i += 1;
    }
    Ok(f)
}

/// The grouping key of the bundle in `dir`: its pod's sandbox id, if it has one.
fn sandbox_id(dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(dir.join("config.json")).ok()?;
    let spec: serde_json::Value = serde_json::from_str(&text).ok()?;
    spec.get("annotations")?
        .get(SANDBOX_ANNOTATION)?
        .as_str()
        .map(str::to_string)
}

/// One socket per containerd, namespace and group, as containerd's own shims name them, in
/// `dir` (containerd 2.3's BootstrapParams.socket_dir) or containerd's usual place.
pub fn socket_path(address: &str, namespace: &str, group: &str, dir: Option<&str>) -> PathBuf {
    let key = Path::new(address).join(namespace).join(group);
    let digest = Sha256::digest(key.as_os_str().as_encoded_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    Path::new(dir.unwrap_or(SOCKET_DIR)).join(hex)
}

/// Write `content` to `name` in the current directory atomically (containerd may read it).
fn write_atomic(name: &str, content: &str) -> Result<(), String> {
    let tmp = format!(".{name}");
    std::fs::write(&tmp, content).map_err(|e| format!("write {tmp}: {e}"))?;
    std::fs::rename(&tmp, name).map_err(|e| format!("rename {tmp} to {name}: {e}"))
}

/// What the long-lived server needs from `start`.
pub struct ServeConfig {
    pub namespace: String,
    /// containerd's ttrpc address, for events.
    pub ttrpc_address: String,
    pub options: Options,
}

/// `start`: print the address of the group's shim, starting one if none serves it yet.
pub fn start(flags: &Flags) -> Result<(), String> {
    let input = bootstrap::parse(&bootstrap::read_stdin()?, flags);
    let params = input.params.clone().unwrap_or_default();
    let parsed = input.options.as_ref().map(crate::options::from_any).unwrap_or_default();
    let debug = flags.debug || (input.params.is_some() && params.log_level <= LOG_LEVEL_DEBUG);
    // Logs go to the bundle's `log` fifo, never to stderr: containerd reads `start`'s stdout and
    // stderr together as the answer.
    crate::logger::init(debug);
    if let Some(level) = parsed.options.log_level {
        log::set_max_level(level);
    }
    for w in input.warnings.iter().chain(&parsed.warnings) {
        log::warn!("{w}");
    }
    let address_flag = if flags.address.is_empty() {
        &params.containerd_grpc_address
    } else {
        &flags.address
    };
    let socket_dir = Some(params.socket_dir.as_str()).filter(|d| !d.is_empty());
    let group = sandbox_id(Path::new(".")).unwrap_or_else(|| flags.id.clone());
    let path = socket_path(address_flag, &flags.namespace, &group, socket_dir);
    let address = format!("unix://{}", path.display());
    let max_version = std::env::var("MAX_SHIM_VERSION").ok();
    let answer = bootstrap::answer_for(&input, max_version.as_deref(), Path::new(&flags.publish_binary));
    log::debug!("start {}: answering {answer:?} at {address}", flags.id);
    let answer = bootstrap::encode(answer, &address);
    let listener = bind(&path)?;
    // containerd 1.x reads it back after a restart to reconnect to this shim (2.x writes its
    // own bootstrap.json).
    write_atomic("address", &address)?;
    let Some(listener) = listener else {
        // A live shim of this group answers there: the new container joins it.
        return print_answer(&answer);
    };
    let config = ServeConfig {
        namespace: flags.namespace.clone(),
        ttrpc_address: Some(params.containerd_ttrpc_address)
            .filter(|a| !a.is_empty())
            .or_else(|| std::env::var("TTRPC_ADDRESS").ok())
            .unwrap_or_default(),
        options: parsed.options,
    };
    // SAFETY: no thread has been started in this process yet, so the child inherits no lock held
    // by another thread; the parent only prints and exits.
    match unsafe { nix::unistd::fork() }.map_err(|e| format!("fork the shim server: {e}"))? {
        nix::unistd::ForkResult::Child => {
            let Err(e) = serve(config, listener, path);
            log::error!("{e}");
            std::process::exit(1)
        }
        nix::unistd::ForkResult::Parent { .. } => print_answer(&answer),
    }
}

fn print_answer(answer: &[u8]) -> Result<(), String> {
    let mut out = std::io::stdout();
    out.write_all(answer)
        .and_then(|()| out.flush())
        .map_err(|e| format!("write the start answer: {e}"))
}

/// Bind the group's socket; `None` if a live shim already listens on it.
fn bind(path: &Path) -> Result<Option<UnixListener>, String> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    }
    match UnixListener::bind(path) {
        Ok(l) => return Ok(Some(l)),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {}
        Err(e) => return Err(format!("listen on {}: {e}", path.display())),
    }
    if UnixStream::connect(path).is_ok() {
        return Ok(None);
    }
    // A socket left by a shim that died.
    remove_socket(path);
    UnixListener::bind(path)
        .map(Some)
        .map_err(|e| format!("listen on {}: {e}", path.display()))
}

fn remove_socket(path: &Path) {
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket()) {
        if let Err(e) = std::fs::remove_file(path) {
            log::warn!("remove {}: {e}", path.display());
        }
    }
}

/// The long-lived server (the child of `start`): serve the task API until Shutdown, which ends
/// the process.
fn serve(config: ServeConfig, listener: UnixListener, socket: PathBuf) -> Result<std::convert::Infallible, String> {
    // Leave containerd's session and process group, and its pipes: signals for them (a
    // containerd restart) must not reach the shim, and containerd's `start` call waits for
    // EOF on its stdout.
    let _ = nix::unistd::setsid();
    crate::helper::set_stdio(&crate::helper::Stdio::default())?;
    set_subreaper()?;
    // One malloc arena for all threads: the shim allocates little, and each extra arena costs
    // resident pages of its own.
    // SAFETY: mallopt only sets an allocator parameter; no allocation is in flight here.
    unsafe { libc::mallopt(libc::M_ARENA_MAX, 1) };
    let service = Service::new(&config, move || {
        log::info!("shutting down");
        remove_socket(&socket);
        std::process::exit(0)
    })?;
    crate::ttrpc::serve(listener, Arc::new(service))
}

/// Every container process ends up reparented to the shim, which collects its exit status.
fn set_subreaper() -> Result<(), String> {
    // SAFETY: prctl with an integer argument changes only this process's subreaper flag.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } < 0 {
        return Err(format!("become a subreaper: {}", std::io::Error::last_os_error()));
    }
    Ok(())
}

/// `delete`: the shim serving this container died; clean up what it left behind.
pub fn delete(flags: &Flags) -> Result<(), String> {
    let bundle = if flags.bundle.is_empty() {
        std::env::current_dir().map_err(|e| format!("current directory: {e}"))?
    } else {
        PathBuf::from(&flags.bundle)
    };
    // The Root option's state root, if the server wrote one down (it is `<Root>/<namespace>`).
    let root = std::fs::read_to_string(bundle.join(crate::service::ROOT_FILE))
        .map(PathBuf::from)
        .unwrap_or_else(|_| state_root(&flags.namespace, None));
    match libcontainer::Runtime::new(&root) {
        Ok(rt) => match rt.delete(&flags.id, true) {
            Ok(()) | Err(libcontainer::Error::NotFound(_)) => {}
            Err(e) => log::warn!("delete container {}: {e}", flags.id),
        },
        Err(e) => log::warn!("open the state root: {e}"),
    }
    if let Err(e) = crate::mount::unmount(&bundle.join("rootfs")) {
        log::warn!("{e}");
    }
    let resp = DeleteResponse {
        pid: 0,
        // As runc's shim: the process was killed.
        exit_status: 128 + libc::SIGKILL as u32,
        exited_at: Some(Timestamp::of(std::time::SystemTime::now())),
    };
    std::io::stdout()
        .write_all(&resp.encode())
        .map_err(|e| format!("write the delete response: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn parses_containerds_flags() {
        let f = parse(&args(
            "-namespace k8s.io -address /run/c.sock -publish-binary /bin/c -id x -debug start",
        ));
        assert_eq!(
            f,
            Ok(Flags {
                debug: true,
                namespace: "k8s.io".into(),
                id: "x".into(),
                address: "/run/c.sock".into(),
                publish_binary: "/bin/c".into(),
                action: "start".into(),
                ..Default::default()
            })
        );
        let f = parse(&args("--namespace=ns -bundle=/b -debug=false delete"));
        assert_eq!(
            f.as_ref().map(|f| (f.namespace.as_str(), f.bundle.as_str(), f.debug)),
            Ok(("ns", "/b", false))
        );
        assert_eq!(parse(&args("-v")).map(|f| f.version), Ok(true));
    }

    #[test]
    fn bad_flags_are_named() {
        assert_eq!(
            parse(&args("-frob start")),
            Err("flag provided but not defined: -frob".into())
        );
        assert_eq!(parse(&args("-id")), Err("flag needs an argument: -id".into()));
        assert!(parse(&args("-debug=maybe")).is_err_and(|e| e.contains("-debug")));
    }

    #[test]
    fn socket_names_match_containerds_shims() {
        // containerd-shim-runc-v2's SocketAddress for this address, namespace and id.
        let p = socket_path("/run/containerd/containerd.sock", "default", "c1", None);
        // sha256 of "/run/containerd/containerd.sock/default/c1".
        assert_eq!(
            p,
            Path::new("/run/containerd/s/d25aa4ef11a84e954e74a5bcff06557d0b6ea8d0c00243896f29826694bbd888")
        );
        assert_ne!(p, socket_path("/run/containerd/containerd.sock", "default", "c2", None));
        assert_eq!(
            socket_path("/run/containerd/containerd.sock", "default", "c1", Some("/run/s")),
            Path::new("/run/s").join(p.file_name().expect("a file name"))
        );
    }
}
