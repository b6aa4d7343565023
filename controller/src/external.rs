//! `--policy external=ADDR`: a policy that asks a gRPC policy service
//! (`qmec.policy.v1.PolicyService`) for each slot's decision, so that
//! policies written elsewhere (Python, an RL agent) drive the real testbed.
//!
//! The core calls [`Policy::decide`] synchronously on the slot loop, as for
//! every policy. The call itself goes out on a thread of its own with its
//! own tokio runtime, and `decide` waits for its answer until the deadline
//! (a share of the slot's wall time) and no longer: a late answer is
//! [`PolicyError::Late`], a failed call [`PolicyError::Unavailable`] and an
//! answer that fails validation [`PolicyError::Infeasible`]; the core then
//! lets the fallback policy decide and counts the cause
//! ([`crate::fallback`]).

use qmec_model::{Decision, Policy, PolicyError, Scenario, SystemState};
use qmec_proto::external::RequestTemplate;
use qmec_proto::policy_pb::policy_service_client::PolicyServiceClient;
use qmec_proto::policy_pb::{PolicyDecision, PolicyRequest};
use std::sync::mpsc as answers;
use std::time::Duration;
use tokio::sync::mpsc;

/// The prefix of an external policy's name on the command line.
pub const PREFIX: &str = "external=";

/// The built-in that decides when the service cannot: `dpp-greedy` needs
/// no model, no LP and no learning thread, cannot fail, and still follows
/// the drift-plus-penalty weights, so a slot it decides is a reasonable one
/// rather than a wasted one (local computing would be).
pub const DEFAULT_FALLBACK: &str = "dpp-greedy";

/// The share of the slot's wall time the service gets: after the reports
/// (half the slot by default), enough for a loopback round trip and a
/// numpy policy at 10 ms slots, with a fifth of the slot left for the
/// decisions to reach the agents.
pub const DEFAULT_DEADLINE: f64 = 0.3;

/// How a testbed runs an external policy: the controller's
/// `--external-fallback` and `--external-deadline`.
#[derive(Debug, Clone, PartialEq)]
pub struct ExternalOptions {
    /// The built-in that decides a slot the service did not.
    pub fallback: String,
    /// The share of the slot's wall time the service gets.
    pub deadline: f64,
}

impl Default for ExternalOptions {
    fn default() -> ExternalOptions {
        ExternalOptions { fallback: DEFAULT_FALLBACK.into(), deadline: DEFAULT_DEADLINE }
    }
}

/// An `external=` policy that cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum ExternalError {
    #[error("`{PREFIX}{address}`: the address must be an http:// URI such as http://127.0.0.1:50070 ({reason})")]
    Address { address: String, reason: String },
    #[error("starting the external policy client: {0}")]
    Client(std::io::Error),
}

/// The service's address if `policy` names an external policy.
pub fn address(policy: &str) -> Option<&str> {
    policy.strip_prefix(PREFIX)
}

/// One slot's call, handed to the client thread.
#[derive(Debug)]
struct Call {
    request: PolicyRequest,
    /// When `decide` stops waiting for the answer.
    until: std::time::Instant,
    answer: answers::Sender<Result<PolicyDecision, tonic::Status>>,
}

/// See the module docs.
#[derive(Debug)]
pub struct ExternalPolicy {
    name: String,
    template: RequestTemplate,
    deadline: Duration,
    calls: mpsc::Sender<Call>,
}

impl ExternalPolicy {
    /// A policy that asks the service at `address` (`http://host:port`)
    /// and waits for each answer at most `deadline`. Connects in the
    /// background: a service that is not up yet only makes slots fall back.
    pub fn connect(address: &str, deadline: Duration, scenario: &Scenario) -> Result<ExternalPolicy, ExternalError> {
        let invalid = |reason: String| ExternalError::Address { address: address.to_string(), reason };
        if !address.starts_with("http://") {
            return Err(invalid("no http:// scheme; TLS to a policy service is not supported".into()));
        }
        let endpoint = tonic::transport::Endpoint::from_shared(address.to_string())
            .map_err(|e| invalid(e.to_string()))?
            .tcp_nodelay(true)
            .connect_timeout(Duration::from_secs(2));
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(ExternalError::Client)?;
        // One call at a time: a call still out when the next slot asks
        // makes that slot late rather than queueing behind it.
        let (calls, queue) = mpsc::channel(1);
        std::thread::Builder::new()
            .name("external-policy".into())
            .spawn(move || runtime.block_on(carry_calls(endpoint, queue)))
            .map_err(ExternalError::Client)?;
        Ok(ExternalPolicy { name: format!("{PREFIX}{address}"), template: RequestTemplate::new(scenario), deadline, calls })
    }

    /// The answer to `request`, waited for until the deadline.
    fn ask(&self, request: PolicyRequest) -> Result<PolicyDecision, PolicyError> {
        let (answer, answered) = answers::channel();
        let call = Call { request, until: std::time::Instant::now() + self.deadline, answer };
        match self.calls.try_send(call) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                return Err(PolicyError::Late("the previous slot's call is still out".into()));
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                return Err(PolicyError::Unavailable("the client thread stopped".into()));
            }
        }
        match answered.recv_timeout(self.deadline) {
            Ok(Ok(decision)) => Ok(decision),
            Ok(Err(status)) => Err(status_error(&status, self.deadline)),
            Err(answers::RecvTimeoutError::Timeout) => Err(PolicyError::Late(format!("no answer within {:?}", self.deadline))),
            Err(answers::RecvTimeoutError::Disconnected) => Err(PolicyError::Unavailable("the client thread stopped".into())),
        }
    }
}

impl Policy for ExternalPolicy {
    fn name(&self) -> &str {
        &self.name
    }

    fn decide(&mut self, scenario: &Scenario, state: &SystemState) -> Result<Decision, PolicyError> {
        let answer = self.ask(self.template.request(scenario, state))?;
        qmec_proto::external::decision(&answer, scenario, state).map_err(|invalid| PolicyError::Infeasible(invalid.to_string()))
    }
}

/// A failed call's error: a deadline the service or the transport gave up
/// on is late, anything else a failure.
fn status_error(status: &tonic::Status, deadline: Duration) -> PolicyError {
    if status.code() == tonic::Code::DeadlineExceeded || status.code() == tonic::Code::Cancelled {
        return PolicyError::Late(format!("no answer within {deadline:?} ({})", status.message()));
    }
    PolicyError::Unavailable(format!("{:?}: {}", status.code(), status.message()))
}

/// The client thread: each call goes out with what is left of its deadline
/// as the gRPC timeout, so the service sees it too, and is dropped when
/// that runs out: a service that ignores timeouts does not hold up the next
/// slot's call. An answer that comes after `decide` stopped waiting finds
/// no one: that slot is already counted late.
async fn carry_calls(endpoint: tonic::transport::Endpoint, mut queue: mpsc::Receiver<Call>) {
    // Connected up front when the service is there, so the first slot does
    // not pay for the handshake; lazily (on each call) when it is not yet.
    let channel = match endpoint.connect().await {
        Ok(channel) => channel,
        Err(error) => {
            tracing::warn!(uri = %endpoint.uri(), %error, "the external policy service is not reachable yet; slots fall back until it is");
            endpoint.connect_lazy()
        }
    };
    let mut client = PolicyServiceClient::new(channel);
    while let Some(call) = queue.recv().await {
        // A call given up on says so (late), rather than dropping its
        // sender, which `decide` would take for the thread gone.
        let given_up = || Err(tonic::Status::deadline_exceeded("the deadline passed before the answer came"));
        let answer = match call.until.checked_duration_since(std::time::Instant::now()) {
            None => given_up(),
            Some(left) => {
                let mut request = tonic::Request::new(call.request);
                request.set_timeout(left);
                match tokio::time::timeout(left, client.decide(request)).await {
                    Ok(answer) => answer.map(tonic::Response::into_inner),
                    Err(_) => given_up(),
                }
            }
        };
        // Nobody waiting: `decide` gave up at the deadline and counted it.
        let _ = call.answer.send(answer);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn only_an_http_address_is_accepted() {
        let scenario = Scenario::builtin("paper-small").unwrap();
        let error = ExternalPolicy::connect("127.0.0.1:50070", Duration::from_millis(5), &scenario).unwrap_err();
        assert!(error.to_string().contains("`external=127.0.0.1:50070`: the address must be an http:// URI"), "{error}");
        assert_eq!(address("external=http://a:1"), Some("http://a:1"));
        assert_eq!(address("greedy"), None);
    }

    #[test]
    fn a_service_that_is_not_there_is_a_failure_not_a_hang() {
        // Port 9 (discard) on loopback: nothing listens there in a test run.
        let scenario = Scenario::builtin("paper-small").unwrap();
        let mut policy = ExternalPolicy::connect("http://127.0.0.1:9", Duration::from_secs(5), &scenario).unwrap();
        let state = SystemState::new(
            &scenario,
            0,
            vec![0.0; scenario.devices],
            vec![0.0; scenario.devices],
            qmec_model::Matrix::zeros(scenario.devices, scenario.servers),
            qmec_model::Matrix::zeros(scenario.devices, scenario.servers),
        );
        let error = policy.decide(&scenario, &state).unwrap_err();
        assert!(matches!(error, PolicyError::Unavailable(_)), "{error}");
    }

    #[test]
    fn statuses_map_to_causes() {
        let deadline = Duration::from_millis(3);
        assert!(matches!(status_error(&tonic::Status::deadline_exceeded("x"), deadline), PolicyError::Late(_)));
        assert!(matches!(status_error(&tonic::Status::internal("boom"), deadline), PolicyError::Unavailable(_)));
    }
}
