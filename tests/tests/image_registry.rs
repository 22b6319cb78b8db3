//! Pulls end to end: a real registry (Debian's docker-registry on a free loopback port, pushed
//! to with skopeo) holding OCI and Docker manifests and multi-platform indexes, basic and bearer
//! auth, and registries that answer with errors or wrong content.

mod image_support;

use std::net::TcpListener;
use std::process::Command;

use hezi_e2e::{require, unique_id, Hezi, TempDir};
use image_support::*;
use serde_json::{json, Value};

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

/// What a registry holds for `reference`, as skopeo reads it raw.
fn raw_manifest(reference: &str) -> Value {
    let o = Command::new("skopeo")
        .args([
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{reference}"),
        ])
        .output()
        .expect("run skopeo inspect");
    assert!(o.status.success(), "skopeo inspect {reference}: {}", text(&o));
    serde_json::from_slice(&o.stdout).expect("a JSON manifest")
}

/// Docker's schema 2 manifest (what `docker push` stores), with its own media types for the
/// config and the gzip layers.
#[test]
fn pull_a_docker_schema2_manifest() {
    require!();
    if !tools(&["skopeo", "docker-registry"]) {
        return;
    }
    let h = Hezi::new();
    let tmp = TempDir::new("v2s2");
    let (l1, l2) = test_layers();
    let cfg = test_config(&[sha256(&l1), sha256(&l2)]);
    let archive = oci_archive(tmp.path(), "img.tar", &[l1, l2], &cfg, |_| {});
    let reg = Registry::start(None);
    let dest = format!("127.0.0.1:{}/test/docker:1", reg.port);
    sh(&format!(
        "skopeo --insecure-policy copy -q --format v2s2 --dest-tls-verify=false oci-archive:{} docker://{dest}",
        archive.display()
    ));
    let raw = raw_manifest(&dest);
    assert_eq!(
        raw["mediaType"], "application/vnd.docker.distribution.manifest.v2+json",
        "{raw}"
    );
    assert_eq!(
        raw["layers"][0]["mediaType"],
        "application/vnd.docker.image.rootfs.diff.tar.gzip"
    );
    // Not on a terminal: no progress display, just the result line.
    let o = h.cmd(&["image", "pull", "--plain-http", &dest]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(o.stderr.is_empty(), "progress written off a terminal: {}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.starts_with(&format!("{dest} sha256:")) && out.lines().count() == 1,
        "{out}"
    );
    let id = unique_id("v2s2");
    check_probe(&h.ok(&["run", "--image", &dest, &id, "--", "sh", "-c", PROBE]));
    h.ok(&["image", "rm", &dest]);
    assert_store_clean(&h);
}

/// A multi-platform index (OCI image index) in the registry: the host's platform is picked by
/// default, another one with --platform.
#[test]
fn pull_an_index_picks_the_platform() {
    require!();
    if !tools(&["skopeo", "docker-registry"]) {
        return;
    }
    let other = if host_arch() == "s390x" { "arm64" } else { "s390x" };
    let h = Hezi::new();
    let tmp = TempDir::new("index");
    let (base, _) = test_layers();
    // One image per platform: the same base, and a layer that says which one it is.
    let lay = tmp.path().join("layout");
    let blobs = lay.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let put = |data: &[u8]| {
        let d = sha256(data);
        std::fs::write(blobs.join(&d), data).unwrap();
        json!({ "digest": format!("sha256:{d}"), "size": data.len() })
    };
    let put_typed = |data: &[u8], media_type: &str| {
        let mut d = put(data);
        d["mediaType"] = json!(media_type);
        d
    };
    let mut manifests = Vec::new();
    for arch in [host_arch(), other] {
        let mut marker = Tar::default();
        marker.file("arch", format!("{arch}\n").as_bytes());
        let marker = marker.finish();
        let mut cfg = test_config(&[sha256(&base), sha256(&marker)]);
        cfg["architecture"] = json!(arch);
        let layer = "application/vnd.oci.image.layer.v1.tar";
        let manifest = json!({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": put_typed(&serde_json::to_vec(&cfg).unwrap(), "application/vnd.oci.image.config.v1+json"),
            "layers": [put_typed(&base, layer), put_typed(&marker, layer)]
        });
        let mut d = put_typed(
            &serde_json::to_vec(&manifest).unwrap(),
            "application/vnd.oci.image.manifest.v1+json",
        );
        d["platform"] = json!({ "os": "linux", "architecture": arch });
        manifests.push(d);
    }
    let index =
        json!({ "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": manifests });
    let top = put_typed(
        &serde_json::to_vec(&index).unwrap(),
        "application/vnd.oci.image.index.v1+json",
    );
    std::fs::write(
        lay.join("index.json"),
        serde_json::to_vec(&json!({ "schemaVersion": 2, "manifests": [top] })).unwrap(),
    )
    .unwrap();
    std::fs::write(lay.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let reg = Registry::start(None);
    let dest = format!("127.0.0.1:{}/test/multi:1", reg.port);
    sh(&format!(
        "skopeo --insecure-policy copy -q --all --dest-tls-verify=false oci:{} docker://{dest}",
        lay.display()
    ));
    let raw = raw_manifest(&dest);
    assert_eq!(
        raw["manifests"].as_array().map(Vec::len),
        Some(2),
        "not an index: {raw}"
    );

    let platform = |h: &Hezi| -> String {
        let ls: Value = serde_json::from_str(&h.ok(&["image", "ls", "--format", "json"])).unwrap();
        ls[0]["platform"].as_str().unwrap_or_default().to_string()
    };
    h.ok(&["image", "pull", "--plain-http", &dest]);
    assert_eq!(platform(&h), format!("linux/{}", host_arch()));
    let id = unique_id("index");
    assert_eq!(
        h.ok(&["run", "--image", &dest, &id, "--", "cat", "/arch"]),
        format!("{}\n", host_arch())
    );
    h.ok(&["image", "rm", &dest]);
    h.ok(&[
        "image",
        "pull",
        "--plain-http",
        "--platform",
        &format!("linux/{other}"),
        &dest,
    ]);
    assert_eq!(platform(&h), format!("linux/{other}"));
    h.ok(&["image", "rm", &dest]);
    assert_store_clean(&h);
}

/// A registry whose layer is not what the manifest's digest says: the pull fails naming the
/// digests, and nothing of it stays in the store.
#[test]
fn a_pulled_blob_with_the_wrong_digest_is_refused() {
    require!();
    let h = Hezi::new();
    let config = serde_json::to_string(&test_config(&[sha256(b"layer")])).unwrap();
    let cfg_digest = sha256(config.as_bytes());
    let layer_digest = sha256(b"the real layer");
    let manifest = json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": { "mediaType": "application/vnd.oci.image.config.v1+json",
                    "digest": format!("sha256:{cfg_digest}"), "size": config.len() },
        "layers": [{ "mediaType": "application/vnd.oci.image.layer.v1.tar",
                     "digest": format!("sha256:{layer_digest}"), "size": 14 }]
    })
    .to_string();
    let port = fake_registry(move |req, _| {
        let body = if req.contains("/manifests/") {
            manifest.clone()
        } else if req.contains(&cfg_digest) {
            config.clone()
        } else {
            // Same length as the real layer, other bytes.
            "a forged layer".to_string()
        };
        ("200 OK".into(), String::new(), body)
    });
    let e = fails(
        &h,
        &["image", "pull", "--plain-http", &format!("127.0.0.1:{port}/x/y:1")],
    );
    assert!(
        e.contains("digest mismatch") && e.contains(&format!("expected sha256:{layer_digest}")),
        "{e}"
    );
    assert_store_clean(&h);
}
