//! The simple forecasts a model has to beat: last month, the same month last year, and
//! the mean of the last three months. Each point forecast λ becomes quantiles of a
//! Poisson(λ) — the usual way to give a count baseline an honest interval (a degenerate
//! interval would make its pinball loss and coverage meaningless).

use crate::forecast::history::History;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Baseline {
    LastMonth,
    SameMonthLastYear,
    MeanOfLast3,
}

impl Baseline {
    pub const ALL: [Baseline; 3] = [
        Baseline::LastMonth,
        Baseline::SameMonthLastYear,
        Baseline::MeanOfLast3,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Baseline::LastMonth => "last_month",
            Baseline::SameMonthLastYear => "same_month_last_year",
            Baseline::MeanOfLast3 => "mean_of_last_3_months",
        }
    }

    /// Point forecast of product `i` for month `target` from the months before it.
    /// Months before the history count as 0; without a year of history the seasonal
    /// baseline falls back to last month.
    pub fn point(self, history: &History, i: usize, target: usize) -> f64 {
        let units = |m: usize| history.units[history.at(i, m)];
        let before = |k: usize| target.checked_sub(k).map_or(0.0, units);
        match self {
            Baseline::LastMonth => before(1),
            Baseline::SameMonthLastYear if target >= 12 => before(12),
            Baseline::SameMonthLastYear => before(1),
            Baseline::MeanOfLast3 => (before(1) + before(2) + before(3)) / 3.0,
        }
    }

    pub fn quantiles(self, history: &History, i: usize, target: usize, levels: &[f64]) -> Vec<f64> {
        let lambda = self.point(history, i, target);
        levels
            .iter()
            .map(|&q| poisson_quantile(lambda, q))
            .collect()
    }
}

/// Smallest k with P(X ≤ k) ≥ q for X ~ Poisson(λ).
pub fn poisson_quantile(lambda: f64, q: f64) -> f64 {
    if lambda <= 0.0 {
        return 0.0;
    }
    let mut p = (-lambda).exp();
    let mut cdf = p;
    let mut k = 0u32;
    while cdf < q && k < 10_000 {
        k += 1;
        p *= lambda / k as f64;
        cdf += p;
    }
    k as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poisson_quantiles_by_hand() {
        // λ = 1: P(0) = 0.3679, P(≤1) = 0.7358, P(≤2) = 0.9197, P(≤3) = 0.9810.
        assert_eq!(poisson_quantile(1.0, 0.05), 0.0);
        assert_eq!(poisson_quantile(1.0, 0.5), 1.0);
        assert_eq!(poisson_quantile(1.0, 0.9), 2.0);
        assert_eq!(poisson_quantile(1.0, 0.95), 3.0);
        assert_eq!(poisson_quantile(0.0, 0.95), 0.0);
    }

    #[test]
    fn points_by_hand() {
        let months = 14;
        let mut h = History {
            months: vec![crate::month::Month::new(2025, 1).unwrap(); months],
            ..Default::default()
        };
        h.units = (0..months).map(|m| m as f64).collect();
        assert_eq!(Baseline::LastMonth.point(&h, 0, 13), 12.0);
        assert_eq!(Baseline::SameMonthLastYear.point(&h, 0, 13), 1.0);
        assert_eq!(Baseline::SameMonthLastYear.point(&h, 0, 5), 4.0);
        assert_eq!(Baseline::MeanOfLast3.point(&h, 0, 13), 11.0);
        assert_eq!(Baseline::MeanOfLast3.point(&h, 0, 1), 0.0);
    }
}
