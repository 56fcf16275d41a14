//! One writer at a time. Every command that writes takes an advisory lock (`flock`) on
//! `<database>.lock` before it reads what it will check, so the checks and the write see
//! the same database. The file's content names the holder, so a second writer is told
//! which command it waits for. The kernel drops the lock when its process dies (even on
//! `kill -9`), so a crashed writer never blocks the next one; a stale name in the file is
//! harmless because only the lock state counts.

use anyhow::{Context, Result};
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Another writer held the database for longer than we were willing to wait.
#[derive(Debug)]
pub struct Busy {
    pub database: PathBuf,
    pub holder: String,
    pub waited: Duration,
}

impl std::fmt::Display for Busy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} is being written by {} — waited {} s (database.lock_timeout_seconds); try again when it has finished",
            self.database.display(),
            if self.holder.trim().is_empty() {
                "another plastinka command".to_string()
            } else {
                self.holder.trim().to_string()
            },
            self.waited.as_secs()
        )
    }
}

impl std::error::Error for Busy {}

pub struct WriterLock {
    file: File,
    path: PathBuf,
}

pub fn lock_path(database: &Path) -> PathBuf {
    let mut name = database.file_name().unwrap_or_default().to_os_string();
    name.push(".lock");
    database.with_file_name(name)
}

impl WriterLock {
    /// Waits up to `wait` for the lock; `holder` describes this command for others.
    pub fn acquire(database: &Path, holder: &str, wait: Duration) -> Result<Self> {
        let path = lock_path(database);
        let started = Instant::now();
        loop {
            let mut file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .with_context(|| format!("cannot open the lock file {}", path.display()))?;
            match file.try_lock() {
                Ok(()) => {
                    // A failed first write removes its lock file; if that happened between
                    // our open and our lock, we hold a lock nobody else can see: retry.
                    if !same_file(&file, &path) {
                        continue;
                    }
                    let now = chrono::Local::now().format("%Y-%m-%d %H:%M:%S");
                    file.set_len(0)?;
                    file.rewind()?;
                    write!(
                        file,
                        "`plastinka {holder}` (pid {}, since {now})",
                        std::process::id()
                    )?;
                    file.flush()?;
                    return Ok(Self { file, path });
                }
                Err(TryLockError::WouldBlock) => {
                    if started.elapsed() >= wait {
                        let mut holder = String::new();
                        let _ = file.read_to_string(&mut holder);
                        return Err(Busy {
                            database: database.to_path_buf(),
                            holder,
                            waited: started.elapsed(),
                        }
                        .into());
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(TryLockError::Error(e)) => {
                    return Err(e).with_context(|| format!("cannot lock {}", path.display()));
                }
            }
        }
    }

    /// Removes the lock file while still holding it: used when the database it guards
    /// was never created, so a failed first write leaves nothing behind.
    pub fn remove(self) {
        let _ = std::fs::remove_file(&self.path);
        drop(self.file);
    }
}

#[cfg(unix)]
fn same_file(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn same_file(_file: &File, path: &Path) -> bool {
    path.exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_writer_waits_then_names_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("x.db");
        let first = WriterLock::acquire(&db, "upload", Duration::ZERO).unwrap();
        let Err(err) = WriterLock::acquire(&db, "train", Duration::from_millis(120)) else {
            panic!("a second writer got the lock");
        };
        let text = err.to_string();
        assert!(
            text.contains("`plastinka upload`") && text.contains("pid"),
            "{text}"
        );
        drop(first);
        WriterLock::acquire(&db, "train", Duration::ZERO).unwrap();
    }
}
