//! containerd.task.v2's messages (containerd's runtime/v2/task/shim.proto, the version containerd
//! 1.6 speaks), with their field numbers.

use super::{Any, Mount, Timestamp};

crate::message!(CreateTaskRequest {
    1 => id: String,
    2 => bundle: String,
    3 => rootfs: Vec<Mount>,
    4 => terminal: bool,
    5 => stdin: String,
    6 => stdout: String,
    7 => stderr: String,
    8 => checkpoint: String,
    9 => parent_checkpoint: String,
    10 => options: Option<Any>,
});
crate::message!(CreateTaskResponse { 1 => pid: u32 });

crate::message!(
    /// Start, Delete, State and Wait name a process: a container's init (`exec_id` empty) or
    /// an exec.
    ProcessRequest { 1 => id: String, 2 => exec_id: String }
);
crate::message!(StartResponse { 1 => pid: u32 });
crate::message!(DeleteResponse { 1 => pid: u32, 2 => exit_status: u32, 3 => exited_at: Option<Timestamp> });

crate::message!(ExecProcessRequest {
    1 => id: String,
    2 => exec_id: String,
    3 => terminal: bool,
    4 => stdin: String,
    5 => stdout: String,
    6 => stderr: String,
    7 => spec: Option<Any>,
});
crate::message!(ResizePtyRequest { 1 => id: String, 2 => exec_id: String, 3 => width: u32, 4 => height: u32 });

/// containerd.v1.types.Status
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Status {
    Created = 1,
    Running = 2,
    Stopped = 3,
    Paused = 4,
}

crate::message!(StateResponse {
    1 => id: String,
    2 => bundle: String,
    3 => pid: u32,
    4 => status: u32,
    5 => stdin: String,
    6 => stdout: String,
    7 => stderr: String,
    8 => terminal: bool,
    9 => exit_status: u32,
    10 => exited_at: Option<Timestamp>,
    11 => exec_id: String,
});

crate::message!(KillRequest { 1 => id: String, 2 => exec_id: String, 3 => signal: u32, 4 => all: bool });
crate::message!(CloseIORequest { 1 => id: String, 2 => exec_id: String, 3 => stdin: bool });

crate::message!(
    /// Pids, Pause, Resume, Stats and Connect name a container only.
    ContainerRequest { 1 => id: String }
);
crate::message!(ProcessInfo { 1 => pid: u32, 2 => info: Option<Any> });
crate::message!(PidsResponse { 1 => processes: Vec<ProcessInfo> });

crate::message!(UpdateTaskRequest { 1 => id: String, 2 => resources: Option<Any> });
crate::message!(WaitResponse { 1 => exit_status: u32, 2 => exited_at: Option<Timestamp> });
crate::message!(StatsResponse { 1 => stats: Option<Any> });
crate::message!(ConnectResponse { 1 => shim_pid: u32, 2 => task_pid: u32, 3 => version: String });
crate::message!(ShutdownRequest { 1 => id: String, 2 => now: bool });

crate::message!(CheckpointTaskRequest { 1 => id: String, 2 => path: String, 3 => options: Option<Any> });
crate::message!(
    /// containerd.runc.v1.CheckpointOptions (containerd's runtime/v2/runc/options), what ctr
    /// and CRI put in a CheckpointTaskRequest.
    CheckpointOptions {
        1 => exit: bool,
        2 => open_tcp: bool,
        3 => external_unix_sockets: bool,
        4 => terminal: bool,
        5 => file_locks: bool,
        6 => empty_namespaces: Vec<String>,
        7 => cgroups_mode: String,
        8 => image_path: String,
        9 => work_path: String,
        10 => parent_path: String,
    }
);
