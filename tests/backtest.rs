//! `plastinka backtest` end to end: rolling origins trained like `train`, the model and
//! every baseline scored on the same products, stored, reported and mentioned by health.

mod common;
use common::*;

#[test]
fn a_backtest_scores_every_method_per_month_and_pooled_and_is_stored() {
    let ws = Workspace::with_sample(SMALL_MODEL, true);
    let out = ws
        .plastinka()
        .args(["--json", "backtest", "--months", "2"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let report = json(&out);
    assert_eq!(report["meta"]["kind"], "backtest");
    assert_eq!(
        report["meta"]["months"],
        serde_json::json!(["2026-09", "2026-10"])
    );
    let rows = report["rows"].as_array().unwrap();
    // (model + 9 baselines) × (2 months + pooled).
    assert_eq!(rows.len(), 30, "{report}");
    let methods: Vec<&str> = rows[..10]
        .iter()
        .map(|r| r["forecast"].as_str().unwrap())
        .collect();
    assert_eq!(methods[0], "model");
    assert_eq!(methods[1..], BASELINES);
    // Every method of a month is scored on the same products, and pooled = the sum.
    let products = |row: &serde_json::Value| row["products"].as_i64().unwrap();
    for month in [&rows[..10], &rows[10..20], &rows[20..]] {
        assert!(month.iter().all(|r| products(r) == products(&month[0])));
    }
    assert_eq!(
        products(&rows[20]),
        products(&rows[0]) + products(&rows[10])
    );
    assert!(products(&rows[0]) > 100);
    for row in rows {
        let pinball = row["pinball"].as_f64().unwrap();
        assert!(pinball.is_finite() && pinball >= 0.0, "{row}");
        let inner = row["coverage_25_75"].as_f64().unwrap();
        assert!(
            inner <= row["coverage_5_95"].as_f64().unwrap() + 1e-12,
            "{row}"
        );
    }
    assert_eq!(ws.sql("SELECT count(*) FROM backtests"), 1);

    // The report shows the stored backtest again, in any format.
    let csv = ws
        .plastinka()
        .args(["report", "--kind", "backtest", "--format", "csv"])
        .output()
        .unwrap();
    assert!(csv.status.success(), "{}", stderr(&csv));
    let text = String::from_utf8_lossy(&csv.stdout);
    assert_eq!(text.lines().count(), 31, "{text}");
    assert!(
        text.lines()
            .last()
            .unwrap()
            .starts_with("pooled,imapa_empirical,")
    );

    // Health mentions it.
    let health = ws.plastinka().args(["--json", "health"]).output().unwrap();
    let health = json(&health);
    let model = component(&health, "model").clone();
    assert_eq!(
        model["details"]["backtest"]["months"],
        serde_json::json!(["2026-09", "2026-10"]),
        "{model}"
    );
}

/// The last origin of a backtest is the month a `train` on the months before it would
/// forecast, scored like the accuracy report scores that training run's forecast: the
/// same products, and for every baseline the same figures exactly. The model's own
/// figure differs a little: the newer upload updated some products' prices (attributes
/// are the stored, newest ones), which the model reads.
#[test]
fn a_one_month_backtest_scores_what_train_forecast() {
    let ws = Workspace::with_sample(SMALL_MODEL, false);
    let model = ws.train();
    // Add November: a backtest of one month trains on months up to October, as above.
    let sample = sample();
    ws.upload(
        &sample.join("next/stock_2026-11-01.xlsx"),
        &sample.join("next"),
    );
    let export = ws.path("every-forecast.csv");
    let out = ws
        .plastinka()
        .args(["--json", "backtest", "--months", "1", "--forecasts"])
        .arg(&export)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let backtest = json(&out);
    every_forecast_gives_the_scores(&std::fs::read_to_string(&export).unwrap(), &backtest);
    let accuracy = ws
        .plastinka()
        .args(["--json", "report", "--kind", "accuracy", "--model", &model])
        .output()
        .unwrap();
    assert!(accuracy.status.success(), "{}", stderr(&accuracy));
    let accuracy = json(&accuracy);
    // The accuracy report scores the model and every baseline on the same products: the
    // backtest's pooled rows (one month) must say the same, method by method.
    let summary = accuracy["meta"]["summary"].as_array().unwrap();
    let pooled = &backtest["rows"].as_array().unwrap()[10..];
    assert_eq!(summary.len(), pooled.len());
    for (a, b) in summary.iter().zip(pooled) {
        assert_eq!(a["forecast"], b["forecast"]);
        let (x, y) = (
            a["evaluation"]["pinball"].as_f64().unwrap(),
            b["pinball"].as_f64().unwrap(),
        );
        // The model's figure only roughly: same seed, but the newer upload changed some
        // prices the model reads (see above), and on this 300-record sample so small a
        // change of inputs moves the small model's pinball as much as a change of seed
        // does. With the default batch and demand covariates, accuracy against backtest
        // for seeds 42, 43, 44, 45: 0.219 / 0.190, 0.180 / 0.181, 0.180 / 0.183,
        // 0.181 / 0.184 — seed 42's `train` lands on the high side. The baselines, which
        // read no prices, must agree exactly.
        let tolerance = if b["forecast"] == "model" {
            0.2 * x
        } else {
            1e-9
        };
        assert!(
            (x - y).abs() <= tolerance,
            "{}: accuracy {x} vs backtest {y}",
            b["forecast"]
        );
        assert_eq!(a["evaluation"]["products"], b["products"]);
    }
}

/// The `--forecasts` export holds each product's forecast by every method beside what
/// sold; scored again from it, each method's pinball is the backtest's.
fn every_forecast_gives_the_scores(csv: &str, backtest: &serde_json::Value) {
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_string)
        .collect();
    assert_eq!(
        header,
        [
            "month",
            "product_id",
            "barcode",
            "artist",
            "album",
            "shelf",
            "actual",
            "forecast",
            "forecast_q05",
            "forecast_q25",
            "forecast_q50",
            "forecast_q75",
            "forecast_q95"
        ]
    );
    let levels = [0.05, 0.25, 0.5, 0.75, 0.95];
    let mut losses: std::collections::BTreeMap<String, Vec<f64>> = Default::default();
    let (mut barcodes, mut empty_shelves) = (0, 0);
    for record in reader.records() {
        let cells = record.unwrap();
        assert_eq!(cells.len(), header.len(), "{cells:?}");
        assert_eq!(&cells[0], "2026-10");
        barcodes += usize::from(!cells[2].is_empty());
        empty_shelves += usize::from(&cells[5] == "0");
        let actual: f64 = cells[6].parse().unwrap();
        let quantiles = cells.iter().skip(8).map(|c| c.parse::<f64>().unwrap());
        let loss = levels.iter().zip(quantiles).map(|(&l, q)| {
            let e = actual - q;
            (l * e).max((l - 1.0) * e)
        });
        losses.entry(cells[7].to_string()).or_default().extend(loss);
    }
    let rows = backtest["rows"].as_array().unwrap();
    assert_eq!(losses.len(), 10);
    assert!(barcodes > 0 && empty_shelves > 0);
    for row in &rows[..10] {
        let method = row["forecast"].as_str().unwrap();
        let mine = &losses[method];
        assert_eq!(mine.len() as i64, 5 * row["products"].as_i64().unwrap());
        let pinball = mine.iter().sum::<f64>() / mine.len() as f64;
        let scored = row["pinball"].as_f64().unwrap();
        assert!(
            (pinball - scored).abs() < 1e-9,
            "{method}: {pinball} vs {scored}"
        );
    }
}

/// `backtest --forecasts PATH` exits 2 with `why` in its message, before any training.
fn export_refused(ws: &Workspace, path: &std::path::Path, why: &str) {
    let out = ws
        .plastinka()
        .args(["backtest", "--months", "1", "--forecasts"])
        .arg(path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains(why), "{}", stderr(&out));
    assert!(!stderr(&out).contains("epoch"), "{}", stderr(&out));
}

#[test]
fn too_few_months_are_refused_and_nothing_is_stored() {
    let ws = Workspace::with_sample(SMALL_MODEL, true);
    let out = ws
        .plastinka()
        .args(["backtest", "--months", "20"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("complete stored months"),
        "{}",
        stderr(&out)
    );
    assert_eq!(ws.sql("SELECT count(*) FROM backtests"), 0);
    // An export that cannot be written is refused before any training.
    let out = ws
        .plastinka()
        .args([
            "backtest",
            "--months",
            "1",
            "--forecasts",
            "no/such/folder/x.csv",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("no/such/folder"), "{}", stderr(&out));
    assert!(!stderr(&out).contains("epoch"), "{}", stderr(&out));
    assert_eq!(ws.sql("SELECT count(*) FROM backtests"), 0);
    let locked = ws.path("locked.csv");
    std::fs::write(&locked, "keep me").unwrap();
    let mut permissions = std::fs::metadata(&locked).unwrap().permissions();
    permissions.set_readonly(true);
    std::fs::set_permissions(&locked, permissions).unwrap();
    export_refused(&ws, &locked, "read-only");
    assert_eq!(std::fs::read_to_string(&locked).unwrap(), "keep me");
    let link = ws.path("link.csv");
    std::os::unix::fs::symlink(&locked, &link).unwrap();
    export_refused(&ws, &link, "symbolic link");
    assert_eq!(ws.sql("SELECT count(*) FROM backtests"), 0);
    let report = ws
        .plastinka()
        .args(["report", "--kind", "backtest"])
        .output()
        .unwrap();
    assert_eq!(report.status.code(), Some(2));
    assert!(stderr(&report).contains("plastinka backtest"));
}
