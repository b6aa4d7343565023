//! Mutual TLS, the token and the size limit against a real tonic server on
//! loopback: the right certificate and token get through; no certificate,
//! a certificate from another CA, a plaintext client, the wrong peer name,
//! a wrong or missing token and an oversize message are all refused.

#![allow(clippy::unwrap_used)]

use qmec_security::{Security, SecurityConfig, certs};
use std::path::Path;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::service::interceptor::InterceptedService;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus};

const LIMIT: usize = 4096;

fn config(dir: &Path, token_file: Option<&Path>) -> SecurityConfig {
    SecurityConfig { tls_dir: Some(dir.to_path_buf()), token: None, token_file: token_file.map(Path::to_path_buf) }
}

/// Serves gRPC health as `name` on a free port; returns its address.
async fn serve(security: Security) -> String {
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter.set_service_status("", tonic_health::ServingStatus::Serving).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let service = InterceptedService::new(health.max_decoding_message_size(LIMIT), security.check());
    let server = security.server_builder().unwrap().add_service(service);
    tokio::spawn(server.serve_with_incoming(TcpListenerStream::new(listener)));
    format!("http://{addr}")
}

/// One health check as the agent `security` describes, to the agent `peer`.
async fn check(security: &Security, uri: &str, peer: &str, service: String) -> Result<(), tonic::Status> {
    let endpoint = security.endpoint(uri, peer).unwrap().connect_timeout(Duration::from_secs(3));
    let channel = endpoint.connect().await.map_err(|e| tonic::Status::unavailable(format!("{e:?}")))?;
    let mut client = HealthClient::with_interceptor(channel, security.attach());
    let mut request = tonic::Request::new(HealthCheckRequest { service });
    request.set_timeout(Duration::from_secs(3));
    let response = client.check(request).await?;
    assert_eq!(response.into_inner().status(), ServingStatus::Serving);
    Ok(())
}

#[tokio::test]
async fn only_the_runs_certificates_and_token_get_through() {
    let run = tempfile::tempdir().unwrap();
    let generated = certs::generate(run.path(), 1, 1, 1, &[], certs::Existing::Refuse).unwrap();
    let other_ca = tempfile::tempdir().unwrap();
    certs::generate(other_ca.path(), 1, 1, 1, &[], certs::Existing::Refuse).unwrap();

    let controller = Security::load(&config(run.path(), Some(&generated.token)), "controller").unwrap();
    let uri = serve(controller).await;

    // The right certificate and token, asking for the controller by name.
    let device = Security::load(&config(run.path(), Some(&generated.token)), "device-0").unwrap();
    check(&device, &uri, "controller", String::new()).await.unwrap();

    // The same certificate but expecting a server's name: the controller's
    // certificate does not name server-0, so the client walks away.
    let err = check(&device, &uri, "server-0", String::new()).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unavailable, "{err}");

    // A certificate (and CA) from another run: refused in the handshake.
    let stranger = Security::load(&config(other_ca.path(), Some(&generated.token)), "device-0").unwrap();
    let err = check(&stranger, &uri, "controller", String::new()).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unavailable, "{err}");

    // Plaintext: no TLS at all.
    let plain = Security::load(&SecurityConfig { token_file: Some(generated.token.clone()), ..Default::default() }, "x").unwrap();
    assert!(check(&plain, &uri, "controller", String::new()).await.is_err());

    // Right certificate, wrong or missing token.
    let wrong = SecurityConfig { token: Some("not-the-token-0123456789".into()), ..config(run.path(), None) };
    let wrong = Security::load(&wrong, "device-0").unwrap();
    let err = check(&wrong, &uri, "controller", String::new()).await.unwrap_err();
    assert_eq!((err.code(), err.message()), (tonic::Code::Unauthenticated, "wrong bearer token"));
    let tokenless = Security::load(&config(run.path(), None), "device-0").unwrap();
    let err = check(&tokenless, &uri, "controller", String::new()).await.unwrap_err();
    assert_eq!((err.code(), err.message()), (tonic::Code::Unauthenticated, "missing bearer token"));

    // Everything right but a message over the server's decoding limit.
    let err = check(&device, &uri, "controller", "x".repeat(2 * LIMIT)).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::OutOfRange, "{err}");
    assert!(err.message().contains("message length too large"), "{err}");
}

#[tokio::test]
async fn a_client_without_a_certificate_is_refused() {
    let run = tempfile::tempdir().unwrap();
    certs::generate(run.path(), 1, 0, 1, &[], certs::Existing::Refuse).unwrap();
    let uri = serve(Security::load(&config(run.path(), None), "controller").unwrap()).await;
    // Trusts the CA but presents no certificate of its own.
    let ca = tonic::transport::Certificate::from_pem(std::fs::read(certs::ca_cert_path(run.path())).unwrap());
    let tls = tonic::transport::ClientTlsConfig::new().ca_certificate(ca).domain_name("controller");
    let endpoint =
        tonic::transport::Endpoint::from_shared(uri.replace("http://", "https://")).unwrap().tls_config(tls).unwrap();
    let outcome = async {
        let channel = endpoint.connect().await.map_err(|e| tonic::Status::unavailable(e.to_string()))?;
        HealthClient::new(channel).check(HealthCheckRequest::default()).await
    }
    .await;
    assert!(outcome.is_err(), "a client without a certificate got an answer");
}

#[test]
fn missing_files_and_bad_tokens_are_named() {
    let empty = tempfile::tempdir().unwrap();
    let err = Security::load(&config(empty.path(), None), "controller").unwrap_err();
    assert!(err.to_string().contains("ca.pem"), "{err}");
    let short = SecurityConfig { token: Some("abc".into()), ..Default::default() };
    assert!(Security::load(&short, "controller").unwrap_err().to_string().contains("token"));
    let none = Security::load(&SecurityConfig::default(), "controller").unwrap();
    assert!(!none.tls());
    assert_eq!(none.scheme(), "http");
    let endpoint = Security::load(&config(empty.path(), None), "controller");
    assert!(endpoint.is_err());
}
