//! The suite's two images, made here rather than pulled (the test machines reach no registry):
//! busybox, and a pause image for the sandbox. Each is written as an OCI image layout, tarred
//! as the archive `ctr images import` reads, with the full name in the index's
//! `io.containerd.image.name` annotation so the import needs no `--base-name`.

use std::path::Path;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// The busybox image the containers run (name as the CRI's ImageSpec gives it).
pub const BUSYBOX_IMAGE: &str = "docker.io/library/busybox:hezi-test";
/// The sandbox (pause) image: containerd's `sandbox_image` names it. A name no registry serves,
/// so a failed import shows up as a failed pull instead of silently fetching a real pause.
pub const PAUSE_IMAGE: &str = "docker.io/library/hezi-pause:test";

/// Busybox applets the images link in /bin; the rest of busybox is reachable as `busybox X`.
const APPLETS: &[&str] = &[
    "sh", "cat", "echo", "sleep", "true", "false", "ls", "grep", "hostname", "nc", "wget", "httpd", "ip", "ifconfig",
    "ps", "id", "env", "readlink", "mkdir", "kill", "head", "tr",
];

/// One uncompressed layer: busybox-static with its applets, /etc/passwd and /etc/group, and the
/// empty directories the runtime mounts over.
fn busybox_layer() -> Vec<u8> {
    let busybox = std::fs::read(hezi_e2e::BUSYBOX).expect("read busybox");
    let mut t = tar::Builder::new(Vec::new());
    for d in ["bin/", "etc/", "proc/", "sys/", "dev/", "tmp/", "var/", "root/"] {
        append(&mut t, tar::EntryType::Directory, d, 0o755, "", b"");
    }
    append(&mut t, tar::EntryType::Regular, "bin/busybox", 0o755, "", &busybox);
    for a in APPLETS {
        append(
            &mut t,
            tar::EntryType::Symlink,
            &format!("bin/{a}"),
            0o777,
            "busybox",
            b"",
        );
    }
    let passwd = b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n";
    append(&mut t, tar::EntryType::Regular, "etc/passwd", 0o644, "", passwd);
    append(
        &mut t,
        tar::EntryType::Regular,
        "etc/group",
        0o644,
        "",
        b"root:x:0:\nnogroup:x:65534:\n",
    );
    t.into_inner().expect("finish layer tar")
}

fn append(t: &mut tar::Builder<Vec<u8>>, kind: tar::EntryType, path: &str, mode: u32, link: &str, data: &[u8]) {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    // A fixed time keeps the layer (and so every digest) the same from run to run.
    h.set_mtime(1_700_000_000);
    h.set_size(data.len() as u64);
    if !link.is_empty() {
        h.set_link_name(link).expect("link name");
    }
    t.append_data(&mut h, path, data).expect("append to tar");
}

fn sha256(data: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(data))
}

/// containerd unpacks only the manifest for its own platform, so the config says which that is.
fn goarch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// Write the OCI archive (a tar of an image layout) for image `name` with entrypoint
/// `entrypoint` and default arguments `cmd` to `path`.
fn write_archive(path: &Path, name: &str, entrypoint: &[&str], cmd: &[&str]) {
    let layer = busybox_layer();
    let config = json!({
        "architecture": goarch(),
        "os": "linux",
        "config": {
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Entrypoint": entrypoint,
            "Cmd": cmd,
            "WorkingDir": "/",
        },
        "rootfs": { "type": "layers", "diff_ids": [sha256(&layer)] },
    });
    let config = serde_json::to_vec(&config).expect("serialize config");
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": descriptor("application/vnd.oci.image.config.v1+json", &config),
        "layers": [descriptor("application/vnd.oci.image.layer.v1.tar", &layer)],
    });
    let manifest = serde_json::to_vec(&manifest).expect("serialize manifest");
    let tag = name.rsplit_once(':').map(|(_, t)| t).unwrap_or("latest");
    let mut entry = descriptor("application/vnd.oci.image.manifest.v1+json", &manifest);
    entry["annotations"] = json!({
        "io.containerd.image.name": name,
        "org.opencontainers.image.ref.name": tag,
    });
    let index = json!({ "schemaVersion": 2, "manifests": [entry] });

    let mut t = tar::Builder::new(Vec::new());
    append(
        &mut t,
        tar::EntryType::Regular,
        "oci-layout",
        0o644,
        "",
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    );
    let index = serde_json::to_vec(&index).expect("serialize index");
    append(&mut t, tar::EntryType::Regular, "index.json", 0o644, "", &index);
    for blob in [&layer, &config, &manifest] {
        let digest = sha256(blob);
        let hex = digest.trim_start_matches("sha256:");
        append(
            &mut t,
            tar::EntryType::Regular,
            &format!("blobs/sha256/{hex}"),
            0o644,
            "",
            blob,
        );
    }
    std::fs::write(path, t.into_inner().expect("finish archive")).expect("write image archive");
}

fn descriptor(media_type: &str, blob: &[u8]) -> Value {
    json!({ "mediaType": media_type, "digest": sha256(blob), "size": blob.len() })
}

/// Write both archives into `dir`; returns their paths (busybox, pause).
pub fn write_archives(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let busybox = dir.join("busybox.tar");
    write_archive(&busybox, BUSYBOX_IMAGE, &[], &["sh"]);
    // The sandbox only has to hold the pod's namespaces open until it is killed; busybox's
    // `sleep infinity` does that. Unlike the real pause it neither reaps zombies of a shared pid
    // namespace nor exits on SIGTERM: containerd stops a sandbox with SIGKILL anyway, and the
    // tests give pods no shared pid namespace.
    let pause = dir.join("pause.tar");
    write_archive(&pause, PAUSE_IMAGE, &["/bin/sleep", "infinity"], &[]);
    (busybox, pause)
}
