//! What decides a slot when the run's policy cannot: an external policy
//! service may answer late, fail or answer infeasibly, and the slot must
//! still be decided within its wall time. With a fallback policy (a
//! built-in, named by `--external-fallback`) the fallback decides and the
//! cause is recorded; without one, or when the fallback fails too, every
//! device computes locally and the slot counts as `policy_failed`, as it
//! always has. No I/O here: the core calls [`decide`] with its policies.

use qmec_model::{Decision, Policy, PolicyError, Scenario, SystemState};
use serde::{Deserialize, Serialize};

/// Why a slot's decision came from the fallback policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FallbackCause {
    /// No answer within the deadline.
    Late,
    /// The call failed: no connection, an error status, a policy error.
    Failed,
    /// An answer that failed validation or [`Decision::check`].
    Infeasible,
}

impl FallbackCause {
    pub fn of(error: &PolicyError) -> FallbackCause {
        match error {
            PolicyError::Late(_) => FallbackCause::Late,
            PolicyError::Infeasible(_) | PolicyError::Mismatch(_) => FallbackCause::Infeasible,
            PolicyError::Solver(_) | PolicyError::Unavailable(_) => FallbackCause::Failed,
        }
    }
}

/// How a slot was decided.
#[derive(Debug, Clone, PartialEq)]
pub struct SlotDecision {
    pub decision: Decision,
    /// The run's policy did not decide; the fallback did, for this cause.
    pub fallback: Option<FallbackCause>,
    /// Neither decided: every device computes locally.
    pub policy_failed: bool,
}

/// `policy`'s decision for `state`, checked against the constraints.
pub fn checked(policy: &mut dyn Policy, scenario: &Scenario, state: &SystemState) -> Result<Decision, PolicyError> {
    let decision = policy.decide(scenario, state)?;
    decision.check(scenario, state)?;
    Ok(decision)
}

/// The slot's decision: `policy`'s, else `fallback`'s (with the cause),
/// else local computing. Each failure is logged with its reason.
pub fn decide(
    policy: &mut dyn Policy,
    fallback: Option<&mut (dyn Policy + 'static)>,
    scenario: &Scenario,
    state: &SystemState,
) -> SlotDecision {
    let error = match checked(policy, scenario, state) {
        Ok(decision) => return SlotDecision { decision, fallback: None, policy_failed: false },
        Err(error) => error,
    };
    let slot = state.slot;
    let Some(fallback) = fallback else {
        tracing::warn!(slot, %error, "policy failed; computing locally this slot");
        return SlotDecision { decision: Decision::local(scenario, state), fallback: None, policy_failed: true };
    };
    let cause = FallbackCause::of(&error);
    tracing::warn!(slot, ?cause, %error, fallback = fallback.name(), "policy did not decide; the fallback decides this slot");
    match checked(fallback, scenario, state) {
        Ok(decision) => SlotDecision { decision, fallback: Some(cause), policy_failed: false },
        Err(error) => {
            tracing::warn!(slot, %error, "the fallback policy failed too; computing locally this slot");
            SlotDecision { decision: Decision::local(scenario, state), fallback: Some(cause), policy_failed: true }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use qmec_model::Matrix;

    /// What a scripted policy answers.
    type Answer = fn(&Scenario, &SystemState) -> Result<Decision, PolicyError>;

    /// A policy that answers what the test scripts.
    #[derive(Debug)]
    struct Answers {
        answer: Answer,
    }

    impl Policy for Answers {
        fn name(&self) -> &str {
            "answers"
        }

        fn decide(&mut self, scenario: &Scenario, state: &SystemState) -> Result<Decision, PolicyError> {
            (self.answer)(scenario, state)
        }
    }

    fn scenario() -> Scenario {
        Scenario::builtin("paper-small").unwrap().resized(2, 2).unwrap()
    }

    fn state(scenario: &Scenario) -> SystemState {
        SystemState::new(scenario, 3, vec![1e6; 2], vec![0.0; 2], Matrix::zeros(2, 2), Matrix::from_fn(2, 2, |_, _| 1e-6))
    }

    /// Device 0 on server 0, device 1 on server 1: feasible and not local.
    fn diagonal(scenario: &Scenario, state: &SystemState) -> Result<Decision, PolicyError> {
        Ok(Decision::with_default_cpu(scenario, state, Matrix::from_fn(2, 2, |m, s| if m == s { 1.0 } else { 0.0 })))
    }

    fn overfull(scenario: &Scenario, state: &SystemState) -> Result<Decision, PolicyError> {
        Ok(Decision::with_default_cpu(scenario, state, Matrix::from_fn(2, 2, |_, _| 0.9)))
    }

    fn late(_: &Scenario, _: &SystemState) -> Result<Decision, PolicyError> {
        Err(PolicyError::Late("no answer within 6 ms".into()))
    }

    fn unavailable(_: &Scenario, _: &SystemState) -> Result<Decision, PolicyError> {
        Err(PolicyError::Unavailable("connection refused".into()))
    }

    fn refused(_: &Scenario, _: &SystemState) -> Result<Decision, PolicyError> {
        Err(PolicyError::Infeasible("field `decision.offload[1]`: NaN".into()))
    }

    fn run(policy: Answer, fallback: Option<Answer>) -> SlotDecision {
        let scenario = scenario();
        let state = state(&scenario);
        let mut fallback = fallback.map(|answer| Answers { answer });
        let fallback = fallback.as_mut().map(|f| f as &mut (dyn Policy + 'static));
        decide(&mut Answers { answer: policy }, fallback, &scenario, &state)
    }

    #[test]
    fn an_answer_in_time_decides_the_slot() {
        let decided = run(diagonal, Some(overfull));
        assert_eq!((decided.fallback, decided.policy_failed), (None, false));
        assert_eq!(decided.decision.offload.get(1, 1), 1.0);
    }

    #[test]
    fn each_cause_is_counted_and_the_fallback_decides() {
        for (policy, cause) in [
            (late as Answer, FallbackCause::Late),
            (unavailable, FallbackCause::Failed),
            (refused, FallbackCause::Infeasible),
            (overfull, FallbackCause::Infeasible),
        ] {
            let decided = run(policy, Some(diagonal));
            assert_eq!((decided.fallback, decided.policy_failed), (Some(cause), false), "{cause:?}");
            assert_eq!(decided.decision.offload.get(0, 0), 1.0, "the fallback's decision, {cause:?}");
        }
    }

    #[test]
    fn without_a_working_fallback_the_slot_is_local_and_failed() {
        let alone = run(late, None);
        assert_eq!((alone.fallback, alone.policy_failed), (None, true));
        assert_eq!(alone.decision.offload, Matrix::zeros(2, 2));
        let both = run(unavailable, Some(overfull));
        assert_eq!((both.fallback, both.policy_failed), (Some(FallbackCause::Failed), true));
        assert_eq!(both.decision.offload, Matrix::zeros(2, 2));
    }

    #[test]
    fn causes_are_written_in_lowercase() {
        assert_eq!(serde_json::to_string(&FallbackCause::Infeasible).unwrap(), "\"infeasible\"");
        assert_eq!(FallbackCause::of(&PolicyError::Solver("x".into())), FallbackCause::Failed);
    }
}
