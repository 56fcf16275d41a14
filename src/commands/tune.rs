//! `plastinka tune`: run (or continue) a study, show its table, and activate a trial's
//! settings. The search itself lives in `forecast::tune`; this file runs evaluations on
//! worker threads and stores each one the moment it finishes.

use super::Context;
use crate::cli::{TuneArgs, TuneCommand};
use crate::error::InputError;
use crate::forecast::history::History;
use crate::forecast::tune::schedule::{Job, Schedule, find};
use crate::forecast::tune::space::Space;
use crate::forecast::tune::{
    self, CURRENT, FORMAT_VERSION, Outcome, StudyRecord, TrialRecord, TunedSettings,
};
use crate::store::history::DataVersion;
use anyhow::Result;
use std::collections::VecDeque;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, mpsc};
use std::time::Instant;

pub fn run(context: &Context, args: &TuneArgs) -> Result<()> {
    match &args.command {
        Some(TuneCommand::Activate { trial, study }) => activate(context, study.as_deref(), *trial),
        Some(TuneCommand::Deactivate) => deactivate(context),
        Some(TuneCommand::Show { study }) => show(context, study.as_deref()),
        None => search(context, args),
    }
}

/// Everything the evaluations of one run share.
struct Study<'a> {
    record: StudyRecord,
    schedule: Schedule,
    space: Space,
    /// The settings in use now (tuned ones included), on one thread: trial 0.
    current: crate::config::Config,
    history: &'a History,
    version: DataVersion,
}

fn search(context: &Context, args: &TuneArgs) -> Result<()> {
    let started = Instant::now();
    let deadline = args
        .time_budget
        .map(|budget| {
            started
                .checked_add(budget)
                .ok_or_else(|| InputError::new("--time-budget: too long"))
        })
        .transpose()?;
    let (history, version) = context.existing_store()?.load_history_versioned()?;
    let study = open_study(context, args, &history, version)?;
    let mut stored = load_stored(context, &study)?;
    let resumed = stored.len();
    let workers = match context.config.training.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    let mut unfinished = 0;
    let mut evaluated = 0;
    for rung in 0..study.schedule.budgets.len() {
        let Some(jobs) = study.schedule.rung(rung, &stored) else {
            break;
        };
        let pending: Vec<Job> = jobs
            .into_iter()
            .filter(|j| find(&stored, j.trial, j.epochs).is_none())
            .collect();
        let total = pending.len();
        let finished = run_jobs(context, &study, &stored, pending, workers, deadline)?;
        unfinished = total - finished.len();
        evaluated += finished.len();
        stored.extend(finished);
        if unfinished > 0 {
            break;
        }
    }
    let complete = unfinished == 0 && study.schedule.is_complete(&stored);
    let activation = match args.activate {
        true => Some(activate_best(context, &study, &stored, complete)?),
        false => None,
    };
    let mut report = crate::report::tune::build(&study.record, &study.schedule, &stored, complete);
    report.meta["resumed_evaluations"] = resumed.into();
    report.meta["evaluated_now"] = evaluated.into();
    report.meta["seconds"] = started.elapsed().as_secs_f64().into();
    if let Some((settings, message)) = &activation {
        report.meta["activated"] = serde_json::json!(settings);
        report.meta["activation"] = message.as_str().into();
    }
    print(context, &report)?;
    if context.json {
        return Ok(());
    }
    crate::outln!(
        "Study {}: {} trial(s), {evaluated} evaluation(s) in {:.0} s{}.",
        study.record.id,
        study.schedule.trials,
        started.elapsed().as_secs_f64(),
        match resumed {
            0 => String::new(),
            n => format!(", {n} stored by earlier runs"),
        }
    )?;
    if !complete {
        crate::outln!(
            "The time budget ran out before the study finished: run the same `plastinka tune` again to continue it."
        )?;
    }
    if let Some((_, message)) = activation {
        crate::outln!("{message}")?;
    }
    Ok(())
}

/// The study these settings, data and options make: the stored one when it exists (its
/// trials continue), else a new one, stored with its first evaluation. Its identity and
/// the settings candidates are set on leave out tuned settings (every candidate sets
/// each searched key itself), so activating a trial does not start a new study.
fn open_study<'a>(
    context: &Context,
    args: &TuneArgs,
    history: &'a History,
    version: DataVersion,
) -> Result<Study<'a>> {
    let months = usize::from(args.months);
    let max_lags = crate::forecast::backtest::max_lags(history, months);
    // Every evaluation trains on one thread (results depend on the thread count; the
    // cores run evaluations side by side instead).
    let mut base = context.layers.resolve(None)?;
    base.training.threads = 1;
    let mut current = context.config.clone();
    current.training.threads = 1;
    if max_lags < base.model.lags && context.layers.set_above_tuned("model.lags").is_some() {
        return Err(InputError::new(format!(
            "a backtest of {months} month(s) leaves at most {max_lags} lags to train with; model.lags = {} is fixed by the settings file or environment",
            base.model.lags
        ))
        .into());
    }
    if max_lags == 0 {
        return Err(InputError::new(format!(
            "tune needs enough complete months for a backtest of {months} month(s); store more months or use --months 1"
        ))
        .into());
    }
    let space = Space::new(
        |key| context.layers.set_above_tuned(key).is_some(),
        max_lags,
    );
    if space.params.is_empty() {
        return Err(InputError::new(
            "every setting tune searches is fixed by the settings file or environment: nothing to tune",
        )
        .into());
    }
    let searched: Vec<String> = space.params.iter().map(|p| p.key.to_string()).collect();
    let min_epochs = usize::from(args.min_epochs);
    let id = StudyRecord::identity(version.as_str(), months, min_epochs, &base, &searched);
    let record = match context.existing_store()?.study(&id)? {
        Some(record) => record,
        None => StudyRecord {
            format_version: FORMAT_VERSION,
            id,
            created_at: crate::clock::timestamp(),
            data_version: version.as_str().to_string(),
            months,
            seed: base.training.seed,
            min_epochs,
            max_epochs: base.training.max_epochs,
            threads: 1,
            fixed: tune::space::PARAMS
                .iter()
                .filter(|p| !searched.iter().any(|k| k == p.key))
                .map(|p| p.key.to_string())
                .collect(),
            searched,
            base,
        },
    };
    let schedule = Schedule::new(usize::from(args.trials), min_epochs, record.max_epochs);
    Ok(Study {
        record,
        schedule,
        space,
        current,
        history,
        version,
    })
}

/// The study's stored evaluations. Trial 0 is the settings in use *now*: a stored one
/// made with other values (before an activation) is dropped, and when a candidate with
/// exactly these values has a full-budget score, that score is trial 0's (the same
/// settings, data and seed train the same model), stored without training.
fn load_stored(context: &Context, study: &Study) -> Result<Vec<TrialRecord>> {
    let mut stored = context.existing_store()?.trials(&study.record.id)?;
    let values = study.space.current(&study.current);
    let full = study.schedule.full();
    stored.retain(|r| r.trial != CURRENT || r.values == values);
    if find(&stored, CURRENT, full).is_none()
        && let Some(same) = stored
            .iter()
            .find(|r| r.epochs == full && r.values == values && r.score().is_some())
    {
        let reused = TrialRecord {
            trial: CURRENT,
            seconds: 0.0,
            created_at: crate::clock::timestamp(),
            ..same.clone()
        };
        save(context, study, &reused)?;
        stored.push(reused);
    }
    Ok(stored)
}

/// A trial's settings: as stored at another budget, else as the sampler draws them.
fn values_of(study: &Study, stored: &[TrialRecord], trial: usize) -> crate::config::SettingValues {
    if trial == CURRENT {
        return study.space.current(&study.current);
    }
    stored
        .iter()
        .find(|r| r.trial == trial)
        .map(|r| r.values.clone())
        .unwrap_or_else(|| {
            let start = study.space.current(&study.record.base);
            study.space.sample(study.record.seed, trial, &start)
        })
}

/// Runs `jobs` on `workers` threads; the main thread stores each evaluation as it
/// arrives. After `deadline` no evaluation starts. Returns the stored evaluations; on an
/// error, what finished is still stored before the error is returned.
fn run_jobs(
    context: &Context,
    study: &Study,
    stored: &[TrialRecord],
    jobs: Vec<Job>,
    workers: usize,
    deadline: Option<Instant>,
) -> Result<Vec<TrialRecord>> {
    let total = jobs.len();
    let queue: Mutex<VecDeque<(Job, crate::config::SettingValues)>> = Mutex::new(
        jobs.into_iter()
            .map(|job| (job, values_of(study, stored, job.trial)))
            .collect(),
    );
    let stop = AtomicBool::new(false);
    let (sender, receiver) = mpsc::channel::<Result<TrialRecord>>();
    // Each evaluation's line is printed above the bar.
    let bar = context.progress_bar(
        total,
        "tune [{bar:30}] {pos}/{len} evaluations of this rung ({elapsed}, ~{eta} left)",
    );
    let mut finished = Vec::new();
    let mut failure = None;
    std::thread::scope(|scope| {
        for _ in 0..workers.min(total) {
            let sender = sender.clone();
            let (queue, stop) = (&queue, &stop);
            scope.spawn(move || {
                while !stop.load(Ordering::Relaxed) && deadline.is_none_or(|d| Instant::now() < d) {
                    let next = queue.lock().ok().and_then(|mut q| q.pop_front());
                    let Some((job, values)) = next else { break };
                    if sender.send(evaluate(study, job, values)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(sender);
        for result in receiver {
            match result.and_then(|record| save(context, study, &record).map(|()| record)) {
                Ok(record) => {
                    announce(bar.as_ref(), &record, finished.len() + 1, total);
                    finished.push(record);
                }
                Err(e) => {
                    stop.store(true, Ordering::Relaxed);
                    failure.get_or_insert(e);
                }
            }
        }
    });
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(finished),
    }
}

/// One evaluation. Settings this data cannot train with (refused settings, too few
/// months, a diverging loss) make a failed trial, stored like a scored one; any other
/// error (or a panic) is the machine's, and stops the run without storing the trial.
fn evaluate(study: &Study, job: Job, values: crate::config::SettingValues) -> Result<TrialRecord> {
    let started = Instant::now();
    let record = &study.record;
    let (base, set) = match job.trial {
        CURRENT => (&study.current, crate::config::SettingValues::new()),
        _ => (&record.base, values.clone()),
    };
    let run = || {
        tune::evaluate(
            study.history,
            record.months,
            base,
            &set,
            job.epochs,
            record.threads,
        )
    };
    let outcome = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)) {
        Ok(Ok(score)) => Outcome::Scored(score),
        Ok(Err(e)) if e.downcast_ref::<InputError>().is_some() => Outcome::Failed(format!("{e:#}")),
        Ok(Err(e)) => {
            return Err(e.context(format!(
                "tune: trial {} at {} epochs",
                job.trial, job.epochs
            )));
        }
        Err(_) => anyhow::bail!(
            "tune: trial {} at {} epochs panicked",
            job.trial,
            job.epochs
        ),
    };
    Ok(TrialRecord {
        format_version: FORMAT_VERSION,
        study_id: record.id.clone(),
        trial: job.trial,
        epochs: job.epochs,
        values,
        outcome,
        seconds: started.elapsed().as_secs_f64(),
        threads: record.threads,
        created_at: crate::clock::timestamp(),
    })
}

/// Stores one evaluation (and the study with its first), refusing when an upload
/// changed the months the study scores on.
fn save(context: &Context, study: &Study, record: &TrialRecord) -> Result<()> {
    let session = context.write_existing("tune")?;
    session.ensure_data_version(&study.version)?;
    session.save_study(&study.record)?;
    session.save_trial(record)?;
    crate::faults::check("tune-save")?;
    session.commit()
}

fn announce(bar: Option<&indicatif::ProgressBar>, record: &TrialRecord, done: usize, total: usize) {
    let what = match &record.outcome {
        Outcome::Scored(s) => format!("pinball {:.4}", s.pinball),
        Outcome::Failed(why) => format!("failed: {why}"),
    };
    let line = format!(
        "tune: trial {} at {} epochs: {what} ({:.1} s) [{done}/{total}]",
        record.trial, record.epochs, record.seconds
    );
    match bar {
        Some(bar) => {
            bar.set_position(done as u64);
            bar.println(line);
        }
        None => {
            let _ = writeln!(std::io::stderr(), "{line}");
        }
    }
}

fn print(context: &Context, report: &crate::report::Report) -> Result<()> {
    if context.json {
        crate::outln!(
            "{}",
            String::from_utf8_lossy(&crate::report::render::json(report)?)
        )?;
    } else {
        crate::outln!(
            "{}",
            crate::report::render::table(report, crate::report::Language::En)
        )?;
    }
    Ok(())
}

/// `--activate`: the best trial, when it has a full-budget score below the current
/// settings' on the same months. Returns what was activated and a sentence saying so.
fn activate_best(
    context: &Context,
    study: &Study,
    stored: &[TrialRecord],
    complete: bool,
) -> Result<(Option<TunedSettings>, String)> {
    if !complete {
        return Ok((
            None,
            "Not activated: the study is unfinished; run `plastinka tune` again to finish it."
                .to_string(),
        ));
    }
    let full = study.schedule.full();
    let best = study.schedule.best(stored).filter(|b| b.epochs == full);
    // The current settings' score; infinite when they cannot train on this data at all.
    let reference = find(stored, CURRENT, full).map(|r| r.pinball().unwrap_or(f64::INFINITY));
    Ok(match (best, reference) {
        (Some(best), Some(reference)) if best.pinball().is_some_and(|p| p < reference) => {
            let settings = store_activation(context, &study.record, stored, best.trial)?;
            let message = format!("Activated: {}.", settings.provenance());
            (Some(settings), message)
        }
        (Some(best), Some(_)) => (
            None,
            format!(
                "Not activated: the best trial ({}) does not beat the current settings.",
                best.trial
            ),
        ),
        _ => (
            None,
            "Not activated: no trial has a full-budget score beside the current settings' yet."
                .to_string(),
        ),
    })
}

/// A sentence for a person, or `{"message": …}` for `--json`.
fn say(context: &Context, line: &str) -> Result<()> {
    if context.json {
        crate::outln!("{}", serde_json::json!({ "message": line }))?;
    } else {
        crate::outln!("{line}")?;
    }
    Ok(())
}

/// Stores `trial`'s settings as the tuned ones in use.
fn store_activation(
    context: &Context,
    study: &StudyRecord,
    stored: &[TrialRecord],
    trial: usize,
) -> Result<TunedSettings> {
    let mut evaluations = stored.iter().filter(|r| r.trial == trial).peekable();
    if evaluations.peek().is_none() {
        return Err(InputError::new(format!(
            "study {} has no trial {trial}; `plastinka tune show` lists them",
            study.id
        ))
        .into());
    }
    let Some(any) = evaluations.find(|r| r.score().is_some()) else {
        return Err(InputError::new(format!(
            "trial {trial} of study {} failed (its settings could not be trained on this data); not activated",
            study.id
        ))
        .into());
    };
    let score = |t: usize| find(stored, t, study.max_epochs).and_then(|r| r.score().cloned());
    let settings = TunedSettings {
        format_version: FORMAT_VERSION,
        activated_at: crate::clock::timestamp(),
        study_id: study.id.clone(),
        trial,
        values: any.values.clone(),
        score: score(trial),
        reference: score(CURRENT),
    };
    // The settings must be valid on top of the file's before they are stored.
    context.layers.resolve(Some(&settings.values))?;
    let session = context.write_existing("tune activate")?;
    session.activate_tuned(&settings)?;
    session.commit()?;
    Ok(settings)
}

fn activate(context: &Context, study: Option<&str>, trial: usize) -> Result<()> {
    let store = context.existing_store()?;
    let study = chosen_study(&store, study)?;
    let stored = store.trials(&study.id)?;
    let data = store.data_version()?;
    drop(store);
    let mut notes = Vec::new();
    if data.as_str() != study.data_version {
        notes.push(format!(
            "study {} was scored before the newest upload; its scores may not hold now",
            study.id
        ));
    }
    let mut base = context.layers.resolve(None)?;
    base.training.threads = 1;
    if (&base.model, &base.training) != (&study.base.model, &study.base.training) {
        notes.push(format!(
            "the settings file or environment changed since study {} ran; its scores were made with the earlier ones",
            study.id
        ));
    }
    let settings = store_activation(context, &study, &stored, trial)?;
    for note in &notes {
        let _ = writeln!(std::io::stderr(), "note: {note}");
    }
    if context.json {
        crate::outln!("{}", serde_json::json!({ "activated": settings }))?;
        return Ok(());
    }
    if settings.score.is_none() {
        crate::outln!(
            "note: trial {trial} has no full-budget ({} epochs) score; the halving cut it earlier",
            study.max_epochs
        )?;
    }
    crate::outln!("Activated: {}.", settings.provenance())?;
    Ok(())
}

fn deactivate(context: &Context) -> Result<()> {
    let session = context.write_existing("tune deactivate")?;
    let n = session.deactivate_tuned()?;
    session.commit()?;
    say(
        context,
        if n > 0 {
            "Tuned settings deactivated: train uses the defaults and the settings file."
        } else {
            "No tuned settings were in use."
        },
    )
}

fn show(context: &Context, study: Option<&str>) -> Result<()> {
    print(context, &study_report(&context.existing_store()?, study)?)
}

/// The table of a stored study (the newest without `id`), for `tune show` and
/// `report --kind tune`.
pub fn study_report(
    store: &crate::store::Store,
    id: Option<&str>,
) -> Result<crate::report::Report> {
    let study = chosen_study(store, id)?;
    let stored = store.trials(&study.id)?;
    let trials = stored.iter().map(|r| r.trial).max().unwrap_or(0);
    let schedule = Schedule::new(trials, study.min_epochs, study.max_epochs);
    // Only the current settings stored: killed before any candidate finished.
    let complete = trials > 0 && schedule.is_complete(&stored);
    Ok(crate::report::tune::build(
        &study, &schedule, &stored, complete,
    ))
}

fn chosen_study(store: &crate::store::Store, id: Option<&str>) -> Result<StudyRecord> {
    let found = match id {
        Some(id) => store.study(id)?,
        None => store.latest_study()?,
    };
    found.ok_or_else(|| {
        InputError::new(match id {
            Some(id) => format!("no tuning study «{id}»"),
            None => "no tuning study yet: run `plastinka tune`".to_string(),
        })
        .into()
    })
}
