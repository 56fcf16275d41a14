//! `plastinka backup PATH`: a consistent copy of the database, taken inside one read
//! transaction (SQLite's `VACUUM INTO`), so other commands may read and write meanwhile.
//! The copy is written beside PATH and renamed into place only when complete.

use super::Context;
use crate::error::InputError;
use anyhow::Result;

pub fn run(context: &Context, args: &crate::cli::BackupArgs) -> Result<()> {
    let store = context.existing_store()?;
    if args.path.exists() {
        return Err(InputError::in_file(
            &args.path,
            "already exists; give a new path for the backup",
        )
        .into());
    }
    let bytes = store.backup_to(&args.path)?;
    if context.json {
        crate::outln!(
            "{}",
            serde_json::json!({ "database": context.db, "backup": args.path, "bytes": bytes })
        )?;
    } else {
        crate::outln!(
            "Backed up {} to {} ({} bytes).",
            context.db.display(),
            args.path.display(),
            bytes
        )?;
    }
    Ok(())
}
