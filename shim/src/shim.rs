//! The shim's own life cycle (containerd's `start` and `delete` actions, and the long-lived
//! server's wait), as the containerd-shim crate's `Shim` trait asks for it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use containerd_shim::publisher::RemotePublisher;
use containerd_shim::{api, Config, DeleteResponse, Error, ExitSignal, Flags, StartOpts};

use crate::service::{state_root, Service};

/// Containers with the same pod share one shim, as with containerd's runc shim.
const SANDBOX_ANNOTATION: &str = "io.kubernetes.cri.sandbox-id";

pub struct HeziShim {
    exit: Arc<ExitSignal>,
    namespace: String,
    id: String,
    bundle: String,
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

impl containerd_shim::Shim for HeziShim {
    type T = Service;

    fn new(_runtime_id: &str, args: &Flags, _config: &mut Config) -> Self {
        HeziShim {
            exit: Arc::new(ExitSignal::default()),
            namespace: args.namespace.clone(),
            id: args.id.clone(),
            bundle: args.bundle.clone(),
        }
    }

    fn start_shim(&mut self, opts: StartOpts) -> Result<String, Error> {
        let grouping = sandbox_id(Path::new(".")).unwrap_or_else(|| opts.id.clone());
        let (_pid, address) = containerd_shim::spawn(opts, &grouping, Vec::new())?;
        // containerd reads it back after a restart to reconnect to this shim.
        containerd_shim::synchronous::util::write_address(&address)?;
        Ok(address)
    }

    /// The shim serving this container died: clean up what it left behind.
    fn delete_shim(&mut self) -> Result<DeleteResponse, Error> {
        let bundle = if self.bundle.is_empty() {
            std::env::current_dir().unwrap_or_default()
        } else {
            PathBuf::from(&self.bundle)
        };
        match libcontainer::Runtime::new(&state_root(&self.namespace)) {
            Ok(rt) => match rt.delete(&self.id, true) {
                Ok(()) | Err(libcontainer::Error::NotFound(_)) => {}
                Err(e) => log::warn!("delete container {}: {e}", self.id),
            },
            Err(e) => log::warn!("open the state root: {e}"),
        }
        if let Err(e) = crate::mount::unmount(&bundle.join("rootfs")) {
            log::warn!("{e}");
        }
        Ok(api::DeleteResponse {
            // As runc's shim: the process was killed.
            exit_status: 128 + libc::SIGKILL as u32,
            exited_at: Some(crate::process::timestamp(std::time::SystemTime::now())).into(),
            ..Default::default()
        })
    }

    fn wait(&mut self) {
        self.exit.wait();
    }

    fn create_task_service(&self, _publisher: RemotePublisher) -> Service {
        // Events go through our own connection, which reconnects when containerd restarts.
        let address = std::env::var("TTRPC_ADDRESS").unwrap_or_default();
        match Service::new(&self.namespace, address, Arc::clone(&self.exit)) {
            Ok(s) => s,
            Err(e) => {
                log::error!("{e}");
                eprintln!("containerd-shim-hezi-v2: {e}");
                std::process::exit(1);
            }
        }
    }
}
