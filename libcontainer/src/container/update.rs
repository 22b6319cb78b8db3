//! `update`: change the resources of a live container. As runc, the request is merged into the
//! resources the container has (those of the last `update`, else the bundle's config.json), the
//! result is saved for the next `update`, and the fields `update` may change are written again
//! as a whole, so values that depend on each other (memory and swap, quota and period) are
//! written as a consistent pair even when only one of them was asked for.

use oci_spec::runtime::{LinuxBlockIo, LinuxMemory, LinuxResources, LinuxWeightDeviceBuilder};

use super::manager_of;
use super::{cgroup_err, Runtime, Status};
use crate::error::{Error, Result};
use crate::state::ContainerState;

impl Runtime {
    /// Apply `changes` (only its fields that `update` covers: memory limit, reservation and
    /// swap, all of cpu (idle and burst included), blockIO weight and per-device weights and
    /// throttles, pids, unified) to container `id`.
    pub fn update(&self, id: &str, changes: &LinuxResources) -> Result<()> {
        crate::id::validate(id)?;
        let _lock = self.store().lock(id)?;
        let st = self.store().load(id)?;
        let status = self.status(&st);
        if matches!(status, Status::Stopped | Status::Creating) {
            return Err(Error::WrongState {
                id: id.into(),
                op: "update",
                status: status.to_string(),
            });
        }
        let base = match self.store().load_resources(id)? {
            Some(r) => r,
            None => created_with(&st),
        };
        let merged = merge(&base, changes);
        manager_of(&st)?.update(&updatable(&merged)).map_err(cgroup_err)?;
        self.store().save_resources(id, &merged)
    }
}

/// The resources the container was created with: its bundle's config.json. A bundle that is
/// gone or changed beyond parsing leaves nothing to start from, which only matters for the
/// pairs written together (memory with swap): then the request alone is written.
fn created_with(st: &ContainerState) -> LinuxResources {
    match crate::spec::parse_file(&st.bundle.join("config.json")) {
        Ok(spec) => spec
            .linux()
            .as_ref()
            .and_then(|l| l.resources().clone())
            .unwrap_or_default(),
        Err(e) => {
            tracing::debug!("update: starting from no resources: {e}");
            LinuxResources::default()
        }
    }
}

/// `base` with every field that `update` covers and `ch` sets taken from `ch`.
pub(crate) fn merge(base: &LinuxResources, ch: &LinuxResources) -> LinuxResources {
    let mut out = base.clone();
    if let Some(m) = ch.memory() {
        let mut bm = out.memory().unwrap_or_default();
        for (set, v) in [
            (
                LinuxMemory::set_limit as fn(&mut LinuxMemory, Option<i64>) -> &mut LinuxMemory,
                m.limit(),
            ),
            (LinuxMemory::set_reservation, m.reservation()),
            (LinuxMemory::set_swap, m.swap()),
        ] {
            if v.is_some() {
                set(&mut bm, v);
            }
        }
        // Unlimited memory with the old swap limit would leave memory above memory+swap (v1
        // refuses that): as runc, unlimited memory without a swap value lifts swap too.
        if m.limit() == Some(-1) && m.swap().is_none() {
            bm.set_swap(Some(-1));
        }
        if m.check_before_update().is_some() {
            bm.set_check_before_update(m.check_before_update());
        }
        out.set_memory(Some(bm));
    }
    if let Some(c) = ch.cpu() {
        let mut bc = out.cpu().clone().unwrap_or_default();
        macro_rules! take {
            ($($get:ident => $set:ident),*) => {$(
                if c.$get().is_some() {
                    bc.$set(c.$get().clone());
                }
            )*};
        }
        take!(shares => set_shares, quota => set_quota, burst => set_burst, period => set_period,
            realtime_runtime => set_realtime_runtime, realtime_period => set_realtime_period,
            cpus => set_cpus, mems => set_mems, idle => set_idle);
        out.set_cpu(Some(bc));
    }
    if let Some(b) = ch.block_io() {
        let mut bb = out.block_io().clone().unwrap_or_default();
        if b.weight().is_some() {
            bb.set_weight(b.weight());
        }
        // A per-device list given replaces the one before, as unified does.
        macro_rules! take {
            ($($get:ident => $set:ident),*) => {$(
                if b.$get().is_some() {
                    bb.$set(b.$get().clone());
                }
            )*};
        }
        take!(weight_device => set_weight_device,
            throttle_read_bps_device => set_throttle_read_bps_device,
            throttle_write_bps_device => set_throttle_write_bps_device,
            throttle_read_iops_device => set_throttle_read_iops_device,
            throttle_write_iops_device => set_throttle_write_iops_device);
        out.set_block_io(Some(bb));
    }
    if let Some(p) = ch.pids() {
        out.set_pids(Some(*p));
    }
    if let Some(u) = ch.unified() {
        // runc replaces the map as a whole.
        out.set_unified(Some(u.clone()));
    }
    out
}

/// The part of `r` that `update` writes: never devices (rewriting them would open a window in
/// which a running container's device access is reset), hugepages, network or rdma, which runc's
/// update leaves alone too; kernel memory limits are ignored as runc does.
pub(crate) fn updatable(r: &LinuxResources) -> LinuxResources {
    let mut out = LinuxResources::default();
    if let Some(m) = r.memory() {
        let mut om = LinuxMemory::default();
        om.set_limit(m.limit())
            .set_reservation(m.reservation())
            .set_swap(m.swap())
            .set_check_before_update(m.check_before_update());
        out.set_memory(Some(om));
    }
    out.set_cpu(r.cpu().clone());
    if let Some(b) = r.block_io() {
        // Not the leaf weights: cgroup v2 has none, and runc's update leaves them alone.
        let mut ob = LinuxBlockIo::default();
        ob.set_weight(b.weight())
            .set_weight_device(b.weight_device().clone().map(|ds| {
                ds.iter()
                    .filter_map(|d| {
                        let mut w = LinuxWeightDeviceBuilder::default().major(d.major()).minor(d.minor());
                        if let Some(v) = d.weight() {
                            w = w.weight(v);
                        }
                        // Every field has a default: building cannot fail.
                        w.build().ok()
                    })
                    .collect()
            }))
            .set_throttle_read_bps_device(b.throttle_read_bps_device().clone())
            .set_throttle_write_bps_device(b.throttle_write_bps_device().clone())
            .set_throttle_read_iops_device(b.throttle_read_iops_device().clone())
            .set_throttle_write_iops_device(b.throttle_write_iops_device().clone());
        if ob != LinuxBlockIo::default() {
            out.set_block_io(Some(ob));
        }
    }
    out.set_pids(*r.pids());
    out.set_unified(r.unified().clone());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(json: &str) -> LinuxResources {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn merge_keeps_what_is_not_asked_for() {
        let base = res(
            r#"{"memory":{"limit":100,"swap":200},"cpu":{"shares":512,"quota":1000},"pids":{"limit":5},
            "devices":[{"allow":false,"access":"rwm"}]}"#,
        );
        let m = merge(&base, &res(r#"{"memory":{"limit":150},"cpu":{"period":100000}}"#));
        let mem = m.memory().unwrap();
        assert_eq!((mem.limit(), mem.swap()), (Some(150), Some(200)));
        let cpu = m.cpu().clone().unwrap();
        assert_eq!(
            (cpu.shares(), cpu.quota(), cpu.period()),
            (Some(512), Some(1000), Some(100000))
        );
        assert_eq!(m.pids().unwrap().limit(), 5);
        assert!(m.devices().is_some(), "the saved resources keep the rest of the spec");
        let u = updatable(&m);
        assert!(u.devices().is_none(), "update never rewrites device rules");
        assert_eq!(u.memory().unwrap().swap(), Some(200));
    }

    #[test]
    fn unlimited_memory_lifts_swap() {
        let base = res(r#"{"memory":{"limit":100,"swap":200}}"#);
        let m = merge(&base, &res(r#"{"memory":{"limit":-1}}"#));
        assert_eq!(m.memory().unwrap().swap(), Some(-1));
        let m = merge(&base, &res(r#"{"memory":{"limit":-1,"swap":300}}"#));
        assert_eq!(m.memory().unwrap().swap(), Some(300));
    }

    #[test]
    fn unified_is_replaced_and_weight_kept_alone() {
        let base = res(r#"{"unified":{"memory.high":"1"},"blockIO":{"weight":10,"leafWeight":20}}"#);
        let m = merge(&base, &res(r#"{"unified":{"pids.max":"3"},"blockIO":{"weight":30}}"#));
        assert_eq!(m.unified().as_ref().unwrap().len(), 1);
        let u = updatable(&m);
        let b = u.block_io().clone().unwrap();
        assert_eq!((b.weight(), b.leaf_weight()), (Some(30), None));
    }

    #[test]
    fn per_device_blkio_lists_are_replaced_and_written() {
        let base = res(
            r#"{"blockIO":{"weight":10,"throttleReadBpsDevice":[{"major":8,"minor":0,"rate":1}],
            "throttleWriteIOPSDevice":[{"major":8,"minor":0,"rate":2}]}}"#,
        );
        let m = merge(
            &base,
            &res(
                r#"{"blockIO":{"throttleReadBpsDevice":[{"major":8,"minor":16,"rate":3}],
            "weightDevice":[{"major":8,"minor":0,"weight":100,"leafWeight":50}]}}"#,
            ),
        );
        let b = updatable(&m).block_io().clone().unwrap();
        assert_eq!(b.weight(), Some(10));
        let rbps = b.throttle_read_bps_device().clone().unwrap();
        assert_eq!((rbps.len(), rbps[0].minor(), rbps[0].rate()), (1, 16, 3));
        assert_eq!(b.throttle_write_iops_device().clone().unwrap()[0].rate(), 2);
        let wd = b.weight_device().clone().unwrap();
        assert_eq!((wd[0].weight(), wd[0].leaf_weight()), (Some(100), None));
    }
}
