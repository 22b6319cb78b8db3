//! Where one exec'd process goes: the container's cgroup, or sub-cgroups of it that
//! `exec --cgroup [controller[,controller]:]PATH` names (runc 1.1+ syntax and rules).
//!
//! A path without a controller applies to every hierarchy, and may then be the only one given;
//! with controllers (cgroup v1), each controller at most once, and the hierarchies not named keep
//! the container's own cgroup. Paths are relative to the container's cgroup and may not leave it
//! (a leading `/` is read as relative, as runc joins it). A sub-cgroup must exist already: hezi
//! makes none. On a hybrid host the process joins the unified hierarchy too, as runc's does: the
//! path without a controller there as well, the container's own unified cgroup otherwise.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

use super::fs;
use super::layout::Hierarchy;
use super::{CgroupError, JoinFds, Result};

/// Parsed `--cgroup` arguments; empty means the container's own cgroup everywhere.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SubCgroups {
    /// For every hierarchy (no controller prefix).
    all: Option<PathBuf>,
    /// Per v1 controller (`pids`, `name=systemd`, …).
    by_controller: BTreeMap<String, PathBuf>,
}

impl SubCgroups {
    /// Read `--cgroup` values as runc does, refusing paths that leave the container's cgroup.
    pub fn parse(args: &[String]) -> Result<SubCgroups> {
        let mut out = SubCgroups::default();
        for arg in args {
            let bad = |why: &str| CgroupError::Invalid(format!("invalid --cgroup argument {arg:?}: {why}"));
            match arg.split_once(':') {
                Some((controllers, path)) => {
                    let path = relative_inside(path).map_err(|why| bad(&why))?;
                    for c in controllers.split(',') {
                        if c.is_empty() {
                            return Err(bad("empty controller name"));
                        }
                        if out.by_controller.insert(c.to_string(), path.clone()).is_some() {
                            return Err(bad(&format!("controller {c} is given more than once")));
                        }
                    }
                }
                None if args.len() == 1 => out.all = Some(relative_inside(arg).map_err(|why| bad(&why))?),
                None => return Err(bad("a path without a controller: prefix must be the only --cgroup")),
            }
        }
        Ok(out)
    }

    pub fn is_empty(&self) -> bool {
        self.all.is_none() && self.by_controller.is_empty()
    }

    /// The sub-cgroup for v1 hierarchy `h` (empty: the container's own). Two controllers of one
    /// hierarchy (`cpu,cpuacct` mounted together) given different paths are refused.
    fn for_v1(&self, h: &Hierarchy) -> Result<&Path> {
        let mut named = self.by_controller.iter().filter(|(c, _)| h.has(c));
        let Some((first, path)) = named.next() else {
            return Ok(self.all.as_deref().unwrap_or(Path::new("")));
        };
        if let Some((other, _)) = named.find(|(_, p)| *p != path) {
            return Err(CgroupError::Invalid(format!(
                "--cgroup gives controllers {first} and {other}, mounted together at {}, different paths",
                h.mount.display()
            )));
        }
        Ok(path)
    }

    /// Every controller named must be one of the host's v1 hierarchies.
    fn check_controllers(&self, v1: &[Hierarchy]) -> Result<()> {
        match self.by_controller.keys().find(|c| !v1.iter().any(|h| h.has(c))) {
            Some(c) => Err(CgroupError::Invalid(format!(
                "--cgroup names controller {c}, which this host has no cgroup v1 hierarchy for"
            ))),
            None => Ok(()),
        }
    }
}

/// `path` as a relative path that stays inside the directory it is joined to; the reason why not.
fn relative_inside(path: &str) -> std::result::Result<PathBuf, String> {
    let mut out = PathBuf::new();
    for c in Path::new(path).components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir if out.pop() => {}
            Component::ParentDir => return Err(format!("{path} leads outside the container's cgroup")),
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
        }
    }
    Ok(out)
}

/// The directories one process joins, each checked to exist.
#[derive(Debug)]
pub struct TaskPlacement {
    /// v1 hierarchies' directories.
    v1: Vec<PathBuf>,
    /// The v2 directory: pure v2, or a hybrid host's unified hierarchy.
    v2: Option<PathBuf>,
    /// The manager allows CLONE_INTO_CGROUP into the v2 directory.
    clone_into: bool,
}

impl TaskPlacement {
    /// The v1 hierarchies' directories (the container's, or `sub`'s below them), then on a
    /// hybrid host the unified one (no controller names it: only a path for all moves it).
    pub(crate) fn v1(v1: &[(Hierarchy, fs::CgDir)], unified: Option<&Path>, sub: &SubCgroups) -> Result<Self> {
        sub.check_controllers(&v1.iter().map(|(h, _)| h.clone()).collect::<Vec<_>>())?;
        let mut dirs = Vec::new();
        for (h, d) in v1 {
            dirs.push(existing(&d.path, sub.for_v1(h)?)?);
        }
        let v2 = unified
            .map(|u| existing(u, sub.all.as_deref().unwrap_or(Path::new(""))))
            .transpose()?;
        Ok(TaskPlacement {
            v1: dirs,
            v2,
            clone_into: true,
        })
    }

    /// The v2 directory (the container's, or `sub`'s below it). One hierarchy: a controller
    /// prefix names nothing there and is refused rather than ignored.
    pub(crate) fn v2(dir: &Path, sub: &SubCgroups, clone_into: bool) -> Result<Self> {
        if let Some(c) = sub.by_controller.keys().next() {
            return Err(CgroupError::Invalid(format!(
                "--cgroup {c}:…: cgroup v2 has one hierarchy; give the sub-cgroup without a controller"
            )));
        }
        Ok(TaskPlacement {
            v1: Vec::new(),
            v2: Some(existing(dir, sub.all.as_deref().unwrap_or(Path::new("")))?),
            clone_into,
        })
    }

    /// What the process needs to join by itself (join.rs): the v2 directory to clone into and
    /// the v1 `tasks` files. None where it must be moved with [`TaskPlacement::add`] instead.
    pub fn join_fds(&self) -> Result<Option<JoinFds>> {
        if !self.clone_into {
            return Ok(None);
        }
        let clone_into = match &self.v2 {
            Some(dir) => Some(
                nix::fcntl::open(
                    dir.as_path(),
                    OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|errno| CgroupError::Io {
                    op: "open".into(),
                    path: dir.clone(),
                    errno,
                })?,
            ),
            None => None,
        };
        let tasks = JoinFds::open_tasks(self.v1.iter().cloned())?;
        Ok(Some(JoinFds { clone_into, tasks }))
    }

    /// Move `pid` into every directory (a migration: see join.rs for its cost).
    pub fn add(&self, pid: i32) -> Result<()> {
        for d in self.v1.iter().chain(&self.v2) {
            fs::write(&d.join("cgroup.procs"), &pid.to_string())?;
        }
        Ok(())
    }
}

/// `base/sub`, which must be an existing directory.
fn existing(base: &Path, sub: &Path) -> Result<PathBuf> {
    let dir = base.join(sub);
    if !dir.is_dir() {
        return Err(CgroupError::Invalid(format!(
            "sub-cgroup {} of the container's cgroup does not exist ({}); make it first",
            sub.display(),
            dir.display()
        )));
    }
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<SubCgroups> {
        SubCgroups::parse(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    fn h(controllers: &[&str]) -> Hierarchy {
        Hierarchy {
            mount: PathBuf::from("/sys/fs/cgroup/x"),
            root: PathBuf::from("/"),
            controllers: controllers.iter().map(|c| c.to_string()).collect(),
        }
    }

    #[test]
    fn runc_syntax() {
        assert!(parse(&[]).unwrap().is_empty());
        let s = parse(&["a/b"]).unwrap();
        assert_eq!(s.for_v1(&h(&["pids"])).unwrap(), Path::new("a/b"));
        let s = parse(&["pids:p", "cpu,memory:/m/./n/../o"]).unwrap();
        assert_eq!(s.for_v1(&h(&["pids"])).unwrap(), Path::new("p"));
        assert_eq!(s.for_v1(&h(&["memory"])).unwrap(), Path::new("m/o"));
        assert_eq!(s.for_v1(&h(&["cpu", "cpuacct"])).unwrap(), Path::new("m/o"));
        assert_eq!(s.for_v1(&h(&["freezer"])).unwrap(), Path::new(""));
        assert!(s.check_controllers(&[h(&["pids"]), h(&["cpu"])]).is_err());
        assert!(s
            .check_controllers(&[h(&["pids"]), h(&["cpu"]), h(&["memory"])])
            .is_ok());
        // Two controllers of one hierarchy with different paths.
        let s = parse(&["cpu:a", "cpuacct:b"]).unwrap();
        assert!(s.for_v1(&h(&["cpu", "cpuacct"])).is_err());
    }

    #[test]
    fn refusals() {
        for (args, says) in [
            (&["../x"][..], "outside"),
            (&["a/../../x"], "outside"),
            (&["pids:../.."], "outside"),
            (&["a", "b"], "only"),
            (&["a", "pids:b"], "only"),
            (&[":a"], "empty controller"),
            (&["pids,:a"], "empty controller"),
            (&["pids:a", "pids:b"], "more than once"),
        ] {
            let e = parse(args).unwrap_err().to_string();
            assert!(e.contains(says), "{args:?}: {e}");
        }
        // Climbing down and up again stays inside.
        assert_eq!(parse(&["a/../b"]).unwrap().all.as_deref(), Some(Path::new("b")));
    }

    #[test]
    fn v2_refuses_controllers_and_missing_dirs() {
        let dir = std::env::temp_dir().join(format!("hezi-sub-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("s")).unwrap();
        let p = TaskPlacement::v2(&dir, &parse(&["s"]).unwrap(), true).unwrap();
        assert_eq!(p.v2, Some(dir.join("s")));
        assert!(TaskPlacement::v2(&dir, &parse(&["pids:s"]).unwrap(), true).is_err());
        let e = TaskPlacement::v2(&dir, &parse(&["t"]).unwrap(), true).unwrap_err();
        assert!(e.to_string().contains("does not exist"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
