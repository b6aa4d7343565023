//! The architectures behind one trait.
//!
//! Every network maps a prepared state ([`StateInput`]) to raw scores, M rows
//! of S+1 (column 0: stay local), which the projection turns into μ. The
//! trainer, the policy, the model file and the export only see
//! [`Architecture`]; [`Network`] is the closed set the model file can hold.
//!
//! - [`paper`]: the Sci. Rep. QNN — amplitude-encoded global state, two
//!   quantum convolution + pooling stages, Pauli-Z readout, two dense layers;
//!   sized for one (M, S).
//! - [`per_link`]: ours — one 4-qubit circuit shared by every device–server
//!   pair scores it from local features; serves any (M, S).
//! - [`mlp`]: the classical `dl` baseline on the paper QNN's inputs.
//! - [`pair_mlp`]: the `lydroo` actor, a classical MLP shared by every
//!   pair on the per-link features; serves any (M, S).

pub mod mlp;
pub mod pair_mlp;
pub mod paper;
pub mod per_link;

use crate::error::{QnnError, Result, field};
use crate::features::StateInput;
use qmec_quantum::{Circuit, StateVector};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The architecture names used on the command line and in model files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ArchKind {
    /// [`paper::PaperNet`].
    Paper,
    /// [`per_link::PerLinkNet`].
    PerLink,
    /// [`mlp::MlpNet`].
    Mlp,
    /// [`pair_mlp::PairMlpNet`].
    PairMlp,
}

impl ArchKind {
    /// Every kind, in CLI order.
    pub const ALL: [ArchKind; 4] = [ArchKind::Paper, ArchKind::PerLink, ArchKind::Mlp, ArchKind::PairMlp];

    /// The CLI / file name.
    pub fn as_str(self) -> &'static str {
        match self {
            ArchKind::Paper => "paper",
            ArchKind::PerLink => "per-link",
            ArchKind::Mlp => "mlp",
            ArchKind::PairMlp => "pair-mlp",
        }
    }

    /// Whether one model serves any (M, S) (it reads per-link features).
    pub fn is_size_free(self) -> bool {
        matches!(self, ArchKind::PerLink | ArchKind::PairMlp)
    }

    /// Quantum architectures run under `--policy qnn`, the MLP under `dl`,
    /// the per-pair MLP under `lydroo`.
    pub fn policy_name(self) -> &'static str {
        match self {
            ArchKind::Paper | ArchKind::PerLink => "qnn",
            ArchKind::Mlp => "dl",
            ArchKind::PairMlp => "lydroo",
        }
    }

    /// Parses a CLI name.
    pub fn parse(text: &str) -> Result<ArchKind> {
        ArchKind::ALL
            .into_iter()
            .find(|k| k.as_str() == text)
            .ok_or_else(|| QnnError::Config { field: "arch", reason: format!("unknown architecture `{text}` (known: paper, per-link, mlp, pair-mlp)") })
    }
}

impl fmt::Display for ArchKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Upstream of a batch gradient: given the sample index and its scores
/// (M × (S+1)), returns the sample's loss and ∂loss/∂scores.
pub type Upstream<'a> = dyn FnMut(usize, &[f64]) -> (f64, Vec<f64>) + 'a;

/// A trainable scorer of offloading options.
pub trait Architecture: fmt::Debug + Send + Sync {
    /// Which architecture this is.
    fn kind(&self) -> ArchKind;

    /// The flat parameter vector the optimiser updates.
    fn params(&self) -> &[f64];

    /// Mutable parameters; call [`Architecture::refresh`] after changing them.
    fn params_mut(&mut self) -> &mut [f64];

    /// Rebuilds caches derived from the parameters (no-op by default).
    fn refresh(&mut self) -> Result<()> {
        Ok(())
    }

    /// Whether the scores read [`StateInput::global`] (the fixed-size
    /// networks do; a per-pair scorer does not, and deciding skips it).
    fn reads_global(&self) -> bool {
        true
    }

    /// Ok if the model can decide for M devices and S servers, else why not.
    fn fits(&self, devices: usize, servers: usize) -> Result<()>;

    /// Raw scores, M × (S+1), for one state (the decision path).
    fn scores(&self, input: &StateInput) -> Result<Vec<f64>>;

    /// Σ over the batch of the per-sample losses `upstream` returns, and the
    /// gradient of that sum with respect to every parameter.
    fn gradient(&self, inputs: &[&StateInput], upstream: &mut Upstream<'_>) -> Result<(f64, Vec<f64>)>;

    /// The trained circuit and its parameters, and the input state a given
    /// sample is encoded into (None for classical networks). `pair` picks
    /// the device–server pair for per-link models.
    fn circuit_for(&self, input: &StateInput, pair: (usize, usize)) -> Option<Result<CircuitInstance>>;
}

/// A circuit ready to run or export: its ops, the trained parameters, the
/// encoded input and how it was encoded.
#[derive(Debug, Clone)]
pub struct CircuitInstance {
    /// The trained circuit.
    pub circuit: Circuit,
    /// Its parameters.
    pub params: Vec<f64>,
    /// The encoded input the circuit starts from.
    pub input: StateVector,
    /// How the input was encoded.
    pub encoding: Encoding,
    /// Qubits read out with ⟨Z⟩.
    pub readout: Vec<usize>,
}

/// How a sample enters a circuit.
#[derive(Debug, Clone, PartialEq)]
pub enum Encoding {
    /// A state prepared from these (normalised) real amplitudes.
    Amplitude(Vec<f64>),
    /// RY(angle_q) on qubit q from |0…0⟩.
    Angle(Vec<f64>),
}

/// The serialised form of a network: its shape and parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "arch", rename_all = "kebab-case", deny_unknown_fields)]
pub enum NetworkSpec {
    /// [`paper::PaperNet`].
    Paper {
        /// M it was built for.
        devices: usize,
        /// S it was built for.
        servers: usize,
        /// Width of the hidden dense layer.
        hidden: usize,
        /// Flat parameters.
        params: Vec<f64>,
    },
    /// [`per_link::PerLinkNet`].
    PerLink {
        /// Ansatz layers of the shared circuit.
        layers: usize,
        /// Flat parameters.
        params: Vec<f64>,
    },
    /// [`mlp::MlpNet`].
    Mlp {
        /// M it was built for.
        devices: usize,
        /// S it was built for.
        servers: usize,
        /// Width of both hidden layers.
        hidden: usize,
        /// Flat parameters.
        params: Vec<f64>,
    },
    /// [`pair_mlp::PairMlpNet`].
    PairMlp {
        /// Width of both hidden layers.
        hidden: usize,
        /// Flat parameters.
        params: Vec<f64>,
    },
}

/// Any architecture, built and validated.
#[derive(Debug, Clone)]
pub enum Network {
    /// The paper QNN.
    Paper(paper::PaperNet),
    /// The per-link QNN.
    PerLink(per_link::PerLinkNet),
    /// The MLP.
    Mlp(mlp::MlpNet),
    /// The per-pair MLP.
    PairMlp(pair_mlp::PairMlpNet),
}

impl Network {
    /// A freshly initialised network of `kind` for M devices, S servers.
    pub fn init(kind: ArchKind, devices: usize, servers: usize, seed: u64) -> Result<Network> {
        Ok(match kind {
            ArchKind::Paper => Network::Paper(paper::PaperNet::new(devices, servers, paper::DEFAULT_HIDDEN, seed)?),
            ArchKind::PerLink => Network::PerLink(per_link::PerLinkNet::new(per_link::DEFAULT_LAYERS, seed)?),
            ArchKind::Mlp => Network::Mlp(mlp::MlpNet::new(devices, servers, mlp::DEFAULT_HIDDEN, seed)?),
            ArchKind::PairMlp => Network::PairMlp(pair_mlp::PairMlpNet::new(pair_mlp::DEFAULT_HIDDEN, seed)?),
        })
    }

    /// Builds (and validates) a network from its serialised form.
    pub fn from_spec(spec: &NetworkSpec) -> Result<Network> {
        let net = match spec {
            NetworkSpec::Paper { devices, servers, hidden, params } => {
                let mut net = paper::PaperNet::new(*devices, *servers, *hidden, 0)?;
                load_params("network.params", net.params_mut(), params)?;
                Network::Paper(net)
            }
            NetworkSpec::PerLink { layers, params } => {
                let mut net = per_link::PerLinkNet::new(*layers, 0)?;
                load_params("network.params", net.params_mut(), params)?;
                Network::PerLink(net)
            }
            NetworkSpec::Mlp { devices, servers, hidden, params } => {
                let mut net = mlp::MlpNet::new(*devices, *servers, *hidden, 0)?;
                load_params("network.params", net.params_mut(), params)?;
                Network::Mlp(net)
            }
            NetworkSpec::PairMlp { hidden, params } => {
                let mut net = pair_mlp::PairMlpNet::new(*hidden, 0)?;
                load_params("network.params", net.params_mut(), params)?;
                Network::PairMlp(net)
            }
        };
        let mut net = net;
        net.arch_mut().refresh()?;
        Ok(net)
    }

    /// The serialised form.
    pub fn to_spec(&self) -> NetworkSpec {
        match self {
            Network::Paper(n) => NetworkSpec::Paper {
                devices: n.devices(),
                servers: n.servers(),
                hidden: n.hidden(),
                params: n.params().to_vec(),
            },
            Network::PerLink(n) => NetworkSpec::PerLink { layers: n.layers(), params: n.params().to_vec() },
            Network::Mlp(n) => NetworkSpec::Mlp {
                devices: n.devices(),
                servers: n.servers(),
                hidden: n.hidden(),
                params: n.params().to_vec(),
            },
            Network::PairMlp(n) => NetworkSpec::PairMlp { hidden: n.hidden(), params: n.params().to_vec() },
        }
    }

    /// The network as its trait.
    pub fn arch(&self) -> &dyn Architecture {
        match self {
            Network::Paper(n) => n,
            Network::PerLink(n) => n,
            Network::Mlp(n) => n,
            Network::PairMlp(n) => n,
        }
    }

    /// The network as its trait, mutably.
    pub fn arch_mut(&mut self) -> &mut dyn Architecture {
        match self {
            Network::Paper(n) => n,
            Network::PerLink(n) => n,
            Network::Mlp(n) => n,
            Network::PairMlp(n) => n,
        }
    }
}

fn load_params(name: &str, into: &mut [f64], from: &[f64]) -> Result<()> {
    if into.len() != from.len() {
        return Err(field(name, format!("expected {} values for this shape, found {}", into.len(), from.len())));
    }
    if let Some(i) = from.iter().position(|v| !v.is_finite()) {
        return Err(field(format!("{name}[{i}]"), "is not a finite number"));
    }
    into.copy_from_slice(from);
    Ok(())
}

/// Checks a size field of a network shape.
pub(crate) fn check_size(name: &str, value: usize, min: usize, max: usize) -> Result<()> {
    if value < min || value > max {
        return Err(field(name, format!("must be in [{min}, {max}], got {value}")));
    }
    Ok(())
}

/// The initial "stay local" logit for M devices: ln(2M), so that at
/// initialisation every server column sums to about M / (2M + S) < ½. The
/// per-server normalisation is scale-invariant in an over-subscribed column
/// (μ = a / Σa), so a network that starts with columns summing above 1 sits
/// on a plateau where staying local earns no gradient; starting below 1
/// avoids it.
pub(crate) fn local_prior(devices: usize) -> f64 {
    (2.0 * devices as f64).ln()
}

/// Sets the stay-local prior on a dense head with M × (S+1) outputs.
pub(crate) fn set_local_prior(bias: &mut [f64], devices: usize, servers: usize) {
    for m in 0..devices {
        if let Some(b) = bias.get_mut(m * (servers + 1)) {
            *b = local_prior(devices);
        }
    }
}

/// A uniform(-1, 1) stream for initialisation.
pub(crate) fn uniform_stream(seed: u64) -> impl FnMut() -> f64 {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    move || rng.random_range(-1.0..1.0)
}

/// Refusal for fixed-size architectures.
pub(crate) fn fixed_size_fit(kind: ArchKind, trained: (usize, usize), asked: (usize, usize)) -> Result<()> {
    if trained == asked {
        return Ok(());
    }
    Err(QnnError::Mismatch(format!(
        "the {kind} architecture was trained for M = {} devices and S = {} servers, but the scenario has M = {} and S = {}; \
         its input and output layers are sized for the former (retrain for this scenario, or use the per-link architecture, which serves any M and S)",
        trained.0, trained.1, asked.0, asked.1
    )))
}

/// Checks the input's dimensions against a network's.
pub(crate) fn check_input(arch: &dyn Architecture, input: &StateInput) -> Result<()> {
    arch.fits(input.devices(), input.servers())
}
