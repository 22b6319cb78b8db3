//! What containerd and a shim exchange outside the task API: `start`'s bootstrap messages
//! (containerd 2.3+, api/runtime/bootstrap/v1), `-info`'s RuntimeInfo (api/types/
//! introspection.proto) and CRI's generic runtime options (api/types/runtimeoptions/v1).

use super::Any;

crate::message!(
    /// containerd.runtime.bootstrap.v1.BootstrapParams: `start`'s stdin from containerd 2.3 on.
    BootstrapParams {
        1 => instance_id: String,
        2 => namespace: String,
        3 => log_level: i32,
        4 => containerd_version: String,
        5 => containerd_ttrpc_address: String,
        6 => containerd_grpc_address: String,
        7 => containerd_binary: String,
        8 => extensions: Vec<Extension>,
        9 => socket_dir: String,
    }
);

crate::message!(
    /// containerd.runtime.bootstrap.v1.Extension: a typed section (the runtime options).
    Extension { 1 => value: Option<Any> }
);

crate::message!(
    /// containerd.runtime.bootstrap.v1.BootstrapResult: `start`'s answer to a 2.3+ containerd.
    BootstrapResult {
        1 => version: i32,
        2 => address: String,
        3 => protocol: String,
    }
);

/// BootstrapParams.log_level: INFO is 0, more verbose levels negative.
pub const LOG_LEVEL_DEBUG: i32 = -4;

crate::message!(
    /// containerd.types.RuntimeVersion
    RuntimeVersion { 1 => version: String, 2 => revision: String }
);

crate::message!(
    /// containerd.types.RuntimeInfo: what `<shim> -info` prints.
    RuntimeInfo {
        1 => name: String,
        2 => version: Option<RuntimeVersion>,
        3 => options: Option<Any>,
        4 => features: Option<Any>,
        5 => annotations: Vec<MapEntry>,
    }
);

crate::message!(
    /// One entry of a protobuf `map<string, string>`.
    MapEntry { 1 => key: String, 2 => value: String }
);

crate::message!(
    /// runtimeoptions.v1.Options: what CRI sends for a runtime_type other than runc's.
    RuntimeOptions {
        1 => type_url: String,
        2 => config_path: String,
        3 => config_body: Vec<u8>,
    }
);

/// RuntimeOptions' name in an Any, as containerd's typeurl writes it.
pub const RUNTIME_OPTIONS_TYPE: &str = "runtimeoptions.v1.Options";
/// The features document's name in an Any: JSON, registered by containerd under this name.
pub const FEATURES_TYPE: &str = "types.containerd.io/opencontainers/runtime-spec/1/features/Features";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::Message;

    #[test]
    fn bootstrap_params_decode_as_containerd_writes_them() {
        // protoc's encoding of instance_id "c1", namespace "k8s.io", log_level -4,
        // extensions { value { type_url "t" } }, socket_dir "/s".
        let mut bytes = vec![0x0a, 2, b'c', b'1', 0x12, 6];
        bytes.extend_from_slice(b"k8s.io");
        bytes.extend_from_slice(&[0x18, 0xfc, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
        bytes.extend_from_slice(&[0x42, 5, 0x0a, 3, 0x0a, 1, b't', 0x4a, 2, b'/', b's']);
        let p = BootstrapParams::decode(&bytes).expect("decode");
        assert_eq!((p.instance_id.as_str(), p.namespace.as_str()), ("c1", "k8s.io"));
        assert_eq!(p.log_level, LOG_LEVEL_DEBUG);
        assert_eq!(p.extensions.len(), 1);
        assert_eq!(p.extensions[0].value.as_ref().map(|a| a.type_url.as_str()), Some("t"));
        assert_eq!(p.socket_dir, "/s");
        assert_eq!(BootstrapParams::decode(&p.encode()), Ok(p));
    }
}
