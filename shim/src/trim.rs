//! Unmapping the pages of the shim's own binary that a call touched, once it is answered.
//!
//! A shim lives as long as its pod but does its heavy work in a few calls: Create runs the
//! spec parser, the cgroup and mount code and the seccomp compiler, all in process. Every page
//! of code that work touches, and, through the kernel's fault-around, up to fifteen of its
//! neighbours, stays mapped and counts in the shim's resident set for the pod's whole life,
//! although it is the page cache's page, shared with every other shim, and never runs again
//! while the shim waits. After a call, the shim drops its mappings of those pages with
//! `madvise(MADV_DONTNEED)`: the pages stay in the page cache for the next shim and the next
//! call, which maps them again with a minor fault. What stays resident is what the idle shim
//! really owns: its heap, its stacks, and the data its relocations wrote.
//!
//! Only mappings that hold nothing but the file's own bytes may be dropped that way: for a
//! private mapping, MADV_DONTNEED throws away the process's copies of pages it wrote and maps
//! the file's bytes again. The relocated read-only data (RELRO) is such a copy, so each
//! mapping is taken only when it is not writable and smaps counts no anonymous page in it.

use std::io;
use std::sync::OnceLock;

/// One mapping of smaps, as far as trimming needs it.
#[derive(Debug, PartialEq)]
struct Mapping {
    start: usize,
    end: usize,
    writable: bool,
    path: String,
    anonymous_kb: u64,
}

/// Parse `/proc/PID/smaps`: a header line per mapping (`start-end perms offset dev inode
/// path`), then `Key: value kB` lines, among them `Anonymous:`.
fn parse_smaps(text: &str) -> Vec<Mapping> {
    let mut out: Vec<Mapping> = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("Anonymous:") {
            if let Some(m) = out.last_mut() {
                m.anonymous_kb = rest.trim().trim_end_matches("kB").trim().parse().unwrap_or(u64::MAX);
            }
            continue;
        }
        let mut fields = line.splitn(6, ' ');
        let (Some(range), Some(perms)) = (fields.next(), fields.next()) else {
            continue;
        };
        let Some((start, end)) = range.split_once('-') else {
            continue;
        };
        let (Ok(start), Ok(end)) = (usize::from_str_radix(start, 16), usize::from_str_radix(end, 16)) else {
            continue;
        };
        if perms.len() != 4 {
            continue;
        }
        // offset, dev, inode, then the path after the padding.
        let path = fields.nth(3).map(|p| p.trim_start().to_string()).unwrap_or_default();
        out.push(Mapping {
            start,
            end,
            writable: perms.as_bytes()[1] == b'w',
            path,
            // Unknown until its Anonymous line: never dropped without one.
            anonymous_kb: u64::MAX,
        });
    }
    out
}

/// Drop this process's mappings of the clean, read-only pages of the file `path` (as
/// `/proc/self/maps` names it). Returns how many bytes of address space were advised.
fn trim_file(path: &str) -> io::Result<usize> {
    let smaps = std::fs::read_to_string("/proc/self/smaps")?;
    let mut advised = 0;
    for m in parse_smaps(&smaps) {
        if m.path != path || m.writable || m.anonymous_kb != 0 {
            continue;
        }
        // SAFETY: the range is a whole mapping of this process as smaps lists it, not
        // writable and without one anonymous page: every page in it is the file's own
        // bytes, which the next access maps again unchanged. Nothing here holds a
        // reference into it that MADV_DONTNEED could invalidate.
        let r = unsafe { libc::madvise(m.start as *mut libc::c_void, m.end - m.start, libc::MADV_DONTNEED) };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
        advised += m.end - m.start;
    }
    Ok(advised)
}

/// Drop the mapped, clean pages of the shim's own binary (see the module's comment).
/// Failing costs only memory, so it is logged, never returned.
pub fn own_binary() {
    // The binary's path as smaps names it, read once: it cannot change while mapped (a
    // binary replaced on disk reads " (deleted)" in both places from then on, and its old
    // mappings are no longer worth trimming).
    static EXE: OnceLock<Option<String>> = OnceLock::new();
    let exe = EXE.get_or_init(|| match std::fs::read_link("/proc/self/exe") {
        Ok(p) => Some(p.to_string_lossy().into_owned()),
        Err(e) => {
            log::debug!("trim: read /proc/self/exe: {e}");
            None
        }
    });
    if let Some(exe) = exe {
        if let Err(e) = trim_file(exe) {
            log::debug!("trim: {exe}: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::fd::AsRawFd;

    #[test]
    fn smaps_headers_and_anonymous_counts_are_read() {
        let text = "\
55d0c0a00000-55d0c0c00000 r-xp 00001000 fd:01 1234                       /usr/bin/shim
Size:               2048 kB
Anonymous:             0 kB
55d0c0c00000-55d0c0c10000 r--p 00201000 fd:01 1234                       /usr/bin/shim (deleted)
Anonymous:            64 kB
7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0                          [stack]
Anonymous:           132 kB
7ffd00100000-7ffd00101000 r--p 00000000 00:00 0 
";
        let maps = parse_smaps(text);
        assert_eq!(maps.len(), 4);
        assert_eq!(maps[0].path, "/usr/bin/shim");
        assert_eq!((maps[0].start, maps[0].end), (0x55d0c0a00000, 0x55d0c0c00000));
        assert!(!maps[0].writable);
        assert_eq!(maps[0].anonymous_kb, 0);
        assert_eq!(maps[1].path, "/usr/bin/shim (deleted)");
        assert_eq!(maps[1].anonymous_kb, 64);
        assert!(maps[2].writable);
        assert_eq!(maps[2].path, "[stack]");
        // No Anonymous line: counted as unknown, so never trimmed.
        assert_eq!(maps[3].anonymous_kb, u64::MAX);
        assert_eq!(maps[3].path, "");
    }

    fn rss_kb_of(start: usize) -> u64 {
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
        let mut inside = false;
        for line in smaps.lines() {
            if let Some((range, _)) = line.split_once(' ') {
                if let Some((s, _)) = range.split_once('-') {
                    if let Ok(s) = usize::from_str_radix(s, 16) {
                        inside = s == start;
                        continue;
                    }
                }
            }
            if inside {
                if let Some(v) = line.strip_prefix("Rss:") {
                    return v.trim().trim_end_matches("kB").trim().parse().unwrap();
                }
            }
        }
        panic!("no mapping at {start:#x}");
    }

    #[test]
    fn clean_pages_are_unmapped_and_written_copies_kept() {
        let dir = std::env::temp_dir().join(format!("hezi-trim-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("file");
        let len = 64 * 4096;
        let mut f = std::fs::File::create(&path).unwrap();
        f.write_all(&vec![7u8; len]).unwrap();
        drop(f);
        let f = std::fs::File::open(&path).unwrap();
        let map = |prot| {
            // SAFETY: a fresh private mapping of the test's own file, unmapped below.
            let p = unsafe { libc::mmap(std::ptr::null_mut(), len, prot, libc::MAP_PRIVATE, f.as_raw_fd(), 0) };
            assert_ne!(p, libc::MAP_FAILED);
            p as *mut u8
        };
        // A clean read-only mapping, every page read; and a copy written then made
        // read-only, as relocations leave RELRO.
        let clean = map(libc::PROT_READ);
        let written = map(libc::PROT_READ | libc::PROT_WRITE);
        let mut sum = 0u64;
        for i in (0..len).step_by(4096) {
            // SAFETY: both mappings are len bytes long.
            unsafe {
                sum += u64::from(*clean.add(i));
                *written.add(i) = 42;
            }
        }
        assert_eq!(sum, 7 * 64);
        // SAFETY: written is the test's own mapping of len bytes.
        assert_eq!(
            unsafe { libc::mprotect(written as *mut libc::c_void, len, libc::PROT_READ) },
            0
        );
        assert_eq!(rss_kb_of(clean as usize), 256);

        let advised = trim_file(&path.to_string_lossy()).unwrap();
        assert_eq!(advised, len, "only the clean mapping is advised");
        assert_eq!(rss_kb_of(clean as usize), 0, "the clean pages are no longer mapped");
        assert_eq!(rss_kb_of(written as usize), 256, "the written copy stays");
        for i in (0..len).step_by(4096) {
            // SAFETY: as above; the clean pages are mapped again on access.
            unsafe {
                assert_eq!(*clean.add(i), 7);
                assert_eq!(*written.add(i), 42);
            }
        }
        // SAFETY: both are the test's own mappings of len bytes.
        unsafe {
            libc::munmap(clean as *mut libc::c_void, len);
            libc::munmap(written as *mut libc::c_void, len);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_binary_runs_on_after_its_pages_are_dropped() {
        own_binary();
        // Code and read-only data of this binary are mapped again as they are used.
        let v: Vec<String> = (0..100).map(|i| format!("{i:x}")).collect();
        assert_eq!(v[99], "63");
        own_binary();
        assert_eq!(parse_smaps("").len(), 0);
    }
}
