//! Per-month covariates of every product, computed once over the whole stored history
//! (original-ml.md §2.9, its flaws fixed as `dataset` lists): group and own statistics,
//! availability and confidence; the optional demand and shelf covariates; calendar and
//! static ones. `dataset` slices them into windows.

use super::ewm::{ewm_mean, ewm_var};
use super::scaler::LogMinMax;
use crate::forecast::history::History;
use std::collections::{BTreeSet, HashMap};

/// Past covariates per month: 4 groups × (EWMA, EWMV), own EWMA, availability, confidence.
pub const PAST: usize = 11;

/// Calendar covariates per month: is_hot, sin and cos of the month, scaled year.
pub const FUTURE: usize = 4;

/// Past covariates per month with `model.demand_covariates`: copies sold per month in
/// stock and the mean restock lot, each over the product's history up to the month.
pub const DEMAND: usize = 2;

/// Copies at which the shelf covariate reaches 1 (it grows as log1p beyond).
const SHELF_SCALE: f64 = 20.0;

/// The optional covariates a model reads (`model.shelf_covariate`,
/// `model.demand_covariates`).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Optional {
    pub shelf: bool,
    pub demand: bool,
}

impl Optional {
    pub fn of(model: &crate::config::ModelConfig) -> Self {
        Self {
            shelf: model.shelf_covariate,
            demand: model.demand_covariates,
        }
    }

    /// Past covariates per month.
    pub fn past_width(self) -> usize {
        PAST + DEMAND * usize::from(self.demand)
    }

    /// Future covariates per month: the calendar ones, and the shelf when it is used.
    pub fn future_width(self) -> usize {
        FUTURE + usize::from(self.shelf)
    }
}

/// The static attributes, in column order.
pub const STATIC_ATTRIBUTES: [&str; 6] = [
    "condition",
    "release_type",
    "price_category",
    "style",
    "recording_year",
    "release_decade",
];

/// The attribute a static column belongs to (`price_category_(0, 690]` → `price_category`).
pub fn static_attribute(column: &str) -> Option<&'static str> {
    STATIC_ATTRIBUTES
        .iter()
        .find(|a| {
            column
                .strip_prefix(**a)
                .is_some_and(|rest| rest.starts_with('_'))
        })
        .copied()
}

/// Multi-hot static covariates: each attribute's value split on `/`, one column per class,
/// classes sorted per attribute (original-ml.md §2.9.4).
pub fn static_columns(history: &History) -> Vec<String> {
    let mut columns = BTreeSet::new();
    for p in &history.products {
        for (name, value) in static_values(p) {
            for part in value.split('/') {
                columns.insert((name, part.trim().to_string()));
            }
        }
    }
    let mut sorted: Vec<(&str, String)> = columns.into_iter().collect();
    sorted.sort_by_key(|(name, value)| {
        (
            STATIC_ATTRIBUTES.iter().position(|o| o == name),
            value.clone(),
        )
    });
    sorted
        .into_iter()
        .map(|(n, v)| format!("{n}_{v}"))
        .collect()
}

fn static_values(p: &crate::forecast::history::ProductAttributes) -> [(&'static str, String); 6] {
    [
        ("condition", p.condition.clone()),
        ("release_type", p.release_type.clone()),
        ("price_category", p.price_category.clone()),
        ("style", p.style.clone()),
        ("recording_year", p.recording_year.to_string()),
        ("release_decade", p.release_decade.to_string()),
    ]
}

/// Per (product, month): copies sold per month in stock, and the mean of the months'
/// arrivals that brought copies, each over every month up to and including that one.
/// Units per month in stock counts at least one month in stock, so a record on the shelf
/// for a day is not read as a hit.
pub fn demand(history: &History, scaler: &LogMinMax) -> Vec<f32> {
    let (n, t) = (history.products.len(), history.months.len());
    let mut out = vec![0f32; n * t * DEMAND];
    for i in 0..n {
        let (mut sold, mut stocked, mut arrived, mut restocks) = (0.0, 0.0, 0.0, 0usize);
        for m in 0..t {
            let at = history.at(i, m);
            sold += history.units[at];
            stocked += history.availability[at];
            if history.arrivals[at] > 0.0 {
                arrived += history.arrivals[at];
                restocks += 1;
            }
            let lot = if restocks > 0 {
                arrived / restocks as f64
            } else {
                0.0
            };
            let cell = &mut out[(i * t + m) * DEMAND..][..DEMAND];
            cell[0] = scaler.transform(sold / stocked.max(1.0)) as f32;
            cell[1] = scaler.transform(lot) as f32;
        }
    }
    out
}

/// The units of every product and month, scaled.
pub fn scaled_units(history: &History, scaler: &LogMinMax) -> Vec<f32> {
    history
        .units
        .iter()
        .map(|&u| scaler.transform(u) as f32)
        .collect()
}

/// Per (product, month, [`PAST`]): the group statistics, the product's own weighted mean,
/// availability and confidence.
pub fn past(history: &History, scaler: &LogMinMax, span: usize) -> Vec<f32> {
    let (n, t) = (history.products.len(), history.months.len());
    // Group statistics: mean sales of the in-stock products sharing the attribute and the
    // recording decade, per month.
    let mut past = vec![0f32; n * t * PAST];
    let attribute = |p: &crate::forecast::history::ProductAttributes, f: usize| -> String {
        let value = match f {
            0 => &p.release_type,
            1 => &p.condition,
            2 => &p.style,
            _ => &p.price_category,
        };
        format!("{value}|{}", p.recording_decade)
    };
    for f in 0..4 {
        let mut groups: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, p) in history.products.iter().enumerate() {
            groups.entry(attribute(p, f)).or_default().push(i);
        }
        for members in groups.values() {
            let series: Vec<Option<f64>> = (0..t)
                .map(|m| {
                    if history.closed[m] {
                        return None;
                    }
                    let (sum, count) = members
                        .iter()
                        .filter(|&&i| history.availability[history.at(i, m)] > 0.0)
                        .fold((0.0, 0usize), |(s, c), &i| {
                            (s + history.units[history.at(i, m)], c + 1)
                        });
                    (count > 0).then(|| sum / count as f64)
                })
                .collect();
            let zero_before_first = |v: Vec<Option<f64>>| -> Vec<f64> {
                v.into_iter().map(|x| x.unwrap_or(0.0)).collect()
            };
            let mean = zero_before_first(ewm_mean(&series, span));
            let var = zero_before_first(ewm_var(&series, span));
            for &i in members {
                for m in 0..t {
                    let at = (i * t + m) * PAST;
                    past[at + 2 * f] = scaler.transform(mean[m]) as f32;
                    past[at + 2 * f + 1] = scaler.transform(var[m]) as f32;
                }
            }
        }
    }
    for i in 0..n {
        let own: Vec<Option<f64>> = (0..t)
            .map(|m| (!history.closed[m]).then(|| history.units[history.at(i, m)]))
            .collect();
        let own = ewm_mean(&own, span);
        for (m, own) in own.iter().enumerate() {
            let at = (i * t + m) * PAST;
            past[at + 8] = scaler.transform(own.unwrap_or(0.0)) as f32;
            past[at + 9] = history.availability[history.at(i, m)] as f32;
            past[at + 10] = history.confidence[history.at(i, m)] as f32;
        }
    }
    past
}

/// Per (product, column of `static_columns`): 1 where the product has that class.
pub fn statics(history: &History, static_columns: &[String]) -> Vec<f32> {
    let n = history.products.len();
    let column_index: HashMap<&str, usize> = static_columns
        .iter()
        .enumerate()
        .map(|(i, c)| (c.as_str(), i))
        .collect();
    let s = static_columns.len();
    let mut statics = vec![0f32; n * s];
    for (i, p) in history.products.iter().enumerate() {
        for (name, value) in static_values(p) {
            for part in value.split('/') {
                if let Some(&c) = column_index.get(format!("{name}_{}", part.trim()).as_str()) {
                    statics[i * s + c] = 1.0;
                }
            }
        }
    }
    statics
}

/// Per (product, month): the copies on the shelf at the end of the month, as
/// `log1p(copies) / log1p(20)`.
pub fn shelf(history: &History) -> Vec<f32> {
    history
        .stock_end
        .iter()
        .map(|&copies| (copies.max(0.0).ln_1p() / SHELF_SCALE.ln_1p()) as f32)
        .collect()
}

/// is_hot (the month's year is the recording year), sin and cos of the month, and the
/// year on a fixed scale (2000 → 0, 2030 → 1).
pub fn calendar(month: crate::month::Month, recording_year: i32) -> [f32; FUTURE] {
    let angle = 2.0 * std::f64::consts::PI * month.number() as f64 / 12.0;
    [
        f32::from(month.year() == recording_year),
        angle.sin() as f32,
        angle.cos() as f32,
        ((month.year() - 2000) as f64 / 30.0) as f32,
    ]
}
