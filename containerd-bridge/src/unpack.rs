//! Apply a layer (a tar diff) to a directory. Entry names are checked and resolved one component
//! at a time under the directory's descriptor, so nothing lands outside it: absolute names and
//! `..` are refused, and so is a name whose parent is a symlink (even one pointing inside: in an
//! overlay layer the link may live in a lower layer and mean something else at run time).
//!
//! Whiteouts become what the snapshotter needs: for overlay, a 0:0 character device (`.wh.NAME`)
//! and `trusted.overlay.opaque=y` (`.wh..wh..opq`); for the copying snapshotter, the files
//! are removed from the copy of the parent. Either way a whiteout only hides what lower layers
//! had: entries from the same layer stay, as the OCI layer spec says.

use std::collections::HashSet;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::Path;

use crate::digest::{Digest, HashingReader};
use crate::error::{Error, IoContext, Result};
use crate::fsutil;
use crate::media::Compression;

const WHITEOUT_PREFIX: &[u8] = b".wh.";
const OPAQUE: &[u8] = b".wh..wh..opq";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Whiteouts {
    /// Record them as overlayfs does (the layer is an overlay lowerdir).
    Overlay,
    /// Delete what they name (the directory holds the parent's files already).
    Delete,
}

/// Decompress `blob` (as `compression`) and apply it to `dest`. Returns the diff id (the sha256
/// of the uncompressed tar) so the caller can check it against the image config.
pub fn apply_compressed(
    blob: &mut dyn Read,
    compression: Compression,
    dest: &Path,
    whiteouts: Whiteouts,
    has_parent: bool,
) -> Result<Digest> {
    let decoder: Box<dyn Read + '_> = match compression {
        Compression::None => Box::new(blob),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(io::BufReader::with_capacity(
            256 * 1024,
            blob,
        ))),
        Compression::Zstd => Box::new(
            ruzstd::decoding::StreamingDecoder::new(io::BufReader::with_capacity(256 * 1024, blob))
                .map_err(|e| Error::Invalid(format!("layer is not valid zstd: {e}")))?,
        ),
    };
    apply(decoder, dest, whiteouts, has_parent)
}

/// Apply an uncompressed tar stream to `dest`; returns its sha256.
pub fn apply(tar: impl Read, dest: &Path, whiteouts: Whiteouts, has_parent: bool) -> Result<Digest> {
    let root = fsutil::open_dir(dest).ctx(|| format!("open {}", dest.display()))?;
    let mut u = Unpacker {
        root,
        whiteouts,
        has_parent,
        seen: HashSet::new(),
        dir_times: Vec::new(),
        cache: None,
        is_root: is_root(),
    };
    let mut archive = tar::Archive::new(HashingReader::new(tar));
    {
        let entries = archive
            .entries()
            .map_err(|e| Error::Invalid(format!("layer is not a tar archive: {e}")))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| Error::Invalid(format!("corrupt layer tar: {e}")))?;
            u.entry(&mut entry)?;
        }
    }
    u.finish()?;
    let (digest, _) = archive
        .into_inner()
        .finish()
        .map_err(|e| Error::Invalid(format!("corrupt layer tar: {e}")))?;
    Ok(digest)
}

fn is_root() -> bool {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Split a tar entry name into checked components (`./a//b/` → `[a, b]`).
pub fn components(name: &[u8]) -> Result<Vec<&[u8]>> {
    let shown = || String::from_utf8_lossy(name).into_owned();
    if name.starts_with(b"/") {
        return Err(Error::PathEscape {
            entry: shown(),
            why: "absolute path".into(),
        });
    }
    let mut out = Vec::new();
    for c in name.split(|b| *b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                return Err(Error::PathEscape {
                    entry: shown(),
                    why: "'..' in the path".into(),
                })
            }
            c => out.push(c),
        }
    }
    Ok(out)
}

struct Unpacker {
    root: OwnedFd,
    whiteouts: Whiteouts,
    has_parent: bool,
    /// Paths this layer created, which its own whiteouts must not remove.
    seen: HashSet<Vec<u8>>,
    /// Directory mtimes, set at the end: creating entries inside would change them.
    dir_times: Vec<(Vec<u8>, i64)>,
    /// The last parent directory opened (entries come grouped by directory).
    cache: Option<(Vec<u8>, OwnedFd)>,
    is_root: bool,
}

/// What the entry's headers (and PAX records) say about its metadata.
struct Meta {
    uid: u32,
    gid: u32,
    mode: u32,
    mtime: i64,
    xattrs: Vec<(String, Vec<u8>)>,
}

fn meta<R: Read>(entry: &mut tar::Entry<R>) -> Result<Meta> {
    let h = entry.header();
    let bad = |what: &str, e: io::Error| Error::Invalid(format!("corrupt layer tar: {what}: {e}"));
    let mut m = Meta {
        uid: h.uid().map_err(|e| bad("uid", e))? as u32,
        gid: h.gid().map_err(|e| bad("gid", e))? as u32,
        mode: h.mode().map_err(|e| bad("mode", e))? & 0o7777,
        mtime: h.mtime().map_err(|e| bad("mtime", e))? as i64,
        xattrs: Vec::new(),
    };
    if let Some(exts) = entry.pax_extensions().map_err(|e| bad("pax header", e))? {
        for ext in exts {
            let ext = ext.map_err(|e| bad("pax header", e))?;
            let Ok(key) = ext.key() else { continue };
            let num = || {
                std::str::from_utf8(ext.value_bytes())
                    .ok()
                    .and_then(|v| v.split('.').next()?.parse().ok())
            };
            match key {
                "uid" => m.uid = num().unwrap_or(m.uid as i64) as u32,
                "gid" => m.gid = num().unwrap_or(m.gid as i64) as u32,
                "mtime" => m.mtime = num().unwrap_or(m.mtime),
                k => {
                    if let Some(x) = k.strip_prefix("SCHILY.xattr.") {
                        m.xattrs.push((x.to_string(), ext.value_bytes().to_vec()));
                    }
                }
            }
        }
    }
    Ok(m)
}

impl Unpacker {
    /// The descriptor of directory `comps` (created 0755 where missing), walked without
    /// following symlinks.
    fn dir(&mut self, comps: &[&[u8]], entry: &str) -> Result<RawFd> {
        let key = comps.join(&b'/');
        if let Some((k, fd)) = &self.cache {
            if *k == key {
                return Ok(fd.as_raw_fd());
            }
        }
        let mut cur: Option<OwnedFd> = None;
        for c in comps {
            let parent = cur.as_ref().map_or(self.root.as_raw_fd(), AsRawFd::as_raw_fd);
            let next = match fsutil::open_dir_at(parent, c) {
                Ok(fd) => fd,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    fsutil::mkdir_at(parent, c, 0o755).ctx(|| format!("layer entry {entry:?}: create parent"))?;
                    fsutil::open_dir_at(parent, c).ctx(|| format!("layer entry {entry:?}: open parent"))?
                }
                Err(e) if matches!(e.raw_os_error(), Some(libc::ELOOP) | Some(libc::ENOTDIR)) => {
                    let symlink =
                        fsutil::lstat_at(parent, c).is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFLNK);
                    return Err(Error::PathEscape {
                        entry: entry.to_string(),
                        why: format!(
                            "its parent {:?} is {}",
                            String::from_utf8_lossy(c),
                            if symlink { "a symlink" } else { "not a directory" }
                        ),
                    });
                }
                Err(e) => return Err(Error::io(format!("layer entry {entry:?}: open parent"), e)),
            };
            cur = Some(next);
        }
        let fd = match cur {
            Some(fd) => fd,
            None => fsutil::open_dir_at(self.root.as_raw_fd(), b".").ctx(|| "open the layer root")?,
        };
        let raw = fd.as_raw_fd();
        self.cache = Some((key, fd));
        Ok(raw)
    }

    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<R>) -> Result<()> {
        let name_bytes = entry.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&name_bytes).into_owned();
        let comps = components(&name_bytes)?;
        let Some((&base, parents)) = comps.split_last() else {
            return Ok(()); // the layer's root ("./"): the snapshot dir keeps its own metadata
        };
        let kind = entry.header().entry_type();
        if base == OPAQUE {
            return self.opaque(parents, &shown);
        }
        if let Some(hidden) = base.strip_prefix(WHITEOUT_PREFIX) {
            if hidden.starts_with(WHITEOUT_PREFIX) {
                return Ok(()); // other aufs metadata (.wh..wh.plnk etc.): nothing to apply
            }
            return self.whiteout(parents, hidden, &shown);
        }
        let m = meta(entry)?;
        let dir = self.dir(parents, &shown)?;
        let ctx = |what: &str| format!("layer entry {shown:?}: {what}");
        // Replace whatever is there, except a directory by a directory (its contents stay).
        let existing = fsutil::lstat_at(dir, base).ok();
        let keep_dir = kind.is_dir() && existing.as_ref().is_some_and(fsutil::is_dir);
        if existing.is_some() && !keep_dir {
            fsutil::remove_at(dir, base).map_err(|e| Error::io(ctx("replace existing"), e))?;
        }
        use tar::EntryType as T;
        match kind {
            T::Directory => {
                if !keep_dir {
                    fsutil::mkdir_at(dir, base, 0o700).map_err(|e| Error::io(ctx("mkdir"), e))?;
                }
            }
            T::Regular | T::Continuous => {
                let mut f = fsutil::create_at(dir, base, 0o600).map_err(|e| Error::io(ctx("create"), e))?;
                io::copy(entry, &mut f).map_err(|e| Error::io(ctx("write"), e))?;
            }
            T::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| Error::Invalid(ctx("symlink without a target")))?;
                fsutil::symlink_at(&target, dir, base).map_err(|e| Error::io(ctx("symlink"), e))?;
            }
            T::Link => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| Error::Invalid(ctx("hard link without a target")))?
                    .into_owned();
                let tcomps = components(&target)?;
                let Some((&tbase, tparents)) = tcomps.split_last() else {
                    return Err(Error::Invalid(ctx("hard link to the layer root")));
                };
                let tparents: Vec<Vec<u8>> = tparents.iter().map(|c| c.to_vec()).collect();
                let tparents: Vec<&[u8]> = tparents.iter().map(Vec::as_slice).collect();
                let tdir = self.dir(&tparents, &shown)?;
                // The cache now holds the target's dir; reopen ours (cheap, and rare).
                let tdir_owned = fsutil::open_dir_at(tdir, b".").map_err(|e| Error::io(ctx("open link target"), e))?;
                let dir = self.dir(parents, &shown)?;
                fsutil::link_at(tdir_owned.as_raw_fd(), tbase, dir, base)
                    .map_err(|e| Error::io(ctx(&format!("hard link to {:?}", String::from_utf8_lossy(&target))), e))?;
                self.seen.insert(comps.join(&b'/'));
                return Ok(()); // a link shares its target's metadata
            }
            T::Char | T::Block | T::Fifo => {
                let h = entry.header();
                let major = h.device_major().ok().flatten().unwrap_or(0);
                let minor = h.device_minor().ok().flatten().unwrap_or(0);
                let fmt = match kind {
                    T::Char => libc::S_IFCHR,
                    T::Block => libc::S_IFBLK,
                    _ => libc::S_IFIFO,
                };
                fsutil::mknod_at(dir, base, fmt | (m.mode & 0o777), libc::makedev(major, minor))
                    .map_err(|e| Error::io(ctx("mknod"), e))?;
            }
            T::XGlobalHeader | T::XHeader | T::GNULongName | T::GNULongLink => return Ok(()),
            other => {
                return Err(Error::Unsupported(ctx(&format!(
                    "unsupported tar entry type {other:?}"
                ))));
            }
        }
        match fsutil::chown_at(dir, base, m.uid, m.gid) {
            // Unprivileged (unit tests): keep our own ids rather than fail.
            Err(e) if !self.is_root && e.raw_os_error() == Some(libc::EPERM) => {}
            r => r.map_err(|e| Error::io(ctx("chown"), e))?,
        }
        for (k, v) in &m.xattrs {
            fsutil::set_xattr_at(dir, base, k, v).map_err(|e| Error::io(ctx(&format!("set xattr {k}")), e))?;
        }
        if kind != T::Symlink {
            // After chown, which clears set-id bits.
            fsutil::chmod_at(dir, base, m.mode).map_err(|e| Error::io(ctx("chmod"), e))?;
        }
        let path = comps.join(&b'/');
        if kind.is_dir() {
            self.dir_times.push((path.clone(), m.mtime));
        } else {
            fsutil::set_times_at(dir, base, m.mtime, 0).map_err(|e| Error::io(ctx("set mtime"), e))?;
        }
        self.seen.insert(path);
        Ok(())
    }

    fn whiteout(&mut self, parents: &[&[u8]], hidden: &[u8], entry: &str) -> Result<()> {
        if hidden.is_empty() || hidden == b"." || hidden == b".." || hidden.contains(&b'/') {
            return Err(Error::PathEscape {
                entry: entry.to_string(),
                why: "whiteout of an invalid name".into(),
            });
        }
        let mut path = parents.join(&b'/');
        if !path.is_empty() {
            path.push(b'/');
        }
        path.extend_from_slice(hidden);
        if self.seen.contains(&path) || !self.has_parent {
            return Ok(()); // only lower layers' files are hidden
        }
        let dir = self.dir(parents, entry)?;
        let ctx = || format!("layer entry {entry:?}: whiteout");
        fsutil::remove_at(dir, hidden).ctx(ctx)?;
        if self.whiteouts == Whiteouts::Overlay {
            fsutil::mknod_at(dir, hidden, libc::S_IFCHR, 0).ctx(ctx)?;
        }
        Ok(())
    }

    fn opaque(&mut self, parents: &[&[u8]], entry: &str) -> Result<()> {
        if !self.has_parent {
            return Ok(());
        }
        let dir = self.dir(parents, entry)?;
        let ctx = || format!("layer entry {entry:?}: opaque directory");
        match self.whiteouts {
            Whiteouts::Overlay => {
                // Opaque hides lower layers only; this layer's own entries stay visible.
                let owned = fsutil::open_dir_at(dir, b".").ctx(ctx)?;
                fsutil::set_xattr_at(owned.as_raw_fd(), b".", "trusted.overlay.opaque", b"y").ctx(ctx)?;
            }
            Whiteouts::Delete => {
                let prefix = parents.join(&b'/');
                for child in fsutil::list_dir(dir).ctx(ctx)? {
                    let mut p = prefix.clone();
                    if !p.is_empty() {
                        p.push(b'/');
                    }
                    p.extend_from_slice(&child);
                    if !self.seen.contains(&p) {
                        fsutil::remove_at(dir, &child).ctx(ctx)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Set directory mtimes, deepest first, now that nothing more is created inside them.
    fn finish(&mut self) -> Result<()> {
        self.cache = None;
        let mut times = std::mem::take(&mut self.dir_times);
        times.sort_by_key(|t| std::cmp::Reverse(t.0.len()));
        for (path, mtime) in times {
            let comps: Vec<&[u8]> = path.split(|b| *b == b'/').collect();
            let shown = String::from_utf8_lossy(&path).into_owned();
            if let Some((&base, parents)) = comps.split_last() {
                let dir = self.dir(parents, &shown)?;
                fsutil::set_times_at(dir, base, mtime, 0).ctx(|| format!("layer entry {shown:?}: set mtime"))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
