//! `events` reports an OOM kill while the container keeps running: the killer took a child and
//! the init lives on. (tests/tests/cgroups.rs covers a kill just before the container ends,
//! which the last look at the end reports; this one needs the watcher to wait for the kernel's
//! counter after the v1 notification, which comes before the kill is counted.)

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

use hezi_e2e::{assert_nothing_left, require, unique_id, Bundle, Hezi};
use serde_json::{json, Value};

#[test]
fn events_reports_an_oom_kill_of_a_child_while_the_init_runs() {
    require!();
    let h = Hezi::new();
    let limit = 16 << 20;
    let mut b = Bundle::busybox(&[
        "sh",
        "-c",
        "sleep 1; (echo 1000 > /proc/self/oom_score_adj; x=$(head -c 64000000 /dev/zero | tr '\\0' a)); sleep 3041",
    ]);
    // The killer must take the hog, never the init: the hog's subshell puts itself first in line
    // (lowering the init's score needs CAP_SYS_RESOURCE, which a test host may not give root).
    // Swap limited to the memory limit, so the hog cannot escape into swap.
    b.linux()["resources"] = json!({ "memory": { "limit": limit, "swap": limit } });
    let id = unique_id("oomlive");
    h.create(&b, &id);
    h.ok(&["start", &id]);
    let mut child = h
        .command(&["events", "--interval", "600s", &id])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn hezi events");
    let out = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel::<Value>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(|l| l.ok()) {
            if let Ok(v) = serde_json::from_str(&line) {
                if tx.send(v).is_err() {
                    break;
                }
            }
        }
    });
    let want = json!({ "type": "oom", "id": id });
    let mut seen = Vec::new();
    let got = loop {
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(v) if v == want => break true,
            Ok(v) => seen.push(v["type"].clone()),
            Err(_) => break false,
        }
    };
    let running = h.status(&id) == "running";
    let _ = h.cmd(&["delete", "--force", &id]);
    let _ = child.kill();
    let _ = child.wait();
    let _ = reader.join();
    assert!(
        got,
        "no oom event within 30 s while the container ran; events seen: {seen:?}"
    );
    assert!(running, "the init should have survived the OOM kill of its child");
    assert_nothing_left(&h, &id, &b, Some("sleep 3041"));
}
