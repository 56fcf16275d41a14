//! The one-command monthly cycle (`plastinka quickstart`) and the cron script.

mod common;
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
    for file in ["plastinka.db", "forecast.xlsx", "forecast.csv"] {
        assert!(dir.join(file).is_file(), "{file}");
    }
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

#[test]
fn the_cron_script_runs_a_month_and_keeps_a_log() {
    let ws = Workspace::new();
    std::fs::write(ws.path("small.toml"), SMALL_MODEL).unwrap();
    let sample = sample();
    // history first, as an operator would have done once
    ws.upload(&sample.join("stock_2026-10-01.xlsx"), &sample);
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/monthly-cron.sh");
    let reports = ws.path("reports");
    let out = std::process::Command::new("bash")
        .arg(&script)
        .arg(sample.join("next"))
        .arg(&reports)
        .env("PLASTINKA", env!("CARGO_BIN_EXE_plastinka"))
        .env("PLASTINKA_DB", ws.db())
        .env("PLASTINKA_CONFIG", ws.path("small.toml"))
        .output()
        .unwrap();
    let log = std::fs::read_dir(reports.join("logs"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let log_text = std::fs::read_to_string(&log).unwrap();
    assert!(out.status.success(), "{log_text}");
    assert!(
        log_text.contains("upload") && log_text.contains("Trained model"),
        "{log_text}"
    );
    assert!(
        std::fs::read_dir(&reports).unwrap().any(|e| e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .ends_with(".xlsx"))
    );
    // a broken inbox stops the script with the upload's exit code
    let empty = ws.path("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let status = std::process::Command::new("bash")
        .arg(&script)
        .arg(&empty)
        .arg(&reports)
        .env("PLASTINKA", env!("CARGO_BIN_EXE_plastinka"))
        .env("PLASTINKA_DB", ws.db())
        .status()
        .unwrap();
    assert!(!status.success());
}
