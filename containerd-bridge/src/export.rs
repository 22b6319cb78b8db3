//! `image export`: images of the store as an OCI image-layout tar archive, the form
//! `ctr images import`, `skopeo` (oci-archive:) and `podman load` read. Each image is one entry
//! of index.json: its platform manifest, named by containerd's `io.containerd.image.name` and
//! the OCI `org.opencontainers.image.ref.name` (the tag), with the blobs it references. The
//! archive is written to a temporary file beside the destination and renamed into place, so a
//! failed export leaves no partial file.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::content;
use crate::demo::tar_header;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::manifest::{Descriptor, Platform};
use crate::store::Store;

/// Write the images `names` (normalised) to `out`; returns how many blobs the archive holds.
/// With `all_platforms`, an image pulled with an index is written as that index with every
/// manifest it lists (all must be in the store), as `ctr images export --all-platforms` does.
pub fn export(store: &Store, names: &[String], out: &Path, all_platforms: bool) -> Result<usize> {
    // No `image rm` may collect a blob while it is being copied.
    let _lock = store.lock()?;
    let mut entries = Vec::new();
    let mut blobs: BTreeMap<String, Digest> = BTreeMap::new();
    for name in names {
        let rec = store.image(name)?;
        let whole_index = all_platforms && rec.index.is_some();
        let parts = if whole_index {
            content::all_platform_blobs(store, &rec)?
        } else {
            content::platform_blobs(store, &rec)?
                .into_iter()
                .filter(|b| b.role != content::Role::Index)
                .collect()
        };
        for b in &parts {
            if !store.has_blob(&b.digest) {
                return Err(Error::NotFound(format!(
                    "image {name}: {} {} is not in the store",
                    b.role.name(),
                    b.digest
                )));
            }
            blobs.insert(b.digest.to_string(), b.digest.clone());
        }
        let tag = name.rsplit_once(':').map(|(_, t)| t).filter(|t| !t.contains('/'));
        let mut annotations = BTreeMap::from([("io.containerd.image.name".to_string(), name.clone())]);
        if let Some(t) = tag {
            annotations.insert("org.opencontainers.image.ref.name".to_string(), t.to_string());
        }
        if let (true, Some(idx)) = (whole_index, &rec.index) {
            // The index entry carries no platform: it is every platform.
            let bytes = store.read_blob(idx)?;
            let media_type = serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|v| v.get("mediaType").and_then(|m| m.as_str()).map(str::to_string))
                .unwrap_or_else(|| crate::media::OCI_INDEX.to_string());
            entries.push(Descriptor {
                media_type,
                digest: idx.clone(),
                size: bytes.len() as u64,
                platform: None,
                annotations: Some(annotations),
            });
            continue;
        }
        let config = store.config(&rec.config)?;
        entries.push(Descriptor {
            media_type: rec.target.media_type.clone(),
            digest: rec.target.digest.clone(),
            size: rec.target.size,
            platform: Some(Platform {
                architecture: config.architecture.clone(),
                os: config.os.clone(),
                variant: config.variant.clone(),
                os_version: None,
            }),
            annotations: Some(annotations),
        });
    }
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": entries,
    });
    let index = serde_json::to_vec(&index).map_err(|e| Error::Invalid(format!("encode index.json: {e}")))?;

    let tmp = temp_beside(out);
    let result = write_archive(store, &tmp, &index, blobs.values());
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::rename(&tmp, out).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::io(format!("rename {} to {}", tmp.display(), out.display()), e)
    })?;
    Ok(blobs.len())
}

fn temp_beside(out: &Path) -> PathBuf {
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    out.with_file_name(format!(".{name}.{}.tmp", std::process::id()))
}

fn write_archive<'a>(store: &Store, tmp: &Path, index: &[u8], blobs: impl Iterator<Item = &'a Digest>) -> Result<()> {
    let file = File::create(tmp).map_err(|e| Error::io(format!("create {}", tmp.display()), e))?;
    let mut tar = tar::Builder::new(BufWriter::new(file));
    let ctx = |what: &str| format!("write {what} to {}", tmp.display());
    add_bytes(&mut tar, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)
        .map_err(|e| Error::io(ctx("oci-layout"), e))?;
    add_bytes(&mut tar, "index.json", index).map_err(|e| Error::io(ctx("index.json"), e))?;
    for dir in ["blobs/", "blobs/sha256/"] {
        let mut h = tar_header(tar::EntryType::Directory, 0o755, 0);
        tar.append_data(&mut h, dir, std::io::empty())
            .map_err(|e| Error::io(ctx(dir), e))?;
    }
    for d in blobs {
        let path = store.blob_path(d);
        let f = File::open(&path).map_err(|e| Error::io(format!("open {}", path.display()), e))?;
        let size = f
            .metadata()
            .map_err(|e| Error::io(format!("stat {}", path.display()), e))?
            .len();
        let mut h = tar_header(tar::EntryType::Regular, 0o644, size);
        tar.append_data(&mut h, format!("blobs/sha256/{}", d.hex()), f)
            .map_err(|e| Error::io(ctx(d.as_str()), e))?;
    }
    let mut w = tar
        .into_inner()
        .map_err(|e| Error::io(ctx("the end of the archive"), e))?;
    w.flush().map_err(|e| Error::io(ctx("the archive"), e))?;
    w.get_ref()
        .sync_all()
        .map_err(|e| Error::io(format!("sync {}", tmp.display()), e))
}

fn add_bytes(tar: &mut tar::Builder<BufWriter<File>>, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    let mut h = tar_header(tar::EntryType::Regular, 0o644, bytes.len() as u64);
    tar.append_data(&mut h, name, bytes)
}
