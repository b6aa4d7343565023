//! Bandwidth pre-allocation: splitting a total band B among the devices
//! before any server is chosen.
//!
//! Device m must move K_m = prompt_m / η_m^up + result_m / η_m^down
//! bit·Hz/(bit/s) over its share b_m, η the spectral efficiencies (bit/s/Hz,
//! independent of b_m because the SNR is fixed per link), which takes K_m / b_m
//! seconds. The rule minimises the sum of these times:
//!
//!   min Σ_m K_m / b_m   s.t.  Σ_m b_m = B,  b_m > 0.
//!
//! The objective is convex on b > 0 and the constraint linear, so the KKT
//! conditions are sufficient. With multiplier ν, ∂/∂b_m: −K_m / b_m² + ν = 0,
//! hence b_m = √(K_m / ν); the budget gives √ν = Σ_j √K_j / B, so
//!
//!   b_m = B · √K_m / Σ_j √K_j,   optimum (Σ_j √K_j)² / B.
//!
//! By Cauchy–Schwarz (Σ √K)² ≤ M Σ K, the value of the equal split B/M, so
//! the rule is never worse than equal shares and strictly better unless all
//! K_m are equal. Devices with K_m = 0 get no band.

use crate::error::{QuboError, check_non_negative};

/// The square-root rule: b_m = B √K_m / Σ √K.
pub fn optimal_shares(total_hz: f64, demand: &[f64]) -> Result<Vec<f64>, QuboError> {
    check_total(total_hz)?;
    for k in demand {
        check_non_negative("bandwidth demand K_m", *k)?;
    }
    let roots: f64 = demand.iter().map(|k| k.sqrt()).sum();
    if roots <= 0.0 {
        return Ok(equal_shares(total_hz, demand.len()));
    }
    Ok(demand.iter().map(|k| total_hz * k.sqrt() / roots).collect())
}

/// The comparison rule: B / M each.
pub fn equal_shares(total_hz: f64, devices: usize) -> Vec<f64> {
    vec![total_hz / devices.max(1) as f64; devices]
}

/// Σ_m K_m / b_m, the total transfer time of an allocation (infinite where a
/// device with demand gets no band).
pub fn total_transfer_time(demand: &[f64], shares: &[f64]) -> f64 {
    demand
        .iter()
        .zip(shares)
        .map(|(k, b)| {
            if *k == 0.0 {
                0.0
            } else if *b > 0.0 {
                k / b
            } else {
                f64::INFINITY
            }
        })
        .sum()
}

fn check_total(total_hz: f64) -> Result<(), QuboError> {
    if total_hz.is_finite() && total_hz > 0.0 {
        Ok(())
    } else {
        Err(QuboError::Value {
            what: "total band B".into(),
            value: total_hz,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::FastRng;

    #[test]
    fn square_root_rule_beats_every_random_feasible_split() {
        let mut rng = FastRng::new(11);
        for _ in 0..50 {
            let demand: Vec<f64> = (0..6).map(|_| 0.1 + 10.0 * rng.unit()).collect();
            let best = optimal_shares(20e6, &demand).expect("valid");
            assert!((best.iter().sum::<f64>() - 20e6).abs() < 1e-3);
            let t_best = total_transfer_time(&demand, &best);
            let roots: f64 = demand.iter().map(|k| k.sqrt()).sum();
            assert!((t_best - roots * roots / 20e6).abs() <= 1e-9 * t_best);
            assert!(t_best <= total_transfer_time(&demand, &equal_shares(20e6, 6)) + 1e-15);
            for _ in 0..200 {
                // A random point of the simplex, and a small step away from the
                // optimum along a budget-preserving direction.
                let w: Vec<f64> = (0..6).map(|_| rng.unit() + 1e-3).collect();
                let sum: f64 = w.iter().sum();
                let random: Vec<f64> = w.iter().map(|v| 20e6 * v / sum).collect();
                assert!(t_best <= total_transfer_time(&demand, &random));
                let (i, j) = (rng.below(6), rng.below(6));
                if i != j {
                    let mut nudged = best.clone();
                    let step = 1e-3 * nudged[i].min(nudged[j]);
                    nudged[i] += step;
                    nudged[j] -= step;
                    assert!(t_best <= total_transfer_time(&demand, &nudged));
                }
            }
        }
    }

    #[test]
    fn kkt_marginal_times_are_equal() {
        let demand = [1.0, 4.0, 9.0];
        let b = optimal_shares(6.0, &demand).expect("valid");
        assert_eq!(b, vec![1.0, 2.0, 3.0]);
        let marginal: Vec<f64> = demand.iter().zip(&b).map(|(k, b)| k / (b * b)).collect();
        assert!(marginal.iter().all(|g| (g - marginal[0]).abs() < 1e-12));
    }

    #[test]
    fn rejects_bad_input() {
        assert!(optimal_shares(0.0, &[1.0]).is_err());
        assert!(optimal_shares(1.0, &[-1.0]).is_err());
        assert_eq!(
            optimal_shares(2.0, &[0.0, 0.0]).expect("valid"),
            vec![1.0, 1.0]
        );
    }
}
