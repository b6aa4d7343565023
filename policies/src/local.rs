//! The `local` baseline: nothing is offloaded.

use qmec_model::{Decision, Policy, PolicyError, Scenario, SystemState};

#[derive(Debug, Clone, Copy, Default)]
pub struct Local;

impl Policy for Local {
    fn name(&self) -> &str {
        "local"
    }

    fn decide(&mut self, scenario: &Scenario, state: &SystemState) -> Result<Decision, PolicyError> {
        Ok(Decision::local(scenario, state))
    }
}
