//! From a network's scores to a decision: order-preserving quantisation
//! into K candidate decisions, and a critic that keeps the best.
//!
//! This is how DROO / LyDROO (Bi et al., IEEE TWC 2021) turn a learned
//! actor into decisions that reach the optimum: the actor only has to rank
//! well, and the exact objective, cheap to evaluate, picks among a few
//! feasible candidates. A softmax split alone (the training projection)
//! spreads a server over many devices, where the per-slot optimum mostly
//! gives each channel to one device in full.
//!
//! * **Scores → pair logits.** z_ms = score_m,s − score_m,local: how much
//!   the network prefers device m sending to server s over staying local;
//!   p_ms = σ(z_ms) is its belief that the pair carries share in the optimum.
//! * **Quantisation.** The open pairs sorted by z, largest first, are the
//!   network's order. Candidate 1 visits them in that order and fills each
//!   with what its device's radio, its server's channel and its device's
//!   queue still leave ([`qmec_policies::fill`]): one O(pairs) pass.
//!   Candidate k > 1 keeps the first n_k = S·2^k pairs of the order
//!   (4S, 8S, 16S, …) as its support — DROO's quantisation by threshold —
//!   and allocates on it exactly: the per-slot LP restricted to those pairs
//!   ([`qmec_policies::solve_on_pairs`]), as DROO's critic solves the
//!   resource allocation of each candidate offloading decision. The
//!   optimum's support is a few pairs per server, so when the network ranks
//!   it near the top the small LP returns the optimum itself, at a fraction
//!   of the full LP's cost (tens of variables per server, not M). The
//!   supports are nested, so of the K − 1 only the largest is solved; its
//!   optimum is credited to the smallest support that holds its pairs.
//! * **Other candidates** (unless the ablation turns them off): `greedy`'s
//!   decision, `dpp-greedy`'s, and the previous slot's support refilled
//!   under this slot's limits.
//! * **Critic.** Σ Ψ_ms μ_ms, the exact drift-plus-penalty objective, a dot
//!   product; the largest wins (ties go to the earlier candidate).
//! * **Adaptive K.** As in LyDROO, K = min(K_max, 1 + the largest rank a
//!   network candidate won with over the last [`RANK_WINDOW`] slots), and at
//!   least 2, so K shrinks while small supports keep winning and grows back
//!   when a larger one starts to pay. A candidate whose small LP fails is
//!   skipped and counted.
//! * **Decision mode** ([`DecisionMode`]). The critic is right for a network
//!   trained to reach the one-slot optimum. A network trained in closed loop
//!   on multi-slot outcomes (latency, power) must be allowed to *disagree*
//!   with Σ Ψ μ, or its training could not change a decision the critic
//!   would overrule; in [`DecisionMode::Network`] the decision is the
//!   network's own: the pairs it would use (z ≥ 0), filled in its order.

use crate::features::StateInput;
use qmec_model::{Scenario, SystemState};
use qmec_policies::fill::{FillScratch, SlotLimits, fill_in_order, positive_by_weight};
use qmec_policies::{DppGreedy, Greedy, solve_on_pairs};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// Largest number of network candidates per slot: the fill, then supports
/// of 4S and 8S pairs (larger supports approach the full LP's cost).
pub const DEFAULT_MAX_CANDIDATES: usize = 3;
/// Slots over which winning ranks are remembered for adapting K.
pub const RANK_WINDOW: usize = 32;

/// Who has the last word on a slot's decision; recorded in the model file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DecisionMode {
    /// The critic keeps the candidate with the largest Σ Ψ μ (models
    /// trained towards the one-slot optimum; the default).
    #[default]
    Critic,
    /// The network's own decision: the pairs with z ≥ 0, filled in the
    /// network's order; no critic, no other candidates (models trained in
    /// closed loop).
    Network,
}

impl DecisionMode {
    /// The model-file name.
    pub fn as_str(self) -> &'static str {
        match self {
            DecisionMode::Critic => "critic",
            DecisionMode::Network => "network",
        }
    }
}

/// Where a candidate came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CandidateKind {
    /// The network's k-th quantisation (1-based).
    Network(usize),
    /// `greedy`'s decision.
    Greedy,
    /// `dpp-greedy`'s decision.
    DppGreedy,
    /// The previous slot's support, refilled.
    Previous,
}

impl CandidateKind {
    /// A short label for tables: `network`, `greedy`, `dpp-greedy`, `previous`.
    pub fn family(self) -> &'static str {
        match self {
            CandidateKind::Network(_) => "network",
            CandidateKind::Greedy => "greedy",
            CandidateKind::DppGreedy => "dpp-greedy",
            CandidateKind::Previous => "previous",
        }
    }
}

/// How many slots each kind of candidate won.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct WinCounts {
    /// Wins of network candidates, by rank (index 0: the first candidate).
    pub network_by_rank: Vec<u64>,
    /// Wins of `greedy`'s decision.
    pub greedy: u64,
    /// Wins of `dpp-greedy`'s decision.
    pub dpp_greedy: u64,
    /// Wins of the previous slot's support.
    pub previous: u64,
    /// Candidates skipped because their small LP failed.
    pub failed: u64,
}

impl WinCounts {
    fn record(&mut self, kind: CandidateKind) {
        match kind {
            CandidateKind::Network(rank) => {
                if self.network_by_rank.len() < rank {
                    self.network_by_rank.resize(rank, 0);
                }
                self.network_by_rank[rank - 1] += 1;
            }
            CandidateKind::Greedy => self.greedy += 1,
            CandidateKind::DppGreedy => self.dpp_greedy += 1,
            CandidateKind::Previous => self.previous += 1,
        }
    }

    /// Wins of all network candidates together.
    pub fn network(&self) -> u64 {
        self.network_by_rank.iter().sum()
    }

    /// Slots decided.
    pub fn total(&self) -> u64 {
        self.network() + self.greedy + self.dpp_greedy + self.previous
    }
}

/// One slot's chosen decision.
#[derive(Debug, Clone, PartialEq)]
pub struct Choice {
    /// μ, M × S row-major.
    pub mu: Vec<f64>,
    /// Its Σ Ψ μ.
    pub value: f64,
    /// Which candidate it was.
    pub kind: CandidateKind,
    /// Candidates weighed this slot.
    pub weighed: usize,
}

/// The quantiser and critic of one policy, with what it keeps between
/// slots (the previous decision, the recent winning ranks, the win counts).
#[derive(Debug, Clone)]
pub struct Critic {
    max_candidates: usize,
    others: bool,
    mode: DecisionMode,
    recent_ranks: VecDeque<usize>,
    previous: Option<Vec<f64>>,
    wins: WinCounts,
    scratch: FillScratch,
    dpp_greedy: DppGreedy,
}

impl Critic {
    /// A critic weighing up to `max_candidates` network candidates, and,
    /// where `others` is set, greedy's, dpp-greedy's and the previous
    /// slot's decision too (off: the network's own candidates alone).
    pub fn new(max_candidates: usize, others: bool) -> Critic {
        let max_candidates = max_candidates.max(1);
        Critic {
            max_candidates,
            others,
            mode: DecisionMode::Critic,
            recent_ranks: VecDeque::with_capacity(RANK_WINDOW),
            previous: None,
            wins: WinCounts::default(),
            scratch: FillScratch::default(),
            dpp_greedy: DppGreedy::default(),
        }
    }

    /// The network's own decision every slot ([`DecisionMode::Network`]).
    pub fn network_only() -> Critic {
        Critic { mode: DecisionMode::Network, ..Critic::new(1, false) }
    }

    /// A critic for `mode`, weighing every kind of candidate in
    /// [`DecisionMode::Critic`].
    pub fn for_mode(mode: DecisionMode) -> Critic {
        match mode {
            DecisionMode::Critic => Critic::new(DEFAULT_MAX_CANDIDATES, true),
            DecisionMode::Network => Critic::network_only(),
        }
    }

    /// Who decides.
    pub fn mode(&self) -> DecisionMode {
        self.mode
    }

    /// How many network candidates the next slot weighs.
    pub fn current_k(&self) -> usize {
        let top = self.recent_ranks.iter().copied().max().unwrap_or(self.max_candidates);
        (top + 1).clamp(2.min(self.max_candidates), self.max_candidates)
    }

    /// The wins so far.
    pub fn wins(&self) -> &WinCounts {
        &self.wins
    }

    /// Whether greedy's, dpp-greedy's and the previous slot's decisions are
    /// weighed too.
    pub fn weighs_others(&self) -> bool {
        self.others
    }

    /// Decides one slot from the network's `scores` (M × (S+1), column 0 =
    /// stay local), with the network's candidates alone.
    pub fn choose_from_network(&mut self, input: &StateInput, scores: &[f64]) -> Choice {
        self.choose(input, scores, None)
    }

    /// Decides one slot for `state`, with every candidate this critic weighs
    /// (`greedy` decides on `state` itself).
    pub fn choose_for(&mut self, scenario: &Scenario, state: &SystemState, input: &StateInput, scores: &[f64]) -> Choice {
        let greedy = self.others.then(|| Greedy::shares(scenario, state));
        self.choose(input, scores, greedy.as_ref().map(|g| g.as_slice()))
    }

    fn choose(&mut self, input: &StateInput, scores: &[f64], greedy: Option<&[f64]>) -> Choice {
        let limits = SlotLimits { servers: input.servers(), slot_bits: &input.links.slot_bits, queue_bits: &input.links.queue_bits };
        if self.mode == DecisionMode::Network {
            let mut mu = Vec::new();
            fill_in_order(&limits, &network_used_order(&pair_logits(input, scores)), &mut mu, &mut self.scratch);
            let choice = Choice { value: dpp_value(&input.psi, &mu), mu, kind: CandidateKind::Network(1), weighed: 1 };
            self.remember(&choice);
            return choice;
        }
        let k = self.current_k();
        let mut best: Option<Choice> = None;
        let mut mu = Vec::new();
        let mut weighed = 0;
        let mut failed = 0;
        let mut consider = |kind: CandidateKind, mu: &[f64], best: &mut Option<Choice>| {
            weighed += 1;
            let value = dpp_value(&input.psi, mu);
            if best.as_ref().is_none_or(|b| value > b.value) {
                *best = Some(Choice { mu: mu.to_vec(), value, kind, weighed: 0 });
            }
        };
        let order = network_order(&pair_logits(input, scores));
        fill_in_order(&limits, &order, &mut mu, &mut self.scratch);
        consider(CandidateKind::Network(1), &mu, &mut best);
        let supports: Vec<usize> = support_sizes(input.servers(), order.len()).take(k.saturating_sub(1)).collect();
        if let Some(&largest) = supports.last() {
            match solve_on_pairs(&input.psi, &limits, input.queue_unit_bits, &order[..largest]) {
                Ok((exact, _)) => {
                    let rank = 2 + smallest_holding(&supports, &order[..largest], &exact);
                    consider(CandidateKind::Network(rank), &exact, &mut best);
                }
                Err(_) => failed += 1,
            }
        }
        if self.others {
            let from_dpp_greedy = self.dpp_greedy.shares(&input.psi, &limits);
            consider(CandidateKind::DppGreedy, &from_dpp_greedy, &mut best);
            if let Some(previous) = self.previous.as_ref().filter(|p| p.len() == input.psi.len()) {
                let weights: Vec<f64> =
                    previous.iter().zip(&input.psi).map(|(&u, &p)| if p > 0.0 { u } else { 0.0 }).collect();
                fill_in_order(&limits, &positive_by_weight(&weights), &mut mu, &mut self.scratch);
                consider(CandidateKind::Previous, &mu, &mut best);
            }
            if let Some(greedy) = greedy {
                consider(CandidateKind::Greedy, greedy, &mut best);
            }
        }
        // At least one network candidate is always weighed (k ≥ 1).
        let mut choice = best.unwrap_or_else(|| Choice { mu: vec![0.0; input.psi.len()], value: 0.0, kind: CandidateKind::Network(1), weighed: 0 });
        choice.weighed = weighed;
        self.wins.failed += failed;
        self.remember(&choice);
        choice
    }

    fn remember(&mut self, choice: &Choice) {
        self.wins.record(choice.kind);
        if let CandidateKind::Network(rank) = choice.kind {
            if self.recent_ranks.len() == RANK_WINDOW {
                self.recent_ranks.pop_front();
            }
            self.recent_ranks.push_back(rank);
        }
        self.previous = Some(choice.mu.clone());
    }
}

/// Σ Ψ μ.
pub fn dpp_value(psi: &[f64], mu: &[f64]) -> f64 {
    psi.iter().zip(mu).map(|(p, u)| p * u).sum()
}

/// (pair index m·S + s, z_ms) for every open pair.
pub fn pair_logits(input: &StateInput, scores: &[f64]) -> Vec<(usize, f64)> {
    let (m_count, s_count) = (input.devices(), input.servers());
    let width = s_count + 1;
    let mut logits = Vec::new();
    for m in 0..m_count {
        let row = &scores[m * width..(m + 1) * width];
        for s in 0..s_count {
            let pair = m * s_count + s;
            if input.links.open[pair] {
                logits.push((pair, row[1 + s] - row[0]));
            }
        }
    }
    logits
}

/// The pairs the network would use (z ≥ 0), largest z first: the order
/// of [`DecisionMode::Network`].
pub fn network_used_order(logits: &[(usize, f64)]) -> Vec<usize> {
    let used: Vec<(usize, f64)> = logits.iter().copied().filter(|&(_, z)| z >= 0.0).collect();
    network_order(&used)
}

/// The network's order: pairs by logit, largest first (ties by index, so
/// the order is deterministic).
pub fn network_order(logits: &[(usize, f64)]) -> Vec<usize> {
    let mut by_score = logits.to_vec();
    by_score.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    by_score.into_iter().map(|(pair, _)| pair).collect()
}

/// The index of the smallest of the nested `supports` (prefixes of
/// `order`) that holds every pair `mu` uses. The optimum on a larger support
/// is optimal on any smaller one that holds its pairs, so that smaller
/// candidate is credited with the win: K then shrinks when the larger
/// supports stop paying.
fn smallest_holding(supports: &[usize], order: &[usize], mu: &[f64]) -> usize {
    let used = order.iter().rposition(|&pair| mu[pair] > 0.0).map_or(0, |i| i + 1);
    supports.iter().position(|&n| n >= used).unwrap_or(supports.len().saturating_sub(1))
}

/// Support sizes of candidates 2, 3, …: S·2^k pairs for k = 2, 3, …, the
/// last one the whole order.
pub fn support_sizes(servers: usize, pairs: usize) -> impl Iterator<Item = usize> {
    let mut next = Some(4 * servers.max(1));
    std::iter::from_fn(move || {
        let size = next?;
        next = if size >= pairs { None } else { Some(size * 2) };
        Some(size.min(pairs))
    })
    .filter(move |_| pairs > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_order_follows_the_scores_and_breaks_ties_by_pair() {
        let logits = [(0, 3.0), (1, -0.1), (2, 0.2), (3, -5.0), (4, 0.2)];
        assert_eq!(network_order(&logits), vec![0, 2, 4, 1, 3]);
    }

    #[test]
    fn the_win_goes_to_the_smallest_support_holding_the_pairs_used() {
        let order = [4, 0, 3, 1, 2];
        let supports = [2, 4, 5];
        assert_eq!(smallest_holding(&supports, &order, &[1.0, 0.0, 0.0, 0.0, 0.5]), 0);
        assert_eq!(smallest_holding(&supports, &order, &[0.0, 0.3, 0.0, 0.0, 0.0]), 1);
        assert_eq!(smallest_holding(&supports, &order, &[0.0, 0.0, 0.2, 0.0, 0.0]), 2);
        assert_eq!(smallest_holding(&supports, &order, &[0.0; 5]), 0);
    }

    #[test]
    fn supports_double_from_four_per_server_up_to_every_pair() {
        assert_eq!(support_sizes(3, 100).collect::<Vec<_>>(), vec![12, 24, 48, 96, 100]);
        assert_eq!(support_sizes(3, 12).collect::<Vec<_>>(), vec![12]);
        assert_eq!(support_sizes(3, 5).collect::<Vec<_>>(), vec![5]);
        assert_eq!(support_sizes(3, 0).count(), 0);
    }

    #[test]
    fn the_network_mode_uses_only_the_pairs_it_would_offload_in_its_order() {
        let logits = [(0, 3.0), (1, -0.1), (2, 0.2), (3, 0.0)];
        assert_eq!(network_used_order(&logits), vec![0, 2, 3]);
        assert!(network_used_order(&[(0, -1.0)]).is_empty());
    }

    #[test]
    fn decision_mode_defaults_to_the_critic_and_reads_its_file_name() {
        assert_eq!(DecisionMode::default(), DecisionMode::Critic);
        assert_eq!(serde_json::from_str::<DecisionMode>("\"network\"").ok(), Some(DecisionMode::Network));
        assert_eq!(Critic::network_only().mode().as_str(), "network");
    }

    #[test]
    fn k_follows_the_ranks_that_won_lately() {
        let mut critic = Critic::new(8, false);
        assert_eq!(critic.current_k(), 8);
        for _ in 0..RANK_WINDOW {
            critic.remember(&Choice { mu: vec![], value: 0.0, kind: CandidateKind::Network(1), weighed: 1 });
        }
        assert_eq!(critic.current_k(), 2);
        critic.remember(&Choice { mu: vec![], value: 0.0, kind: CandidateKind::Network(5), weighed: 1 });
        assert_eq!(critic.current_k(), 6);
        assert_eq!(critic.wins().network_by_rank, vec![RANK_WINDOW as u64, 0, 0, 0, 1]);
    }
}
