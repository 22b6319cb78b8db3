//! containerd-bridge: the image and snapshot layer (content store, import, registry pull, layer
//! unpack, overlay snapshots, image config to runtime spec).
//!
//! Nothing is implemented yet; see the containerd-bridge issue.
