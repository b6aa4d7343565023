//! Kubernetes manifests for a testbed spread over machines: the scenario
//! (and link profile, if any) in a ConfigMap, the controller as a
//! Deployment behind a Service, the server agents and the device agents as
//! StatefulSets with a headless Service each.
//!
//! Device agents are a StatefulSet with `replicas = M`, not a Deployment:
//! each agent must drive a distinct, stable device id (its random streams
//! and its place in μ), and only a StatefulSet gives pods an ordinal. The
//! ordinal reaches the arguments through the downward API label
//! `apps.kubernetes.io/pod-index` (Kubernetes ≥ 1.28) and `$(VAR)`
//! expansion, so the image needs no shell.

use crate::plan::{CONTROLLER_PORT, METRICS_PORT, SERVER_PORT};
use qmec_model::Scenario;
use serde_json::{Value, json};

pub const CONTROLLER: &str = "qmec-controller";
pub const SERVERS: &str = "qmec-server";
pub const DEVICES: &str = "qmec-device";
pub const CONFIG: &str = "qmec-scenario";
/// Where the ConfigMap is mounted in every pod.
pub const CONFIG_DIR: &str = "/etc/qmec";

#[derive(Debug, Clone)]
pub struct K8sOptions {
    pub namespace: String,
    pub image: String,
    pub policy: String,
    pub seed: u64,
    pub slots: u64,
    pub slot_ms: f64,
    pub report_deadline: f64,
    pub payload_scale: f64,
    /// Contents of a link profile for the device agents' userspace emulator.
    pub link_profile: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum K8sError {
    /// An option Kubernetes or the container runtime would refuse, under
    /// the name of its `qmec deploy k8s` flag.
    #[error("--{flag} `{value}`: {reason}")]
    Option { flag: &'static str, value: String, reason: String },
    #[error("serialising the scenario: {0}")]
    Scenario(String),
    #[error("writing YAML: {0}")]
    Yaml(#[from] serde_yaml::Error),
}

fn labels(app: &str) -> Value {
    json!({ "app.kubernetes.io/name": app, "app.kubernetes.io/part-of": "qmec" })
}

fn meta(name: &str, o: &K8sOptions) -> Value {
    json!({ "name": name, "namespace": o.namespace, "labels": labels(name) })
}

fn pod_index_env(var: &str) -> Value {
    json!({ "name": var, "valueFrom": { "fieldRef": { "fieldPath": "metadata.labels['apps.kubernetes.io/pod-index']" } } })
}

fn pod_spec(name: &str, o: &K8sOptions, args: Vec<String>, ports: Value, env: Value) -> Value {
    json!({
        "containers": [{
            "name": name,
            "image": o.image,
            "imagePullPolicy": "IfNotPresent",
            "args": args,
            "ports": ports,
            "env": env,
            "volumeMounts": [
                { "name": "config", "mountPath": CONFIG_DIR, "readOnly": true },
                { "name": "out", "mountPath": "/out" }
            ]
        }],
        "volumes": [
            { "name": "config", "configMap": { "name": CONFIG } },
            { "name": "out", "emptyDir": {} }
        ]
    })
}

/// Every agent serves Prometheus metrics on the same container port.
fn metrics_port() -> Value {
    json!({ "name": "metrics", "containerPort": METRICS_PORT })
}

fn s(v: impl ToString) -> String {
    v.to_string()
}

/// Every manifest, in apply order: the config map (scenario and link
/// profile), then the controller's, the servers' and the devices'. A
/// namespace or image Kubernetes would refuse is refused here, by flag.
pub fn manifests(scenario: &Scenario, o: &K8sOptions) -> Result<Vec<Value>, K8sError> {
    let refuse = |flag, value: &str, reason: String| K8sError::Option {
        flag,
        value: qmec_model::excerpt::excerpt(value).into_owned(),
        reason,
    };
    check_namespace(&o.namespace).map_err(|reason| refuse("namespace", &o.namespace, reason))?;
    check_image(&o.image).map_err(|reason| refuse("image", &o.image, reason))?;
    let scenario_toml = toml::to_string(scenario).map_err(|e| K8sError::Scenario(e.to_string()))?;
    let mut data = json!({ "scenario.toml": scenario_toml });
    if let Some(profile) = &o.link_profile {
        data["link-profile.toml"] = json!(profile);
    }
    let controller_uri = format!("http://{CONTROLLER}:{CONTROLLER_PORT}");
    let config_map = json!({ "apiVersion": "v1", "kind": "ConfigMap", "metadata": meta(CONFIG, o), "data": data });
    let mut all = vec![config_map];
    all.extend(controller_manifests(scenario, o));
    all.extend(server_manifests(scenario.servers, &controller_uri, o));
    all.extend(device_manifests(scenario.devices, controller_uri, o));
    Ok(all)
}

/// The controller's Deployment and Service.
fn controller_manifests(scenario: &Scenario, o: &K8sOptions) -> [Value; 2] {
    let (devices, servers) = (scenario.devices, scenario.servers);
    let controller_args = vec![
        s("agent"), s("controller"),
        s("--scenario"), format!("{CONFIG_DIR}/scenario.toml"),
        s("--devices"), s(devices),
        s("--servers"), s(servers),
        s("--policy"), o.policy.clone(),
        s("--seed"), s(o.seed),
        s("--slots"), s(o.slots),
        s("--slot-ms"), s(o.slot_ms),
        s("--report-deadline"), s(o.report_deadline),
        s("--listen"), format!("0.0.0.0:{CONTROLLER_PORT}"),
        s("--metrics"), format!("0.0.0.0:{METRICS_PORT}"),
        s("--join-timeout-s"), s(600),
        s("--records"), s("/out/records/controller.json"),
    ];
    let controller_ports = json!([{ "name": "grpc", "containerPort": CONTROLLER_PORT }, metrics_port()]);
    let controller = json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta(CONTROLLER, o),
        "spec": {
            "replicas": 1,
            "selector": { "matchLabels": labels(CONTROLLER) },
            "template": {
                "metadata": { "labels": labels(CONTROLLER) },
                "spec": pod_spec(CONTROLLER, o, controller_args, controller_ports, json!([]))
            }
        }
    });
    let controller_service = json!({
        "apiVersion": "v1", "kind": "Service", "metadata": meta(CONTROLLER, o),
        "spec": {
            "selector": labels(CONTROLLER),
            "ports": [
                { "name": "grpc", "port": CONTROLLER_PORT, "targetPort": "grpc" },
                { "name": "metrics", "port": METRICS_PORT, "targetPort": "metrics" }
            ]
        }
    });
    [controller, controller_service]
}

/// The servers' headless Service and StatefulSet.
fn server_manifests(servers: usize, controller_uri: &str, o: &K8sOptions) -> [Value; 2] {
    let server_args = vec![
        s("agent"), s("server"),
        s("--id"), s("$(SERVER_ID)"),
        s("--controller"), controller_uri.to_string(),
        s("--listen"), format!("0.0.0.0:{SERVER_PORT}"),
        s("--advertise"), format!("http://$(POD_NAME).{SERVERS}:{SERVER_PORT}"),
        s("--metrics"), format!("0.0.0.0:{METRICS_PORT}"),
        s("--records"), s("/out/records/server.json"),
    ];
    let server_env = json!([
        pod_index_env("SERVER_ID"),
        { "name": "POD_NAME", "valueFrom": { "fieldRef": { "fieldPath": "metadata.name" } } }
    ]);
    let server_service = json!({
        "apiVersion": "v1", "kind": "Service", "metadata": meta(SERVERS, o),
        "spec": {
            "clusterIP": "None",
            "selector": labels(SERVERS),
            "ports": [
                { "name": "grpc", "port": SERVER_PORT, "targetPort": "grpc" },
                { "name": "metrics", "port": METRICS_PORT, "targetPort": "metrics" }
            ]
        }
    });
    let server_set = json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": meta(SERVERS, o),
        "spec": {
            "serviceName": SERVERS,
            "replicas": servers,
            "podManagementPolicy": "Parallel",
            "selector": { "matchLabels": labels(SERVERS) },
            "template": {
                "metadata": { "labels": labels(SERVERS) },
                "spec": pod_spec(SERVERS, o, server_args, json!([{ "name": "grpc", "containerPort": SERVER_PORT }, metrics_port()]), server_env)
            }
        }
    });
    [server_service, server_set]
}

/// The devices' headless Service and StatefulSet.
fn device_manifests(devices: usize, controller_uri: String, o: &K8sOptions) -> [Value; 2] {
    let mut device_args = vec![
        s("agent"), s("device"),
        s("--controller"), controller_uri,
        s("--devices"), s("$(DEVICE_ID)"),
        s("--payload-scale"), s(o.payload_scale),
        s("--metrics"), format!("0.0.0.0:{METRICS_PORT}"),
        s("--records"), s("/out/records/device.json"),
    ];
    if o.link_profile.is_some() {
        device_args.extend([s("--link-profile"), format!("{CONFIG_DIR}/link-profile.toml")]);
    }
    let device_service = json!({
        "apiVersion": "v1", "kind": "Service", "metadata": meta(DEVICES, o),
        "spec": {
            "clusterIP": "None",
            "selector": labels(DEVICES),
            "ports": [{ "name": "metrics", "port": METRICS_PORT, "targetPort": "metrics" }]
        }
    });
    let device_set = json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": meta(DEVICES, o),
        "spec": {
            "serviceName": DEVICES,
            "replicas": devices,
            "podManagementPolicy": "Parallel",
            "selector": { "matchLabels": labels(DEVICES) },
            "template": {
                "metadata": { "labels": labels(DEVICES) },
                "spec": pod_spec(DEVICES, o, device_args, json!([metrics_port()]), json!([pod_index_env("DEVICE_ID")]))
            }
        }
    });
    [device_service, device_set]
}

/// The manifests as one multi-document YAML file.
/// A namespace is an RFC 1123 label: 1 to 63 lower-case letters, digits
/// and `-`, starting and ending with a letter or digit.
pub fn check_namespace(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 63 {
        return Err(format!("must be 1 to 63 characters (RFC 1123 label), not {}", name.len()));
    }
    if let Some(c) = name.chars().find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-')) {
        return Err(format!("`{}` is not allowed: lower-case letters, digits and `-` only (RFC 1123 label)", c.escape_default()));
    }
    if name.starts_with('-') || name.ends_with('-') {
        return Err("must start and end with a letter or digit (RFC 1123 label)".into());
    }
    Ok(())
}

/// An image reference as container runtimes parse it:
/// `[host[:port]/]path[:tag][@algorithm:hex]`, the path of lower-case
/// components (letters and digits joined by `.`, `_`, `__` or `-`s).
pub fn check_image(image: &str) -> Result<(), String> {
    let (rest, digest) = match image.split_once('@') {
        Some((rest, digest)) => (rest, Some(digest)),
        None => (image, None),
    };
    if let Some(digest) = digest {
        let (algorithm, hex) = digest.split_once(':').ok_or("a digest is `algorithm:hex`")?;
        if !path_component(algorithm) || hex.len() < 32 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(format!("digest `{digest}` is not `algorithm:hex` with at least 32 hex digits"));
        }
    }
    // A tag follows the last `:` that comes after the last `/` (a `:` before it is a port).
    let (name, tag) = match rest.rfind(':').filter(|&at| rest[at..].find('/').is_none()) {
        Some(at) => (&rest[..at], Some(&rest[at + 1..])),
        None => (rest, None),
    };
    if let Some(tag) = tag {
        let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
        let valid = tag.len() <= 128 && tag.starts_with(word) && tag.chars().all(|c| word(c) || c == '.' || c == '-');
        if !valid {
            return Err(format!("tag `{tag}` must be 1 to 128 letters, digits, `_`, `.` or `-`, not starting with `.` or `-`"));
        }
    }
    let mut components: Vec<&str> = name.split('/').collect();
    // The first component is a registry host when it looks like one.
    if components.len() > 1 && (components[0].contains(['.', ':']) || components[0] == "localhost") {
        let host = components.remove(0);
        if !registry_host(host) {
            return Err(format!("registry `{host}` is not a host name with an optional port"));
        }
    }
    match components.iter().find(|c| !path_component(c)) {
        Some(bad) => Err(format!(
            "name component `{bad}` must be lower-case letters and digits, joined by `.`, `_`, `__` or `-`"
        )),
        None => Ok(()),
    }
}

/// `[a-z0-9]+` runs joined by one `.`, one or two `_`, or any `-`s.
fn path_component(component: &str) -> bool {
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    let mut separators = component.split(alnum).filter(|s| !s.is_empty());
    component.starts_with(alnum)
        && component.ends_with(alnum)
        && separators.all(|s| matches!(s, "." | "_" | "__") || s.chars().all(|c| c == '-'))
}

/// `host[:port]`: dot-separated labels of letters, digits and inner `-`.
fn registry_host(host: &str) -> bool {
    let (name, port) = match host.split_once(':') {
        Some((name, port)) => (name, Some(port)),
        None => (host, None),
    };
    let label = |l: &str| {
        !l.is_empty() && !l.starts_with('-') && !l.ends_with('-') && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    name.split('.').all(label) && port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.chars().all(|c| c.is_ascii_digit()))
}

pub fn to_yaml(manifests: &[Value]) -> Result<String, K8sError> {
    let mut out = String::new();
    for manifest in manifests {
        out.push_str("---\n");
        out.push_str(&serde_yaml::to_string(manifest)?);
    }
    Ok(out)
}
