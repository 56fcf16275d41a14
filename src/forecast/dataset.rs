//! From stored months to model inputs (original-ml.md §2.9), with its flaws fixed:
//!
//! * covariates are computed once over the whole history and then sliced, so a month
//!   has the same covariates in training and at inference (§7.B.2);
//! * the year covariate is scaled with fixed constants, not per window (§7.B.2);
//! * `is_hot` compares numbers and works (§7.B.1);
//! * a training window is kept when its *own target month* had stock and its *input*
//!   months had enough sales (§7.B.3);
//! * the sample weight is one explicit scalar per window — the mean over its input months
//!   of `0.1 + α·log1p(z·confidence)`, the value the original's broadcast produced (§7.B.4);
//! * the scaler is fitted on the months the model trains on (§7.B.5);
//! * a month's covariates use only months up to it: the original back-filled a group's
//!   first statistic into the three months before it, so a window could see its own
//!   target month's group mean in its inputs. Before a group's first observation its
//!   statistics are 0;
//! * months stored empty (the shop was closed) are no target, and count as unobserved in
//!   the moving statistics rather than as a month of zero demand.

use super::covariates::{self, DEMAND, Optional, PAST, calendar, static_columns};
use super::scaler::LogMinMax;
use crate::forecast::history::History;
use burn::tensor::{Device, Tensor};

/// Model inputs for every product and month of a history (plus the month after it for
/// the calendar covariates).
pub struct Features {
    pub products: usize,
    pub months: usize,
    pub scaler: LogMinMax,
    /// Scaled units, product-major.
    pub z: Vec<f32>,
    /// (product, month, PAST)
    pub past: Vec<f32>,
    /// First stored month (calendar covariates are computed from it on demand).
    pub first_month: crate::month::Month,
    pub recording_years: Vec<i32>,
    /// (product, statics)
    pub statics: Vec<f32>,
    pub static_columns: Vec<String>,
    /// With `model.shelf_covariate`: per (product, month), the copies on the shelf at the
    /// end of the month — the shelf the next month starts from, known when that month is
    /// forecast — as log1p(copies) / log1p(20). A future covariate after the calendar ones.
    pub shelf: Option<Vec<f32>>,
    /// With `model.demand_covariates`: per (product, month, [`DEMAND`]), scaled like the
    /// units. A month sold out for most of its days understates what the record sells;
    /// over the whole history, units per month in stock does not, and the shop's restock
    /// lots follow what a record sells even while it is sold out.
    pub demand: Option<Vec<f32>>,
}

/// One window: inputs are the `lags` months before `target`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub product: u32,
    pub target: u32,
    pub weight: f32,
}

/// Model inputs of a batch, and its targets and weights.
pub struct Batch {
    pub inputs: super::tide::Batch,
    pub target: Tensor<2>,
    pub weight: Tensor<2>,
}

/// A batch as row-major values: `lookback` (B, L), `past` (B, L, P), `future`
/// (B, L+1, F), `statics` (B, S), `target` and `weight` (B).
pub struct BatchValues {
    pub lookback: Vec<f32>,
    pub past: Vec<f32>,
    pub future: Vec<f32>,
    pub statics: Vec<f32>,
    pub target: Vec<f32>,
    pub weight: Vec<f32>,
    pub past_width: usize,
    pub future_width: usize,
    pub static_width: usize,
}

impl BatchValues {
    /// The batch as tensors on `device`.
    pub fn into_batch(self, lags: usize, device: &Device) -> Batch {
        let b = self.target.len();
        let tensor = |data: Vec<f32>| Tensor::<1>::from_floats(data.as_slice(), device);
        Batch {
            inputs: super::tide::Batch {
                lookback: tensor(self.lookback).reshape([b, lags]),
                past: tensor(self.past).reshape([b, lags, self.past_width]),
                future: tensor(self.future).reshape([b, lags + 1, self.future_width]),
                statics: tensor(self.statics).reshape([b, self.static_width]),
            },
            target: tensor(self.target).reshape([b, 1]),
            weight: tensor(self.weight).reshape([b, 1]),
        }
    }
}

/// Builds every covariate. `scaler` is fitted by the caller on the training months.
pub fn build(history: &History, scaler: LogMinMax, span: usize, optional: Optional) -> Features {
    Features::build_with_columns(history, scaler, span, &static_columns(history), optional)
}

impl Features {
    /// [`build`] with the static columns a stored model was trained with (a class it never
    /// saw sets no column).
    pub fn build_with_columns(
        history: &History,
        scaler: LogMinMax,
        span: usize,
        static_columns: &[String],
        optional: Optional,
    ) -> Features {
        Features {
            products: history.products.len(),
            months: history.months.len(),
            scaler,
            z: covariates::scaled_units(history, &scaler),
            past: covariates::past(history, &scaler, span),
            first_month: history
                .months
                .first()
                .copied()
                .unwrap_or_else(|| crate::month::Month::of(chrono::NaiveDate::MIN)),
            recording_years: history.products.iter().map(|p| p.recording_year).collect(),
            statics: covariates::statics(history, static_columns),
            static_columns: static_columns.to_vec(),
            shelf: optional.shelf.then(|| covariates::shelf(history)),
            demand: optional
                .demand
                .then(|| covariates::demand(history, &scaler)),
        }
    }
}

impl Features {
    pub fn static_width(&self) -> usize {
        self.static_columns.len()
    }

    /// The optional covariates these features carry.
    pub fn optional(&self) -> Optional {
        Optional {
            shelf: self.shelf.is_some(),
            demand: self.demand.is_some(),
        }
    }

    /// The widths of the network that reads these features with `model`'s lags and
    /// quantiles.
    pub fn widths(&self, model: &crate::config::ModelConfig) -> super::tide::Widths {
        super::tide::Widths {
            lags: model.lags,
            past: self.past_width(),
            future: self.future_width(),
            statics: self.static_width(),
            quantiles: model.quantiles.len(),
        }
    }

    pub fn past_width(&self) -> usize {
        self.optional().past_width()
    }

    pub fn future_width(&self) -> usize {
        self.optional().future_width()
    }

    /// The shelf covariate at the start of month `month` (counted from the first stored
    /// month; may lie outside the history): the end of the month before, 0 unknown.
    fn shelf_at(&self, shelf: &[f32], product: usize, month: i64) -> f32 {
        match usize::try_from(month - 1) {
            Ok(before) if before < self.months => shelf[product * self.months + before],
            _ => 0.0,
        }
    }

    /// Sample weight of the window ending before `target`.
    fn weight(
        &self,
        history: &History,
        product: usize,
        target: usize,
        lags: usize,
        alpha: f64,
    ) -> f32 {
        if alpha == 0.0 {
            return 1.0;
        }
        let months = target.saturating_sub(lags)..target;
        let count = months.len().max(1) as f64;
        let sum: f64 = months
            .map(|m| {
                let z = self.z[product * self.months + m] as f64;
                0.1 + alpha * (z * history.confidence[history.at(product, m)]).ln_1p()
            })
            .sum();
        (sum / count) as f32
    }

    /// Training windows whose target lies in `first_target..=last_target`: the product was
    /// present and in stock in the target month, and had sales in at least
    /// `min_sales_months` of the input months.
    pub fn training_samples(
        &self,
        history: &History,
        lags: usize,
        last_target: usize,
        min_sales_months: usize,
        alpha: f64,
    ) -> Vec<Sample> {
        let mut samples = Vec::new();
        for i in 0..self.products {
            for target in lags..=last_target.min(self.months.saturating_sub(1)) {
                if history.closed[target] {
                    continue;
                }
                let at = history.at(i, target);
                let stocked = history.availability[at] > 0.0 || history.confidence[at] > 0.0;
                if !history.present[at] || !stocked {
                    continue;
                }
                let selling = (target - lags..target)
                    .filter(|&m| history.units[history.at(i, m)] > 0.0)
                    .count();
                if selling < min_sales_months {
                    continue;
                }
                samples.push(Sample {
                    product: i as u32,
                    target: target as u32,
                    weight: self.weight(history, i, target, lags, alpha),
                });
            }
        }
        samples
    }

    /// One window per product that was in stock in month `target` (the held-out month).
    pub fn holdout_samples(
        &self,
        history: &History,
        lags: usize,
        target: usize,
        alpha: f64,
    ) -> Vec<Sample> {
        (0..self.products)
            .filter(|&i| {
                let at = history.at(i, target);
                history.present[at]
                    && (history.availability[at] > 0.0 || history.confidence[at] > 0.0)
            })
            .map(|i| Sample {
                product: i as u32,
                target: target as u32,
                weight: self.weight(history, i, target, lags, alpha),
            })
            .collect()
    }

    /// One window per product for the month after the history.
    pub fn next_month_samples(&self) -> Vec<Sample> {
        (0..self.products)
            .map(|i| Sample {
                product: i as u32,
                target: self.months as u32,
                weight: 1.0,
            })
            .collect()
    }

    /// Assembles tensors for `samples`. Input months before the history are zero sales.
    pub fn batch(&self, samples: &[Sample], lags: usize, device: &Device) -> Batch {
        self.batch_values(samples, lags).into_batch(lags, device)
    }

    /// The values of [`Features::batch`]'s tensors, row-major, for the CPU training step
    /// that works on plain buffers (`native`).
    pub fn batch_values(&self, samples: &[Sample], lags: usize) -> BatchValues {
        let b = samples.len();
        let s = self.static_width();
        let zero = self.scaler.transform(0.0) as f32;
        let mut lookback = Vec::with_capacity(b * lags);
        let past_width = self.past_width();
        let mut past = Vec::with_capacity(b * lags * past_width);
        let width = self.future_width();
        let mut future = Vec::with_capacity(b * (lags + 1) * width);
        let mut statics = Vec::with_capacity(b * s);
        let mut target = Vec::with_capacity(b);
        let mut weight = Vec::with_capacity(b);
        for sample in samples {
            let (i, t) = (sample.product as usize, sample.target as usize);
            for k in 0..lags {
                match (t + k).checked_sub(lags) {
                    Some(m) if m < self.months => {
                        lookback.push(self.z[i * self.months + m]);
                        past.extend_from_slice(&self.past[(i * self.months + m) * PAST..][..PAST]);
                        if let Some(demand) = &self.demand {
                            past.extend_from_slice(
                                &demand[(i * self.months + m) * DEMAND..][..DEMAND],
                            );
                        }
                    }
                    _ => {
                        lookback.push(zero);
                        past.extend(std::iter::repeat_n(0.0, past_width));
                    }
                }
            }
            for k in 0..=lags {
                // Calendar covariates exist for every month, even before the history.
                let offset = t as i64 + k as i64 - lags as i64;
                let month = self.first_month.plus(offset as i32);
                future.extend_from_slice(&calendar(month, self.recording_years[i]));
                if let Some(shelf) = &self.shelf {
                    future.push(self.shelf_at(shelf, i, offset));
                }
            }
            statics.extend_from_slice(&self.statics[i * s..][..s]);
            target.push(if t < self.months {
                self.z[i * self.months + t]
            } else {
                zero
            });
            weight.push(sample.weight);
        }
        BatchValues {
            lookback,
            past,
            future,
            statics,
            target,
            weight,
            past_width,
            future_width: width,
            static_width: s,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forecast::covariates::FUTURE;
    use crate::forecast::history::ProductAttributes;
    use crate::month::Month;

    fn history(months: usize) -> History {
        let attrs = |id: i64, style: &str| ProductAttributes {
            id,
            condition: "sealed".into(),
            release_type: "Оригинал".into(),
            style: style.into(),
            price_category: "(689.999, 2490]".into(),
            recording_year: 1980,
            recording_decade: 1980,
            release_decade: 1980,
        };
        // Product 2 (the only Jazz record) arrives in month 5: its group has no statistic
        // before then.
        let units = [
            [1.0, 2.0, 0.0, 3.0, 1.0, 2.0, 4.0, 1.0],
            [0.0, 0.0, 0.0, 0.0, 0.0, 6.0, 2.0, 9.0],
        ];
        let present = |i: usize, m: usize| i == 0 || m >= 5;
        let n = 2;
        History {
            months: (0..months as i32)
                .map(|k| Month::new(2025, 1).unwrap().plus(k))
                .collect(),
            complete: vec![true; months],
            closed: vec![false; months],
            products: vec![attrs(1, "Rock"), attrs(2, "Jazz")],
            units: (0..n).flat_map(|i| units[i][..months].to_vec()).collect(),
            availability: (0..n)
                .flat_map(|i| (0..months).map(move |m| if present(i, m) { 1.0 } else { 0.0 }))
                .collect(),
            confidence: (0..n)
                .flat_map(|i| (0..months).map(move |m| if present(i, m) { 0.8 } else { 0.0 }))
                .collect(),
            present: (0..n)
                .flat_map(|i| (0..months).map(move |m| present(i, m)))
                .collect(),
            stock_end: (0..n)
                .flat_map(|i| (0..months).map(move |m| ((i + 2 * m) % 5) as f64))
                .collect(),
            arrivals: (0..n)
                .flat_map(|i| (0..months).map(move |m| ((3 * i + m) % 4) as f64))
                .collect(),
        }
    }

    /// Defect 10: the leading back-fill copied a group's first statistic into the months
    /// before it, so a window ending before month 5 saw month 5's Jazz mean. A month's
    /// covariates may only depend on months up to it: cutting the history after any
    /// month leaves every covariate up to that month unchanged.
    #[test]
    fn covariates_never_look_into_the_future() {
        let scaler = LogMinMax::fit([0.0, 9.0].into_iter());
        let all = Optional {
            shelf: true,
            demand: true,
        };
        let full = build(&history(8), scaler, 3, all);
        for cut in 1..8 {
            let short = build(&history(cut), scaler, 3, all);
            for i in 0..2 {
                for m in 0..cut {
                    let a = &full.past[(i * 8 + m) * PAST..][..PAST];
                    let b = &short.past[(i * cut + m) * PAST..][..PAST];
                    assert_eq!(a, b, "product {i}, month {m}, history cut after {cut}");
                    let (f, s) = (
                        full.demand.as_ref().unwrap(),
                        short.demand.as_ref().unwrap(),
                    );
                    assert_eq!(
                        f[(i * 8 + m) * DEMAND..][..DEMAND],
                        s[(i * cut + m) * DEMAND..][..DEMAND],
                        "demand of product {i}, month {m}, history cut after {cut}"
                    );
                    // The shelf a month starts from, too: a window ending at the cut
                    // sees the same future covariates in both.
                    let (f, s) = (full.shelf.as_ref().unwrap(), short.shelf.as_ref().unwrap());
                    assert_eq!(
                        full.shelf_at(f, i, m as i64 + 1),
                        short.shelf_at(s, i, m as i64 + 1),
                        "shelf of product {i} at month {}",
                        m + 1
                    );
                }
            }
        }
        // Before the Jazz group's first month its style statistics are those of 0 sales,
        // not month 5's (columns 4 and 5: style mean and variance).
        let zero = scaler.transform(0.0) as f32;
        assert_eq!(full.past[(8 + 4) * PAST + 4], zero);
        assert!(full.past[(8 + 5) * PAST + 4] > zero);
    }

    /// The shelf covariate of each month in a window is the shelf it starts from: the end
    /// of the month before (for next month, the snapshot), 0 before the history.
    #[test]
    fn the_shelf_a_month_starts_from_is_a_future_covariate() {
        let mut h = history(4);
        h.stock_end = vec![0.0, 3.0, 20.0, 1.0, 5.0, 5.0, 5.0, 5.0];
        let scaler = LogMinMax::fit([0.0, 9.0].into_iter());
        let shelf = Optional {
            shelf: true,
            demand: false,
        };
        let features = build(&h, scaler, 3, shelf);
        assert_eq!(features.future_width(), FUTURE + 1);
        // Product 0, forecasting month 4 (after the history) from lags 2: months 2, 3, 4.
        let sample = Sample {
            product: 0,
            target: 4,
            weight: 1.0,
        };
        let batch = features.batch(&[sample], 2, &Device::default());
        let future = batch.inputs.future.into_data().try_to_vec::<f32>().unwrap();
        let shelf: Vec<f32> = future.chunks(FUTURE + 1).map(|m| m[FUTURE]).collect();
        let scaled = |c: f64| (c.ln_1p() / 20f64.ln_1p()) as f32;
        assert_eq!(shelf, vec![scaled(3.0), scaled(20.0), scaled(1.0)]);
        // The first month has no month before it.
        let first = Sample {
            target: 0,
            ..sample
        };
        let batch = features.batch(&[first], 2, &Device::default());
        let future = batch.inputs.future.into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(future[3 * (FUTURE + 1) - 1], 0.0);
        // Without the switch, only the calendar.
        let none = Optional::default();
        assert_eq!(build(&h, scaler, 3, none).future_width(), FUTURE);
    }

    /// Units per month in stock and the mean restock lot, by hand: sold 2, 0, 3 in
    /// months in stock for 1, ¼ and ½ of their days, with lots of 4 and 2 arriving.
    #[test]
    fn demand_over_the_history_by_hand() {
        let mut h = history(3);
        h.units = vec![2.0, 0.0, 3.0, 1.0, 0.0, 0.0];
        h.availability = vec![1.0, 0.25, 0.5, 0.5, 0.0, 0.0];
        h.arrivals = vec![4.0, 0.0, 2.0, 0.0, 0.0, 0.0];
        let identity = LogMinMax::fit([0.0, 1.0].into_iter());
        let d = covariates::demand(&h, &identity);
        let raw: Vec<f64> = d.iter().map(|&z| identity.inverse(z as f64)).collect();
        let expected = [
            // product 0: 2/1, 2/1.25, 5/1.75; lots 4, 4, (4 + 2)/2
            2.0,
            4.0,
            1.6,
            4.0,
            5.0 / 1.75,
            3.0,
            // product 1: half a month in stock counts as one; never restocked
            1.0,
            0.0,
            1.0,
            0.0,
            1.0,
            0.0,
        ];
        for (k, (got, want)) in raw.iter().zip(expected).enumerate() {
            assert!((got - want).abs() < 1e-4, "cell {k}: {got} vs {want}");
        }
        // In the batch, after the 11 base covariates of each input month.
        let all = Optional {
            shelf: false,
            demand: true,
        };
        let features = build(&h, identity, 3, all);
        assert_eq!(features.past_width(), PAST + DEMAND);
        // Product 0 forecasting month 2 from months 0 and 1; product 1 forecasting month 1
        // from months -1 (before the history: zeros) and 0.
        let sample = |product, target| Sample {
            product,
            target,
            weight: 1.0,
        };
        let batch = features.batch(&[sample(0, 2), sample(1, 1)], 2, &Device::default());
        let past = batch.inputs.past.into_data().try_to_vec::<f32>().unwrap();
        let width = PAST + DEMAND;
        assert_eq!(past.len(), 2 * 2 * width);
        let demand_of = |window: usize, month: usize| {
            let at = (window * 2 + month) * width + PAST;
            past[at..at + DEMAND].to_vec()
        };
        let cell =
            |product: usize, month: usize| d[(product * 3 + month) * DEMAND..][..DEMAND].to_vec();
        assert_eq!(demand_of(0, 0), cell(0, 0));
        assert_eq!(demand_of(0, 1), cell(0, 1));
        assert_eq!(demand_of(1, 0), vec![0.0; DEMAND]);
        assert_eq!(past[2 * width..3 * width], vec![0.0; width][..]);
        assert_eq!(demand_of(1, 1), cell(1, 0));
    }
}
