//! `start`'s protocol with each containerd: what arrives on stdin, and what to print.
//!
//! What each containerd sends and reads (core/runtime/v2 and pkg/shim in containerd's source):
//!
//! | containerd | stdin of `start`                   | reads back                               |
//! |------------|------------------------------------|------------------------------------------|
//! | 1.6        | runtime options (an Any), or none   | the address, as plain text               |
//! | 1.7        | same; sets MAX_SHIM_VERSION=2       | plain address, or JSON of version ≤ 2    |
//! | 2.0 – 2.2  | same as 1.7                         | plain address (v2, through its bridge) or JSON `{"version":3,...}` (task API v3) |
//! | 2.3 +      | BootstrapParams (options in its extensions) | BootstrapResult protobuf first, then the older forms |
//!
//! So: a BootstrapResult to whoever sent BootstrapParams, the JSON of version 3 to a 2.0-2.2
//! (told from 1.7 by its binary, see [`crate::caller`]), the plain address to everyone else.
//! Version 3 also means containerd 2.x sends a pod's containers to the sandbox's shim over the
//! same connection, with no `start` (and no `delete` binary call) of their own.
//!
//! stdin is never misread: runtime options (an Any: fields 1 and 2 are strings) also decode as
//! a BootstrapParams, so BootstrapParams count only when their instance id and namespace are
//! the ones on the command line, as containerd's own shims check.

use std::io::Read;
use std::path::Path;

use crate::launch::Flags;
use crate::proto::bootstrap::{BootstrapParams, BootstrapResult, RUNTIME_OPTIONS_TYPE};
use crate::proto::{Any, Message};

/// containerd reads at most this much of a shim's stdin; so do we.
const STDIN_LIMIT: u64 = 10 << 20;
/// The start answer's version that makes containerd 2.x call `containerd.task.v3.Task`.
pub const TASK_API_V3: i32 = 3;

/// What `start` found on its stdin.
#[derive(Debug, Default, PartialEq)]
pub struct Input {
    /// containerd 2.3+'s parameters.
    pub params: Option<BootstrapParams>,
    /// The runtime options, from either protocol.
    pub options: Option<Any>,
    /// What could not be used, for the log.
    pub warnings: Vec<String>,
}

/// All of stdin, unless it is a terminal (a person running `start` by hand: nothing to read).
pub fn read_stdin() -> Result<Vec<u8>, String> {
    let stdin = std::io::stdin();
    if nix::unistd::isatty(&stdin).unwrap_or(false) {
        return Ok(Vec::new());
    }
    let mut buf = Vec::new();
    stdin
        .lock()
        .take(STDIN_LIMIT)
        .read_to_end(&mut buf)
        .map_err(|e| format!("read stdin: {e}"))?;
    Ok(buf)
}

pub fn parse(input: &[u8], flags: &Flags) -> Input {
    let mut found = Input::default();
    if input.is_empty() {
        return found;
    }
    if let Ok(p) = BootstrapParams::decode(input) {
        if !p.instance_id.is_empty() && p.instance_id == flags.id && p.namespace == flags.namespace {
            for ext in p.extensions.iter().filter_map(|e| e.value.as_ref()) {
                if ext.type_url.rsplit('/').next() == Some(RUNTIME_OPTIONS_TYPE) || found.options.is_none() {
                    found.options = Some(ext.clone());
                } else {
                    found
                        .warnings
                        .push(format!("bootstrap extension {} ignored", ext.type_url));
                }
            }
            found.params = Some(p);
            return found;
        }
    }
    match Any::decode(input) {
        Ok(any) if !any.type_url.is_empty() => found.options = Some(any),
        _ => found.warnings.push(format!(
            "stdin: {} bytes that are neither BootstrapParams for {} nor runtime options; ignored",
            input.len(),
            flags.id
        )),
    }
    found
}

/// How to say where the shim listens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// The address alone (containerd 1.6, 1.7, and any caller we cannot place).
    Plain,
    /// `{"version":3,"protocol":"ttrpc","address":...}` (containerd 2.0 – 2.2).
    JsonV3,
    /// A BootstrapResult protobuf of version 3 (containerd 2.3+).
    ResultV3,
}

/// Which answer this caller understands; `max_shim_version` is `$MAX_SHIM_VERSION`.
pub fn answer_for(input: &Input, max_shim_version: Option<&str>, publish_binary: &Path) -> Answer {
    if input.params.is_some() {
        return Answer::ResultV3;
    }
    // 1.6 and older set no MAX_SHIM_VERSION and read nothing but an address.
    if max_shim_version.is_none() {
        return Answer::Plain;
    }
    match crate::caller::containerd_major(publish_binary) {
        Some(major) if major >= 2 => Answer::JsonV3,
        _ => Answer::Plain,
    }
}

pub fn encode(answer: Answer, address: &str) -> Vec<u8> {
    match answer {
        Answer::Plain => address.as_bytes().to_vec(),
        Answer::JsonV3 => serde_json::json!({ "version": TASK_API_V3, "protocol": "ttrpc", "address": address })
            .to_string()
            .into_bytes(),
        Answer::ResultV3 => BootstrapResult {
            version: TASK_API_V3,
            address: address.to_string(),
            protocol: "ttrpc".to_string(),
        }
        .encode(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::bootstrap::{Extension, RuntimeOptions};

    fn flags() -> Flags {
        Flags {
            namespace: "k8s.io".into(),
            id: "c1".into(),
            action: "start".into(),
            ..Default::default()
        }
    }

    fn options() -> Any {
        Any::pack(
            RUNTIME_OPTIONS_TYPE,
            &RuntimeOptions {
                config_body: b"SystemdCgroup = true".to_vec(),
                ..Default::default()
            },
        )
    }

    #[test]
    fn bootstrap_params_and_their_options() {
        let p = BootstrapParams {
            instance_id: "c1".into(),
            namespace: "k8s.io".into(),
            extensions: vec![Extension { value: Some(options()) }],
            ..Default::default()
        };
        let input = parse(&p.encode(), &flags());
        assert_eq!(input.options, Some(options()));
        assert_eq!(input.params, Some(p));
        assert_eq!(
            answer_for(&input, Some("2"), Path::new("/nonexistent")),
            Answer::ResultV3
        );
    }

    #[test]
    fn legacy_options_are_not_taken_for_bootstrap_params() {
        // An Any whose type url happened to equal the id would still need the namespace too.
        let input = parse(&options().encode(), &flags());
        assert_eq!(input.params, None);
        assert_eq!(input.options, Some(options()));
        // Params for another container (or namespace) are not ours.
        let other = BootstrapParams {
            instance_id: "c2".into(),
            namespace: "k8s.io".into(),
            ..Default::default()
        };
        let input = parse(&other.encode(), &flags());
        assert_eq!(input.params, None);
        assert_eq!(answer_for(&input, None, Path::new("/nonexistent")), Answer::Plain);
    }

    #[test]
    fn garbage_and_nothing() {
        assert_eq!(parse(b"", &flags()), Input::default());
        let input = parse(b"\xff\xff\xff", &flags());
        assert_eq!((input.params, input.options), (None, None));
        assert_eq!(input.warnings.len(), 1);
    }

    #[test]
    fn answers_as_each_containerd_reads_them() {
        let addr = "unix:///run/containerd/s/ab";
        assert_eq!(encode(Answer::Plain, addr), addr.as_bytes());
        let json: serde_json::Value = serde_json::from_slice(&encode(Answer::JsonV3, addr)).expect("JSON");
        assert_eq!(
            json,
            serde_json::json!({"version": 3, "protocol": "ttrpc", "address": addr})
        );
        let r = BootstrapResult::decode(&encode(Answer::ResultV3, addr)).expect("BootstrapResult");
        assert_eq!((r.version, r.address.as_str(), r.protocol.as_str()), (3, addr, "ttrpc"));
        // No containerd behind the publish binary: the answer every version reads.
        let input = Input::default();
        assert_eq!(
            answer_for(&input, Some("2"), Path::new("/proc/self/exe")),
            Answer::Plain
        );
    }
}
