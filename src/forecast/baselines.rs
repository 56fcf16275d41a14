//! The forecasts a model has to beat: the naive ones (last month, the same month last
//! year, the mean of the last three months) and the classical methods for intermittent
//! demand (Croston SBA, TSB, IMAPA; see [`super::intermittent`]). Each point forecast λ
//! becomes quantiles of a Poisson(λ) — the usual way to give a count baseline an honest
//! interval (a degenerate interval would make its pinball loss and coverage
//! meaningless); the intermittent methods also come in an empirical-residual variant,
//! whose quantiles are the point ± the errors of the same method's one-step forecasts of
//! the product's last (up to) 12 months.

use super::intermittent;
use crate::forecast::history::History;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Baseline {
    LastMonth,
    SameMonthLastYear,
    MeanOfLast3,
    CrostonSba,
    Tsb,
    Imapa,
    CrostonSbaEmpirical,
    TsbEmpirical,
    ImapaEmpirical,
}

/// How many earlier months give an empirical-residual variant its errors.
const RESIDUAL_WINDOWS: usize = 12;

impl Baseline {
    pub const ALL: [Baseline; 9] = [
        Baseline::LastMonth,
        Baseline::SameMonthLastYear,
        Baseline::MeanOfLast3,
        Baseline::CrostonSba,
        Baseline::Tsb,
        Baseline::Imapa,
        Baseline::CrostonSbaEmpirical,
        Baseline::TsbEmpirical,
        Baseline::ImapaEmpirical,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Baseline::LastMonth => "last_month",
            Baseline::SameMonthLastYear => "same_month_last_year",
            Baseline::MeanOfLast3 => "mean_of_last_3_months",
            Baseline::CrostonSba => "croston_sba",
            Baseline::Tsb => "tsb",
            Baseline::Imapa => "imapa",
            Baseline::CrostonSbaEmpirical => "croston_sba_empirical",
            Baseline::TsbEmpirical => "tsb_empirical",
            Baseline::ImapaEmpirical => "imapa_empirical",
        }
    }

    /// The intermittent-demand method behind this baseline, if it is one.
    fn method(self) -> Option<fn(&[f64]) -> f64> {
        match self {
            Baseline::CrostonSba | Baseline::CrostonSbaEmpirical => Some(intermittent::croston_sba),
            Baseline::Tsb | Baseline::TsbEmpirical => Some(intermittent::tsb),
            Baseline::Imapa | Baseline::ImapaEmpirical => Some(intermittent::imapa),
            _ => None,
        }
    }

    fn empirical(self) -> bool {
        matches!(
            self,
            Baseline::CrostonSbaEmpirical | Baseline::TsbEmpirical | Baseline::ImapaEmpirical
        )
    }

    /// Point forecast of product `i` for month `target` from the months before it.
    /// Months before the history count as 0; without a year of history the seasonal
    /// baseline falls back to last month.
    pub fn point(self, history: &History, i: usize, target: usize) -> f64 {
        if let Some(method) = self.method() {
            return method(&demand_series(history, i, target));
        }
        let units = |m: usize| history.units[history.at(i, m)];
        let before = |k: usize| target.checked_sub(k).map_or(0.0, units);
        match self {
            Baseline::LastMonth => before(1),
            Baseline::SameMonthLastYear if target >= 12 => before(12),
            Baseline::SameMonthLastYear => before(1),
            Baseline::MeanOfLast3 => (before(1) + before(2) + before(3)) / 3.0,
            _ => 0.0, // the intermittent methods returned above
        }
    }

    pub fn quantiles(self, history: &History, i: usize, target: usize, levels: &[f64]) -> Vec<f64> {
        if let Some(method) = self.method().filter(|_| self.empirical()) {
            let series = demand_series(history, i, target);
            let errors = one_step_errors(&series, method);
            return intermittent::conformal_quantiles(method(&series), &errors, levels);
        }
        let lambda = self.point(history, i, target);
        levels
            .iter()
            .map(|&q| poisson_quantile(lambda, q))
            .collect()
    }
}

/// Product `i`'s units in the months before `target` that could show demand: from the
/// first month it was on the books, without months the shop was closed. (Months before a
/// record arrived are not zero demand; counting them would stretch Croston's intervals.)
fn demand_series(history: &History, i: usize, target: usize) -> Vec<f64> {
    let first = (0..target).find(|&m| history.present[history.at(i, m)]);
    let Some(first) = first else {
        return Vec::new();
    };
    (first..target)
        .filter(|&m| !history.closed.get(m).copied().unwrap_or(false))
        .map(|m| history.units[history.at(i, m)])
        .collect()
}

/// |actual − forecast| of `method`'s one-step forecasts of the series' last (up to)
/// [`RESIDUAL_WINDOWS`] values, each made from the values before it (at least two).
fn one_step_errors(series: &[f64], method: fn(&[f64]) -> f64) -> Vec<f64> {
    let start = series.len().saturating_sub(RESIDUAL_WINDOWS).max(2);
    (start..series.len())
        .map(|j| (series[j] - method(&series[..j])).abs())
        .collect()
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

    /// The intermittent baselines read the months from the product's arrival, skip the
    /// months the shop was closed, and the empirical variants use their own errors.
    #[test]
    fn intermittent_baselines_read_the_products_own_months() {
        let months = 8;
        let mut h = History {
            months: vec![crate::month::Month::new(2025, 1).unwrap(); months],
            closed: vec![false; months],
            ..Default::default()
        };
        // Arrives in month 2; month 4 closed; sales 0, 3, (closed), 0, 5 then the target.
        h.units = vec![0.0, 0.0, 0.0, 3.0, 0.0, 0.0, 5.0, 9.0];
        h.present = vec![false, false, true, true, true, true, true, true];
        h.closed[4] = true;
        assert_eq!(demand_series(&h, 0, 7), vec![0.0, 3.0, 0.0, 5.0]);
        assert_eq!(
            Baseline::CrostonSba.point(&h, 0, 7),
            intermittent::croston_sba(&[0.0, 3.0, 0.0, 5.0])
        );
        // Errors of one-step forecasts of the 3rd and 4th values: from [0, 3] and [0, 3, 0].
        let e2 = (0.0 - intermittent::tsb(&[0.0, 3.0])).abs();
        let e3 = (5.0 - intermittent::tsb(&[0.0, 3.0, 0.0])).abs();
        let point = intermittent::tsb(&[0.0, 3.0, 0.0, 5.0]);
        let levels = [0.05, 0.5, 0.95];
        assert_eq!(
            Baseline::TsbEmpirical.quantiles(&h, 0, 7, &levels),
            intermittent::conformal_quantiles(point, &[e2, e3], &levels)
        );
        // Not yet on the books before the target: nothing to forecast from.
        assert_eq!(Baseline::Imapa.point(&h, 0, 2), 0.0);
    }
}
