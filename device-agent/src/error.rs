//! What can stop a device-agent process. One type for the whole crate,
//! below every module that can fail, so that the channel cache, the device
//! tasks and the process all return it without importing each other.

#[derive(Debug, thiserror::Error)]
pub enum DeviceAgentError {
    #[error("endpoint `{0}` is not a valid URI")]
    Endpoint(String),
    #[error("device {device}: {reason}")]
    Device { device: usize, reason: String },
    #[error(transparent)]
    Records(#[from] qmec_proto::agent_process::RecordsError),
    #[error(transparent)]
    LinkProfile(#[from] qmec_linkem::ProfileError),
    #[error("security: {0}")]
    Security(#[from] qmec_security::SecurityError),
    #[error("kernel links: {0}")]
    Kernel(#[from] qmec_linkem::kernel::KernelError),
    #[error("kernel links: server endpoint `{0}` has no IPv4 address (the HTB filters match one)")]
    KernelServer(String),
    #[error("the controller sessions' thread: {0}")]
    SessionThread(std::io::Error),
    #[error("metrics address {addr}: {source}")]
    Metrics { addr: String, source: std::io::Error },
}
