//! `--env-file FILE`: one KEY=VALUE a line; blank lines and lines starting with `#` are skipped.
//! Read when the flags are checked, so a missing or malformed file fails before anything is made.

use std::path::Path;

use crate::error::{Error, IoContext, Result};

/// The variables of the env file at `path`, in file order.
pub fn read(path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path).ctx(|| format!("--env-file {}", path.display()))?;
    parse(&text)
        .map_err(|(n, line)| Error::Invalid(format!("--env-file {}:{n}: {line:?} is not KEY=VALUE", path.display())))
}

/// The variables of `text`, or the first bad line (1-based) and its text.
fn parse(text: &str) -> std::result::Result<Vec<String>, (usize, String)> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        // Leading blanks are indentation, not part of the name; the value is kept as written
        // (but a DOS line end is not part of it).
        let line = raw.trim_start().trim_end_matches('\r');
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match line.split_once('=') {
            Some((key, _)) if !key.is_empty() && !key.contains(char::is_whitespace) => out.push(line.to_string()),
            _ => return Err((i + 1, raw.to_string())),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_blanks_and_values() {
        let text = "# a comment\n\nA=1\n  B=two words \r\nC=x=y\n   # indented comment\nEMPTY=\n";
        assert_eq!(parse(text).unwrap(), ["A=1", "B=two words ", "C=x=y", "EMPTY="]);
        assert_eq!(parse("A=1\nNOVALUE\n").unwrap_err(), (2, "NOVALUE".to_string()));
        assert_eq!(parse("=x\n").unwrap_err().0, 1);
        assert_eq!(parse("MY KEY=x\n").unwrap_err().0, 1);
    }

    #[test]
    fn missing_file_is_named() {
        let e = read(Path::new("/no/such/env-file")).unwrap_err().to_string();
        assert!(e.contains("--env-file /no/such/env-file"), "{e}");
    }
}
