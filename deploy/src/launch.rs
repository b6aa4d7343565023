//! The launcher, on top of every backend and the only module that knows
//! them all: it loads the link profile and sends the run to the backend
//! that [`RuntimeKind`] names. Each backend (`local`, `docker`, `netns`)
//! has the same entry point, `run(config, options, profile)`, and imports
//! no other backend; a new one adds its `RuntimeKind` variant and one arm
//! here.

use crate::config::{LaunchOptions, RuntimeKind, TestbedConfig};
use crate::error::LaunchError;
use crate::outcome::LaunchOutcome;
use crate::{docker, local, netns};
use qmec_linkem::LinkProfile;

/// Runs a testbed on the runtime `options` names and writes its run folder.
pub async fn run(config: &TestbedConfig, options: &LaunchOptions) -> Result<LaunchOutcome, LaunchError> {
    let profile = options.link_profile.as_deref().map(LinkProfile::load).transpose()?;
    let profile = profile.as_ref();
    match options.runtime {
        RuntimeKind::Local => local::run(config, options, profile).await,
        RuntimeKind::Netns => netns::run(config, options, profile).await,
        RuntimeKind::Docker => docker::run(config, options, profile).await,
    }
}
