//! Which containerd major version runs `start`, when it does not say.
//!
//! containerd 2.3+ says so in BootstrapParams. 1.6 sets no `MAX_SHIM_VERSION`. But 1.7 and
//! 2.0-2.2 call `start` identically (same flags, same environment, `MAX_SHIM_VERSION=2` from
//! both) while they differ in what they accept back: 1.7 refuses a start answer of version 3
//! ("unsupported shim version (3)"), 2.x wants it to speak task API v3. The one difference left
//! is containerd itself, the `-publish-binary`: a Go binary whose build info (`.go.buildinfo`)
//! names its main package, `github.com/containerd/containerd/v2/cmd/containerd` from 2.0 on.
//! Reading that costs a few small reads; running `containerd --version` would cost ~60 ms.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

const MODULE: &str = "github.com/containerd/containerd";
const MAGIC: &[u8] = b"\xff Go buildinf:";

/// The major version of the containerd binary at `path`, from its Go build info; `None` when the
/// file is not a containerd (or not a Go binary we can read).
pub fn containerd_major(path: &Path) -> Option<u32> {
    let main = go_main_package(path)?;
    let rest = main.strip_prefix(MODULE)?;
    if !rest.is_empty() && !rest.starts_with('/') {
        return None;
    }
    // `/v2/cmd/containerd` from 2.0 on; `/cmd/containerd` before (major 1).
    match rest.strip_prefix("/v").and_then(|r| r.split('/').next()) {
        Some(n) => n.parse().ok(),
        None => Some(1),
    }
}

/// The `path` line of a Go binary's build info: its main package.
fn go_main_package(path: &Path) -> Option<String> {
    let f = File::open(path).ok()?;
    let (offset, size) = elf_section(&f, ".go.buildinfo")?;
    let mut buf = vec![0u8; size.min(4096) as usize];
    f.read_exact_at(&mut buf, offset).ok()?;
    // 32 bytes of header: the magic, pointer size, flags (bit 1: the strings follow inline,
    // as every Go since 1.18 writes them), padding.
    if !buf.starts_with(MAGIC) || buf.len() < 32 || buf[15] & 2 == 0 {
        return None;
    }
    let mut rest = &buf[32..];
    let _go_version = take_string(&mut rest)?;
    // The module info lists every dependency (kilobytes); its `path` line comes first, within
    // what was read.
    let modinfo = take_varint(&mut rest).map(|len| &rest[..len.min(rest.len())])?;
    let text = String::from_utf8_lossy(modinfo);
    text.lines()
        .find_map(|l| l.split_once("path\t").map(|(_, p)| p.trim().to_string()))
}

/// A varint-length-prefixed string off the front of `buf`.
fn take_string<'a>(buf: &mut &'a [u8]) -> Option<&'a [u8]> {
    let len = take_varint(buf)?;
    let (s, rest) = (buf.get(..len)?, buf.get(len..)?);
    *buf = rest;
    Some(s)
}

fn take_varint(buf: &mut &[u8]) -> Option<usize> {
    let mut len = 0usize;
    let mut shift = 0;
    loop {
        let (&b, rest) = buf.split_first()?;
        *buf = rest;
        len |= usize::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            break;
        }
        shift += 7;
        if shift > 28 {
            return None;
        }
    }
    Some(len)
}

/// File offset and size of the named section of a little-endian 64-bit ELF file.
fn elf_section(f: &File, name: &str) -> Option<(u64, u64)> {
    let mut eh = [0u8; 64];
    f.read_exact_at(&mut eh, 0).ok()?;
    // ELFCLASS64, ELFDATA2LSB
    if &eh[..4] != b"\x7fELF" || eh[4] != 2 || eh[5] != 1 {
        return None;
    }
    let u16_at = |b: &[u8], o: usize| u16::from_le_bytes([b[o], b[o + 1]]);
    let u32_at = |b: &[u8], o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap_or_default());
    let u64_at = |b: &[u8], o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap_or_default());
    let shoff = u64_at(&eh, 0x28);
    let (shentsize, shnum, shstrndx) = (
        usize::from(u16_at(&eh, 0x3a)),
        usize::from(u16_at(&eh, 0x3c)),
        usize::from(u16_at(&eh, 0x3e)),
    );
    if shentsize < 64 || shnum == 0 || shnum > 4096 || shstrndx >= shnum {
        return None;
    }
    let mut sh = vec![0u8; shentsize * shnum];
    f.read_exact_at(&mut sh, shoff).ok()?;
    let section = |i: usize| &sh[i * shentsize..i * shentsize + 64];
    let strtab = section(shstrndx);
    let (str_off, str_size) = (u64_at(strtab, 0x18), u64_at(strtab, 0x20).min(1 << 16));
    let mut names = vec![0u8; str_size as usize];
    f.read_exact_at(&mut names, str_off).ok()?;
    (0..shnum).map(section).find_map(|s| {
        let at = u32_at(s, 0) as usize;
        let end = names.get(at..)?.iter().position(|&b| b == 0)? + at;
        (&names[at..end] == name.as_bytes()).then(|| (u64_at(s, 0x18), u64_at(s, 0x20)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_go_binarys_build_info_and_not_others() {
        // Only a containerd has a containerd major version: a Rust binary has no Go build info,
        // and a file that is not ELF is nothing.
        assert_eq!(containerd_major(Path::new("/proc/self/exe")), None);
        assert_eq!(containerd_major(Path::new("/etc/hostname")), None);
        assert_eq!(containerd_major(Path::new("/nonexistent")), None);
    }

    #[test]
    fn the_installed_containerd_is_recognised() {
        // Debian 12's containerd is 1.6 (a Go binary whose main package is
        // github.com/containerd/containerd/cmd/containerd); skipped where it is not installed.
        let Some(bin) = ["/usr/bin/containerd", "/usr/local/bin/containerd"]
            .iter()
            .map(Path::new)
            .find(|p| p.exists())
        else {
            return eprintln!("skipped: no containerd installed");
        };
        let out = std::process::Command::new(bin)
            .arg("--version")
            .output()
            .expect("containerd --version");
        let text = String::from_utf8_lossy(&out.stdout);
        let expect = if text.contains("containerd/containerd/v2 ") {
            2
        } else {
            1
        };
        assert_eq!(containerd_major(bin), Some(expect), "{text}");
    }

    #[test]
    fn length_prefixed_strings() {
        let mut b: &[u8] = &[3, b'a', b'b', b'c', 0x80, 0x01];
        assert_eq!(take_string(&mut b), Some(&b"abc"[..]));
        assert_eq!(take_string(&mut b), None, "128 bytes promised, none there");
    }
}
