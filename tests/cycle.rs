//! The one-command monthly cycle (`plastinka quickstart`) and the cron script.

mod common;
use calamine::Reader;
use common::*;

#[test]
fn quickstart_runs_the_whole_cycle_into_a_fresh_directory() {
    let ws = Workspace::new();
    std::fs::write(ws.path("small.toml"), SMALL_MODEL).unwrap();
    let dir = ws.path("qs");
    let out = ws
        .plastinka()
        .env_remove("PLASTINKA_DB")
        .env("PLASTINKA_CONFIG", ws.path("small.toml"))
        .args(["quickstart", "--sample"])
        .arg(sample())
        .arg("--dir")
        .arg(&dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    for step in [
        "1/5 upload",
        "3/5 health",
        "4/5 train",
        "5/5 report",
        "Everything is in",
    ] {
        assert!(text.contains(step), "{step}: {text}");
    }
    // The reports hold the whole stored forecast, not just a file name.
    let conn = rusqlite::Connection::open(dir.join("plastinka.db")).unwrap();
    let products: i64 = conn
        .query_row(
            "SELECT count(DISTINCT product_id) FROM forecasts f JOIN models m ON m.id = f.model_id AND m.active = 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(products > 100, "{products}");
    let products = products as usize;
    let csv = std::fs::read_to_string(dir.join("forecast.csv")).unwrap();
    assert_eq!(
        csv.lines().count(),
        products + 1,
        "header + one row per product"
    );
    assert!(csv.lines().next().unwrap().contains("reorder_units"));
    let mut book: calamine::Xlsx<_> = calamine::open_workbook(dir.join("forecast.xlsx")).unwrap();
    let sheet = book.worksheet_range_at(0).unwrap().unwrap();
    assert_eq!(sheet.height(), products + 1);
    // …and the screen shows the 15 records most worth reordering.
    assert!(text.contains("reorder_units"), "{text}");
    // a second run into the same directory is refused rather than mixing two cycles
    let out = ws
        .plastinka()
        .env("PLASTINKA_CONFIG", ws.path("small.toml"))
        .args(["quickstart", "--dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// The cron script runs a month end to end — a month whose last day had no sale, with
/// the snapshot dated in its file name — and stops at the first failure.
#[test]
fn the_cron_script_runs_a_month_and_keeps_a_log() {
    let ws = Workspace::new();
    std::fs::write(
        ws.path("small.toml"),
        "[model]\nlags = 3\nhidden_size = 16\nnum_encoder_layers = 1\nnum_decoder_layers = 1\ndecoder_output_dim = 8\ntemporal_decoder_hidden = 8\n[training]\nmax_epochs = 3\npatience = 2\n",
    )
    .unwrap();
    let first = chrono::NaiveDate::from_ymd_opt(2026, 4, 1).unwrap();
    let mut sim = common::shop::simulate(40, 7, first, 21);
    // October: nothing sold on the 31st (the old default snapshot date made it "unfinished").
    sim.sales[6].retain(|row| row[10] != "31.10.2026");
    let history = ws.path("history");
    std::fs::create_dir(&history).unwrap();
    for k in 0..6 {
        sim.write_sales(k, &history);
    }
    ws.upload(&sim.write_snapshot(5, &history), &history);
    let inbox = ws.path("inbox");
    std::fs::create_dir(&inbox).unwrap();
    sim.write_sales(6, &inbox);
    sim.write_snapshot(6, &inbox); // stock_2026-11-01.csv
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/monthly-cron.sh");
    let reports = ws.path("reports");
    let run = |inbox: &std::path::Path| {
        let mut cmd = std::process::Command::new("bash");
        cmd.arg(&script).arg(inbox).arg(&reports);
        clear_env(&mut cmd);
        cmd.env("PLASTINKA", env!("CARGO_BIN_EXE_plastinka"))
            .env("PLASTINKA_DB", ws.db())
            .env("PLASTINKA_AS_OF", TODAY)
            .env("PLASTINKA_CONFIG", ws.path("small.toml"))
            .output()
            .unwrap()
    };
    let out = run(&inbox);
    let log_path = std::fs::read_dir(reports.join("logs"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let log = std::fs::read_to_string(&log_path).unwrap();
    // The last step is health after training: on a 40-record toy shop the model may well
    // not beat the baselines, and then the script says so with health's exit 1.
    let after = log.split("-- health after training").nth(1).unwrap_or("");
    match out.status.code() {
        Some(0) => assert!(log.contains("done"), "{log}"),
        Some(1) => assert!(after.starts_with("\ndegraded"), "{log}"),
        other => panic!("exit {other:?}: {log}"),
    }
    // The month was stored by the script's upload, with the date from the file name…
    assert_eq!(ws.sql("SELECT count(*) FROM months"), 7);
    assert_eq!(
        ws.sql("SELECT count(*) FROM uploads WHERE stock_date = '2026-11-01'"),
        1
    );
    assert!(log.contains("Stored upload #2"), "{log}");
    // …a model was trained on it and forecasts November…
    assert_eq!(
        ws.sql("SELECT count(*) FROM models WHERE active = 1 AND last_month = '2026-10' AND forecast_month = '2026-11'"),
        1
    );
    // …and both reports hold its forecast.
    let products = ws.sql("SELECT count(DISTINCT product_id) FROM forecasts") as usize;
    let report = |extension: &str| {
        std::fs::read_dir(&reports)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|e| e == extension))
            .unwrap_or_else(|| panic!("no .{extension} report"))
    };
    let csv = std::fs::read_to_string(report("csv")).unwrap();
    assert_eq!(csv.lines().count(), products + 1);
    assert!(report("xlsx").is_file());

    // A broken inbox stops the script with the upload's exit code, before training.
    let empty = ws.path("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let models = ws.sql("SELECT count(*) FROM models");
    let out = run(&empty);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(ws.sql("SELECT count(*) FROM models"), models);
}
