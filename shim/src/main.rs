//! containerd-shim-hezi-v2: containerd's shim v2 task API over libcontainer.
//!
//! Not implemented yet (see the shim issue). It says so plainly and exits non-zero so that
//! containerd reports a clear error instead of hanging on a missing ttrpc socket.

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "-v" || a == "--version") {
        println!("containerd-shim-hezi-v2 {} (not ready)", env!("CARGO_PKG_VERSION"));
        return;
    }
    eprintln!("containerd-shim-hezi-v2: not ready yet; use containerd's runc shim with BinaryName = hezi");
    std::process::exit(1);
}
