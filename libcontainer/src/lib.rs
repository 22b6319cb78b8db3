//! libcontainer: an OCI bundle to one running container. Namespaces, the root filesystem,
//! cgroups, privileges and the on-disk state, with no knowledge of any command line or RPC.
//!
//! The entry point is [`container::Runtime`]: `create`, `start`, `state`, `kill`, `delete`, `list`.

// The front ends' surface: the operations, the spec and state types, errors, and what they
// print or relay (cgroup stats and OOM watch, signals, times, the console socket).
pub mod cgroups;
pub mod checkpoint;
pub mod container;
pub mod error;
pub mod features;
pub mod signal;
pub mod spec;
pub mod state;
pub mod time;
pub mod tty;

/// Modules no front end uses: private to the crate, public only with the `internals` feature,
/// which the fuzz targets and this crate's integration tests turn on to reach the pieces they
/// exercise (the seccomp compiler, namespace plans, the init channel).
macro_rules! internal {
    ($($name:ident),* $(,)?) => {
        $(
            #[cfg(feature = "internals")]
            pub mod $name;
            #[cfg(not(feature = "internals"))]
            pub(crate) mod $name;
        )*
    };
}

mod feature_report;
mod netlink;

internal!(hooks, id, intelrdt, lsm, namespaces, netdev, process, procfs, rootfs, seccomp, sys);

pub use container::{CreateOptions, ExecOptions, OciState, Runtime, Status};
pub use error::{Error, Result};
/// The runtime's log file, which the init keeps until it waits for `start` (see logging).
pub use process::init::set_runtime_log_fd;
