//! A blocking CRI v1 client over containerd's unix socket (the kubelet's side of the API), and
//! the pod and container configs the tests send, shaped like the kubelet's.
//!
//! Blocking, because the tests are plain sequences of calls and waits: each call runs on the
//! client's own tokio runtime with a deadline, so a hung runtime fails the test, never hangs it.

use std::collections::HashMap;
use std::future::Future;

use hyper_util::rt::TokioIo;
use k8s_cri::v1 as cri;
use k8s_cri::v1::image_service_client::ImageServiceClient;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use serde_json::Value;
use tonic::transport::{Channel, Endpoint, Uri};

use crate::containerd::{Containerd, CALL_TIMEOUT};

pub use k8s_cri::v1::{ContainerState, ContainerStatus, ExecSyncResponse, NamespaceMode, PodSandboxState};

pub struct Cri {
    rt: tokio::runtime::Runtime,
    runtime: RuntimeServiceClient<Channel>,
    images: ImageServiceClient<Channel>,
}

/// A CRI call that failed (the gRPC status, e.g. an error the runtime returned).
pub type CallResult<T> = Result<T, tonic::Status>;

impl Cri {
    /// Connect to `c`'s CRI and wait until it reports the runtime ready and knows `images`.
    pub fn connect(c: &Containerd, images: &[&str]) -> Cri {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let sock = c.address();
        let channel = rt
            .block_on(async move {
                // The URI is a placeholder: the connector below always dials the socket.
                Endpoint::try_from("http://[::]:50051")
                    .expect("endpoint")
                    .timeout(CALL_TIMEOUT)
                    .connect_with_connector(tower::service_fn(move |_: Uri| {
                        let sock = sock.clone();
                        async move { Ok::<_, std::io::Error>(TokioIo::new(tokio::net::UnixStream::connect(sock).await?)) }
                    }))
                    .await
            })
            .expect("connect to the CRI socket");
        let cri = Cri {
            rt,
            runtime: RuntimeServiceClient::new(channel.clone()),
            images: ImageServiceClient::new(channel),
        };
        let ready = hezi_e2e::wait_until(30, || {
            cri.call(cri.rs().status(cri::StatusRequest { verbose: false }))
                .ok()
                .and_then(|s| s.status)
                .is_some_and(|s| s.conditions.iter().any(|c| c.r#type == "RuntimeReady" && c.status))
        });
        assert!(ready, "CRI never reported RuntimeReady:\n{}", c.log_tail());
        for image in images {
            // The CRI learns of imported images from containerd's events, a moment later.
            let known = hezi_e2e::wait_until(30, || {
                let req = cri::ImageStatusRequest {
                    image: Some(image_spec(image)),
                    verbose: false,
                };
                cri.call(cri.images.clone().image_status(req))
                    .ok()
                    .and_then(|r| r.image)
                    .is_some()
            });
            assert!(known, "CRI never listed image {image}:\n{}", c.log_tail());
        }
        cri
    }

    fn rs(&self) -> RuntimeServiceClient<Channel> {
        self.runtime.clone()
    }

    /// Run one call to completion (or CALL_TIMEOUT).
    fn call<T>(&self, f: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>) -> CallResult<T> {
        self.rt.block_on(async {
            match tokio::time::timeout(CALL_TIMEOUT, f).await {
                Ok(r) => r.map(tonic::Response::into_inner),
                Err(_) => Err(tonic::Status::deadline_exceeded("test-side deadline")),
            }
        })
    }

    pub fn run_pod(&self, config: &cri::PodSandboxConfig, handler: &str) -> CallResult<String> {
        let req = cri::RunPodSandboxRequest {
            config: Some(config.clone()),
            runtime_handler: handler.to_string(),
        };
        self.call(self.rs().run_pod_sandbox(req)).map(|r| r.pod_sandbox_id)
    }

    /// The pod's status and the verbose `info` (containerd puts the sandbox's pid there).
    pub fn pod_status(&self, id: &str) -> (cri::PodSandboxStatus, Value) {
        let req = cri::PodSandboxStatusRequest {
            pod_sandbox_id: id.to_string(),
            verbose: true,
        };
        let r = self.call(self.rs().pod_sandbox_status(req)).expect("PodSandboxStatus");
        (r.status.expect("status in PodSandboxStatus"), info(&r.info))
    }

    pub fn stop_pod(&self, id: &str) -> CallResult<()> {
        let req = cri::StopPodSandboxRequest {
            pod_sandbox_id: id.to_string(),
        };
        self.call(self.rs().stop_pod_sandbox(req)).map(drop)
    }

    pub fn remove_pod(&self, id: &str) -> CallResult<()> {
        let req = cri::RemovePodSandboxRequest {
            pod_sandbox_id: id.to_string(),
        };
        self.call(self.rs().remove_pod_sandbox(req)).map(drop)
    }

    pub fn list_pods(&self) -> Vec<String> {
        self.pods().expect("ListPodSandbox")
    }

    /// ListPodSandbox that may fail (for cleanup after a failed test, where a panic would abort).
    pub fn pods(&self) -> CallResult<Vec<String>> {
        let req = cri::ListPodSandboxRequest { filter: None };
        let r = self.call(self.rs().list_pod_sandbox(req))?;
        Ok(r.items.into_iter().map(|p| p.id).collect())
    }

    pub fn create_container(
        &self,
        pod_id: &str,
        pod: &cri::PodSandboxConfig,
        config: &cri::ContainerConfig,
    ) -> CallResult<String> {
        let req = cri::CreateContainerRequest {
            pod_sandbox_id: pod_id.to_string(),
            config: Some(config.clone()),
            sandbox_config: Some(pod.clone()),
        };
        self.call(self.rs().create_container(req)).map(|r| r.container_id)
    }

    pub fn start(&self, id: &str) -> CallResult<()> {
        let req = cri::StartContainerRequest {
            container_id: id.to_string(),
        };
        self.call(self.rs().start_container(req)).map(drop)
    }

    pub fn stop(&self, id: &str, timeout_s: i64) -> CallResult<()> {
        let req = cri::StopContainerRequest {
            container_id: id.to_string(),
            timeout: timeout_s,
        };
        self.call(self.rs().stop_container(req)).map(drop)
    }

    pub fn remove(&self, id: &str) -> CallResult<()> {
        let req = cri::RemoveContainerRequest {
            container_id: id.to_string(),
        };
        self.call(self.rs().remove_container(req)).map(drop)
    }

    /// UpdateContainerResources: the memory limit and CPU shares of a running container.
    pub fn update(&self, id: &str, memory_limit: i64, cpu_shares: i64) -> CallResult<()> {
        let req = cri::UpdateContainerResourcesRequest {
            container_id: id.to_string(),
            linux: Some(cri::LinuxContainerResources {
                memory_limit_in_bytes: memory_limit,
                cpu_shares,
                ..Default::default()
            }),
            ..Default::default()
        };
        self.call(self.rs().update_container_resources(req)).map(drop)
    }

    /// The container's status and verbose `info` (with its pid while it runs).
    pub fn status(&self, id: &str) -> (ContainerStatus, Value) {
        let req = cri::ContainerStatusRequest {
            container_id: id.to_string(),
            verbose: true,
        };
        let r = self.call(self.rs().container_status(req)).expect("ContainerStatus");
        (r.status.expect("status in ContainerStatus"), info(&r.info))
    }

    /// Wait (up to `secs`) for the container to reach `state`; returns its status then.
    pub fn wait_state(&self, id: &str, state: ContainerState, secs: u64) -> ContainerStatus {
        let mut last = None;
        let reached = hezi_e2e::wait_until(secs, || {
            let (s, _) = self.status(id);
            let hit = s.state == state as i32;
            last = Some(s);
            hit
        });
        let last = last.expect("status polled");
        assert!(reached, "container {id} never reached {state:?}: {last:?}");
        last
    }

    pub fn list_containers(&self, pod_id: &str) -> Vec<String> {
        let filter = cri::ContainerFilter {
            pod_sandbox_id: pod_id.to_string(),
            ..Default::default()
        };
        let req = cri::ListContainersRequest { filter: Some(filter) };
        let r = self.call(self.rs().list_containers(req)).expect("ListContainers");
        r.containers.into_iter().map(|c| c.id).collect()
    }

    pub fn exec(&self, id: &str, cmd: &[&str]) -> CallResult<ExecSyncResponse> {
        let req = cri::ExecSyncRequest {
            container_id: id.to_string(),
            cmd: cmd.iter().map(|s| s.to_string()).collect(),
            timeout: 30,
        };
        self.call(self.rs().exec_sync(req))
    }

    /// ExecSync that must return; (stdout, stderr, exit code).
    pub fn exec_ok(&self, id: &str, cmd: &[&str]) -> (String, String, i32) {
        let r = self
            .exec(id, cmd)
            .unwrap_or_else(|e| panic!("ExecSync {cmd:?} in {id}: {e}"));
        (
            String::from_utf8_lossy(&r.stdout).into_owned(),
            String::from_utf8_lossy(&r.stderr).into_owned(),
            r.exit_code,
        )
    }
}

/// containerd's verbose `info` map holds one JSON document under "info".
fn info(map: &HashMap<String, String>) -> Value {
    map.get("info")
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or(Value::Null)
}

/// The `pid` field of a verbose `info`, as the string /proc paths want.
pub fn info_pid(info: &Value) -> String {
    let pid = info["pid"].as_u64().unwrap_or(0);
    assert!(pid > 0, "no pid in verbose info: {info}");
    pid.to_string()
}

pub fn image_spec(name: &str) -> cri::ImageSpec {
    cri::ImageSpec {
        image: name.to_string(),
        ..Default::default()
    }
}

/// How a pod is networked.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Net {
    /// The node's network namespace (and so its hostname): `hostNetwork: true`.
    Node,
    /// A network namespace of its own, wired by CNI.
    Pod,
}

/// A pod config as the kubelet sends it: metadata, a log directory, a cgroup parent, the
/// network mode; `hostname` only for pods with their own network (and so UTS) namespace.
pub fn pod_config(name: &str, net: Net, log_dir: &std::path::Path, cgroup_parent: &str) -> cri::PodSandboxConfig {
    let mode = match net {
        Net::Node => NamespaceMode::Node,
        Net::Pod => NamespaceMode::Pod,
    };
    cri::PodSandboxConfig {
        metadata: Some(cri::PodSandboxMetadata {
            name: name.to_string(),
            uid: hezi_e2e::unique_id("uid"),
            namespace: "default".to_string(),
            attempt: 0,
        }),
        hostname: if net == Net::Pod {
            name.to_string()
        } else {
            String::new()
        },
        log_directory: log_dir.to_string_lossy().into_owned(),
        linux: Some(cri::LinuxPodSandboxConfig {
            cgroup_parent: cgroup_parent.to_string(),
            security_context: Some(cri::LinuxSandboxSecurityContext {
                namespace_options: Some(namespaces(mode)),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// `cfg` with its pid namespace mode set: `Node` is `hostPID: true`, `Pod` is
/// `shareProcessNamespace: true` (the sandbox's pid namespace, the pause process its init).
pub fn with_pid_mode(mut cfg: cri::PodSandboxConfig, mode: NamespaceMode) -> cri::PodSandboxConfig {
    let ns = cfg
        .linux
        .as_mut()
        .and_then(|l| l.security_context.as_mut())
        .and_then(|s| s.namespace_options.as_mut());
    if let Some(ns) = ns {
        ns.pid = mode as i32;
    }
    cfg
}

/// The kubelet's default namespaces: the pod's network (or the node's), the pod's IPC, a pid
/// namespace per container.
fn namespaces(network: NamespaceMode) -> cri::NamespaceOption {
    cri::NamespaceOption {
        network: network as i32,
        pid: NamespaceMode::Container as i32,
        ipc: NamespaceMode::Pod as i32,
        ..Default::default()
    }
}

/// A busybox container running `args` (its command is the image's: none, so args[0] runs),
/// logging to `<name>.log` in the pod's log directory, with the pod's namespace options.
pub fn container_config(name: &str, pod: &cri::PodSandboxConfig, args: &[&str]) -> cri::ContainerConfig {
    let ns = pod
        .linux
        .as_ref()
        .and_then(|l| l.security_context.as_ref())
        .and_then(|s| s.namespace_options.clone());
    cri::ContainerConfig {
        metadata: Some(cri::ContainerMetadata {
            name: name.to_string(),
            attempt: 0,
        }),
        image: Some(image_spec(crate::image::BUSYBOX_IMAGE)),
        args: args.iter().map(|s| s.to_string()).collect(),
        log_path: format!("{name}.log"),
        linux: Some(cri::LinuxContainerConfig {
            security_context: Some(cri::LinuxContainerSecurityContext {
                namespace_options: ns,
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}
