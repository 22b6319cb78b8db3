//! Registry authentication: parsing `WWW-Authenticate` challenges, fetching bearer tokens, and
//! basic credentials (`--user user:password`, or `HEZI_REGISTRY_AUTH=user:password`).

use std::collections::HashMap;

use crate::error::{Error, Result};

#[derive(Clone)]
pub struct Credentials {
    pub user: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}, <password>)", self.user)
    }
}

impl Credentials {
    /// `user:password` (the password may hold colons; the user may not be empty). `what`
    /// names where the text came from in the error.
    pub fn parse(text: &str, what: &str) -> Result<Credentials> {
        match text.split_once(':') {
            Some((u, p)) if !u.is_empty() => Ok(Credentials {
                user: u.to_string(),
                password: p.to_string(),
            }),
            _ => Err(Error::Invalid(format!("{what}: want user:password"))),
        }
    }

    /// `HEZI_REGISTRY_AUTH=user:password`, if set.
    pub fn from_env() -> Result<Option<Credentials>> {
        match std::env::var("HEZI_REGISTRY_AUTH") {
            Ok(v) if !v.is_empty() => Credentials::parse(&v, "HEZI_REGISTRY_AUTH").map(Some),
            _ => Ok(None),
        }
    }

    /// `--user` when given, else the environment's.
    pub fn from_flag_or_env(flag: Option<&str>) -> Result<Option<Credentials>> {
        match flag {
            Some(v) => Credentials::parse(v, "--user").map(Some),
            None => Credentials::from_env(),
        }
    }

    pub fn basic_header(&self) -> String {
        format!(
            "Basic {}",
            base64(format!("{}:{}", self.user, self.password).as_bytes())
        )
    }
}

/// A parsed challenge: scheme (lowercased) and its parameters.
#[derive(Debug, PartialEq)]
pub struct Challenge {
    pub scheme: String,
    pub params: HashMap<String, String>,
}

/// Parse `Bearer realm="https://x/token",service="x",scope="repository:a/b:pull,push"`.
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    let mut params = HashMap::new();
    let mut chars = rest.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.is_empty() {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.peek() {
                if *c == ',' {
                    break;
                }
                value.push(*c);
                chars.next();
            }
        }
        params.insert(key.trim().to_lowercase(), value.trim().to_string());
    }
    Some(Challenge {
        scheme: scheme.to_lowercase(),
        params,
    })
}

/// Ask the challenge's token endpoint for a token for `actions` (`pull`, `pull,push`) on
/// `repo`, unless the challenge names its own scope.
pub fn fetch_token(
    agent: &ureq::Agent,
    ch: &Challenge,
    repo: &str,
    actions: &str,
    creds: Option<&Credentials>,
) -> Result<String> {
    let realm = ch
        .params
        .get("realm")
        .ok_or_else(|| Error::Registry {
            url: "WWW-Authenticate".into(),
            message: "bearer challenge without a realm".into(),
        })?
        .clone();
    let scope = ch
        .params
        .get("scope")
        .cloned()
        .unwrap_or_else(|| format!("repository:{repo}:{actions}"));
    let mut req = agent.get(&realm).query("scope", &scope);
    if let Some(s) = ch.params.get("service") {
        req = req.query("service", s);
    }
    if let Some(c) = creds {
        req = req.set("Authorization", &c.basic_header());
    }
    let resp = req.call().map_err(|e| Error::Registry {
        url: realm.clone(),
        message: format!("token request failed: {}", super::describe(e)),
    })?;
    let mut text = Vec::new();
    std::io::Read::read_to_end(&mut std::io::Read::take(resp.into_reader(), 1 << 20), &mut text).map_err(|e| {
        Error::Registry {
            url: realm.clone(),
            message: format!("read token response: {e}"),
        }
    })?;
    let body: serde_json::Value = serde_json::from_slice(&text).map_err(|e| Error::Registry {
        url: realm.clone(),
        message: format!("token response is not JSON: {e}"),
    })?;
    body.get("token")
        .or_else(|| body.get("access_token"))
        .and_then(|t| t.as_str())
        .map(str::to_string)
        .ok_or_else(|| Error::Registry {
            url: realm,
            message: "token response has no token".into(),
        })
}

pub fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges() {
        let c = parse_challenge(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull,push""#,
        )
        .unwrap();
        assert_eq!(c.scheme, "bearer");
        assert_eq!(c.params["realm"], "https://auth.docker.io/token");
        assert_eq!(c.params["service"], "registry.docker.io");
        assert_eq!(c.params["scope"], "repository:library/busybox:pull,push");
        let c = parse_challenge(r#"Basic realm="Registry Realm""#).unwrap();
        assert_eq!(
            (c.scheme.as_str(), c.params["realm"].as_str()),
            ("basic", "Registry Realm")
        );
    }

    #[test]
    fn credentials_parse() {
        let c = Credentials::parse("hezi:se:cret", "--user").unwrap();
        assert_eq!((c.user.as_str(), c.password.as_str()), ("hezi", "se:cret"));
        assert_eq!(Credentials::parse("u:", "--user").unwrap().password, "");
        for bad in ["nopassword", ":x", ""] {
            let e = Credentials::parse(bad, "--user").unwrap_err().to_string();
            assert!(e.contains("--user") && e.contains("user:password"), "{e}");
        }
    }

    #[test]
    fn base64_encodes() {
        assert_eq!(base64(b"user:pass"), "dXNlcjpwYXNz");
        assert_eq!(base64(b"a"), "YQ==");
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(base64(b""), "");
    }
}
