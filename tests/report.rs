//! End-to-end tests of `plastinka report` in every format, with filters and sorting,
//! and of the accuracy report after the forecast month's sales arrive.

mod common;
use calamine::{Data, Reader};
use common::*;
use std::collections::HashMap;

fn trained() -> (Workspace, String) {
    let ws = Workspace::with_sample(SMALL_MODEL, false);
    let id = ws.train();
    (ws, id)
}

fn stored_medians(ws: &Workspace, model: &str) -> HashMap<i64, f64> {
    let conn = rusqlite::Connection::open(ws.db()).unwrap();
    let mut stmt = conn
        .prepare("SELECT product_id, units FROM forecasts WHERE model_id = ?1 AND quantile = 0.5")
        .unwrap();
    stmt.query_map([model], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn report(ws: &Workspace, args: &[&str]) -> std::process::Output {
    ws.plastinka().arg("report").args(args).output().unwrap()
}

#[test]
fn every_format_carries_the_stored_forecasts() {
    let (ws, id) = trained();
    let medians = stored_medians(&ws, &id);
    assert!(medians.len() > 200);

    // CSV
    let out = report(&ws, &["--format", "csv"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let mut reader = csv::Reader::from_reader(out.stdout.as_slice());
    let header = reader.headers().unwrap().clone();
    let column = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("{name} in {header:?}"))
    };
    let (pid, q50, month) = (
        column("product_id"),
        column("forecast_q50"),
        column("forecast_month"),
    );
    for key in [
        "artist",
        "stock",
        "reorder_units",
        "last_month_units",
        "availability",
        "lost_sales_rub",
    ] {
        column(key);
    }
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), medians.len());
    for row in &rows {
        let product: i64 = row[pid].parse().unwrap();
        let value: f64 = row[q50].parse().unwrap();
        assert!(
            (value - medians[&product]).abs() < 1e-9,
            "product {product}"
        );
        assert_eq!(&row[month], "2026-10");
    }

    // JSON
    let out = report(&ws, &["--format", "json"]);
    let doc = json(&out);
    assert_eq!(doc["meta"]["model_id"], id.as_str());
    assert_eq!(doc["meta"]["features_month"], "2026-09");
    let rows = doc["rows"].as_array().unwrap();
    assert_eq!(rows.len(), medians.len());
    for row in rows {
        let product = row["product_id"].as_i64().unwrap();
        assert!((row["forecast_q50"].as_f64().unwrap() - medians[&product]).abs() < 1e-9);
    }
    // --json means the JSON format too
    assert_eq!(
        json(&ws.plastinka().args(["--json", "report"]).output().unwrap())["rows"]
            .as_array()
            .unwrap()
            .len(),
        medians.len()
    );

    // XLSX, read back
    let path = ws.path("forecast.xlsx");
    let out = report(
        &ws,
        &["--format", "xlsx", "--output", path.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let mut book = calamine::open_workbook_auto(&path).unwrap();
    let range = book.worksheet_range("forecast").unwrap();
    let mut sheet_rows = range.rows();
    let header: Vec<String> = sheet_rows
        .next()
        .unwrap()
        .iter()
        .map(|c| c.to_string())
        .collect();
    let (pid, q50) = (
        header.iter().position(|h| h == "product_id").unwrap(),
        header.iter().position(|h| h == "forecast_q50").unwrap(),
    );
    let mut count = 0;
    for row in sheet_rows {
        let Data::Float(product) = row[pid] else {
            panic!("product_id is not a number: {:?}", row[pid])
        };
        let Data::Float(value) = row[q50] else {
            panic!("q50 is not a number: {:?}", row[q50])
        };
        assert!((value - medians[&(product as i64)]).abs() < 1e-9);
        count += 1;
    }
    assert_eq!(count, medians.len());
    // xlsx needs a file
    assert_eq!(report(&ws, &["--format", "xlsx"]).status.code(), Some(2));

    // the terminal table
    let out = report(&ws, &["--top", "3"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("Forecast for 2026-10") && text.contains("reorder_units"),
        "{text}"
    );
}

#[test]
fn filters_sorting_top_and_russian_headers() {
    let (ws, _) = trained();
    let rows = |args: &[&str]| -> Vec<serde_json::Value> {
        let out = report(&ws, &[&["--format", "json"], args].concat());
        assert!(out.status.success(), "{}", stderr(&out));
        json(&out)["rows"].as_array().unwrap().clone()
    };
    let all = rows(&[]);
    let sealed = rows(&["--condition", "sealed"]);
    assert!(!sealed.is_empty() && sealed.len() < all.len());
    assert!(sealed.iter().all(|r| r["condition"] == "sealed"));
    let artist = all[0]["artist"].as_str().unwrap().to_string();
    let word = artist.split(' ').next().unwrap().to_lowercase();
    let by_artist = rows(&["--artist", &word]);
    assert!(
        by_artist
            .iter()
            .all(|r| r["artist"].as_str().unwrap().to_lowercase().contains(&word))
    );
    // --min-forecast keeps exactly the rows whose median reaches the bound: some, not all
    // (an empty result would pass "all rows qualify" without testing anything).
    let median = |r: &serde_json::Value| r["forecast_q50"].as_f64().unwrap();
    let mut medians: Vec<f64> = all.iter().map(median).collect();
    medians.sort_by(f64::total_cmp);
    // The smallest median above the lowest: forecasts are whole copies, so most
    // medians of the sample's slow sellers are 0.
    let bound = medians
        .iter()
        .copied()
        .find(|&m| m > medians[0])
        .unwrap_or_else(|| {
            panic!(
                "every median is {}: the filter cannot be tested",
                medians[0]
            )
        });
    let big = rows(&["--min-forecast", &bound.to_string()]);
    let expected = all.iter().filter(|r| median(r) >= bound).count();
    assert!(!big.is_empty() && big.len() < all.len());
    assert_eq!(big.len(), expected);
    assert!(big.iter().all(|r| median(r) >= bound));
    let sorted = rows(&["--sort", "forecast_q95"]);
    let values: Vec<f64> = sorted
        .iter()
        .map(|r| r["forecast_q95"].as_f64().unwrap())
        .collect();
    assert!(
        values.windows(2).all(|w| w[0] >= w[1]),
        "numbers sort descending"
    );
    let ascending = rows(&["--sort", "forecast_q95:asc", "--top", "5"]);
    assert_eq!(ascending.len(), 5);
    assert!(ascending[0]["forecast_q95"].as_f64() <= ascending[4]["forecast_q95"].as_f64());
    assert!(rows(&["--style", "no such style"]).is_empty());
    assert_eq!(report(&ws, &["--sort", "nope"]).status.code(), Some(2));
    // reorder = max(0, ceil(Q(0.9)) − stock); with a lower service level, never more
    let low = rows(&["--service-level", "0.5"]);
    let total = |rs: &[serde_json::Value]| {
        rs.iter()
            .map(|r| r["reorder_units"].as_i64().unwrap())
            .sum::<i64>()
    };
    assert!(total(&low) <= total(&all));

    let out = report(&ws, &["--format", "csv", "--lang", "ru"]);
    let text = String::from_utf8(out.stdout).unwrap();
    let header = text.lines().next().unwrap();
    assert!(
        header.contains("Исполнитель")
            && header.contains("Дозаказ (шт)")
            && !header.contains("artist"),
        "{header}"
    );
}

#[test]
fn accuracy_after_the_forecast_month_arrives() {
    let (ws, id) = trained();
    // October is not stored yet.
    let out = report(&ws, &["--kind", "accuracy"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("2026-10"), "{}", stderr(&out));

    let sample = sample();
    ws.upload(
        &sample.join("next/stock_2026-11-01.xlsx"),
        &sample.join("next"),
    );
    let out = report(
        &ws,
        &["--kind", "accuracy", "--model", &id, "--format", "json"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let doc = json(&out);
    let summary = doc["meta"]["summary"].as_array().unwrap();
    let names: Vec<&str> = summary
        .iter()
        .map(|s| s["forecast"].as_str().unwrap())
        .collect();
    assert_eq!(names[0], "model");
    assert_eq!(names[1..], BASELINES);
    let rows = doc["rows"].as_array().unwrap();
    assert_eq!(rows.len(), stored_medians(&ws, &id).len());
    // actuals are October's stored units (0 for products without a row)
    let conn = rusqlite::Connection::open(ws.db()).unwrap();
    let sold: i64 = conn.query_row("SELECT sum(units_sold) FROM monthly_features WHERE month = '2026-10' AND product_id IN (SELECT product_id FROM forecasts WHERE model_id = ?1)", [&id], |r| r.get(0)).unwrap();
    let reported: f64 = rows
        .iter()
        .map(|r| r["actual_units"].as_f64().unwrap())
        .sum();
    assert_eq!(reported as i64, sold);
    let model = &summary[0]["evaluation"];
    assert!(model["pinball"].as_f64().unwrap() > 0.0 && model["coverage"].as_f64().unwrap() > 0.5);
    // the same month is also reachable by --month
    assert!(
        report(&ws, &["--kind", "accuracy", "--month", "2026-10"])
            .status
            .success()
    );
}
