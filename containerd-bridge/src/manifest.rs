//! The JSON documents of an image: descriptors, index (or Docker manifest list), manifest,
//! and the parts of the image config that running it needs. Unknown fields are kept where we
//! write documents back (`extra`), so a converted manifest loses nothing.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::digest::Digest;
use crate::error::{Error, Result};

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(rename = "os.version", default, skip_serializing_if = "Option::is_none")]
    pub os_version: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    #[serde(default)]
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    #[serde(default)]
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub manifests: Vec<Descriptor>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// The image config fields hezi uses (`config` and `rootfs` of the OCI image config).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ImageConfig {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(default)]
    pub config: RunConfig,
    pub rootfs: RootFs,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RunConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RootFs {
    #[serde(rename = "type")]
    pub kind: String,
    pub diff_ids: Vec<Digest>,
}

/// Parse a JSON document, naming it in the error.
pub fn parse<T: serde::de::DeserializeOwned>(what: &str, bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| Error::Invalid(format!("{what}: invalid JSON: {e}")))
}

/// What kind of document a manifest-ish blob is: from its declared media type, or (OCI allows
/// omitting it) from its shape.
#[derive(Debug, PartialEq, Eq)]
pub enum Kind {
    Index,
    Manifest,
}

pub fn kind_of(media_type: Option<&str>, bytes: &[u8]) -> Result<Kind> {
    use crate::media::*;
    match media_type {
        Some(OCI_INDEX) | Some(DOCKER_LIST) => Ok(Kind::Index),
        Some(OCI_MANIFEST) | Some(DOCKER_MANIFEST) => Ok(Kind::Manifest),
        Some(mt) if !mt.is_empty() && mt != "application/json" => {
            Err(Error::Unsupported(format!("unsupported manifest media type {mt:?}")))
        }
        _ => {
            let v: Value = parse("manifest", bytes)?;
            if let Some(mt) = v.get("mediaType").and_then(Value::as_str) {
                return kind_of(Some(mt), b"{}");
            }
            if v.get("manifests").is_some() {
                Ok(Kind::Index)
            } else if v.get("layers").is_some() {
                Ok(Kind::Manifest)
            } else {
                Err(Error::Unsupported(
                    "document is neither an image index nor a manifest".into(),
                ))
            }
        }
    }
}
