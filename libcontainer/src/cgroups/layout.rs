//! Which cgroup hierarchies this host has, from /proc/self/mountinfo and the statfs magic of
//! /sys/fs/cgroup, and where hezi itself sits in them (/proc/self/cgroup).

use std::path::{Path, PathBuf};

use nix::sys::statfs::{statfs, CGROUP2_SUPER_MAGIC};
use serde::{Deserialize, Serialize};

use super::{CgroupError, Result};

/// The conventional place of the cgroup hierarchies.
pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// One mounted hierarchy.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    /// Where it is mounted.
    pub mount: PathBuf,
    /// Which cgroup of the hierarchy the mount shows (`/` unless bind-mounted from inside).
    pub root: PathBuf,
    /// v1: its controllers, and `name=…` for a named hierarchy. Empty for cgroup2.
    pub controllers: Vec<String>,
}

impl Hierarchy {
    pub fn has(&self, controller: &str) -> bool {
        self.controllers.iter().any(|c| c == controller)
    }
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    /// Pure cgroup v2.
    Unified(Hierarchy),
    /// cgroup v1 controllers, with (hybrid) or without a cgroup2 mount beside them.
    Legacy {
        v1: Vec<Hierarchy>,
        unified: Option<Hierarchy>,
    },
}

impl Layout {
    /// The layout as this process's mount namespace shows it now. /proc/self/mountinfo is
    /// rendered anew on every read, one line per mount of the host: read it once per container
    /// (CgroupConfig::layout keeps the answer).
    pub fn detect() -> Result<Layout> {
        let mountinfo = Path::new("/proc/self/mountinfo");
        let text = std::fs::read_to_string(mountinfo).map_err(|e| CgroupError::io("read", mountinfo, &e))?;
        let root_is_v2 = statfs(CGROUP_ROOT).is_ok_and(|s| s.filesystem_type() == CGROUP2_SUPER_MAGIC);
        from_mountinfo(&text, root_is_v2)
    }

    /// Every hierarchy, v1 ones first, and whether it is cgroup2.
    pub fn hierarchies(&self) -> Vec<(&Hierarchy, bool)> {
        match self {
            Layout::Unified(h) => vec![(h, true)],
            Layout::Legacy { v1, unified } => v1
                .iter()
                .map(|h| (h, false))
                .chain(unified.iter().map(|h| (h, true)))
                .collect(),
        }
    }
}

/// Mount options of a cgroup v1 mount that are not controllers.
const NOT_CONTROLLERS: &[&str] = &[
    "rw",
    "ro",
    "noprefix",
    "clone_children",
    "xattr",
    "cpuset_v2_mode",
    "favordynmods",
    "nofavordynmods",
];

/// The layout described by a mountinfo text. `root_is_v2`: /sys/fs/cgroup is itself cgroup2.
pub(crate) fn from_mountinfo(text: &str, root_is_v2: bool) -> Result<Layout> {
    let mut v1: Vec<Hierarchy> = Vec::new();
    let mut v2: Vec<Hierarchy> = Vec::new();
    for line in text.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let left: Vec<&str> = left.split(' ').collect();
        let right: Vec<&str> = right.split(' ').collect();
        if left.len() < 5 || right.len() < 3 {
            continue;
        }
        let root = PathBuf::from(crate::procfs::unescape(left[3]));
        let mount = PathBuf::from(crate::procfs::unescape(left[4]));
        match right[0] {
            "cgroup2" => v2.push(Hierarchy {
                mount,
                root,
                controllers: Vec::new(),
            }),
            "cgroup" => {
                let mut controllers: Vec<String> = right[2]
                    .split(',')
                    .filter(|o| !NOT_CONTROLLERS.contains(o) && !o.starts_with("release_agent="))
                    .map(str::to_string)
                    .collect();
                controllers.sort();
                // The same hierarchy mounted twice: the first mount serves.
                if !controllers.is_empty() && !v1.iter().any(|h| h.controllers == controllers) {
                    v1.push(Hierarchy {
                        mount,
                        root,
                        controllers,
                    });
                }
            }
            _ => {}
        }
    }
    let root = Path::new(CGROUP_ROOT);
    if root_is_v2 {
        if let Some(h) = v2.iter().find(|h| h.mount == root) {
            return Ok(Layout::Unified(h.clone()));
        }
    }
    if !v1.is_empty() {
        // Hybrid: prefer the conventional /sys/fs/cgroup/unified.
        let unified = v2
            .iter()
            .find(|h| h.mount == root.join("unified"))
            .or_else(|| v2.first())
            .cloned();
        return Ok(Layout::Legacy { v1, unified });
    }
    match v2.into_iter().next() {
        Some(h) => Ok(Layout::Unified(h)),
        None => Err(CgroupError::Unsupported("no cgroup hierarchy is mounted".into())),
    }
}

/// One line of /proc/self/cgroup: the controllers (sorted; empty for v2) and the cgroup path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnCgroup {
    pub controllers: Vec<String>,
    pub path: PathBuf,
}

pub(crate) fn own_cgroups() -> Result<Vec<OwnCgroup>> {
    let p = Path::new("/proc/self/cgroup");
    let text = std::fs::read_to_string(p).map_err(|e| CgroupError::io("read", p, &e))?;
    Ok(parse_proc_cgroup(&text))
}

pub(crate) fn parse_proc_cgroup(text: &str) -> Vec<OwnCgroup> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.splitn(3, ':');
            let _id = it.next()?;
            let ctl = it.next()?;
            let path = it.next()?;
            let mut controllers: Vec<String> = ctl.split(',').filter(|c| !c.is_empty()).map(String::from).collect();
            controllers.sort();
            Some(OwnCgroup {
                controllers,
                path: PathBuf::from(path),
            })
        })
        .collect()
}

/// hezi's own cgroup in hierarchy `h`, relative to what the mount shows, if listed.
pub(crate) fn own_in(h: &Hierarchy, own: &[OwnCgroup]) -> Option<PathBuf> {
    let line = own.iter().find(|o| o.controllers == h.controllers)?;
    let inner = match line.path.strip_prefix(&h.root) {
        Ok(rest) => Path::new("/").join(rest),
        Err(_) => line.path.clone(),
    };
    Some(inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    // This machine's mountinfo: hybrid, hugetlb only on the unified mount.
    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
50 23 0:32 / /mnt/again\\040here rw,relatime - cgroup cgroup rw,memory
";

    #[test]
    fn hybrid_layout() {
        let Layout::Legacy { v1, unified } = from_mountinfo(HYBRID, false).unwrap() else {
            panic!("not legacy")
        };
        let names: Vec<_> = v1.iter().map(|h| h.controllers.join(",")).collect();
        assert_eq!(names, ["cpu", "cpuacct", "memory", "freezer", "name=systemd"]);
        assert_eq!(unified.unwrap().mount, Path::new("/sys/fs/cgroup/unified"));
    }

    #[test]
    fn pure_v2_layout_and_co_mounted_v1() {
        let v2 = "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n";
        assert!(
            matches!(from_mountinfo(v2, true).unwrap(), Layout::Unified(h) if h.mount == Path::new("/sys/fs/cgroup"))
        );
        let v1 = "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpuacct,cpu\n";
        let Layout::Legacy { v1, unified } = from_mountinfo(v1, false).unwrap() else {
            panic!()
        };
        assert_eq!(v1[0].controllers, ["cpu", "cpuacct"]);
        assert!(unified.is_none());
        assert!(from_mountinfo("", false).is_err());
    }

    #[test]
    fn own_cgroup_lines() {
        let own =
            parse_proc_cgroup("4:memory:/process_api/1e6\n9:name=systemd:/\n1:cpu,cpuacct:/a\n0::/user.slice/x\n");
        let mem = Hierarchy {
            mount: "/sys/fs/cgroup/memory".into(),
            root: "/".into(),
            controllers: vec!["memory".into()],
        };
        assert_eq!(own_in(&mem, &own).unwrap(), Path::new("/process_api/1e6"));
        let v2 = Hierarchy {
            mount: "/sys/fs/cgroup".into(),
            root: "/user.slice".into(),
            controllers: vec![],
        };
        assert_eq!(own_in(&v2, &own).unwrap(), Path::new("/x"));
        let cpu = Hierarchy {
            mount: "/c".into(),
            root: "/".into(),
            controllers: vec!["cpu".into(), "cpuacct".into()],
        };
        assert_eq!(own_in(&cpu, &own).unwrap(), Path::new("/a"));
    }
}
