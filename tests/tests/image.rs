//! Images end to end: `hezi image demo|import|pull|ls|rm` and `hezi run --image`, with images
//! this suite builds itself (umoci for the OCI archive, a docker-save layout and a small tar
//! writer by hand), a real registry (Debian's docker-registry on a free loopback port, pushed to
//! with skopeo), both snapshotters, and bad input that must fail cleanly.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use hezi_e2e::{mounts_under, require, unique_id, Hezi, TempDir, BUSYBOX};
use serde_json::{json, Value};

/// Tools these tests need besides the harness's: skip (or fail under CI) without them.
fn tools(names: &[&str]) -> bool {
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

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `hezi --root R ARGS` with extra environment; returns the output. Output goes through files,
/// not pipes, as in the harness: a detached container keeps its copies open.
fn hezi_env(h: &Hezi, env: &[(&str, &str)], args: &[&str]) -> Output {
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

fn ok_env(h: &Hezi, env: &[(&str, &str)], args: &[&str]) -> String {
    let o = hezi_env(h, env, args);
    assert!(o.status.success(), "hezi {args:?} {env:?} failed: {}", text(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn fails(h: &Hezi, args: &[&str]) -> String {
    let o = h.cmd(args);
    assert!(!o.status.success(), "hezi {args:?} should fail: {}", text(&o));
    text(&o)
}

fn sh(cmd: &str) {
    let o = Command::new("sh").args(["-c", cmd]).output().expect("spawn sh");
    assert!(o.status.success(), "{cmd}: {}", text(&o));
}

fn sha256(data: &[u8]) -> String {
    let mut c = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("sha256sum");
    c.stdin.take().expect("stdin").write_all(data).expect("feed sha256sum");
    let o = c.wait_with_output().expect("sha256sum output");
    String::from_utf8_lossy(&o.stdout)[..64].to_string()
}

fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// A tiny ustar writer: the layers here need entries GNU tar will not make from a directory
/// (a file beneath a symlink) and exact owners without chown games.
#[derive(Default)]
struct Tar(Vec<u8>);

impl Tar {
    fn entry(&mut self, name: &str, kind: u8, mode: u32, owner: (u32, u32), link: &str, data: &[u8]) -> &mut Self {
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
    fn dir(&mut self, name: &str) -> &mut Self {
        self.entry(name, b'5', 0o755, (0, 0), "", b"")
    }
    fn file(&mut self, name: &str, data: &[u8]) -> &mut Self {
        self.entry(name, b'0', 0o644, (0, 0), "", data)
    }
    fn symlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.entry(name, b'2', 0o777, (0, 0), target, b"")
    }
    fn finish(&self) -> Vec<u8> {
        let mut out = self.0.clone();
        out.extend_from_slice(&[0u8; 1024]);
        out
    }
}

/// The two test layers: a busybox base, then one that deletes /etc/gone (whiteout), makes
/// /opq opaque and adds files, a hard link, a fifo and a file with its own owner and mode.
fn test_layers() -> (Vec<u8>, Vec<u8>) {
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
fn test_config(diff_ids: &[String]) -> Value {
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
const PROBE: &str = "test -e /etc/gone && echo gone-present; ls /opq; cat /keep/k /added; \
    test -p /fifo && echo fifo; stat -c '%u:%g %a' /owned; stat -c %i /added /added2; \
    id; pwd; echo FOO=$FOO";

fn check_probe(out: &str) {
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
fn oci_archive(dir: &Path, name: &str, layers: &[Vec<u8>], config: &Value, tweak: impl Fn(&mut Value)) -> PathBuf {
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
fn store(h: &Hezi) -> PathBuf {
    h.root().join(".images")
}

fn count(dir: &Path) -> usize {
    std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

/// After a container from an image is gone: no bundle, no mount under the root, no snapshot
/// but the image's own.
fn assert_bundle_gone(h: &Hezi, id: &str) {
    assert!(!h.root().join(".bundles").join(id).exists(), "bundle of {id} left");
    let left = mounts_under(h.root());
    assert!(left.is_empty(), "mounts left: {left:?}");
}

#[test]
fn demo_image_quick_start() {
    require!();
    let h = Hezi::new();
    let first = h.ok(&["image", "demo"]);
    assert!(first.starts_with("hezi.local/demo:latest sha256:"), "{first}");
    let ls: Value = serde_json::from_str(&h.ok(&["image", "ls", "--format", "json"])).unwrap();
    assert_eq!(ls[0]["name"], "hezi.local/demo:latest");
    assert_eq!(ls[0]["platform"], format!("linux/{}", host_arch()));
    let id = unique_id("demo");
    assert_eq!(
        h.ok(&["run", "--image", "hezi.local/demo:latest", &id]),
        "hello from hezi\n"
    );
    assert_bundle_gone(&h, &id);
    // User arguments replace Cmd; the hostname is the id; exit codes pass through.
    let out = h.ok(&[
        "run",
        "--image",
        "hezi.local/demo",
        &id,
        "--",
        "sh",
        "-c",
        "hostname; echo $PATH",
    ]);
    assert_eq!(
        out,
        format!("{id}\n/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n")
    );
    let o = h.cmd(&["run", "--image", "hezi.local/demo", &id, "--", "sh", "-c", "exit 7"]);
    assert_eq!(o.status.code(), Some(7));
    assert_bundle_gone(&h, &id);
    // The same demo twice is the same image (fixed metadata).
    assert_eq!(h.ok(&["image", "demo"]), first);
    assert!(fails(&h, &["run", "--image", "no/such:image", &id]).contains("not found"));
    assert_bundle_gone(&h, &id);
}

#[test]
fn detached_container_from_image_is_cleaned_by_delete() {
    require!();
    let h = Hezi::new();
    h.ok(&["image", "demo"]);
    for driver in ["overlay", "native"] {
        let id = unique_id("detached");
        let env = [("HEZI_SNAPSHOTTER", driver)];
        ok_env(
            &h,
            &env,
            &["run", "-d", "--image", "hezi.local/demo", &id, "--", "sleep", "100"],
        );
        h.wait_status(&id, "running");
        let rootfs = h.root().join(".bundles").join(&id).join("rootfs");
        assert!(rootfs.join("bin/busybox").exists(), "{driver}: rootfs not mounted");
        let mounted = mounts_under(&rootfs);
        assert_eq!(mounted.len(), 1, "{driver}: {mounted:?}");
        assert!(
            h.cmd(&["delete", &id]).status.code() != Some(0),
            "delete of a running container"
        );
        h.ok(&["kill", &id, "KILL"]);
        h.wait_status(&id, "stopped");
        h.ok(&["delete", &id]);
        assert_bundle_gone(&h, &id);
        // Only the image's one committed snapshot per driver used is left.
        let snaps = count(&store(&h).join("snapshots"));
        assert!(snaps <= 2, "{driver}: {snaps} snapshots left");
    }
}

#[test]
fn oci_archive_from_umoci_with_whiteouts_on_both_snapshotters() {
    require!();
    if !tools(&["umoci"]) {
        return;
    }
    let h = Hezi::new();
    let tmp = TempDir::new("umoci");
    let (l1, l2) = test_layers();
    let (t1, t2) = (tmp.path().join("l1.tar"), tmp.path().join("l2.tar"));
    std::fs::write(&t1, &l1).unwrap();
    std::fs::write(&t2, &l2).unwrap();
    let lay = tmp.path().join("layout");
    let img = format!("{}:t", lay.display());
    sh(&format!(
        "umoci init --layout {lay} && umoci new --image {img} && umoci raw add-layer --image {img} {t1} && \
         umoci raw add-layer --image {img} {t2} && umoci config --image {img} --config.user app \
         --config.env FOO=bar --config.workingdir /keep --config.cmd sh --config.cmd=-c --config.cmd='echo default' && \
         tar -C {lay} -cf {out} .",
        lay = lay.display(),
        t1 = t1.display(),
        t2 = t2.display(),
        out = tmp.path().join("img.tar").display()
    ));
    let archive = tmp.path().join("img.tar");
    // umoci names the image only by tag, so the import needs --name.
    assert!(fails(&h, &["image", "import", archive.to_str().unwrap()]).contains("--name"));
    let out = h.ok(&[
        "image",
        "import",
        "--name",
        "hezi.test/umoci:1",
        archive.to_str().unwrap(),
    ]);
    assert!(out.starts_with("hezi.test/umoci:1 sha256:"), "{out}");
    for driver in ["overlay", "native"] {
        let id = unique_id("umoci");
        let env = [("HEZI_SNAPSHOTTER", driver)];
        let out = ok_env(
            &h,
            &env,
            &["run", "--image", "hezi.test/umoci:1", &id, "--", "sh", "-c", PROBE],
        );
        check_probe(&out);
        assert_eq!(
            ok_env(&h, &env, &["run", "--image", "hezi.test/umoci:1", &id]),
            "default\n"
        );
        assert_bundle_gone(&h, &id);
    }
}

#[test]
fn docker_archive_made_by_hand() {
    require!();
    let h = Hezi::new();
    let tmp = TempDir::new("docker");
    let (l1, l2) = test_layers();
    let dir = tmp.path().join("save");
    for (i, l) in [&l1, &l2].iter().enumerate() {
        std::fs::create_dir_all(dir.join(format!("layer{i}"))).unwrap();
        std::fs::write(dir.join(format!("layer{i}/layer.tar")), l).unwrap();
        std::fs::write(dir.join(format!("layer{i}/VERSION")), "1.0").unwrap();
    }
    let cfg = serde_json::to_vec(&test_config(&[sha256(&l1), sha256(&l2)])).unwrap();
    let cfg_name = format!("{}.json", sha256(&cfg));
    std::fs::write(dir.join(&cfg_name), &cfg).unwrap();
    let manifest = json!([{ "Config": cfg_name, "RepoTags": ["hezi.test/docker:1", "alias:2"],
                            "Layers": ["layer0/layer.tar", "layer1/layer.tar"] }]);
    std::fs::write(dir.join("manifest.json"), serde_json::to_vec(&manifest).unwrap()).unwrap();
    let archive = tmp.path().join("docker.tar");
    sh(&format!("tar -C {} -cf {} .", dir.display(), archive.display()));
    let out = h.ok(&["image", "import", archive.to_str().unwrap()]);
    assert!(
        out.contains("hezi.test/docker:1 sha256:") && out.contains("docker.io/library/alias:2"),
        "{out}"
    );
    let id = unique_id("docker");
    check_probe(&h.ok(&["run", "--image", "hezi.test/docker:1", &id, "--", "sh", "-c", PROBE]));
    assert_eq!(h.ok(&["run", "--image", "alias:2", &id]), "default-cmd\n");
    assert_bundle_gone(&h, &id);
    // One image under two names: removing one keeps every blob; removing both leaves none.
    h.ok(&["image", "rm", "alias:2"]);
    assert_eq!(count(&store(&h).join("blobs/sha256")), 4, "manifest, config, 2 layers");
    h.ok(&["image", "rm", "hezi.test/docker:1"]);
    assert_eq!(count(&store(&h).join("blobs/sha256")), 0);
    assert_eq!(count(&store(&h).join("snapshots")), 0);
}

#[test]
fn image_rm_keeps_only_referenced_blobs_and_snapshots() {
    require!();
    let h = Hezi::new();
    let tmp = TempDir::new("rm");
    h.ok(&["image", "demo"]);
    let (l1, l2) = test_layers();
    let cfg = test_config(&[sha256(&l1), sha256(&l2)]);
    let a = oci_archive(tmp.path(), "a.tar", &[l1, l2], &cfg, |_| {});
    h.ok(&["image", "import", "--name", "hezi.test/a:1", a.to_str().unwrap()]);
    assert_eq!(count(&store(&h).join("blobs/sha256")), 3 + 4);
    assert_eq!(count(&store(&h).join("snapshots")), 1 + 2);
    h.ok(&["image", "rm", "hezi.test/a:1"]);
    let left: Vec<String> = std::fs::read_dir(store(&h).join("blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    let demo: Value = serde_json::from_str(&h.ok(&["image", "ls", "--format", "json"])).unwrap();
    let manifest = demo[0]["manifest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_string();
    assert_eq!(left.len(), 3, "{left:?}");
    assert!(left.contains(&manifest));
    assert_eq!(count(&store(&h).join("snapshots")), 1);
    assert!(fails(&h, &["image", "rm", "hezi.test/a:1"]).contains("not found"));
    assert_eq!(h.ok(&["image", "ls", "-q"]), "hezi.local/demo:latest\n");
}

/// Nothing half-made after a failed import: no record, blob, snapshot or temp file.
fn assert_store_clean(h: &Hezi) {
    assert_eq!(h.ok(&["image", "ls", "-q"]), "");
    for d in ["blobs/sha256", "snapshots", "tmp"] {
        let p = store(h).join(d);
        assert_eq!(count(&p), 0, "{} not empty", p.display());
    }
}

#[test]
fn bad_input_fails_cleanly() {
    require!();
    let h = Hezi::new();
    let tmp = TempDir::new("bad");
    let (l1, l2) = test_layers();
    let cfg = test_config(&[sha256(&l1), sha256(&l2)]);
    let import = |p: &Path| {
        fails(
            &h,
            &["image", "import", "--name", "hezi.test/bad:1", p.to_str().unwrap()],
        )
    };

    let junk = tmp.path().join("junk.tar");
    std::fs::write(&junk, vec![0x5a; 4000]).unwrap();
    let e = import(&junk);
    assert!(e.contains("junk.tar"), "{e}");
    assert_store_clean(&h);

    // A blob whose content is not its name.
    let good = oci_archive(tmp.path(), "good.tar", &[l1.clone(), l2.clone()], &cfg, |_| {});
    let lay = tmp.path().join("good.tar.layout/blobs/sha256");
    let victim = lay.join(sha256(&l2));
    std::fs::write(&victim, b"tampered").unwrap();
    let bad = tmp.path().join("tampered.tar");
    sh(&format!(
        "tar -C {} -cf {} .",
        tmp.path().join("good.tar.layout").display(),
        bad.display()
    ));
    let e = import(&bad);
    assert!(e.contains("digest mismatch") && e.contains(&sha256(&l2)), "{e}");
    assert_store_clean(&h);
    drop(good);

    // A diff id that does not match the layer.
    let wrong = test_config(&[sha256(&l1), sha256(b"something else")]);
    let e = import(&oci_archive(
        tmp.path(),
        "diffid.tar",
        &[l1.clone(), l2.clone()],
        &wrong,
        |_| {},
    ));
    assert!(e.contains("diff id"), "{e}");
    assert_store_clean(&h);

    // An unknown layer media type.
    let e = import(&oci_archive(
        tmp.path(),
        "mt.tar",
        std::slice::from_ref(&l1),
        &test_config(&[sha256(&l1)]),
        |m| {
            m["layers"][0]["mediaType"] = json!("application/x-mystery");
        },
    ));
    assert!(e.contains("application/x-mystery"), "{e}");
    assert_store_clean(&h);

    // Entries that would land outside the snapshot: through a symlink, with .., absolute.
    let outside = TempDir::new("outside");
    for (n, layer) in [
        (
            "symlink",
            Tar::default()
                .symlink("evil", outside.path().to_str().unwrap())
                .file("evil/pwned", b"x")
                .finish(),
        ),
        ("dotdot", Tar::default().file("a/../../pwned", b"x").finish()),
        (
            "absolute",
            Tar::default().file("/tmp/pwned-by-hezi-test", b"x").finish(),
        ),
    ] {
        let a = oci_archive(
            tmp.path(),
            &format!("{n}.tar"),
            std::slice::from_ref(&layer),
            &test_config(&[sha256(&layer)]),
            |_| {},
        );
        let e = import(&a);
        assert!(e.contains("refusing layer entry"), "{n}: {e}");
        assert_store_clean(&h);
    }
    assert_eq!(count(outside.path()), 0, "something was written outside");
    assert!(!Path::new("/tmp/pwned-by-hezi-test").exists());

    // A platform the archive does not have.
    let e = fails(
        &h,
        &[
            "image",
            "import",
            "--platform",
            "linux/s390x",
            "--name",
            "x/y:1",
            junk.to_str().unwrap(),
        ],
    );
    assert!(e.contains("junk.tar"), "{e}");
    let a = oci_archive(
        tmp.path(),
        "plat.tar",
        std::slice::from_ref(&l1),
        &test_config(&[sha256(&l1)]),
        |_| {},
    );
    let e = fails(
        &h,
        &[
            "image",
            "import",
            "--platform",
            "linux/s390x",
            "--name",
            "x/y:1",
            a.to_str().unwrap(),
        ],
    );
    assert!(e.contains("linux/s390x"), "{e}");
    assert_store_clean(&h);
}

/// Debian's docker-registry on a free loopback port, storing in a temp dir; killed on drop.
struct Registry {
    child: Child,
    port: u16,
    _dir: TempDir,
}

impl Registry {
    fn start(htpasswd: Option<&str>) -> Registry {
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

#[test]
fn pull_from_a_real_registry() {
    require!();
    if !tools(&["skopeo", "docker-registry"]) {
        return;
    }
    let h = Hezi::new();
    let tmp = TempDir::new("pull");
    let (l1, l2) = test_layers();
    let cfg = test_config(&[sha256(&l1), sha256(&l2)]);
    let archive = oci_archive(tmp.path(), "img.tar", &[l1, l2], &cfg, |_| {});
    let reg = Registry::start(None);
    let dest = format!("127.0.0.1:{}/test/img:1", reg.port);
    // skopeo compresses the layers with gzip on the way (and stores Docker or OCI manifests).
    sh(&format!(
        "skopeo --insecure-policy copy -q --dest-tls-verify=false oci-archive:{} docker://{dest}",
        archive.display()
    ));
    let out = h.ok(&["image", "pull", "--plain-http", &dest]);
    assert!(out.starts_with(&format!("{dest} sha256:")), "{out}");
    let id = unique_id("pulled");
    check_probe(&h.ok(&["run", "--image", &dest, &id, "--", "sh", "-c", PROBE]));
    assert_bundle_gone(&h, &id);
    // Pulling again is a no-op that keeps everything; rm leaves nothing.
    h.ok(&["image", "pull", "--plain-http", &dest]);
    h.ok(&["image", "rm", &dest]);
    assert_store_clean(&h);
    // 404s name what was missing; a wrong platform is refused.
    let e = fails(
        &h,
        &[
            "image",
            "pull",
            "--plain-http",
            &format!("127.0.0.1:{}/test/img:nope", reg.port),
        ],
    );
    assert!(e.contains("404") && e.contains("manifests/nope"), "{e}");
    let e = fails(
        &h,
        &["image", "pull", "--plain-http", "--platform", "linux/s390x", &dest],
    );
    assert!(e.contains("linux/s390x"), "{e}");
    assert_store_clean(&h);
}

/// htpasswd line for user `hezi`, password `secret` (bcrypt, cost 4).
const HTPASSWD: &str = "hezi:$2b$04$8CNNzbo/jm26ZCsNL1b96.kefsH9Ij2cUW/ucTHqanV2qahmyFyRq";

#[test]
fn pull_with_basic_auth() {
    require!();
    if !tools(&["skopeo", "docker-registry"]) {
        return;
    }
    let h = Hezi::new();
    let tmp = TempDir::new("auth");
    let (l1, _) = test_layers();
    let archive = oci_archive(
        tmp.path(),
        "img.tar",
        std::slice::from_ref(&l1),
        &test_config(&[sha256(&l1)]),
        |_| {},
    );
    let reg = Registry::start(Some(HTPASSWD));
    let dest = format!("127.0.0.1:{}/auth/img:1", reg.port);
    sh(&format!(
        "skopeo --insecure-policy copy -q --dest-tls-verify=false --dest-creds hezi:secret oci-archive:{} docker://{dest}",
        archive.display()
    ));
    let e = fails(&h, &["image", "pull", "--plain-http", &dest]);
    assert!(e.contains("401") && e.contains("HEZI_REGISTRY_AUTH"), "{e}");
    let e = text(&hezi_env(
        &h,
        &[("HEZI_REGISTRY_AUTH", "hezi:wrong")],
        &["image", "pull", "--plain-http", &dest],
    ));
    assert!(e.contains("401"), "{e}");
    assert_store_clean(&h);
    ok_env(
        &h,
        &[("HEZI_REGISTRY_AUTH", "hezi:secret")],
        &["image", "pull", "--plain-http", &dest],
    );
    let id = unique_id("auth");
    assert_eq!(h.ok(&["run", "--image", &dest, &id, "--", "cat", "/keep/k"]), "k\n");
}

/// A fake registry on a free loopback port: `respond(request head, port)` gives each answer's
/// (status, extra header lines, body).
fn fake_registry(respond: impl Fn(&str, u16) -> (String, String, String) + Send + 'static) -> u16 {
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

#[test]
fn registry_errors_are_named() {
    require!();
    let h = Hezi::new();
    for (status, want) in [
        ("500 Internal Server Error", "500"),
        ("401 Unauthorized", "401"),
        ("404 Not Found", "404"),
    ] {
        let port = fake_registry(move |_, _| (status.into(), String::new(), "{\"errors\":[]}".into()));
        let e = fails(
            &h,
            &["image", "pull", "--plain-http", &format!("127.0.0.1:{port}/x/y:1")],
        );
        assert!(
            e.contains(want) && e.contains(&format!("127.0.0.1:{port}/v2/x/y/manifests/1")),
            "{e}"
        );
    }
    // Nothing listening at all.
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let e = fails(
        &h,
        &["image", "pull", "--plain-http", &format!("127.0.0.1:{port}/x/y:1")],
    );
    assert!(e.contains(&format!("127.0.0.1:{port}")), "{e}");
    assert_store_clean(&h);
}

/// A registry that wants a bearer token from its own /token endpoint, then answers 404: seeing
/// the 404 proves hezi fetched the token (with the challenge's service and scope) and used it.
fn bearer(req: &str, port: u16) -> (String, String, String) {
    let none = String::new;
    if req.starts_with("get /token?") {
        if req.contains("service=fake") && req.contains("scope=repository%3ax%2fy%3apull") {
            ("200 OK".into(), none(), "{\"token\":\"t0k3n\"}".into())
        } else {
            ("400 Bad Request".into(), none(), format!("bad token request {req}"))
        }
    } else if req.contains("authorization: bearer t0k3n") {
        (
            "404 Not Found".into(),
            none(),
            "{\"errors\":[{\"code\":\"MANIFEST_UNKNOWN\"}]}".into(),
        )
    } else {
        let realm = format!("http://127.0.0.1:{port}/token");
        let ch =
            format!("WWW-Authenticate: Bearer realm=\"{realm}\",service=\"fake\",scope=\"repository:x/y:pull\"\r\n");
        ("401 Unauthorized".into(), ch, "{}".into())
    }
}

#[test]
fn bearer_token_flow() {
    require!();
    let h = Hezi::new();
    let port = fake_registry(bearer);
    let e = fails(
        &h,
        &["image", "pull", "--plain-http", &format!("127.0.0.1:{port}/x/y:1")],
    );
    assert!(e.contains("404") && e.contains("MANIFEST_UNKNOWN"), "{e}");
}
