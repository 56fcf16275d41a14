//! Schema migrations, applied in order; `PRAGMA user_version` records how many ran.
//! Never edit a released migration: append a new one.

pub const MIGRATIONS: &[&str] = &[
    // 1: products, uploads and the monthly store.
    r#"
    CREATE TABLE products (
        id INTEGER PRIMARY KEY,
        key TEXT NOT NULL UNIQUE,
        barcode TEXT,
        artist TEXT NOT NULL,
        album TEXT NOT NULL,
        condition TEXT NOT NULL CHECK (condition IN ('sealed', 'opened')),
        price REAL NOT NULL,
        price_category INTEGER NOT NULL,
        price_category_label TEXT NOT NULL,
        release_type TEXT NOT NULL,
        recording_year INTEGER NOT NULL,
        release_year INTEGER NOT NULL,
        recording_decade INTEGER NOT NULL,
        release_decade INTEGER NOT NULL,
        style TEXT NOT NULL,
        -- snapshot date of the upload the attributes come from: an upload of older
        -- months never overwrites fresher attributes
        attributes_as_of TEXT NOT NULL,
        first_upload_id INTEGER NOT NULL
    );
    CREATE TABLE uploads (
        id INTEGER PRIMARY KEY,
        created_at TEXT NOT NULL,
        stock_date TEXT NOT NULL,
        first_month TEXT NOT NULL,
        last_month TEXT NOT NULL,
        last_month_complete INTEGER NOT NULL,
        fingerprint TEXT NOT NULL,
        rows_read INTEGER NOT NULL,
        rows_kept INTEGER NOT NULL,
        dropped_json TEXT NOT NULL,
        warnings_json TEXT NOT NULL,
        incoherent_rows INTEGER NOT NULL,
        products INTEGER NOT NULL,
        new_products INTEGER NOT NULL
    );
    CREATE TABLE upload_files (
        upload_id INTEGER NOT NULL REFERENCES uploads(id),
        position INTEGER NOT NULL,
        role TEXT NOT NULL CHECK (role IN ('stock', 'sales')),
        path TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        bytes INTEGER NOT NULL,
        rows_read INTEGER NOT NULL,
        rows_kept INTEGER NOT NULL,
        PRIMARY KEY (upload_id, position)
    );
    -- The stored months; upload_id is the upload whose data the month holds now.
    CREATE TABLE months (
        month TEXT PRIMARY KEY,
        upload_id INTEGER NOT NULL REFERENCES uploads(id),
        complete INTEGER NOT NULL
    );
    CREATE TABLE monthly_features (
        month TEXT NOT NULL,
        product_id INTEGER NOT NULL REFERENCES products(id),
        units_sold INTEGER NOT NULL,
        arrivals INTEGER NOT NULL,
        net_movement INTEGER NOT NULL,
        stock_start INTEGER NOT NULL,
        stock_end INTEGER NOT NULL,
        observed_days INTEGER NOT NULL,
        in_stock_days INTEGER NOT NULL,
        availability REAL NOT NULL,
        confidence REAL NOT NULL,
        mean_sales_units REAL NOT NULL,
        mean_sales_rub REAL NOT NULL,
        lost_sales_units REAL NOT NULL,
        lost_sales_rub REAL NOT NULL,
        revenue_rub REAL NOT NULL,
        PRIMARY KEY (month, product_id)
    ) WITHOUT ROWID;
    CREATE INDEX monthly_features_by_product ON monthly_features (product_id, month);
    CREATE TABLE stock_snapshots (
        upload_id INTEGER NOT NULL REFERENCES uploads(id),
        product_id INTEGER NOT NULL REFERENCES products(id),
        copies INTEGER NOT NULL,
        mean_price REAL NOT NULL,
        PRIMARY KEY (upload_id, product_id)
    ) WITHOUT ROWID;
    "#,
    // 2: trained models and their forecasts.
    r#"
    CREATE TABLE models (
        id TEXT PRIMARY KEY,
        created_at TEXT NOT NULL,
        first_month TEXT NOT NULL,
        last_month TEXT NOT NULL,
        forecast_month TEXT NOT NULL,
        -- the [model] and [training] settings used, as JSON
        config_json TEXT NOT NULL,
        -- input widths, static columns and target scaler needed to use the weights
        artifacts_json TEXT NOT NULL,
        -- burnpack bytes of the phase-2 model
        weights BLOB NOT NULL,
        metrics_json TEXT NOT NULL,
        training_seconds REAL NOT NULL,
        active INTEGER NOT NULL DEFAULT 0 CHECK (active IN (0, 1))
    );
    CREATE UNIQUE INDEX models_one_active ON models (active) WHERE active = 1;
    CREATE TABLE forecasts (
        model_id TEXT NOT NULL REFERENCES models(id),
        product_id INTEGER NOT NULL REFERENCES products(id),
        month TEXT NOT NULL,
        quantile REAL NOT NULL,
        units REAL NOT NULL,
        PRIMARY KEY (model_id, product_id, quantile)
    ) WITHOUT ROWID;
    "#,
    // 3: months stored empty on purpose, model checksums and format versions, the remote
    // job a model came from, and forecasts by month (a stored model can forecast later
    // months without retraining).
    r#"
    ALTER TABLE months ADD COLUMN empty INTEGER NOT NULL DEFAULT 0 CHECK (empty IN (0, 1));
    ALTER TABLE models ADD COLUMN format_version INTEGER NOT NULL DEFAULT 1;
    -- models stored before this version read covariates back-filled from the future:
    -- their inputs mean something else now, so they are version 0 and are not loaded
    UPDATE models SET format_version = 0;
    -- sha256 of the weights; NULL for models stored before checksums existed
    ALTER TABLE models ADD COLUMN weights_sha256 TEXT;
    ALTER TABLE models ADD COLUMN remote_job_id TEXT;
    CREATE TABLE forecasts_by_month (
        model_id TEXT NOT NULL REFERENCES models(id),
        month TEXT NOT NULL,
        product_id INTEGER NOT NULL REFERENCES products(id),
        quantile REAL NOT NULL,
        units REAL NOT NULL,
        PRIMARY KEY (model_id, month, product_id, quantile)
    ) WITHOUT ROWID;
    INSERT INTO forecasts_by_month SELECT model_id, month, product_id, quantile, units FROM forecasts;
    DROP TABLE forecasts;
    ALTER TABLE forecasts_by_month RENAME TO forecasts;
    -- every forecast a model made: the month, the newest data month it saw, when
    CREATE TABLE forecast_runs (
        model_id TEXT NOT NULL REFERENCES models(id),
        month TEXT NOT NULL,
        data_last_month TEXT NOT NULL,
        created_at TEXT NOT NULL,
        PRIMARY KEY (model_id, month)
    );
    INSERT INTO forecast_runs SELECT id, forecast_month, last_month, created_at FROM models;
    "#,
    // 4: remote training jobs on DataSphere, stored the moment the service names them.
    r#"
    CREATE TABLE remote_jobs (
        id TEXT PRIMARY KEY,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        project_id TEXT NOT NULL,
        instance_type TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('submitted', 'uploading', 'running', 'downloading', 'stored', 'failed', 'cancelled')),
        execute_operation_id TEXT,
        input_sha256 TEXT NOT NULL,
        data_first_month TEXT NOT NULL,
        data_last_month TEXT NOT NULL,
        data_version TEXT NOT NULL,
        activate INTEGER NOT NULL CHECK (activate IN (0, 1)),
        model_id TEXT REFERENCES models(id),
        message TEXT
    );
    "#,
    // 5: rolling-origin backtests, each with the settings it ran with.
    r#"
    CREATE TABLE backtests (
        id TEXT PRIMARY KEY,
        created_at TEXT NOT NULL,
        format_version INTEGER NOT NULL,
        first_month TEXT NOT NULL,
        last_month TEXT NOT NULL,
        record_json TEXT NOT NULL
    );
    "#,
    // 6: `plastinka tune`: studies, every evaluation of a trial at an epoch budget (stored
    // as it finishes, so a study resumes), and the tuned settings activated from them.
    r#"
    CREATE TABLE tune_studies (
        id TEXT PRIMARY KEY,
        created_at TEXT NOT NULL,
        format_version INTEGER NOT NULL,
        record_json TEXT NOT NULL
    );
    CREATE TABLE tune_trials (
        study_id TEXT NOT NULL REFERENCES tune_studies(id),
        trial INTEGER NOT NULL,
        epochs INTEGER NOT NULL,
        created_at TEXT NOT NULL,
        format_version INTEGER NOT NULL,
        record_json TEXT NOT NULL,
        PRIMARY KEY (study_id, trial, epochs)
    );
    CREATE TABLE tuned_settings (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        activated_at TEXT NOT NULL,
        format_version INTEGER NOT NULL,
        active INTEGER NOT NULL CHECK (active IN (0, 1)),
        record_json TEXT NOT NULL
    );
    "#,
];

#[cfg(test)]
mod tests {
    use super::*;

    /// Models from before migration 3 read covariates that meant something else (the
    /// back-filled group statistics): they must not load as current ones.
    #[test]
    fn models_from_before_the_format_version_are_version_0() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute_batch(MIGRATIONS[0]).unwrap();
        conn.execute_batch(MIGRATIONS[1]).unwrap();
        conn.execute(
            "INSERT INTO models (id, created_at, first_month, last_month, forecast_month, config_json, artifacts_json,
                weights, metrics_json, training_seconds, active) VALUES ('old', 'x', '2025-01', '2025-12', '2026-01', '{}', '{}', x'00', '{}', 0, 1)",
            [],
        )
        .unwrap();
        conn.execute_batch(MIGRATIONS[2]).unwrap();
        let version: i64 = conn
            .query_row("SELECT format_version FROM models", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, 0);
        let runs: i64 = conn
            .query_row(
                "SELECT count(*) FROM forecast_runs WHERE model_id = 'old' AND month = '2026-01'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(runs, 1);
    }
}
