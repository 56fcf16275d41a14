//! Error kinds that decide the exit code.
//!
//! Everything a user can get wrong in their input (a bad cell, a broken law, a bad
//! setting) is an [`InputError`] and exits with 2; everything else exits with 1.

use std::fmt;
use std::path::Path;

/// Rejected input. The message names the file, row and column (or the law) at fault.
#[derive(Debug)]
pub struct InputError {
    pub message: String,
}

impl InputError {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }

    /// A problem with one cell: `file: row R, column «C»: message`.
    pub fn at_cell(file: &Path, row: usize, column: &str, message: impl fmt::Display) -> Self {
        Self::new(format!(
            "{}: row {row}, column «{column}»: {message}",
            file.display()
        ))
    }

    /// A problem with a whole file: `file: message`.
    pub fn in_file(file: &Path, message: impl fmt::Display) -> Self {
        Self::new(format!("{}: {message}", file.display()))
    }

    /// Several problems reported together; at most `LIMIT` are listed.
    pub fn many(headline: &str, problems: &[String]) -> Self {
        const LIMIT: usize = 20;
        let mut message = headline.to_string();
        for problem in problems.iter().take(LIMIT) {
            message.push_str("\n  - ");
            message.push_str(problem);
        }
        if problems.len() > LIMIT {
            message.push_str(&format!("\n  … and {} more", problems.len() - LIMIT));
        }
        Self::new(message)
    }
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for InputError {}

/// A command that has said everything already and only needs to end with this status
/// (`plastinka health` for cron: 1 degraded, 2 unhealthy).
#[derive(Debug)]
pub struct Exit(pub i32);

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "exit status {}", self.0)
    }
}

impl std::error::Error for Exit {}

/// Exit status for an error: 2 for rejected input, 1 for everything else.
pub fn exit_code(error: &anyhow::Error) -> i32 {
    if let Some(Exit(code)) = error.downcast_ref::<Exit>() {
        return *code;
    }
    if error.chain().any(|cause| cause.is::<InputError>()) {
        2
    } else {
        1
    }
}
