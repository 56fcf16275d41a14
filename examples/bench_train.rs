//! Training benchmark: the whole local `train` (both phases) on a generated shop.
//!
//! ```text
//! cargo build --release --examples
//! $CARGO_TARGET_DIR/release/examples/bench_train --products 5000 --months 36 --threads 2
//! $CARGO_TARGET_DIR/release/examples/bench_train --scaling 1,2,4 --max-epochs 4
//! ```
//!
//! Generates the data with the `generate` example (a child process), uploads it through
//! the library, then trains with the settings `train` reads, less tuned ones: the defaults,
//! then ./plastinka.toml and `PLASTINKA_*` variables (`--max-epochs N` caps phase 1 for a
//! quick look; `--threads` sets the worker threads, 0 = every core). Prints the machine
//! (threads, CPU features), the model's widths, windows per second in each phase, total
//! time and peak memory (VmHWM of this process, which also holds the upload; the upload
//! alone is measured by `bench_upload`), then the peak memory of forecasting every
//! product again from the stored model. `--scaling 1,2,4` trains once per thread count
//! on the same data and prints speed-up and efficiency (speed-up / threads).
//! `--concurrent 2` trains once alone on one thread, then twice at once in this process
//! (one thread each) and prints the combined windows/s against the lone run's: how much
//! two independent trainings in one process slow each other.

use plastinka::config::{Config, ModelConfig, TrainingConfig};
use plastinka::forecast::history::History;
use plastinka::forecast::stored::ModelRecord;
use plastinka::forecast::tide::Tide;
use plastinka::forecast::train::{self, Trained};
use plastinka::ingest::{self, laws::StoredMonths};
use std::time::Instant;

mod common;

/// What one training run measured.
struct Run {
    threads: usize,
    trained: Trained,
    /// Median seconds of an epoch, first epoch left out (warm-up), per phase.
    epoch_seconds: [f64; 2],
    total_seconds: f64,
}

impl Run {
    fn windows_per_second(&self, phase: usize) -> f64 {
        let windows = [self.trained.windows_phase1, self.trained.windows_phase2][phase];
        windows as f64 / self.epoch_seconds[phase]
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let products = common::arg("--products", "5000");
    let months = common::arg("--months", "36");
    // ./plastinka.toml and `PLASTINKA_<SECTION>_<KEY>` variables apply, as for `train`
    // (not `--config` / `PLASTINKA_CONFIG`, nor tuned settings: there is no database yet).
    let mut config = Config::load(None)?;
    config.training.max_epochs =
        common::arg("--max-epochs", &config.training.max_epochs.to_string()).parse()?;
    let scaling: Vec<usize> = common::arg("--scaling", &common::arg("--threads", "0"))
        .split(',')
        .map(|n| n.trim().parse::<usize>().map(resolve_threads))
        .collect::<Result<_, _>>()?;
    let dir = tempfile::tempdir()?;
    let request = common::generate(dir.path(), &products, &months)?;
    let plan = ingest::plan_upload(&request, &config.data, &StoredMonths::default(), &|_, _| {})?;
    let db = dir.path().join("bench.db");
    common::store_upload(&db, &plan)?;
    let history = common::open(&db)?.load_history()?;

    println!("machine: {}", machine());
    let concurrent: usize = common::arg("--concurrent", "0").parse()?;
    if concurrent > 1 {
        config.training.threads = 1;
        return contention(&history, &config, concurrent);
    }
    let mut runs = Vec::new();
    for &threads in &scaling {
        config.training.threads = threads;
        let run = train_once(&history, &config.model, &config.training)?;
        print_run(&run, &products, &months, &config.model);
        println!("  peak memory (VmHWM) so far: {}", common::peak_memory());
        runs.push(run);
    }
    if runs.len() > 1 {
        print_scaling(&runs);
    }
    if let Some(run) = runs.last() {
        let record = ModelRecord::from_trained(
            "bench".into(),
            &run.trained,
            &history,
            &config.model,
            &config.training,
        );
        common::reset_peak_memory();
        let started = Instant::now();
        let (_, forecasts) = record.forecast(&history, &train::device("cpu")?)?;
        println!(
            "forecast from the stored model: {} products in {:.2} s, peak memory (VmHWM since reset) {}",
            forecasts.len(),
            started.elapsed().as_secs_f64(),
            common::peak_memory()
        );
    }
    Ok(())
}

/// One single-thread training alone, then `n` at once in this process, each on its own
/// thread: independent work, so any slowdown beyond what separate processes show is
/// contention inside the process (burn's autodiff lock, the allocator).
fn contention(
    history: &History,
    config: &Config,
    n: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    let solo = train_once(history, &config.model, &config.training)?.windows_per_second(0);
    let rates: Vec<f64> = std::thread::scope(|scope| {
        let runs: Vec<_> = (0..n)
            .map(|_| {
                scope.spawn(|| {
                    train_once(history, &config.model, &config.training)
                        .map(|run| run.windows_per_second(0))
                        .map_err(|e| e.to_string())
                })
            })
            .collect();
        runs.into_iter()
            .map(|run| match run.join() {
                Ok(result) => result,
                Err(_) => Err("a training thread panicked".to_string()),
            })
            .collect::<Result<_, _>>()
    })?;
    let total: f64 = rates.iter().sum();
    println!(
        "in-process contention (phase-1 windows/s, one thread per training): alone {solo:.0}; \
         {n} at once {} — together {total:.0}, {:.2}× alone",
        rates
            .iter()
            .map(|r| format!("{r:.0}"))
            .collect::<Vec<_>>()
            .join(", "),
        total / solo
    );
    Ok(())
}

fn resolve_threads(n: usize) -> usize {
    if n == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        n
    }
}

fn train_once(
    history: &History,
    model: &ModelConfig,
    training: &TrainingConfig,
) -> Result<Run, Box<dyn std::error::Error>> {
    let started = Instant::now();
    let mut epochs: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    let mut last = 0.0;
    let trained = train::train(history, model, training, &mut |r| {
        let seconds = r.seconds - if r.epoch == 1 { 0.0 } else { last };
        last = r.seconds;
        if r.epoch > 1 {
            epochs[usize::from(r.phase == 2)].push(seconds);
        }
        eprintln!(
            "phase {} epoch {}/{} train {:.5} valid {} ({:.1} s)",
            r.phase,
            r.epoch,
            r.epochs,
            r.train_loss,
            r.valid_loss.map_or("-".into(), |v| format!("{v:.5}")),
            r.seconds
        );
    })?;
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
    };
    let [one, two] = epochs;
    Ok(Run {
        threads: training.threads,
        trained,
        epoch_seconds: [median(one), median(two)],
        total_seconds: started.elapsed().as_secs_f64(),
    })
}

fn print_run(run: &Run, products: &str, months: &str, model: &ModelConfig) {
    let t = &run.trained;
    println!(
        "train of {products} products × {months} months, model defaults, threads: {}",
        run.threads
    );
    let widths = Tide::new(model, t.widths, &burn::tensor::Device::flex())
        .describe()
        .iter()
        .map(|(name, (i, h, o))| format!("{name} {i}→{h}→{o}"))
        .collect::<Vec<_>>()
        .join(", ");
    println!(
        "  inputs: lags {}, past {}, future {}, static {}; blocks (in→hidden→out): {widths}",
        t.widths.lags, t.widths.past, t.widths.future, t.widths.statics
    );
    println!(
        "  windows per epoch: phase 1 {}, phase 2 {}",
        t.windows_phase1, t.windows_phase2
    );
    println!(
        "  median epoch (after the first): phase 1 {:.2} s = {:.0} windows/s; phase 2 {:.2} s = {:.0} windows/s",
        run.epoch_seconds[0],
        run.windows_per_second(0),
        run.epoch_seconds[1],
        run.windows_per_second(1)
    );
    println!(
        "  training throughput over all epochs: {:.0} windows/s",
        t.windows_per_second
    );
    println!(
        "  epochs: phase 1 best {}, phase 2 {}",
        t.best_epoch, t.retrain_epochs
    );
    println!(
        "  total train (both phases, features, prediction): {:.1} s",
        run.total_seconds
    );
    println!(
        "  held-out pinball: model {:.4}; {}",
        t.validation.pinball,
        t.baselines
            .iter()
            .map(|b| format!("{} {:.4}", b.name, b.evaluation.pinball))
            .collect::<Vec<_>>()
            .join(", ")
    );
}

fn print_scaling(runs: &[Run]) {
    let base = runs[0].windows_per_second(0) / runs[0].threads as f64;
    // Speed-up against the first row's rate per thread (run it with 1 first).
    println!("scaling (phase-1 windows/s; speed-up against the first row per thread)");
    println!("  threads  windows/s  speed-up  efficiency");
    for run in runs {
        let rate = run.windows_per_second(0);
        let speedup = rate / base;
        println!(
            "  {:>7}  {:>9.0}  {:>8.2}  {:>10.2}",
            run.threads,
            rate,
            speedup,
            speedup / run.threads as f64
        );
    }
}

/// Threads available and the vector extensions this CPU has (burn-flex's gemm picks its
/// kernels at run time from these).
fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    #[cfg(target_arch = "x86_64")]
    let features = [
        ("avx2", std::arch::is_x86_feature_detected!("avx2")),
        ("fma", std::arch::is_x86_feature_detected!("fma")),
        ("avx512f", std::arch::is_x86_feature_detected!("avx512f")),
    ]
    .iter()
    .filter(|(_, on)| *on)
    .map(|(name, _)| *name)
    .collect::<Vec<_>>()
    .join(" ");
    #[cfg(not(target_arch = "x86_64"))]
    let features = String::from("(not x86-64)");
    format!("{cores} hardware threads; CPU features: {features}")
}
