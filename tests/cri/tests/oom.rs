//! A container killed by its memory limit is "OOMKilled" to the kubelet: CRI sets that reason
//! only when the shim's TaskOOM event reaches containerd before the TaskExit, so this is the
//! shim's event order seen from the CRI. Several containers in turn, as the race that got it
//! wrong showed once in a few runs.

use hezi_cri_tests::client::{container_config, pod_config, ContainerState, Cri, Net};
use hezi_cri_tests::containerd::Containerd;
use hezi_cri_tests::image::{BUSYBOX_IMAGE, PAUSE_IMAGE};
use hezi_cri_tests::{prerequisites, remove_cgroups, Handler};
use hezi_e2e::unique_id;

#[test]
fn hezi_runc() {
    oom_killed(Handler::HeziRunc)
}

#[test]
fn hezi() {
    oom_killed(Handler::Hezi)
}

fn oom_killed(handler: Handler) {
    if !prerequisites(handler) {
        return;
    }
    let c = Containerd::start();
    let cri = Cri::connect(&c, &[BUSYBOX_IMAGE, PAUSE_IMAGE]);
    let parent = format!("/{}", unique_id("hezi-cri-oom"));
    let name = unique_id("oom");
    let pod = pod_config(&name, Net::Node, &c.log_dir().join(&name), &parent);
    std::fs::create_dir_all(c.log_dir().join(&name)).expect("pod log dir");
    let pod_id = cri
        .run_pod(&pod, handler.name())
        .unwrap_or_else(|e| panic!("RunPodSandbox: {e}\n{}", c.log_tail()));
    for i in 0..3 {
        let mut cfg = container_config(&format!("eater{i}"), &pod, &["sh", "-c", "tail /dev/zero"]);
        if let Some(linux) = cfg.linux.as_mut() {
            linux
                .resources
                .get_or_insert_with(Default::default)
                .memory_limit_in_bytes = 16 << 20;
        }
        let id = cri
            .create_container(&pod_id, &pod, &cfg)
            .unwrap_or_else(|e| panic!("CreateContainer: {e}\n{}", c.log_tail()));
        cri.start(&id).unwrap_or_else(|e| panic!("StartContainer: {e}"));
        let status = cri.wait_state(&id, ContainerState::ContainerExited, 30);
        assert_eq!(
            (status.exit_code, status.reason.as_str()),
            (137, "OOMKilled"),
            "container {i} ({}): {status:?}",
            handler.name()
        );
        cri.remove(&id).unwrap_or_else(|e| panic!("RemoveContainer: {e}"));
    }
    cri.stop_pod(&pod_id).unwrap_or_else(|e| panic!("StopPodSandbox: {e}"));
    cri.remove_pod(&pod_id)
        .unwrap_or_else(|e| panic!("RemovePodSandbox: {e}"));
    remove_cgroups(&parent);
}
