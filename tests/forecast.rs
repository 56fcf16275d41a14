//! Stored models are usable: `plastinka forecast` reproduces a training run's forecast
//! from the stored weights, forecasts later months without training, refuses a model that
//! no longer fits, and a damaged model is found. Partial months never shift or distort
//! what is forecast.

mod common;
use common::*;

const TINY: &str = "[model]\nhidden_size = 16\nnum_encoder_layers = 1\nnum_decoder_layers = 1\ndecoder_output_dim = 8\ntemporal_decoder_hidden = 8\n[training]\nmax_epochs = 4\npatience = 2\n";

fn trained(next: bool) -> (Workspace, String) {
    let ws = Workspace::with_sample(TINY, next);
    let id = ws.train();
    (ws, id)
}

/// Stored forecasts of a model for a month: (product, quantile, units).
fn stored(ws: &Workspace, model: &str, month: &str) -> Vec<(i64, f64, f64)> {
    let conn = rusqlite::Connection::open(ws.db()).unwrap();
    let mut stmt = conn
        .prepare("SELECT product_id, quantile, units FROM forecasts WHERE model_id = ?1 AND month = ?2 ORDER BY product_id, quantile")
        .unwrap();
    stmt.query_map([model, month], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn forecast(ws: &Workspace, extra: &[&str]) -> std::process::Output {
    ws.plastinka()
        .args(["--json", "forecast"])
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn forecasting_the_training_month_from_the_stored_weights_reproduces_it_exactly() {
    let (ws, id) = trained(true);
    let before = stored(&ws, &id, "2026-11");
    assert!(before.len() > 100);
    let out = forecast(&ws, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let summary = json(&out);
    assert_eq!(summary["forecast_month"], "2026-11");
    assert_eq!(summary["model_id"], id.as_str());
    assert_eq!(stored(&ws, &id, "2026-11"), before);
}

/// Cron retrains quarterly and forecasts monthly: a model trained on September forecasts
/// November once October is stored, and the report shows that forecast.
#[test]
fn a_stored_model_forecasts_a_later_month_without_training() {
    let (ws, id) = trained(false);
    let sample = sample();
    ws.upload(
        &sample.join("next/stock_2026-11-01.xlsx"),
        &sample.join("next"),
    );
    let models_before = ws.sql("SELECT count(*) FROM models");
    let out = forecast(&ws, &["--model", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(json(&out)["forecast_month"], "2026-11");
    assert_eq!(ws.sql("SELECT count(*) FROM models"), models_before);
    let november = stored(&ws, &id, "2026-11");
    let october = stored(&ws, &id, "2026-10");
    // Every product with a row in the complete history gets a forecast: October's
    // newcomers too.
    assert!(november.len() >= october.len() && !october.is_empty());
    assert!(november != october);
    // The report picks the model's newest forecast and its features month.
    let out = ws.plastinka().args(["--json", "report"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let report = json(&out);
    assert_eq!(
        report["meta"]["forecast_month"], "2026-11",
        "{}",
        report["meta"]
    );
    assert_eq!(report["meta"]["features_month"], "2026-10");
    let out = ws
        .plastinka()
        .args(["--json", "report", "--month", "2026-10"])
        .output()
        .unwrap();
    assert_eq!(json(&out)["meta"]["forecast_month"], "2026-10");
}

#[test]
fn a_model_that_no_longer_fits_the_data_is_refused_with_the_reason() {
    let (ws, id) = trained(true);
    let conn = rusqlite::Connection::open(ws.db()).unwrap();
    conn.execute(
        "UPDATE models SET artifacts_json = json_set(artifacts_json, '$.widths.past', 12) WHERE id = ?1",
        [&id],
    )
    .unwrap();
    drop(conn);
    let before = ws.db_bytes();
    let out = forecast(&ws, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("does not fit the stored data") && err.contains("12 past"),
        "{err}"
    );
    assert_eq!(ws.db_bytes(), before);
    let out = forecast(&ws, &["--model", "nope"]);
    assert_eq!(out.status.code(), Some(2));
}

/// Defect 20: bytes overwritten inside the stored weights passed `health`.
#[test]
fn damaged_weights_are_found_by_health_and_refused_by_forecast() {
    let (ws, id) = trained(true);
    let conn = rusqlite::Connection::open(ws.db()).unwrap();
    conn.execute(
        "UPDATE models SET weights = CAST(substr(weights, 1, 600)
             || CASE WHEN substr(weights, 601, 1) = X'FF' THEN X'00' ELSE X'FF' END
             || substr(weights, 602) AS BLOB) WHERE id = ?1",
        [&id],
    )
    .unwrap();
    drop(conn);
    let out = ws.plastinka().args(["--json", "health"]).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let report = json(&out);
    let model = component(&report, "model").clone();
    assert_eq!(model["status"], "unhealthy");
    assert!(
        model["reason"].as_str().unwrap().contains("damaged"),
        "{model}"
    );
    let out = forecast(&ws, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("damaged"), "{}", stderr(&out));
}

/// Defect 1: a month stored with --allow-incomplete-month became the hold-out and a
/// target with its incomplete sales, and the forecast month moved past it.
#[test]
fn a_partial_month_changes_neither_the_forecast_month_nor_the_forecast() {
    let (plain, plain_id) = trained(true);
    let ws = Workspace::with_sample(TINY, true);
    // Half of November: the snapshot of 15 November, no sales yet.
    let stock = ws.path("stock_2026-11-15.xlsx");
    std::fs::copy(sample().join("next/stock_2026-11-01.xlsx"), &stock).unwrap();
    write_csv(&ws.path("sales_2026-11.csv"), &SALES_HEADER, &[], ',');
    let out = ws
        .plastinka()
        .args(["--json", "upload", "--allow-incomplete-month", "--stock"])
        .arg(&stock)
        .arg("--sales")
        .arg(ws.path("sales_2026-11.csv"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(json(&out)["last_month_complete"], false);
    let out = ws.plastinka().args(["--json", "train"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("2026-11 is stored partial"),
        "{}",
        stderr(&out)
    );
    let summary = json(&out);
    assert_eq!(summary["forecast_month"], "2026-11");
    assert_eq!(summary["metrics"]["holdout_month"], "2026-10");
    let id = summary["model_id"].as_str().unwrap();
    assert_eq!(
        stored(&ws, id, "2026-11"),
        stored(&plain, &plain_id, "2026-11")
    );
    // forecast from the stored model ignores the partial month too…
    let out = forecast(&ws, &[]);
    assert_eq!(json(&out)["forecast_month"], "2026-11");
    // …and health counts the model as current: it has seen every complete month.
    let out = ws.plastinka().args(["--json", "health"]).output().unwrap();
    let model = component(&json(&out), "model").clone();
    assert_eq!(model["details"]["months_behind_data"], 0, "{model}");
}

/// A model stored while an upload changed the data would be labelled with data it never
/// saw: the save checks, inside its write, that the months are still the ones it read.
#[test]
fn an_upload_landing_during_training_makes_the_save_refuse() {
    let ws = Workspace::with_sample(TINY, false);
    let train = ws
        .process()
        .env("PLASTINKA_PAUSE", "train-save:4000")
        .arg("train")
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    ws.upload(
        &sample().join("next/stock_2026-11-01.xlsx"),
        &sample().join("next"),
    );
    let out = train.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("changed while this command ran"),
        "{}",
        stderr(&out)
    );
    assert_eq!(ws.sql("SELECT count(*) FROM models"), 0);
}

/// Relabelled attributes (new price edges, every product re-uploaded) match none of the
/// classes a stored model knows: its forecast would silently ignore the price.
#[test]
fn a_model_whose_classes_no_longer_exist_is_refused() {
    let (ws, _) = trained(false);
    std::fs::write(
        ws.path("plastinka.toml"),
        format!("{TINY}[data]\nprice_category_edges = [1111.0, 2222.0, 99999.0]\n"),
    )
    .unwrap();
    let sample = sample();
    ws.upload(&sample.join("stock_2026-10-01.xlsx"), &sample);
    let out = forecast(&ws, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("price_category classes") && err.contains("[data] settings changed"),
        "{err}"
    );
}
