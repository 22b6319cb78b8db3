//! containerd's namespaces: image records live in one namespace each (`default` unless told),
//! and a name in one namespace is invisible from another; blobs and snapshots are shared by
//! all of them in the one store, as containerd shares its content store.

use crate::error::{Error, Result};

/// The namespace hezi (and ctr) use when none is given.
pub const DEFAULT: &str = "default";

/// The environment variable ctr reads for the namespace (hezi reads it too).
pub const ENV: &str = "CONTAINERD_NAMESPACE";

/// Check a namespace name as containerd does: alphanumeric runs joined by single `.`, `_` or
/// `-`, at most 76 characters. The name becomes a directory in the store, so nothing else
/// (no `/`, no `..`) may pass.
pub fn validate(ns: &str) -> Result<()> {
    let bad = |why: &str| Error::Invalid(format!("invalid namespace {ns:?}: {why}"));
    if ns.is_empty() {
        return Err(bad("empty"));
    }
    if ns.len() > 76 {
        return Err(bad("longer than 76 characters"));
    }
    let mut prev_sep = true; // a separator may not start the name
    for c in ns.chars() {
        if c.is_ascii_alphanumeric() {
            prev_sep = false;
        } else if matches!(c, '.' | '_' | '-') && !prev_sep {
            prev_sep = true;
        } else {
            return Err(bad("want letters and digits, joined by single '.', '_' or '-'"));
        }
    }
    if prev_sep {
        return Err(bad("ends with a separator"));
    }
    Ok(())
}

/// The namespace from a flag's value, else `CONTAINERD_NAMESPACE`, else `default`; checked.
pub fn choose(flag: Option<&str>) -> Result<String> {
    let env = std::env::var(ENV).ok().filter(|v| !v.is_empty());
    let ns = flag.map(str::to_string).or(env).unwrap_or_else(|| DEFAULT.to_string());
    validate(&ns)?;
    Ok(ns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_as_containerd_takes_them() {
        for ok in ["default", "k8s.io", "a", "a-b_c.d", "moby", "X1"] {
            validate(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for bad in ["", ".a", "a.", "a..b", "a/b", "..", "a b", "ü", &"x".repeat(77)] {
            assert!(validate(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn flag_beats_default() {
        assert_eq!(choose(Some("k8s.io")).unwrap(), "k8s.io");
        assert!(choose(Some("a/../b")).is_err());
    }
}
