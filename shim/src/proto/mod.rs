//! The protobuf messages the shim exchanges with containerd: the task API (`task`), the events
//! it publishes (`events`), the cgroup metrics of Stats (`metrics`), ttrpc's own framing
//! messages (`rpc`), and the well-known types they share (here).

pub mod bootstrap;
pub mod events;
pub mod metrics;
pub mod rpc;
pub mod task;
pub mod wire;

use std::time::{SystemTime, UNIX_EPOCH};

pub use wire::Message;

crate::message!(
    /// google.protobuf.Timestamp
    Timestamp { 1 => seconds: i64, 2 => nanos: i32 }
);

crate::message!(
    /// google.protobuf.Any: a message with the name of its type.
    Any { 1 => type_url: String, 2 => value: Vec<u8> }
);

crate::message!(
    /// google.protobuf.Empty
    Empty {}
);

crate::message!(
    /// containerd.types.Mount: one mount of a snapshot.
    Mount { 1 => kind: String, 2 => source: String, 3 => target: String, 4 => options: Vec<String> }
);

impl Timestamp {
    pub fn of(t: SystemTime) -> Timestamp {
        let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
        Timestamp {
            seconds: d.as_secs() as i64,
            nanos: d.subsec_nanos() as i32,
        }
    }
}

impl Any {
    /// `m` packed with its type's full name, as containerd's typeurl package names it.
    pub fn pack(type_url: &str, m: &impl Message) -> Any {
        Any {
            type_url: type_url.to_string(),
            value: m.encode(),
        }
    }
}
