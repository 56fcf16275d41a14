//! Remote jobs: the one place a [`RemoteJob`] is written and read.

use super::history::DataVersion;
use super::{Store, WriteSession};
use crate::clock::timestamp;
use crate::remote::job::{JobState, RemoteJob};
use anyhow::Result;
use rusqlite::{OptionalExtension, params};

const COLUMNS: &str =
    "id, created_at, updated_at, project_id, instance_type, state, execute_operation_id,
    input_sha256, data_first_month, data_last_month, data_version, activate, model_id, message";

fn read(row: &rusqlite::Row) -> rusqlite::Result<RemoteJob> {
    let state: String = row.get(5)?;
    Ok(RemoteJob {
        id: row.get(0)?,
        created_at: row.get(1)?,
        updated_at: row.get(2)?,
        project_id: row.get(3)?,
        instance_type: row.get(4)?,
        state: JobState::parse(&state).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                5,
                rusqlite::types::Type::Text,
                format!("unknown job state {state}").into(),
            )
        })?,
        execute_operation_id: row.get(6)?,
        input_sha256: row.get(7)?,
        data_first_month: row.get(8)?,
        data_last_month: row.get(9)?,
        data_version: row.get(10)?,
        activate: row.get(11)?,
        model_id: row.get(12)?,
        message: row.get(13)?,
    })
}

impl WriteSession {
    /// Records a job DataSphere has just named.
    pub fn insert_job(&self, job: &RemoteJob) -> Result<()> {
        self.conn().execute(
            &format!("INSERT INTO remote_jobs ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)"),
            params![
                job.id,
                job.created_at,
                job.updated_at,
                job.project_id,
                job.instance_type,
                job.state.name(),
                job.execute_operation_id,
                job.input_sha256,
                job.data_first_month,
                job.data_last_month,
                job.data_version,
                job.activate,
                job.model_id,
                job.message,
            ],
        )?;
        Ok(())
    }

    /// Moves an open job to `state` (with an operation id or a message when there is
    /// one). A job that has ended — stored, failed, cancelled — stays as it ended: two
    /// `jobs wait` at once, or a cancel racing a store, cannot reopen or relabel it.
    /// Returns whether the job moved.
    pub fn set_job_state(
        &self,
        id: &str,
        state: JobState,
        execute_operation_id: Option<&str>,
        message: Option<&str>,
    ) -> Result<bool> {
        let changed = self.conn().execute(
            "UPDATE remote_jobs SET state = ?2, updated_at = ?3,
                execute_operation_id = coalesce(?4, execute_operation_id), message = coalesce(?5, message)
             WHERE id = ?1 AND state IN ('submitted', 'uploading', 'running', 'downloading')",
            params![id, state.name(), timestamp(), execute_operation_id, message],
        )?;
        Ok(changed == 1)
    }

    /// Marks the job's model stored; false (and nothing changed) when it already was.
    pub fn set_job_stored(&self, id: &str, model_id: &str) -> Result<bool> {
        let changed = self.conn().execute(
            "UPDATE remote_jobs SET state = 'stored', model_id = ?2, updated_at = ?3
             WHERE id = ?1 AND model_id IS NULL AND state IN ('running', 'downloading')",
            params![id, model_id, timestamp()],
        )?;
        Ok(changed == 1)
    }
}

impl Store {
    pub fn job(&self, id: &str) -> Result<Option<RemoteJob>> {
        Ok(self
            .conn
            .query_row(
                &format!("SELECT {COLUMNS} FROM remote_jobs WHERE id = ?1"),
                [id],
                read,
            )
            .optional()?)
    }

    pub fn jobs(&self) -> Result<Vec<RemoteJob>> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {COLUMNS} FROM remote_jobs ORDER BY created_at, id"
        ))?;
        let jobs = stmt.query_map([], read)?.collect::<rusqlite::Result<_>>()?;
        Ok(jobs)
    }
}

/// A new job's first record.
pub fn new_job(
    id: &str,
    project_id: &str,
    instance_type: &str,
    input_sha256: &str,
    months: (String, String),
    version: &DataVersion,
    activate: bool,
) -> RemoteJob {
    let now = timestamp();
    RemoteJob {
        id: id.to_string(),
        created_at: now.clone(),
        updated_at: now,
        project_id: project_id.to_string(),
        instance_type: instance_type.to_string(),
        state: JobState::Submitted,
        execute_operation_id: None,
        input_sha256: input_sha256.to_string(),
        data_first_month: months.0,
        data_last_month: months.1,
        data_version: version.as_str().to_string(),
        activate,
        model_id: None,
        message: None,
    }
}
