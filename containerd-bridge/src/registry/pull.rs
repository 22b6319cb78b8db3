//! `image pull`: the image's manifest (from its index, by platform), config and layers into the
//! store, layers in parallel with a progress display on a terminal; with --all-platforms every
//! manifest of the index and its blobs too. The record names the platform's manifest and the
//! index, and is unpacked at once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use super::client::Client;
use super::{progress, PullOptions};
use crate::error::{Error, Result};
use crate::manifest::{self, Descriptor, Index, Kind, Manifest, Platform};
use crate::reference::Reference;
use crate::store::{now_secs, ImageRecord, Store};
use crate::{images, media, platform};

/// At most this many layers download at once.
const PARALLEL: usize = 4;

/// Pull `name` into the store and unpack it; returns its record.
pub fn pull(store: &Store, name: &str, opts: &PullOptions) -> Result<ImageRecord> {
    let r = Reference::parse(name)?;
    let c = Client::new(&r, opts.plain_http, opts.auth.clone(), "pull");
    let _lock = store.lock()?;
    let board = progress::Board::new(&r.to_string());
    let stop = AtomicBool::new(false);
    let drawn = progress::first(&board);
    let result = std::thread::scope(|s| {
        let drawer = s.spawn(|| progress::render(&board, &stop, drawn));
        let result = pull_locked(store, &c, &r, opts, &board);
        stop.store(true, Ordering::Relaxed);
        let _ = drawer.join();
        result
    });
    if result.is_err() {
        let _ = images::gc(store);
    }
    result
}

/// A manifest fetched by digest from an index entry: its descriptor (with the media type the
/// registry answered) and document.
fn fetch_manifest(c: &Client, d: &Descriptor) -> Result<(Descriptor, Vec<u8>)> {
    let (mt, bytes, digest) = c.manifest(d.digest.as_str())?;
    let desc = Descriptor {
        media_type: if mt.is_empty() { d.media_type.clone() } else { mt },
        digest,
        size: bytes.len() as u64,
        platform: None,
        annotations: None,
    };
    Ok((desc, bytes))
}

fn pull_locked(
    store: &Store,
    c: &Client,
    r: &Reference,
    opts: &PullOptions,
    board: &progress::Board,
) -> Result<ImageRecord> {
    let (mt, bytes, digest) = c.manifest(&r.object())?;
    // The platform's manifest, and (with --all-platforms) every other manifest of the index.
    let mut others: Vec<(Descriptor, Vec<u8>)> = Vec::new();
    let (index, target, mbytes) =
        match manifest::kind_of(Some(&mt).filter(|m| !m.is_empty()).map(|s| s.as_str()), &bytes)? {
            Kind::Index => {
                let idx: Index = manifest::parse(&format!("index of {r}"), &bytes)?;
                let d = platform::select(&idx.manifests, &opts.platform)?.clone();
                let (desc, mbytes) = fetch_manifest(c, &d)?;
                if opts.all_platforms {
                    for o in idx.manifests.iter().filter(|o| o.digest != d.digest) {
                        others.push(fetch_manifest(c, o)?);
                    }
                }
                (Some((digest, bytes)), desc, mbytes)
            }
            Kind::Manifest => {
                let desc = Descriptor {
                    media_type: mt,
                    digest,
                    size: bytes.len() as u64,
                    platform: None,
                    annotations: None,
                };
                (None, desc, bytes)
            }
        };
    let m: Manifest = manifest::parse(&format!("manifest of {r}"), &mbytes)?;
    for (i, l) in m.layers.iter().enumerate() {
        media::Compression::from_media_type(&l.media_type)
            .map_err(|e| Error::Unsupported(format!("{r}: layer {}: {e}", i + 1)))?;
    }
    // Every blob to fetch: the platform's config and layers, then the other platforms'.
    let mut blobs: Vec<(Descriptor, String)> = vec![(m.config.clone(), format!("config of {r}"))];
    for (i, l) in m.layers.iter().enumerate() {
        blobs.push((l.clone(), format!("{r}: layer {} ({})", i + 1, l.digest)));
    }
    for (d, bytes) in &others {
        let om: Manifest = manifest::parse(&format!("manifest {} of {r}", d.digest), bytes)
            .map_err(|e| Error::Unsupported(format!("{r}: --all-platforms: manifest {}: {e}", d.digest)))?;
        let of = format!("of manifest {}", d.digest);
        blobs.push((om.config.clone(), format!("{r}: config {of}")));
        for (i, l) in om.layers.iter().enumerate() {
            blobs.push((l.clone(), format!("{r}: layer {} ({}) {of}", i + 1, l.digest)));
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    blobs.retain(|(b, _)| seen.insert(b.digest.clone()));
    download(store, c, &blobs, board)?;
    for (d, bytes) in &others {
        store.write_blob_bytes(bytes, &format!("manifest {}", d.digest))?;
    }
    store.write_blob_bytes(&mbytes, "manifest")?;
    let index = match index {
        Some((digest, bytes)) => {
            store.write_blob_bytes(&bytes, "index")?;
            Some(digest)
        }
        None => None,
    };
    let rec = ImageRecord {
        name: r.to_string(),
        target,
        index,
        config: m.config.digest.clone(),
        created: now_secs(),
        labels: Default::default(),
    };
    // Platform check on the config too (a single-platform manifest may be for another arch).
    let cfg = store.config(&m.config.digest)?;
    if !cfg.architecture.is_empty() {
        let have = Platform {
            os: cfg.os.clone(),
            architecture: cfg.architecture.clone(),
            variant: cfg.variant.clone(),
            os_version: None,
        };
        if !platform::matches(&opts.platform, &have) {
            return Err(Error::Unsupported(format!(
                "{r} is for {}, not {}",
                platform::format(&have),
                platform::format(&opts.platform)
            )));
        }
    }
    images::commit(store, rec)
}

/// ctr's name for a blob on the progress board: `config-sha256:0123456789ab`, `layer-...`.
fn label(d: &Descriptor) -> String {
    let kind = if d.media_type.contains("config") {
        "config"
    } else {
        "layer"
    };
    let digest = d.digest.as_str();
    format!("{kind}-{}", &digest[..digest.len().min(19)])
}

/// Download `blobs` (those the store lacks), up to [`PARALLEL`] at once, each on `board`. The
/// first failure stops new downloads and is returned.
fn download(store: &Store, c: &Client, blobs: &[(Descriptor, String)], board: &progress::Board) -> Result<()> {
    let bars = board.resolved(
        blobs
            .iter()
            .map(|(l, _)| {
                let state = if store.has_blob(&l.digest) {
                    progress::EXISTS
                } else {
                    progress::WAITING
                };
                progress::Layer::new(label(l), l.size, state)
            })
            .collect(),
    );
    let queue = Mutex::new((0..blobs.len()).rev().collect::<Vec<usize>>());
    let errors: Mutex<Vec<Error>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..PARALLEL.min(blobs.len()))
            .map(|_| {
                s.spawn(|| loop {
                    let next = queue.lock().ok().and_then(|mut q| q.pop());
                    let Some(i) = next else { break };
                    let ((l, what), bar) = (&blobs[i], &bars[i]);
                    if bar.state.load(Ordering::Relaxed) == progress::EXISTS {
                        continue;
                    }
                    board.set(bar, progress::RUNNING);
                    match c.blob(store, &l.digest, what, &bar.done) {
                        Ok(()) => board.set(bar, progress::DONE),
                        Err(e) => {
                            board.set(bar, progress::FAILED);
                            if let Ok(mut errs) = errors.lock() {
                                errs.push(e);
                            }
                            if let Ok(mut q) = queue.lock() {
                                q.clear(); // stop starting new downloads
                            }
                        }
                    }
                })
            })
            .collect();
        for w in workers {
            let _ = w.join();
        }
    });
    match errors
        .into_inner()
        .ok()
        .and_then(|mut e| (!e.is_empty()).then(|| e.remove(0)))
    {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
