//! The Kubernetes manifests parse as YAML and hang together: names, ports,
//! selectors, the ConfigMap and Services they refer to, replica counts.

#![allow(clippy::unwrap_used)]

use qmec_deploy::k8s::{self, K8sOptions};
use serde_yaml::Value;

fn options(link_profile: Option<String>) -> K8sOptions {
    K8sOptions {
        namespace: "edge".into(),
        image: "qmec:test".into(),
        policy: "lyapunov".into(),
        seed: 3,
        slots: 100,
        slot_ms: 100.0,
        report_deadline: 0.5,
        payload_scale: 1000.0,
        link_profile,
    }
}

fn documents(devices: usize, servers: usize, link_profile: Option<String>) -> Vec<Value> {
    let mut scenario = qmec_model::Scenario::load("paper").unwrap();
    scenario.devices = devices;
    scenario.servers = servers;
    let yaml = k8s::to_yaml(&k8s::manifests(&scenario, &options(link_profile)).unwrap()).unwrap();
    serde_yaml::Deserializer::from_str(&yaml).map(|doc| serde::Deserialize::deserialize(doc).unwrap()).collect()
}

fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"].as_str() == Some(kind) && d["metadata"]["name"].as_str() == Some(name))
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

fn container(workload: &Value) -> &Value {
    &workload["spec"]["template"]["spec"]["containers"][0]
}

fn args(workload: &Value) -> Vec<String> {
    container(workload)["args"].as_sequence().unwrap().iter().map(|a| a.as_str().unwrap().to_string()).collect()
}

fn arg_after(args: &[String], flag: &str) -> String {
    args[args.iter().position(|a| a == flag).unwrap_or_else(|| panic!("no {flag} in {args:?}")) + 1].clone()
}

fn port_named(workload: &Value, name: &str) -> u64 {
    let ports = container(workload)["ports"].as_sequence().unwrap();
    ports.iter().find(|p| p["name"].as_str() == Some(name)).unwrap_or_else(|| panic!("no port {name}"))["containerPort"]
        .as_u64()
        .unwrap()
}

#[test]
fn workloads_services_and_config_refer_to_each_other() {
    let docs = documents(7, 3, None);
    assert_eq!(docs.len(), 7);
    for doc in &docs {
        assert_eq!(doc["metadata"]["namespace"].as_str(), Some("edge"));
    }
    let config = find(&docs, "ConfigMap", k8s::CONFIG);
    let scenario_toml = config["data"]["scenario.toml"].as_str().unwrap();
    let scenario: qmec_model::Scenario = toml::from_str(scenario_toml).unwrap();
    assert_eq!((scenario.devices, scenario.servers), (7, 3));

    let controller = find(&docs, "Deployment", k8s::CONTROLLER);
    let servers = find(&docs, "StatefulSet", k8s::SERVERS);
    let devices = find(&docs, "StatefulSet", k8s::DEVICES);
    assert_eq!(controller["spec"]["replicas"].as_u64(), Some(1));
    assert_eq!(servers["spec"]["replicas"].as_u64(), Some(3));
    assert_eq!(devices["spec"]["replicas"].as_u64(), Some(7));

    for workload in [controller, servers, devices] {
        // Selectors pick the pod template, every pod mounts the ConfigMap.
        assert_eq!(workload["spec"]["selector"]["matchLabels"], workload["spec"]["template"]["metadata"]["labels"]);
        let volumes = workload["spec"]["template"]["spec"]["volumes"].as_sequence().unwrap();
        assert!(volumes.iter().any(|v| v["configMap"]["name"].as_str() == Some(k8s::CONFIG)));
        assert_eq!(container(workload)["image"].as_str(), Some("qmec:test"));
    }
    assert_eq!(arg_after(&args(controller), "--scenario"), format!("{}/scenario.toml", k8s::CONFIG_DIR));

    // The controller Service selects the controller and targets its named ports.
    let service = find(&docs, "Service", k8s::CONTROLLER);
    assert_eq!(service["spec"]["selector"], controller["spec"]["template"]["metadata"]["labels"]);
    let grpc = port_named(controller, "grpc");
    assert!(arg_after(&args(controller), "--listen").ends_with(&format!(":{grpc}")));
    for port in service["spec"]["ports"].as_sequence().unwrap() {
        port_named(controller, port["targetPort"].as_str().unwrap());
    }
    let service_grpc = service["spec"]["ports"][0]["port"].as_u64().unwrap();
    let controller_uri = format!("http://{}:{service_grpc}", k8s::CONTROLLER);
    assert_eq!(arg_after(&args(servers), "--controller"), controller_uri);
    assert_eq!(arg_after(&args(devices), "--controller"), controller_uri);

    // Servers: a headless Service of the StatefulSet's name; they advertise
    // their stable DNS names on the port they listen on.
    let headless = find(&docs, "Service", k8s::SERVERS);
    assert_eq!(headless["spec"]["clusterIP"].as_str(), Some("None"));
    assert_eq!(servers["spec"]["serviceName"].as_str(), Some(k8s::SERVERS));
    let server_port = port_named(servers, "grpc");
    assert!(arg_after(&args(servers), "--listen").ends_with(&format!(":{server_port}")));
    assert_eq!(
        arg_after(&args(servers), "--advertise"),
        format!("http://$(POD_NAME).{}:{server_port}", k8s::SERVERS)
    );
    // Ids come from the pod ordinal, through env vars the args expand.
    for (workload, flag, var) in [(servers, "--id", "SERVER_ID"), (devices, "--devices", "DEVICE_ID")] {
        assert_eq!(arg_after(&args(workload), flag), format!("$({var})"));
        let env = container(workload)["env"].as_sequence().unwrap();
        let entry = env.iter().find(|e| e["name"].as_str() == Some(var)).unwrap();
        assert!(entry["valueFrom"]["fieldRef"]["fieldPath"].as_str().unwrap().contains("pod-index"));
    }
    assert_eq!(devices["spec"]["serviceName"].as_str(), Some(k8s::DEVICES));
    find(&docs, "Service", k8s::DEVICES);
    assert!(!args(devices).contains(&"--link-profile".to_string()));
}

#[test]
fn a_link_profile_travels_in_the_config_map() {
    let profile = qmec_linkem::LinkProfile::device_delay(std::time::Duration::from_millis(20)).to_toml();
    let docs = documents(2, 1, Some(profile.clone()));
    let config = find(&docs, "ConfigMap", k8s::CONFIG);
    assert_eq!(config["data"]["link-profile.toml"].as_str(), Some(profile.as_str()));
    let devices = find(&docs, "StatefulSet", k8s::DEVICES);
    assert_eq!(arg_after(&args(devices), "--link-profile"), format!("{}/link-profile.toml", k8s::CONFIG_DIR));
}

#[test]
fn a_namespace_kubernetes_would_refuse_is_refused_by_flag() {
    for good in ["qmec", "edge-1", "a", &"n".repeat(63)] {
        assert_eq!(k8s::check_namespace(good), Ok(()), "{good}");
    }
    for bad in ["Bad_NS!", "", "-edge", "edge-", "Edge", "edge.one", &"n".repeat(64)] {
        assert!(k8s::check_namespace(bad).is_err(), "`{bad}` accepted");
    }
    let scenario = qmec_model::Scenario::load("paper").unwrap();
    let o = K8sOptions { namespace: "Bad_NS!".into(), ..options(None) };
    let message = k8s::manifests(&scenario, &o).unwrap_err().to_string();
    assert!(message.starts_with("--namespace `Bad_NS!`: ") && message.contains("RFC 1123"), "{message}");
}

#[test]
fn an_image_reference_runtimes_would_refuse_is_refused_by_flag() {
    let digest = format!("qmec@sha256:{}", "a".repeat(64));
    for good in ["qmec", "qmec:latest", "localhost:5000/qmec:v1.2", "ghcr.io/some_org/q-mec__x:1", "registry.example.com/a/b/c", &digest] {
        assert_eq!(k8s::check_image(good), Ok(()), "{good}");
    }
    for bad in ["has space", "", "Qmec", "qmec:", "qmec:-x", "qmec@sha256:xyz", "a..b", "qmec/", "bad host:99/qmec", "qmec:has space"] {
        assert!(k8s::check_image(bad).is_err(), "`{bad}` accepted");
    }
    let scenario = qmec_model::Scenario::load("paper").unwrap();
    let o = K8sOptions { image: "has space".into(), ..options(None) };
    let message = k8s::manifests(&scenario, &o).unwrap_err().to_string();
    assert!(message.starts_with("--image `has space`: "), "{message}");
}
