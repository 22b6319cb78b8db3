//! linux.intelRdt: the container in a resctrl group (Intel RDT / AMD PQoS cache and memory
//! bandwidth allocation), as runc does it.
//!
//! - The group is `closID` under the resctrl mount, or the container's id. A group that exists
//!   already (a class of service shared by several containers) is joined; when the spec also
//!   gives `l3CacheSchema`/`memBwSchema` they must match what the group has, since rewriting it
//!   would change the other members' limits. A group hezi made is removed at delete.
//! - Its `schemata` gets `l3CacheSchema`, `memBwSchema`, then each line of `schemata` (which the
//!   spec says goes last, so it wins where they overlap).
//! - `enableMonitoring` makes a monitoring group `mon_groups/<id>` inside it for the container.
//!
//! Where resctrl is not mounted the create fails, naming the mount it needs: silently running
//! without the limits would be worse.

use std::io::Write;
use std::path::{Path, PathBuf};

use nix::unistd::Pid;
use oci_spec::runtime::{LinuxIntelRdt, Spec};

use crate::error::{Error, Result};
pub use crate::state::RdtGroup;

/// Where resctrl is mounted, from /proc/self/mountinfo.
pub fn mount_point() -> Result<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").map_err(|e| Error::io("read /proc/self/mountinfo", e))?;
    mount_point_in(&text).ok_or_else(|| {
        Error::InvalidSpec(
            "linux.intelRdt: resctrl is not mounted on this host (mount -t resctrl resctrl /sys/fs/resctrl, \
             on a CPU and kernel with RDT)"
                .into(),
        )
    })
}

fn mount_point_in(mountinfo: &str) -> Option<PathBuf> {
    mountinfo.lines().find_map(|l| {
        let (left, right) = l.split_once(" - ")?;
        if right.split_whitespace().next()? != "resctrl" {
            return None;
        }
        left.split_whitespace().nth(4).map(PathBuf::from)
    })
}

/// What create does for linux.intelRdt, worked out before anything is made.
#[derive(Debug)]
pub struct Plan {
    pub group: RdtGroup,
    /// The lines for the group's schemata file; empty when the spec gives none.
    lines: Vec<String>,
}

/// The plan for `spec`'s intelRdt, if it has one; an error where resctrl is not mounted.
pub fn plan(spec: &Spec, id: &str) -> Result<Option<Plan>> {
    match spec.linux().as_ref().and_then(|l| l.intel_rdt().as_ref()) {
        Some(rdt) => plan_at(&mount_point()?, rdt, id).map(Some),
        None => Ok(None),
    }
}

/// The schemata lines the spec asks for, in the order they are written.
pub fn schemata_lines(rdt: &LinuxIntelRdt) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let given = [rdt.l3_cache_schema().as_deref(), rdt.mem_bw_schema().as_deref()];
    let more = rdt.schemata().iter().flatten().map(String::as_str);
    for text in given.into_iter().flatten().chain(more) {
        // A field may hold several lines; blank ones mean nothing to the kernel.
        lines.extend(text.lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from));
    }
    lines
}

pub fn plan_at(root: &Path, rdt: &LinuxIntelRdt, id: &str) -> Result<Plan> {
    let bad = |why: String| Error::InvalidSpec(format!("linux.intelRdt: {why}"));
    let name = rdt.clos_id().as_deref().unwrap_or(id);
    if name.is_empty() || name == "." || name == ".." || name.contains('/') {
        return Err(bad(format!("closID {name:?} is not a directory name")));
    }
    let dir = root.join(name);
    let exists = dir.is_dir();
    let lines = schemata_lines(rdt);
    if exists && rdt.clos_id().is_some() && !lines.is_empty() {
        let have = read_schemata(&dir)?;
        for want in &lines {
            if !have.iter().any(|h| same_line(h, want)) {
                return Err(bad(format!(
                    "closID {name} exists with schemata {have:?}, which does not have {want:?}"
                )));
            }
        }
    }
    let monitor = rdt
        .enable_monitoring()
        .unwrap_or(false)
        .then(|| dir.join("mon_groups").join(id));
    Ok(Plan {
        group: RdtGroup {
            dir,
            created: !exists,
            monitor,
        },
        lines: if exists { Vec::new() } else { lines },
    })
}

fn read_schemata(dir: &Path) -> Result<Vec<String>> {
    let path = dir.join("schemata");
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(format!("read {}", path.display()), e))?;
    Ok(text.lines().map(|l| l.trim().to_string()).collect())
}

/// The kernel prints schemata lines padded ("    L3:0=ff;1=ff"): compare without blanks.
fn same_line(a: &str, b: &str) -> bool {
    let squash = |s: &str| s.chars().filter(|c| !c.is_whitespace()).collect::<String>();
    squash(a) == squash(b)
}

impl Plan {
    /// Make the group (unless it exists) with its schemata, and the monitoring group.
    pub fn make(&self) -> Result<()> {
        let g = &self.group;
        if g.created {
            std::fs::create_dir(&g.dir).map_err(|e| Error::io(format!("create resctrl group {}", g.dir.display()), e))?;
        }
        if !self.lines.is_empty() {
            // One write, as runc: the kernel applies the lines in order, and when it refuses
            // one it says why in info/last_cmd_status.
            let text = self.lines.join("\n") + "\n";
            if let Err(e) = write(&g.dir.join("schemata"), &text) {
                let status = g.dir.parent().map(|root| root.join("info/last_cmd_status"));
                return Err(match status.and_then(|p| std::fs::read_to_string(p).ok()) {
                    Some(why) => Error::InvalidSpec(format!("linux.intelRdt: {e}: {}", why.trim())),
                    None => e,
                });
            }
        }
        if let Some(m) = &g.monitor {
            std::fs::create_dir(m).map_err(|e| Error::io(format!("create resctrl monitoring group {}", m.display()), e))?;
        }
        Ok(())
    }
}

fn write(path: &Path, text: &str) -> Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .map_err(|e| Error::io(format!("open {}", path.display()), e))?;
    f.write_all(text.as_bytes())
        .map_err(|e| Error::io(format!("write {text:?} to {}", path.display()), e))
}

/// Put the init in its group (and monitoring group): its children follow it.
pub fn add(g: &RdtGroup, pid: Pid) -> Result<()> {
    write(&g.dir.join("tasks"), &pid.to_string())?;
    if let Some(m) = &g.monitor {
        // A monitoring group takes only tasks of its parent group: the line above comes first.
        write(&m.join("tasks"), &pid.to_string())?;
    }
    Ok(())
}

/// Remove what create made (rmdir hands the group's tasks back to the default group).
pub fn remove(g: &RdtGroup) -> Result<()> {
    let rmdir = |d: &Path| match std::fs::remove_dir(d) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(Error::io(format!("remove resctrl group {}", d.display()), e))
        }
        _ => Ok(()),
    };
    if let Some(m) = &g.monitor {
        rmdir(m)?;
    }
    if g.created {
        rmdir(&g.dir)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A directory laid out as a resctrl mount: the default group's files, and one class of
    /// service ("shared") made earlier by someone else.
    fn resctrl() -> PathBuf {
        let root = std::env::temp_dir().join(format!("hezi-resctrl-{}-{}", std::process::id(), rand()));
        std::fs::create_dir_all(root.join("info")).unwrap();
        std::fs::create_dir_all(root.join("mon_groups")).unwrap();
        std::fs::write(root.join("schemata"), "    L3:0=fff;1=fff\n    MB:0=100;1=100\n").unwrap();
        std::fs::write(root.join("tasks"), "1\n").unwrap();
        let shared = root.join("shared");
        std::fs::create_dir_all(shared.join("mon_groups")).unwrap();
        std::fs::write(shared.join("schemata"), "    L3:0=00f;1=00f\n    MB:0=50;1=50\n").unwrap();
        std::fs::write(shared.join("tasks"), "").unwrap();
        root
    }

    fn rand() -> u64 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
    }

    fn rdt(json: serde_json::Value) -> LinuxIntelRdt {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn a_new_group_gets_the_schemata_in_the_spec_s_order() {
        let root = resctrl();
        let r = rdt(serde_json::json!({
            "l3CacheSchema": "L3:0=f0;1=f0",
            "memBwSchema": "MB:0=20;1=20",
            "schemata": ["L3:0=ff", "L2:0=3"]
        }));
        let plan = plan_at(&root, &r, "ctr1").unwrap();
        assert!(plan.group.created);
        assert_eq!(plan.group.dir, root.join("ctr1"));
        plan.make().unwrap();
        // Every line, in the spec's order: `schemata` last, so it wins where it overlaps.
        assert_eq!(
            std::fs::read_to_string(root.join("ctr1/schemata")).unwrap(),
            "L3:0=f0;1=f0\nMB:0=20;1=20\nL3:0=ff\nL2:0=3\n"
        );
        add(&plan.group, Pid::from_raw(4242)).unwrap();
        assert_eq!(std::fs::read_to_string(root.join("ctr1/tasks")).unwrap(), "4242");
        // remove takes out directories only (resctrl's rmdir): empty it as the kernel would.
        for f in ["schemata", "tasks"] {
            std::fs::remove_file(root.join("ctr1").join(f)).unwrap();
        }
        remove(&plan.group).unwrap();
        assert!(!root.join("ctr1").exists());
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn an_existing_clos_is_joined_and_must_match() {
        let root = resctrl();
        let same = rdt(serde_json::json!({
            "closID": "shared", "l3CacheSchema": "L3:0=00f;1=00f", "enableMonitoring": true
        }));
        let plan = plan_at(&root, &same, "ctr2").unwrap();
        assert!(!plan.group.created);
        plan.make().unwrap();
        // Joined, not rewritten: the other members keep their limits.
        let before = "    L3:0=00f;1=00f\n    MB:0=50;1=50\n";
        assert_eq!(std::fs::read_to_string(root.join("shared/schemata")).unwrap(), before);
        // The container's own monitoring group, and the init in both groups.
        assert!(root.join("shared/mon_groups/ctr2").is_dir());
        add(&plan.group, Pid::from_raw(4243)).unwrap();
        assert_eq!(std::fs::read_to_string(root.join("shared/tasks")).unwrap(), "4243");
        assert_eq!(std::fs::read_to_string(root.join("shared/mon_groups/ctr2/tasks")).unwrap(), "4243");
        std::fs::remove_file(root.join("shared/mon_groups/ctr2/tasks")).unwrap();
        remove(&plan.group).unwrap();
        assert!(!root.join("shared/mon_groups/ctr2").exists());
        assert!(root.join("shared").is_dir(), "a group hezi did not make stays");

        let other = rdt(serde_json::json!({ "closID": "shared", "memBwSchema": "MB:0=70;1=70" }));
        let err = plan_at(&root, &other, "ctr3").unwrap_err().to_string();
        assert!(err.contains("closID shared exists") && err.contains("MB:0=70;1=70"), "{err}");

        for bad in ["..", "a/b", ""] {
            let err = plan_at(&root, &rdt(serde_json::json!({ "closID": bad })), "c").unwrap_err().to_string();
            assert!(err.contains("not a directory name"), "{bad}: {err}");
        }
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn the_mount_is_found_in_mountinfo() {
        let info = "22 1 0:21 / /proc rw - proc proc rw\n\
                    40 22 0:35 / /sys/fs/resctrl rw,relatime - resctrl resctrl rw,mba_MBps\n";
        assert_eq!(mount_point_in(info), Some(PathBuf::from("/sys/fs/resctrl")));
        assert_eq!(mount_point_in("22 1 0:21 / /proc rw - proc proc rw\n"), None);
    }
}
