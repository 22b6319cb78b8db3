//! containerd.events' task events, and the envelope containerd's events service forwards
//! (containerd's api/events/task.proto, types/event.proto, services/ttrpc/events/v1).

use super::{Any, Message, Mount, Timestamp};

crate::message!(TaskIO { 1 => stdin: String, 2 => stdout: String, 3 => stderr: String, 4 => terminal: bool });
crate::message!(TaskCreate {
    1 => container_id: String,
    2 => bundle: String,
    3 => rootfs: Vec<Mount>,
    4 => io: Option<TaskIO>,
    5 => checkpoint: String,
    6 => pid: u32,
});
crate::message!(TaskStart { 1 => container_id: String, 2 => pid: u32 });
crate::message!(TaskDelete {
    1 => container_id: String,
    2 => pid: u32,
    3 => exit_status: u32,
    4 => exited_at: Option<Timestamp>,
    5 => id: String,
});
crate::message!(TaskExit {
    1 => container_id: String,
    2 => id: String,
    3 => pid: u32,
    4 => exit_status: u32,
    5 => exited_at: Option<Timestamp>,
});
crate::message!(
    /// TaskOOM, TaskPaused and TaskResumed carry the container's id alone.
    ContainerEvent { 1 => container_id: String }
);
crate::message!(TaskExec { 1 => container_id: String, 2 => exec_id: String, 3 => pid: u32 });

crate::message!(Envelope {
    1 => timestamp: Option<Timestamp>,
    2 => namespace: String,
    3 => topic: String,
    4 => event: Option<Any>,
});
crate::message!(ForwardRequest { 1 => envelope: Option<Envelope> });

/// One task event: its topic, and the message packed with its type name.
pub struct Event {
    pub topic: &'static str,
    pub event: Any,
}

impl Event {
    fn new(topic: &'static str, type_name: &str, m: &impl Message) -> Event {
        Event {
            topic,
            event: Any::pack(&format!("containerd.events.{type_name}"), m),
        }
    }

    pub fn create(e: TaskCreate) -> Event {
        Event::new("/tasks/create", "TaskCreate", &e)
    }
    pub fn start(e: TaskStart) -> Event {
        Event::new("/tasks/start", "TaskStart", &e)
    }
    pub fn delete(e: TaskDelete) -> Event {
        Event::new("/tasks/delete", "TaskDelete", &e)
    }
    pub fn exit(e: TaskExit) -> Event {
        Event::new("/tasks/exit", "TaskExit", &e)
    }
    pub fn oom(container_id: &str) -> Event {
        Event::new("/tasks/oom", "TaskOOM", &ContainerEvent::of(container_id))
    }
    pub fn paused(container_id: &str) -> Event {
        Event::new("/tasks/paused", "TaskPaused", &ContainerEvent::of(container_id))
    }
    pub fn resumed(container_id: &str) -> Event {
        Event::new("/tasks/resumed", "TaskResumed", &ContainerEvent::of(container_id))
    }
    pub fn exec_added(container_id: &str, exec_id: &str) -> Event {
        let e = TaskExec {
            container_id: container_id.to_string(),
            exec_id: exec_id.to_string(),
            pid: 0,
        };
        Event::new("/tasks/exec-added", "TaskExecAdded", &e)
    }
    pub fn exec_started(container_id: &str, exec_id: &str, pid: u32) -> Event {
        let e = TaskExec {
            container_id: container_id.to_string(),
            exec_id: exec_id.to_string(),
            pid,
        };
        Event::new("/tasks/exec-started", "TaskExecStarted", &e)
    }
}

impl ContainerEvent {
    fn of(id: &str) -> ContainerEvent {
        ContainerEvent {
            container_id: id.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_carry_containerds_type_names() {
        let e = Event::exec_started("c", "e", 7);
        assert_eq!(e.topic, "/tasks/exec-started");
        assert_eq!(e.event.type_url, "containerd.events.TaskExecStarted");
        assert_eq!(e.event.value, [0x0a, 1, b'c', 0x12, 1, b'e', 0x18, 7]);
        assert_eq!(Event::oom("c").event.type_url, "containerd.events.TaskOOM");
    }
}
