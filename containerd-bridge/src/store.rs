//! The content store: blobs under `<root>/blobs/sha256/<hex>` (containerd's layout), written
//! through sha256 to a temp file in `<root>/tmp` and renamed into place only when the digest is
//! right; image records (name → manifest, config) in `<root>/images.json` for containerd's
//! `default` namespace (where every store made before namespaces has them) and in
//! `<root>/namespaces/<ns>/images.json` for any other. Blobs and snapshots are shared by every
//! namespace. Mutations happen under an exclusive flock on `<root>/lock`, so concurrent
//! `hezi image` commands do not interleave.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::{Deserialize, Serialize};

use crate::digest::{Digest, HashingReader, HashingWriter};
use crate::error::{Error, IoContext, Result};
use crate::manifest::{self, Descriptor, ImageConfig, Manifest};
use crate::{content, namespace};

/// One image in the store.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ImageRecord {
    /// Normalised name (`docker.io/library/busybox:latest`).
    pub name: String,
    /// The platform manifest this name resolves to.
    pub target: Descriptor,
    /// The index the manifest was selected from, kept so `image ls` can show the digest a
    /// registry knows the image by.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<Digest>,
    pub config: Digest,
    /// Seconds since the epoch when the record was written.
    pub created: u64,
    /// The image's labels (`image label`), as containerd keeps them on its image records.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

pub struct Store {
    root: PathBuf,
    /// The namespace whose image records this handle reads and writes.
    namespace: String,
}

/// Holds the store's exclusive lock until dropped.
pub struct Lock(#[allow(dead_code)] File);

/// A temp file in the store that is removed unless persisted (so an error anywhere leaves no
/// half-written blob behind).
pub struct TempFile {
    path: PathBuf,
    keep: bool,
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.keep {
            let _ = fs::remove_file(&self.path);
        }
    }
}

static TEMP_COUNTER: AtomicUsize = AtomicUsize::new(0);

impl Store {
    /// Open (creating) the store at `root`.
    pub fn open(root: &Path) -> Result<Store> {
        for d in ["blobs/sha256", "tmp", "snapshots"] {
            let p = root.join(d);
            fs::create_dir_all(&p).ctx(|| format!("create {}", p.display()))?;
        }
        Ok(Store {
            root: root.to_path_buf(),
            namespace: namespace::DEFAULT.to_string(),
        })
    }

    /// The same store, seeing the image records of namespace `ns` (checked).
    pub fn in_namespace(mut self, ns: &str) -> Result<Store> {
        namespace::validate(ns)?;
        self.namespace = ns.to_string();
        Ok(self)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// Take the store's exclusive lock (blocking until other hezi processes release it).
    pub fn lock(&self) -> Result<Lock> {
        let p = self.root.join("lock");
        let f = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&p)
            .ctx(|| format!("open {}", p.display()))?;
        loop {
            // SAFETY: flock on a descriptor we own; no memory is passed.
            if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } == 0 {
                return Ok(Lock(f));
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(Error::io(format!("lock {}", p.display()), e));
            }
        }
    }

    /// A fresh path in the store's temp dir (same filesystem as the blobs, so rename is atomic).
    pub fn temp_path(&self, what: &str) -> PathBuf {
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        self.root
            .join("tmp")
            .join(format!("{what}-{}-{n}-{nanos}", std::process::id()))
    }

    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(d.hex())
    }

    pub fn has_blob(&self, d: &Digest) -> bool {
        self.blob_path(d).is_file()
    }

    /// Stream `r` into the store. With `expected`, the content must hash to it (else nothing is
    /// stored and the error names `what`); without, it is stored under whatever it hashes to.
    pub fn write_blob(&self, r: &mut dyn Read, expected: Option<&Digest>, what: &str) -> Result<(Digest, u64)> {
        let mut tmp = TempFile {
            path: self.temp_path("blob"),
            keep: false,
        };
        let f = File::create(&tmp.path).ctx(|| format!("create {}", tmp.path.display()))?;
        let mut w = HashingWriter::new(io::BufWriter::with_capacity(256 * 1024, f));
        // Cancellable: an interrupted pull or import stops here, and the temp file goes on drop.
        io::copy(&mut crate::cancel::Reader(r), &mut w).ctx(|| format!("write {what} to the content store"))?;
        let digest = w.digest();
        let size = w.count;
        let f = w
            .inner
            .into_inner()
            .map_err(|e| Error::io(format!("write {what} to the content store"), e.into_error()))?;
        f.sync_all().ctx(|| format!("sync {what}"))?;
        if let Some(want) = expected {
            if *want != digest {
                return Err(Error::DigestMismatch {
                    what: what.to_string(),
                    expected: want.to_string(),
                    actual: digest.to_string(),
                });
            }
        }
        let dest = self.blob_path(&digest);
        fs::rename(&tmp.path, &dest).ctx(|| format!("store {what} as {}", dest.display()))?;
        tmp.keep = true;
        Ok((digest, size))
    }

    pub fn write_blob_bytes(&self, bytes: &[u8], what: &str) -> Result<Digest> {
        let d = Digest::of(bytes);
        if !self.has_blob(&d) {
            self.write_blob(&mut &bytes[..], Some(&d), what)?;
        }
        Ok(d)
    }

    /// Read a whole (small) blob, verifying its digest.
    pub fn read_blob(&self, d: &Digest) -> Result<Vec<u8>> {
        let p = self.blob_path(d);
        let bytes = fs::read(&p).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => Error::NotFound(format!("blob {d} is not in the content store")),
            _ => Error::io(format!("read blob {}", p.display()), e),
        })?;
        let actual = Digest::of(&bytes);
        if actual != *d {
            return Err(Error::DigestMismatch {
                what: format!("blob {}", p.display()),
                expected: d.to_string(),
                actual: actual.to_string(),
            });
        }
        Ok(bytes)
    }

    /// Open a blob for streaming; the caller checks the digest with [`BlobReader::verify`] once
    /// it has read everything.
    pub fn open_blob(&self, d: &Digest) -> Result<BlobReader> {
        let p = self.blob_path(d);
        let f = File::open(&p).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => Error::NotFound(format!("blob {d} is not in the content store")),
            _ => Error::io(format!("open blob {}", p.display()), e),
        })?;
        Ok(BlobReader {
            inner: HashingReader::new(io::BufReader::with_capacity(256 * 1024, f)),
            digest: d.clone(),
        })
    }

    pub fn manifest(&self, d: &Digest) -> Result<Manifest> {
        manifest::parse(&format!("manifest {d}"), &self.read_blob(d)?)
    }

    pub fn config(&self, d: &Digest) -> Result<ImageConfig> {
        manifest::parse(&format!("image config {d}"), &self.read_blob(d)?)
    }

    fn images_path_of(&self, ns: &str) -> PathBuf {
        if ns == namespace::DEFAULT {
            self.root.join("images.json")
        } else {
            self.root.join("namespaces").join(ns).join("images.json")
        }
    }

    fn read_images(&self, p: &Path) -> Result<Vec<ImageRecord>> {
        match fs::read(p) {
            Ok(b) => manifest::parse(&p.display().to_string(), &b),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(Error::io(format!("read {}", p.display()), e)),
        }
    }

    /// The image records of this handle's namespace.
    pub fn images(&self) -> Result<Vec<ImageRecord>> {
        self.read_images(&self.images_path_of(&self.namespace))
    }

    /// Every namespace that has images, `default` first.
    pub fn namespaces(&self) -> Result<Vec<String>> {
        let mut out = vec![namespace::DEFAULT.to_string()];
        let dir = self.root.join("namespaces");
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(Error::io(format!("list {}", dir.display()), e)),
        };
        let mut others = Vec::new();
        for e in entries {
            let e = e.ctx(|| format!("list {}", dir.display()))?;
            let name = e.file_name().to_string_lossy().into_owned();
            if namespace::validate(&name).is_ok() && name != namespace::DEFAULT {
                others.push(name);
            }
        }
        others.sort();
        out.extend(others);
        Ok(out)
    }

    /// The image records of every namespace: what garbage collection must keep.
    pub fn all_images(&self) -> Result<Vec<ImageRecord>> {
        let mut out = Vec::new();
        for ns in self.namespaces()? {
            out.extend(self.read_images(&self.images_path_of(&ns))?);
        }
        Ok(out)
    }

    pub fn image(&self, name: &str) -> Result<ImageRecord> {
        self.images()?
            .into_iter()
            .find(|i| i.name == name)
            .ok_or_else(|| self.not_found(name))
    }

    /// "image X not found", naming the namespace when it is not the default one, and where
    /// the name does exist when it is in another namespace (the usual mistake).
    fn not_found(&self, name: &str) -> Error {
        let mut msg = if self.namespace == namespace::DEFAULT {
            format!("image {name} not found")
        } else {
            format!("image {name} not found in namespace {}", self.namespace)
        };
        let elsewhere: Vec<String> = self
            .namespaces()
            .unwrap_or_default()
            .into_iter()
            .filter(|ns| *ns != self.namespace)
            .filter(|ns| {
                self.read_images(&self.images_path_of(ns))
                    .is_ok_and(|l| l.iter().any(|i| i.name == name))
            })
            .collect();
        if !elsewhere.is_empty() {
            msg.push_str(&format!(
                " (it is in namespace {}: -n {})",
                elsewhere.join(", "),
                elsewhere[0]
            ));
        }
        Error::NotFound(msg)
    }

    fn save_images(&self, list: &[ImageRecord]) -> Result<()> {
        let p = self.images_path_of(&self.namespace);
        if list.is_empty() && self.namespace != namespace::DEFAULT {
            // A namespace without images leaves nothing behind.
            match fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(format!("remove {}", p.display()), e)),
            }
            if let Some(dir) = p.parent() {
                let _ = fs::remove_dir(dir);
            }
            return Ok(());
        }
        if let Some(dir) = p.parent() {
            fs::create_dir_all(dir).ctx(|| format!("create {}", dir.display()))?;
        }
        let bytes =
            serde_json::to_vec_pretty(list).map_err(|e| Error::Invalid(format!("encode image records: {e}")))?;
        atomic_write(&self.temp_path("images"), &p, &bytes)
    }

    /// Add or replace the record for `rec.name` (call with the lock held).
    pub fn put_image(&self, rec: ImageRecord) -> Result<()> {
        let mut list = self.images()?;
        list.retain(|i| i.name != rec.name);
        list.push(rec);
        list.sort_by(|a, b| a.name.cmp(&b.name));
        self.save_images(&list)
    }

    /// Remove the record for `name` (call with the lock held); blobs are left to [`Store::gc`].
    pub fn remove_image(&self, name: &str) -> Result<ImageRecord> {
        let mut list = self.images()?;
        let pos = list
            .iter()
            .position(|i| i.name == name)
            .ok_or_else(|| self.not_found(name))?;
        let rec = list.remove(pos);
        self.save_images(&list)?;
        Ok(rec)
    }

    /// Every blob some image record (in any namespace) references: its index and every
    /// manifest of it that is in the store, the manifests' configs and layers.
    pub fn referenced_blobs(&self) -> Result<BTreeSet<Digest>> {
        let mut keep = BTreeSet::new();
        for img in self.all_images()? {
            keep.extend(content::reachable(self, &img));
        }
        Ok(keep)
    }

    /// Blobs no image references (call with the lock held).
    pub fn unreferenced_blobs(&self) -> Result<Vec<PathBuf>> {
        let keep = self.referenced_blobs()?;
        let dir = self.root.join("blobs/sha256");
        let mut out = Vec::new();
        for e in fs::read_dir(&dir).ctx(|| format!("list {}", dir.display()))? {
            let e = e.ctx(|| format!("list {}", dir.display()))?;
            let name = e.file_name().to_string_lossy().into_owned();
            let referenced = Digest::parse(&format!("sha256:{name}")).is_ok_and(|d| keep.contains(&d));
            if !referenced {
                out.push(e.path());
            }
        }
        out.sort();
        Ok(out)
    }

    /// Remove every blob no image references (call with the lock held). Returns how many.
    pub fn gc_blobs(&self) -> Result<usize> {
        let unused = self.unreferenced_blobs()?;
        for p in &unused {
            fs::remove_file(p).ctx(|| format!("remove {}", p.display()))?;
        }
        Ok(unused.len())
    }
}

/// A blob being streamed; [`BlobReader::verify`] drains it and checks its digest.
pub struct BlobReader {
    inner: HashingReader<io::BufReader<File>>,
    digest: Digest,
}

impl Read for BlobReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // Unpacking a large layer stops here once an interrupted pull or import asks.
        crate::cancel::check()?;
        self.inner.read(buf)
    }
}

impl BlobReader {
    pub fn verify(self) -> Result<()> {
        let want = self.digest.clone();
        let (actual, _) = self.inner.finish().ctx(|| format!("read blob {want}"))?;
        if actual != want {
            return Err(Error::DigestMismatch {
                what: format!("blob {want} in the content store"),
                expected: want.to_string(),
                actual: actual.to_string(),
            });
        }
        Ok(())
    }
}

/// Write `bytes` to `tmp`, sync, and rename over `dest`.
pub fn atomic_write(tmp: &Path, dest: &Path, bytes: &[u8]) -> Result<()> {
    let guard = TempFile {
        path: tmp.to_path_buf(),
        keep: false,
    };
    let mut f = File::create(tmp).ctx(|| format!("create {}", tmp.display()))?;
    f.write_all(bytes).ctx(|| format!("write {}", tmp.display()))?;
    f.sync_all().ctx(|| format!("sync {}", tmp.display()))?;
    fs::rename(tmp, dest).ctx(|| format!("rename {} to {}", tmp.display(), dest.display()))?;
    std::mem::forget(guard);
    Ok(())
}

pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn temp_store() -> (Store, PathBuf) {
        let dir = std::env::temp_dir().join(format!(
            "bridge-store-{}-{}",
            std::process::id(),
            TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        (Store::open(&dir).unwrap(), dir)
    }

    #[test]
    fn blobs_are_verified_on_write_and_read() {
        let (s, dir) = temp_store();
        let d = s.write_blob_bytes(b"hello", "greeting").unwrap();
        assert_eq!(s.read_blob(&d).unwrap(), b"hello");
        let wrong = Digest::of(b"other");
        let err = s.write_blob(&mut &b"hello"[..], Some(&wrong), "layer x").unwrap_err();
        assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
        assert!(err.to_string().contains("layer x"));
        assert!(!s.has_blob(&wrong));
        assert_eq!(fs::read_dir(dir.join("tmp")).unwrap().count(), 0, "temp file left");
        // A blob corrupted on disk is caught on read.
        fs::write(s.blob_path(&d), b"jello").unwrap();
        assert!(matches!(s.read_blob(&d), Err(Error::DigestMismatch { .. })));
        let mut r = s.open_blob(&d).unwrap();
        io::copy(&mut r, &mut io::sink()).unwrap();
        assert!(r.verify().is_err());
        fs::remove_dir_all(dir).unwrap();
    }
}
