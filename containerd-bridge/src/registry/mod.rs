//! The OCI distribution API over HTTP(S) with ureq (blocking HTTP/1.1 and rustls: a pull or a
//! push is a handful of sequential requests plus parallel layer downloads, which threads do
//! well without pulling an async runtime into the runtime's binary).
//!
//! `image pull`: manifests are negotiated (OCI index and manifest, Docker manifest list and
//! schema 2); an index selects the platform (or, with --all-platforms, every manifest is
//! fetched and the host's recorded); every blob is verified against its digest while it is
//! written to the store. `image push`: blobs the registry lacks are uploaded (HEAD first), then
//! the manifests, then the index. Auth: anonymous, bearer tokens from the registry's token
//! endpoint, or basic, with credentials from `--user` or `HEZI_REGISTRY_AUTH=user:password`.

mod auth;
mod client;
mod progress;
mod pull;
mod push;

use std::io::Read;

pub use auth::Credentials;
pub use progress::human_size;
pub use pull::pull;
pub use push::{push, Pushed};

use crate::manifest::Platform;

pub struct PullOptions {
    pub plain_http: bool,
    pub platform: Platform,
    pub auth: Option<Credentials>,
    /// Fetch every manifest of an index (and their blobs), not only the platform's.
    pub all_platforms: bool,
}

pub struct PushOptions {
    pub plain_http: bool,
    pub auth: Option<Credentials>,
}

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
