//! Kills `upload`, `train` and `forecast` with SIGKILL at random moments and checks that
//! the database survives every kill: `PRAGMA integrity_check` is ok, the logical content
//! is exactly the state before the command or the state after it, and the next run of
//! the command succeeds and lands on the state after.
//!
//! ```text
//! cargo build --release --bins --examples
//! $CARGO_TARGET_DIR/release/examples/crash_harness --kills 50 --products 600 --months 18
//! ```
//!
//! "The state after" is what an uninterrupted run of the same command from the same
//! state stores. Columns that differ between two clean runs — timestamps, the random
//! model id, measured seconds, and burn's random parameter ids inside the weights — are
//! left out of the comparison; forecasts, metrics' values and every stored row are in.

mod common;

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use rusqlite::Connection;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A tiny model so a train takes seconds (the harness is about the writes, not the fit).
const SETTINGS: &str = "[model]\nlags = 6\nhidden_size = 64\nnum_encoder_layers = 1\nnum_decoder_layers = 1\ndecoder_output_dim = 16\ntemporal_decoder_hidden = 8\n[training]\nmax_epochs = 8\npatience = 8\n";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let kills: usize = common::arg("--kills", "50").parse()?;
    let products = common::arg("--products", "3000");
    let months = common::arg("--months", "24");
    let seed: u64 = common::arg("--seed", "7").parse()?;
    let binary = std::env::current_exe()?
        .parent()
        .and_then(Path::parent)
        .map(|d| d.join("plastinka"))
        .ok_or("no binary directory")?;
    if !binary.is_file() {
        return Err(format!(
            "{} is missing: cargo build --release --bins",
            binary.display()
        )
        .into());
    }
    let dir = tempfile::tempdir()?;
    // The generator writes the newest month apart (data/next) with its own snapshot.
    let data = dir.path().join("data");
    let status = Command::new(std::env::current_exe()?.with_file_name("generate"))
        .args([
            "--products",
            &products,
            "--months",
            &months,
            "--holdout",
            "1",
            "--format",
            "csv",
            "--out",
        ])
        .arg(&data)
        .status()?;
    if !status.success() {
        return Err("the generator failed".into());
    }
    std::fs::write(dir.path().join("plastinka.toml"), SETTINGS)?;
    let tool = Tool {
        binary,
        dir: dir.path().to_path_buf(),
    };
    // The first upload creates the database; then train on the history, upload the
    // newest month and forecast it from the stored model: each step changes the database,
    // so each kill has two states to land on.
    let steps: [(&str, Vec<String>); 4] = [
        ("first upload", upload_args(&data)?),
        ("train", vec!["train".into()]),
        ("upload", upload_args(&data.join("next"))?),
        ("forecast", vec!["forecast".into()]),
    ];
    let mut rng = StdRng::seed_from_u64(seed);
    let mut state: Option<PathBuf> = None;
    println!(
        "crash harness: {products} products × {months} months, {kills} kills per command (SIGKILL)"
    );
    for (k, (name, args)) in steps.iter().enumerate() {
        let clean = dir.path().join(format!("step{k}-clean.db"));
        let place = |db: &Path| -> std::io::Result<()> {
            match &state {
                Some(from) => std::fs::copy(from, db).map(|_| ()),
                None => Ok(()),
            }
        };
        let before = dump(state.as_deref().unwrap_or(&clean))?;
        place(&clean)?;
        let (full, writing) = tool.timed(&clean, args)?;
        let after = dump(&clean)?;
        if after == before {
            return Err(format!("{name} changed nothing: the harness would prove nothing").into());
        }
        let (mut at_before, mut at_after) = (0, 0);
        for kill in 0..kills {
            let db = dir.path().join(format!("step{k}-{kill}.db"));
            place(&db)?;
            // Half the kills at a random moment of the whole run, half at a random moment
            // of its write (from taking the writer lock to the end), where a kill can hurt.
            let in_write = kill % 2 == 1;
            let span = if in_write { writing } else { full };
            let wait = span.mul_f64(rng.random_range(0.0..1.05));
            tool.kill_after(&db, args, in_write, wait)?;
            let at = format!("{name}, kill {kill} at {wait:?}");
            // plastinka's own read path first: it must open whatever the kill left,
            // completing SQLite's rollback of a killed write itself.
            if db.exists() {
                tool.check_health(&db).map_err(|e| format!("{at}: {e}"))?;
                let check = integrity(&db)?;
                if check != "ok" {
                    return Err(format!("{at}: integrity_check says {check}").into());
                }
            }
            let now = dump(&db)?;
            let was_before = now == before;
            if was_before {
                at_before += 1;
            } else if now == after {
                at_after += 1;
            } else {
                return Err(
                    format!("{at}: the database is neither the state before nor after").into(),
                );
            }
            // The next run succeeds; from the state before it lands on the state after.
            tool.run(&db, args)?;
            if was_before && dump(&db)? != after {
                return Err(format!("{at}: the next run did not reach the state after").into());
            }
            remove_database(&db);
        }
        println!(
            "  {name:<12} clean run {:>5.2} s (writing {:>4.2} s); {kills} kills: {at_before} left the state before, {at_after} the state after, 0 damaged; every next run succeeded",
            full.as_secs_f64(),
            writing.as_secs_f64()
        );
        state = Some(clean);
    }
    Ok(())
}

struct Tool {
    binary: PathBuf,
    dir: PathBuf,
}

impl Tool {
    fn command(&self, db: &Path, args: &[String]) -> Command {
        let mut cmd = Command::new(&self.binary);
        for (name, _) in std::env::vars() {
            if name.starts_with("PLASTINKA_") || name.starts_with("YC_") {
                cmd.env_remove(name);
            }
        }
        cmd.current_dir(&self.dir)
            .env("PLASTINKA_DB", db)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        cmd
    }

    fn run(&self, db: &Path, args: &[String]) -> Result<(), Box<dyn std::error::Error>> {
        let status = self.command(db, args).status()?;
        if !status.success() {
            return Err(format!(
                "plastinka {} failed ({status}) on {}",
                args.join(" "),
                db.display()
            )
            .into());
        }
        Ok(())
    }

    /// `plastinka health` (read-only) must open the database and find it sound.
    fn check_health(&self, db: &Path) -> Result<(), String> {
        let out = self
            .command(db, &["--json".into(), "health".into()])
            .stdout(Stdio::piped())
            .output()
            .map_err(|e| e.to_string())?;
        let report: serde_json::Value = serde_json::from_slice(&out.stdout)
            .map_err(|e| format!("health said no JSON ({e})"))?;
        match report["components"][0]["status"].as_str() {
            Some("healthy") => Ok(()),
            other => Err(format!(
                "health finds the database {other:?}: {}",
                report["components"][0]
            )),
        }
    }

    /// Runs to the end; returns the whole run's time and the time from taking the
    /// writer lock to the end.
    fn timed(
        &self,
        db: &Path,
        args: &[String],
    ) -> Result<(Duration, Duration), Box<dyn std::error::Error>> {
        let started = Instant::now();
        let mut child = self.command(db, args).spawn()?;
        let locked = wait_for_lock(db, child.id(), &mut child)?;
        let status = child.wait()?;
        if !status.success() {
            return Err(format!("plastinka {} failed ({status})", args.join(" ")).into());
        }
        let full = started.elapsed();
        Ok((full, full - locked.unwrap_or(Duration::ZERO).min(full)))
    }

    /// Starts the command and kills it (SIGKILL) `wait` after its start, or after it took
    /// the writer lock when `in_write`.
    fn kill_after(
        &self,
        db: &Path,
        args: &[String],
        in_write: bool,
        wait: Duration,
    ) -> Result<(), Box<dyn std::error::Error>> {
        let mut child = self.command(db, args).spawn()?;
        if in_write {
            wait_for_lock(db, child.id(), &mut child)?;
        }
        std::thread::sleep(wait);
        let _ = child.kill(); // it may have finished already
        child.wait()?;
        Ok(())
    }
}

/// Polls the lock file until it names `pid` (or the process ends); the time it took.
fn wait_for_lock(
    db: &Path,
    pid: u32,
    child: &mut std::process::Child,
) -> Result<Option<Duration>, Box<dyn std::error::Error>> {
    let started = Instant::now();
    let lock = PathBuf::from(format!("{}.lock", db.display()));
    let needle = format!("(pid {pid},");
    loop {
        if std::fs::read_to_string(&lock).is_ok_and(|t| t.contains(&needle)) {
            return Ok(Some(started.elapsed()));
        }
        if child.try_wait()?.is_some() {
            return Ok(None);
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}

fn upload_args(dir: &Path) -> Result<Vec<String>, Box<dyn std::error::Error>> {
    let stock = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("stock_"))
        })
        .ok_or("no stock file")?;
    Ok(vec![
        "upload".into(),
        "--stock".into(),
        stock.display().to_string(),
        "--sales".into(),
        dir.display().to_string(),
    ])
}

fn integrity(db: &Path) -> Result<String, Box<dyn std::error::Error>> {
    // Read-only: a hot journal must already be gone (plastinka's read path rolled it back).
    let conn = Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    Ok(conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))?)
}

/// Columns that differ between two clean runs of the same command.
const VOLATILE: [&str; 7] = [
    "created_at",
    "weights",
    "weights_sha256",
    "training_seconds",
    "metrics_json",
    "model_id",
    "id",
];

/// Every table's rows as text, volatile columns left out, in a fixed order.
fn dump(db: &Path) -> Result<Vec<String>, Box<dyn std::error::Error>> {
    if !db.exists() {
        return Ok(vec!["(no database)".into()]);
    }
    let conn = Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut out = Vec::new();
    for table in tables {
        let columns: Vec<String> = conn
            .prepare(&format!("SELECT name FROM pragma_table_info('{table}')"))?
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        let kept: Vec<&String> = columns
            .iter()
            .filter(|c| {
                !(table == "models" || table.starts_with("forecast"))
                    || !VOLATILE.contains(&c.as_str())
            })
            .filter(|c| !(table == "uploads" && c.as_str() == "created_at"))
            .collect();
        let list = kept
            .iter()
            .map(|c| format!("\"{c}\""))
            .collect::<Vec<_>>()
            .join(", ");
        let mut stmt = conn.prepare(&format!("SELECT {list} FROM \"{table}\" ORDER BY {list}"))?;
        let n = stmt.column_count();
        let rows = stmt.query_map([], |row| {
            Ok((0..n)
                .map(|i| {
                    format!(
                        "{:?}",
                        row.get_ref(i).map(|v| format!("{v:?}")).unwrap_or_default()
                    )
                })
                .collect::<Vec<_>>()
                .join("|"))
        })?;
        for row in rows {
            out.push(format!("{table}: {}", row?));
        }
    }
    // The metrics' values (not their timings) are part of the state.
    let metrics: Vec<String> = conn
        .prepare("SELECT metrics_json FROM models ORDER BY forecast_month")?
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<Result<_, _>>()?;
    for m in metrics {
        let mut value: serde_json::Value = serde_json::from_str(&m)?;
        for key in ["seconds_per_epoch", "windows_per_second"] {
            value.as_object_mut().map(|o| o.remove(key));
        }
        out.push(format!("metrics: {value}"));
    }
    Ok(out)
}

fn remove_database(db: &Path) {
    let _ = std::fs::remove_file(db);
    for suffix in ["-journal", ".lock"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
}

// A killed first upload leaves its temporary `.NAME.creating-PID` file; the next run's
// removes it (it holds the writer lock, so nobody else is creating the database).
