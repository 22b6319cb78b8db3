//! containerd-bridge: the image and snapshot layer under `hezi run --image`: a content store,
//! OCI-layout and docker-archive import, registry pull, layer unpack, overlay (or copying)
//! snapshots, mounting them as a bundle's rootfs, and the image config turned into a runtime
//! spec.

pub mod bundle;
pub mod cancel;
pub mod check;
pub mod content;
pub mod copy;
pub mod demo;
pub mod digest;
pub mod error;
pub mod export;
pub mod fsutil;
pub mod image_mount;
pub mod images;
pub mod import;
pub mod labels;
pub mod manifest;
pub mod media;
pub mod mount;
pub mod namespace;
pub mod overrides;
pub mod platform;
pub mod prune;
pub mod reference;
pub mod registry;
pub mod seccomp;
pub mod snapshot;
pub mod spec;
pub mod store;
pub mod unpack;
pub mod usage;
pub mod user;

pub use error::{Error, Result};
