//! The rest of ctr's `images` commands on hezi's store (issue 20): push to a real registry
//! (Debian's docker-registry on loopback, read back with skopeo and `hezi image pull`), pull
//! with --user and --all-platforms, export --all-platforms, mount/unmount, check (against
//! containerd's `ctr images check`), usage, prune, label, and containerd's namespaces. Every
//! bad input fails naming what was wrong and leaves the store as it was.

mod image_support;

use std::process::Command;

use hezi_e2e::{mounts_under, require, unique_id, Hezi, TempDir, BUSYBOX};
use image_support::*;
use serde_json::Value;

/// The test image (two plain-tar layers), imported as `name` into `h`.
fn import_test_image(h: &Hezi, tmp: &TempDir, name: &str) {
    let (l1, l2) = test_layers();
    let cfg = test_config(&[sha256(&l1), sha256(&l2)]);
    let archive = oci_archive(
        tmp.path(),
        &format!("{}.tar", unique_id("img")),
        &[l1, l2],
        &cfg,
        |_| {},
    );
    h.ok(&["image", "import", "--name", name, archive.to_str().unwrap()]);
}

fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

fn skopeo_json(args: &[&str]) -> Value {
    let o = Command::new("skopeo").args(args).output().expect("run skopeo");
    assert!(o.status.success(), "skopeo {args:?}: {}", text(&o));
    serde_json::from_slice(&o.stdout).expect("skopeo printed JSON")
}

/// `hezi image push` sends what the registry lacks (nothing the second time), skopeo reads the
/// same manifest and layers back, and another store pulls and runs it. Bad pushes change
/// nothing.
#[test]
fn push_to_a_registry_and_pull_back() {
    require!();
    if !tools(&["skopeo", "docker-registry"]) {
        return;
    }
    let h = Hezi::new();
    let tmp = TempDir::new("push");
    import_test_image(&h, &tmp, "hezi.test/push:1");
    let reg = Registry::start(None);
    let remote = format!("127.0.0.1:{}/test/pushed:1", reg.port);
    let before = store_files(&h);
    let out = h.ok(&["image", "push", "--plain-http", &remote, "hezi.test/push:1"]);
    let ours = json(&h.ok(&["image", "inspect", "hezi.test/push:1"]));
    let digest = ours["target"]["digest"].as_str().unwrap().to_string();
    assert_eq!(out, format!("{remote} {digest} (3 blobs uploaded, 0 already there)\n"));
    // Pushed again: the registry has every blob (HEAD), only the manifest goes again.
    let again = h.ok(&["image", "push", "--plain-http", &remote, "hezi.test/push:1"]);
    assert!(again.ends_with("(0 blobs uploaded, 3 already there)\n"), "{again}");
    assert_eq!(store_files(&h), before, "push changed the store");

    // skopeo sees our manifest digest and our layers.
    let seen = skopeo_json(&["inspect", "--tls-verify=false", &format!("docker://{remote}")]);
    assert_eq!(seen["Digest"], digest);
    let layers: Vec<&Value> = ours["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| &l["digest"])
        .collect();
    let theirs: Vec<&Value> = seen["Layers"].as_array().unwrap().iter().collect();
    assert_eq!(theirs, layers);
    let raw = skopeo_json(&["inspect", "--raw", "--tls-verify=false", &format!("docker://{remote}")]);
    assert_eq!(raw["config"]["digest"], ours["manifest"]["config"]["digest"]);

    // Another store pulls it (same digest) and runs it.
    let other = Hezi::new();
    assert_eq!(
        other.ok(&["image", "pull", "--plain-http", &remote]),
        format!("{remote} {digest}\n")
    );
    let id = unique_id("pushed");
    check_probe(&other.ok(&["run", "--image", &remote, &id, "--", "sh", "-c", PROBE]));
    assert_bundle_gone(&other, &id);

    // Pushed under its own name (no LOCAL argument) to another repository.
    h.ok(&[
        "image",
        "tag",
        "hezi.test/push:1",
        &format!("127.0.0.1:{}/test/own:2", reg.port),
    ]);
    let own = h.ok(&[
        "image",
        "push",
        "--plain-http",
        &format!("127.0.0.1:{}/test/own:2", reg.port),
    ]);
    assert!(own.contains(&digest), "{own}");

    // An unknown image, a bad remote name, no arguments: errors naming them; nothing changes.
    let before = store_files(&h);
    let e = fails(&h, &["image", "push", "--plain-http", &remote, "hezi.test/nope:1"]);
    assert!(e.contains("hezi.test/nope:1 not found"), "{e}");
    let e = fails(&h, &["image", "push", "--plain-http", "Bad/Name", "hezi.test/push:1"]);
    assert!(e.contains("\"Bad/Name\""), "{e}");
    let e = fails(&h, &["image", "push"]);
    assert!(e.contains("image push: requires"), "{e}");
    assert_eq!(store_files(&h), before);
}

/// htpasswd line for user `hezi`, password `secret` (bcrypt, cost 4).
const HTPASSWD: &str = "hezi:$2b$04$8CNNzbo/jm26ZCsNL1b96.kefsH9Ij2cUW/ucTHqanV2qahmyFyRq";

/// A registry that refuses the push (no credentials, wrong ones, or read-only storage): the
/// error names the request and what the registry said. `--user` works for push and pull.
#[test]
fn refused_pushes_and_user_credentials() {
    require!();
    if !tools(&["skopeo", "docker-registry"]) {
        return;
    }
    let h = Hezi::new();
    let tmp = TempDir::new("refused");
    import_test_image(&h, &tmp, "hezi.test/auth:1");
    let before = store_files(&h);
    let reg = Registry::start(Some(HTPASSWD));
    let remote = format!("127.0.0.1:{}/auth/img:1", reg.port);
    let push = |user: Option<&str>| {
        let mut args = vec!["image", "push", "--plain-http"];
        if let Some(u) = user {
            args.extend(["--user", u]);
        }
        args.extend([remote.as_str(), "hezi.test/auth:1"]);
        h.cmd(&args)
    };
    let o = push(None);
    let e = text(&o);
    assert!(!o.status.success(), "{e}");
    assert!(
        e.contains(&format!("push {remote}")) && e.contains("401") && e.contains("--user"),
        "{e}"
    );
    let o = push(Some("hezi:wrong"));
    let e = text(&o);
    assert!(!o.status.success() && e.contains("401 Unauthorized"), "{e}");
    let e = text(&push(Some("nocolon")));
    assert!(e.contains("--user: want user:password"), "{e}");
    assert_eq!(store_files(&h), before, "a refused push changed the store");
    // Nothing reached the registry.
    let o = Command::new("skopeo")
        .args(["inspect", "--tls-verify=false", "--creds", "hezi:secret"])
        .arg(format!("docker://{remote}"))
        .output()
        .unwrap();
    assert!(!o.status.success(), "the image is there: {}", text(&o));

    assert!(push(Some("hezi:secret")).status.success());
    // pull --user (HEZI_REGISTRY_AUTH is the other way, in image_registry.rs).
    let other = Hezi::new();
    let e = fails(&other, &["image", "pull", "--plain-http", &remote]);
    assert!(e.contains("401"), "{e}");
    other.ok(&["image", "pull", "--plain-http", "--user", "hezi:secret", &remote]);
    let id = unique_id("userpull");
    assert_eq!(
        other.ok(&["run", "--image", &remote, &id, "--", "cat", "/keep/k"]),
        "k\n"
    );

    // A read-only registry refuses the upload.
    let ro = registry_with("maintenance: {readonly: {enabled: true}}");
    let ro_remote = format!("127.0.0.1:{}/ro/img:1", ro.port);
    let e = fails(&h, &["image", "push", "--plain-http", &ro_remote, "hezi.test/auth:1"]);
    assert!(
        e.contains(&format!("push {ro_remote}")) && e.contains("405") && e.contains("blobs/uploads"),
        "{e}"
    );
    assert_eq!(store_files(&h), before);
}

/// `pull --all-platforms` fetches every manifest of an index and records the host's; export
/// and push --all-platforms carry the whole index, which another store imports and which
/// skopeo reads from the registry. Without every platform, export --all-platforms refuses and
/// push sends only the host's manifest, saying so.
#[test]
fn all_platforms_pull_export_and_push() {
    require!();
    if !tools(&["skopeo", "docker-registry"]) {
        return;
    }
    let other_arch = if host_arch() == "s390x" { "arm64" } else { "s390x" };
    let h = Hezi::new();
    let tmp = TempDir::new("allplat");
    let lay = multi_platform_layout(tmp.path(), other_arch);
    let reg = Registry::start(None);
    let src = format!("127.0.0.1:{}/test/multi:1", reg.port);
    sh(&format!(
        "skopeo --insecure-policy copy -q --all --dest-tls-verify=false oci:{} docker://{src}",
        lay.display()
    ));
    let index_digest = skopeo_json(&["inspect", "--raw", "--tls-verify=false", &format!("docker://{src}")]);
    assert_eq!(index_digest["manifests"].as_array().map(Vec::len), Some(2));

    // Plain pull: the host's manifest only; --all-platforms: both (index, 2 manifests, 2
    // configs, the shared base layer and 2 marker layers).
    h.ok(&["image", "pull", "--plain-http", &src]);
    let plain = count(&store(&h).join("blobs/sha256"));
    assert_eq!(plain, 5, "index, manifest, config, 2 layers");
    let archive = tmp.path().join("all.tar");
    let e = fails(
        &h,
        &["image", "export", "--all-platforms", archive.to_str().unwrap(), &src],
    );
    assert!(
        e.contains(&format!("linux/{other_arch}")) && e.contains("--all-platforms"),
        "{e}"
    );
    assert!(!archive.exists());
    let lone = format!("127.0.0.1:{}/test/lone:1", reg.port);
    let o = h.cmd(&["image", "push", "--plain-http", &lone, &src]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("the index was not pushed"),
        "{}",
        text(&o)
    );
    let pushed = skopeo_json(&["inspect", "--raw", "--tls-verify=false", &format!("docker://{lone}")]);
    assert!(pushed.get("layers").is_some(), "a manifest, not an index: {pushed}");

    h.ok(&["image", "pull", "--plain-http", "--all-platforms", &src]);
    assert_eq!(count(&store(&h).join("blobs/sha256")), 8);
    let ls = json(&h.ok(&["image", "ls", "--format", "json"]));
    assert_eq!(ls[0]["platform"], format!("linux/{}", host_arch()));
    let id = unique_id("allplat");
    assert_eq!(
        h.ok(&["run", "--image", &src, &id, "--", "cat", "/arch"]),
        format!("{}\n", host_arch())
    );

    // export --all-platforms: one index.json entry, the index itself, with every blob.
    h.ok(&["image", "export", "--all-platforms", archive.to_str().unwrap(), &src]);
    sh(&format!(
        "mkdir {0}/x && tar -C {0}/x -xf {1}",
        tmp.path().display(),
        archive.display()
    ));
    let index = json(&std::fs::read_to_string(tmp.path().join("x/index.json")).unwrap());
    assert_eq!(
        index["manifests"][0]["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    assert_eq!(count(&tmp.path().join("x/blobs/sha256")), 8);
    // containerd reads it as one image of both platforms, complete.
    {
        use hezi_e2e::containerd::{prerequisites_with, Containerd, CONTAINERD_PROGRAMS};
        if prerequisites_with(CONTAINERD_PROGRAMS) {
            let c = Containerd::start();
            c.ctr(&["images", "import", "--all-platforms", archive.to_str().unwrap()])
                .ok("ctr images import");
            let ls = c.ctr(&["images", "ls"]).ok("ctr images ls");
            let row = ls
                .lines()
                .find(|l| l.starts_with(&src))
                .unwrap_or_else(|| panic!("{ls}"));
            let mut plats = [format!("linux/{}", host_arch()), format!("linux/{other_arch}")];
            plats.sort();
            assert!(row.contains(&plats.join(",")), "{ls}");
            let check = c.ctr(&["images", "check"]).ok("ctr images check");
            assert_eq!(status_of(&check, &src), "complete (3/3)", "{check}");
        }
    }
    // Another store imports it for the other platform too, from the same archive.
    let other = Hezi::new();
    other.ok(&["image", "import", archive.to_str().unwrap()]);
    other.ok(&[
        "image",
        "import",
        "--platform",
        &format!("linux/{other_arch}"),
        "--name",
        "hezi.test/other:1",
        archive.to_str().unwrap(),
    ]);
    let ls = json(&other.ok(&["image", "ls", "--format", "json"]));
    let plats: Vec<&str> = ls
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["platform"].as_str().unwrap())
        .collect();
    assert_eq!(plats, [format!("linux/{}", host_arch()), format!("linux/{other_arch}")]);
    // ... and pushes the whole index: the registry lists both manifests under the new tag.
    let copy = format!("127.0.0.1:{}/test/copy:1", reg.port);
    let o = other.cmd(&["image", "push", "--plain-http", &copy, &src]);
    assert!(o.status.success() && o.stderr.is_empty(), "{}", text(&o));
    let raw = skopeo_json(&["inspect", "--raw", "--tls-verify=false", &format!("docker://{copy}")]);
    assert_eq!(raw, index_digest, "the pushed index differs from the pulled one");
    h.ok(&["image", "rm", &src]);
    assert_store_clean(&h);
}

/// containerd's namespaces: an image in one is invisible from another (ls, inspect, run), the
/// blobs are shared, -n, --namespace and CONTAINERD_NAMESPACE choose, and a bad name is refused.
#[test]
fn namespaces_keep_images_apart() {
    require!();
    let h = Hezi::new();
    let tmp = TempDir::new("ns");
    import_test_image(&h, &tmp, "hezi.test/ns:1");
    let blobs = count(&store(&h).join("blobs/sha256"));
    assert_eq!(h.ok(&["-n", "team-a", "image", "ls", "-q"]), "");
    assert_eq!(h.ok(&["image", "--namespace", "team-a", "ls", "-q"]), "");
    assert_eq!(
        ok_env(&h, &[("CONTAINERD_NAMESPACE", "team-a")], &["image", "ls", "-q"]),
        ""
    );
    let e = fails(&h, &["-n", "team-a", "image", "inspect", "hezi.test/ns:1"]);
    assert!(
        e.contains("hezi.test/ns:1 not found in namespace team-a") && e.contains("it is in namespace default"),
        "{e}"
    );
    // The same image in team-a under another name: a record there, no new blob.
    let a = TempDir::new("ns-a");
    let (l1, l2) = test_layers();
    let archive = oci_archive(
        a.path(),
        "a.tar",
        &[l1.clone(), l2.clone()],
        &test_config(&[sha256(&l1), sha256(&l2)]),
        |_| {},
    );
    h.ok(&[
        "--namespace",
        "team-a",
        "image",
        "import",
        "--name",
        "hezi.test/only-a:1",
        archive.to_str().unwrap(),
    ]);
    assert_eq!(count(&store(&h).join("blobs/sha256")), blobs, "blobs are shared");
    assert!(store(&h).join("namespaces/team-a/images.json").exists());
    assert!(store(&h).join("images.json").exists(), "default stays where it was");
    assert_eq!(h.ok(&["image", "ls", "-q"]), "hezi.test/ns:1\n");
    assert_eq!(h.ok(&["-n", "team-a", "image", "ls", "-q"]), "hezi.test/only-a:1\n");

    // run --image looks in its namespace only.
    let id = unique_id("ns");
    let e = fails(&h, &["run", "--image", "hezi.test/only-a:1", &id, "--", "true"]);
    assert!(
        e.contains("hezi.test/only-a:1 not found") && e.contains("team-a"),
        "{e}"
    );
    assert_bundle_gone(&h, &id);
    assert_eq!(
        h.ok(&[
            "-n",
            "team-a",
            "run",
            "--image",
            "hezi.test/only-a:1",
            &id,
            "--",
            "cat",
            "/keep/k"
        ]),
        "k\n"
    );
    assert_bundle_gone(&h, &id);

    // Removing it in default keeps what team-a uses; removing it there too leaves nothing.
    h.ok(&["image", "rm", "hezi.test/ns:1"]);
    assert_eq!(count(&store(&h).join("blobs/sha256")), blobs);
    let e = fails(&h, &["-n", "team-a", "image", "rm", "hezi.test/ns:1"]);
    assert!(e.contains("not found in namespace team-a"), "{e}");
    h.ok(&["-n", "team-a", "image", "rm", "hezi.test/only-a:1"]);
    assert_store_clean(&h);
    assert!(!store(&h).join("namespaces/team-a").exists());

    // Bad namespaces are named, from the flag or the environment, and make nothing.
    for args in [
        &["-n", "a/../b", "image", "ls"][..],
        &["image", "-n", "-x", "ls"],
        &["-n", "a..b", "run", "--image", "hezi.local/demo", "x1"],
    ] {
        let e = fails(&h, args);
        assert!(e.contains("invalid namespace"), "{args:?}: {e}");
    }
    let o = hezi_env(&h, &[("CONTAINERD_NAMESPACE", "no/slash")], &["image", "ls"]);
    assert!(!o.status.success() && text(&o).contains("\"no/slash\""), "{}", text(&o));
    assert_store_clean(&h);
}

/// `image mount`: read-only by default, writable with --rw (the writes go with the unmount);
/// a non-empty directory, an unknown image and unmounting what hezi did not mount are refused
/// with nothing changed.
#[test]
fn mount_and_unmount() {
    require!();
    let h = Hezi::new();
    let tmp = TempDir::new("mount");
    import_test_image(&h, &tmp, "hezi.test/mnt:1");
    let dir = tmp.path().join("m");
    std::fs::create_dir(&dir).unwrap();
    let d = dir.to_str().unwrap();
    let snapshots = count(&store(&h).join("snapshots"));

    let out = h.ok(&["image", "mount", "hezi.test/mnt:1", d]);
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("sha256:") && lines[1] == d, "{out}");
    assert_eq!(std::fs::read_to_string(dir.join("keep/k")).unwrap(), "k\n");
    assert!(!dir.join("etc/gone").exists(), "whiteout not applied");
    let e = std::fs::write(dir.join("new"), b"x").unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EROFS), "{e}");
    // Mounted twice: refused (the directory is not empty now either).
    let e = fails(&h, &["image", "mount", "hezi.test/mnt:1", d]);
    assert!(e.contains("not empty"), "{e}");
    assert_eq!(h.ok(&["image", "unmount", d]), format!("{d}\n"));
    assert_eq!(count(&dir), 0);
    assert_eq!(count(&store(&h).join("snapshots")), snapshots, "view snapshot left");
    assert!(mounts_under(tmp.path()).is_empty());

    // --rw: writes land in the snapshot's upper layer, and go with it.
    h.ok(&["image", "mount", "--rw", "hezi.test/mnt:1", d]);
    std::fs::write(dir.join("keep/k"), b"changed\n").unwrap();
    std::fs::write(dir.join("new"), b"x").unwrap();
    assert_eq!(count(&store(&h).join("snapshots")), snapshots + 1);
    h.ok(&["image", "umount", d]);
    h.ok(&["image", "mount", "hezi.test/mnt:1", d]);
    assert_eq!(std::fs::read_to_string(dir.join("keep/k")).unwrap(), "k\n");
    assert!(!dir.join("new").exists());
    h.ok(&["image", "unmount", d]);

    // Refusals, each leaving the store and the mounts as they were.
    let before = store_files(&h);
    std::fs::write(dir.join("file"), b"mine").unwrap();
    let e = fails(&h, &["image", "mount", "hezi.test/mnt:1", d]);
    assert!(e.contains(d) && e.contains("not empty"), "{e}");
    assert_eq!(std::fs::read(dir.join("file")).unwrap(), b"mine");
    std::fs::remove_file(dir.join("file")).unwrap();
    let e = fails(&h, &["image", "mount", "hezi.test/nope:1", d]);
    assert!(e.contains("hezi.test/nope:1 not found"), "{e}");
    let e = fails(&h, &["image", "mount", "hezi.test/mnt:1", "/nonexistent-dir-hezi"]);
    assert!(e.contains("/nonexistent-dir-hezi"), "{e}");
    let e = fails(&h, &["image", "unmount", d]);
    assert!(e.contains("not an image mount"), "{e}");
    // Someone else's mount is not hezi's to take away.
    sh(&format!("mount -t tmpfs hezi-test {d}"));
    let e = fails(&h, &["image", "unmount", d]);
    let still = mounts_under(tmp.path());
    sh(&format!("umount {d}"));
    assert!(e.contains("not an image mount"), "{e}");
    assert_eq!(still.len(), 1, "the tmpfs was unmounted: {still:?}");
    assert_eq!(store_files(&h), before);
    assert!(mounts_under(tmp.path()).is_empty());
    h.ok(&["image", "rm", "hezi.test/mnt:1"]);
    assert_store_clean(&h);
}

/// The STATUS column of `check` output for `name` (ctr's and ours have the same columns).
fn status_of(table: &str, name: &str) -> String {
    let line = table
        .lines()
        .find(|l| l.starts_with(name))
        .unwrap_or_else(|| panic!("{name} not in {table}"));
    // REF TYPE DIGEST STATUS, where STATUS is two words (`complete (3/3)`).
    let f: Vec<&str> = line.split_whitespace().collect();
    format!("{} {}", f[3], f[4])
}

/// `image check` agrees with containerd's `ctr images check` on an image exported from hezi,
/// and finds a corrupt and a missing layer (exit 1, naming it).
#[test]
fn check_agrees_with_ctr_and_finds_damage() {
    use hezi_e2e::containerd::{prerequisites_with, Containerd, CONTAINERD_PROGRAMS};
    require!();
    if !prerequisites_with(CONTAINERD_PROGRAMS) {
        return;
    }
    let h = Hezi::new();
    let tmp = TempDir::new("check");
    import_test_image(&h, &tmp, "hezi.test/check:1");
    h.ok(&["image", "demo"]);
    let ours = h.ok(&["image", "check"]);
    assert!(
        ours.starts_with("REF ")
            && ours
                .lines()
                .next()
                .unwrap()
                .split_whitespace()
                .eq(["REF", "TYPE", "DIGEST", "STATUS", "SIZE", "UNPACKED"].into_iter()),
        "{ours}"
    );
    // As ctr counts: the config and the layers.
    assert_eq!(status_of(&ours, "hezi.test/check:1"), "complete (3/3)");
    assert_eq!(status_of(&ours, "hezi.local/demo:latest"), "complete (2/2)");
    assert!(
        ours.lines().all(|l| l.ends_with("UNPACKED") || l.ends_with("true")),
        "{ours}"
    );

    let archive = tmp.path().join("check.tar");
    h.ok(&["image", "export", archive.to_str().unwrap(), "hezi.test/check:1"]);
    let c = Containerd::start();
    c.ctr(&["images", "import", archive.to_str().unwrap()])
        .ok("ctr images import");
    let theirs = c.ctr(&["images", "check"]).ok("ctr images check");
    assert_eq!(
        status_of(&theirs, "hezi.test/check:1"),
        status_of(&ours, "hezi.test/check:1"),
        "ctr: {theirs}\nhezi: {ours}"
    );
    let digest_col = |t: &str| {
        t.lines()
            .find(|l| l.starts_with("hezi.test/check:1"))
            .map(|l| l.split_whitespace().nth(2).unwrap_or("").to_string())
    };
    assert_eq!(digest_col(&theirs), digest_col(&ours));

    // One REF; an unknown one is an error before anything is printed.
    let one = h.ok(&["image", "check", "hezi.test/check:1"]);
    assert_eq!(one.lines().count(), 2, "{one}");
    let o = h.cmd(&["image", "check", "hezi.test/check:1", "hezi.test/nope:1"]);
    assert!(!o.status.success() && o.stdout.is_empty(), "{}", text(&o));
    assert!(text(&o).contains("hezi.test/nope:1 not found"));

    // Damage: a layer that hashes wrong, then one that is gone.
    let inspect = json(&h.ok(&["image", "inspect", "hezi.test/check:1"]));
    let layer = inspect["layers"][1]["digest"].as_str().unwrap().to_string();
    let blob = store(&h).join("blobs/sha256").join(&layer["sha256:".len()..]);
    let mut bytes = std::fs::read(&blob).unwrap();
    bytes[600] ^= 1;
    std::fs::write(&blob, &bytes).unwrap();
    let o = h.cmd(&["image", "check"]);
    assert!(!o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(status_of(&out, "hezi.test/check:1"), "corrupt (2/3)");
    assert_eq!(status_of(&out, "hezi.local/demo:latest"), "complete (2/2)");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(&format!("layer {layer} is corrupt")) && err.contains("1 of 2 images"),
        "{err}"
    );
    std::fs::remove_file(&blob).unwrap();
    let o = h.cmd(&["image", "check", "hezi.test/check:1"]);
    assert!(!o.status.success());
    assert_eq!(
        status_of(&String::from_utf8_lossy(&o.stdout), "hezi.test/check:1"),
        "incomplete (2/3)"
    );
    assert!(text(&o).contains(&format!("layer {layer} is missing")), "{}", text(&o));
}

/// `image usage` (content and snapshot sizes), `image label` (set, show, remove) and
/// `image prune` (what nothing references, and only that).
#[test]
fn usage_label_and_prune() {
    require!();
    let h = Hezi::new();
    let tmp = TempDir::new("usage");
    import_test_image(&h, &tmp, "hezi.test/usage:1");
    let name = "hezi.test/usage:1";

    // usage: the content is what the store holds for it; the bottom snapshot holds layer 1's
    // files (busybox and five small ones).
    let u = json(&h.ok(&["image", "usage", "--format", "json", name]));
    let inspect = json(&h.ok(&["image", "inspect", name]));
    let blob_size = |d: &Value| {
        let d = d.as_str().unwrap();
        std::fs::metadata(store(&h).join("blobs/sha256").join(&d["sha256:".len()..]))
            .unwrap()
            .len()
    };
    let mut want = blob_size(&inspect["target"]["digest"]) + blob_size(&inspect["manifest"]["config"]["digest"]);
    for l in inspect["layers"].as_array().unwrap() {
        want += blob_size(&l["digest"]);
    }
    assert_eq!(u["content"]["size"], want, "{u}");
    assert_eq!(u["content"]["blobs"], 4);
    let snaps = u["unpacked"]["snapshots"].as_array().unwrap();
    assert_eq!(snaps.len(), 2, "{u}");
    let diff_ids = &inspect["config"]["rootfs"]["diff_ids"];
    assert_eq!(snaps[1]["key"], diff_ids[0], "bottom snapshot is keyed by its chain id");
    let busybox = std::fs::metadata(BUSYBOX).unwrap().len();
    let small = b"root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n".len()
        + b"root:x:0:\napp:x:1000:\nextra:x:2000:app\n".len()
        + "base\n".len()
        + "old\n".len()
        + "k\n".len();
    if std::fs::read_to_string(store(&h).join("driver"))
        .unwrap_or_default()
        .trim()
        == "overlay"
    {
        assert_eq!(snaps[1]["size"], busybox + small as u64, "{u}");
    }
    let table = h.ok(&["image", "usage", name]);
    assert!(
        table.starts_with("KEY") && table.contains("content: ") && table.contains("2 snapshots"),
        "{table}"
    );

    // label: set two, replace one, remove one; ls --format json and inspect show them.
    assert_eq!(
        h.ok(&["image", "label", name, "team=blue", "tier=web"]),
        "team=blue,tier=web\n"
    );
    assert_eq!(h.ok(&["image", "label", name, "tier=db", "team="]), "tier=db\n");
    assert_eq!(h.ok(&["image", "label", name]), "tier=db\n");
    let ls = json(&h.ok(&["image", "ls", "--format", "json"]));
    assert_eq!(ls[0]["labels"], serde_json::json!({ "tier": "db" }));
    assert_eq!(json(&h.ok(&["image", "inspect", name]))["labels"]["tier"], "db");
    let before = store_files(&h);
    for (args, named) in [
        (&["image", "label", name, "novalue"][..], "\"novalue\""),
        (&["image", "label", name, "=v"], "\"=v\""),
        (
            &["image", "label", "hezi.test/nope:1", "a=b"],
            "hezi.test/nope:1 not found",
        ),
        (
            &["-n", "other", "image", "label", name, "a=b"],
            "not found in namespace other",
        ),
        (&["image", "usage", "hezi.test/nope:1"], "hezi.test/nope:1 not found"),
        (&["image", "usage", "--format", "yaml", name], "--format \"yaml\""),
    ] {
        let e = fails(&h, args);
        assert!(e.contains(named), "{args:?}: {e}");
    }
    assert_eq!(store_files(&h), before);

    // prune: nothing to do in a tidy store; then a stray blob, a half-made snapshot and a
    // temp file go, and the image stays whole.
    assert_eq!(h.ok(&["image", "prune"]), "");
    let stray = b"a blob nothing references";
    let stray_digest = sha256(stray);
    std::fs::write(store(&h).join("blobs/sha256").join(&stray_digest), stray).unwrap();
    std::fs::create_dir_all(store(&h).join("snapshots/9999/fs")).unwrap();
    std::fs::write(store(&h).join("tmp/blob-left-by-a-crash"), b"x").unwrap();
    let out = h.ok(&["image", "prune"]);
    assert!(
        out.contains(&format!("blob sha256:{stray_digest} ({} bytes)", stray.len())),
        "{out}"
    );
    assert!(out.contains("snapshot 9999 (incomplete)"), "{out}");
    assert!(out.contains("temp file blob-left-by-a-crash"), "{out}");
    assert_eq!(out.lines().count(), 3, "{out}");
    assert_eq!(store_files(&h), before, "prune took more than the strays");
    assert!(status_of(&h.ok(&["image", "check"]), name).starts_with("complete"));
    let id = unique_id("pruned");
    check_probe(&h.ok(&["run", "--image", name, &id, "--", "sh", "-c", PROBE]));
    // The snapshot of a container whose bundle is gone, and of an image mount unmounted
    // behind hezi's back, are leftovers too; a live mount's is not.
    let ghost = store(&h).join("snapshots/9998");
    std::fs::create_dir_all(ghost.join("fs")).unwrap();
    let driver = std::fs::read_to_string(store(&h).join("driver")).unwrap();
    std::fs::write(
        ghost.join("meta.json"),
        serde_json::to_vec(&serde_json::json!({
            "driver": driver.trim(), "active": true, "key": "container/ghost", "parent": null, "created": 0
        }))
        .unwrap(),
    )
    .unwrap();
    let (m1, m2) = (tmp.path().join("m1"), tmp.path().join("m2"));
    std::fs::create_dir(&m1).unwrap();
    std::fs::create_dir(&m2).unwrap();
    h.ok(&["image", "mount", name, m1.to_str().unwrap()]);
    h.ok(&["image", "mount", name, m2.to_str().unwrap()]);
    sh(&format!("umount {}", m1.display()));
    let out = h.ok(&["image", "prune"]);
    assert!(
        out.contains("snapshot 9998 (container/ghost: its container is gone)"),
        "{out}"
    );
    assert!(
        out.contains(&format!("(mount/{}: no longer mounted)", m1.display())),
        "{out}"
    );
    assert_eq!(out.lines().count(), 2, "{out}");
    h.ok(&["image", "unmount", m2.to_str().unwrap()]);
    assert_eq!(store_files(&h), before);
    let e = fails(&h, &["image", "prune", "extra"]);
    assert!(e.contains("takes no arguments"), "{e}");
}

/// Every image command is in `hezi image help`, takes -h/--help, and `hezi help` lists the
/// image command and -n/--namespace.
#[test]
fn help_lists_every_image_command() {
    require!();
    let h = Hezi::new();
    let usage = h.ok(&["image", "help"]);
    let general = h.ok(&["help"]);
    assert!(
        general.contains("   image ") && general.contains("--namespace NS, -n NS"),
        "{general}"
    );
    for sub in [
        "pull", "push", "import", "export", "ls", "rm", "tag", "label", "inspect", "mount", "unmount", "check",
        "usage", "prune", "demo",
    ] {
        assert!(usage.contains(&format!("\n   {sub} ")), "{sub} missing: {usage}");
        for help in ["-h", "--help"] {
            assert_eq!(h.ok(&["image", sub, help]), usage, "{sub} {help}");
        }
    }
    for flag in ["--all-platforms", "--user USER:PASSWORD", "--rw", "KEY=VALUE | KEY="] {
        assert!(usage.contains(flag), "{flag} missing: {usage}");
    }
    let e = fails(&h, &["image", "frobnicate"]);
    assert!(e.contains("no such command \"frobnicate\""), "{e}");
}
