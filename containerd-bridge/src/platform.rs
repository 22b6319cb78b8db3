//! Platforms (`os/arch[/variant]`), the host's in OCI's names, and picking a manifest from an
//! index.

use crate::error::{Error, Result};
use crate::manifest::{Descriptor, Platform};

/// The host platform: Rust's architecture names mapped to OCI's (GOARCH) names.
pub fn host() -> Platform {
    let (arch, variant) = oci_arch(std::env::consts::ARCH);
    Platform {
        os: "linux".into(),
        architecture: arch.into(),
        variant: variant.map(str::to_string),
        os_version: None,
    }
}

fn oci_arch(rust: &str) -> (&str, Option<&'static str>) {
    match rust {
        "x86_64" => ("amd64", None),
        "x86" => ("386", None),
        "aarch64" => ("arm64", None),
        "arm" => ("arm", Some("v7")),
        "powerpc64" => ("ppc64le", None),
        "loongarch64" => ("loong64", None),
        "mips64" => ("mips64le", None),
        other => (other, None),
    }
}

/// Parse `os/arch[/variant]` (`linux/arm64/v8`).
pub fn parse(s: &str) -> Result<Platform> {
    let parts: Vec<&str> = s.split('/').collect();
    let bad = || Error::Invalid(format!("invalid platform {s:?}: want os/arch[/variant]"));
    if !(2..=3).contains(&parts.len()) || parts.iter().any(|p| p.is_empty()) {
        return Err(bad());
    }
    let arch = match parts[1] {
        "x86_64" | "x86-64" => "amd64",
        "aarch64" => "arm64",
        a => a,
    };
    Ok(Platform {
        os: parts[0].to_lowercase(),
        architecture: arch.to_string(),
        variant: parts.get(2).map(|v| v.to_string()),
        os_version: None,
    })
}

pub fn format(p: &Platform) -> String {
    match &p.variant {
        Some(v) => format!("{}/{}/{v}", p.os, p.architecture),
        None => format!("{}/{}", p.os, p.architecture),
    }
}

/// The variant an architecture has when none is written (arm64 is v8, arm defaults to v7).
fn default_variant(arch: &str) -> Option<&'static str> {
    match arch {
        "arm64" => Some("v8"),
        "arm" => Some("v7"),
        _ => None,
    }
}

/// Whether an image for `have` runs on `want`: same os and architecture; variants compared
/// with their defaults filled in, and only when the wanted one is known.
pub fn matches(want: &Platform, have: &Platform) -> bool {
    if want.os != have.os || want.architecture != have.architecture {
        return false;
    }
    let w = want.variant.as_deref().or(default_variant(&want.architecture));
    let h = have.variant.as_deref().or(default_variant(&have.architecture));
    match (w, h) {
        (Some(w), Some(h)) => w == h,
        _ => true,
    }
}

/// The index entry for `want` (first match, as containerd's platform matcher does; entries
/// without a platform, such as attestations, are skipped).
pub fn select<'a>(manifests: &'a [Descriptor], want: &Platform) -> Result<&'a Descriptor> {
    manifests
        .iter()
        .find(|d| d.platform.as_ref().is_some_and(|p| matches(want, p)))
        .or_else(|| {
            // An index of one manifest without platform (umoci, ctr export) is that image.
            match manifests {
                [only] if only.platform.is_none() => Some(only),
                _ => None,
            }
        })
        .ok_or_else(|| {
            let have: Vec<String> = manifests
                .iter()
                .filter_map(|d| d.platform.as_ref())
                .map(format)
                .collect();
            Error::NotFound(format!(
                "no manifest for platform {} in the index (it has: {})",
                format(want),
                if have.is_empty() {
                    "none".into()
                } else {
                    have.join(", ")
                }
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Digest;

    fn desc(p: Option<&str>, n: u8) -> Descriptor {
        Descriptor {
            media_type: crate::media::OCI_MANIFEST.into(),
            digest: Digest::of(&[n]),
            size: 1,
            platform: p.map(|p| parse(p).unwrap()),
            annotations: None,
        }
    }

    #[test]
    fn host_is_oci_named() {
        let h = host();
        assert_eq!(h.os, "linux");
        #[cfg(target_arch = "x86_64")]
        assert_eq!(h.architecture, "amd64");
        #[cfg(target_arch = "aarch64")]
        assert_eq!(h.architecture, "arm64");
    }

    #[test]
    fn selects_platform() {
        let list = [
            desc(Some("linux/arm/v6"), 1),
            desc(Some("linux/arm/v7"), 2),
            desc(Some("linux/arm64/v8"), 3),
            desc(Some("linux/amd64"), 4),
            desc(None, 5),
        ];
        assert_eq!(
            select(&list, &parse("linux/amd64").unwrap()).unwrap().digest,
            list[3].digest
        );
        assert_eq!(
            select(&list, &parse("linux/arm64").unwrap()).unwrap().digest,
            list[2].digest
        );
        assert_eq!(
            select(&list, &parse("linux/arm/v7").unwrap()).unwrap().digest,
            list[1].digest
        );
        assert_eq!(
            select(&list, &parse("linux/arm").unwrap()).unwrap().digest,
            list[1].digest
        );
        let err = select(&list, &parse("linux/s390x").unwrap()).unwrap_err().to_string();
        assert!(err.contains("linux/s390x") && err.contains("linux/amd64"), "{err}");
        // A single platform-less manifest is taken as is.
        assert_eq!(select(&list[4..], &host()).unwrap().digest, list[4].digest);
        assert!(parse("linux").is_err() && parse("a/b/c/d").is_err());
        assert_eq!(parse("linux/x86_64").unwrap().architecture, "amd64");
    }
}
