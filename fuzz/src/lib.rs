//! Fuzz targets for the inputs hezi takes from others: config.json (parsing and validation, and
//! what `create` derives from a checked spec before touching the host) and seccomp profiles
//! (translation to libseccomp rules and compilation to BPF).
//!
//! The targets are plain `fn(&[u8]) -> bool`. cargo-fuzz runs them coverage-guided under
//! libFuzzer and AddressSanitizer through the `fuzz_target!` wrappers in `cargo-fuzz/`
//! (`scripts/fuzz.sh`, which CI runs). This crate also has a harness of its own that needs no
//! sanitizer flags: seed corpora of valid inputs (`corpus/<target>/`, which cargo-fuzz starts
//! from too), a seeded PRNG, structure-aware JSON mutation plus raw byte mutation
//! (`mutate.rs`), and a time bound, without coverage feedback; inputs that get past parsing are
//! kept as new bases. A panic aborts the run, with the input saved first by a panic hook (the
//! workspace builds with panic = "abort") and the seed printed, so
//! `hezi-fuzz <target> --reproduce FILE` replays it.

pub mod mutate;
pub mod rng;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use mutate::Pool;
use rng::Rng;

/// config.json: parse and validate; for a checked spec, what `create` computes from it before it
/// makes anything (namespace plan, id maps, seccomp filter), and every error's message. Returns
/// whether the input was a valid spec.
pub fn config(data: &[u8]) -> bool {
    let spec = match libcontainer::spec::parse_and_validate(data) {
        Ok(spec) => spec,
        Err(e) => {
            let _ = e.to_string();
            return false;
        }
    };
    for into_clone in [false, true] {
        if let Err(e) = libcontainer::namespaces::Plan::new(&spec, into_clone) {
            let _ = e.to_string();
        }
    }
    if let Some(linux) = spec.linux() {
        for maps in [linux.uid_mappings(), linux.gid_mappings()].into_iter().flatten() {
            let _ = libcontainer::namespaces::id_map_text(maps);
        }
        if let Some(s) = linux.seccomp() {
            seccomp_filter(s);
        }
    }
    let _ = libcontainer::lsm::mount_data("", libcontainer::lsm::mount_label(&spec));
    true
}

/// linux.seccomp on its own: translation and compilation. Returns whether the input parsed as
/// a profile.
pub fn seccomp(data: &[u8]) -> bool {
    match serde_json::from_slice::<oci_spec::runtime::LinuxSeccomp>(data) {
        Ok(s) => {
            seccomp_filter(&s);
            true
        }
        Err(_) => false,
    }
}

fn seccomp_filter(s: &oci_spec::runtime::LinuxSeccomp) {
    match libcontainer::seccomp::Filter::compile(s) {
        // The kernel takes at most BPF_MAXINSNS instructions; compile must have refused more.
        Ok(f) => assert!(
            (1..=4096).contains(&f.instructions()),
            "compiled {} instructions",
            f.instructions()
        ),
        Err(e) => {
            let _ = e.to_string();
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Config,
    Seccomp,
}

impl Target {
    pub const ALL: [Target; 2] = [Target::Config, Target::Seccomp];

    pub fn name(self) -> &'static str {
        match self {
            Target::Config => "config",
            Target::Seccomp => "seccomp",
        }
    }

    pub fn from_name(name: &str) -> Option<Target> {
        Target::ALL.into_iter().find(|t| t.name() == name)
    }

    pub fn run(self, data: &[u8]) -> bool {
        match self {
            Target::Config => config(data),
            Target::Seccomp => seccomp(data),
        }
    }

    pub fn corpus_dir(self) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus").join(self.name())
    }

    /// The seed inputs, in name order.
    pub fn corpus(self) -> std::io::Result<Vec<Vec<u8>>> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.corpus_dir())?
            .map(|e| e.map(|e| e.path()))
            .collect::<std::io::Result<_>>()?;
        files.sort();
        files.iter().map(std::fs::read).collect()
    }
}

/// How long to fuzz one target.
#[derive(Clone, Copy, Debug)]
pub enum Limit {
    Time(Duration),
    Iterations(u64),
}

#[derive(Debug, Default)]
pub struct Stats {
    pub iterations: u64,
    /// Inputs that got past parsing.
    pub accepted: u64,
    /// Bases at the end (seeds plus kept mutants).
    pub bases: usize,
}

/// The input being run and where to save it, for the panic hook.
struct Current {
    target: &'static str,
    seed: u64,
    iteration: u64,
    data: Vec<u8>,
    artifacts: PathBuf,
}

static CURRENT: Mutex<Option<Current>> = Mutex::new(None);

/// Save the input that panicked before the process aborts, and say how to replay it.
fn install_panic_hook() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        // try_lock: a panic while the lock is held (never, today) must not deadlock the hook.
        if let Ok(guard) = CURRENT.try_lock() {
            if let Some(c) = guard.as_ref() {
                let path = c
                    .artifacts
                    .join(format!("{}-crash-{}-{}.json", c.target, c.seed, c.iteration));
                let saved = std::fs::create_dir_all(&c.artifacts).and_then(|()| std::fs::write(&path, &c.data));
                eprintln!(
                    "hezi-fuzz: {} panicked at iteration {} (seed {}); input {}: reproduce with \
                     `cargo run -p hezi-fuzz -- {} --reproduce {}`",
                    c.target,
                    c.iteration,
                    c.seed,
                    match saved {
                        Ok(()) => "saved".to_string(),
                        Err(e) => format!("not saved ({e})"),
                    },
                    c.target,
                    path.display()
                );
            }
        }
        default(info);
    }));
}

/// Largest number of bases kept: old ones are replaced at random beyond it.
const MAX_BASES: usize = 512;

/// Fuzz `target` from its seed corpus until `limit`. Panics (aborts) on a target panic.
pub fn fuzz(target: Target, seed: u64, limit: Limit, artifacts: &Path) -> std::io::Result<Stats> {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(install_panic_hook);
    let seeds = target.corpus()?;
    let pool = Pool::from_corpus(&seeds);
    let mut bases = seeds.clone();
    let mut rng = Rng::new(seed);
    let mut stats = Stats::default();
    let start = Instant::now();
    loop {
        let done = match limit {
            Limit::Time(d) => stats.iterations % 64 == 0 && start.elapsed() >= d,
            Limit::Iterations(n) => stats.iterations >= n,
        };
        if done {
            break;
        }
        // The seeds as they are first, then mutants of the bases.
        let input = match seeds.get(stats.iterations as usize) {
            Some(s) => s.clone(),
            None => {
                let base = rng.below(bases.len());
                mutate::mutate(&bases[base], &seeds, &pool, &mut rng)
            }
        };
        if let Ok(mut c) = CURRENT.lock() {
            *c = Some(Current {
                target: target.name(),
                seed,
                iteration: stats.iterations,
                data: input.clone(),
                artifacts: artifacts.to_path_buf(),
            });
        }
        stats.iterations += 1;
        if target.run(&input) {
            stats.accepted += 1;
            if bases.len() < MAX_BASES {
                bases.push(input);
            } else if rng.one_in(4) {
                let i = rng.below(bases.len());
                bases[i] = input;
            }
        }
    }
    if let Ok(mut c) = CURRENT.lock() {
        *c = None;
    }
    stats.bases = bases.len();
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every seed is a valid input of its target: a broken seed would leave the fuzzer mutating
    /// parser errors only.
    #[test]
    fn seeds_are_valid() {
        for t in Target::ALL {
            let seeds = t.corpus().unwrap();
            assert!(!seeds.is_empty(), "{}: no seeds", t.name());
            for (i, s) in seeds.iter().enumerate() {
                assert!(t.run(s), "{} seed {i} rejected", t.name());
            }
        }
    }

    /// A short fixed-seed run of each target, so `cargo test` exercises the harness.
    #[test]
    fn short_run_of_each_target() {
        let artifacts = std::env::temp_dir().join("hezi-fuzz-test-artifacts");
        for t in Target::ALL {
            let stats = fuzz(t, 1, Limit::Iterations(1500), &artifacts).unwrap();
            assert_eq!(stats.iterations, 1500);
            assert!(
                stats.accepted > 100,
                "{}: only {} inputs got past parsing",
                t.name(),
                stats.accepted
            );
        }
    }
}
