//! The SQLite store: the only module that speaks SQL.
//!
//! Two ways in:
//! * [`Store::open_read_only`] for commands that only read. It never creates a database
//!   and leaves no file behind (the database uses a rollback journal, not WAL, so readers
//!   need no `-wal`/`-shm` files).
//! * [`Store::begin_write`] for commands that write: it takes the writer lock, opens one
//!   transaction (`BEGIN IMMEDIATE`) that also holds any schema migration, and everything
//!   the command writes lands in that transaction. [`WriteSession::commit`] makes it
//!   durable; dropping the session without committing leaves the database exactly as it
//!   was. A database that does not exist yet is built in a temporary file beside it and
//!   moved into place only on commit, so a failed first write leaves nothing behind.

pub mod backtests;
pub mod history;
pub mod jobs;
pub mod lock;
pub mod models;
pub mod reports;
mod schema;
pub mod tuning;
pub mod uploads;

use anyhow::{Context, Result};
use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub struct Store {
    conn: Connection,
    path: PathBuf,
}

/// The schema version this build writes.
pub fn latest_schema_version() -> usize {
    schema::MIGRATIONS.len()
}

/// How writers and readers wait for each other, and how big the database may grow.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// How long to wait for another writer (and for SQLite's own locks).
    pub wait: Duration,
    /// Largest database size in bytes (0: no limit but the disk).
    pub max_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            wait: Duration::from_secs(30),
            max_bytes: 0,
        }
    }
}

/// SQLite's "a read-only connection found a hot journal that needs rolling back".
const SQLITE_READONLY_ROLLBACK: i32 = 776;

impl Store {
    /// Opens an existing store read-only; `None` when the file does not exist yet.
    ///
    /// A write killed midway leaves a hot journal; SQLite must roll it back before anyone
    /// can read. A read-only connection cannot, so in that one case a read-write
    /// connection is opened just long enough to complete the rollback, which restores the
    /// database to its state before the killed write.
    pub fn open_read_only(path: &Path, limits: Limits) -> Result<Option<Self>> {
        if !path.exists() {
            return Ok(None);
        }
        let store = Self::open_read_only_once(path, limits)?;
        match store.probe() {
            Err(e) if extended_code(&e) == Some(SQLITE_READONLY_ROLLBACK) => {
                drop(store);
                let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE)?;
                conn.busy_timeout(limits.wait)?;
                conn.query_row("SELECT count(*) FROM sqlite_master", [], |_| Ok(()))
                    .context("rolling back an interrupted write")?;
                drop(conn);
                let store = Self::open_read_only_once(path, limits)?;
                store.probe().map_err(|e| store.describe(e))?;
                store.check_version()?;
                Ok(Some(store))
            }
            Err(e) => Err(store.describe(e)),
            Ok(()) => {
                store.check_version()?;
                Ok(Some(store))
            }
        }
    }

    fn open_read_only_once(path: &Path, limits: Limits) -> Result<Self> {
        let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
            .with_context(|| format!("cannot open database {}", path.display()))?;
        conn.busy_timeout(limits.wait)?;
        Ok(Self {
            conn,
            path: path.to_path_buf(),
        })
    }

    fn probe(&self) -> rusqlite::Result<()> {
        self.conn
            .query_row("SELECT count(*) FROM sqlite_master", [], |_| Ok(()))
    }

    fn check_version(&self) -> Result<()> {
        let version = self.schema_version()?;
        if version > schema::MIGRATIONS.len() {
            anyhow::bail!(
                "{} has schema version {version}, newer than this plastinka understands ({})",
                self.path.display(),
                schema::MIGRATIONS.len()
            );
        }
        Ok(())
    }

    /// Takes the writer lock (waiting up to `limits.wait` for another writer) and opens
    /// the transaction everything this command writes goes into. `holder` names the
    /// command for a writer that has to wait.
    pub fn begin_write(path: &Path, holder: &str, limits: Limits) -> Result<WriteSession> {
        let created_dirs = create_missing_dirs(path)?;
        let lock = match lock::WriterLock::acquire(path, holder, limits.wait) {
            Ok(lock) => lock,
            Err(e) => {
                remove_dirs(&created_dirs);
                return Err(e);
            }
        };
        let mut session = WriteSession {
            store: None,
            lock: Some(lock),
            creating: None,
            created_dirs,
            target: path.to_path_buf(),
            committed: false,
        };
        let file = if path.exists() {
            path.to_path_buf()
        } else {
            remove_stale_creations(path);
            let temporary = creation_path(path);
            session.creating = Some(temporary.clone());
            temporary
        };
        let conn = Connection::open(&file)
            .with_context(|| format!("cannot open database {}", path.display()))?;
        let store = Store {
            conn,
            path: path.to_path_buf(),
        };
        session.store = Some(store);
        session.start(limits)?;
        Ok(session)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn schema_version(&self) -> Result<usize> {
        let version: i64 = self
            .conn
            .pragma_query_value(None, "user_version", |row| row.get(0))?;
        Ok(version as usize)
    }

    /// Writes a consistent copy to `target` (inside one read transaction) via a temporary
    /// file beside it, renamed into place when complete. Returns its size.
    pub fn backup_to(&self, target: &Path) -> Result<u64> {
        let name = target.file_name().unwrap_or_default().to_string_lossy();
        let partial = target.with_file_name(format!(".{name}.partial-{}", std::process::id()));
        let _ = std::fs::remove_file(&partial);
        let result = self
            .conn
            .execute("VACUUM INTO ?1", [partial.to_string_lossy()])
            .map_err(|e| describe_sqlite(target, e))
            .and_then(|_| {
                std::fs::File::open(&partial).and_then(|f| f.sync_all())?;
                // Never replaces a file that appeared at `target` meanwhile.
                std::fs::hard_link(&partial, target).map_err(|e| {
                    if e.kind() == std::io::ErrorKind::AlreadyExists {
                        anyhow::Error::new(crate::error::InputError::in_file(
                            target,
                            "already exists; give a new path for the backup",
                        ))
                    } else {
                        anyhow::Error::new(e).context(format!("cannot write {}", target.display()))
                    }
                })?;
                sync_dir(target);
                Ok(())
            });
        let _ = std::fs::remove_file(&partial);
        result?;
        Ok(std::fs::metadata(target)?.len())
    }

    /// A SQLite failure said in the user's terms: who holds a lock, a full disk.
    fn describe(&self, error: rusqlite::Error) -> anyhow::Error {
        describe_sqlite(&self.path, error)
    }
}

fn extended_code(error: &rusqlite::Error) -> Option<i32> {
    match error {
        rusqlite::Error::SqliteFailure(e, _) => Some(e.extended_code),
        _ => None,
    }
}

/// A command's error with SQLite's terse code, wherever it arose, said in the user's terms.
pub fn explain(error: anyhow::Error, path: &Path) -> anyhow::Error {
    let code = error
        .chain()
        .find_map(|cause| match cause.downcast_ref::<rusqlite::Error>() {
            Some(rusqlite::Error::SqliteFailure(e, _)) => Some(e.code),
            _ => None,
        });
    // Errors already said in these terms (describe_sqlite below) name the database.
    let said = error.chain().skip(1).count() > 0
        && error.to_string().contains(&path.display().to_string());
    match code.and_then(|code| sentence(path, code, None)) {
        Some(sentence) if !said => error.context(sentence),
        _ => error,
    }
}

/// What a SQLite error code means to the user, for the codes a user can act on.
fn sentence(path: &Path, code: rusqlite::ErrorCode, detail: Option<&str>) -> Option<String> {
    use rusqlite::ErrorCode;
    let detail = detail.map_or(String::new(), |d| format!(" ({d})"));
    Some(match code {
        ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => format!(
            "{} stayed locked for database.lock_timeout_seconds: a long read (a backup, a big report) was finishing, or another program holds it; try again",
            path.display()
        ),
        ErrorCode::DiskFull => format!(
            "{}: the database reached database.max_size_mb or the disk is full; nothing of this command was written",
            path.display()
        ),
        ErrorCode::ReadOnly | ErrorCode::CannotOpen => format!(
            "{}: cannot write the database or its directory{detail}",
            path.display()
        ),
        ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt => format!(
            "{} is not a plastinka database or is damaged{detail}",
            path.display()
        ),
        _ => return None,
    })
}

/// Turns SQLite's terse codes into sentences that say what happened and what to do.
pub fn describe_sqlite(path: &Path, error: rusqlite::Error) -> anyhow::Error {
    let code = match &error {
        rusqlite::Error::SqliteFailure(e, _) => Some(e.code),
        _ => None,
    };
    let detail = error.to_string();
    match code.and_then(|code| sentence(path, code, Some(&detail))) {
        Some(sentence) => anyhow::Error::new(error).context(sentence),
        None => anyhow::Error::new(error).context(format!("database {}", path.display())),
    }
}

/// Everything one writing command does, in one transaction under the writer lock.
pub struct WriteSession {
    store: Option<Store>,
    lock: Option<lock::WriterLock>,
    /// The temporary file a new database is built in, moved to `target` on commit.
    creating: Option<PathBuf>,
    created_dirs: Vec<PathBuf>,
    target: PathBuf,
    committed: bool,
}

impl std::ops::Deref for WriteSession {
    type Target = Store;
    fn deref(&self) -> &Store {
        self.store
            .as_ref()
            .expect("store present until the session ends")
    }
}

impl WriteSession {
    fn conn(&self) -> &Connection {
        &self.store.as_ref().expect("store present").conn
    }

    fn start(&mut self, limits: Limits) -> Result<()> {
        let path = self.target.clone();
        let conn = self.conn();
        conn.busy_timeout(limits.wait)?;
        // A rollback journal rather than WAL: readers then need no -wal/-shm files, so a
        // read-only command leaves the directory as it found it.
        conn.pragma_update(None, "journal_mode", "DELETE")
            .map_err(|e| describe_sqlite(&path, e))?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        // Dirty pages stay in memory until the commit: spilling them to the file early
        // would take the exclusive lock and block readers for the rest of a big write.
        conn.pragma_update(None, "cache_spill", false)?;
        if limits.max_bytes > 0 {
            let page: i64 = conn.pragma_query_value(None, "page_size", |r| r.get(0))?;
            conn.pragma_update(
                None,
                "max_page_count",
                (limits.max_bytes as i64 / page).max(1),
            )?;
        }
        conn.execute_batch("BEGIN IMMEDIATE")
            .map_err(|e| describe_sqlite(&path, e))?;
        self.migrate()
    }

    fn migrate(&self) -> Result<()> {
        let current = self.schema_version()?;
        let latest = schema::MIGRATIONS.len();
        if current > latest {
            anyhow::bail!(
                "{} has schema version {current}, newer than this plastinka understands ({latest})",
                self.target.display()
            );
        }
        for (i, sql) in schema::MIGRATIONS.iter().enumerate().skip(current) {
            self.conn()
                .execute_batch(sql)
                .map_err(|e| describe_sqlite(&self.target, e))
                .with_context(|| format!("schema migration {} failed", i + 1))?;
            self.conn()
                .pragma_update(None, "user_version", (i + 1) as i64)?;
        }
        Ok(())
    }

    /// Makes everything written in this session durable and visible at once.
    pub fn commit(mut self) -> Result<()> {
        crate::faults::check("commit")?;
        self.conn()
            .execute_batch("COMMIT")
            .map_err(|e| describe_sqlite(&self.target, e))?;
        self.committed = true;
        if let Some(temporary) = self.creating.take() {
            drop(self.store.take());
            publish(&temporary, &self.target)?;
        }
        Ok(())
    }
}

impl Drop for WriteSession {
    fn drop(&mut self) {
        if !self.committed
            && let Some(store) = &self.store
        {
            let _ = store.conn.execute_batch("ROLLBACK");
        }
        drop(self.store.take());
        if let Some(temporary) = self.creating.take() {
            remove_database_files(&temporary);
            if let Some(lock) = self.lock.take() {
                lock.remove();
            }
            remove_dirs(&self.created_dirs);
        }
    }
}

/// `.<name>.creating-<pid>` beside the database.
fn creation_path(path: &Path) -> PathBuf {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    path.with_file_name(format!(".{name}.creating-{}", std::process::id()))
}

/// A first write killed midway leaves its temporary file; under the lock nobody else is
/// creating the database, so such leftovers can go.
fn remove_stale_creations(path: &Path) {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let prefix = format!(".{name}.creating-");
    let dir = match path.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(d) => d.to_path_buf(),
        None => PathBuf::from("."),
    };
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with(&prefix) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

fn remove_database_files(path: &Path) {
    let _ = std::fs::remove_file(path);
    for suffix in ["-journal", "-wal", "-shm"] {
        let mut name = path.as_os_str().to_os_string();
        name.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(name));
    }
}

/// Makes a new directory entry durable (best effort: not every system can sync a directory).
fn sync_dir(path: &Path) {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && let Ok(dir) = std::fs::File::open(dir)
    {
        let _ = dir.sync_all();
    }
}

/// Moves the finished new database into place without ever replacing an existing file.
fn publish(temporary: &Path, target: &Path) -> Result<()> {
    std::fs::hard_link(temporary, target)
        .or_else(|e| {
            // File systems without hard links: a rename is still atomic; the writer lock
            // guarantees no other plastinka is creating the same database.
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                Err(e)
            } else {
                std::fs::rename(temporary, target)
            }
        })
        .with_context(|| format!("cannot create database {}", target.display()))?;
    let _ = std::fs::remove_file(temporary);
    sync_dir(target);
    Ok(())
}

/// Creates the database's missing parent directories, returning those it created
/// (outermost first) so a failed first write can remove them again.
fn create_missing_dirs(path: &Path) -> Result<Vec<PathBuf>> {
    let mut missing = Vec::new();
    let mut dir = path.parent();
    while let Some(d) = dir.filter(|d| !d.as_os_str().is_empty() && !d.exists()) {
        missing.push(d.to_path_buf());
        dir = d.parent();
    }
    missing.reverse();
    for (k, d) in missing.iter().enumerate() {
        if let Err(e) = std::fs::create_dir(d) {
            remove_dirs(&missing[..k]);
            return Err(e).with_context(|| format!("cannot create the directory {}", d.display()));
        }
    }
    Ok(missing)
}

fn remove_dirs(dirs: &[PathBuf]) {
    for d in dirs.iter().rev() {
        let _ = std::fs::remove_dir(d);
    }
}
