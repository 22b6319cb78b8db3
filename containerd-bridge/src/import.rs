//! `image import`: OCI image-layout archives (a tar of `oci-layout`, `index.json`, `blobs/`, as
//! `ctr images export`, skopeo's `oci-archive:` and umoci make) and docker-archives (`docker
//! save`: `manifest.json`, layer tars, config JSON), converted to OCI manifests in the store.
//!
//! The archive is read once: every blob goes straight into the content store (verified against
//! its file name where it has one), the small metadata files are kept in memory, and the images
//! are put together afterwards. Blobs no image ends up using are collected at the end.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

use crate::digest::Digest;
use crate::error::{Error, IoContext, Result};
use crate::manifest::{self, Descriptor, Index, Kind, Manifest, Platform};
use crate::media::{self, Compression};
use crate::store::{now_secs, ImageRecord, Store};
use crate::{images, platform, reference};

pub struct Options {
    /// Name for the imported image (else the archive's own names).
    pub name: Option<String>,
    pub platform: Platform,
}

/// What reading the archive gave: small files by name, and every other file as a stored blob.
#[derive(Default)]
struct Contents {
    meta: HashMap<String, Vec<u8>>,
    blobs: HashMap<String, Digest>,
}

impl Contents {
    fn blob(&self, name: &str) -> Option<&Digest> {
        self.blobs.get(name.trim_start_matches("./"))
    }
}

const META_FILES: &[&str] = &["index.json", "oci-layout", "manifest.json", "repositories"];

/// Import the archive at `path`; returns the images recorded.
pub fn import(store: &Store, path: &Path, opts: &Options) -> Result<Vec<ImageRecord>> {
    let shown = path.display().to_string();
    let f = File::open(path).ctx(|| format!("open {shown}"))?;
    let _lock = store.lock()?;
    let contents = read_archive(store, BufReader::with_capacity(256 * 1024, f), &shown);
    let result = contents.and_then(|c| {
        let recs = if c.meta.contains_key("index.json") {
            from_oci_layout(store, &c, opts, &shown)?
        } else if c.meta.contains_key("manifest.json") {
            from_docker_archive(store, &c, opts, &shown)?
        } else {
            return Err(Error::Invalid(format!(
                "{shown}: neither an OCI image layout (no index.json) nor a docker-archive (no manifest.json)"
            )));
        };
        let mut out = Vec::new();
        for r in recs {
            out.push(images::commit(store, r)?);
        }
        Ok(out)
    });
    if result.is_err() {
        // Blobs this import stored but no image uses.
        let _ = images::gc(store);
    }
    result
}

fn read_archive(store: &Store, r: impl Read, shown: &str) -> Result<Contents> {
    let mut r = BufReader::new(r);
    let head = io::BufRead::fill_buf(&mut r).ctx(|| format!("read {shown}"))?.to_vec();
    let r: Box<dyn Read> = match Compression::sniff(&head) {
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(r)),
        Compression::Zstd => Box::new(
            ruzstd::decoding::StreamingDecoder::new(r)
                .map_err(|e| Error::Invalid(format!("{shown}: bad zstd: {e}")))?,
        ),
        Compression::None => Box::new(r),
    };
    let corrupt = |e: io::Error| Error::Invalid(format!("{shown}: corrupt archive: {e}"));
    let mut archive = tar::Archive::new(r);
    let mut c = Contents::default();
    let mut aliases: Vec<(String, String)> = Vec::new();
    for entry in archive.entries().map_err(corrupt)? {
        let mut entry = entry.map_err(corrupt)?;
        let name = String::from_utf8_lossy(&entry.path_bytes())
            .trim_start_matches("./")
            .to_string();
        match entry.header().entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous => {}
            tar::EntryType::Symlink | tar::EntryType::Link => {
                // docker save links repeated layers to the first copy.
                if let Some(target) = entry.link_name_bytes() {
                    let target = String::from_utf8_lossy(&target).into_owned();
                    let resolved = if entry.header().entry_type() == tar::EntryType::Symlink {
                        let dir = Path::new(&name).parent().unwrap_or(Path::new(""));
                        normalize(&dir.join(&target).to_string_lossy())
                    } else {
                        normalize(&target)
                    };
                    aliases.push((name, resolved));
                }
                continue;
            }
            _ => continue,
        }
        if META_FILES.contains(&name.as_str()) {
            let mut b = Vec::new();
            entry.by_ref().take(64 << 20).read_to_end(&mut b).map_err(corrupt)?;
            c.meta.insert(name, b);
        } else if let Some(rest) = name.strip_prefix("blobs/") {
            let expected = Digest::parse(&rest.replacen('/', ":", 1))
                .map_err(|e| Error::Invalid(format!("{shown}: blob file {name}: {e}")))?;
            let what = format!("{shown}: {name}");
            if !store.has_blob(&expected) {
                store.write_blob(&mut entry, Some(&expected), &what)?;
            }
            c.blobs.insert(name, expected);
        } else if name.ends_with(".tar") || name.ends_with(".json") || name.ends_with("layer.tar.gz") {
            let what = format!("{shown}: {name}");
            let (d, _) = store.write_blob(&mut entry, None, &what)?;
            c.blobs.insert(name, d);
        }
    }
    for (alias, target) in aliases {
        if let Some(d) = c.blobs.get(&target).cloned() {
            c.blobs.insert(alias, d);
        }
    }
    Ok(c)
}

/// Collapse `a/./b/../c` to `a/c` (archive-internal names only, never used as host paths).
fn normalize(p: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out.join("/")
}

fn from_oci_layout(store: &Store, c: &Contents, opts: &Options, shown: &str) -> Result<Vec<ImageRecord>> {
    let index: Index = manifest::parse(&format!("{shown}: index.json"), &c.meta["index.json"])?;
    if index.manifests.is_empty() {
        return Err(Error::Invalid(format!("{shown}: index.json lists no images")));
    }
    // A top-level index whose entries are one image's platforms (no names) is one image.
    let named = |d: &Descriptor| ref_name(d).is_some();
    let entries: Vec<&Descriptor> = if index.manifests.iter().all(|d| d.platform.is_some() && !named(d)) {
        vec![platform::select(&index.manifests, &opts.platform)?]
    } else {
        index
            .manifests
            .iter()
            .filter(|d| d.platform.as_ref().is_none_or(|p| platform::matches(&opts.platform, p)))
            .collect()
    };
    if opts.name.is_some() && entries.len() > 1 {
        return Err(Error::Invalid(format!(
            "{shown}: --name given but the archive holds {} images",
            entries.len()
        )));
    }
    let mut out = Vec::new();
    for d in entries {
        let name = match (&opts.name, ref_name(d)) {
            (Some(n), _) => reference::normalize(n)?,
            (None, Some(n)) => reference::normalize(&n).map_err(|_| {
                Error::Invalid(format!(
                    "{shown}: image name {n:?} is not a full reference: pass --name"
                ))
            })?,
            (None, None) => return Err(Error::Invalid(format!("{shown}: the image has no name: pass --name"))),
        };
        out.push(resolve(store, d, name, &opts.platform, shown)?);
    }
    Ok(out)
}

/// The name an index entry carries: containerd's full name, else the OCI ref name when it is
/// a name (umoci and others write only a tag there, such as `latest`, which names nothing).
fn ref_name(d: &Descriptor) -> Option<String> {
    let a = d.annotations.as_ref()?;
    a.get("io.containerd.image.name")
        .or_else(|| a.get("org.opencontainers.image.ref.name").filter(|n| n.contains('/')))
        .cloned()
}

/// From a descriptor (index or manifest) to a record for `name`, checking that the manifest,
/// config and every layer are in the store.
pub fn resolve(store: &Store, d: &Descriptor, name: String, want: &Platform, shown: &str) -> Result<ImageRecord> {
    let bytes = store
        .read_blob(&d.digest)
        .map_err(|e| Error::Invalid(format!("{shown}: manifest {}: {e}", d.digest)))?;
    let mt = (!d.media_type.is_empty()).then_some(d.media_type.as_str());
    let (target, index) = match manifest::kind_of(mt, &bytes)? {
        Kind::Index => {
            let idx: Index = manifest::parse(&format!("index {}", d.digest), &bytes)?;
            let m = platform::select(&idx.manifests, want)?.clone();
            (m, Some(d.digest.clone()))
        }
        Kind::Manifest => (d.clone(), None),
    };
    let m: Manifest = manifest::parse(
        &format!("manifest {}", target.digest),
        &store.read_blob(&target.digest)?,
    )?;
    for (i, l) in m.layers.iter().enumerate() {
        Compression::from_media_type(&l.media_type)
            .map_err(|e| Error::Unsupported(format!("{name}: layer {}: {e}", i + 1)))?;
        if !store.has_blob(&l.digest) {
            return Err(Error::NotFound(format!(
                "{shown}: layer {} ({}) is missing",
                i + 1,
                l.digest
            )));
        }
    }
    let cfg = store
        .config(&m.config.digest)
        .map_err(|e| Error::Invalid(format!("{shown}: config: {e}")))?;
    check_platform(&cfg, want, &name)?;
    let mut target = target;
    if target.media_type.is_empty() {
        target.media_type = m.media_type.clone().unwrap_or_else(|| media::OCI_MANIFEST.into());
    }
    target.platform = None;
    target.annotations = None;
    Ok(ImageRecord {
        name,
        target,
        index,
        config: m.config.digest.clone(),
        created: now_secs(),
        labels: Default::default(),
    })
}

fn check_platform(cfg: &manifest::ImageConfig, want: &Platform, name: &str) -> Result<()> {
    if cfg.architecture.is_empty() {
        return Ok(());
    }
    let have = Platform {
        os: if cfg.os.is_empty() {
            "linux".into()
        } else {
            cfg.os.clone()
        },
        architecture: cfg.architecture.clone(),
        variant: cfg.variant.clone(),
        os_version: None,
    };
    if platform::matches(want, &have) {
        Ok(())
    } else {
        Err(Error::Unsupported(format!(
            "{name} is for {}, not {} (pass --platform to choose)",
            platform::format(&have),
            platform::format(want)
        )))
    }
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

fn from_docker_archive(store: &Store, c: &Contents, opts: &Options, shown: &str) -> Result<Vec<ImageRecord>> {
    let list: Vec<DockerEntry> = manifest::parse(&format!("{shown}: manifest.json"), &c.meta["manifest.json"])?;
    let mut out = Vec::new();
    for e in &list {
        let missing = |what: &str, f: &str| Error::NotFound(format!("{shown}: {what} {f} is not in the archive"));
        let config = c.blob(&e.config).ok_or_else(|| missing("config", &e.config))?.clone();
        let cfg_bytes = store.read_blob(&config)?;
        let cfg: manifest::ImageConfig = manifest::parse(&format!("{shown}: {}", e.config), &cfg_bytes)?;
        let mut layers = Vec::new();
        for l in &e.layers {
            let d = c.blob(l).ok_or_else(|| missing("layer", l))?.clone();
            let mut head = [0u8; 4];
            let mut f = File::open(store.blob_path(&d)).ctx(|| format!("open {}", store.blob_path(&d).display()))?;
            let n = f
                .read(&mut head)
                .ctx(|| format!("read {}", store.blob_path(&d).display()))?;
            let size = f
                .metadata()
                .ctx(|| format!("stat {}", store.blob_path(&d).display()))?
                .len();
            layers.push(Descriptor {
                media_type: Compression::sniff(&head[..n]).oci_layer_type().into(),
                digest: d,
                size,
                platform: None,
                annotations: None,
            });
        }
        let m = Manifest {
            schema_version: 2,
            media_type: Some(media::OCI_MANIFEST.into()),
            config: Descriptor {
                media_type: media::OCI_CONFIG.into(),
                digest: config.clone(),
                size: cfg_bytes.len() as u64,
                platform: None,
                annotations: None,
            },
            layers,
            extra: Default::default(),
        };
        let bytes = serde_json::to_vec(&m).map_err(|e| Error::Invalid(format!("encode manifest: {e}")))?;
        let md = store.write_blob_bytes(&bytes, "converted manifest")?;
        let names: Vec<String> = match (&opts.name, &e.repo_tags) {
            (Some(n), _) => vec![n.clone()],
            (None, Some(tags)) if !tags.is_empty() => tags.clone(),
            _ => {
                return Err(Error::Invalid(format!(
                    "{shown}: the image has no RepoTags: pass --name"
                )))
            }
        };
        for n in names {
            let name = reference::normalize(&n)?;
            check_platform(&cfg, &opts.platform, &name)?;
            out.push(ImageRecord {
                name,
                target: Descriptor {
                    media_type: media::OCI_MANIFEST.into(),
                    digest: md.clone(),
                    size: bytes.len() as u64,
                    platform: None,
                    annotations: None,
                },
                index: None,
                config: config.clone(),
                created: now_secs(),
                labels: Default::default(),
            });
        }
    }
    if opts.name.is_some() && out.len() > 1 {
        return Err(Error::Invalid(format!(
            "{shown}: --name given but the archive holds {} images",
            out.len()
        )));
    }
    Ok(out)
}
