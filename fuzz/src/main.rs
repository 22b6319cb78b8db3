//! `hezi-fuzz [config|seccomp|all] [--reproduce FILE]`: fuzz each target for FUZZ_SECONDS
//! (default 60) from seed FUZZ_SEED (default: the clock; printed), saving a panicking input
//! under FUZZ_ARTIFACTS (default target/fuzz-artifacts). Exits non-zero on a panic (the process
//! aborts) or a usage error. See lib.rs for why this is not cargo-fuzz.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use hezi_fuzz::{fuzz, Limit, Target};

fn env_u64(name: &str) -> Result<Option<u64>, String> {
    match std::env::var(name) {
        Err(_) => Ok(None),
        Ok(v) => v.parse().map(Some).map_err(|_| format!("{name}={v:?} is not a number")),
    }
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hezi-fuzz: {e}");
            ExitCode::from(2)
        }
    }
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let which = args.first().map(String::as_str).unwrap_or("all");
    let targets: Vec<Target> = match which {
        "all" => Target::ALL.to_vec(),
        name => vec![Target::from_name(name).ok_or_else(|| format!("unknown target {name:?} (config, seccomp, all)"))?],
    };
    if let Some(i) = args.iter().position(|a| a == "--reproduce") {
        let file = args.get(i + 1).ok_or("--reproduce needs a file")?;
        let data = std::fs::read(file).map_err(|e| format!("read {file}: {e}"))?;
        for t in &targets {
            let accepted = t.run(&data);
            println!(
                "{}: no panic (input {})",
                t.name(),
                if accepted { "accepted" } else { "rejected" }
            );
        }
        return Ok(());
    }
    let seconds = env_u64("FUZZ_SECONDS")?.unwrap_or(60);
    let seed = match env_u64("FUZZ_SEED")? {
        Some(s) => s,
        None => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_err(|e| e.to_string())?
            .as_nanos() as u64,
    };
    let artifacts = std::env::var_os("FUZZ_ARTIFACTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target/fuzz-artifacts")));
    for t in targets {
        println!("hezi-fuzz: {} for {seconds}s, FUZZ_SEED={seed}", t.name());
        let stats = fuzz(t, seed, Limit::Time(Duration::from_secs(seconds)), &artifacts)
            .map_err(|e| format!("{}: read the corpus in {}: {e}", t.name(), t.corpus_dir().display()))?;
        println!(
            "hezi-fuzz: {}: {} inputs, {} accepted, {} bases, no panic",
            t.name(),
            stats.iterations,
            stats.accepted,
            stats.bases
        );
    }
    Ok(())
}
