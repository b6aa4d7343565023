//! gRPC reflection lists the services a process serves, and no other
//! service `qmec.proto` describes (a client that trusted the list would
//! otherwise call `qmec.v1.Offload` on the controller and get Unimplemented).

#![allow(clippy::unwrap_used)]

use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
use tonic_reflection::pb::v1::ServerReflectionRequest;

/// The services a reflection over `served` lists, sorted.
async fn listed(served: &[&str]) -> Vec<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tonic::transport::Server::builder()
        .add_service(qmec_proto::reflection(served).unwrap())
        .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener));
    let server = tokio::spawn(server);
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}")).unwrap().connect().await.unwrap();
    let mut client = ServerReflectionClient::new(channel);
    let request = ServerReflectionRequest { host: String::new(), message_request: Some(MessageRequest::ListServices(String::new())) };
    let mut responses = client.server_reflection_info(tokio_stream::iter([request])).await.unwrap().into_inner();
    let response = responses.message().await.unwrap().unwrap();
    server.abort();
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("not a service list: {response:?}");
    };
    let mut names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    names.sort();
    names
}

#[tokio::test]
async fn each_process_lists_only_the_services_it_serves() {
    let controller = <qmec_proto::pb::controller_server::ControllerServer<()> as tonic::server::NamedService>::NAME;
    let offload = <qmec_proto::pb::offload_server::OffloadServer<()> as tonic::server::NamedService>::NAME;
    assert_eq!(listed(&[controller]).await, ["grpc.reflection.v1.ServerReflection", "qmec.v1.Controller"]);
    assert_eq!(listed(&[offload]).await, ["grpc.reflection.v1.ServerReflection", "qmec.v1.Offload"]);
}
