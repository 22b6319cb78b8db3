//! Loading and validating a bundle's config.json.
//!
//! Parsing goes through oci-spec's types; validation adds what serde cannot see (duplicate
//! namespaces, version range, relative paths) and resolves the rootfs once, so later steps work on
//! checked values.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::error::{Error, Result};

mod keys;
// The tracer runs in build.rs and in a test that checks the table; the crate uses only `Shape`.
#[cfg_attr(not(test), allow(dead_code))]
mod shape_trace;

/// A parsed, validated bundle.
pub struct Bundle {
    /// Absolute, canonical bundle directory.
    pub dir: PathBuf,
    /// Absolute, canonical root filesystem directory.
    pub rootfs: PathBuf,
    pub spec: Spec,
}

impl Bundle {
    /// Read `<dir>/config.json` and validate it for `create`.
    pub fn load(dir: &Path) -> Result<Bundle> {
        let dir =
            std::fs::canonicalize(dir).map_err(|e| Error::InvalidArgument(format!("bundle {}: {e}", dir.display())))?;
        let config = dir.join("config.json");
        let spec = parse_file(&config)?;
        validate(&spec, &config)?;
        let root = spec.root().as_ref().map(|r| r.path().clone()).unwrap_or_default();
        let rootfs = std::fs::canonicalize(dir.join(&root)).map_err(|e| Error::Spec {
            path: config.clone(),
            message: format!("root.path {}: {e}", root.display()),
        })?;
        if !rootfs.is_dir() {
            return Err(Error::Spec {
                path: config,
                message: format!("root.path {} is not a directory", rootfs.display()),
            });
        }
        Ok(Bundle { dir, rootfs, spec })
    }
}

/// Parse a config.json, naming the file and the line and column of a syntax or type error.
pub fn parse_file(path: &Path) -> Result<Spec> {
    let text = std::fs::read(path).map_err(|e| Error::Spec {
        path: path.into(),
        message: e.to_string(),
    })?;
    parse_bytes(&text).map_err(|message| Error::Spec {
        path: path.into(),
        message,
    })
}

/// Parse and validate config.json bytes as `Bundle::load` does, without the filesystem: errors
/// name `config.json`. For fuzzing and for callers that hold the bytes already.
pub fn parse_and_validate(bytes: &[u8]) -> Result<Spec> {
    let path = Path::new("config.json");
    let spec = parse_bytes(bytes).map_err(|message| Error::Spec {
        path: path.into(),
        message,
    })?;
    validate(&spec, path)?;
    Ok(spec)
}

fn parse_bytes(text: &[u8]) -> std::result::Result<Spec, String> {
    let mut value: serde_json::Value = serde_json::from_slice(text).map_err(|e| e.to_string())?;
    // Keys in another case than the spec's, which runc's decoder accepts (Go matches field
    // names ignoring case).
    let mut renamed = keys::normalise(&mut value);
    renamed.dedup();
    for key in renamed {
        tracing::warn!("config.json: {key}: a key in another case than the spec's; read as runc reads it");
    }
    if let Some(process) = value.get_mut("process") {
        read_spec_scheduler_flags(process);
    }
    // A capability this runtime does not know is a warning, not a failure (config.md
    // "capabilities": runtimes SHOULD NOT fail for capabilities that cannot be granted).
    for cap in drop_unknown_capabilities(&mut value) {
        tracing::warn!("process.capabilities: {cap} is not known here; ignored");
    }
    serde_json::from_value(value).map_err(|e| {
        // Only on this error path is the text parsed again, for the error's line and column.
        match serde_json::from_slice::<Spec>(text) {
            Err(positioned) if positioned.to_string().starts_with(&e.to_string()) => positioned.to_string(),
            _ => e.to_string(),
        }
    })
}

/// A process.json (`exec -p`) with its keys in the spec's case, as runc's decoder reads them;
/// returns the renamed keys (`/process/Cwd -> cwd`) for the caller to warn about.
pub fn normalise_process_keys(process: &mut serde_json::Value) -> Vec<String> {
    keys::normalise_process(process)
}

/// Two scheduler flags as config.md spells them (and runc reads them), renamed to the names
/// oci-spec reads: it spells them `SCHED_RESET_ON_FORK` and `SCHED_FLAG_D_L_OVERRUN`, and would
/// refuse a config written to the spec. `process` is a process object: config.json's, or the
/// process.json of `exec -p`.
pub fn read_spec_scheduler_flags(process: &mut serde_json::Value) {
    let Some(flags) = process.pointer_mut("/scheduler/flags").and_then(|f| f.as_array_mut()) else {
        return;
    };
    for flag in flags {
        let oci_spec_name = match flag.as_str() {
            Some("SCHED_FLAG_RESET_ON_FORK") => "SCHED_RESET_ON_FORK",
            Some("SCHED_FLAG_DL_OVERRUN") => "SCHED_FLAG_D_L_OVERRUN",
            _ => continue,
        };
        *flag = oci_spec_name.into();
    }
}

/// Remove from process.capabilities every name oci-spec cannot read; returns what was removed.
fn drop_unknown_capabilities(spec: &mut serde_json::Value) -> Vec<String> {
    let mut dropped = Vec::new();
    let Some(sets) = spec
        .pointer_mut("/process/capabilities")
        .and_then(|c| c.as_object_mut())
    else {
        return dropped;
    };
    for list in sets.values_mut().filter_map(|l| l.as_array_mut()) {
        list.retain(|cap| {
            let known = serde_json::from_value::<oci_spec::runtime::Capability>(cap.clone()).is_ok();
            if !known {
                dropped.push(cap.as_str().unwrap_or("?").to_string());
            }
            known
        });
    }
    dropped.sort();
    dropped.dedup();
    dropped
}

/// The OCI versions hezi reads: 1.0.0 up to 1.3.x (patch and pre-release suffixes allowed).
fn version_supported(v: &str) -> bool {
    let mut parts = v.split(['.', '-', '+']);
    matches!((parts.next(), parts.next()), (Some("1"), Some("0" | "1" | "2" | "3")))
}

/// Checks that need the whole spec; `config` only names the file in errors.
pub fn validate(spec: &Spec, config: &Path) -> Result<()> {
    let bad = |message: String| {
        Err(Error::Spec {
            path: config.into(),
            message,
        })
    };
    if !version_supported(spec.version()) {
        return bad(format!(
            "unsupported ociVersion {:?} (hezi reads 1.0 to 1.3)",
            spec.version()
        ));
    }
    if spec.root().is_none() {
        return bad("root is required".into());
    }
    let Some(process) = spec.process() else {
        return bad("process is required".into());
    };
    if process.args().as_ref().is_none_or(|a| a.is_empty()) {
        return bad("process.args must not be empty".into());
    }
    if !process.cwd().is_absolute() {
        return bad(format!("process.cwd {:?} must be an absolute path", process.cwd()));
    }
    if let Err(m) = crate::hooks::validate(spec.hooks().as_ref()) {
        return bad(m);
    }
    // A relative mount destination is deprecated but allowed, read as relative to "/"
    // (config.md "Mounts"); the mount code resolves every destination under the rootfs.
    for m in spec.mounts().iter().flatten() {
        if let Err(e) = crate::rootfs::options::parse(m.options().as_deref().unwrap_or(&[])) {
            return bad(format!("mount {}: {e}", m.destination().display()));
        }
    }
    let Some(linux) = spec.linux() else {
        return Ok(());
    };
    let mut seen = HashSet::new();
    for ns in linux.namespaces().iter().flatten() {
        if !seen.insert(ns.typ()) {
            return bad(format!("namespace {} is listed more than once", ns_name(ns.typ())));
        }
        if let Some(p) = ns.path() {
            if !p.is_absolute() {
                return bad(format!("namespace {} path {:?} must be absolute", ns_name(ns.typ()), p));
            }
        }
    }
    let has_userns = seen.contains(&LinuxNamespaceType::User);
    let maps = linux
        .uid_mappings()
        .iter()
        .chain(linux.gid_mappings().iter())
        .any(|m| !m.is_empty());
    if maps && !has_userns {
        return bad("uidMappings/gidMappings need a user namespace".into());
    }
    if linux.time_offsets().as_ref().is_some_and(|t| !t.is_empty()) && !seen.contains(&LinuxNamespaceType::Time) {
        return bad("timeOffsets need a time namespace".into());
    }
    if let Some(sysctl) = linux.sysctl() {
        for key in sysctl.keys() {
            if key.is_empty() || key.contains("..") || key.starts_with(['/', '.']) {
                return bad(format!("invalid sysctl name {key:?}"));
            }
        }
    }
    Ok(())
}

/// The spec's name for a namespace type.
pub fn ns_name(t: LinuxNamespaceType) -> &'static str {
    match t {
        LinuxNamespaceType::Mount => "mount",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "network",
        LinuxNamespaceType::Time => "time",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> std::result::Result<Spec, String> {
        parse_bytes(json.as_bytes())
    }

    const MIN: &str = r#"{"ociVersion":"1.0.2","root":{"path":"rootfs"},"process":{"cwd":"/","args":["sh"],"user":{"uid":0,"gid":0}}"#;

    fn with(extra: &str) -> String {
        format!("{MIN}{extra}}}")
    }

    #[test]
    fn syntax_error_names_position() {
        let err = spec("{\n  \"ociVersion\": ,\n}").unwrap_err();
        assert!(err.contains("line 2"), "{err}");
    }

    #[test]
    fn type_error_names_position() {
        let err = spec("{\n  \"ociVersion\": 1\n}").unwrap_err();
        assert!(err.contains("line 2"), "{err}");
    }

    /// runc's decoder matches keys ignoring case; a namespace listed twice it refuses
    /// ("duplicated ns"), under any spelling.
    #[test]
    fn keys_in_another_case_are_read_and_duplicates_still_refused() {
        let s = spec(&with(
            r#","Hostname":"h","linux":{"namespaces":[{"Type":"uts"}],"maskedpaths":["/x"]}"#,
        ))
        .unwrap();
        assert_eq!(s.hostname().as_deref(), Some("h"));
        let linux = s.linux().as_ref().unwrap();
        assert_eq!(linux.namespaces().as_ref().unwrap()[0].typ(), LinuxNamespaceType::Uts);
        assert_eq!(linux.masked_paths().as_deref(), Some(&["/x".to_string()][..]));
        let s = spec(&with(r#","linux":{"namespaces":[{"type":"pid"},{"TYPE":"pid"}]}"#)).unwrap();
        assert!(validate(&s, Path::new("config.json")).is_err());
    }

    #[test]
    fn scheduler_flags_as_the_spec_spells_them() {
        let flags = r#"["SCHED_FLAG_RESET_ON_FORK","SCHED_FLAG_DL_OVERRUN","SCHED_FLAG_RECLAIM"]"#;
        let scheduler = format!(r#""scheduler":{{"policy":"SCHED_OTHER","flags":{flags}}},"user":"#);
        let s = spec(&with("").replace(r#""user":"#, &scheduler)).unwrap();
        let flags = s
            .process()
            .as_ref()
            .unwrap()
            .scheduler()
            .as_ref()
            .unwrap()
            .flags()
            .clone();
        use oci_spec::runtime::LinuxSchedulerFlag as F;
        assert_eq!(
            flags,
            Some(vec![F::SchedResetOnFork, F::SchedFlagDLOverrun, F::SchedFlagReclaim])
        );
    }

    #[test]
    fn accepts_minimal_spec() {
        let s = spec(&with("")).unwrap();
        validate(&s, Path::new("config.json")).unwrap();
    }

    #[test]
    fn version_range() {
        for v in ["1.0.0", "1.0.2-dev", "1.1.0", "1.2.0", "1.3.0-rc.1"] {
            assert!(version_supported(v), "{v}");
        }
        for v in ["", "0.9.0", "2.0.0", "1.9.0", "banana"] {
            assert!(!version_supported(v), "{v}");
        }
    }

    #[test]
    fn rejects_duplicate_namespace() {
        let s = spec(&with(r#","linux":{"namespaces":[{"type":"pid"},{"type":"pid"}]}"#)).unwrap();
        let err = validate(&s, Path::new("config.json")).unwrap_err().to_string();
        assert!(err.contains("namespace pid is listed more than once"), "{err}");
    }

    #[test]
    fn rejects_unknown_namespace_at_parse() {
        let err = spec(&with(r#","linux":{"namespaces":[{"type":"bogus"}]}"#)).unwrap_err();
        assert!(err.contains("bogus"), "{err}");
    }

    #[test]
    fn rejects_relative_cwd_accepts_relative_mount() {
        let s = spec(&MIN.replace(r#""cwd":"/""#, r#""cwd":"tmp""#).replace("}}", "}}}")).unwrap();
        assert!(validate(&s, Path::new("c")).is_err());
        let s = spec(&with(
            r#","mounts":[{"destination":"proc","type":"proc","source":"proc"}]"#,
        ))
        .unwrap();
        validate(&s, Path::new("c")).unwrap();
    }

    #[test]
    fn hook_paths_absolute_and_timeouts_positive() {
        let s = spec(&with(r#","hooks":{"poststart":[{"path":"/bin/true","timeout":0}]}"#)).unwrap();
        let err = validate(&s, Path::new("c")).unwrap_err().to_string();
        assert!(
            err.contains("poststart hook #0: timeout 0 must be greater than zero"),
            "{err}"
        );
        let s = spec(&with(r#","hooks":{"prestart":[{"path":"true"}]}"#)).unwrap();
        let err = validate(&s, Path::new("c")).unwrap_err().to_string();
        assert!(err.contains("path true must be absolute"), "{err}");
        let s = spec(&with(r#","hooks":{"prestart":[{"path":"/bin/true","timeout":5}]}"#)).unwrap();
        validate(&s, Path::new("c")).unwrap();
    }

    #[test]
    fn unknown_capabilities_are_dropped_with_a_warning() {
        let s = spec(concat!(
            r#"{"ociVersion":"1.0.2","root":{"path":"rootfs"},"process":{"cwd":"/","args":["sh"],"#,
            r#""user":{"uid":0,"gid":0},"capabilities":{"bounding":["CAP_KILL","CAP_NOT_REAL"],"#,
            r#""ambient":["CAP_NOT_REAL"]}}}"#
        ))
        .unwrap();
        let caps = s.process().as_ref().unwrap().capabilities().as_ref().unwrap();
        assert_eq!(caps.bounding().as_ref().unwrap().len(), 1);
        assert!(caps.ambient().as_ref().unwrap().is_empty());
        // Other type errors keep their position.
        let err = spec(r#"{"ociVersion": 7}"#).unwrap_err();
        assert!(err.contains("line 1"), "{err}");
    }

    #[test]
    fn rejects_maps_without_userns() {
        let s = spec(&with(
            r#","linux":{"uidMappings":[{"containerID":0,"hostID":1000,"size":1}]}"#,
        ))
        .unwrap();
        assert!(validate(&s, Path::new("c")).is_err());
    }
}
