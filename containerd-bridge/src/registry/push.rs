//! `image push`: an image of the store to a registry, as ctr pushes: every blob the registry
//! does not have yet (asked with HEAD) is uploaded (POST for an upload location, then one PUT
//! with the digest), then each manifest, then the index when the image has one and every
//! manifest it lists is in the store. Nothing in the store changes; the store lock is held so
//! no `image rm` collects a blob while it is being sent.

use std::fs::File;
use std::io::BufReader;

use super::client::{Body, Client};
use super::PushOptions;
use crate::content::{self, Blob, Role};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::reference::Reference;
use crate::store::Store;

/// What a push did.
pub struct Pushed {
    /// The remote reference, normalised.
    pub name: String,
    /// The digest the registry knows the image by now (its index, or its manifest).
    pub digest: Digest,
    pub uploaded: usize,
    /// Blobs the registry had already.
    pub skipped: usize,
    /// Why the index was left out, when it was (a manifest it lists is not in the store).
    pub note: Option<String>,
}

/// Push image `local` (a normalised name in the store's namespace) to `remote`.
pub fn push(store: &Store, local: &str, remote: &str, opts: &PushOptions) -> Result<Pushed> {
    let r = Reference::parse(remote)?;
    let _lock = store.lock()?;
    let rec = store.image(local)?;
    let c = Client::new(&r, opts.plain_http, opts.auth.clone(), "pull,push");
    // Every platform of the index when all are here; else the record's platform alone.
    let (blobs, note) = match content::all_platform_blobs(store, &rec) {
        Ok(b) => (b, None),
        Err(Error::NotFound(why)) if rec.index.is_some() => (
            content::platform_blobs(store, &rec)?,
            Some(format!("the index was not pushed, only the platform's manifest: {why}")),
        ),
        Err(e) => return Err(e),
    };
    let mut out = Pushed {
        name: r.to_string(),
        digest: rec.target.digest.clone(),
        uploaded: 0,
        skipped: 0,
        note,
    };
    for b in blobs.iter().filter(|b| matches!(b.role, Role::Config | Role::Layer)) {
        if upload_blob(store, &c, b)? {
            out.uploaded += 1;
        } else {
            out.skipped += 1;
        }
    }
    // Manifests by digest, except the top document, which goes under the tag.
    let top = if out.note.is_none() {
        rec.index.clone().unwrap_or_else(|| rec.target.digest.clone())
    } else {
        rec.target.digest.clone()
    };
    for b in blobs.iter().filter(|b| b.role == Role::Manifest && b.digest != top) {
        put_manifest(store, &c, &b.digest, b.digest.as_str())?;
    }
    if let Some(pinned) = &r.digest {
        if *pinned != top {
            return Err(Error::Invalid(format!(
                "{remote}: the image's digest is {top}, not {pinned}"
            )));
        }
    }
    put_manifest(store, &c, &top, &r.object())?;
    out.digest = top;
    Ok(out)
}

/// Send blob `b` unless the registry has it; returns whether it was sent.
fn upload_blob(store: &Store, c: &Client, b: &Blob) -> Result<bool> {
    let head = c.send("HEAD", &c.url(&format!("blobs/{}", b.digest)), &[], None, &[404])?;
    if head.status() == 200 {
        return Ok(false);
    }
    let path = store.blob_path(&b.digest);
    if !path.is_file() {
        return Err(Error::NotFound(format!(
            "{} {} is not in the content store",
            b.role.name(),
            b.digest
        )));
    }
    let start = c.send("POST", &c.url("blobs/uploads/"), &[], None, &[])?;
    let location = start.header("location").ok_or_else(|| Error::Registry {
        url: c.url("blobs/uploads/"),
        message: format!("{} without a Location for the upload", start.status()),
    })?;
    let mut url = c.absolute(location);
    url.push(if url.contains('?') { '&' } else { '?' });
    url.push_str(&format!("digest={}", b.digest.as_str().replace(':', "%3A")));
    let body = || -> Result<(Box<dyn std::io::Read + Send>, u64)> {
        let f = File::open(&path).map_err(|e| Error::io(format!("open {}", path.display()), e))?;
        let len = f
            .metadata()
            .map_err(|e| Error::io(format!("stat {}", path.display()), e))?
            .len();
        Ok((
            Box::new(crate::cancel::Reader(BufReader::with_capacity(256 * 1024, f))),
            len,
        ))
    };
    let body: Body = &body;
    c.send(
        "PUT",
        &url,
        &[("Content-Type", "application/octet-stream")],
        Some(body),
        &[],
    )?;
    Ok(true)
}

/// PUT manifest (or index) `d` from the store as `object` (a tag or its digest), with the media
/// type the document declares.
fn put_manifest(store: &Store, c: &Client, d: &Digest, object: &str) -> Result<()> {
    let bytes = store.read_blob(d)?;
    let v: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| Error::Invalid(format!("manifest {d}: invalid JSON: {e}")))?;
    let media_type = match v.get("mediaType").and_then(|m| m.as_str()) {
        Some(mt) => mt.to_string(),
        None if v.get("manifests").is_some() => crate::media::OCI_INDEX.to_string(),
        None => crate::media::OCI_MANIFEST.to_string(),
    };
    let body = || -> Result<(Box<dyn std::io::Read + Send>, u64)> {
        Ok((Box::new(std::io::Cursor::new(bytes.clone())), bytes.len() as u64))
    };
    let body: Body = &body;
    c.send(
        "PUT",
        &c.url(&format!("manifests/{object}")),
        &[("Content-Type", &media_type)],
        Some(body),
        &[],
    )?;
    Ok(())
}
