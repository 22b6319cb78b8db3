//! Mount option strings (`ro,nosuid,size=64k,rbind,rslave`) to mount(2) flags, propagation and
//! data, with runc's vocabulary.

use nix::mount::MsFlags;

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
        }
    }
}

impl Options {
    /// Flags a bind mount needs a second, remounting call for.
    pub fn bind_remount_flags(&self) -> MsFlags {
        self.flags - (MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT)
    }
}

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
                return Err(format!("mount option {opt} is not supported yet"));
            }
            other => {
                if let Some(p) = propagation(other) {
                    o.propagation |= p;
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
    fn unsupported_options_are_errors() {
        assert!(parse(&["idmap".to_string()]).is_err());
        assert!(parse(&[String::new()]).is_err());
    }
}
