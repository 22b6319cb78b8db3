//! `image check`: is every blob of an image (for its platform) in the store, and does each one
//! hash to its digest? With ctr's columns: REF, TYPE, DIGEST, STATUS (`complete (n/n)`,
//! `incomplete (k/n)` when blobs are missing, `corrupt (k/n)` when one hashes wrong,
//! `unavailable (k/?)` when the manifest itself is gone), SIZE (present/required) and UNPACKED.
//! As in containerd's `images.Check`, the counts and sizes are of the config and the layers
//! (what the manifest requires); the index and manifest are verified too, and a bad one makes
//! the image corrupt or unavailable.

use std::io;

use crate::content::{self, Blob, Role};
use crate::error::{Error, Result};
use crate::snapshot::{chain_ids, Snapshotter};
use crate::store::{ImageRecord, Store};

#[derive(Debug)]
pub struct Checked {
    pub name: String,
    /// The media type and digest of what the name points at (the index, when there is one).
    pub media_type: String,
    pub digest: String,
    pub status: String,
    pub present_size: u64,
    /// None when the manifest cannot be read, so what is required is unknown.
    pub required_size: Option<u64>,
    pub unpacked: bool,
    /// One line per missing or corrupt blob.
    pub problems: Vec<String>,
}

impl Checked {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Whether the blob is there with the right content: None if so, else what is wrong.
fn verify(store: &Store, b: &Blob) -> Option<String> {
    let what = format!("{} {}", b.role.name(), b.digest);
    let mut r = match store.open_blob(&b.digest) {
        Ok(r) => r,
        Err(Error::NotFound(_)) => return Some(format!("{what} is missing")),
        Err(e) => return Some(format!("{what}: {e}")),
    };
    if let Err(e) = io::copy(&mut r, &mut io::sink()) {
        return Some(format!("{what}: read: {e}"));
    }
    match r.verify() {
        Ok(()) => None,
        Err(Error::DigestMismatch { actual, .. }) => Some(format!("{what} is corrupt: its content hashes to {actual}")),
        Err(e) => Some(format!("{what}: {e}")),
    }
}

/// The media type of the document at the top of `rec` (its index, else its manifest).
fn top_type(store: &Store, rec: &ImageRecord) -> String {
    match &rec.index {
        None => rec.target.media_type.clone(),
        Some(i) => store
            .read_blob(i)
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|v| v.get("mediaType").and_then(|m| m.as_str()).map(str::to_string))
            .unwrap_or_else(|| crate::media::OCI_INDEX.to_string()),
    }
}

/// Check one image.
pub fn check(store: &Store, snap: &Snapshotter, rec: &ImageRecord) -> Result<Checked> {
    let mut problems = Vec::new();
    let mut good = 0usize;
    let mut present_size = 0u64;
    let (status, required_size) = match content::platform_blobs(store, rec) {
        Ok(blobs) => {
            let mut corrupt = false;
            let counted = |b: &Blob| matches!(b.role, Role::Config | Role::Layer);
            for b in &blobs {
                match verify(store, b) {
                    None if counted(b) => {
                        good += 1;
                        present_size += b.size;
                    }
                    None => {}
                    Some(p) => {
                        corrupt |= p.contains("corrupt");
                        problems.push(p);
                    }
                }
            }
            let required: Vec<&Blob> = blobs.iter().filter(|b| counted(b)).collect();
            let word = match (problems.is_empty(), corrupt) {
                (true, _) => "complete",
                (false, true) => "corrupt",
                (false, false) => "incomplete",
            };
            (
                format!("{word} ({good}/{})", required.len()),
                Some(required.iter().map(|b| b.size).sum()),
            )
        }
        Err(e) => {
            // Without the manifest nothing it requires can be counted.
            problems.push(format!("manifest {}: {e}", rec.target.digest));
            (format!("unavailable ({good}/?)"), None)
        }
    };
    let unpacked = store
        .config(&rec.config)
        .ok()
        .map(|c| chain_ids(&c.rootfs.diff_ids))
        .is_some_and(|chain| match chain.last() {
            None => true,
            Some(top) => snap.find(false, top.as_str()).ok().flatten().is_some(),
        });
    Ok(Checked {
        name: rec.name.clone(),
        media_type: top_type(store, rec),
        digest: rec.index.as_ref().unwrap_or(&rec.target.digest).to_string(),
        status,
        present_size,
        required_size,
        unpacked,
        problems,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::Descriptor;
    use crate::media;
    use crate::store::tests::temp_store;

    #[test]
    fn missing_and_corrupt_blobs_are_told_apart() {
        let (s, dir) = temp_store();
        let layer = s.write_blob_bytes(b"not really a tar", "layer").unwrap();
        let cfg = br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
        let c = s.write_blob_bytes(cfg, "config").unwrap();
        let d = |mt: &str, digest: &crate::digest::Digest, size: usize| Descriptor {
            media_type: mt.into(),
            digest: digest.clone(),
            size: size as u64,
            platform: None,
            annotations: None,
        };
        let m = serde_json::json!({
            "schemaVersion": 2, "mediaType": media::OCI_MANIFEST,
            "config": d(media::OCI_CONFIG, &c, cfg.len()), "layers": [d(media::OCI_LAYER, &layer, 16)],
        });
        let mb = serde_json::to_vec(&m).unwrap();
        let md = s.write_blob_bytes(&mb, "manifest").unwrap();
        let rec = ImageRecord {
            name: "x/y:1".into(),
            target: d(media::OCI_MANIFEST, &md, mb.len()),
            index: None,
            config: c,
            created: 0,
            labels: Default::default(),
        };
        let snap = Snapshotter::with_driver(&s, crate::snapshot::Driver::Native);
        let ok = check(&s, &snap, &rec).unwrap();
        assert_eq!((ok.status.as_str(), ok.ok()), ("complete (2/2)", true));
        assert_eq!(ok.required_size, Some((cfg.len() + 16) as u64));
        std::fs::write(s.blob_path(&layer), b"not really a taR").unwrap();
        let bad = check(&s, &snap, &rec).unwrap();
        assert_eq!(bad.status, "corrupt (1/2)");
        assert!(
            bad.problems[0].contains(&format!("layer {layer} is corrupt")),
            "{:?}",
            bad.problems
        );
        std::fs::remove_file(s.blob_path(&layer)).unwrap();
        let gone = check(&s, &snap, &rec).unwrap();
        assert_eq!(gone.status, "incomplete (1/2)");
        assert_eq!(gone.present_size, cfg.len() as u64);
        std::fs::remove_file(s.blob_path(&md)).unwrap();
        let lost = check(&s, &snap, &rec).unwrap();
        assert_eq!((lost.status.as_str(), lost.required_size), ("unavailable (0/?)", None));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
