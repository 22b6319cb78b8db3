use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::PathBuf;

use super::*;

pub fn tmpdir(tag: &str) -> PathBuf {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let d = std::env::temp_dir().join(format!(
        "bridge-unpack-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    fs::create_dir_all(&d).unwrap();
    d
}

/// Entries for a test tar: (name, kind, data or link target).
pub enum E<'a> {
    Dir(&'a str),
    File(&'a str, &'a str),
    Link(&'a str, &'a str),
    Sym(&'a str, &'a str),
}

pub fn tar_of(entries: &[E]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mtime(1_000_000);
        h.set_uid(0);
        h.set_gid(0);
        match e {
            E::Dir(n) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                b.append_data(&mut h, n, &[][..]).unwrap();
            }
            E::File(n, data) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o644);
                h.set_size(data.len() as u64);
                b.append_data(&mut h, n, data.as_bytes()).unwrap();
            }
            E::Link(n, t) | E::Sym(n, t) => {
                h.set_entry_type(if matches!(e, E::Link(..)) {
                    tar::EntryType::Link
                } else {
                    tar::EntryType::Symlink
                });
                h.set_mode(0o777);
                h.set_size(0);
                b.append_link(&mut h, n, t).unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

/// A tar with one raw entry name (the tar crate's builder refuses `..` and absolute names).
fn raw_tar(name: &str) -> Vec<u8> {
    let mut h = tar::Header::new_old();
    h.as_mut_bytes()[..name.len()].copy_from_slice(name.as_bytes());
    h.set_mode(0o644);
    h.set_size(1);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    let mut out = h.as_bytes().to_vec();
    out.extend_from_slice(b"x");
    out.resize(1024, 0);
    out.extend_from_slice(&[0u8; 1024]);
    out
}

#[test]
fn escapes_are_refused() {
    for name in ["/etc/evil", "../evil", "a/../../evil"] {
        let d = tmpdir("esc");
        let err = apply(&raw_tar(name)[..], &d, Whiteouts::Delete, false).unwrap_err();
        assert!(matches!(err, Error::PathEscape { .. }), "{name}: {err}");
        assert!(err.to_string().contains(name), "{err}");
        fs::remove_dir_all(d).unwrap();
    }
    // Through a symlink: first an absolute link to the outside, then a write through it.
    let outside = tmpdir("outside");
    let d = tmpdir("esc");
    let t = tar_of(&[E::Sym("evil", outside.to_str().unwrap()), E::File("evil/pwned", "x")]);
    let err = apply(&t[..], &d, Whiteouts::Delete, false).unwrap_err();
    assert!(err.to_string().contains("symlink"), "{err}");
    assert!(!outside.join("pwned").exists());
    // ... and a relative one that climbs out, and a hard link to a file outside.
    let t = tar_of(&[E::Sym("up", "../.."), E::File("up/pwned", "x")]);
    assert!(apply(&t[..], &d, Whiteouts::Delete, false).is_err());
    fs::write(outside.join("secret"), "s").unwrap();
    let t = tar_of(&[E::Sym("o", outside.to_str().unwrap()), E::Link("l", "o/secret")]);
    assert!(apply(&t[..], &d, Whiteouts::Delete, false).is_err());
    assert!(!d.join("l").exists());
    fs::remove_dir_all(d).unwrap();
    fs::remove_dir_all(outside).unwrap();
}

#[test]
fn files_links_modes_and_times() {
    let d = tmpdir("files");
    let t = tar_of(&[
        E::Dir("./etc/"),
        E::File("./etc/hosts", "127.0.0.1 localhost\n"),
        E::Link("./etc/hosts2", "./etc/hosts"),
        E::Sym("./bin/sh", "busybox"),
        E::File("deep/er/file", "x"),
    ]);
    let diff = apply(&t[..], &d, Whiteouts::Delete, false).unwrap();
    assert_eq!(diff, Digest::of(&t));
    assert_eq!(
        fs::read_to_string(d.join("etc/hosts")).unwrap(),
        "127.0.0.1 localhost\n"
    );
    let (a, b) = (
        fs::metadata(d.join("etc/hosts")).unwrap(),
        fs::metadata(d.join("etc/hosts2")).unwrap(),
    );
    assert_eq!(a.ino(), b.ino());
    assert_eq!(a.permissions().mode() & 0o7777, 0o644);
    assert_eq!(a.mtime(), 1_000_000);
    assert_eq!(fs::read_link(d.join("bin/sh")).unwrap(), PathBuf::from("busybox"));
    let etc = fs::metadata(d.join("etc")).unwrap();
    assert_eq!((etc.mtime(), etc.permissions().mode() & 0o777), (1_000_000, 0o755));
    assert!(d.join("deep/er/file").exists());
    fs::remove_dir_all(d).unwrap();
}

#[test]
fn whiteouts_delete_lower_files_only() {
    let d = tmpdir("wh");
    let lower = tar_of(&[
        E::File("a", "1"),
        E::File("b", "2"),
        E::Dir("dir"),
        E::File("dir/old1", "o"),
        E::File("dir/old2", "o"),
    ]);
    apply(&lower[..], &d, Whiteouts::Delete, false).unwrap();
    let upper = tar_of(&[
        E::File(".wh.a", ""),
        E::File("dir/new", "n"),
        E::File("dir/.wh..wh..opq", ""),
        E::File("c", "3"),
        E::File(".wh.c", ""), // same layer: stays
    ]);
    apply(&upper[..], &d, Whiteouts::Delete, true).unwrap();
    assert!(!d.join("a").exists());
    assert!(d.join("b").exists() && d.join("c").exists());
    let mut names: Vec<_> = fs::read_dir(d.join("dir"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["new"]);
    fs::remove_dir_all(d).unwrap();
}

#[test]
fn whiteouts_for_overlay() {
    if !is_root() {
        eprintln!("SKIP: overlay whiteouts need root (mknod, trusted xattrs)");
        return;
    }
    let d = tmpdir("ovl");
    let upper = tar_of(&[
        E::File(".wh.gone", ""),
        E::Dir("op"),
        E::File("op/.wh..wh..opq", ""),
        E::File("op/f", ""),
    ]);
    apply(&upper[..], &d, Whiteouts::Overlay, true).unwrap();
    let st = fs::symlink_metadata(d.join("gone")).unwrap();
    use std::os::unix::fs::FileTypeExt;
    assert!(st.file_type().is_char_device() && st.rdev() == 0);
    let root = fsutil::open_dir(&d).unwrap();
    let x = fsutil::get_xattrs_at(root.as_raw_fd(), b"op").unwrap();
    assert!(
        x.iter()
            .any(|(k, v)| k.to_bytes() == b"trusted.overlay.opaque" && v == b"y"),
        "{x:?}"
    );
    assert!(d.join("op/f").exists());
    fs::remove_dir_all(d).unwrap();
}

#[test]
fn corrupt_tar_and_compression() {
    let d = tmpdir("bad");
    let err = apply_compressed(
        &mut &b"\x1f\x8bnot really gzip"[..],
        Compression::Gzip,
        &d,
        Whiteouts::Delete,
        false,
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("corrupt layer tar") || err.to_string().contains("not a tar"),
        "{err}"
    );
    let t = tar_of(&[E::File("f", "data")]);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    io::Write::write_all(&mut gz, &t).unwrap();
    let gz = gz.finish().unwrap();
    let diff = apply_compressed(&mut &gz[..], Compression::Gzip, &d, Whiteouts::Delete, false).unwrap();
    assert_eq!(diff, Digest::of(&t));
    let z = ruzstd::encoding::compress_to_vec(&t[..], ruzstd::encoding::CompressionLevel::Fastest);
    let d2 = tmpdir("zstd");
    assert_eq!(
        apply_compressed(&mut &z[..], Compression::Zstd, &d2, Whiteouts::Delete, false).unwrap(),
        Digest::of(&t)
    );
    assert_eq!(fs::read_to_string(d2.join("f")).unwrap(), "data");
    fs::remove_dir_all(d).unwrap();
    fs::remove_dir_all(d2).unwrap();
}

#[test]
fn xattrs_owners_and_devices() {
    let d = tmpdir("meta");
    let mut b = tar::Builder::new(Vec::new());
    b.append_pax_extensions([("SCHILY.xattr.user.hezi", &b"yes"[..])])
        .unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o4755);
    h.set_size(2);
    h.set_uid(if is_root() { 1234 } else { 0 });
    h.set_gid(if is_root() { 5678 } else { 0 });
    h.set_mtime(42);
    b.append_data(&mut h, "suid", &b"hi"[..]).unwrap();
    if is_root() {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Char);
        h.set_mode(0o666);
        h.set_size(0);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_device_major(1).unwrap();
        h.set_device_minor(3).unwrap();
        b.append_data(&mut h, "null", &[][..]).unwrap();
    }
    let t = b.into_inner().unwrap();
    apply(&t[..], &d, Whiteouts::Delete, false).unwrap();
    let m = fs::metadata(d.join("suid")).unwrap();
    // The set-uid bit survives the chown (mode is applied after it).
    assert_eq!((m.permissions().mode() & 0o7777, m.mtime()), (0o4755, 42));
    let root = fsutil::open_dir(&d).unwrap();
    let x = fsutil::get_xattrs_at(root.as_raw_fd(), b"suid").unwrap();
    assert!(
        x.iter().any(|(k, v)| k.to_bytes() == b"user.hezi" && v == b"yes"),
        "{x:?}"
    );
    if is_root() {
        assert_eq!((m.uid(), m.gid()), (1234, 5678));
        let n = fs::symlink_metadata(d.join("null")).unwrap();
        use std::os::unix::fs::FileTypeExt;
        assert!(n.file_type().is_char_device());
        assert_eq!(n.rdev(), libc::makedev(1, 3));
    }
    fs::remove_dir_all(d).unwrap();
}
