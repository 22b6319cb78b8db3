//! What the image tests share: tools they need, a small tar writer, the test layers and image
//! config, OCI archives made by hand, a real registry (Debian's docker-registry) and a fake one,
//! and the checks that nothing is left behind. Each test file uses a part of it.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use hezi_e2e::{mounts_under, Hezi, TempDir, BUSYBOX};
use serde_json::{json, Value};

/// Tools these tests need besides the harness's: skip (or fail under CI) without them.
pub fn tools(names: &[&str]) -> bool {
    let missing: Vec<&str> = names
        .iter()
        .copied()
        .filter(|t| {
            !Command::new("sh")
                .args(["-c", &format!("command -v {t}")])
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .collect();
    if missing.is_empty() {
        return true;
    }
    let msg = format!(
        "needs {} (apt-get install umoci skopeo docker-registry)",
        missing.join(", ")
    );
    if std::env::var_os("CI").is_some() {
        panic!("{msg}: CI must provide it");
    }
    eprintln!("SKIP: {msg}");
    false
}

pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `hezi --root R ARGS` with extra environment; returns the output. Output goes through files,
/// not pipes, as in the harness: a detached container keeps its copies open.
pub fn hezi_env(h: &Hezi, env: &[(&str, &str)], args: &[&str]) -> Output {
    let io = TempDir::new("io");
    let (out, err) = (io.path().join("out"), io.path().join("err"));
    let mut c = h.command(args);
    for (k, v) in env {
        c.env(k, v);
    }
    let status = c
        .stdout(std::fs::File::create(&out).expect("create stdout file"))
        .stderr(std::fs::File::create(&err).expect("create stderr file"))
        .status()
        .expect("spawn hezi");
    Output {
        status,
        stdout: std::fs::read(&out).unwrap_or_default(),
        stderr: std::fs::read(&err).unwrap_or_default(),
    }
}

pub fn ok_env(h: &Hezi, env: &[(&str, &str)], args: &[&str]) -> String {
    let o = hezi_env(h, env, args);
    assert!(o.status.success(), "hezi {args:?} {env:?} failed: {}", text(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn fails(h: &Hezi, args: &[&str]) -> String {
    let o = h.cmd(args);
    assert!(!o.status.success(), "hezi {args:?} should fail: {}", text(&o));
    text(&o)
}

pub fn sh(cmd: &str) {
    let o = Command::new("sh").args(["-c", cmd]).output().expect("spawn sh");
    assert!(o.status.success(), "{cmd}: {}", text(&o));
}

pub fn sha256(data: &[u8]) -> String {
    let mut c = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("sha256sum");
    c.stdin.take().expect("stdin").write_all(data).expect("feed sha256sum");
    let o = c.wait_with_output().expect("sha256sum output");
    String::from_utf8_lossy(&o.stdout)[..64].to_string()
}

pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// A tiny ustar writer: the layers here need entries GNU tar will not make from a directory
/// (a file beneath a symlink) and exact owners without chown games.
#[derive(Default)]
pub struct Tar(Vec<u8>);

impl Tar {
    pub fn entry(&mut self, name: &str, kind: u8, mode: u32, owner: (u32, u32), link: &str, data: &[u8]) -> &mut Self {
        let mut h = [0u8; 512];
        h[..name.len()].copy_from_slice(name.as_bytes());
        let octal = |h: &mut [u8; 512], at: usize, width: usize, v: u64| {
            let s = format!("{v:0w$o}\0", w = width - 1);
            h[at..at + width].copy_from_slice(s.as_bytes());
        };
        octal(&mut h, 100, 8, mode as u64);
        octal(&mut h, 108, 8, owner.0 as u64);
        octal(&mut h, 116, 8, owner.1 as u64);
        octal(&mut h, 124, 12, data.len() as u64);
        octal(&mut h, 136, 12, 1_600_000_000);
        h[156] = kind;
        h[157..157 + link.len()].copy_from_slice(link.as_bytes());
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|b| *b as u32).sum();
        h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        self.0.extend_from_slice(&h);
        self.0.extend_from_slice(data);
        self.0.resize(self.0.len().div_ceil(512) * 512, 0);
        self
    }
    pub fn dir(&mut self, name: &str) -> &mut Self {
        self.entry(name, b'5', 0o755, (0, 0), "", b"")
    }
    pub fn file(&mut self, name: &str, data: &[u8]) -> &mut Self {
        self.entry(name, b'0', 0o644, (0, 0), "", data)
    }
    pub fn symlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.entry(name, b'2', 0o777, (0, 0), target, b"")
    }
    pub fn finish(&self) -> Vec<u8> {
        let mut out = self.0.clone();
        out.extend_from_slice(&[0u8; 1024]);
        out
    }
}

/// The two test layers: a busybox base, then one that deletes /etc/gone (whiteout), makes
/// /opq opaque and adds files, a hard link, a fifo and a file with its own owner and mode.
pub fn test_layers() -> (Vec<u8>, Vec<u8>) {
    let busybox = std::fs::read(BUSYBOX).expect("read busybox");
    let mut l1 = Tar::default();
    l1.dir("bin/")
        .dir("etc/")
        .dir("opq/")
        .dir("keep/")
        .dir("home/")
        .dir("home/app/");
    l1.entry("bin/busybox", b'0', 0o755, (0, 0), "", &busybox);
    for a in ["sh", "ls", "cat", "id", "stat", "pwd", "echo", "test"] {
        l1.symlink(&format!("bin/{a}"), "busybox");
    }
    l1.file(
        "etc/passwd",
        b"root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n",
    )
    .file("etc/group", b"root:x:0:\napp:x:1000:\nextra:x:2000:app\n")
    .file("etc/gone", b"base\n")
    .file("opq/old", b"old\n")
    .file("keep/k", b"k\n");
    let mut l2 = Tar::default();
    l2.dir("etc/")
        .file("etc/.wh.gone", b"")
        .dir("opq/")
        .file("opq/.wh..wh..opq", b"")
        .file("opq/new", b"new\n")
        .file("added", b"added\n")
        .entry("added2", b'1', 0o644, (0, 0), "added", b"")
        .entry("fifo", b'6', 0o600, (0, 0), "", b"")
        .entry("owned", b'0', 0o640, (1000, 2000), "", b"mine\n");
    (l1.finish(), l2.finish())
}

/// The config for the test layers (plain tars) with run settings.
pub fn test_config(diff_ids: &[String]) -> Value {
    json!({
        "architecture": host_arch(), "os": "linux",
        "config": {
            "Cmd": ["sh", "-c", "echo default-cmd"],
            "Env": ["FOO=bar"], "WorkingDir": "/keep", "User": "app"
        },
        "rootfs": { "type": "layers", "diff_ids": diff_ids.iter().map(|d| format!("sha256:{d}")).collect::<Vec<_>>() }
    })
}

/// What the container sees of the test image, printed one fact per line.
pub const PROBE: &str = "test -e /etc/gone && echo gone-present; ls /opq; cat /keep/k /added; \
    test -p /fifo && echo fifo; stat -c '%u:%g %a' /owned; stat -c %i /added /added2; \
    id; pwd; echo FOO=$FOO";

pub fn check_probe(out: &str) {
    let lines: Vec<&str> = out.lines().collect();
    assert!(!out.contains("gone-present"), "whiteout ignored: {out}");
    assert_eq!(lines[..5], ["new", "k", "added", "fifo", "1000:2000 640"], "{out}");
    assert_eq!(lines[5], lines[6], "hard link lost: {out}");
    assert!(lines[7].starts_with("uid=1000(app) gid=1000(app) groups="), "{out}");
    assert!(lines[7].contains("2000(extra)"), "additional gid missing: {out}");
    assert_eq!(lines[8..], ["/keep", "FOO=bar"], "{out}");
}

/// An OCI image layout for `layers` (plain tars) and `config`, tarred into `dir/name`;
/// `tweak` may edit the manifest before it is stored.
pub fn oci_archive(dir: &Path, name: &str, layers: &[Vec<u8>], config: &Value, tweak: impl Fn(&mut Value)) -> PathBuf {
    let lay = dir.join(format!("{name}.layout"));
    std::fs::create_dir_all(lay.join("blobs/sha256")).unwrap();
    let put = |data: &[u8]| {
        let d = sha256(data);
        std::fs::write(lay.join("blobs/sha256").join(&d), data).unwrap();
        (format!("sha256:{d}"), data.len())
    };
    let layer_descs: Vec<Value> = layers
        .iter()
        .map(|l| {
            let (d, n) = put(l);
            json!({ "mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d, "size": n })
        })
        .collect();
    let cfg = serde_json::to_vec(config).unwrap();
    let (cd, cn) = put(&cfg);
    let mut manifest = json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": { "mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cn },
        "layers": layer_descs
    });
    tweak(&mut manifest);
    let (md, mn) = put(&serde_json::to_vec(&manifest).unwrap());
    let index = json!({ "schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": mn,
        "platform": { "os": "linux", "architecture": host_arch() } }] });
    std::fs::write(lay.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    std::fs::write(lay.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let out = dir.join(name);
    sh(&format!("tar -C {} -cf {} .", lay.display(), out.display()));
    out
}

/// The image store of a hezi root, as the bridge lays it out.
pub fn store(h: &Hezi) -> PathBuf {
    h.root().join(".images")
}

pub fn count(dir: &Path) -> usize {
    std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

/// After a container from an image is gone: no bundle, no mount under the root, no snapshot
/// but the image's own.
pub fn assert_bundle_gone(h: &Hezi, id: &str) {
    assert!(!h.root().join(".bundles").join(id).exists(), "bundle of {id} left");
    let left = mounts_under(h.root());
    assert!(left.is_empty(), "mounts left: {left:?}");
}

/// Nothing half-made after a failed import: no record, blob, snapshot or temp file.
pub fn assert_store_clean(h: &Hezi) {
    assert_eq!(h.ok(&["image", "ls", "-q"]), "");
    for d in ["blobs/sha256", "snapshots", "tmp"] {
        let p = store(h).join(d);
        assert_eq!(count(&p), 0, "{} not empty", p.display());
    }
}

/// Debian's docker-registry on a free loopback port, storing in a temp dir; killed on drop.
pub struct Registry {
    child: Child,
    pub port: u16,
    _dir: TempDir,
}

impl Registry {
    pub fn start(htpasswd: Option<&str>) -> Registry {
        let dir = TempDir::new("registry");
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let auth = match htpasswd {
            Some(line) => {
                std::fs::write(dir.path().join("htpasswd"), format!("{line}\n")).unwrap();
                format!(
                    "auth:\n  htpasswd:\n    realm: hezi-test\n    path: {}\n",
                    dir.path().join("htpasswd").display()
                )
            }
            None => String::new(),
        };
        let config = format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
             http:\n  addr: 127.0.0.1:{port}\n{auth}",
            dir.path().join("data").display()
        );
        std::fs::write(dir.path().join("config.yml"), config).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(dir.path().join("config.yml"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("log")).unwrap())
            .spawn()
            .expect("start docker-registry");
        let deadline = Instant::now() + Duration::from_secs(15);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "docker-registry did not listen on {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        Registry { child, port, _dir: dir }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fake registry on a free loopback port: `respond(request head, port)` gives each answer's
/// (status, extra header lines, body).
pub fn fake_registry(respond: impl Fn(&str, u16) -> (String, String, String) + Send + 'static) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming().take(8) {
            let Ok(mut s) = s else { continue };
            let mut req = Vec::new();
            let mut buf = [0u8; 4096];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            let (status, extra, body) = respond(&String::from_utf8_lossy(&req).to_lowercase(), port);
            let _ = write!(
                s,
                "HTTP/1.1 {status}\r\n{extra}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    port
}

/// An OCI layout (a directory, for skopeo's `oci:`) holding one image index with a manifest
/// for the host and one for `other_arch`: the test base layer, then a layer with `/arch`
/// saying which one it is. Returns the layout's path.
pub fn multi_platform_layout(dir: &Path, other_arch: &str) -> PathBuf {
    let (base, _) = test_layers();
    let lay = dir.join("multi.layout");
    let blobs = lay.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let put = |data: &[u8], media_type: &str| {
        let d = sha256(data);
        std::fs::write(blobs.join(&d), data).unwrap();
        json!({ "mediaType": media_type, "digest": format!("sha256:{d}"), "size": data.len() })
    };
    let layer = "application/vnd.oci.image.layer.v1.tar";
    let mut manifests = Vec::new();
    for arch in [host_arch(), other_arch] {
        let mut marker = Tar::default();
        marker.file("arch", format!("{arch}\n").as_bytes());
        let marker = marker.finish();
        let mut cfg = test_config(&[sha256(&base), sha256(&marker)]);
        cfg["architecture"] = json!(arch);
        let manifest = json!({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": put(&serde_json::to_vec(&cfg).unwrap(), "application/vnd.oci.image.config.v1+json"),
            "layers": [put(&base, layer), put(&marker, layer)]
        });
        let mut d = put(
            &serde_json::to_vec(&manifest).unwrap(),
            "application/vnd.oci.image.manifest.v1+json",
        );
        d["platform"] = json!({ "os": "linux", "architecture": arch });
        manifests.push(d);
    }
    let index =
        json!({ "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": manifests });
    let top = put(
        &serde_json::to_vec(&index).unwrap(),
        "application/vnd.oci.image.index.v1+json",
    );
    std::fs::write(
        lay.join("index.json"),
        serde_json::to_vec(&json!({ "schemaVersion": 2, "manifests": [top] })).unwrap(),
    )
    .unwrap();
    std::fs::write(lay.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    lay
}

/// Debian's docker-registry as [`Registry::start`] runs it, with `storage_extra` added under
/// `storage:` (indented two spaces): `maintenance: {readonly: {enabled: true}}` makes it refuse
/// every push.
pub fn registry_with(storage_extra: &str) -> Registry {
    let dir = TempDir::new("registry");
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let config = format!(
        "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  {storage_extra}\n\
         http:\n  addr: 127.0.0.1:{port}\n",
        dir.path().join("data").display()
    );
    std::fs::write(dir.path().join("config.yml"), config).unwrap();
    let child = Command::new("docker-registry")
        .arg("serve")
        .arg(dir.path().join("config.yml"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("log")).unwrap())
        .spawn()
        .expect("start docker-registry");
    let deadline = Instant::now() + Duration::from_secs(15);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "docker-registry did not listen on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
    Registry { child, port, _dir: dir }
}

/// Every file under the image store but the lock and driver files, with its size: a bad
/// command must leave this as it found it.
pub fn store_files(h: &Hezi) -> Vec<(String, u64)> {
    let root = store(h);
    let mut out = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            let md = std::fs::symlink_metadata(&p).unwrap();
            if md.is_dir() {
                out.push((p.strip_prefix(&root).unwrap().display().to_string() + "/", 0));
                stack.push(p);
            } else {
                let name = p.strip_prefix(&root).unwrap().display().to_string();
                if name != "lock" && name != "driver" {
                    out.push((name, md.len()));
                }
            }
        }
    }
    out.sort();
    out
}

/// A registry in the test process serving one image from memory over plain HTTP on loopback,
/// as slow as asked: while `slow` is set, every body (sent for a pull, received for a push)
/// moves in 64 KiB pieces with `pause` between them, so a transfer can be interrupted midway.
/// Pushes are taken and thrown away. Runs until the test process ends.
pub struct SlowRegistry {
    pub port: u16,
    pub slow: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl SlowRegistry {
    /// Serve `layers` (plain tars) and `config` as `<repo>:<tag>` (an OCI manifest).
    pub fn start(repo: &str, tag: &str, layers: &[Vec<u8>], config: &Value, pause: Duration) -> SlowRegistry {
        use std::collections::HashMap;
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::Arc;
        let mut blobs: HashMap<String, (String, Vec<u8>)> = HashMap::new();
        let mut put = |media_type: &str, data: Vec<u8>| {
            let d = format!("sha256:{}", sha256(&data));
            let desc = json!({ "mediaType": media_type, "digest": d, "size": data.len() });
            blobs.insert(d, (media_type.to_string(), data));
            desc
        };
        let layer_descs: Vec<Value> = layers
            .iter()
            .map(|l| put("application/vnd.oci.image.layer.v1.tar", l.clone()))
            .collect();
        let cfg = put(
            "application/vnd.oci.image.config.v1+json",
            serde_json::to_vec(config).unwrap(),
        );
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": cfg, "layers": layer_descs
        }))
        .unwrap();
        let mt = "application/vnd.oci.image.manifest.v1+json".to_string();
        let md = put(&mt, manifest.clone())["digest"].as_str().unwrap().to_string();
        blobs.insert(format!("manifests/{tag}"), (mt.clone(), manifest.clone()));
        blobs.insert(format!("manifests/{md}"), (mt, manifest));
        let blobs = Arc::new(blobs);
        let slow = Arc::new(AtomicBool::new(true));
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let (prefix, flag) = (format!("/v2/{repo}/"), slow.clone());
        std::thread::spawn(move || {
            for s in l.incoming() {
                let Ok(s) = s else { continue };
                let (blobs, prefix, slow) = (blobs.clone(), prefix.clone(), flag.clone());
                std::thread::spawn(move || {
                    let pace = || {
                        if slow.load(Ordering::Relaxed) {
                            std::thread::sleep(pause)
                        }
                    };
                    let _ = serve_one(s, &blobs, &prefix, &pace);
                });
            }
        });
        SlowRegistry { port, slow }
    }
}

/// One request of [`SlowRegistry`]'s on `s` (then the connection closes).
fn serve_one(
    mut s: TcpStream,
    blobs: &std::collections::HashMap<String, (String, Vec<u8>)>,
    prefix: &str,
    pace: &dyn Fn(),
) -> std::io::Result<()> {
    let mut req = Vec::new();
    let mut buf = [0u8; 65536];
    let head_end = loop {
        if let Some(i) = req.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match s.read(&mut buf)? {
            0 => return Ok(()),
            n => req.extend_from_slice(&buf[..n]),
        }
    };
    let head = String::from_utf8_lossy(&req[..head_end]).to_string();
    let mut words = head.split_whitespace();
    let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let path = path.split('?').next().unwrap_or("");
    let length: usize = head
        .lines()
        .find_map(|l| {
            l.to_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse().unwrap_or(0))
        })
        .unwrap_or(0);
    // A body sent to us (a push) is read as slowly as ours are sent.
    let mut got = req.len() - head_end;
    while got < length {
        pace();
        match s.read(&mut buf)? {
            0 => return Ok(()),
            n => got += n,
        }
    }
    let found = path.strip_prefix(prefix).and_then(|rest| {
        blobs
            .get(rest)
            .or_else(|| rest.strip_prefix("blobs/").and_then(|d| blobs.get(d)))
    });
    let (status, extra, body): (&str, String, &[u8]) = match (method, found) {
        (_, _) if path == "/v2/" => ("200 OK", String::new(), b"{}"),
        ("GET", Some((mt, data))) => ("200 OK", format!("Content-Type: {mt}\r\n"), data),
        ("HEAD", Some((mt, data))) => (
            "200 OK",
            format!("Content-Type: {mt}\r\nContent-Length: {}\r\n", data.len()),
            b"",
        ),
        ("POST", _) => ("202 Accepted", format!("Location: {prefix}blobs/uploads/1\r\n"), b""),
        ("PUT", _) => ("201 Created", String::new(), b""),
        _ => ("404 Not Found", String::new(), b""),
    };
    let length = if method == "HEAD" {
        String::new()
    } else {
        format!("Content-Length: {}\r\n", body.len())
    };
    write!(s, "HTTP/1.1 {status}\r\n{extra}{length}Connection: close\r\n\r\n")?;
    for piece in body.chunks(65536) {
        s.write_all(piece)?;
        pace();
    }
    Ok(())
}

/// `len` bytes no compressor shrinks (a linear congruential generator's), for big layers.
pub fn noise(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (x >> 33) as u8
        })
        .collect()
}
