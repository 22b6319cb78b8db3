//! `unpack BLOB DEST`: apply one layer blob (gzip, zstd or plain tar, found by its magic bytes)
//! to directory DEST with the bridge's unpacker, as `hezi` does for a first layer. Used by
//! bench/unpack.sh to time the unpacker alone against `umoci unpack`.

use std::path::Path;
use std::process::ExitCode;

use containerd_bridge::media::Compression;
use containerd_bridge::unpack::{apply_compressed, Whiteouts};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [blob, dest] = args.as_slice() else {
        eprintln!("usage: unpack BLOB DEST");
        return ExitCode::from(2);
    };
    let run = || -> Result<String, String> {
        let mut f = std::fs::File::open(blob).map_err(|e| format!("open {blob}: {e}"))?;
        let mut head = [0u8; 4];
        let n = std::io::Read::read(&mut f, &mut head).map_err(|e| format!("read {blob}: {e}"))?;
        let mut r = std::io::Read::chain(&head[..n], f);
        let d = apply_compressed(
            &mut r,
            Compression::sniff(&head[..n]),
            Path::new(dest),
            Whiteouts::Overlay,
            false,
        )
        .map_err(|e| e.to_string())?;
        Ok(d.to_string())
    };
    match run() {
        Ok(diff_id) => {
            println!("{diff_id}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("unpack: {e}");
            ExitCode::FAILURE
        }
    }
}
