//! End-to-end tests of `plastinka train` and `plastinka models` on the sample data,
//! with a tiny model so the suite stays fast.

mod common;
use common::*;

const TINY: &str = "[model]\nhidden_size = 16\nnum_encoder_layers = 1\nnum_decoder_layers = 1\ndecoder_output_dim = 8\ntemporal_decoder_hidden = 8\n[training]\nmax_epochs = 3\npatience = 2\n";

fn uploaded() -> Workspace {
    let ws = Workspace::new();
    std::fs::write(ws.path("plastinka.toml"), TINY).unwrap();
    let sample = sample();
    let out = ws
        .plastinka()
        .args(["upload", "--stock"])
        .arg(sample.join("stock_2026-10-01.xlsx"))
        .arg("--sales")
        .arg(&sample)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    ws
}

fn train(ws: &Workspace, extra: &[&str]) -> std::process::Output {
    ws.plastinka()
        .args(["--json", "train"])
        .args(extra)
        .output()
        .unwrap()
}

/// `train --json` with one setting from the environment.
fn train_with(ws: &Workspace, variable: &str, value: &str) -> std::process::Output {
    ws.plastinka()
        .env(variable, value)
        .args(["--json", "train"])
        .output()
        .unwrap()
}

/// `forecast` from the active model's stored weights stores exactly `expected` again.
fn forecasting_again_gives(ws: &Workspace, model: &str, expected: &[(i64, f64, f64)]) {
    let out = ws
        .plastinka()
        .args(["--json", "forecast"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(forecasts(ws, model), expected);
}

fn forecasts(ws: &Workspace, model: &str) -> Vec<(i64, f64, f64)> {
    let conn = rusqlite::Connection::open(ws.db()).unwrap();
    let mut stmt = conn
        .prepare("SELECT product_id, quantile, units FROM forecasts WHERE model_id = ?1 ORDER BY product_id, quantile")
        .unwrap();
    stmt.query_map([model], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[test]
fn a_run_stores_its_model_forecasts_and_metrics() {
    let ws = uploaded();
    let out = train(&ws, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let summary = json(&out);
    let id = summary["model_id"].as_str().unwrap().to_string();
    assert_eq!(summary["forecast_month"], "2026-10");
    // every product with a stored row gets a forecast, five quantiles each
    let products = ws.sql("SELECT count(DISTINCT product_id) FROM monthly_features");
    assert_eq!(summary["forecasts"].as_i64(), Some(products));
    let rows = forecasts(&ws, &id);
    assert_eq!(rows.len() as i64, products * 5);
    for pair in rows.windows(2).filter(|w| w[0].0 == w[1].0) {
        assert!(pair[0].2 <= pair[1].2, "quantiles cross: {pair:?}");
    }
    assert!(rows.iter().all(|r| r.2 >= 0.0));
    let metrics = &summary["metrics"];
    assert_eq!(metrics["holdout_month"], "2026-09");
    for key in [
        "miws",
        "mic",
        "miws_mic_ratio",
        "pinball",
        "wape",
        "coverage",
        "coverage_inner",
    ] {
        assert!(metrics["validation"][key].is_number(), "{key}: {metrics}");
    }
    let names: Vec<&str> = metrics["baselines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, BASELINES);
    assert_eq!(
        ws.sql("SELECT count(*) FROM models WHERE active = 1 AND length(weights) > 1000"),
        1
    );
    // progress went to stderr as plain lines (not a terminal)
    assert!(
        stderr(&out).contains("phase 1 epoch 1/3"),
        "{}",
        stderr(&out)
    );
}

/// Sales are whole copies: the held-out month chose whole-copy forecasts (its offset is
/// in the metrics), every stored quantile is whole, and `forecast` from the stored model
/// applies the same rounding. Switched off, the forecasts keep their fractions.
#[test]
fn forecasts_are_whole_copies_when_the_held_out_month_says_so() {
    let ws = uploaded();
    let out = train(&ws, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let summary = json(&out);
    let offset = summary["metrics"]["whole_copies"]["offset"]
        .as_f64()
        .unwrap_or_else(|| panic!("no whole-copy offset: {}", summary["metrics"]));
    assert!((0.0..=1.0).contains(&offset), "{offset}");
    let id = summary["model_id"].as_str().unwrap().to_string();
    let whole = forecasts(&ws, &id);
    assert!(whole.iter().all(|r| r.2.fract() == 0.0), "{whole:?}");
    forecasting_again_gives(&ws, &id, &whole);

    let out = train_with(&ws, "PLASTINKA_MODEL_WHOLE_COPIES", "false");
    assert!(out.status.success(), "{}", stderr(&out));
    let summary = json(&out);
    assert!(summary["metrics"]["whole_copies"].is_null());
    let id = summary["model_id"].as_str().unwrap().to_string();
    let fractional = forecasts(&ws, &id);
    assert!(fractional.iter().any(|r| r.2.fract() != 0.0));
    // The same network underneath: rounding moved no quantile by more than a copy.
    for (w, f) in whole.iter().zip(&fractional) {
        assert_eq!((w.0, w.1), (f.0, f.1));
        assert!((w.2 - f.2).abs() <= 1.0, "{w:?} vs {f:?}");
    }
}

/// With the demand covariates off (as in every model stored before they became the
/// default), a model trains, is stored, and `forecast` reproduces its forecast from the
/// stored weights (which read 11 past covariates per month, not the default 13).
#[test]
fn a_model_without_the_demand_covariates_forecasts_again_from_its_weights() {
    let ws = uploaded();
    let out = train_with(&ws, "PLASTINKA_MODEL_DEMAND_COVARIATES", "false");
    assert!(out.status.success(), "{}", stderr(&out));
    let id = json(&out)["model_id"].as_str().unwrap().to_string();
    let stored = forecasts(&ws, &id);
    assert!(!stored.is_empty());
    let settings: String = rusqlite::Connection::open(ws.db())
        .unwrap()
        .query_row("SELECT config_json FROM models WHERE id = ?1", [&id], |r| {
            r.get(0)
        })
        .unwrap();
    assert!(
        settings.contains("\"demand_covariates\":false"),
        "{settings}"
    );
    forecasting_again_gives(&ws, &id, &stored);
}

#[test]
fn the_same_seed_gives_the_same_forecast_and_models_can_be_switched() {
    let ws = uploaded();
    let first = json(&train(&ws, &[]))["model_id"]
        .as_str()
        .unwrap()
        .to_string();
    let out = train(&ws, &["--no-activate"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let second = json(&out)["model_id"].as_str().unwrap().to_string();
    assert_ne!(first, second);
    assert_eq!(forecasts(&ws, &first), forecasts(&ws, &second));
    let active = |ws: &Workspace| {
        let conn = rusqlite::Connection::open(ws.db()).unwrap();
        conn.query_row("SELECT id FROM models WHERE active = 1", [], |r| {
            r.get::<_, String>(0)
        })
        .unwrap()
    };
    assert_eq!(active(&ws), first, "--no-activate keeps the active model");

    let out = ws
        .plastinka()
        .args(["models", "activate", &second])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(active(&ws), second);
    let out = ws
        .plastinka()
        .args(["models", "activate", "nope"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(active(&ws), second);

    let out = ws.plastinka().args(["--json", "models"]).output().unwrap();
    let list = json(&out);
    assert_eq!(list.as_array().unwrap().len(), 2);
    let out = ws.plastinka().arg("models").output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains(&second));
}

#[test]
fn a_failed_run_leaves_the_active_model_untouched() {
    let ws = uploaded();
    let first = json(&train(&ws, &[]))["model_id"]
        .as_str()
        .unwrap()
        .to_string();
    let before = ws.db_bytes();
    // The failure is injected inside the save, after the model row and half of the
    // forecasts were written: the transaction must take all of it back.
    let out = ws
        .plastinka()
        .env("PLASTINKA_FAULT", "model-save")
        .args(["train"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("injected fault at «model-save»"),
        "{}",
        stderr(&out)
    );
    assert_eq!(ws.db_bytes(), before);
    assert_eq!(ws.sql("SELECT count(*) FROM models"), 1);
    assert_eq!(
        ws.sql(&format!("SELECT active FROM models WHERE id = '{first}'")),
        1
    );
    // A refusal before training says why and changes nothing either.
    let out = ws
        .plastinka()
        .env("PLASTINKA_MODEL_LAGS", "30")
        .args(["train"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("at least 32 complete stored months"),
        "{}",
        stderr(&out)
    );
    assert_eq!(ws.db_bytes(), before);
}

#[test]
fn training_without_data_says_what_to_do() {
    let ws = Workspace::new();
    let out = ws.plastinka().arg("train").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("plastinka upload"),
        "{}",
        stderr(&out)
    );
    assert!(ws.db_litter().is_empty(), "{:?}", ws.db_litter());
}

#[test]
fn a_gpu_device_missing_from_the_build_is_named() {
    let ws = uploaded();
    let out = ws
        .plastinka()
        .env("PLASTINKA_TRAINING_DEVICE", "cuda")
        .arg("train")
        .output()
        .unwrap();
    if cfg!(feature = "cuda") {
        // A cuda build knows the device: the run goes through (or fails for want of a
        // GPU) — either way it must not claim the feature is missing.
        assert!(
            !stderr(&out).contains("--features cuda"),
            "{}",
            stderr(&out)
        );
        return;
    }
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("training.device") && err.contains("--features cuda"),
        "{err}"
    );
    assert_eq!(ws.sql("SELECT count(*) FROM models"), 0);
}
