//! `plastinka quickstart`: upload → health → train → report on the bundled sample data,
//! into a fresh database, printing where everything is.

use super::Context;
use crate::cli::{QuickstartArgs, ReportArgs, ReportKind, TrainArgs, UploadArgs};
use crate::error::InputError;
use crate::report::Language;
use crate::report::render::OutputFormat;
use anyhow::Result;
use std::path::{Path, PathBuf};

/// Epoch budget of the quickstart's training (the sample stops early well before it).
const EPOCH_BUDGET: usize = 60;

pub fn run(context: &Context, args: &QuickstartArgs) -> Result<()> {
    let sample = find_sample(args.sample.as_deref())?;
    let dir = match &args.dir {
        Some(dir) => dir.clone(),
        None => std::env::temp_dir().join(format!(
            "plastinka-quickstart-{}",
            chrono::Local::now().format("%Y%m%d-%H%M%S")
        )),
    };
    std::fs::create_dir_all(&dir)
        .map_err(|e| InputError::in_file(&dir, format!("cannot create: {e}")))?;
    let db = dir.join("plastinka.db");
    if db.exists() {
        return Err(InputError::in_file(&db, "already exists; give quickstart a new --dir").into());
    }
    let mut config = context.config.clone();
    config.training.max_epochs = config.training.max_epochs.min(EPOCH_BUDGET);
    let ctx = Context {
        config,
        db: db.clone(),
        json: false,
        today: context.today,
        layers: context.layers.clone(),
        tuned: None,
    };
    let stock = |dir: &Path| -> Result<PathBuf> {
        std::fs::read_dir(dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("stock_"))
            })
            .ok_or_else(|| InputError::in_file(dir, "no stock_*.xlsx/csv snapshot").into())
    };

    step("1/5 upload the history (23 months of sales and the snapshot after them)")?;
    super::upload::run(&ctx, &upload_args(stock(&sample)?, sample.clone()))?;
    let next = sample.join("next");
    if next.is_dir() {
        step("2/5 upload the newest month, as a monthly upload would")?;
        super::upload::run(&ctx, &upload_args(stock(&next)?, next.clone()))?;
    }
    step("3/5 health before training (no model yet, so it says degraded)")?;
    let health = crate::health::check(&db, &ctx.config, ctx.today, false);
    super::health::print(&ctx, &health)?;

    step(&format!(
        "4/5 train (at most {EPOCH_BUDGET} epochs; it stops early)"
    ))?;
    super::train::run(
        &ctx,
        &TrainArgs {
            no_activate: false,
            remote: false,
            detach: false,
        },
    )?;

    step("5/5 report: the 15 records most worth reordering, and the full report as xlsx and csv")?;
    let xlsx = dir.join("forecast.xlsx");
    let csv = dir.join("forecast.csv");
    super::report::run(
        &ctx,
        &report_args(OutputFormat::Xlsx, Some(xlsx.clone()), None),
    )?;
    super::report::run(
        &ctx,
        &report_args(OutputFormat::Csv, Some(csv.clone()), None),
    )?;
    super::report::run(&ctx, &report_args(OutputFormat::Table, None, Some(15)))?;

    crate::outln!("\nEverything is in {}:", dir.display())?;
    crate::outln!("  database   {}", db.display())?;
    crate::outln!("  report     {}", xlsx.display())?;
    crate::outln!("  report     {}", csv.display())?;
    crate::outln!(
        "Next: plastinka --db {} health | models | report --format xlsx --output FILE",
        db.display()
    )?;
    Ok(())
}

fn step(text: &str) -> Result<()> {
    Ok(crate::outln!("\n== {text}")?)
}

fn find_sample(given: Option<&Path>) -> Result<PathBuf> {
    let candidates: Vec<PathBuf> = match given {
        Some(path) => vec![path.to_path_buf()],
        None => vec![
            PathBuf::from("data/sample"),
            Path::new(env!("CARGO_MANIFEST_DIR")).join("data/sample"),
        ],
    };
    candidates
        .iter()
        .find(|p| p.is_dir())
        .cloned()
        .ok_or_else(|| {
            InputError::new(format!(
                "sample data not found (looked in {}); pass --sample DIR",
                candidates
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
            .into()
        })
}

fn upload_args(stock: PathBuf, sales: PathBuf) -> UploadArgs {
    UploadArgs {
        stock,
        sales: vec![sales],
        stock_date: None,
        empty_month: Vec::new(),
        allow_incomplete_month: false,
        accept_incoherent: false,
        dry_run: false,
    }
}

fn report_args(format: OutputFormat, output: Option<PathBuf>, top: Option<usize>) -> ReportArgs {
    ReportArgs {
        month: None,
        model: None,
        kind: ReportKind::Forecast,
        format: Some(format),
        output,
        lang: Language::En,
        artist: None,
        album: None,
        style: None,
        price_category: None,
        release_type: None,
        condition: None,
        min_forecast: None,
        min_availability: None,
        sort: Some("reorder_units".to_string()),
        top,
        service_level: None,
    }
}
