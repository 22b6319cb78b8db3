//! `update -r FILE` and `--cpu-burst` on a running container, read back from the cgroup files:
//! cpu.idle, the CFS burst, and the per-device blkio throttles (and weights where the kernel's
//! scheduler offers them).

use std::path::{Path, PathBuf};

use hezi_e2e::{assert_nothing_left, require, unique_id, Bundle, Hezi};
use serde_json::json;

/// The container's directory for `controller` (v1) or in the v2 root; None on a host where a
/// v1 test cannot run.
fn dir(controller: &str, id: &str) -> PathBuf {
    let v1 = Path::new("/sys/fs/cgroup").join(controller);
    if v1.join("cgroup.procs").exists() {
        v1.join("hezi").join(id)
    } else {
        Path::new("/sys/fs/cgroup/hezi").join(id)
    }
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p)
        .unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
        .trim()
        .to_string()
}

/// The first real block device's major:minor (not a loop or zram device), if any.
fn block_device() -> Option<String> {
    std::fs::read_dir("/sys/block").ok()?.flatten().find_map(|e| {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with("loop") || name.starts_with("zram") || name.starts_with("ram") {
            return None;
        }
        std::fs::read_to_string(e.path().join("dev"))
            .ok()
            .map(|s| s.trim().to_string())
    })
}

#[test]
fn update_resources_file_writes_idle_burst_and_per_device_blkio() {
    require!();
    let h = Hezi::new();
    let b = Bundle::busybox(&["sleep", "3031"]);
    let id = unique_id("cgupdr");
    h.create(&b, &id);
    h.ok(&["start", &id]);
    let cpu = dir("cpu", &id);
    let v1 = cpu.join("cpu.cfs_burst_us").exists();

    let mut blkio = json!({});
    let dev = block_device();
    if let Some(d) = &dev {
        let (major, minor) = d.split_once(':').unwrap();
        let (major, minor): (i64, i64) = (major.parse().unwrap(), minor.parse().unwrap());
        blkio = json!({
            "throttleReadBpsDevice": [{ "major": major, "minor": minor, "rate": 1048576 }],
            "throttleWriteIOPSDevice": [{ "major": major, "minor": minor, "rate": 300 }],
        });
    }
    let file = h.root().join(format!("{id}.resources.json"));
    let r = json!({
        "cpu": { "idle": 1, "quota": 50000, "period": 100000, "burst": 10000 },
        "blockIO": blkio,
    });
    std::fs::write(&file, r.to_string()).unwrap();
    h.ok(&["update", "-r", file.to_str().unwrap(), &id]);

    assert_eq!(read(&cpu.join("cpu.idle")), "1");
    if v1 {
        assert_eq!(read(&cpu.join("cpu.cfs_burst_us")), "10000");
    } else {
        assert_eq!(read(&cpu.join("cpu.max.burst")), "10000");
    }
    if let Some(d) = &dev {
        let bl = dir("blkio", &id);
        if bl.join("blkio.throttle.read_bps_device").exists() {
            assert_eq!(read(&bl.join("blkio.throttle.read_bps_device")), format!("{d} 1048576"));
            assert_eq!(read(&bl.join("blkio.throttle.write_iops_device")), format!("{d} 300"));
        } else {
            let io = dir("io", &id).join("io.max");
            let line = read(&io);
            assert!(line.contains("rbps=1048576") && line.contains("wiops=300"), "{line}");
        }
    }

    // The flag alone; the quota written before stays.
    h.ok(&["update", "--cpu-burst", "20000", &id]);
    if v1 {
        assert_eq!(read(&cpu.join("cpu.cfs_burst_us")), "20000");
        assert_eq!(read(&cpu.join("cpu.cfs_quota_us")), "50000");
    } else {
        assert_eq!(read(&cpu.join("cpu.max.burst")), "20000");
    }
    std::fs::remove_file(&file).unwrap();
    h.ok(&["delete", "--force", &id]);
    assert_nothing_left(&h, &id, &b, Some("sleep 3031"));
}
