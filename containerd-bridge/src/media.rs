//! Media types, and how a layer is compressed (from its media type, checked against its first
//! bytes: registries and tools are not always truthful about `+gzip`).

use crate::error::{Error, Result};

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";
pub const DOCKER_FOREIGN_GZIP: &str = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
pub const OCI_NONDIST_GZIP: &str = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
pub const OCI_NONDIST: &str = "application/vnd.oci.image.layer.nondistributable.v1.tar";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    /// What a layer's media type says about its compression; unknown media types are errors
    /// (an unknown layer format must not be unpacked as if it were a tar).
    pub fn from_media_type(mt: &str) -> Result<Compression> {
        Ok(match mt {
            OCI_LAYER | DOCKER_LAYER | OCI_NONDIST => Compression::None,
            OCI_LAYER_GZIP | DOCKER_LAYER_GZIP | DOCKER_FOREIGN_GZIP | OCI_NONDIST_GZIP => Compression::Gzip,
            OCI_LAYER_ZSTD | "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd" => Compression::Zstd,
            other => return Err(Error::Unsupported(format!("unknown layer media type {other:?}"))),
        })
    }

    /// What the first bytes of a blob say: gzip (1f 8b), zstd frame (28 b5 2f fd), else tar.
    pub fn sniff(head: &[u8]) -> Compression {
        if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }

    /// The OCI layer media type for this compression.
    pub fn oci_layer_type(self) -> &'static str {
        match self {
            Compression::None => OCI_LAYER,
            Compression::Gzip => OCI_LAYER_GZIP,
            Compression::Zstd => OCI_LAYER_ZSTD,
        }
    }
}

/// Resolve a layer's compression: the media type must be a known layer type; the magic bytes
/// win when they disagree (docker-archive layers are plain tars labelled as tar, but some tools
/// store gzip under the plain type), since decoding by the wrong one can only fail.
pub fn layer_compression(media_type: &str, head: &[u8]) -> Result<Compression> {
    let declared = Compression::from_media_type(media_type)?;
    let sniffed = Compression::sniff(head);
    Ok(if sniffed == Compression::None {
        declared
    } else {
        sniffed
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_by_media_type_and_magic() {
        assert_eq!(Compression::from_media_type(OCI_LAYER_GZIP).unwrap(), Compression::Gzip);
        assert_eq!(Compression::from_media_type(DOCKER_LAYER).unwrap(), Compression::None);
        assert_eq!(Compression::from_media_type(OCI_LAYER_ZSTD).unwrap(), Compression::Zstd);
        let err = Compression::from_media_type("application/x-foo")
            .unwrap_err()
            .to_string();
        assert!(err.contains("application/x-foo"), "{err}");
        assert_eq!(Compression::sniff(&[0x1f, 0x8b, 8]), Compression::Gzip);
        assert_eq!(Compression::sniff(&[0x28, 0xb5, 0x2f, 0xfd, 0]), Compression::Zstd);
        assert_eq!(Compression::sniff(b"etc/passwd"), Compression::None);
        // gzip bytes under the plain-tar type are gunzipped.
        assert_eq!(layer_compression(OCI_LAYER, &[0x1f, 0x8b]).unwrap(), Compression::Gzip);
        assert_eq!(layer_compression(OCI_LAYER_ZSTD, b"").unwrap(), Compression::Zstd);
        assert!(layer_compression("text/plain", &[0x1f, 0x8b]).is_err());
    }
}
