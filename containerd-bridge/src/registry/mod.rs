//! `image pull`: the OCI distribution API over HTTP(S) with ureq (blocking HTTP/1.1 and rustls:
//! a pull is a handful of sequential requests plus parallel layer downloads, which threads do
//! well without pulling an async runtime into the runtime's binary).
//!
//! Manifests are negotiated (OCI index and manifest, Docker manifest list and schema 2); an
//! index selects the platform; every blob is verified against its digest while it is written
//! to the store. Auth: anonymous, bearer tokens from the registry's token endpoint, or basic,
//! with credentials from `HEZI_REGISTRY_AUTH=user:password`.

mod auth;
mod progress;

use std::io::Read;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::Mutex;
use std::time::Duration;

pub use auth::Credentials;

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::manifest::{self, Descriptor, Index, Kind, Manifest, Platform};
use crate::reference::Reference;
use crate::store::{now_secs, ImageRecord, Store};
use crate::{images, media, platform};

pub struct PullOptions {
    pub plain_http: bool,
    pub platform: Platform,
    pub auth: Option<Credentials>,
}

const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";

/// At most this many layers download at once.
const PARALLEL: usize = 4;
const MAX_MANIFEST: u64 = 8 << 20;

/// A ureq error as text: the status and the start of the body for HTTP errors.
fn describe(e: ureq::Error) -> String {
    match e {
        ureq::Error::Status(code, resp) => {
            let status = resp.status_text().to_string();
            let mut body = String::new();
            let _ = resp.into_reader().take(300).read_to_string(&mut body);
            let body = body.trim();
            if body.is_empty() {
                format!("{code} {status}")
            } else {
                format!("{code} {status}: {body}")
            }
        }
        ureq::Error::Transport(t) => t.to_string(),
    }
}

struct Client {
    agent: ureq::Agent,
    base: String,
    repo: String,
    creds: Option<Credentials>,
    /// The Authorization header that worked (after a challenge), reused for every request.
    authz: Mutex<Option<String>>,
}

impl Client {
    fn new(r: &Reference, opts: &PullOptions) -> Client {
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(30))
            .timeout_read(Duration::from_secs(120))
            .user_agent(concat!("hezi/", env!("CARGO_PKG_VERSION")))
            .build();
        let scheme = if opts.plain_http { "http" } else { "https" };
        Client {
            agent,
            base: format!("{scheme}://{}/v2/{}", r.api_host(), r.path),
            repo: r.path.clone(),
            creds: opts.auth.clone(),
            authz: Mutex::new(None),
        }
    }

    fn authz(&self) -> Option<String> {
        self.authz.lock().map(|g| g.clone()).unwrap_or(None)
    }

    /// GET `base/<path>`, answering one auth challenge (bearer token or basic) if asked.
    fn get(&self, path: &str, accept: Option<&str>) -> Result<ureq::Response> {
        let url = format!("{}/{path}", self.base);
        let send = |authz: Option<&str>| {
            let mut req = self.agent.get(&url);
            if let Some(a) = accept {
                req = req.set("Accept", a);
            }
            if let Some(a) = authz {
                req = req.set("Authorization", a);
            }
            // Boxed: ureq's error holds a whole response.
            req.call().map_err(Box::new)
        };
        let fail = |e: Box<ureq::Error>| Error::Registry {
            url: url.clone(),
            message: describe(*e),
        };
        match send(self.authz().as_deref()) {
            Ok(r) => Ok(r),
            Err(e) if matches!(*e, ureq::Error::Status(401, _)) => {
                let ureq::Error::Status(_, resp) = *e else {
                    unreachable!("matched 401 above")
                };
                let header = resp.header("www-authenticate").unwrap_or("").to_string();
                let ch = auth::parse_challenge(&header).ok_or_else(|| Error::Registry {
                    url: url.clone(),
                    message: "401 Unauthorized without a WWW-Authenticate challenge".into(),
                })?;
                let authz = match ch.scheme.as_str() {
                    "bearer" => format!("Bearer {}", auth::fetch_token(&self.agent, &ch, &self.repo, self.creds.as_ref())?),
                    "basic" => self
                        .creds
                        .as_ref()
                        .ok_or_else(|| Error::Registry {
                            url: url.clone(),
                            message: "401 Unauthorized: the registry wants a user and password (set HEZI_REGISTRY_AUTH=user:password)".into(),
                        })?
                        .basic_header(),
                    other => {
                        return Err(Error::Registry {
                            url: url.clone(),
                            message: format!("401 Unauthorized with unsupported auth scheme {other:?}"),
                        })
                    }
                };
                if let Ok(mut g) = self.authz.lock() {
                    *g = Some(authz.clone());
                }
                send(Some(&authz)).map_err(fail)
            }
            Err(e) => Err(fail(e)),
        }
    }

    /// A manifest or index by tag or digest: (media type, bytes, digest), verified when asked
    /// by digest.
    fn manifest(&self, object: &str) -> Result<(String, Vec<u8>, Digest)> {
        let resp = self.get(&format!("manifests/{object}"), Some(ACCEPT))?;
        let url = resp.get_url().to_string();
        let mt = resp.content_type().to_string();
        let mut bytes = Vec::new();
        resp.into_reader()
            .take(MAX_MANIFEST)
            .read_to_end(&mut bytes)
            .map_err(|e| Error::Registry {
                url: url.clone(),
                message: format!("read manifest: {e}"),
            })?;
        let actual = Digest::of(&bytes);
        if let Ok(want) = Digest::parse(object) {
            if want != actual {
                return Err(Error::DigestMismatch {
                    what: format!("manifest {url}"),
                    expected: want.to_string(),
                    actual: actual.to_string(),
                });
            }
        }
        Ok((mt, bytes, actual))
    }

    /// Download blob `d` into the store (verified), counting bytes into `done`.
    fn blob(&self, store: &Store, d: &Digest, what: &str, done: &AtomicU64) -> Result<()> {
        let resp = self.get(&format!("blobs/{d}"), None)?;
        let mut r = Counting {
            inner: resp.into_reader(),
            done,
        };
        store.write_blob(&mut r, Some(d), what).map(drop)
    }
}

struct Counting<'a, R> {
    inner: R,
    done: &'a AtomicU64,
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.done.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Pull `name` into the store and unpack it; returns its record.
pub fn pull(store: &Store, name: &str, opts: &PullOptions) -> Result<ImageRecord> {
    let r = Reference::parse(name)?;
    let c = Client::new(&r, opts);
    let _lock = store.lock()?;
    let result = pull_locked(store, &c, &r, opts);
    if result.is_err() {
        let _ = images::gc(store);
    }
    result
}

fn pull_locked(store: &Store, c: &Client, r: &Reference, opts: &PullOptions) -> Result<ImageRecord> {
    let (mt, bytes, digest) = c.manifest(&r.object())?;
    let (index, target, mbytes) =
        match manifest::kind_of(Some(&mt).filter(|m| !m.is_empty()).map(|s| s.as_str()), &bytes)? {
            Kind::Index => {
                let idx: Index = manifest::parse(&format!("index of {r}"), &bytes)?;
                let d = platform::select(&idx.manifests, &opts.platform)?.clone();
                let (mt2, mbytes, mdigest) = c.manifest(d.digest.as_str())?;
                store.write_blob_bytes(&bytes, "index")?;
                let desc = Descriptor {
                    media_type: if mt2.is_empty() { d.media_type.clone() } else { mt2 },
                    digest: mdigest,
                    size: mbytes.len() as u64,
                    platform: None,
                    annotations: None,
                };
                (Some(digest), desc, mbytes)
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
    let zero = AtomicU64::new(0);
    if !store.has_blob(&m.config.digest) {
        c.blob(store, &m.config.digest, &format!("config of {r}"), &zero)?;
    }
    download_layers(store, c, &m.layers, r)?;
    store.write_blob_bytes(&mbytes, "manifest")?;
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

fn download_layers(store: &Store, c: &Client, layers: &[Descriptor], r: &Reference) -> Result<()> {
    let bars: Vec<progress::Layer> = layers
        .iter()
        .map(|l| progress::Layer {
            label: l.digest.as_str()[..19].to_string(),
            total: l.size,
            done: AtomicU64::new(0),
            state: AtomicU8::new(if store.has_blob(&l.digest) {
                progress::EXISTS
            } else {
                progress::WAITING
            }),
        })
        .collect();
    let queue = Mutex::new((0..layers.len()).rev().collect::<Vec<usize>>());
    let errors: Mutex<Vec<Error>> = Mutex::new(Vec::new());
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..PARALLEL.min(layers.len()))
            .map(|_| {
                s.spawn(|| loop {
                    let next = queue.lock().ok().and_then(|mut q| q.pop());
                    let Some(i) = next else { break };
                    let (l, bar) = (&layers[i], &bars[i]);
                    if bar.state.load(Ordering::Relaxed) == progress::EXISTS {
                        continue;
                    }
                    bar.state.store(progress::RUNNING, Ordering::Relaxed);
                    match c.blob(
                        store,
                        &l.digest,
                        &format!("{r}: layer {} ({})", i + 1, l.digest),
                        &bar.done,
                    ) {
                        Ok(()) => bar.state.store(progress::DONE, Ordering::Relaxed),
                        Err(e) => {
                            bar.state.store(progress::FAILED, Ordering::Relaxed);
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
        let drawer = s.spawn(|| progress::render(&bars, &stop));
        for w in workers {
            let _ = w.join();
        }
        stop.store(true, Ordering::Relaxed);
        let _ = drawer.join();
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
