//! Task events to containerd, in the order they happen: one thread sends them one at a time over
//! containerd's ttrpc events service. When containerd restarts, the connection breaks; the
//! thread reconnects and retries, so events raised meanwhile arrive once it is back.

use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use containerd_shim::event::Event;
use containerd_shim::protos::shim::event::Envelope;
use containerd_shim::protos::shim::events::ForwardRequest;
use containerd_shim::protos::shim_sync::{Client, EventsClient};
use containerd_shim::Context;

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

    pub fn publish<E: Event + 'static>(&self, event: E) {
        let topic = event.topic();
        let any = match containerd_shim::util::convert_to_any(Box::new(event)) {
            Ok(a) => a,
            Err(e) => {
                log::error!("encode event {topic}: {e}");
                return;
            }
        };
        let mut envelope = Envelope::new();
        envelope.set_topic(topic.clone());
        envelope.set_namespace(self.namespace.clone());
        envelope.set_timestamp(crate::process::timestamp(std::time::SystemTime::now()));
        envelope.set_event(any);
        let mut req = ForwardRequest::new();
        req.set_envelope(envelope);
        let tx = self.tx.lock().unwrap_or_else(|p| p.into_inner());
        if tx.send(req).is_err() {
            log::warn!("events thread gone; dropped {topic}");
        }
    }
}

fn connect(address: &str) -> Result<EventsClient, String> {
    let fd = containerd_shim::util::connect(address).map_err(|e| e.to_string())?;
    let client = Client::new(fd).map_err(|e| e.to_string())?;
    Ok(EventsClient::new(client))
}

fn run(rx: Receiver<ForwardRequest>, address: &str) {
    let mut client: Option<EventsClient> = None;
    for req in rx {
        let started = Instant::now();
        let mut delay = Duration::from_millis(50);
        loop {
            let result = match client.take() {
                Some(c) => Ok(c),
                None => connect(address),
            }
            .and_then(|c| match c.forward(Context::default(), &req) {
                Ok(_) => Ok(c),
                // containerd answered: retrying would get the same answer.
                Err(containerd_shim::protos::ttrpc::Error::RpcStatus(s)) => {
                    log::warn!("containerd refused event {}: {}", req.envelope.topic, s.message);
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
                    log::error!(
                        "containerd at {address} unreachable ({e}); dropped event {}",
                        req.envelope.topic
                    );
                    break;
                }
                Err(e) => {
                    log::debug!("publish {} to {address}: {e}; retrying", req.envelope.topic);
                    thread::sleep(delay);
                    delay = (delay * 2).min(Duration::from_secs(2));
                }
            }
        }
    }
}
