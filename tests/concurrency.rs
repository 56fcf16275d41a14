//! Several processes on one database, and the files a command may leave: one writer at
//! a time (the second waits, then is refused naming the first), checks inside the
//! writing transaction, readers never blocked and never writing, a failed first write
//! leaving nothing, a closed stdout, and backups taken while others work.

mod common;
use chrono::NaiveDate;
use common::shop::simulate;
use common::*;
use std::time::{Duration, Instant};

fn first_of(y: i32, m: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, 1).unwrap()
}

/// The real binary as a child process (not waited for), with the workspace's settings.
fn spawn(ws: &Workspace, envs: &[(&str, &str)], args: &[&std::ffi::OsStr]) -> std::process::Child {
    ws.process()
        .envs(envs.iter().copied())
        .args(args)
        .spawn()
        .unwrap()
}

fn upload_args(stock: &std::path::Path, sales: &std::path::Path) -> Vec<std::ffi::OsString> {
    vec![
        "upload".into(),
        "--stock".into(),
        stock.into(),
        "--sales".into(),
        sales.into(),
    ]
}

fn refs(args: &[std::ffi::OsString]) -> Vec<&std::ffi::OsStr> {
    args.iter().map(|a| a.as_os_str()).collect()
}

/// Waits until `child` holds the writer lock (its pid is in the lock file).
fn wait_for_lock(ws: &Workspace, child: &std::process::Child) {
    let lock = ws.path("store.db.lock");
    let needle = format!("(pid {},", child.id());
    let started = Instant::now();
    while !std::fs::read_to_string(&lock).is_ok_and(|t| t.contains(&needle)) {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the writer never took the lock"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Defect 4: the laws were checked on one connection and written on another, so two
/// uploads into an empty store — January and March — both passed law 1 and left a gap.
#[test]
fn two_uploads_at_once_cannot_leave_a_gap() {
    let ws = Workspace::new();
    let dir = ws.dir.path();
    let sim = simulate(8, 3, first_of(2026, 1), 3);
    let jan = upload_args(&sim.write_snapshot(0, dir), &sim.write_sales(0, dir));
    let mar = upload_args(&sim.write_snapshot(2, dir), &sim.write_sales(2, dir));
    // January holds the lock inside its write for a while.
    let first = spawn(
        &ws,
        &[("PLASTINKA_PAUSE", "upload-write:1500")],
        &refs(&jan),
    );
    wait_for_lock(&ws, &first);
    let second = spawn(&ws, &[], &refs(&mar)).wait_with_output().unwrap();
    let first = first.wait_with_output().unwrap();
    assert!(first.status.success(), "{}", stderr(&first));
    // March waited for January, then saw it and refused the gap.
    assert_eq!(second.status.code(), Some(2), "{}", stderr(&second));
    let err = stderr(&second);
    assert!(err.contains("law 1") && err.contains("2026-02"), "{err}");
    assert_eq!(ws.sql("SELECT count(*) FROM months"), 1);
}

/// Defect 18: a second writer got a raw `database is locked`; it must wait a bounded time
/// and then name the command that holds the database. Readers keep working meanwhile.
#[test]
fn a_second_writer_is_refused_naming_the_first_while_readers_go_on() {
    let ws = Workspace::new();
    let dir = ws.dir.path();
    let sim = simulate(8, 2, first_of(2026, 1), 4);
    ws.upload(&sim.write_snapshot(0, dir), &sim.write_sales(0, dir));
    let feb = upload_args(&sim.write_snapshot(1, dir), &sim.write_sales(1, dir));
    let holder = spawn(
        &ws,
        &[("PLASTINKA_PAUSE", "upload-write:6000")],
        &refs(&feb),
    );
    wait_for_lock(&ws, &holder);
    let out = ws
        .plastinka()
        .env("PLASTINKA_DATABASE_LOCK_TIMEOUT_SECONDS", "1")
        .args(["models", "activate", "nope"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("is being written by `plastinka upload` (pid") && err.contains("waited 1 s"),
        "{err}"
    );
    assert!(!err.contains("database is locked"), "{err}");
    // health and report read while the upload holds the lock.
    let health = ws.plastinka().args(["--json", "health"]).output().unwrap();
    let report = json(&health);
    assert_eq!(report["components"][0]["status"], "healthy", "{report}");
    let holder = holder.wait_with_output().unwrap();
    assert!(holder.status.success(), "{}", stderr(&holder));
}

/// Defect 8: a failed first upload left a schema-only database file. The failure is
/// injected inside the write, after the rows went in.
#[test]
fn a_first_upload_failing_inside_its_write_leaves_nothing() {
    let ws = Workspace::new();
    let dir = ws.dir.path();
    let sim = simulate(8, 1, first_of(2026, 1), 5);
    let (stock, sales) = (sim.write_snapshot(0, dir), sim.write_sales(0, dir));
    let out = ws
        .plastinka()
        .env("PLASTINKA_FAULT", "upload-write")
        .args(["upload", "--stock"])
        .arg(&stock)
        .arg("--sales")
        .arg(&sales)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("injected fault"), "{}", stderr(&out));
    assert!(
        ws.db_litter().is_empty(),
        "left behind: {:?}",
        ws.db_litter()
    );
    // …and in a directory that did not exist, the directory goes too.
    let nested = ws.path("new/dir/store.db");
    let out = ws
        .plastinka()
        .env("PLASTINKA_DB", &nested)
        .env("PLASTINKA_FAULT", "commit")
        .args(["upload", "--stock"])
        .arg(&stock)
        .arg("--sales")
        .arg(&sales)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(!ws.path("new").exists());
    // The same upload without the fault succeeds, and a failing second one changes nothing.
    ws.upload(&stock, &sales);
    let before = ws.db_bytes();
    let out = ws
        .plastinka()
        .env("PLASTINKA_FAULT", "upload-write")
        .args(["upload", "--stock"])
        .arg(&stock)
        .arg("--sales")
        .arg(&sales)
        .arg("--accept-incoherent")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(ws.db_bytes(), before);
}

/// Defect 19: `health` left -wal/-shm files beside the database.
#[test]
fn read_only_commands_leave_the_directory_as_they_found_it() {
    let ws = Workspace::new();
    let dir = ws.dir.path();
    let sim = simulate(8, 1, first_of(2026, 1), 6);
    ws.upload(&sim.write_snapshot(0, dir), &sim.write_sales(0, dir));
    let listing = || {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    let before = (listing(), ws.db_bytes());
    for args in [vec!["health"], vec!["--json", "health"], vec!["models"]] {
        ws.plastinka().args(&args).output().unwrap();
        assert_eq!((listing(), ws.db_bytes()), before, "{args:?}");
    }
}

/// Defect 17: `plastinka upload … | head -1` panicked with exit 101 after committing. A
/// closed stdout stops the output, not the work, and not the exit status.
#[test]
fn a_closed_stdout_ends_quietly_after_the_work() {
    let ws = Workspace::new();
    let dir = ws.dir.path();
    let sim = simulate(8, 1, first_of(2026, 1), 8);
    let args = upload_args(&sim.write_snapshot(0, dir), &sim.write_sales(0, dir));
    let mut child = spawn(&ws, &[], &refs(&args));
    drop(child.stdout.take()); // the reader went away before a line was written
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
    assert_eq!(ws.sql("SELECT count(*) FROM months"), 1);
    // health keeps its own status: degraded (no model) is 1 with or without a reader.
    let mut child = spawn(&ws, &[], &[std::ffi::OsStr::new("health")]);
    drop(child.stdout.take());
    assert_eq!(child.wait_with_output().unwrap().status.code(), Some(1));
}

/// A database another program holds (a sqlite3 shell in a write) is waited for, then
/// named as locked — not a raw "database is locked: Error code 5".
#[test]
fn a_database_held_by_another_program_is_a_clear_error() {
    let ws = Workspace::new();
    let dir = ws.dir.path();
    let sim = simulate(8, 2, first_of(2026, 1), 12);
    ws.upload(&sim.write_snapshot(0, dir), &sim.write_sales(0, dir));
    let before = ws.db_bytes();
    let other = rusqlite::Connection::open(ws.db()).unwrap();
    other.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let out = ws
        .plastinka()
        .env("PLASTINKA_DATABASE_LOCK_TIMEOUT_SECONDS", "1")
        .args(["upload", "--stock"])
        .arg(sim.write_snapshot(1, dir))
        .arg("--sales")
        .arg(sim.write_sales(1, dir))
        .output()
        .unwrap();
    other.execute_batch("ROLLBACK").unwrap();
    drop(other);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    // The explanation leads; SQLite's own words may follow as the cause.
    assert!(
        err.starts_with(&format!("error: {} stayed locked", ws.db().display())),
        "{err}"
    );
    assert_eq!(ws.db_bytes(), before);
}

/// Databases written before this version are in WAL mode: they still read, and the first
/// write switches them to the rollback journal, after which readers leave no files.
#[test]
fn a_database_from_the_wal_days_is_read_and_converted_on_write() {
    let ws = Workspace::new();
    let dir = ws.dir.path();
    let sim = simulate(8, 2, first_of(2026, 1), 13);
    ws.upload(&sim.write_snapshot(0, dir), &sim.write_sales(0, dir));
    let conn = rusqlite::Connection::open(ws.db()).unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    drop(conn);
    let out = ws.plastinka().args(["--json", "models"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    ws.upload(&sim.write_snapshot(1, dir), &sim.write_sales(1, dir));
    let conn = rusqlite::Connection::open(ws.db()).unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "delete");
    drop(conn);
    let leftovers = |ws: &Workspace| -> Vec<String> {
        ws.db_litter()
            .into_iter()
            .filter(|n| n.ends_with("-wal") || n.ends_with("-shm"))
            .collect()
    };
    for f in leftovers(&ws) {
        std::fs::remove_file(ws.path(&f)).unwrap();
    }
    ws.plastinka().arg("health").output().unwrap();
    assert!(leftovers(&ws).is_empty(), "{:?}", leftovers(&ws));
}

#[test]
fn a_backup_is_a_consistent_copy_taken_beside_a_writer() {
    let ws = Workspace::new();
    let dir = ws.dir.path();
    let sim = simulate(8, 2, first_of(2026, 1), 9);
    ws.upload(&sim.write_snapshot(0, dir), &sim.write_sales(0, dir));
    let feb = upload_args(&sim.write_snapshot(1, dir), &sim.write_sales(1, dir));
    let writer = spawn(
        &ws,
        &[("PLASTINKA_PAUSE", "upload-write:1500")],
        &refs(&feb),
    );
    wait_for_lock(&ws, &writer);
    let copy = ws.path("backup.db");
    let out = ws.plastinka().arg("backup").arg(&copy).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(writer.wait_with_output().unwrap().status.success());
    // The copy is the state before February: a whole database, one month.
    let conn = rusqlite::Connection::open(&copy).unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let months: i64 = conn
        .query_row("SELECT count(*) FROM months", [], |r| r.get(0))
        .unwrap();
    assert_eq!(months, 1);
    assert_eq!(ws.sql("SELECT count(*) FROM months"), 2);
    // An existing path is never overwritten.
    let out = ws.plastinka().arg("backup").arg(&copy).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));
}

/// Environment faults: a read-only directory and a full database are clear errors and
/// lose nothing.
#[cfg(unix)]
#[test]
fn a_full_database_or_a_read_only_directory_is_a_clear_error() {
    use std::os::unix::fs::PermissionsExt;
    let ws = Workspace::new();
    let dir = ws.dir.path();
    let sim = simulate(300, 2, first_of(2026, 1), 10);
    ws.upload(&sim.write_snapshot(0, dir), &sim.write_sales(0, dir));
    let before = ws.db_bytes();
    // The limit is the current size: the next month's 300 rows need new pages.
    let limit_mb = before[""].len() as f64 / 1e6;
    let out = ws
        .plastinka()
        .env("PLASTINKA_DATABASE_MAX_SIZE_MB", limit_mb.to_string())
        .args(["upload", "--stock"])
        .arg(sim.write_snapshot(1, dir))
        .arg("--sales")
        .arg(sim.write_sales(1, dir))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "the month fit under the limit");
    let err = stderr(&out);
    assert!(
        err.contains("database.max_size_mb or the disk is full"),
        "{err}"
    );
    assert_eq!(ws.db_bytes(), before);

    let locked = ws.path("ro");
    std::fs::create_dir(&locked).unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o555)).unwrap();
    // Root ignores directory permissions; then there is nothing to test here.
    let writable = std::fs::File::create(locked.join("probe")).is_ok();
    if writable {
        eprintln!("skipped the read-only directory: this user can write there anyway (root)");
    } else {
        let out = ws
            .plastinka()
            .env("PLASTINKA_DB", locked.join("store.db"))
            .args(["upload", "--stock"])
            .arg(sim.write_snapshot(0, dir))
            .arg("--sales")
            .arg(sim.write_sales(0, dir))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        assert!(stderr(&out).contains("store.db.lock"), "{}", stderr(&out));
    }
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o755)).unwrap();
}
