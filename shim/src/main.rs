//! containerd-shim-hezi-v2: containerd's shim v2 task API (runtime `io.containerd.hezi.v2`)
//! over libcontainer, in process, with its own ttrpc server and protobuf messages (no async
//! runtime, no protobuf library): `launch` is the command line, `service` the task API.

mod bootstrap;
mod caller;
mod container;
mod error;
mod events;
mod helper;
mod info;
mod io;
mod launch;
mod logger;
mod mount;
mod oom;
mod options;
mod process;
mod proto;
mod reaper;
mod service;
mod stats;
mod trim;
mod ttrpc;

const RUNTIME_ID: &str = "io.containerd.hezi.v2";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flags = match launch::parse(&args) {
        Ok(f) => f,
        Err(e) => fail(&e),
    };
    if flags.version {
        println!("containerd-shim-hezi-v2:");
        println!("  Version:  {}", env!("CARGO_PKG_VERSION"));
        println!("  Runtime:  {RUNTIME_ID} (hezi libcontainer, in process)");
        return;
    }
    if flags.info {
        // containerd runs `-info` with no other flag.
        if let Err(e) = info::run() {
            fail(&e);
        }
        return;
    }
    if flags.namespace.is_empty() {
        fail("-namespace is required");
    }
    let result = match flags.action.as_str() {
        "start" => launch::start(&flags),
        "delete" => launch::delete(&flags),
        "" => Err("no action given (start or delete)".to_string()),
        other => Err(format!("unknown action {other:?} (start or delete)")),
    };
    if let Err(e) = result {
        fail(&e);
    }
}

fn fail(msg: &str) -> ! {
    eprintln!("containerd-shim-hezi-v2: {msg}");
    std::process::exit(1)
}
