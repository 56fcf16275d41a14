//! `plastinka health`: a table (or `--json`) of every component, exit code for cron.

use super::Context;
use crate::cli::HealthArgs;
use crate::error::Exit;
use crate::health::{self, Status};
use anyhow::Result;
use comfy_table::{ContentArrangement, Table};

pub fn run(context: &Context, args: &HealthArgs) -> Result<()> {
    let report = health::check(&context.db, &context.config, context.today, args.online);
    print(context, &report)?;
    match report.status.exit_code() {
        0 => Ok(()),
        code => Err(Exit(code).into()),
    }
}

pub fn print(context: &Context, report: &health::Health) -> Result<()> {
    if context.json {
        crate::outln!("{}", serde_json::to_string_pretty(report)?)?;
    } else {
        let mut table = Table::new();
        table.set_content_arrangement(ContentArrangement::Dynamic);
        table.set_header(vec!["component", "status", "reason"]);
        for c in &report.components {
            table.add_row(vec![
                c.name.to_string(),
                label(c.status).to_string(),
                c.reason.clone(),
            ]);
        }
        crate::outln!("{}: {}", label(report.status), context.db.display())?;
        crate::outln!("{table}")?;
    }
    Ok(())
}

fn label(status: Status) -> &'static str {
    match status {
        Status::Healthy => "healthy",
        Status::NotConfigured => "not configured",
        Status::Degraded => "degraded",
        Status::Unhealthy => "unhealthy",
    }
}
