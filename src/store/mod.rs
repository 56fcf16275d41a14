//! The SQLite store: the only module that speaks SQL.

pub mod history;
pub mod models;
pub mod reports;
mod schema;
pub mod uploads;

use anyhow::{Context, Result};
use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};

pub struct Store {
    conn: Connection,
    path: PathBuf,
}

/// The schema version this build writes.
pub fn latest_schema_version() -> usize {
    schema::MIGRATIONS.len()
}

impl Store {
    /// Opens the store for writing, creating the file and applying pending migrations.
    pub fn open(path: &Path) -> Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create the directory of {}", path.display()))?;
        }
        let conn = Connection::open(path)
            .with_context(|| format!("cannot open database {}", path.display()))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        let mut store = Self {
            conn,
            path: path.to_path_buf(),
        };
        store.migrate()?;
        Ok(store)
    }

    /// Opens an existing store read-only; `None` when the file does not exist yet.
    /// Read-only commands use this, so they never create or change a database.
    pub fn open_existing_read_only(path: &Path) -> Result<Option<Self>> {
        if !path.exists() {
            return Ok(None);
        }
        let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
            .with_context(|| format!("cannot open database {}", path.display()))?;
        let store = Self {
            conn,
            path: path.to_path_buf(),
        };
        let version = store.schema_version()?;
        if version > schema::MIGRATIONS.len() {
            anyhow::bail!(
                "{} has schema version {version}, newer than this plastinka understands ({})",
                path.display(),
                schema::MIGRATIONS.len()
            );
        }
        Ok(Some(store))
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

    fn migrate(&mut self) -> Result<()> {
        let current = self.schema_version()?;
        let latest = schema::MIGRATIONS.len();
        if current > latest {
            anyhow::bail!(
                "{} has schema version {current}, newer than this plastinka understands ({latest})",
                self.path.display()
            );
        }
        for (i, sql) in schema::MIGRATIONS.iter().enumerate().skip(current) {
            let tx = self.conn.transaction()?;
            tx.execute_batch(sql)
                .with_context(|| format!("schema migration {} failed", i + 1))?;
            tx.pragma_update(None, "user_version", (i + 1) as i64)?;
            tx.commit()?;
        }
        Ok(())
    }
}
