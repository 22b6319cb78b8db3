//! One error type for the bridge; every variant names what failed so that a message printed by
//! `hezi` alone says which file, blob, layer or registry request went wrong.

use std::fmt;

#[derive(Debug)]
pub enum Error {
    /// A system call or file operation failed: what we were doing, and the OS error.
    Io { context: String, source: std::io::Error },
    /// Content whose sha256 is not the digest it was stored or referenced under.
    DigestMismatch {
        what: String,
        expected: String,
        actual: String,
    },
    /// Input that is not what it claims to be (corrupt archive, bad JSON, bad reference...).
    Invalid(String),
    /// Valid input that hezi does not handle (unknown media type, platform not in an index...).
    Unsupported(String),
    /// An image, blob or snapshot that does not exist.
    NotFound(String),
    /// A registry request that failed: the URL and what the registry (or the network) said.
    Registry { url: String, message: String },
    /// A tar entry that would be written outside the snapshot it is unpacked into.
    PathEscape { entry: String, why: String },
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Error {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { context, source } => write!(f, "{context}: {source}"),
            Error::DigestMismatch { what, expected, actual } => {
                write!(f, "{what}: digest mismatch: expected {expected}, got {actual}")
            }
            Error::Invalid(m) | Error::Unsupported(m) | Error::NotFound(m) => f.write_str(m),
            Error::Registry { url, message } => write!(f, "registry request {url}: {message}"),
            Error::PathEscape { entry, why } => {
                write!(f, "refusing layer entry {entry:?}: {why}")
            }
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Attach context to io results: `fs::read(p).ctx(|| format!("read {}", p.display()))?`.
pub trait IoContext<T> {
    fn ctx<C: Into<String>>(self, context: impl FnOnce() -> C) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn ctx<C: Into<String>>(self, context: impl FnOnce() -> C) -> Result<T> {
        self.map_err(|e| Error::io(context(), e))
    }
}
