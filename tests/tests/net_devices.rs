//! linux.netDevices: a host interface made by the test moves into the container's network
//! namespace under its new name with its addresses, is gone from the host while the container
//! runs, and is back (addresses included) after delete, and after a create that fails; bad
//! input is a clear error with nothing moved.

use std::process::Command;

use hezi_e2e::{assert_nothing_left, require, unique_id, Bundle, Hezi};
use serde_json::json;

/// A network interface of the test's own, removed on drop. A dummy where the kernel has the
/// dummy driver; else one end of a veth pair (this project's VM kernel has no dummy driver).
struct Iface {
    name: String,
}

fn ip(args: &[&str]) -> (bool, String) {
    let out = Command::new("ip").args(args).output().expect("run ip (iproute2)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

impl Iface {
    fn new(addr: &str) -> Iface {
        // Interface names have 15 bytes at most.
        let name = format!("hz{}", std::process::id() % 100_000) + &format!("{}", hezi_e2e::next_number());
        let dummy = ip(&["link", "add", &name, "type", "dummy"]);
        if !dummy.0 {
            let peer = format!("{name}p");
            let veth = ip(&["link", "add", &name, "type", "veth", "peer", "name", &peer]);
            assert!(veth.0, "neither a dummy ({}) nor a veth pair ({})", dummy.1, veth.1);
        }
        for args in [
            vec!["addr", "add", addr, "dev", &name],
            vec!["link", "set", &name, "up"],
        ] {
            let (ok, out) = ip(&args);
            assert!(ok, "ip {args:?}: {out}");
        }
        Iface { name }
    }

    fn on_host(&self) -> Option<String> {
        let (ok, out) = ip(&["addr", "show", "dev", &self.name]);
        ok.then_some(out)
    }
}

impl Drop for Iface {
    fn drop(&mut self) {
        let _ = ip(&["link", "del", &self.name]);
    }
}

fn bundle(args: &[&str], devices: serde_json::Value) -> Bundle {
    let mut b = Bundle::busybox(args);
    b.linux()["netDevices"] = devices;
    b
}

#[test]
fn a_device_moves_in_renamed_with_its_addresses_and_back_at_delete() {
    require!();
    let h = Hezi::new();
    let dev = Iface::new("10.77.1.2/24");
    let b = bundle(&["sleep", "1000"], json!({ &dev.name: { "name": "ctr0" } }));
    let id = unique_id("netdev");
    h.create(&b, &id);
    h.ok(&["start", &id]);
    assert_eq!(
        dev.on_host(),
        None,
        "{} still on the host while the container runs",
        dev.name
    );
    let inside = h.ok(&["exec", &id, "busybox", "ip", "addr", "show", "dev", "ctr0"]);
    assert!(inside.contains("inet 10.77.1.2/24"), "{inside}");
    assert!(inside.contains(",UP"), "it was up on the host: {inside}");
    let gone = h.cmd(&["exec", &id, "busybox", "ip", "link", "show", &dev.name]);
    assert!(!gone.status.success(), "the host name is not used inside");
    h.ok(&["delete", "--force", &id]);
    let back = dev.on_host().expect("the device is back on the host after delete");
    assert!(back.contains("inet 10.77.1.2/24"), "{back}");
    assert_nothing_left(&h, &id, &b, None);
}

#[test]
fn a_failed_create_gives_the_device_back() {
    require!();
    let h = Hezi::new();
    let dev = Iface::new("10.77.2.2/24");
    // The init fails after the device moved: its program does not exist.
    let b = bundle(&["/no/such/program"], json!({ &dev.name: {} }));
    let id = unique_id("netdev-fail");
    let (code, _, err) = h.run(&b, &id);
    assert_ne!(code, 0);
    assert!(err.contains("/no/such/program"), "{err}");
    let back = dev.on_host().expect("the device is back on the host");
    assert!(back.contains("inet 10.77.2.2/24"), "{back}");
    assert_nothing_left(&h, &id, &b, None);
}

#[test]
fn bad_input_is_a_clear_error_with_nothing_moved() {
    require!();
    let h = Hezi::new();
    let dev = Iface::new("10.77.3.2/24");
    let other = Iface::new("10.77.4.2/24");
    for (devices, says) in [
        (json!({ "hznosuch0": {} }), "no network interface hznosuch0 on the host"),
        // lo exists in every network namespace.
        (
            json!({ &dev.name: { "name": "lo" } }),
            "lo is taken in the container's network namespace",
        ),
        // One good device and one bad: neither moves.
        (
            json!({ &dev.name: { "name": "ctr0" }, &other.name: { "name": "lo" } }),
            "lo is taken",
        ),
        (json!({ &dev.name: { "name": "a/b" } }), "not a valid interface name"),
        (
            json!({ &dev.name: { "name": "x" }, &other.name: { "name": "x" } }),
            "would both be x inside",
        ),
    ] {
        let b = bundle(&["true"], devices.clone());
        let id = unique_id("netdev-bad");
        let (code, _, err) = h.run(&b, &id);
        assert_ne!(code, 0, "{devices}");
        assert!(err.contains(says), "{devices}: wanted {says:?} in {err}");
        for d in [&dev, &other] {
            let still = d.on_host().unwrap_or_else(|| panic!("{devices}: {} moved", d.name));
            assert!(still.contains("inet 10.77."), "{devices}: {still}");
        }
        assert_nothing_left(&h, &id, &b, None);
    }
    // Without a network namespace of its own there is nowhere to move to.
    let mut b = bundle(&["true"], json!({ &dev.name: {} }));
    b.namespaces(&["pid", "mount", "ipc", "uts"]);
    let (code, _, err) = h.run(&b, &unique_id("netdev-hostns"));
    assert_ne!(code, 0);
    assert!(err.contains("needs a network namespace"), "{err}");
    assert!(dev.on_host().is_some());
}
