//! Helpers for end-to-end tests: shop exports written on the fly, the real binary run on them.
#![allow(dead_code)]

pub mod fake_datasphere;
pub mod shop;

use assert_cmd::Command;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The day the tests act on (`--as-of`), so no test depends on the wall clock.
pub const TODAY: &str = "2026-11-28";

pub const SALES_HEADER: [&str; 11] = [
    "Штрихкод",
    "Исполнитель",
    "Альбом",
    "Конверт",
    "Цена, руб.",
    "Тип",
    "Год записи",
    "Год выпуска",
    "Стиль",
    "Дата создания",
    "Дата заказа",
];
pub const STOCK_HEADER: [&str; 11] = [
    "Штрихкод",
    "Исполнитель",
    "Альбом",
    "Конверт",
    "Цена, руб.",
    "Тип",
    "Год записи",
    "Год выпуска",
    "Стиль",
    "Дата создания",
    "Экземпляры",
];

pub type Row = Vec<String>;

/// One copy sold: `created` and `sold` as the export writes them (dd.mm.yyyy).
pub fn sale(barcode: &str, album: &str, price: &str, created: &str, sold: &str) -> Row {
    [
        barcode,
        "Кино",
        album,
        "SS",
        price,
        "Оригинал",
        "1988",
        "1988",
        "Rock",
        created,
        sold,
    ]
    .map(String::from)
    .to_vec()
}

/// `copies` copies on the shelf that arrived on `created`.
pub fn stock(barcode: &str, album: &str, price: &str, created: &str, copies: &str) -> Row {
    [
        barcode,
        "Кино",
        album,
        "SS",
        price,
        "Оригинал",
        "1988",
        "1988",
        "Rock",
        created,
        copies,
    ]
    .map(String::from)
    .to_vec()
}

pub fn write_csv(path: &Path, header: &[&str], rows: &[Row], separator: char) {
    let line = |fields: &mut dyn Iterator<Item = &str>| {
        let quoted: Vec<String> = fields
            .map(|f| {
                if f.contains(separator) {
                    format!("\"{f}\"")
                } else {
                    f.to_string()
                }
            })
            .collect();
        quoted.join(&separator.to_string()) + "\n"
    };
    let mut text = line(&mut header.iter().copied());
    for row in rows {
        text.push_str(&line(&mut row.iter().map(String::as_str)));
    }
    std::fs::write(path, text).unwrap();
}

/// An .xlsx with the rows as text cells, plus `extra_sheets` empty sheets.
pub fn write_xlsx(path: &Path, header: &[&str], rows: &[Row], extra_sheets: usize) {
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    for (c, h) in header.iter().enumerate() {
        sheet.write_string(0, c as u16, *h).unwrap();
    }
    for (r, row) in rows.iter().enumerate() {
        for (c, value) in row.iter().enumerate() {
            sheet.write_string(r as u32 + 1, c as u16, value).unwrap();
        }
    }
    for _ in 0..extra_sheets {
        book.add_worksheet();
    }
    book.save(path).unwrap();
}

pub struct Workspace {
    pub dir: tempfile::TempDir,
}

impl Workspace {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn db(&self) -> PathBuf {
        self.path("store.db")
    }

    /// The binary with this workspace's database and day, no settings file, and none of
    /// the caller's `PLASTINKA_*` or Yandex Cloud variables.
    pub fn plastinka(&self) -> Command {
        let mut cmd = Command::cargo_bin("plastinka").unwrap();
        cmd.current_dir(self.dir.path());
        for name in foreign_env() {
            cmd.env_remove(name);
        }
        cmd.env("PLASTINKA_DB", self.db())
            .env("PLASTINKA_AS_OF", TODAY);
        cmd
    }

    /// The same as a plain process, to spawn and not wait for (its stdout and stderr
    /// piped).
    pub fn process(&self) -> std::process::Command {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_plastinka"));
        cmd.current_dir(self.dir.path());
        clear_env(&mut cmd);
        cmd.env("PLASTINKA_DB", self.db())
            .env("PLASTINKA_AS_OF", TODAY)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        cmd
    }

    /// Every file of the database — the file and its `-journal`, `-wal` and `-shm`
    /// companions — with its bytes (absent files are left out), to prove nothing changed.
    pub fn db_bytes(&self) -> BTreeMap<String, Vec<u8>> {
        let mut files = BTreeMap::new();
        for suffix in ["", "-journal", "-wal", "-shm"] {
            let path = format!("{}{suffix}", self.db().display());
            if let Ok(bytes) = std::fs::read(&path) {
                files.insert(suffix.to_string(), bytes);
            }
        }
        files
    }

    /// Names of the files in the workspace directory whose name mentions the database.
    pub fn db_litter(&self) -> Vec<String> {
        let name = self
            .db()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let mut found: Vec<String> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(&name))
            .collect();
        found.sort();
        found
    }

    pub fn sql(&self, query: &str) -> i64 {
        let conn = rusqlite::Connection::open(self.db()).unwrap();
        conn.query_row(query, [], |row| row.get(0)).unwrap()
    }
}

/// The caller's plastinka settings and cloud credentials: removed from every command a
/// test runs, so a developer's shell cannot change what a test sees.
pub fn foreign_env() -> Vec<String> {
    std::env::vars()
        .map(|(name, _)| name)
        .filter(|name| name.starts_with("PLASTINKA_") || name.starts_with("YC_"))
        .collect()
}

/// Removes [`foreign_env`] from a plain process.
pub fn clear_env(cmd: &mut std::process::Command) {
    for name in foreign_env() {
        cmd.env_remove(name);
    }
}

/// Path of the shipped sample data.
pub fn sample() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/sample")
}

pub fn json(output: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

pub fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A small model that trains on the sample in about a second and beats the baselines.
/// Every baseline's name, in the order train, reports and backtests list them.
pub const BASELINES: [&str; 9] = [
    "last_month",
    "same_month_last_year",
    "mean_of_last_3_months",
    "croston_sba",
    "tsb",
    "imapa",
    "croston_sba_empirical",
    "tsb_empirical",
    "imapa_empirical",
];

pub const SMALL_MODEL: &str = "[model]\nhidden_size = 32\nnum_encoder_layers = 1\nnum_decoder_layers = 1\ndecoder_output_dim = 8\ntemporal_decoder_hidden = 8\n[training]\nmax_epochs = 30\npatience = 5\n";

impl Workspace {
    /// Uploads the sample history (and, with `next`, its newest month) into this
    /// workspace's database, with `settings` as ./plastinka.toml.
    pub fn with_sample(settings: &str, next: bool) -> Self {
        let ws = Workspace::new();
        std::fs::write(ws.path("plastinka.toml"), settings).unwrap();
        let sample = sample();
        let mut sets = vec![(sample.join("stock_2026-10-01.xlsx"), sample.clone())];
        if next {
            sets.push((
                sample.join("next/stock_2026-11-01.xlsx"),
                sample.join("next"),
            ));
        }
        for (stock, sales) in sets {
            ws.upload(&stock, &sales);
        }
        ws
    }

    pub fn upload(&self, stock: &Path, sales: &Path) {
        let out = self
            .plastinka()
            .args(["upload", "--stock"])
            .arg(stock)
            .arg("--sales")
            .arg(sales)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
    }

    /// Trains and returns the model id.
    pub fn train(&self) -> String {
        let out = self.plastinka().args(["--json", "train"]).output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        json(&out)["model_id"].as_str().unwrap().to_string()
    }
}

/// `upload --json --stock STOCK [--sales SALES…] EXTRA…` in the workspace.
pub fn upload(
    ws: &Workspace,
    stock: &Path,
    sales: &[PathBuf],
    extra: &[&str],
) -> std::process::Output {
    let mut cmd = ws.plastinka();
    cmd.args(["--json", "upload", "--stock"]).arg(stock);
    if !sales.is_empty() {
        cmd.arg("--sales").args(sales);
    }
    cmd.args(extra).output().unwrap()
}

/// The named component of a `health --json` report.
pub fn component<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    report["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no component «{name}» in {report}"))
}

/// The JSON summary of a run that must succeed.
pub fn ok(out: &std::process::Output) -> serde_json::Value {
    assert!(out.status.success(), "{}", stderr(out));
    json(out)
}

/// A run refused as bad input (exit 2) whose message holds every needle.
pub fn refused(out: &std::process::Output, needles: &[&str]) {
    assert_eq!(out.status.code(), Some(2), "{}", stderr(out));
    let err = stderr(out);
    for needle in needles {
        assert!(err.contains(needle), "«{needle}» missing from: {err}");
    }
}

/// The first day of a month.
pub fn first_of(year: i32, month: u32) -> chrono::NaiveDate {
    chrono::NaiveDate::from_ymd_opt(year, month, 1).unwrap()
}
