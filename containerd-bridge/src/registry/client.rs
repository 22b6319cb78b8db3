//! One repository of one registry over the distribution API: requests that answer an auth
//! challenge once (bearer token or basic) and reuse what worked, manifests by tag or digest,
//! and blob downloads into the store. Pull and push share it; what they ask for (`pull`, or
//! `pull,push`) is the scope a token is asked for.

use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use super::auth::{self, Credentials};
use super::describe;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::reference::Reference;
use crate::store::Store;

pub(super) const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";

const MAX_MANIFEST: u64 = 8 << 20;

/// A request body that can be made again (a retry after an auth challenge sends it anew):
/// a reader and its length.
pub(super) type Body<'a> = &'a dyn Fn() -> Result<(Box<dyn Read + Send>, u64)>;

pub(super) struct Client {
    agent: ureq::Agent,
    /// `scheme://host`, for upload locations the registry gives as a path.
    origin: String,
    /// `scheme://host/v2/<repo>`.
    base: String,
    repo: String,
    creds: Option<Credentials>,
    /// `pull` or `pull,push`: the scope asked of a token endpoint.
    actions: &'static str,
    /// The Authorization header that worked (after a challenge), reused for every request.
    authz: Mutex<Option<String>>,
}

impl Client {
    pub(super) fn new(r: &Reference, plain_http: bool, creds: Option<Credentials>, actions: &'static str) -> Client {
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(30))
            .timeout_read(Duration::from_secs(120))
            .user_agent(concat!("hezi/", env!("CARGO_PKG_VERSION")))
            .build();
        let scheme = if plain_http { "http" } else { "https" };
        let origin = format!("{scheme}://{}", r.api_host());
        Client {
            agent,
            base: format!("{origin}/v2/{}", r.path),
            origin,
            repo: r.path.clone(),
            creds,
            actions,
            authz: Mutex::new(None),
        }
    }

    /// The URL of `path` in this repository (`manifests/1`, `blobs/sha256:...`).
    pub(super) fn url(&self, path: &str) -> String {
        format!("{}/{path}", self.base)
    }

    /// An upload location as the registry gave it (absolute, or a path on the same host).
    pub(super) fn absolute(&self, location: &str) -> String {
        if location.starts_with("http://") || location.starts_with("https://") {
            location.to_string()
        } else {
            format!("{}/{}", self.origin, location.trim_start_matches('/'))
        }
    }

    fn authz(&self) -> Option<String> {
        self.authz.lock().map(|g| g.clone()).unwrap_or(None)
    }

    /// `method url` with `headers` (and a body), answering one auth challenge (bearer token or
    /// basic) if asked. An HTTP error status is an Err naming the URL, the status and the start
    /// of the registry's answer; `allow` lists statuses returned as answers instead (a HEAD's
    /// 404 says "not there", which is no failure).
    pub(super) fn send(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<Body>,
        allow: &[u16],
    ) -> Result<ureq::Response> {
        let attempt = |authz: Option<&str>| -> Result<std::result::Result<ureq::Response, Box<ureq::Error>>> {
            let mut req = self.agent.request(method, url);
            for (k, v) in headers {
                req = req.set(k, v);
            }
            if let Some(a) = authz {
                req = req.set("Authorization", a);
            }
            // Boxed: ureq's error holds a whole response.
            Ok(match body {
                Some(make) => {
                    let (reader, len) = make()?;
                    req.set("Content-Length", &len.to_string())
                        .send(reader)
                        .map_err(Box::new)
                }
                None => req.call().map_err(Box::new),
            })
        };
        let fail = |e: Box<ureq::Error>| Error::Registry {
            url: url.to_string(),
            message: describe(*e),
        };
        let answer = |r: std::result::Result<ureq::Response, Box<ureq::Error>>| match r {
            Ok(resp) => Ok(resp),
            Err(e) => match *e {
                ureq::Error::Status(code, resp) if allow.contains(&code) => Ok(resp),
                other => Err(fail(Box::new(other))),
            },
        };
        match attempt(self.authz().as_deref())? {
            Err(e) if matches!(*e, ureq::Error::Status(401, _)) => {
                let ureq::Error::Status(_, resp) = *e else {
                    unreachable!("matched 401 above")
                };
                let header = resp.header("www-authenticate").unwrap_or("").to_string();
                let authz = self.answer_challenge(url, &header)?;
                if let Ok(mut g) = self.authz.lock() {
                    *g = Some(authz.clone());
                }
                answer(attempt(Some(&authz))?)
            }
            r => answer(r),
        }
    }

    /// The Authorization header that answers challenge `header`.
    fn answer_challenge(&self, url: &str, header: &str) -> Result<String> {
        let ch = auth::parse_challenge(header).ok_or_else(|| Error::Registry {
            url: url.to_string(),
            message: "401 Unauthorized without a WWW-Authenticate challenge".into(),
        })?;
        match ch.scheme.as_str() {
            "bearer" => Ok(format!(
                "Bearer {}",
                auth::fetch_token(&self.agent, &ch, &self.repo, self.actions, self.creds.as_ref())?
            )),
            "basic" => Ok(self
                .creds
                .as_ref()
                .ok_or_else(|| Error::Registry {
                    url: url.to_string(),
                    message: "401 Unauthorized: the registry wants a user and password \
                              (--user user:password, or HEZI_REGISTRY_AUTH=user:password)"
                        .into(),
                })?
                .basic_header()),
            other => Err(Error::Registry {
                url: url.to_string(),
                message: format!("401 Unauthorized with unsupported auth scheme {other:?}"),
            }),
        }
    }

    /// GET `base/<path>`.
    pub(super) fn get(&self, path: &str, accept: Option<&str>) -> Result<ureq::Response> {
        let headers: Vec<(&str, &str)> = accept.map(|a| ("Accept", a)).into_iter().collect();
        self.send("GET", &self.url(path), &headers, None, &[])
    }

    /// A manifest or index by tag or digest: (media type, bytes, digest), verified when asked
    /// by digest.
    pub(super) fn manifest(&self, object: &str) -> Result<(String, Vec<u8>, Digest)> {
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
    pub(super) fn blob(&self, store: &Store, d: &Digest, what: &str, done: &AtomicU64) -> Result<()> {
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
        // Checked before each read: a throttled download stops within one read of a Ctrl-C.
        crate::cancel::check()?;
        let n = self.inner.read(buf)?;
        self.done.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}
