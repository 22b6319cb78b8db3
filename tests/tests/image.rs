//! Images end to end: `hezi image demo|import|ls|rm|tag|inspect` and `hezi run --image`, with images this
//! suite builds itself (umoci for the OCI archive, a docker-save layout and a small tar writer
//! by hand), both snapshotters, and bad input that must fail cleanly. Pulls from registries are
//! in image_registry.rs.

mod image_support;

use std::path::Path;

use hezi_e2e::{mounts_under, require, unique_id, Hezi, TempDir};
use image_support::*;
use serde_json::{json, Value};

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

/// `image tag` gives an image a second name (runnable, removable on its own, sharing blobs),
/// refuses to take over an existing name without `--force`, and `image inspect` shows the
/// record with the manifest and config the store holds.
#[test]
fn image_tag_and_inspect() {
    require!();
    let h = Hezi::new();
    let tmp = TempDir::new("tag");
    h.ok(&["image", "demo"]);
    assert_eq!(
        h.ok(&["image", "tag", "hezi.local/demo", "hezi.test/mine:v1"]),
        "hezi.test/mine:v1\n"
    );
    assert_eq!(
        h.ok(&["image", "ls", "-q"]),
        "hezi.local/demo:latest\nhezi.test/mine:v1\n"
    );
    let id = unique_id("tag");
    assert_eq!(h.ok(&["run", "--image", "hezi.test/mine:v1", &id]), "hello from hezi\n");
    assert_bundle_gone(&h, &id);

    let ins: Value = serde_json::from_str(&h.ok(&["image", "inspect", "hezi.test/mine:v1"])).unwrap();
    let ls: Value = serde_json::from_str(&h.ok(&["image", "ls", "--format", "json"])).unwrap();
    assert_eq!(ins["name"], "hezi.test/mine:v1");
    assert_eq!(ins["target"]["digest"], ls[0]["manifest"]);
    assert_eq!(ins["manifest"]["config"]["digest"], ls[0]["config"]);
    assert_eq!(ins["config"]["config"]["Cmd"][2], "echo hello from hezi");
    assert_eq!(ins["layers"], ins["manifest"]["layers"]);
    assert!(!ins["layers"].as_array().unwrap().is_empty());

    // Another image under a name that is taken: refused, the name keeps its image.
    let (l1, l2) = test_layers();
    let cfg = test_config(&[sha256(&l1), sha256(&l2)]);
    let a = oci_archive(tmp.path(), "a.tar", &[l1, l2], &cfg, |_| {});
    h.ok(&["image", "import", "--name", "hezi.test/other:1", a.to_str().unwrap()]);
    let e = fails(&h, &["image", "tag", "hezi.test/other:1", "hezi.test/mine:v1"]);
    assert!(
        e.contains("hezi.test/mine:v1 already exists") && e.contains("--force"),
        "{e}"
    );
    let again: Value = serde_json::from_str(&h.ok(&["image", "inspect", "hezi.test/mine:v1"])).unwrap();
    assert_eq!(again["target"], ins["target"]);
    h.ok(&["image", "tag", "--force", "hezi.test/other:1", "hezi.test/mine:v1"]);
    let forced: Value = serde_json::from_str(&h.ok(&["image", "inspect", "hezi.test/mine:v1"])).unwrap();
    assert_ne!(forced["target"], ins["target"]);

    // Unknown images and wrong arguments: clear errors, nothing added.
    assert!(fails(&h, &["image", "tag", "no/such:1", "hezi.test/x:1"]).contains("no/such:1 not found"));
    assert!(fails(&h, &["image", "inspect", "no/such:1"]).contains("no/such:1 not found"));
    assert!(fails(&h, &["image", "tag", "hezi.test/mine:v1"]).contains("exactly 2 arguments"));
    assert_eq!(
        h.ok(&["image", "ls", "-q"]),
        "hezi.local/demo:latest\nhezi.test/mine:v1\nhezi.test/other:1\n"
    );

    // Removing every name removes every blob and snapshot.
    h.ok(&[
        "image",
        "rm",
        "hezi.local/demo",
        "hezi.test/mine:v1",
        "hezi.test/other:1",
    ]);
    assert_store_clean(&h);
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

/// OCI archives as other tools write them: skopeo's `oci-archive:` (the name in the OCI ref
/// name annotation) and containerd's `ctr images export` (its own name annotation).
#[test]
fn import_archives_made_by_skopeo_and_ctr_export() {
    use hezi_e2e::containerd::{prerequisites_with, Containerd, CONTAINERD_PROGRAMS};
    require!();
    if !tools(&["skopeo"]) || !prerequisites_with(CONTAINERD_PROGRAMS) {
        return;
    }
    let h = Hezi::new();
    let tmp = TempDir::new("foreign");
    let (l1, l2) = test_layers();
    let cfg = test_config(&[sha256(&l1), sha256(&l2)]);
    let ours = oci_archive(tmp.path(), "ours.tar", &[l1, l2], &cfg, |_| {});
    let by_skopeo = tmp.path().join("skopeo.tar");
    sh(&format!(
        "skopeo --insecure-policy copy -q oci-archive:{} oci-archive:{}:hezi.test/skopeo:1",
        ours.display(),
        by_skopeo.display()
    ));
    let out = h.ok(&["image", "import", by_skopeo.to_str().unwrap()]);
    assert!(out.starts_with("hezi.test/skopeo:1 sha256:"), "{out}");
    let id = unique_id("skopeo");
    check_probe(&h.ok(&["run", "--image", "hezi.test/skopeo:1", &id, "--", "sh", "-c", PROBE]));
    assert_bundle_gone(&h, &id);

    let c = Containerd::start();
    let image = c.import_busybox();
    let by_ctr = tmp.path().join("ctr.tar");
    c.ctr(&["images", "export", by_ctr.to_str().unwrap(), image])
        .ok("ctr images export");
    let out = h.ok(&["image", "import", by_ctr.to_str().unwrap()]);
    assert!(out.starts_with(&format!("{image} sha256:")), "{out}");
    let id = unique_id("ctrexport");
    assert_eq!(
        h.ok(&["run", "--image", image, &id, "--", "sh", "-c", "echo from ctr"]),
        "from ctr\n"
    );
    assert_bundle_gone(&h, &id);
}

/// Where overlayfs cannot take the store's directories (a root on an overlay mount: overlay
/// refuses another overlay as its upper layer), snapshots fall back to copies by themselves.
#[test]
fn snapshots_fall_back_to_copies_where_overlay_cannot_mount() {
    require!();
    let tmp = TempDir::new("overlay-on-overlay");
    for d in ["lower", "upper", "work", "merged"] {
        std::fs::create_dir_all(tmp.path().join(d)).unwrap();
    }
    let merged = tmp.path().join("merged");
    sh(&format!(
        "mount -t overlay overlay -o lowerdir={0}/lower,upperdir={0}/upper,workdir={0}/work {1}",
        tmp.path().display(),
        merged.display()
    ));
    let root = merged.join("root");
    let hezi = |args: &[&str]| {
        std::process::Command::new(hezi_e2e::hezi_bin())
            .arg("--root")
            .arg(&root)
            .args(args)
            .output()
            .expect("run hezi")
    };
    let id = unique_id("fallback");
    let results = [
        hezi(&["image", "demo"]),
        hezi(&["run", "--image", "hezi.local/demo", &id]),
        hezi(&["image", "rm", "hezi.local/demo"]),
    ];
    let driver = std::fs::read_to_string(root.join(".images/driver")).unwrap_or_default();
    let left = mounts_under(&root);
    sh(&format!("umount -l {}", merged.display()));
    for o in &results {
        assert!(o.status.success(), "{}", text(o));
    }
    assert_eq!(String::from_utf8_lossy(&results[1].stdout), "hello from hezi\n");
    assert_eq!(driver.trim(), "native", "the store did not fall back to copies");
    assert!(left.is_empty(), "mounts left: {left:?}");
}

/// `image export` writes an OCI archive that containerd's `ctr images import`, skopeo and hezi
/// itself (gzip-compressed too) read back; bad input leaves no file.
#[test]
fn export_is_read_by_ctr_skopeo_and_hezi() {
    use hezi_e2e::containerd::{prerequisites_with, Containerd, CONTAINERD_PROGRAMS};
    require!();
    if !tools(&["skopeo", "gzip"]) || !prerequisites_with(CONTAINERD_PROGRAMS) {
        return;
    }
    let h = Hezi::new();
    let tmp = TempDir::new("export");
    h.ok(&["image", "demo"]);
    h.ok(&["image", "tag", "hezi.local/demo", "hezi.test/exported:v1"]);
    let archive = tmp.path().join("out.tar");
    let a = archive.to_str().unwrap();
    assert_eq!(
        h.ok(&["image", "export", a, "hezi.local/demo", "hezi.test/exported:v1"]),
        "hezi.local/demo:latest\nhezi.test/exported:v1\n"
    );

    // skopeo finds the image by its tag.
    let out = std::process::Command::new("skopeo")
        .args(["inspect", &format!("oci-archive:{a}:v1")])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let inspected: Value = serde_json::from_slice(&out.stdout).unwrap();
    let ours: Value = serde_json::from_str(&h.ok(&["image", "inspect", "hezi.test/exported:v1"])).unwrap();
    assert_eq!(inspected["Digest"], ours["target"]["digest"]);

    // containerd imports both names and runs the image.
    let c = Containerd::start();
    c.ctr(&["images", "import", a]).ok("ctr images import");
    let listed = c.ctr(&["images", "ls", "-q"]).ok("ctr images ls");
    assert!(
        listed.contains("hezi.local/demo:latest") && listed.contains("hezi.test/exported:v1"),
        "{listed}"
    );

    // hezi reads it back gzip-compressed, into another store, and runs it.
    sh(&format!("gzip -k {a}"));
    let other = Hezi::new();
    other.ok(&["image", "import", &format!("{a}.gz")]);
    assert_eq!(
        other.ok(&["image", "ls", "-q"]),
        "hezi.local/demo:latest\nhezi.test/exported:v1\n"
    );
    let id = unique_id("exported");
    assert_eq!(
        other.ok(&["run", "--image", "hezi.test/exported:v1", &id]),
        "hello from hezi\n"
    );
    assert_bundle_gone(&other, &id);

    // An unknown image, or a directory that does not exist: an error, and no file.
    let bad = tmp.path().join("bad.tar");
    let e = fails(
        &h,
        &["image", "export", bad.to_str().unwrap(), "hezi.local/demo", "no/such:1"],
    );
    assert!(e.contains("no/such:1 not found"), "{e}");
    let e = fails(&h, &["image", "export", "/nonexistent-dir/x.tar", "hezi.local/demo"]);
    assert!(e.contains("/nonexistent-dir"), "{e}");
    let names: Vec<String> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "only out.tar and out.tar.gz: {names:?}");
}

/// ctr's flags on `run --image`: environment, working directory, hostname, the host's network,
/// a read-only root and a bind mount, seen from inside; a bad `--mount` leaves nothing, and the
/// flags are refused without --image.
#[test]
fn run_image_with_ctrs_flags() {
    require!();
    let h = Hezi::new();
    let tmp = TempDir::new("flags");
    std::fs::write(tmp.path().join("f"), "from the host\n").unwrap();
    h.ok(&["image", "demo"]);
    let id = unique_id("flags");
    let mount = format!("type=bind,src={},dst=/host,options=rbind:ro", tmp.path().display());
    let out = h.ok(&[
        "run",
        "--image",
        "hezi.local/demo",
        "--env",
        "A=1",
        "--env",
        "B=two",
        "--cwd",
        "/tmp",
        "--hostname",
        "boxy",
        "--net-host",
        "--read-only",
        "--mount",
        &mount,
        &id,
        "--",
        "sh",
        "-c",
        "echo $A $B; pwd; hostname; cat /host/f; touch /x 2>/dev/null || echo ro-root; \
         touch /host/y 2>/dev/null || echo ro-bind; readlink /proc/self/ns/net",
    ]);
    let host_net = std::fs::read_link("/proc/self/ns/net").unwrap();
    assert_eq!(
        out,
        format!(
            "1 two\n/tmp\nboxy\nfrom the host\nro-root\nro-bind\n{}\n",
            host_net.display()
        )
    );
    assert_bundle_gone(&h, &id);

    for (mount, why) in [("src=/a", "no dst"), ("src=/a,dst=/b,colour=red", "unknown key")] {
        let e = fails(&h, &["run", "--image", "hezi.local/demo", "--mount", mount, &id]);
        assert!(e.contains(why) && e.contains(mount), "{e}");
        assert_bundle_gone(&h, &id);
    }
    let e = fails(&h, &["run", "--image", "hezi.local/demo", "--env", "NOVALUE", &id]);
    assert!(e.contains("NOVALUE") && e.contains("KEY=VALUE"), "{e}");
    let e = fails(&h, &["run", "--env", "A=1", "-b", tmp.path().to_str().unwrap(), &id]);
    assert!(e.contains("--env needs --image"), "{e}");
    // Only the image's snapshot is left: none for the containers that did not start.
    assert_eq!(count(&store(&h).join("snapshots")), 1);
}
