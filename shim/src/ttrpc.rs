//! ttrpc, containerd's RPC over a unix socket: a synchronous server for the task API and a
//! client for containerd's events service.
//!
//! The wire: each message is a frame of a 10-byte header (payload length and stream id, both
//! big-endian u32, then a type byte and a flags byte) and a protobuf payload, a `Request` or a
//! `Response`. A client picks odd stream ids and matches the response by id, so requests on one
//! connection may be answered out of order: containerd keeps a Wait pending while it sends
//! others. The server reads requests on one thread per connection and answers each on a thread
//! of its own, which exits once the answer is written.

use std::io::{self, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use crate::proto::rpc::{Code, Request, Response, Status};
use crate::proto::Message;

const HEADER_LEN: usize = 10;
/// ttrpc's limit on a message, on both sides.
const MAX_MESSAGE: usize = 4 << 20;
const TYPE_REQUEST: u8 = 1;
const TYPE_RESPONSE: u8 = 2;

struct Frame {
    stream: u32,
    kind: u8,
    payload: Vec<u8>,
}

/// The next frame, or `None` at a clean end of the stream.
fn read_frame(r: &mut impl Read) -> io::Result<Option<Frame>> {
    let mut header = [0u8; HEADER_LEN];
    match r.read_exact(&mut header) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
    let stream = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
    if len > MAX_MESSAGE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("ttrpc message of {len} bytes is over the {MAX_MESSAGE}-byte limit"),
        ));
    }
    let mut payload = vec![0u8; len];
    r.read_exact(&mut payload)?;
    Ok(Some(Frame {
        stream,
        kind: header[8],
        payload,
    }))
}

fn write_frame(w: &mut impl Write, stream: u32, kind: u8, payload: &[u8]) -> io::Result<()> {
    let mut buf = Vec::with_capacity(HEADER_LEN + payload.len());
    buf.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    buf.extend_from_slice(&stream.to_be_bytes());
    buf.extend_from_slice(&[kind, 0]);
    buf.extend_from_slice(payload);
    // One write: frames of answers written by several threads never interleave.
    w.write_all(&buf)
}

/// What the server calls for each request.
pub trait Handler: Send + Sync + 'static {
    /// Answer `method` of `service` with an encoded response, or a status.
    fn handle(&self, service: &str, method: &str, payload: &[u8]) -> Result<Vec<u8>, Status>;

    /// Called once the answer to `method` is on the wire (Shutdown exits only then).
    fn answered(&self, _method: &str) {}
}

/// Serve `listener` on the calling thread, for good; each connection gets a reading thread.
pub fn serve(listener: UnixListener, handler: Arc<dyn Handler>) -> ! {
    loop {
        match listener.accept() {
            Ok((conn, _)) => {
                let handler = Arc::clone(&handler);
                let spawned = thread::Builder::new()
                    .name("ttrpc-conn".into())
                    .spawn(move || serve_connection(conn, handler));
                if let Err(e) = spawned {
                    log::error!("ttrpc: start a connection thread: {e}");
                }
            }
            Err(e) => {
                log::error!("ttrpc: accept: {e}");
                thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

fn serve_connection(conn: UnixStream, handler: Arc<dyn Handler>) {
    let writer = match conn.try_clone() {
        Ok(w) => Arc::new(Mutex::new(w)),
        Err(e) => {
            log::error!("ttrpc: clone the connection: {e}");
            return;
        }
    };
    let mut reader = io::BufReader::new(conn);
    loop {
        let frame = match read_frame(&mut reader) {
            Ok(Some(f)) => f,
            Ok(None) => return,
            Err(e) => {
                log::warn!("ttrpc: read: {e}; closing the connection");
                return;
            }
        };
        if frame.kind != TYPE_REQUEST {
            log::warn!(
                "ttrpc: ignored a frame of type {} on stream {}",
                frame.kind,
                frame.stream
            );
            continue;
        }
        let handler = Arc::clone(&handler);
        let writer = Arc::clone(&writer);
        let spawned = thread::Builder::new()
            .name("ttrpc-call".into())
            .spawn(move || answer(frame, &*handler, &writer));
        if let Err(e) = spawned {
            log::error!("ttrpc: start a request thread: {e}");
        }
    }
}

fn answer(frame: Frame, handler: &dyn Handler, writer: &Mutex<UnixStream>) {
    let (method, result) = match Request::decode(&frame.payload) {
        Ok(req) => {
            let started = std::time::Instant::now();
            let result = handler.handle(&req.service, &req.method, &req.payload);
            log::debug!("{} answered in {:?}", req.method, started.elapsed());
            (req.method, result)
        }
        Err(e) => (String::new(), Err(Status::new(Code::InvalidArgument, e.to_string()))),
    };
    let response = match result {
        Ok(payload) => Response { status: None, payload },
        Err(status) => Response {
            status: Some(status),
            payload: Vec::new(),
        },
    };
    let written = {
        let mut w = writer.lock().unwrap_or_else(|p| p.into_inner());
        write_frame(&mut *w, frame.stream, TYPE_RESPONSE, &response.encode())
    };
    match written {
        Ok(()) => handler.answered(&method),
        Err(e) => log::warn!("ttrpc: answer {method}: {e}"),
    }
}

/// Why a call failed: the connection, or the server's answer.
#[derive(Debug)]
pub enum CallError {
    Io(io::Error),
    Status(Status),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Io(e) => write!(f, "{e}"),
            CallError::Status(s) => write!(f, "{s}"),
        }
    }
}

/// A client connection, one call at a time.
pub struct Client {
    conn: UnixStream,
    next_stream: u32,
}

impl Client {
    pub fn connect(address: &str) -> io::Result<Client> {
        let path = address.strip_prefix("unix://").unwrap_or(address);
        let conn = UnixStream::connect(path)?;
        // A containerd that stops answering must not hold the events thread forever.
        conn.set_read_timeout(Some(Duration::from_secs(30)))?;
        Ok(Client { conn, next_stream: 1 })
    }

    pub fn call(&mut self, service: &str, method: &str, payload: Vec<u8>) -> Result<Vec<u8>, CallError> {
        let stream = self.next_stream;
        self.next_stream = self.next_stream.wrapping_add(2);
        let req = Request {
            service: service.to_string(),
            method: method.to_string(),
            payload,
            timeout_nano: 0,
        };
        write_frame(&mut self.conn, stream, TYPE_REQUEST, &req.encode()).map_err(CallError::Io)?;
        loop {
            let frame = read_frame(&mut self.conn)
                .map_err(CallError::Io)?
                .ok_or_else(|| CallError::Io(io::ErrorKind::UnexpectedEof.into()))?;
            if frame.kind != TYPE_RESPONSE || frame.stream != stream {
                continue;
            }
            let resp = Response::decode(&frame.payload)
                .map_err(|e| CallError::Io(io::Error::new(io::ErrorKind::InvalidData, e)))?;
            return match resp.status {
                Some(s) if s.code != 0 => Err(CallError::Status(s)),
                _ => Ok(resp.payload),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct Echo {
        answered: AtomicUsize,
    }

    impl Handler for Echo {
        fn handle(&self, service: &str, method: &str, payload: &[u8]) -> Result<Vec<u8>, Status> {
            match (service, method) {
                ("test.Echo", "Echo") => Ok(payload.to_vec()),
                ("test.Echo", "Slow") => {
                    thread::sleep(Duration::from_millis(300));
                    Ok(b"slow".to_vec())
                }
                _ => Err(Status::new(Code::Unimplemented, format!("{service}/{method}"))),
            }
        }

        fn answered(&self, _method: &str) {
            self.answered.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn server() -> (tempdir::Dir, Arc<Echo>) {
        let dir = tempdir::Dir::new();
        let listener = UnixListener::bind(dir.path().join("s")).expect("bind");
        let echo = Arc::new(Echo {
            answered: AtomicUsize::new(0),
        });
        let handler = Arc::clone(&echo) as Arc<dyn Handler>;
        thread::spawn(move || serve(listener, handler));
        (dir, echo)
    }

    mod tempdir {
        pub struct Dir(std::path::PathBuf);
        impl Dir {
            pub fn new() -> Dir {
                static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
                let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let p = std::env::temp_dir().join(format!("hezi-ttrpc-{}-{n}", std::process::id()));
                std::fs::create_dir_all(&p).expect("mkdir");
                Dir(p)
            }
            pub fn path(&self) -> &std::path::Path {
                &self.0
            }
        }
        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }

    #[test]
    fn calls_and_statuses() {
        let (dir, echo) = server();
        let addr = format!("unix://{}", dir.path().join("s").display());
        let mut c = Client::connect(&addr).expect("connect");
        assert_eq!(c.call("test.Echo", "Echo", b"hi".to_vec()).ok(), Some(b"hi".to_vec()));
        match c.call("test.Echo", "Nope", Vec::new()) {
            Err(CallError::Status(s)) => {
                assert_eq!(s.code, Code::Unimplemented as i32);
                assert_eq!(s.message, "test.Echo/Nope");
            }
            other => panic!("expected a status, got {other:?}"),
        }
        // `answered` runs after the write, so it may trail the client's read a little.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while echo.answered.load(Ordering::SeqCst) < 2 && std::time::Instant::now() < deadline {
            thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(echo.answered.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn answers_out_of_order_by_stream_id() {
        let (dir, _echo) = server();
        let mut conn = UnixStream::connect(dir.path().join("s")).expect("connect");
        let req = |method: &str, payload: &[u8]| {
            Request {
                service: "test.Echo".into(),
                method: method.into(),
                payload: payload.to_vec(),
                timeout_nano: 0,
            }
            .encode()
        };
        write_frame(&mut conn, 1, TYPE_REQUEST, &req("Slow", b"")).expect("write");
        write_frame(&mut conn, 3, TYPE_REQUEST, &req("Echo", b"fast")).expect("write");
        let first = read_frame(&mut conn).expect("read").expect("frame");
        let second = read_frame(&mut conn).expect("read").expect("frame");
        assert_eq!(
            (first.stream, first.kind),
            (3, TYPE_RESPONSE),
            "the quick call is not held up"
        );
        assert_eq!(
            Response::decode(&first.payload).map(|r| r.payload),
            Ok(b"fast".to_vec())
        );
        assert_eq!(second.stream, 1);
    }

    #[test]
    fn oversized_frames_close_the_connection() {
        let (dir, _echo) = server();
        let mut conn = UnixStream::connect(dir.path().join("s")).expect("connect");
        let mut header = ((MAX_MESSAGE + 1) as u32).to_be_bytes().to_vec();
        header.extend_from_slice(&[0, 0, 0, 1, TYPE_REQUEST, 0]);
        conn.write_all(&header).expect("write");
        conn.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
        let mut buf = [0u8; 1];
        assert_eq!(conn.read(&mut buf).expect("read"), 0, "the server hung up");
    }
}
