//! Image-level operations over the store and the snapshotter: unpack an image's layers into
//! committed snapshots (checking each layer's diff id against the config), list, and remove
//! with garbage collection of blobs and snapshots nothing references any more.

use std::collections::BTreeSet;

use crate::error::{Error, Result};
use crate::media;
use crate::snapshot::{chain_ids, Snapshotter};
use crate::store::{ImageRecord, Store};
use crate::unpack::{self, Whiteouts};

/// Make sure every layer of `img` is a committed snapshot for the current driver; returns the
/// top one (None for an image without layers). Call with the store lock held.
pub fn unpack(store: &Store, snap: &Snapshotter, img: &ImageRecord) -> Result<Option<u64>> {
    let manifest = store.manifest(&img.target.digest)?;
    let config = store.config(&img.config)?;
    let diff_ids = &config.rootfs.diff_ids;
    if diff_ids.len() != manifest.layers.len() {
        return Err(Error::Invalid(format!(
            "image {}: the manifest has {} layers but the config lists {} diff ids",
            img.name,
            manifest.layers.len(),
            diff_ids.len()
        )));
    }
    let mut parent = None;
    for (i, (layer, chain)) in manifest.layers.iter().zip(chain_ids(diff_ids)).enumerate() {
        if let Some(s) = snap.find(false, chain.as_str())? {
            parent = Some(s.id);
            continue;
        }
        let whiteouts = match snap.driver {
            crate::snapshot::Driver::Overlay => Whiteouts::Overlay,
            crate::snapshot::Driver::Native => Whiteouts::Delete,
        };
        let what = format!("layer {} ({})", i + 1, layer.digest);
        let id = snap.commit_with(&chain, parent, |dir| {
            let mut blob = store.open_blob(&layer.digest)?;
            let mut head = [0u8; 4];
            let n = read_head(&mut blob, &mut head)?;
            let compression = media::layer_compression(&layer.media_type, &head[..n])
                .map_err(|e| Error::Unsupported(format!("{what}: {e}")))?;
            let mut chained = std::io::Read::chain(&head[..n], &mut blob);
            let diff_id = unpack::apply_compressed(&mut chained, compression, dir, whiteouts, parent.is_some())
                .map_err(|e| prefix(&what, e))?;
            std::io::copy(&mut blob, &mut std::io::sink()).map_err(|e| Error::io(format!("read {what}"), e))?;
            blob.verify()?;
            if diff_id != diff_ids[i] {
                return Err(Error::DigestMismatch {
                    what: format!("{what}: uncompressed content (diff id)"),
                    expected: diff_ids[i].to_string(),
                    actual: diff_id.to_string(),
                });
            }
            Ok(())
        })?;
        parent = Some(id);
    }
    Ok(parent)
}

fn read_head(r: &mut dyn std::io::Read, buf: &mut [u8]) -> Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::io("read layer", e)),
        }
    }
    Ok(n)
}

/// Put the layer's name in front of an unpack error.
fn prefix(what: &str, e: Error) -> Error {
    match e {
        Error::Invalid(m) => Error::Invalid(format!("{what}: {m}")),
        Error::Unsupported(m) => Error::Unsupported(format!("{what}: {m}")),
        Error::Io { context, source } => Error::Io {
            context: format!("{what}: {context}"),
            source,
        },
        Error::PathEscape { entry, why } => Error::PathEscape {
            entry,
            why: format!("{why} (in {what})"),
        },
        other => other,
    }
}

/// Chain ids of every image's layers, in every namespace (snapshots are shared).
pub fn used_chain_ids(store: &Store) -> Result<BTreeSet<String>> {
    let mut out = BTreeSet::new();
    for img in store.all_images()? {
        if let Ok(cfg) = store.config(&img.config) {
            out.extend(chain_ids(&cfg.rootfs.diff_ids).into_iter().map(|d| d.to_string()));
        }
    }
    Ok(out)
}

/// Remove every blob and snapshot no image (or container) uses. Call with the lock held.
pub fn gc(store: &Store) -> Result<()> {
    store.gc_blobs()?;
    Snapshotter::new(store)?.gc(&used_chain_ids(store)?)?;
    Ok(())
}

/// `image rm`: drop the record, then everything only it used.
pub fn remove(store: &Store, name: &str) -> Result<ImageRecord> {
    let _lock = store.lock()?;
    let rec = store.remove_image(name)?;
    gc(store)?;
    Ok(rec)
}

/// Record `rec` and unpack it (so a broken layer is reported now, not at run time). On an
/// unpack error the record is removed again and whatever it brought is collected.
pub fn commit(store: &Store, rec: ImageRecord) -> Result<ImageRecord> {
    let previous = store.images()?.into_iter().find(|i| i.name == rec.name);
    store.put_image(rec.clone())?;
    let snap = Snapshotter::new(store)?;
    if let Err(e) = unpack(store, &snap, &rec) {
        match previous {
            Some(p) => store.put_image(p)?,
            None => {
                store.remove_image(&rec.name)?;
            }
        }
        gc(store)?;
        return Err(e);
    }
    gc(store)?;
    Ok(rec)
}

/// `image tag`: `dst` names `src`'s image too. An existing `dst` is refused unless `force`,
/// and then replaced (what only it used is collected).
pub fn tag(store: &Store, src: &str, dst: &str, force: bool) -> Result<ImageRecord> {
    let _lock = store.lock()?;
    let rec = store.image(src)?;
    let existing = store.images()?.into_iter().find(|i| i.name == dst);
    if let Some(e) = &existing {
        if !force {
            return Err(Error::Invalid(format!(
                "image {dst} already exists (manifest {}); --force replaces it",
                e.target.digest
            )));
        }
    }
    let new = ImageRecord {
        name: dst.to_string(),
        created: crate::store::now_secs(),
        ..rec
    };
    store.put_image(new.clone())?;
    if existing.is_some() {
        gc(store)?;
    }
    Ok(new)
}

/// `image inspect`: the record, with its manifest and config as the registry wrote them.
pub fn inspect(store: &Store, name: &str) -> Result<serde_json::Value> {
    let rec = store.image(name)?;
    let json = |d: &crate::digest::Digest, what: &str| -> Result<serde_json::Value> {
        let bytes = store.read_blob(d)?;
        serde_json::from_slice(&bytes).map_err(|e| Error::Invalid(format!("{what} {d} of {name}: {e}")))
    };
    let manifest = json(&rec.target.digest, "manifest")?;
    let config = json(&rec.config, "config")?;
    let layers = manifest
        .get("layers")
        .cloned()
        .unwrap_or(serde_json::Value::Array(Vec::new()));
    Ok(serde_json::json!({
        "name": rec.name,
        "digest": rec.index.as_ref().unwrap_or(&rec.target.digest),
        "target": rec.target,
        "created": rec.created,
        "namespace": store.namespace(),
        "labels": rec.labels,
        "manifest": manifest,
        "config": config,
        "layers": layers,
    }))
}
