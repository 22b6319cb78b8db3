//! cgroupsPath: validation, and where it lands in each hierarchy.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use super::layout::{own_in, Layout, OwnCgroup};
use super::{CgroupError, Placement, Result};

/// The cgroupsPath to use: `None` or empty gives `/hezi/<id>`; otherwise the path with `.` removed and
/// `..` resolved, absolute or relative as given. `..` above the start, the root itself and the
/// systemd driver's `slice:prefix:name` form are refused.
pub(crate) fn validate(cgroups_path: Option<&Path>, id: &str) -> Result<PathBuf> {
    // An empty cgroupsPath is no cgroupsPath, as in runc.
    let Some(p) = cgroups_path.filter(|p| !p.as_os_str().is_empty()) else {
        return Ok(Path::new("/hezi").join(id));
    };
    let shown = p.display();
    let s = p
        .to_str()
        .ok_or_else(|| CgroupError::Invalid(format!("cgroupsPath {shown} is not UTF-8")))?;
    // The systemd form is never absolute; `/a:b:c` is a (strange but legal) directory name.
    if !p.is_absolute() && s.split(':').count() == 3 {
        return Err(CgroupError::Invalid(format!(
            "cgroupsPath {s:?} is in the systemd driver's slice:prefix:name form; hezi's cgroupfs driver \
             takes a path such as /hezi/<id>; pass --systemd-cgroup for the systemd driver"
        )));
    }
    let mut out = PathBuf::new();
    let absolute = p.is_absolute();
    if absolute {
        out.push("/");
    }
    for c in p.components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir => {
                if depth(&out) == 0 {
                    return Err(CgroupError::Invalid(format!(
                        "cgroupsPath {s:?} climbs above its root with .."
                    )));
                }
                out.pop();
            }
            Component::Normal(n) => out.push(n),
            Component::Prefix(_) => unreachable!("no path prefixes on Linux"),
        }
    }
    if depth(&out) == 0 {
        return Err(CgroupError::Invalid(format!(
            "cgroupsPath {s:?} names the root cgroup, which a container cannot own"
        )));
    }
    Ok(out)
}

/// The number of named components of `p`.
pub(crate) fn depth(p: &Path) -> usize {
    p.components().filter(|c| matches!(c, Component::Normal(_))).count()
}

/// The directories of `path` (from [`validate`]) in every hierarchy of `layout`, with how many of
/// their leading components `exists` (given the full path) already.
pub(crate) fn place(
    layout: &Layout,
    own: &[OwnCgroup],
    path: &Path,
    exists: impl Fn(&Path) -> bool,
) -> Result<BTreeMap<PathBuf, Placement>> {
    let mut out = BTreeMap::new();
    for (h, is_v2) in layout.hierarchies() {
        let dir = if path.is_absolute() {
            path.to_path_buf()
        } else {
            let own = own_in(h, own).ok_or_else(|| {
                CgroupError::Invalid(format!(
                    "relative cgroupsPath {}: /proc/self/cgroup does not list the hierarchy at {}",
                    path.display(),
                    h.mount.display()
                ))
            })?;
            // On v2 our own cgroup has processes (us), so it cannot delegate controllers.
            let base = if is_v2 {
                own.parent().map(Path::to_path_buf).unwrap_or(own)
            } else {
                own
            };
            base.join(path)
        };
        let mut existed = 0;
        let mut cur = h.mount.clone();
        for c in dir.components() {
            if let Component::Normal(n) = c {
                cur.push(n);
                if !exists(&cur) {
                    break;
                }
                existed += 1;
            }
        }
        out.insert(h.mount.clone(), Placement { dir, existed });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroups::layout::{parse_proc_cgroup, Hierarchy};

    fn v(p: &str) -> Result<PathBuf> {
        validate(Some(Path::new(p)), "c1")
    }

    #[test]
    fn default_and_cleaned_paths() {
        assert_eq!(validate(None, "c1").unwrap(), Path::new("/hezi/c1"));
        assert_eq!(v("").unwrap(), Path::new("/hezi/c1"));
        assert_eq!(v("/foo/bar").unwrap(), Path::new("/foo/bar"));
        assert_eq!(v("/foo/./bar/../baz/").unwrap(), Path::new("/foo/baz"));
        assert_eq!(v("foo/bar").unwrap(), Path::new("foo/bar"));
        assert!(!v("foo/bar").unwrap().is_absolute());
    }

    #[test]
    fn refuses_escapes_root_and_systemd_form() {
        for bad in ["/../etc", "/a/../../b", "..", "a/../..", "/", ".", "/a/.."] {
            assert!(v(bad).is_err(), "{bad} accepted");
        }
        let e = v("system.slice:hezi:c1").unwrap_err().to_string();
        assert!(e.contains("systemd"), "{e}");
        // A colon alone is a legal cgroup name character.
        assert!(v("/a:b").is_ok());
        assert!(v("/a:b:c").is_ok());
    }

    fn hybrid() -> Layout {
        let h = |m: &str, c: &[&str]| Hierarchy {
            mount: m.into(),
            root: "/".into(),
            controllers: c.iter().map(|s| s.to_string()).collect(),
        };
        Layout::Legacy {
            v1: vec![h("/cg/memory", &["memory"]), h("/cg/cpu", &["cpu"])],
            unified: Some(h("/cg/unified", &[])),
        }
    }

    #[test]
    fn absolute_path_same_everywhere_and_records_what_existed() {
        let own = parse_proc_cgroup("2:memory:/mine\n1:cpu:/\n0::/a/b\n");
        let exists = |p: &Path| p == Path::new("/cg/memory/hezi") || p.ends_with("unified/hezi");
        let m = place(&hybrid(), &own, Path::new("/hezi/c1"), exists).unwrap();
        assert_eq!(m.len(), 3);
        let mem = &m[Path::new("/cg/memory")];
        assert_eq!((mem.dir.as_path(), mem.existed), (Path::new("/hezi/c1"), 1));
        assert_eq!(m[Path::new("/cg/cpu")].existed, 0);
        assert_eq!(m[Path::new("/cg/unified")].existed, 1);
    }

    #[test]
    fn relative_path_below_own_cgroup_v2_below_its_parent() {
        let own = parse_proc_cgroup("2:memory:/mine\n1:cpu:/\n0::/a/b\n");
        let m = place(&hybrid(), &own, Path::new("x/y"), |p| p.ends_with("mine")).unwrap();
        assert_eq!(m[Path::new("/cg/memory")].dir, Path::new("/mine/x/y"));
        assert_eq!(m[Path::new("/cg/memory")].existed, 1);
        assert_eq!(m[Path::new("/cg/cpu")].dir, Path::new("/x/y"));
        assert_eq!(m[Path::new("/cg/unified")].dir, Path::new("/a/x/y"));
        // A hierarchy /proc/self/cgroup does not list.
        assert!(place(&hybrid(), &own[..1], Path::new("x"), |_| false).is_err());
    }
}
