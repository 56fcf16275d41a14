//! Tuning: the one place a [`StudyRecord`], a [`TrialRecord`] and [`TunedSettings`] are
//! written and read.

use super::{Store, WriteSession};
use crate::forecast::tune::{FORMAT_VERSION, StudyRecord, TrialRecord, TunedSettings};
use anyhow::{Context, Result};
use rusqlite::{OptionalExtension, params};

impl WriteSession {
    /// Stores the study unless it is stored already (a resumed study keeps its record).
    pub fn save_study(&self, study: &StudyRecord) -> Result<()> {
        self.conn().execute(
            "INSERT OR IGNORE INTO tune_studies (id, created_at, format_version, record_json)
             VALUES (?1, ?2, ?3, ?4)",
            params![
                study.id,
                study.created_at,
                study.format_version,
                serde_json::to_string(study)?
            ],
        )?;
        Ok(())
    }

    /// Stores one evaluation, replacing one stored for the same trial and budget: the
    /// current settings' (trial 0) after an activation changed them, or a candidate's
    /// that a `tune` running beside this one stored (the same settings score the same).
    pub fn save_trial(&self, trial: &TrialRecord) -> Result<()> {
        self.conn().execute(
            "INSERT OR REPLACE INTO tune_trials (study_id, trial, epochs, created_at, format_version, record_json)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                trial.study_id,
                trial.trial as i64,
                trial.epochs as i64,
                trial.created_at,
                trial.format_version,
                serde_json::to_string(trial)?
            ],
        )?;
        Ok(())
    }

    /// Makes `settings` the tuned settings in use (the earlier ones stay as history).
    pub fn activate_tuned(&self, settings: &TunedSettings) -> Result<()> {
        self.deactivate_tuned()?;
        self.conn().execute(
            "INSERT INTO tuned_settings (activated_at, format_version, active, record_json)
             VALUES (?1, ?2, 1, ?3)",
            params![
                settings.activated_at,
                settings.format_version,
                serde_json::to_string(settings)?
            ],
        )?;
        Ok(())
    }

    /// Back to the defaults (and the settings file): no tuned settings in use.
    pub fn deactivate_tuned(&self) -> Result<usize> {
        Ok(self
            .conn()
            .execute("UPDATE tuned_settings SET active = 0 WHERE active = 1", [])?)
    }
}

impl Store {
    fn has_tuning_tables(&self) -> Result<bool> {
        let n: i64 = self.conn.query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'tuned_settings'",
            [],
            |r| r.get(0),
        )?;
        Ok(n > 0)
    }

    pub fn study(&self, id: &str) -> Result<Option<StudyRecord>> {
        if !self.has_tuning_tables()? {
            return Ok(None);
        }
        let row: Option<(u32, String)> = self
            .conn
            .query_row(
                "SELECT format_version, record_json FROM tune_studies WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        row.map(|(version, json)| read(&format!("tuning study {id}"), version, &json))
            .transpose()
    }

    /// The newest study, if any.
    pub fn latest_study(&self) -> Result<Option<StudyRecord>> {
        if !self.has_tuning_tables()? {
            return Ok(None);
        }
        let id: Option<String> = self
            .conn
            .query_row(
                "SELECT study_id FROM tune_trials ORDER BY created_at DESC LIMIT 1",
                [],
                |r| r.get(0),
            )
            .optional()?;
        match id {
            Some(id) => self.study(&id),
            None => Ok(None),
        }
    }

    /// Every stored evaluation of study `id`, by trial then budget.
    pub fn trials(&self, id: &str) -> Result<Vec<TrialRecord>> {
        if !self.has_tuning_tables()? {
            return Ok(Vec::new());
        }
        let mut stmt = self.conn.prepare(
            "SELECT trial, epochs, format_version, record_json FROM tune_trials
             WHERE study_id = ?1 ORDER BY trial, epochs",
        )?;
        let rows = stmt.query_map([id], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, u32>(2)?,
                r.get::<_, String>(3)?,
            ))
        })?;
        let mut trials = Vec::new();
        for row in rows {
            let (trial, epochs, version, json) = row?;
            trials.push(read(
                &format!("trial {trial} ({epochs} epochs) of {id}"),
                version,
                &json,
            )?);
        }
        Ok(trials)
    }

    /// The tuned settings in use, if any.
    pub fn active_tuned(&self) -> Result<Option<TunedSettings>> {
        if !self.has_tuning_tables()? {
            return Ok(None);
        }
        let row: Option<(u32, String)> = self
            .conn
            .query_row(
                "SELECT format_version, record_json FROM tuned_settings WHERE active = 1
                 ORDER BY id DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        row.map(|(version, json)| read("the tuned settings", version, &json))
            .transpose()
    }
}

/// A stored record in this plastinka's format, or an error naming what and why.
fn read<T: serde::de::DeserializeOwned>(what: &str, version: u32, json: &str) -> Result<T> {
    if version != FORMAT_VERSION {
        anyhow::bail!(
            "{what} is stored in format {version}; this plastinka reads {FORMAT_VERSION}"
        );
    }
    serde_json::from_str(json).with_context(|| format!("{what} is stored damaged"))
}
