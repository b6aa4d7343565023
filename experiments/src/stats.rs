//! Means and 95 % confidence intervals over seeds (Student's t), the one
//! way every experiment summarises repeated runs.

use serde::Serialize;
use statrs::distribution::{ContinuousCDF, StudentsT};

/// Fewer samples than this give a mean without an interval: two seeds'
/// t-interval (t = 12.7) is wider than most values it would bound.
pub const MIN_SAMPLES_FOR_INTERVAL: usize = 3;

/// A mean with its 95 % confidence interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Estimate {
    pub mean: f64,
    /// Half-width of the 95 % interval (0 with a single sample).
    pub half_width: f64,
    pub samples: usize,
}

impl Estimate {
    pub fn low(&self) -> f64 {
        self.mean - self.half_width
    }

    pub fn high(&self) -> f64 {
        self.mean + self.half_width
    }

    /// A plotted point at `x`: (x, mean, low, high), with no band where
    /// too few samples back the interval.
    pub fn plotted(&self, x: f64) -> (f64, f64, f64, f64) {
        if self.has_interval() { (x, self.mean, self.low(), self.high()) } else { (x, self.mean, self.mean, self.mean) }
    }

    /// Whether enough samples back the interval to show it.
    pub fn has_interval(&self) -> bool {
        self.samples >= MIN_SAMPLES_FOR_INTERVAL
    }

    /// `12.3 ± 0.4`, with `digits` decimals; `12.3 (2 seeds, no interval)`
    /// with too few samples for an interval.
    pub fn display(&self, digits: usize) -> String {
        if self.has_interval() {
            format!("{:.digits$} ± {:.digits$}", self.mean, self.half_width)
        } else {
            let seeds = if self.samples == 1 { "1 seed".to_string() } else { format!("{} seeds", self.samples) };
            format!("{:.digits$} ({seeds}, no interval)", self.mean)
        }
    }
}

/// Mean and 95 % t-interval of `values`.
pub fn estimate(values: &[f64]) -> Estimate {
    let n = values.len();
    if n == 0 {
        return Estimate { mean: f64::NAN, half_width: f64::NAN, samples: 0 };
    }
    let mean = values.iter().sum::<f64>() / n as f64;
    if n == 1 {
        return Estimate { mean, half_width: 0.0, samples: 1 };
    }
    let variance = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    let t = StudentsT::new(0.0, 1.0, (n - 1) as f64).map(|d| d.inverse_cdf(0.975)).unwrap_or(1.96);
    Estimate { mean, half_width: t * (variance / n as f64).sqrt(), samples: n }
}

/// Least-squares fit y = a + b·x; returns (a, b, R²).
pub fn linear_fit(xs: &[f64], ys: &[f64]) -> (f64, f64, f64) {
    let n = xs.len().min(ys.len()) as f64;
    if n < 2.0 {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    let mx = xs.iter().sum::<f64>() / n;
    let my = ys.iter().sum::<f64>() / n;
    let sxy: f64 = xs.iter().zip(ys).map(|(x, y)| (x - mx) * (y - my)).sum();
    let sxx: f64 = xs.iter().map(|x| (x - mx).powi(2)).sum();
    let syy: f64 = ys.iter().map(|y| (y - my).powi(2)).sum();
    let b = sxy / sxx;
    let a = my - b * mx;
    let r2 = if syy > 0.0 { (sxy * sxy) / (sxx * syy) } else { 1.0 };
    (a, b, r2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interval_matches_textbook_values() {
        // n = 4, s = 1.2910, t(3) = 3.1824: half-width 2.0540.
        let e = estimate(&[1.0, 2.0, 3.0, 4.0]);
        assert!((e.mean - 2.5).abs() < 1e-12);
        assert!((e.half_width - 2.0540).abs() < 1e-3, "{}", e.half_width);
        assert_eq!(estimate(&[7.0]).half_width, 0.0);
    }

    #[test]
    fn fewer_than_three_samples_show_no_interval() {
        assert_eq!(estimate(&[1.0, 2.0, 3.0]).display(1), "2.0 ± 2.5");
        assert_eq!(estimate(&[1.0, 2.0]).display(2), "1.50 (2 seeds, no interval)");
        assert_eq!(estimate(&[7.0]).display(0), "7 (1 seed, no interval)");
    }

    #[test]
    fn fit_recovers_a_line() {
        let xs = [1.0, 2.0, 3.0, 4.0];
        let ys: Vec<f64> = xs.iter().map(|x| 3.0 + 2.0 * x).collect();
        let (a, b, r2) = linear_fit(&xs, &ys);
        assert!((a - 3.0).abs() < 1e-12 && (b - 2.0).abs() < 1e-12 && (r2 - 1.0).abs() < 1e-12);
    }
}
