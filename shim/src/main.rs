//! containerd-shim-hezi-v2: containerd's shim v2 task API (runtime `io.containerd.hezi.v2`)
//! over libcontainer, in process. The containerd-shim crate parses the flags, runs the
//! `start`/`delete` actions and the ttrpc server; this crate supplies the task service.

mod container;
mod events;
mod helper;
mod io;
mod mount;
mod oom;
mod process;
mod reaper;
mod service;
mod shim;
mod stats;

use containerd_shim::Config;

const RUNTIME_ID: &str = "io.containerd.hezi.v2";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "-v" || a == "--version" || a == "-version") {
        println!("containerd-shim-hezi-v2:");
        println!("  Version:  {}", env!("CARGO_PKG_VERSION"));
        println!("  Runtime:  {RUNTIME_ID} (hezi libcontainer, in process)");
        return;
    }
    if args.iter().any(|a| a == "-socket") {
        // The long-lived server: leave the session and process group of containerd's `start`
        // call, so that signals for them (a containerd restart) do not reach the containers' shim.
        let _ = nix::unistd::setsid();
    }
    let config = Config {
        // Our own reaper (reaper.rs) collects exits, coordinated with process creation.
        no_reaper: true,
        ..Default::default()
    };
    containerd_shim::run::<shim::HeziShim>(RUNTIME_ID, Some(config));
}
