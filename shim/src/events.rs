//! Task events to containerd, in the order they happen: one thread sends them one at a time over
//! containerd's ttrpc events service. When containerd restarts, the connection breaks; the
//! thread reconnects and retries, so events raised meanwhile arrive once it is back.

use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use crate::proto::events::{Envelope, Event, ForwardRequest};
use crate::proto::{Message, Timestamp};
use crate::ttrpc::{CallError, Client};

const EVENTS_SERVICE: &str = "containerd.services.events.ttrpc.v1.Events";

/// How long one event is retried while containerd is away before it is dropped.
const GIVE_UP_AFTER: Duration = Duration::from_secs(120);

/// Cheap to share: a sender into the publishing thread's queue.
pub struct Events {
    tx: Mutex<Sender<ForwardRequest>>,
    namespace: String,
}

impl Events {
    /// Start the publishing thread for containerd's ttrpc address.
    pub fn start(address: String, namespace: String) -> Events {
        let (tx, rx) = channel::<ForwardRequest>();
        let spawned = thread::Builder::new()
            .name("events".into())
            .spawn(move || run(rx, &address));
        if let Err(e) = spawned {
            log::error!("start the events thread: {e}; events will not be published");
        }
        Events {
            tx: Mutex::new(tx),
            namespace,
        }
    }

    pub fn publish(&self, event: Event) {
        let topic = event.topic;
        let req = ForwardRequest {
            envelope: Some(Envelope {
                timestamp: Some(Timestamp::of(std::time::SystemTime::now())),
                namespace: self.namespace.clone(),
                topic: topic.to_string(),
                event: Some(event.event),
            }),
        };
        let tx = self.tx.lock().unwrap_or_else(|p| p.into_inner());
        if tx.send(req).is_err() {
            log::warn!("events thread gone; dropped {topic}");
        }
    }
}

fn connect(address: &str) -> Result<Client, String> {
    Client::connect(address).map_err(|e| e.to_string())
}

fn run(rx: Receiver<ForwardRequest>, address: &str) {
    let mut client: Option<Client> = None;
    for req in rx {
        let topic = req.envelope.as_ref().map(|e| e.topic.clone()).unwrap_or_default();
        let payload = req.encode();
        let started = Instant::now();
        let mut delay = Duration::from_millis(50);
        loop {
            let result = match client.take() {
                Some(c) => Ok(c),
                None => connect(address),
            }
            .and_then(|mut c| match c.call(EVENTS_SERVICE, "Forward", payload.clone()) {
                Ok(_) => Ok(c),
                // containerd answered: retrying would get the same answer.
                Err(CallError::Status(s)) => {
                    log::warn!("containerd refused event {topic}: {}", s.message);
                    Ok(c)
                }
                Err(e) => Err(e.to_string()),
            });
            match result {
                Ok(c) => {
                    client = Some(c);
                    break;
                }
                Err(e) if started.elapsed() > GIVE_UP_AFTER => {
                    log::error!("containerd at {address} unreachable ({e}); dropped event {topic}");
                    break;
                }
                Err(e) => {
                    log::debug!("publish {topic} to {address}: {e}; retrying");
                    thread::sleep(delay);
                    delay = (delay * 2).min(Duration::from_secs(2));
                }
            }
        }
    }
}
