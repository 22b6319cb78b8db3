//! libcontainer: an OCI bundle to one running container. Namespaces, the root filesystem,
//! cgroups, privileges and the on-disk state, with no knowledge of any command line or RPC.
//!
//! The entry point is [`container::Runtime`]: `create`, `start`, `state`, `kill`, `delete`, `list`.

pub mod cgroups;
pub mod container;
pub mod error;
pub mod hooks;
pub mod id;
pub mod lsm;
pub mod namespaces;
pub mod process;
pub mod procfs;
pub mod rootfs;
pub mod seccomp;
pub mod signal;
pub mod spec;
pub mod state;
pub mod sys;
pub mod time;
pub mod tty;

pub use container::{CreateOptions, ExecOptions, OciState, Runtime, Status};
pub use error::{Error, Result};
