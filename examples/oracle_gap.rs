//! How far a backtest's forecasts are from the floor: reads a `backtest --forecasts` file
//! and the generator's `--oracle` file for the same shop, and prints the pooled pinball
//! of the oracle, the model and every baseline on the records both hold (the ones with a
//! barcode), the share of the gap between the best classical method and the oracle the
//! model closes, where the model's remaining gap lies, and how the oracle's and the
//! model's 5–95 % intervals cover what sold (ends included) with each tail's share.
//!
//! ```text
//! cargo run --release --example generate -- --products 5000 --months 36 --format csv --oracle 3 --out /tmp/shop/data
//! plastinka upload --stock /tmp/shop/data/stock_2026-11-01.csv --sales /tmp/shop/data
//! plastinka backtest --forecasts /tmp/shop/forecasts.csv
//! cargo run --release --example oracle_gap -- /tmp/shop/forecasts.csv /tmp/shop/data-oracle.csv
//! ```

use std::collections::{BTreeMap, HashMap};

const LEVELS: [f64; 5] = [0.05, 0.25, 0.5, 0.75, 0.95];

/// One record in one month: what sold, its shelf at the start, every method's loss.
struct Scored {
    shelf: f64,
    actual: f64,
    oracle_mean: f64,
    oracle_quantiles: Vec<f64>,
    oracle: f64,
    methods: BTreeMap<String, f64>,
    model_quantiles: Vec<f64>,
}

/// Share of records inside [q05, q95], below q05 and above q95.
fn coverage<'a>(records: impl Iterator<Item = (f64, &'a [f64])>) -> (f64, f64, f64) {
    let (mut n, mut inside, mut below, mut above) = (0.0, 0.0, 0.0, 0.0);
    for (actual, q) in records {
        n += 1.0;
        let (low, high) = (q[0], q[q.len() - 1]);
        inside += f64::from(u8::from(actual >= low && actual <= high));
        below += f64::from(u8::from(actual < low));
        above += f64::from(u8::from(actual > high));
    }
    (inside / n, below / n, above / n)
}

fn pinball(actual: f64, quantiles: &[f64]) -> f64 {
    let sum: f64 = LEVELS
        .iter()
        .zip(quantiles)
        .map(|(&l, &q)| (l * (actual - q)).max((l - 1.0) * (actual - q)))
        .sum();
    sum / LEVELS.len() as f64
}

fn numbers(record: &csv::StringRecord, from: usize) -> Result<Vec<f64>, String> {
    record
        .iter()
        .skip(from)
        .take(LEVELS.len())
        .map(|c| c.parse().map_err(|e| format!("{c}: {e}")))
        .collect()
}

/// The position of column `name` in `header`.
fn column(header: &csv::StringRecord, name: &str) -> Result<usize, String> {
    header
        .iter()
        .position(|h| h == name)
        .ok_or_else(|| format!("no column {name}"))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [forecasts, oracle] = args.as_slice() else {
        return Err("usage: oracle_gap FORECASTS.csv ORACLE.csv".into());
    };
    // (month, barcode) → (quantiles, mean)
    let mut floor: HashMap<(String, String), (Vec<f64>, f64)> = HashMap::new();
    for record in csv::Reader::from_path(oracle)?.records() {
        let r = record?;
        let mean = r.get(7).ok_or("oracle: no mean column")?.parse()?;
        floor.insert(
            (r[0].to_string(), r[1].to_string()),
            (numbers(&r, 2)?, mean),
        );
    }
    // (month, product) → scored
    let mut scored: BTreeMap<(String, String), Scored> = BTreeMap::new();
    let mut reader = csv::Reader::from_path(forecasts)?;
    let header = reader.headers()?.clone();
    let [month, product, barcode, actual, method, first_quantile] = [
        "month",
        "product_id",
        "barcode",
        "actual",
        "forecast",
        "forecast_q05",
    ]
    .map(|name| column(&header, name));
    let (month, product, barcode, actual, method) = (month?, product?, barcode?, actual?, method?);
    let first_quantile = first_quantile?;
    let shelf = column(&header, "shelf")?;
    for record in reader.records() {
        let r = record?;
        let key = (r[month].to_string(), r[barcode].to_string());
        let Some((quantiles, mean)) = floor.get(&key) else {
            continue;
        };
        let sold: f64 = r[actual].parse()?;
        let entry = scored
            .entry((r[month].to_string(), r[product].to_string()))
            .or_insert_with(|| Scored {
                shelf: r[shelf].parse().unwrap_or(f64::NAN),
                actual: sold,
                oracle_mean: *mean,
                oracle_quantiles: quantiles.clone(),
                oracle: pinball(sold, quantiles),
                methods: BTreeMap::new(),
                model_quantiles: Vec::new(),
            });
        let forecast = numbers(&r, first_quantile)?;
        entry
            .methods
            .insert(r[method].to_string(), pinball(sold, &forecast));
        if &r[method] == "model" {
            entry.model_quantiles = forecast;
        }
    }
    if scored.is_empty() {
        return Err("no record of the forecasts has a barcode and month in the oracle".into());
    }
    let n = scored.len() as f64;
    let mean_of = |pick: &dyn Fn(&Scored) -> f64| scored.values().map(pick).sum::<f64>() / n;
    let oracle = mean_of(&|s| s.oracle);
    let methods: Vec<String> = scored
        .values()
        .flat_map(|s| s.methods.keys().cloned())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    if let Some((key, s)) = scored
        .iter()
        .find(|(_, s)| s.methods.len() != methods.len() || s.model_quantiles.is_empty())
    {
        return Err(format!(
            "month {} product {} lacks a method ({} of {}, the model included)",
            key.0,
            key.1,
            s.methods.len(),
            methods.len()
        )
        .into());
    }
    println!("records (with a barcode) × months: {}", scored.len());
    println!("{:<24} {:.4}", "oracle", oracle);
    let mut best: Option<(String, f64)> = None;
    for method in &methods {
        let value = mean_of(&|s| s.methods[method]);
        println!("{method:<24} {value:.4}");
        if method != "model" && best.as_ref().is_none_or(|(_, b)| value < *b) {
            best = Some((method.clone(), value));
        }
    }
    let model = mean_of(&|s| s.methods["model"]);
    let (name, classical) = best.ok_or("no baseline in the forecasts")?;
    println!(
        "the model closes {:.0} % of the gap between {name} and the oracle",
        100.0 * (classical - model) / (classical - oracle)
    );
    let gap = |s: &Scored| s.methods["model"] - s.oracle;
    let total: f64 = scored.values().map(gap).sum();
    for (label, keep) in [
        (
            "starting the month with an empty shelf",
            &(|s: &Scored| s.shelf == 0.0) as &dyn Fn(&Scored) -> bool,
        ),
        ("selling 1.5 or more a month on average", &|s: &Scored| {
            s.oracle_mean >= 1.5
        }),
    ] {
        let part: Vec<&Scored> = scored.values().filter(|s| keep(s)).collect();
        println!(
            "records {label}: {:.0} % of them, {:.0} % of the model's remaining gap",
            100.0 * part.len() as f64 / n,
            100.0 * part.iter().map(|s| gap(s)).sum::<f64>() / total
        );
    }
    let oracle_cover = coverage(scored.values().map(|s| (s.actual, &s.oracle_quantiles[..])));
    let model_cover = coverage(scored.values().map(|s| (s.actual, &s.model_quantiles[..])));
    for (who, (inside, below, above)) in [("oracle", oracle_cover), ("model", model_cover)] {
        println!(
            "{who}: 5–95 % coverage (ends included) {inside:.3}; below q05 {below:.3}, above q95 {above:.3}"
        );
    }
    Ok(())
}
