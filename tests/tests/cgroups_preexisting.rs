//! A cgroup that exists already at the container's cgroupsPath, frozen or holding processes,
//! is refused at create with runc's words, and the refused create leaves nothing behind: no
//! state, no directory in any other hierarchy, the pre-existing cgroup as it was.
//!
//! Before the frozen check, `create` never returned: the init stopped in the frozen cgroup
//! before exec. The tests wait for `create` with a deadline so that shows as a failure.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hezi_e2e::{require, unique_id, Bundle, Hezi};

const CG: &str = "/sys/fs/cgroup";

/// The hierarchy that holds `v1_controller` on a v1/hybrid host, or the v2 root.
fn hierarchy(v1_controller: &str) -> PathBuf {
    let v1 = Path::new(CG).join(v1_controller);
    if v1.join("cgroup.procs").exists() {
        v1
    } else {
        PathBuf::from(CG)
    }
}

/// A cgroup made by the test before hezi runs; removed (thawed, emptied) when dropped.
struct PreExisting {
    dir: PathBuf,
    child: Option<Child>,
}

impl PreExisting {
    fn new(hierarchy: &Path, name: &str) -> PreExisting {
        let dir = hierarchy.join(name);
        std::fs::create_dir(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
        PreExisting { dir, child: None }
    }

    fn read(&self, file: &str) -> String {
        let p = self.dir.join(file);
        std::fs::read_to_string(&p)
            .unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
            .trim()
            .to_string()
    }

    fn write(&self, file: &str, value: &str) {
        let p = self.dir.join(file);
        std::fs::write(&p, value).unwrap_or_else(|e| panic!("write {value} to {}: {e}", p.display()));
    }

    /// Freeze it: freezer.state on v1, cgroup.freeze on v2.
    fn freeze(&self) {
        if self.dir.join("freezer.state").exists() {
            self.write("freezer.state", "FROZEN");
        } else {
            self.write("cgroup.freeze", "1");
        }
    }

    fn frozen(&self) -> bool {
        if self.dir.join("freezer.state").exists() {
            self.read("freezer.state") == "FROZEN"
        } else {
            self.read("cgroup.freeze") == "1"
        }
    }

    /// Put a `sleep` in it; returns its pid.
    fn occupy(&mut self) -> u32 {
        let child = Command::new("sleep").arg("3011").spawn().expect("spawn sleep");
        let pid = child.id();
        self.child = Some(child);
        self.write("cgroup.procs", &pid.to_string());
        pid
    }
}

impl Drop for PreExisting {
    fn drop(&mut self) {
        if self.dir.join("freezer.state").exists() {
            let _ = std::fs::write(self.dir.join("freezer.state"), "THAWED");
        } else {
            let _ = std::fs::write(self.dir.join("cgroup.freeze"), "0");
        }
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// `create` a bundle whose cgroupsPath is `/<name>`; it must fail within 30 s. Its stderr.
fn refused_create(h: &Hezi, name: &str, id: &str) -> String {
    let mut b = Bundle::busybox(&["sleep", "3012"]);
    b.linux()["cgroupsPath"] = format!("/{name}").into();
    b.write();
    let err_path = h.root().join(format!("{id}.create.err"));
    let mut child = h
        .command(&["create", "--bundle", b.path().to_str().unwrap(), id])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .expect("spawn hezi create");
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let _ = h.cmd(&["delete", "--force", id]);
            panic!("create did not return within 30 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let err = std::fs::read_to_string(&err_path).unwrap_or_default();
    let _ = std::fs::remove_file(&err_path);
    assert!(!status.success(), "create into a pre-existing cgroup succeeded: {err}");
    assert!(!h.ids().contains(&id.to_string()), "{id} listed after a refused create");
    assert!(!h.root().join(id).exists(), "state of {id} left");
    err
}

/// No directory `name` in any hierarchy but `keep`.
fn assert_no_other_dirs(name: &str, keep: &Path) {
    let mut roots = vec![PathBuf::from(CG)];
    roots.extend(std::fs::read_dir(CG).unwrap().flatten().map(|e| e.path()));
    for r in roots {
        let d = r.join(name);
        if d != keep {
            assert!(!d.exists(), "the refused create left {}", d.display());
        }
    }
}

#[test]
fn a_frozen_cgroup_is_refused_at_create() {
    require!();
    let h = Hezi::new();
    let id = unique_id("cgfrozen");
    let name = format!("hezi-pre-{id}");
    let pre = PreExisting::new(&hierarchy("freezer"), &name);
    pre.freeze();
    let err = refused_create(&h, &name, &id);
    assert!(err.contains("container's cgroup unexpectedly frozen"), "{err}");
    assert!(err.contains(&name), "the error should name the cgroup: {err}");
    assert_no_other_dirs(&name, &pre.dir);
    assert!(pre.frozen(), "the pre-existing cgroup was thawed");
}

#[test]
fn a_cgroup_with_processes_is_refused_at_create() {
    require!();
    let h = Hezi::new();
    let id = unique_id("cgbusy");
    let name = format!("hezi-pre-{id}");
    let mut pre = PreExisting::new(&hierarchy("pids"), &name);
    let pid = pre.occupy();
    let err = refused_create(&h, &name, &id);
    assert!(
        err.contains("container's cgroup is not empty: 1 process(es) found"),
        "{err}"
    );
    assert_no_other_dirs(&name, &pre.dir);
    assert_eq!(
        pre.read("cgroup.procs"),
        pid.to_string(),
        "the pre-existing cgroup changed"
    );
}
