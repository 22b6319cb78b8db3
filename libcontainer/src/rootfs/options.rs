//! Mount option strings (`ro,nosuid,size=64k,rbind,rslave`) to mount(2) flags, propagation and
//! data, with runc's vocabulary.

use nix::mount::MsFlags;

/// MS_NOSYMFOLLOW (Linux 5.10), which nix does not name.
const NOSYMFOLLOW: MsFlags = MsFlags::from_bits_retain(libc::MS_NOSYMFOLLOW);

#[derive(Debug, PartialEq, Eq)]
pub struct Options {
    /// Flags for the mount itself (and the remount of a bind).
    pub flags: MsFlags,
    /// Propagation to apply after mounting (MS_SHARED, MS_SLAVE, ... possibly with MS_REC).
    pub propagation: MsFlags,
    /// Filesystem-specific data, comma-joined (`size=64k,mode=755`).
    pub data: String,
    pub bind: bool,
    pub recursive: bool,
    /// runc's `tmpcopyup`: the new tmpfs starts with a copy of the directory it covers.
    pub copy_up: bool,
    /// Recursive attributes (`rro`, `rnosuid`, ...): MOUNT_ATTR_* bits to set and to clear on the
    /// mount and every mount below it, with mount_setattr(2) once it is in place.
    pub attr_set: u64,
    pub attr_clear: u64,
    /// `idmap` (false) or `ridmap` (true: the mapping reaches the mounts below too).
    pub idmap: Option<bool>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            flags: MsFlags::empty(),
            propagation: MsFlags::empty(),
            data: String::new(),
            bind: false,
            recursive: false,
            copy_up: false,
            attr_set: 0,
            attr_clear: 0,
            idmap: None,
        }
    }
}

impl Options {
    /// Flags a bind mount needs a second, remounting call for.
    pub fn bind_remount_flags(&self) -> MsFlags {
        self.flags - (MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT)
    }

    pub fn has_recursive_attrs(&self) -> bool {
        self.attr_set != 0 || self.attr_clear != 0
    }
}

// linux/mount.h's MOUNT_ATTR_* values.
pub(super) const ATTR_RDONLY: u64 = 0x1;
pub(super) const ATTR_NOSUID: u64 = 0x2;
pub(super) const ATTR_NODEV: u64 = 0x4;
pub(super) const ATTR_NOEXEC: u64 = 0x8;
/// The atime mode is a 3-bit field: setting one mode means clearing the field.
const ATTR_ATIME_MASK: u64 = 0x70;
const ATTR_RELATIME: u64 = 0x0;
const ATTR_NOATIME: u64 = 0x10;
const ATTR_STRICTATIME: u64 = 0x20;
const ATTR_NODIRATIME: u64 = 0x80;
const ATTR_NOSYMFOLLOW: u64 = 0x20_0000;

/// runc's recursive options: (bits to set, bits to clear). The atime ones replace the mode, as
/// their non-recursive names do in mount(8) (`ratime` undoes `noatime`: back to relatime).
fn recursive_attr(name: &str) -> Option<(u64, u64)> {
    Some(match name {
        "rro" => (ATTR_RDONLY, 0),
        "rrw" => (0, ATTR_RDONLY),
        "rnosuid" => (ATTR_NOSUID, 0),
        "rsuid" => (0, ATTR_NOSUID),
        "rnodev" => (ATTR_NODEV, 0),
        "rdev" => (0, ATTR_NODEV),
        "rnoexec" => (ATTR_NOEXEC, 0),
        "rexec" => (0, ATTR_NOEXEC),
        "rnodiratime" => (ATTR_NODIRATIME, 0),
        "rdiratime" => (0, ATTR_NODIRATIME),
        "rnosymfollow" => (ATTR_NOSYMFOLLOW, 0),
        "rsymfollow" => (0, ATTR_NOSYMFOLLOW),
        "rrelatime" | "ratime" | "rnostrictatime" => (ATTR_RELATIME, ATTR_ATIME_MASK),
        "rnoatime" => (ATTR_NOATIME, ATTR_ATIME_MASK),
        "rstrictatime" | "rnorelatime" => (ATTR_STRICTATIME, ATTR_ATIME_MASK),
        _ => return None,
    })
}

/// Every option name hezi knows, for `features` (filesystem data such as `size=` aside).
pub const KNOWN: &[&str] = &[
    "async",
    "atime",
    "bind",
    "defaults",
    "dev",
    "diratime",
    "dirsync",
    "exec",
    "idmap",
    "iversion",
    "lazytime",
    "loud",
    "mand",
    "noatime",
    "nodev",
    "nodiratime",
    "noexec",
    "noiversion",
    "nolazytime",
    "nomand",
    "norelatime",
    "nostrictatime",
    "nosuid",
    "nosymfollow",
    "private",
    "ratime",
    "rbind",
    "rdev",
    "rdiratime",
    "relatime",
    "remount",
    "rexec",
    "ridmap",
    "rnoatime",
    "rnodev",
    "rnodiratime",
    "rnoexec",
    "rnorelatime",
    "rnostrictatime",
    "rnosuid",
    "rnosymfollow",
    "ro",
    "rprivate",
    "rrelatime",
    "rro",
    "rrw",
    "rshared",
    "rslave",
    "rstrictatime",
    "rsuid",
    "rsymfollow",
    "runbindable",
    "rw",
    "shared",
    "silent",
    "slave",
    "strictatime",
    "suid",
    "symfollow",
    "sync",
    "tmpcopyup",
    "unbindable",
];

/// Errors are plain text; the caller names the mount.
pub fn parse(options: &[String]) -> Result<Options, String> {
    let mut o = Options::default();
    for opt in options {
        let (set, clear) = match opt.as_str() {
            "defaults" => (MsFlags::empty(), MsFlags::empty()),
            "ro" => (MsFlags::MS_RDONLY, MsFlags::empty()),
            "rw" => (MsFlags::empty(), MsFlags::MS_RDONLY),
            "nosuid" => (MsFlags::MS_NOSUID, MsFlags::empty()),
            "suid" => (MsFlags::empty(), MsFlags::MS_NOSUID),
            "nodev" => (MsFlags::MS_NODEV, MsFlags::empty()),
            "dev" => (MsFlags::empty(), MsFlags::MS_NODEV),
            "noexec" => (MsFlags::MS_NOEXEC, MsFlags::empty()),
            "exec" => (MsFlags::empty(), MsFlags::MS_NOEXEC),
            "sync" => (MsFlags::MS_SYNCHRONOUS, MsFlags::empty()),
            "async" => (MsFlags::empty(), MsFlags::MS_SYNCHRONOUS),
            "dirsync" => (MsFlags::MS_DIRSYNC, MsFlags::empty()),
            "remount" => (MsFlags::MS_REMOUNT, MsFlags::empty()),
            "mand" => (MsFlags::MS_MANDLOCK, MsFlags::empty()),
            "nomand" => (MsFlags::empty(), MsFlags::MS_MANDLOCK),
            "noatime" => (MsFlags::MS_NOATIME, MsFlags::empty()),
            "atime" => (MsFlags::empty(), MsFlags::MS_NOATIME),
            "nodiratime" => (MsFlags::MS_NODIRATIME, MsFlags::empty()),
            "diratime" => (MsFlags::empty(), MsFlags::MS_NODIRATIME),
            "relatime" => (MsFlags::MS_RELATIME, MsFlags::empty()),
            "norelatime" => (MsFlags::empty(), MsFlags::MS_RELATIME),
            "strictatime" => (MsFlags::MS_STRICTATIME, MsFlags::empty()),
            "nostrictatime" => (MsFlags::empty(), MsFlags::MS_STRICTATIME),
            "lazytime" => (MsFlags::MS_LAZYTIME, MsFlags::empty()),
            "nolazytime" => (MsFlags::empty(), MsFlags::MS_LAZYTIME),
            "silent" => (MsFlags::MS_SILENT, MsFlags::empty()),
            "loud" => (MsFlags::empty(), MsFlags::MS_SILENT),
            "iversion" => (MsFlags::MS_I_VERSION, MsFlags::empty()),
            "noiversion" => (MsFlags::empty(), MsFlags::MS_I_VERSION),
            "nosymfollow" => (NOSYMFOLLOW, MsFlags::empty()),
            "symfollow" => (MsFlags::empty(), NOSYMFOLLOW),
            "bind" => {
                o.bind = true;
                (MsFlags::MS_BIND, MsFlags::empty())
            }
            "rbind" => {
                o.bind = true;
                o.recursive = true;
                (MsFlags::MS_BIND | MsFlags::MS_REC, MsFlags::empty())
            }
            // runc's extension: copy the image's content into a new tmpfs (see copyup.rs).
            "tmpcopyup" => {
                o.copy_up = true;
                continue;
            }
            "idmap" | "ridmap" => {
                o.idmap = Some(opt == "ridmap");
                continue;
            }
            other => {
                if let Some(p) = propagation(other) {
                    o.propagation |= p;
                    continue;
                }
                if let Some((set, clear)) = recursive_attr(other) {
                    o.attr_set = (o.attr_set & !clear) | set;
                    // The kernel wants the whole atime field cleared whenever a mode is set.
                    o.attr_clear = ((o.attr_clear | clear) & !set) | (clear & ATTR_ATIME_MASK);
                    continue;
                }
                if other.is_empty() {
                    return Err("empty mount option".into());
                }
                if !o.data.is_empty() {
                    o.data.push(',');
                }
                o.data.push_str(other);
                continue;
            }
        };
        o.flags = (o.flags | set) - clear;
    }
    Ok(o)
}

/// Propagation option names, as in mount(8).
pub fn propagation(name: &str) -> Option<MsFlags> {
    Some(match name {
        "private" => MsFlags::MS_PRIVATE,
        "rprivate" => MsFlags::MS_PRIVATE | MsFlags::MS_REC,
        "shared" => MsFlags::MS_SHARED,
        "rshared" => MsFlags::MS_SHARED | MsFlags::MS_REC,
        "slave" => MsFlags::MS_SLAVE,
        "rslave" => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        "runbindable" => MsFlags::MS_UNBINDABLE | MsFlags::MS_REC,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(opts: &[&str]) -> Options {
        parse(&opts.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn flags_data_and_propagation() {
        let o = p(&["nosuid", "strictatime", "mode=755", "size=65536k", "rslave", "ro"]);
        assert_eq!(
            o.flags,
            MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME | MsFlags::MS_RDONLY
        );
        assert_eq!(o.data, "mode=755,size=65536k");
        assert_eq!(o.propagation, MsFlags::MS_SLAVE | MsFlags::MS_REC);
        assert!(!o.bind);
    }

    #[test]
    fn later_options_win() {
        assert_eq!(p(&["ro", "rw"]).flags, MsFlags::empty());
        assert_eq!(p(&["nodev", "dev", "noexec"]).flags, MsFlags::MS_NOEXEC);
    }

    #[test]
    fn rbind_is_recursive_bind() {
        let o = p(&["rbind", "ro"]);
        assert!(o.bind && o.recursive);
        assert_eq!(o.bind_remount_flags(), MsFlags::MS_RDONLY);
    }

    #[test]
    fn tmpcopyup_is_not_mount_data() {
        let o = p(&["rw", "nosuid", "tmpcopyup", "size=1m"]);
        assert!(o.copy_up);
        assert_eq!(o.data, "size=1m");
    }

    #[test]
    fn recursive_options_set_and_clear_attributes() {
        let o = p(&["rbind", "rro", "rnosuid", "rnoatime"]);
        assert_eq!(o.attr_set, ATTR_RDONLY | ATTR_NOSUID | ATTR_NOATIME);
        assert_eq!(o.attr_clear, ATTR_ATIME_MASK);
        assert!(o.data.is_empty());
        // A later option undoes an earlier one, as for the plain flags.
        let o = p(&["rro", "rrw", "rnoatime", "ratime"]);
        assert_eq!(o.attr_set, ATTR_RELATIME);
        assert_eq!(o.attr_clear, ATTR_RDONLY | ATTR_ATIME_MASK);
        assert!(!p(&["ro"]).has_recursive_attrs());
    }

    #[test]
    fn every_known_option_parses_without_data() {
        for name in KNOWN {
            let o = p(&[name]);
            assert!(o.data.is_empty(), "{name} became mount data");
        }
    }

    #[test]
    fn idmap_and_ridmap() {
        assert_eq!(p(&["rbind", "idmap"]).idmap, Some(false));
        assert_eq!(p(&["rbind", "ridmap"]).idmap, Some(true));
        assert_eq!(p(&["rbind"]).idmap, None);
    }

    #[test]
    fn unsupported_options_are_errors() {
        assert!(parse(&[String::new()]).is_err());
    }
}
