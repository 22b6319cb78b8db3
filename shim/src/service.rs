//! containerd's task API (ttrpc `containerd.task.v2.Task`) over libcontainer. Every container of
//! this shim lives in one map; every process the shim made is in a pid map the reaper reads.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;

use containerd_shim::api;
use containerd_shim::protos::events::task::{
    TaskCreate, TaskDelete, TaskExecAdded, TaskExecStarted, TaskExit, TaskIO, TaskPaused, TaskResumed, TaskStart,
};
use containerd_shim::protos::protobuf::MessageField;
use containerd_shim::protos::ttrpc::{get_status, Code, Error as TtrpcError};
use containerd_shim::protos::types::task::ProcessInfo;
use containerd_shim::{ExitSignal, Task, TtrpcContext, TtrpcResult};
use libcontainer::Runtime;
use nix::sys::signal::Signal;
use nix::unistd::Pid;

use crate::container::{self, Container};
use crate::events::Events;
use crate::io::{IoConfig, ProcessIo};
use crate::process::{timestamp, Phase, Process};

/// containerd's exit status for a process whose real status is unknown.
const UNKNOWN_EXIT_STATUS: u32 = 255;

fn status(code: Code, msg: impl Into<String>) -> TtrpcError {
    TtrpcError::RpcStatus(get_status(code, msg.into()))
}

fn internal(msg: impl Into<String>) -> TtrpcError {
    status(Code::INTERNAL, msg)
}

/// libcontainer's errors with the codes containerd maps to its errdefs.
fn lc_error(e: libcontainer::Error) -> TtrpcError {
    use libcontainer::Error as E;
    let code = match &e {
        E::NotFound(_) => Code::NOT_FOUND,
        E::Exists(_) => Code::ALREADY_EXISTS,
        E::WrongState { .. } => Code::FAILED_PRECONDITION,
        E::InvalidArgument(_) | E::InvalidSpec(_) => Code::INVALID_ARGUMENT,
        _ => Code::INTERNAL,
    };
    status(code, e.to_string())
}

/// Every process the shim made, by pid: what the reaper's exits are matched against.
type PidMap = HashMap<i32, (Arc<Container>, Arc<Process>)>;

pub struct Inner {
    rt: Runtime,
    namespace: String,
    containers: Mutex<HashMap<String, Arc<Container>>>,
    pids: Mutex<PidMap>,
    events: Arc<Events>,
    exit: Arc<ExitSignal>,
}

#[derive(Clone)]
pub struct Service {
    inner: Arc<Inner>,
}

/// Where libcontainer keeps its state for `namespace` (as runc's shim: one root per namespace).
pub fn state_root(namespace: &str) -> PathBuf {
    Path::new("/run/containerd/hezi").join(namespace)
}

impl Service {
    pub fn new(namespace: &str, ttrpc_address: String, exit: Arc<ExitSignal>) -> Result<Service, String> {
        let root = state_root(namespace);
        let rt = Runtime::new(&root).map_err(|e| format!("open state root {}: {e}", root.display()))?;
        let inner = Arc::new(Inner {
            rt,
            namespace: namespace.to_string(),
            containers: Mutex::new(HashMap::new()),
            pids: Mutex::new(HashMap::new()),
            events: Arc::new(Events::start(ttrpc_address, namespace.to_string())),
            exit,
        });
        let weak = Arc::downgrade(&inner);
        crate::reaper::start(move |pid, code| {
            if let Some(inner) = weak.upgrade() {
                inner.on_exit(pid, code);
            }
        })
        .map_err(|e| format!("start the reaper: {e}"))?;
        Ok(Service { inner })
    }
}

impl Inner {
    fn containers(&self) -> MutexGuard<'_, HashMap<String, Arc<Container>>> {
        self.containers.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn pids(&self) -> MutexGuard<'_, PidMap> {
        self.pids.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn container(&self, id: &str) -> TtrpcResult<Arc<Container>> {
        self.containers()
            .get(id)
            .cloned()
            .ok_or_else(|| status(Code::NOT_FOUND, format!("container {id} not found")))
    }

    fn process(&self, id: &str, exec_id: &str) -> TtrpcResult<(Arc<Container>, Arc<Process>)> {
        let c = self.container(id)?;
        let p = c.process(exec_id).ok_or_else(|| {
            status(
                Code::NOT_FOUND,
                format!("process {exec_id} of container {id} not found"),
            )
        })?;
        Ok((c, p))
    }

    /// A child exited (reaper thread). Reporting waits for its output to drain, so it runs on a
    /// thread of its own and the reaper goes on reaping.
    fn on_exit(self: &Arc<Self>, pid: i32, code: u32) {
        let Some((c, p)) = self.pids().remove(&pid) else {
            // A helper, a logger, or an orphan reparented to us: nothing to report.
            return;
        };
        let inner = Arc::clone(self);
        let spawned = thread::Builder::new().name("exit".into()).spawn(move || {
            let _order = p.lifecycle();
            let exit = p.set_exited(code);
            let id = if p.exec_id.is_empty() {
                c.id.clone()
            } else {
                p.exec_id.clone()
            };
            inner.events.publish(TaskExit {
                container_id: c.id.clone(),
                id,
                pid: pid as u32,
                exit_status: exit.code,
                exited_at: MessageField::some(timestamp(exit.at)),
                ..Default::default()
            });
        });
        if let Err(e) = spawned {
            log::error!("report the exit of {pid}: {e}");
        }
    }

    fn create(&self, req: &api::CreateTaskRequest) -> Result<u32, String> {
        if self.containers().contains_key(&req.id) {
            return Err(format!("container {} already exists", req.id));
        }
        let bundle = PathBuf::from(&req.bundle);
        let rootfs = bundle.join("rootfs");
        crate::mount::mount(&req.rootfs, &rootfs)?;
        let mounted = !req.rootfs.is_empty();
        let undo = |e: String| {
            if mounted {
                if let Err(u) = crate::mount::unmount(&rootfs) {
                    log::warn!("{u}");
                }
            }
            e
        };
        let cfg = IoConfig {
            stdin: req.stdin.clone(),
            stdout: req.stdout.clone(),
            stderr: req.stderr.clone(),
            terminal: req.terminal,
        };
        let (io, stdio) = ProcessIo::open(&cfg, &self.namespace, &req.id).map_err(undo)?;
        let init = Arc::new(Process::new("", cfg, None));
        let c = Arc::new(Container::new(&req.id, bundle.clone(), mounted, Arc::clone(&init)));
        let spawned = container::spawn_init(&self.rt, &req.id, &bundle, stdio, req.terminal).map_err(undo)?;
        let pid = spawned.pid;
        self.pids().insert(pid, (Arc::clone(&c), Arc::clone(&init)));
        spawned.finish(&init, io, Phase::Created)?;
        self.containers().insert(req.id.clone(), Arc::clone(&c));
        crate::oom::watch(&self.rt, &c, Arc::clone(&self.events));
        self.events.publish(TaskCreate {
            container_id: req.id.clone(),
            bundle: req.bundle.clone(),
            rootfs: req.rootfs.clone(),
            io: MessageField::some(TaskIO {
                stdin: req.stdin.clone(),
                stdout: req.stdout.clone(),
                stderr: req.stderr.clone(),
                terminal: req.terminal,
                ..Default::default()
            }),
            checkpoint: req.checkpoint.clone(),
            pid: pid as u32,
            ..Default::default()
        });
        Ok(pid as u32)
    }

    fn start(&self, id: &str, exec_id: &str) -> TtrpcResult<u32> {
        let (c, p) = self.process(id, exec_id)?;
        let _order = p.lifecycle();
        if p.state().phase != Phase::Created {
            return Err(status(
                Code::FAILED_PRECONDITION,
                format!("process {id}/{exec_id} already started"),
            ));
        }
        if exec_id.is_empty() {
            self.rt.start(id).map_err(lc_error)?;
            let pid = {
                let mut st = p.state();
                if st.phase == Phase::Created {
                    st.phase = Phase::Running;
                }
                st.pid
            };
            self.events.publish(TaskStart {
                container_id: id.to_string(),
                pid: pid as u32,
                ..Default::default()
            });
            return Ok(pid as u32);
        }
        let opened = ProcessIo::open(&p.io_cfg, &self.namespace, id)
            .and_then(|(io, stdio)| Ok((io, container::spawn_exec(&self.rt, id, &p, stdio)?)));
        let (io, spawned) = match opened {
            Ok(started) => started,
            Err(e) => {
                // As containerd's runc shim: an exec that could not start is finished, so a
                // Wait already pending (CRI's ExecSync waits before it starts) returns, and a
                // Kill says "already finished". 255 is containerd's unknown exit status.
                p.set_exited(UNKNOWN_EXIT_STATUS);
                return Err(internal(e));
            }
        };
        let pid = spawned.pid;
        self.pids().insert(pid, (Arc::clone(&c), Arc::clone(&p)));
        spawned.finish(&p, io, Phase::Running).map_err(internal)?;
        self.events.publish(TaskExecStarted {
            container_id: id.to_string(),
            exec_id: exec_id.to_string(),
            pid: pid as u32,
            ..Default::default()
        });
        Ok(pid as u32)
    }

    fn delete(&self, id: &str, exec_id: &str) -> TtrpcResult<api::DeleteResponse> {
        let (c, p) = self.process(id, exec_id)?;
        let response = |pid: i32, exit: Option<crate::process::Exit>| {
            let (code, at) = exit.map_or((0, std::time::SystemTime::now()), |e| (e.code, e.at));
            api::DeleteResponse {
                pid: pid as u32,
                exit_status: code,
                exited_at: MessageField::some(timestamp(at)),
                ..Default::default()
            }
        };
        if !exec_id.is_empty() {
            if p.state().phase == Phase::Running {
                return Err(status(
                    Code::FAILED_PRECONDITION,
                    format!("exec {exec_id} is still running"),
                ));
            }
            c.execs().remove(exec_id);
            let st = p.state();
            return Ok(response(st.pid, st.exit));
        }
        let phase = p.state().phase;
        if phase == Phase::Running && p.state().exit.is_none() {
            return Err(status(
                Code::FAILED_PRECONDITION,
                format!("container {id} is still running"),
            ));
        }
        // A created (never started) init is killed by libcontainer's delete.
        match self.rt.delete(id, phase == Phase::Created) {
            Ok(()) | Err(libcontainer::Error::NotFound(_)) => {}
            Err(e) => return Err(lc_error(e)),
        }
        let exit = p.wait_timeout(container::DELETE_EXIT_WAIT);
        if c.mounted_rootfs {
            crate::mount::unmount(&c.bundle.join("rootfs")).map_err(internal)?;
        }
        c.oom_stop.lock().unwrap_or_else(|p| p.into_inner()).take();
        self.containers().remove(id);
        let pid = p.pid();
        let resp = response(pid, exit);
        self.events.publish(TaskDelete {
            container_id: id.to_string(),
            pid: pid as u32,
            exit_status: resp.exit_status,
            exited_at: resp.exited_at.clone(),
            id: id.to_string(),
            ..Default::default()
        });
        Ok(resp)
    }

    fn kill(&self, req: &api::KillRequest) -> TtrpcResult<()> {
        let (_, p) = self.process(&req.id, &req.exec_id)?;
        let sig = Signal::try_from(req.signal as i32)
            .map_err(|_| status(Code::INVALID_ARGUMENT, format!("invalid signal {}", req.signal)))?;
        let (pid, stopped) = {
            let st = p.state();
            (st.pid, st.exit.is_some())
        };
        if stopped || pid == 0 {
            return Err(status(Code::NOT_FOUND, "process already finished"));
        }
        if req.exec_id.is_empty() {
            return self.rt.kill(&req.id, sig, req.all).map_err(|e| match e {
                libcontainer::Error::WrongState { .. } => status(Code::NOT_FOUND, "process already finished"),
                e => lc_error(e),
            });
        }
        nix::sys::signal::kill(Pid::from_raw(pid), sig).map_err(|e| match e {
            nix::errno::Errno::ESRCH => status(Code::NOT_FOUND, "process already finished"),
            e => internal(format!("signal {pid}: {e}")),
        })
    }

    fn state(&self, id: &str, exec_id: &str) -> TtrpcResult<api::StateResponse> {
        use containerd_shim::api::Status;
        let (c, p) = self.process(id, exec_id)?;
        let st = p.state();
        let mut status = match st.phase {
            Phase::Created => Status::CREATED,
            Phase::Running => Status::RUNNING,
            Phase::Stopped => Status::STOPPED,
        };
        if exec_id.is_empty() && st.phase == Phase::Running {
            if let Ok(s) = self.rt.state(id) {
                if s.status == libcontainer::Status::Paused {
                    status = Status::PAUSED;
                }
            }
        }
        Ok(api::StateResponse {
            id: if exec_id.is_empty() {
                id.to_string()
            } else {
                exec_id.to_string()
            },
            bundle: c.bundle.display().to_string(),
            pid: st.pid as u32,
            status: status.into(),
            stdin: p.io_cfg.stdin.clone(),
            stdout: p.io_cfg.stdout.clone(),
            stderr: p.io_cfg.stderr.clone(),
            terminal: p.io_cfg.terminal,
            exit_status: st.exit.map_or(0, |e| e.code),
            exited_at: st.exit.map(|e| timestamp(e.at)).into(),
            exec_id: exec_id.to_string(),
            ..Default::default()
        })
    }
}

impl Task for Service {
    fn create(&self, _ctx: &TtrpcContext, req: api::CreateTaskRequest) -> TtrpcResult<api::CreateTaskResponse> {
        let pid = self.inner.create(&req).map_err(|e| {
            log::error!("create {}: {e}", req.id);
            internal(e)
        })?;
        Ok(api::CreateTaskResponse {
            pid,
            ..Default::default()
        })
    }

    fn start(&self, _ctx: &TtrpcContext, req: api::StartRequest) -> TtrpcResult<api::StartResponse> {
        let pid = self.inner.start(&req.id, &req.exec_id)?;
        Ok(api::StartResponse {
            pid,
            ..Default::default()
        })
    }

    fn state(&self, _ctx: &TtrpcContext, req: api::StateRequest) -> TtrpcResult<api::StateResponse> {
        self.inner.state(&req.id, &req.exec_id)
    }

    fn delete(&self, _ctx: &TtrpcContext, req: api::DeleteRequest) -> TtrpcResult<api::DeleteResponse> {
        self.inner.delete(&req.id, &req.exec_id)
    }

    fn pids(&self, _ctx: &TtrpcContext, req: api::PidsRequest) -> TtrpcResult<api::PidsResponse> {
        let pids = self.inner.rt.pids(&req.id).map_err(lc_error)?;
        Ok(api::PidsResponse {
            processes: pids
                .into_iter()
                .map(|pid| ProcessInfo {
                    pid: pid as u32,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        })
    }

    fn pause(&self, _ctx: &TtrpcContext, req: api::PauseRequest) -> TtrpcResult<api::Empty> {
        self.inner.container(&req.id)?;
        self.inner.rt.pause(&req.id).map_err(lc_error)?;
        self.inner.events.publish(TaskPaused {
            container_id: req.id,
            ..Default::default()
        });
        Ok(api::Empty::new())
    }

    fn resume(&self, _ctx: &TtrpcContext, req: api::ResumeRequest) -> TtrpcResult<api::Empty> {
        self.inner.container(&req.id)?;
        self.inner.rt.resume(&req.id).map_err(lc_error)?;
        self.inner.events.publish(TaskResumed {
            container_id: req.id,
            ..Default::default()
        });
        Ok(api::Empty::new())
    }

    fn checkpoint(&self, _ctx: &TtrpcContext, _req: api::CheckpointTaskRequest) -> TtrpcResult<api::Empty> {
        Err(status(Code::UNIMPLEMENTED, "checkpoint is not implemented by hezi"))
    }

    fn kill(&self, _ctx: &TtrpcContext, req: api::KillRequest) -> TtrpcResult<api::Empty> {
        self.inner.kill(&req)?;
        Ok(api::Empty::new())
    }

    fn exec(&self, _ctx: &TtrpcContext, req: api::ExecProcessRequest) -> TtrpcResult<api::Empty> {
        let c = self.inner.container(&req.id)?;
        let spec: oci_spec::runtime::Process = serde_json::from_slice(&req.spec.value).map_err(|e| {
            status(
                Code::INVALID_ARGUMENT,
                format!("exec {}: process spec: {e}", req.exec_id),
            )
        })?;
        let cfg = IoConfig {
            stdin: req.stdin.clone(),
            stdout: req.stdout.clone(),
            stderr: req.stderr.clone(),
            terminal: req.terminal,
        };
        {
            let mut execs = c.execs();
            if execs.contains_key(&req.exec_id) {
                return Err(status(
                    Code::ALREADY_EXISTS,
                    format!("exec {} already exists", req.exec_id),
                ));
            }
            execs.insert(
                req.exec_id.clone(),
                Arc::new(Process::new(&req.exec_id, cfg, Some(spec))),
            );
        }
        self.inner.events.publish(TaskExecAdded {
            container_id: req.id,
            exec_id: req.exec_id,
            ..Default::default()
        });
        Ok(api::Empty::new())
    }

    fn resize_pty(&self, _ctx: &TtrpcContext, req: api::ResizePtyRequest) -> TtrpcResult<api::Empty> {
        let (_, p) = self.inner.process(&req.id, &req.exec_id)?;
        p.with_io(|io| io.resize(req.width, req.height))
            .unwrap_or_else(|| Err("the process has no stdio yet".into()))
            .map_err(|e| status(Code::FAILED_PRECONDITION, e))?;
        Ok(api::Empty::new())
    }

    fn close_io(&self, _ctx: &TtrpcContext, req: api::CloseIORequest) -> TtrpcResult<api::Empty> {
        let (_, p) = self.inner.process(&req.id, &req.exec_id)?;
        if req.stdin {
            p.with_io(|io| io.close_stdin());
        }
        Ok(api::Empty::new())
    }

    fn update(&self, _ctx: &TtrpcContext, req: api::UpdateTaskRequest) -> TtrpcResult<api::Empty> {
        self.inner.container(&req.id)?;
        let res: oci_spec::runtime::LinuxResources = serde_json::from_slice(&req.resources.value)
            .map_err(|e| status(Code::INVALID_ARGUMENT, format!("update {}: resources: {e}", req.id)))?;
        self.inner.rt.update(&req.id, &res).map_err(lc_error)?;
        Ok(api::Empty::new())
    }

    fn wait(&self, _ctx: &TtrpcContext, req: api::WaitRequest) -> TtrpcResult<api::WaitResponse> {
        let (_, p) = self.inner.process(&req.id, &req.exec_id)?;
        let exit = p.wait();
        Ok(api::WaitResponse {
            exit_status: exit.code,
            exited_at: MessageField::some(timestamp(exit.at)),
            ..Default::default()
        })
    }

    fn stats(&self, _ctx: &TtrpcContext, req: api::StatsRequest) -> TtrpcResult<api::StatsResponse> {
        self.inner.container(&req.id)?;
        let s = self.inner.rt.stats(&req.id).map_err(lc_error)?;
        let any = crate::stats::to_any(&s).map_err(internal)?;
        Ok(api::StatsResponse {
            stats: MessageField::some(any),
            ..Default::default()
        })
    }

    fn connect(&self, _ctx: &TtrpcContext, req: api::ConnectRequest) -> TtrpcResult<api::ConnectResponse> {
        let task_pid = self.inner.container(&req.id).map(|c| c.init.pid()).unwrap_or(0);
        Ok(api::ConnectResponse {
            shim_pid: std::process::id(),
            task_pid: task_pid as u32,
            version: env!("CARGO_PKG_VERSION").to_string(),
            ..Default::default()
        })
    }

    fn shutdown(&self, _ctx: &TtrpcContext, req: api::ShutdownRequest) -> TtrpcResult<api::Empty> {
        // Other containers of the group still need this shim.
        if req.now || self.inner.containers().is_empty() {
            self.inner.exit.signal();
        }
        Ok(api::Empty::new())
    }
}
