//! Which blobs an image is made of, found by walking its documents as containerd's
//! `images.Walk` does: an index (when the image has one) lists manifests, a manifest names its
//! config and layers. Garbage collection keeps everything reachable; `check`, `usage`, `push`
//! and `export` ask for the blobs of the image's platform, or of every platform of its index.

use std::collections::BTreeSet;

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::manifest::{self, Descriptor, Index, Manifest};
use crate::store::{ImageRecord, Store};

/// What a blob is to the image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Index,
    Manifest,
    Config,
    Layer,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Index => "index",
            Role::Manifest => "manifest",
            Role::Config => "config",
            Role::Layer => "layer",
        }
    }
}

/// One blob of an image: its role, digest and size as the document that names it says.
#[derive(Clone, Debug)]
pub struct Blob {
    pub role: Role,
    pub digest: Digest,
    pub size: u64,
}

/// The size of a stored blob on disk (the index has no descriptor in the record to say it).
fn stored_size(store: &Store, d: &Digest) -> u64 {
    std::fs::metadata(store.blob_path(d)).map_or(0, |m| m.len())
}

/// The blobs of a manifest document: the manifest itself, then its config and layers.
fn manifest_blobs(desc: &Descriptor, m: &Manifest) -> Vec<Blob> {
    let mut out = vec![Blob {
        role: Role::Manifest,
        digest: desc.digest.clone(),
        size: desc.size,
    }];
    out.push(Blob {
        role: Role::Config,
        digest: m.config.digest.clone(),
        size: m.config.size,
    });
    out.extend(m.layers.iter().map(|l| Blob {
        role: Role::Layer,
        digest: l.digest.clone(),
        size: l.size,
    }));
    out
}

/// The blobs the record's own platform needs: its index (if any), manifest, config and
/// layers. Fails when the manifest itself cannot be read (then the rest is unknown).
pub fn platform_blobs(store: &Store, rec: &ImageRecord) -> Result<Vec<Blob>> {
    let mut out = Vec::new();
    if let Some(i) = &rec.index {
        out.push(Blob {
            role: Role::Index,
            digest: i.clone(),
            size: stored_size(store, i),
        });
    }
    let m = store.manifest(&rec.target.digest)?;
    out.extend(manifest_blobs(&rec.target, &m));
    Ok(out)
}

/// One manifest of an index: its entry there, and the document.
pub type IndexEntry = (Descriptor, Manifest);

/// Each manifest `rec`'s index lists (None without an index), read from the store; fails
/// naming the first manifest (by platform) that is not there, as a push or export of every
/// platform needs all.
pub fn index_manifests(store: &Store, rec: &ImageRecord) -> Result<Option<Vec<IndexEntry>>> {
    let Some(idx_digest) = &rec.index else {
        return Ok(None);
    };
    let idx: Index = manifest::parse(&format!("index {idx_digest}"), &store.read_blob(idx_digest)?)?;
    let mut out = Vec::new();
    for d in &idx.manifests {
        let m = store.manifest(&d.digest).map_err(|e| {
            let plat = d
                .platform
                .as_ref()
                .map_or("no platform".to_string(), crate::platform::format);
            Error::NotFound(format!(
                "image {}: the manifest for {plat} ({}) is not in the store ({e}); pull it with --all-platforms",
                rec.name, d.digest
            ))
        })?;
        out.push((d.clone(), m));
    }
    Ok(Some(out))
}

/// Every blob of every platform of `rec`'s index (all must be in the store), the index first;
/// for an image without an index, its platform's blobs.
pub fn all_platform_blobs(store: &Store, rec: &ImageRecord) -> Result<Vec<Blob>> {
    let Some(manifests) = index_manifests(store, rec)? else {
        return platform_blobs(store, rec);
    };
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    if let Some(i) = &rec.index {
        seen.insert(i.clone());
        out.push(Blob {
            role: Role::Index,
            digest: i.clone(),
            size: stored_size(store, i),
        });
    }
    for (d, m) in &manifests {
        for b in manifest_blobs(d, m) {
            if seen.insert(b.digest.clone()) {
                out.push(b);
            }
        }
    }
    Ok(out)
}

/// Every blob reachable from `rec` that garbage collection must keep: the index, every
/// manifest it lists that is in the store (an image pulled with --all-platforms keeps them
/// all), and their configs and layers. Unreadable documents just end the walk there.
pub fn reachable(store: &Store, rec: &ImageRecord) -> BTreeSet<Digest> {
    let mut keep = BTreeSet::new();
    let mut manifests = vec![rec.target.digest.clone()];
    keep.insert(rec.config.clone());
    if let Some(i) = &rec.index {
        keep.insert(i.clone());
        if let Ok(idx) = store
            .read_blob(i)
            .and_then(|b| manifest::parse::<Index>(&format!("index {i}"), &b))
        {
            manifests.extend(
                idx.manifests
                    .into_iter()
                    .map(|d| d.digest)
                    .filter(|d| store.has_blob(d)),
            );
        }
    }
    for md in manifests {
        keep.insert(md.clone());
        if let Ok(m) = store.manifest(&md) {
            keep.insert(m.config.digest);
            keep.extend(m.layers.into_iter().map(|l| l.digest));
        }
    }
    keep
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media;
    use crate::store::tests::temp_store;

    fn desc(mt: &str, d: &Digest, size: usize) -> Descriptor {
        Descriptor {
            media_type: mt.into(),
            digest: d.clone(),
            size: size as u64,
            platform: None,
            annotations: None,
        }
    }

    /// A stored manifest with one layer; returns its descriptor.
    fn image(s: &Store, arch: &str) -> Descriptor {
        let layer = s.write_blob_bytes(arch.as_bytes(), "layer").unwrap();
        let cfg = format!(r#"{{"architecture":"{arch}","os":"linux","rootfs":{{"type":"layers","diff_ids":[]}}}}"#);
        let c = s.write_blob_bytes(cfg.as_bytes(), "config").unwrap();
        let m = serde_json::json!({
            "schemaVersion": 2, "mediaType": media::OCI_MANIFEST,
            "config": desc(media::OCI_CONFIG, &c, cfg.len()),
            "layers": [desc(media::OCI_LAYER, &layer, arch.len())],
        });
        let bytes = serde_json::to_vec(&m).unwrap();
        let md = s.write_blob_bytes(&bytes, "manifest").unwrap();
        let mut d = desc(media::OCI_MANIFEST, &md, bytes.len());
        d.platform = Some(crate::platform::parse(&format!("linux/{arch}")).unwrap());
        d
    }

    #[test]
    fn walks_the_index_and_what_is_present() {
        let (s, dir) = temp_store();
        let (a, b) = (image(&s, "amd64"), image(&s, "arm64"));
        let idx = serde_json::json!({ "schemaVersion": 2, "mediaType": media::OCI_INDEX, "manifests": [a, b] });
        let idx_bytes = serde_json::to_vec(&idx).unwrap();
        let i = s.write_blob_bytes(&idx_bytes, "index").unwrap();
        let cfg_a = s.manifest(&a.digest).unwrap().config.digest;
        let rec = ImageRecord {
            name: "x/y:1".into(),
            target: Descriptor {
                platform: None,
                ..a.clone()
            },
            index: Some(i.clone()),
            config: cfg_a,
            created: 0,
            labels: Default::default(),
        };
        let own = platform_blobs(&s, &rec).unwrap();
        let roles: Vec<&str> = own.iter().map(|b| b.role.name()).collect();
        assert_eq!(roles, ["index", "manifest", "config", "layer"]);
        assert_eq!(own[0].size, idx_bytes.len() as u64);
        assert_eq!(all_platform_blobs(&s, &rec).unwrap().len(), 7);
        assert_eq!(reachable(&s, &rec).len(), 7);
        // The other platform's manifest gone: gc keeps what is left of the host's, and a
        // push or export of every platform names what is missing.
        std::fs::remove_file(s.blob_path(&b.digest)).unwrap();
        assert_eq!(reachable(&s, &rec).len(), 4);
        let e = all_platform_blobs(&s, &rec).unwrap_err().to_string();
        assert!(e.contains("linux/arm64") && e.contains("--all-platforms"), "{e}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
