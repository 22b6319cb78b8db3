//! `-info`: containerd 2.2+ runs `<shim> -info` (runtime options on stdin) before it creates a
//! task, and reads a RuntimeInfo protobuf from stdout. Its features are the OCI features
//! document of `hezi features`, from the same builder in libcontainer.

use std::io::Write;

use crate::proto::bootstrap::{RuntimeInfo, RuntimeVersion, FEATURES_TYPE};
use crate::proto::{Any, Message};

pub fn run() -> Result<(), String> {
    let input = crate::bootstrap::read_stdin()?;
    // As containerd's runc shim: the options it was given come back, decoded or not at all.
    let options = match Any::decode(&input) {
        Ok(any) if !any.type_url.is_empty() => Some(any),
        _ => None,
    };
    let features = serde_json::to_vec(&libcontainer::features::document())
        .map_err(|e| format!("encode the features document: {e}"))?;
    let info = RuntimeInfo {
        name: crate::RUNTIME_ID.to_string(),
        version: Some(RuntimeVersion {
            version: env!("CARGO_PKG_VERSION").to_string(),
            revision: String::new(),
        }),
        options,
        features: Some(Any {
            type_url: FEATURES_TYPE.to_string(),
            value: features,
        }),
        annotations: Vec::new(),
    };
    let mut out = std::io::stdout();
    out.write_all(&info.encode())
        .and_then(|()| out.flush())
        .map_err(|e| format!("write the runtime info: {e}"))
}
