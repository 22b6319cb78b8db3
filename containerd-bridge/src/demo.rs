//! A small image writer, and the project's demo image made with it: one layer with the host's
//! busybox (Debian's busybox-static), its applets as symlinks, and /etc/passwd and /etc/group;
//! Cmd `sh -c 'echo hello from hezi'`. Entries carry fixed times and owners, so the same
//! busybox always gives the same digests.

use std::io::Write;
use std::path::Path;

use serde_json::json;

use crate::digest::{Digest, HashingWriter};
use crate::error::{Error, IoContext, Result};
use crate::manifest::{Descriptor, ImageConfig, Manifest, RootFs, RunConfig};
use crate::store::{now_secs, ImageRecord, Store};
use crate::{images, media, platform, reference};

pub const DEMO_NAME: &str = "hezi.local/demo:latest";
pub const BUSYBOX: &str = "/bin/busybox";

/// Applets linked when `busybox --list` cannot be asked.
const APPLETS: &[&str] = &[
    "sh", "ash", "cat", "echo", "ls", "id", "env", "sleep", "true", "false", "mkdir", "rm", "touch", "grep", "wc",
    "head", "tail", "ps", "hostname", "uname", "stat", "readlink", "test", "[", "mount", "pwd", "sed", "awk", "vi",
];

/// Store an image of `layers` (uncompressed tars, bottom first; stored gzip-compressed) with
/// run settings `run`, under `name`. Call without the store lock; it takes it.
pub fn write_image(store: &Store, name: &str, layers: &[Vec<u8>], run: RunConfig) -> Result<ImageRecord> {
    let name = reference::normalize(name)?;
    let _lock = store.lock()?;
    let mut descs = Vec::new();
    let mut diff_ids = Vec::new();
    for (i, tar) in layers.iter().enumerate() {
        diff_ids.push(Digest::of(tar));
        let mut gz = flate2::write::GzEncoder::new(HashingWriter::new(Vec::new()), flate2::Compression::default());
        gz.write_all(tar).ctx(|| format!("compress layer {}", i + 1))?;
        let hw = gz.finish().ctx(|| format!("compress layer {}", i + 1))?;
        let d = store.write_blob_bytes(&hw.inner, &format!("layer {}", i + 1))?;
        descs.push(Descriptor {
            media_type: media::OCI_LAYER_GZIP.into(),
            digest: d,
            size: hw.inner.len() as u64,
            platform: None,
            annotations: None,
        });
    }
    let host = platform::host();
    let cfg = ImageConfig {
        architecture: host.architecture,
        os: host.os,
        variant: host.variant,
        config: run,
        rootfs: RootFs {
            kind: "layers".into(),
            diff_ids,
        },
        extra: Default::default(),
    };
    let cfg_bytes = serde_json::to_vec(&cfg).map_err(|e| Error::Invalid(format!("encode config: {e}")))?;
    let cfg_digest = store.write_blob_bytes(&cfg_bytes, "image config")?;
    let m = Manifest {
        schema_version: 2,
        media_type: Some(media::OCI_MANIFEST.into()),
        config: Descriptor {
            media_type: media::OCI_CONFIG.into(),
            digest: cfg_digest.clone(),
            size: cfg_bytes.len() as u64,
            platform: None,
            annotations: None,
        },
        layers: descs,
        extra: Default::default(),
    };
    let m_bytes = serde_json::to_vec(&m).map_err(|e| Error::Invalid(format!("encode manifest: {e}")))?;
    let m_digest = store.write_blob_bytes(&m_bytes, "manifest")?;
    images::commit(
        store,
        ImageRecord {
            name,
            target: Descriptor {
                media_type: media::OCI_MANIFEST.into(),
                digest: m_digest,
                size: m_bytes.len() as u64,
                platform: None,
                annotations: None,
            },
            index: None,
            config: cfg_digest,
            created: now_secs(),
            labels: Default::default(),
        },
    )
}

/// A tar being built with fixed metadata (root-owned, mtime 0).
pub struct Layer(tar::Builder<Vec<u8>>);

impl Default for Layer {
    fn default() -> Self {
        Layer(tar::Builder::new(Vec::new()))
    }
}

/// A ustar header owned by root, with mtime 0, so archives made twice are the same bytes.
pub(crate) fn tar_header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h
}

impl Layer {
    pub fn dir(&mut self, path: &str, mode: u32) -> Result<()> {
        let mut h = tar_header(tar::EntryType::Directory, mode, 0);
        self.0
            .append_data(&mut h, path, &[][..])
            .ctx(|| format!("add {path} to layer"))
    }

    pub fn file(&mut self, path: &str, mode: u32, data: &[u8]) -> Result<()> {
        let mut h = tar_header(tar::EntryType::Regular, mode, data.len() as u64);
        self.0
            .append_data(&mut h, path, data)
            .ctx(|| format!("add {path} to layer"))
    }

    pub fn symlink(&mut self, path: &str, target: &str) -> Result<()> {
        let mut h = tar_header(tar::EntryType::Symlink, 0o777, 0);
        self.0
            .append_link(&mut h, path, target)
            .ctx(|| format!("add {path} to layer"))
    }

    pub fn finish(self) -> Result<Vec<u8>> {
        self.0.into_inner().ctx(|| "finish layer tar")
    }
}

fn applets(busybox: &Path) -> Vec<String> {
    let listed = std::process::Command::new(busybox)
        .arg("--list")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    let mut all: Vec<String> = APPLETS.iter().map(|s| s.to_string()).collect();
    all.extend(
        listed
            .into_iter()
            .filter(|a| !a.is_empty() && !a.contains('/') && a != "busybox"),
    );
    all.sort();
    all.dedup();
    all
}

/// `hezi image demo`: the demo image under `name` (default [`DEMO_NAME`]).
pub fn demo(store: &Store, name: Option<&str>) -> Result<ImageRecord> {
    let busybox = Path::new(BUSYBOX);
    let bin = std::fs::read(busybox).ctx(|| format!("read {BUSYBOX} (apt-get install busybox-static)"))?;
    let mut l = Layer::default();
    for (d, mode) in [
        ("bin", 0o755),
        ("dev", 0o755),
        ("etc", 0o755),
        ("proc", 0o555),
        ("root", 0o700),
        ("run", 0o755),
        ("sys", 0o555),
        ("tmp", 0o1777),
        ("var", 0o755),
    ] {
        l.dir(d, mode)?;
    }
    l.file("bin/busybox", 0o755, &bin)?;
    for a in applets(busybox) {
        l.symlink(&format!("bin/{a}"), "busybox")?;
    }
    l.file(
        "etc/passwd",
        0o644,
        b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
    )?;
    l.file("etc/group", 0o644, b"root:x:0:\nnogroup:x:65534:\n")?;
    let run = RunConfig {
        env: Some(vec![crate::spec::DEFAULT_PATH.into()]),
        cmd: Some(vec!["sh".into(), "-c".into(), "echo hello from hezi".into()]),
        working_dir: Some("/".into()),
        extra: [(
            "Labels".to_string(),
            json!({ "org.opencontainers.image.title": "hezi demo" }),
        )]
        .into_iter()
        .collect(),
        ..Default::default()
    };
    write_image(store, name.unwrap_or(DEMO_NAME), &[l.finish()?], run)
}
