//! Checkpoint and restore through the task API, as containerd's runc shim offers them:
//! - `Checkpoint` dumps a running container's init into the request's path (or the options'
//!   image path) through libcontainer's CRIU driver; with `exit` the container stops (its init
//!   exits as killed, reported as any exit) and is deleted, as `runc checkpoint` does;
//! - a `Create` naming a checkpoint makes no container: it opens the process's IO and waits,
//!   and `Start` restores the checkpoint there, with the new IO as the restored init's stdio
//!   (libcontainer's restore hands CRIU the caller's pipes) or, with a terminal, the new pty
//!   CRIU makes.

use std::path::PathBuf;
use std::sync::Arc;

use libcontainer::checkpoint::{CgroupMode, CheckpointOptions, CriuFlags};

use super::{lc_error, status, Inner, TtrpcResult};
use crate::container::Container;
use crate::error::Error;
use crate::helper;
use crate::io::ProcessIo;
use crate::process::Phase;
use crate::proto::events::{Event, TaskStart};
use crate::proto::rpc::Code;
use crate::proto::task::{CheckpointOptions as ApiOptions, CheckpointTaskRequest};
use crate::proto::Message;

/// What a Create with a checkpoint keeps for its Start.
pub struct PendingRestore {
    pub image: PathBuf,
    pub stdio: helper::Stdio,
    pub io: ProcessIo,
}

/// The request's options, if it carries runc's (anything else is refused: silently ignoring
/// `exit` would leave a container running that the caller means to stop).
fn options_of(req: &CheckpointTaskRequest) -> TtrpcResult<ApiOptions> {
    let Some(any) = &req.options else {
        return Ok(ApiOptions::default());
    };
    let name = any.type_url.rsplit('/').next().unwrap_or_default();
    if name != "containerd.runc.v1.CheckpointOptions" {
        return Err(status(
            Code::InvalidArgument,
            format!("checkpoint options of type {} are not understood", any.type_url),
        ));
    }
    ApiOptions::decode(&any.value).map_err(|e| status(Code::InvalidArgument, e.to_string()))
}

fn flags_of(o: &ApiOptions) -> TtrpcResult<CriuFlags> {
    let manage_cgroups_mode = if o.cgroups_mode.is_empty() {
        CgroupMode::default()
    } else {
        CgroupMode::parse(&o.cgroups_mode).map_err(lc_error)?
    };
    if let Some(ns) = o.empty_namespaces.iter().find(|n| n.as_str() != "network") {
        return Err(status(
            Code::InvalidArgument,
            format!("empty namespace {ns:?}: only the network namespace can be left empty"),
        ));
    }
    Ok(CriuFlags {
        tcp_established: o.open_tcp,
        ext_unix_sk: o.external_unix_sockets,
        shell_job: o.terminal,
        file_locks: o.file_locks,
        manage_cgroups_mode,
        empty_ns_network: !o.empty_namespaces.is_empty(),
        auto_dedup: false,
    })
}

impl Inner {
    pub(super) fn checkpoint(&self, req: &CheckpointTaskRequest) -> TtrpcResult<()> {
        let c = self.container(&req.id)?;
        let o = options_of(req)?;
        let image_path = if o.image_path.is_empty() {
            &req.path
        } else {
            &o.image_path
        };
        if image_path.is_empty() {
            return Err(status(
                Code::InvalidArgument,
                "checkpoint: no path to write the image to",
            ));
        }
        let opts = CheckpointOptions {
            image_path: PathBuf::from(image_path),
            work_path: (!o.work_path.is_empty()).then(|| PathBuf::from(&o.work_path)),
            parent_path: (!o.parent_path.is_empty()).then(|| PathBuf::from(&o.parent_path)),
            leave_running: !o.exit,
            flags: flags_of(&o)?,
            ..Default::default()
        };
        // Through the helper, as create: CRIU runs as the helper's child, which the shim's
        // reaper (waiting on any child of the shim) would otherwise reap before libcontainer.
        let rt = &self.rt;
        helper::run(helper::Stdio::default(), || {
            rt.checkpoint(&c.id, &opts)
                .map(|()| 0)
                .map_err(|e| Error::from_lc(format_args!("checkpoint container {}", c.id), e))
        })?;
        Ok(())
    }

    /// Start of a container created from a checkpoint: restore it with the IO the Create
    /// opened.
    pub(super) fn start_restore(&self, c: &Arc<Container>, pending: PendingRestore) -> TtrpcResult<u32> {
        let spawned = crate::container::spawn_restore(
            &self.rt,
            &c.id,
            &c.bundle,
            &pending.image,
            pending.stdio,
            c.init.io_cfg.terminal,
        );
        let spawned = match spawned {
            Ok(s) => s,
            Err(e) => {
                // Nothing was made (libcontainer's restore cleans up): the task never ran, so
                // a Wait pending on it returns.
                c.init.set_exited(super::UNKNOWN_EXIT_STATUS);
                return Err(e.into());
            }
        };
        let pid = spawned.pid;
        self.pids().insert(pid, (Arc::clone(c), Arc::clone(&c.init)));
        spawned.finish(&c.init, pending.io, Phase::Running)?;
        crate::oom::watch(&self.rt, c, Arc::clone(&self.events));
        self.events.publish(Event::start(TaskStart {
            container_id: c.id.clone(),
            pid: pid as u32,
        }));
        Ok(pid as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::Any;

    fn req(options: Option<Any>) -> CheckpointTaskRequest {
        CheckpointTaskRequest {
            id: "c".into(),
            path: "/img".into(),
            options,
        }
    }

    #[test]
    fn runcs_options_become_criu_flags() {
        let o = ApiOptions {
            exit: true,
            open_tcp: true,
            file_locks: true,
            empty_namespaces: vec!["network".into()],
            cgroups_mode: "full".into(),
            ..Default::default()
        };
        let any = Any {
            type_url: "type.googleapis.com/containerd.runc.v1.CheckpointOptions".into(),
            value: o.encode(),
        };
        let got = options_of(&req(Some(any))).unwrap();
        assert_eq!(got, o);
        let f = flags_of(&got).unwrap();
        assert!(f.tcp_established && f.file_locks && f.empty_ns_network && !f.shell_job);
        assert_eq!(f.manage_cgroups_mode, CgroupMode::Full);
    }

    #[test]
    fn foreign_options_and_bad_values_are_refused() {
        let any = Any {
            type_url: "containerd.runhcs.v1.CheckpointOptions".into(),
            value: vec![],
        };
        assert!(options_of(&req(Some(any))).is_err());
        let bad = ApiOptions {
            empty_namespaces: vec!["ipc".into()],
            ..Default::default()
        };
        assert!(flags_of(&bad).is_err());
        let bad = ApiOptions {
            cgroups_mode: "sometimes".into(),
            ..Default::default()
        };
        assert!(flags_of(&bad).is_err());
        assert_eq!(options_of(&req(None)).unwrap(), ApiOptions::default());
    }
}
