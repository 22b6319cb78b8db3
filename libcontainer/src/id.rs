//! Container ids become path components under the state root, so they are restricted to a safe
//! alphabet: `[A-Za-z0-9][A-Za-z0-9_+.-]*` (which also rules out `.` and `..`).

use crate::error::{Error, Result};

/// Longest id accepted; keeps every path built from it well under PATH_MAX and NAME_MAX.
const MAX_ID_LEN: usize = 1024;

pub fn validate(id: &str) -> Result<()> {
    let bad = |why: &str| Err(Error::InvalidArgument(format!("invalid container id {id:?}: {why}")));
    let mut chars = id.chars();
    match chars.next() {
        None => return bad("empty"),
        Some(c) if !c.is_ascii_alphanumeric() => return bad("must start with a letter or digit"),
        _ => {}
    }
    if id.len() > MAX_ID_LEN.min(255) {
        return bad("too long");
    }
    if let Some(c) = chars.find(|c| !(c.is_ascii_alphanumeric() || "_+.-".contains(*c))) {
        return bad(&format!("character {c:?} is not allowed (use [A-Za-z0-9_+.-])"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::validate;

    #[test]
    fn accepts_runc_style_ids() {
        for id in ["a", "abc-123", "x_y+z.w", "0", "k8s.pod-1_2"] {
            assert!(validate(id).is_ok(), "{id}");
        }
    }

    #[test]
    fn rejects_paths_and_odd_characters() {
        for id in ["", ".", "..", "../x", "a/b", "-a", "_a", "a b", "a\0b", "ü"] {
            assert!(validate(id).is_err(), "{id:?}");
        }
        assert!(validate(&"a".repeat(256)).is_err());
    }
}
