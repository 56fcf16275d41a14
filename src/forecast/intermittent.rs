//! Forecasts for intermittent demand, as statsforecast defines them (`models.py`:
//! `_ses_fcst_mse`, `_optimized_ses_forecast`, `_intervals`, `_croston_*`, `_tsb`,
//! `_imapa`): the bar a forecaster holds a model of a record shop's sales to.
//!
//! * **Croston SBA** — sizes of the non-zero demands and the intervals between them, each
//!   smoothed by SES, their ratio times 0.95 (the Syntetos–Boylan correction). The smoothing
//!   parameters are chosen by in-sample MSE in [0.1, 0.3], separately for sizes and
//!   intervals, as statsforecast's `CrostonOptimized` does (its `CrostonSBA` fixes α = 0.1).
//! * **TSB** — SES of the demand sizes times SES of the demand probability (1 where a month
//!   sold, else 0), each α chosen by its own in-sample MSE (statsforecast leaves both to the
//!   user).
//! * **IMAPA** — the series summed over non-overlapping blocks of 1…k months (k the mean
//!   interval between demands, rounded half to even like Python's `round`), each level
//!   forecast by optimised SES and divided by its length, the levels averaged.
//!
//! α is found on a grid of 0.01 over [0.1, 0.3], the first minimum kept (so a flat MSE
//! gives 0.1, where statsforecast's L-BFGS-B started from 0 stays), then refined by a
//! golden-section search around it.

/// `(forecast, in-sample MSE)` of SES with smoothing `alpha`, started at the first value.
pub fn ses(x: &[f64], alpha: f64) -> (f64, f64) {
    let Some(&first) = x.first() else {
        return (0.0, 0.0);
    };
    let mut smoothed = first;
    let mut mse = 0.0;
    for i in 1..x.len() {
        smoothed = alpha * x[i - 1] + (1.0 - alpha) * smoothed;
        let error = x[i] - smoothed;
        mse += error * error;
    }
    mse /= x.len() as f64;
    let last = x[x.len() - 1];
    (alpha * last + (1.0 - alpha) * smoothed, mse)
}

const ALPHA_LOW: f64 = 0.1;
const ALPHA_HIGH: f64 = 0.3;

/// The α in [0.1, 0.3] with the smallest in-sample MSE (see the module's notes).
pub fn best_alpha(x: &[f64]) -> f64 {
    let mse = |alpha: f64| ses(x, alpha).1;
    // Improvements within float noise do not count: a flat MSE keeps the lower bound.
    let better = |value: f64, than: f64| value < than - 1e-12 * (1.0 + than.abs());
    let mut best = (ALPHA_LOW, mse(ALPHA_LOW));
    for step in 1..=20 {
        let alpha = (ALPHA_LOW + step as f64 * 0.01).min(ALPHA_HIGH);
        let value = mse(alpha);
        if better(value, best.1) {
            best = (alpha, value);
        }
    }
    // Golden-section refinement within one grid step either side.
    let (mut a, mut b) = (
        (best.0 - 0.01).max(ALPHA_LOW),
        (best.0 + 0.01).min(ALPHA_HIGH),
    );
    let ratio = (5f64.sqrt() - 1.0) / 2.0;
    for _ in 0..30 {
        let c = b - ratio * (b - a);
        let d = a + ratio * (b - a);
        if mse(c) < mse(d) {
            b = d;
        } else {
            a = c;
        }
    }
    let refined = (a + b) / 2.0;
    if better(mse(refined), best.1) {
        refined
    } else {
        best.0
    }
}

/// SES with the α [`best_alpha`] picks: its forecast.
pub fn optimized_ses(x: &[f64]) -> f64 {
    ses(x, best_alpha(x)).0
}

/// The non-zero values.
fn demands(y: &[f64]) -> Vec<f64> {
    y.iter().copied().filter(|&v| v != 0.0).collect()
}

/// Months from the start to the first demand, then between demands (statsforecast's
/// `_intervals`: positions of the non-zero values, counted from 1, differenced).
pub fn intervals(y: &[f64]) -> Vec<f64> {
    let mut previous = 0usize;
    let mut out = Vec::new();
    for (i, &v) in y.iter().enumerate() {
        if v != 0.0 {
            out.push((i + 1 - previous) as f64);
            previous = i + 1;
        }
    }
    out
}

/// Croston with optimised smoothing and the SBA correction.
pub fn croston_sba(y: &[f64]) -> f64 {
    let sizes = demands(y);
    if sizes.is_empty() {
        return 0.0;
    }
    let size = optimized_ses(&sizes);
    let interval = optimized_ses(&intervals(y));
    let croston = if interval != 0.0 {
        size / interval
    } else {
        size
    };
    0.95 * croston
}

/// TSB with given smoothing of the sizes (`alpha_d`) and of the probability (`alpha_p`).
pub fn tsb_with(y: &[f64], alpha_d: f64, alpha_p: f64) -> f64 {
    let sizes = demands(y);
    if sizes.is_empty() {
        return 0.0;
    }
    let probability: Vec<f64> = y.iter().map(|&v| f64::from(u8::from(v != 0.0))).collect();
    ses(&probability, alpha_p).0 * ses(&sizes, alpha_d).0
}

/// TSB, each α chosen by its series' in-sample MSE.
pub fn tsb(y: &[f64]) -> f64 {
    let sizes = demands(y);
    if sizes.is_empty() {
        return 0.0;
    }
    let probability: Vec<f64> = y.iter().map(|&v| f64::from(u8::from(v != 0.0))).collect();
    tsb_with(y, best_alpha(&sizes), best_alpha(&probability))
}

/// IMAPA: optimised SES over aggregation levels 1…k, averaged.
pub fn imapa(y: &[f64]) -> f64 {
    let gaps = intervals(y);
    if gaps.is_empty() {
        return 0.0;
    }
    let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
    let levels = (mean.round_ties_even() as usize).max(1);
    let forecasts: Vec<f64> = (1..=levels)
        .map(|level| {
            // The oldest months that do not fill a block are left out, as statsforecast does.
            let cut = &y[y.len() % level..];
            let sums: Vec<f64> = cut.chunks_exact(level).map(|c| c.iter().sum()).collect();
            if sums.is_empty() {
                0.0
            } else {
                optimized_ses(&sums) / level as f64
            }
        })
        .collect();
    forecasts.iter().sum::<f64>() / forecasts.len() as f64
}

/// Quantiles around `point` from the absolute errors of one-step forecasts made the same
/// way on earlier months (statsforecast's conformal intervals, h = 1): the `1 − 2τ`
/// quantile of the errors below the point for τ < ½, the `2τ − 1` one above it for τ > ½,
/// never below zero. Without errors the point is every quantile.
pub fn conformal_quantiles(point: f64, abs_errors: &[f64], levels: &[f64]) -> Vec<f64> {
    let mut sorted = abs_errors.to_vec();
    sorted.sort_by(f64::total_cmp);
    levels
        .iter()
        .map(|&tau| {
            if (tau - 0.5).abs() < 1e-12 {
                return point.max(0.0);
            }
            let width = quantile_type7(&sorted, (2.0 * tau - 1.0).abs());
            let value = if tau < 0.5 {
                point - width
            } else {
                point + width
            };
            value.max(0.0)
        })
        .collect()
}

/// The `p` quantile of sorted values, linear between order statistics (numpy's default).
fn quantile_type7(sorted: &[f64], p: f64) -> f64 {
    match sorted.len() {
        0 => 0.0,
        1 => sorted[0],
        n => {
            let h = (n - 1) as f64 * p.clamp(0.0, 1.0);
            let low = h.floor() as usize;
            let high = (low + 1).min(n - 1);
            sorted[low] + (h - low as f64) * (sorted[high] - sorted[low])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn ses_by_hand() {
        // x = [2, 0, 4], α = 0.1: smoothed 2, 2, 1.8; errors −2, 2.2; forecast 0.4 + 1.62.
        let (forecast, mse) = ses(&[2.0, 0.0, 4.0], 0.1);
        assert!(close(forecast, 2.02), "{forecast}");
        assert!(close(mse, (4.0 + 4.84) / 3.0), "{mse}");
    }

    #[test]
    fn alpha_by_hand() {
        // [1, 3, 2]: MSE = (4 + (1 − 2α)²) / 3, smallest at α = ½, so the bound 0.3;
        // forecast 0.3·2 + 0.7·(1 + 2·0.3) = 1.72.
        assert!(close(best_alpha(&[1.0, 3.0, 2.0]), 0.3));
        assert!(close(optimized_ses(&[1.0, 3.0, 2.0]), 1.72));
        // A flat MSE keeps the lower bound.
        assert!(close(best_alpha(&[3.0, 5.0]), 0.1));
    }

    #[test]
    fn intervals_count_from_the_start() {
        assert_eq!(intervals(&[0.0, 3.0, 0.0, 0.0, 5.0]), vec![2.0, 3.0]);
        assert_eq!(intervals(&[1.0, 1.0]), vec![1.0, 1.0]);
        assert!(intervals(&[0.0, 0.0]).is_empty());
    }

    #[test]
    fn croston_sba_by_hand() {
        // Sizes [3, 5] and intervals [2, 3] have flat MSEs: α = 0.1.
        // Sizes: 0.1·5 + 0.9·3 = 3.2; intervals: 0.1·3 + 0.9·2 = 2.1; SBA 0.95 · 3.2 / 2.1.
        let f = croston_sba(&[0.0, 3.0, 0.0, 0.0, 5.0]);
        assert!(close(f, 0.95 * 3.2 / 2.1), "{f}");
        assert_eq!(croston_sba(&[0.0, 0.0, 0.0]), 0.0);
    }

    #[test]
    fn tsb_by_hand() {
        // Probability [0, 1, 0, 0, 1], α 0.1: smoothed 0, 0, 0.1, 0.09, 0.081;
        // forecast 0.1 + 0.9·0.081 = 0.1729; sizes forecast 3.2.
        let f = tsb_with(&[0.0, 3.0, 0.0, 0.0, 5.0], 0.1, 0.1);
        assert!(close(f, 0.1729 * 3.2), "{f}");
        assert_eq!(tsb(&[0.0, 0.0]), 0.0);
    }

    #[test]
    fn imapa_by_hand() {
        // [2, 0, 2, 0]: intervals [1, 2], mean 1.5 → 2 levels.
        // Level 1: MSE falls over [0.1, 0.3], α = 0.3: smoothed 2, 2, 1.4 → 1.58;
        //   forecast 0.3·0 + 0.7·1.58 = 1.106.
        // Level 2: sums [2, 2], flat MSE, α = 0.1: forecast 2, per month 1.
        let f = imapa(&[2.0, 0.0, 2.0, 0.0]);
        assert!(close(f, (1.106 + 1.0) / 2.0), "{f}");
        // Every month sold: one level, plain optimised SES.
        assert!(close(imapa(&[1.0, 3.0, 2.0]), 1.72));
    }

    #[test]
    fn conformal_quantiles_by_hand() {
        // Errors [1, 3]: the 0.9 quantile is 1 + 0.9·2 = 2.8, the 0.5 one 2.
        let q = conformal_quantiles(2.0, &[3.0, 1.0], &[0.05, 0.25, 0.5, 0.75, 0.95]);
        let expected = [0.0, 0.0, 2.0, 4.0, 4.8];
        for (a, b) in q.iter().zip(expected) {
            assert!(close(*a, b), "{q:?}");
        }
        assert_eq!(conformal_quantiles(1.5, &[], &[0.05, 0.95]), vec![1.5, 1.5]);
    }
}
