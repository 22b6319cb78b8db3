//! Pulls end to end: a real registry (Debian's docker-registry on a free loopback port, pushed
//! to with skopeo) holding OCI and Docker manifests and multi-platform indexes, basic and bearer
//! auth, and registries that answer with errors or wrong content.

mod image_support;

use std::net::TcpListener;

use hezi_e2e::{require, unique_id, Hezi, TempDir};
use image_support::*;

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
