//! Fuzzing without a nightly toolchain: proptest feeds the readers arbitrary bytes and
//! mutated real exports, and the cell parsers arbitrary text and numbers, and nothing may
//! panic — every outcome is rows or an error. The regular run is a short smoke; the long
//! run is
//!
//! ```text
//! FUZZ_SECONDS=600 cargo test --release --test fuzz -- --ignored --nocapture
//! ```
//!
//! A crash it finds becomes a case in `regressions` below.

use plastinka::ingest::dates::{self, date_in_name};
use plastinka::ingest::read::{self, Cell};
use plastinka::ingest::rows;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn corpus_files(extension: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .chain(
            std::fs::read_dir(dir.join("base"))
                .unwrap()
                .map(|e| e.unwrap().path()),
        )
        .filter(|p| p.extension().is_some_and(|e| e == extension))
        .collect();
    files.sort();
    files.iter().map(|p| std::fs::read(p).unwrap()).collect()
}

/// Reads `bytes` as a file with `extension`; any outcome but a panic is fine. The input
/// is left in `dir/last.<extension>` so a crash can be kept as a regression file.
fn read_as(dir: &Path, extension: &str, bytes: &[u8]) {
    let path = dir.join(format!("last.{extension}"));
    std::fs::write(&path, bytes).unwrap();
    let _ = read::for_each_row(&path, bytes, |_, cells| {
        for cell in cells {
            let _ = dates::date_cell(*cell);
            let _ = rows::parse_price(*cell);
            let _ = rows::normalise_barcode(*cell);
        }
        Ok(())
    });
}

/// Up to `edits` random byte flips, deletions, insertions and truncations of `seed`.
fn mutated(seeds: Vec<Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    let n = seeds.len();
    (
        0..n,
        prop::collection::vec((any::<u32>(), any::<u8>(), 0u8..4), 0..12),
    )
        .prop_map(move |(pick, edits)| {
            let mut bytes = seeds[pick].clone();
            for (at, byte, kind) in edits {
                if bytes.is_empty() {
                    bytes.push(byte);
                    continue;
                }
                let i = at as usize % bytes.len();
                match kind {
                    0 => bytes[i] = byte,
                    1 => {
                        bytes.remove(i);
                    }
                    2 => bytes.insert(i, byte),
                    _ => bytes.truncate(i),
                }
            }
            bytes
        })
}

fn budget() -> Duration {
    let seconds = std::env::var("FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    Duration::from_secs(seconds)
}

/// Runs `test` on values of `strategy` for `time`, in rounds with fresh seeds.
fn fuzz<S: Strategy>(name: &str, time: Duration, strategy: S, test: impl Fn(S::Value))
where
    S::Value: std::fmt::Debug,
{
    let started = Instant::now();
    let mut cases = 0u64;
    let mut round = 0u64;
    while started.elapsed() < time || round == 0 {
        let mut seed = [0u8; 32];
        seed[..8].copy_from_slice(&round.to_le_bytes());
        seed[8..16].copy_from_slice(&(name.len() as u64 * 7919).to_le_bytes());
        let config = Config {
            cases: 200,
            failure_persistence: None,
            ..Config::default()
        };
        let mut runner =
            TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &seed));
        runner
            .run(&strategy, |value| {
                test(value);
                Ok(())
            })
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        cases += 200;
        round += 1;
    }
    eprintln!(
        "{name}: {cases} cases in {:.0} s without a panic",
        started.elapsed().as_secs_f64()
    );
}

fn all_targets(time: Duration) {
    let dir = tempfile::tempdir().unwrap();
    if let Ok(keep) = std::env::var("FUZZ_KEEP") {
        eprintln!("inputs are written to {} (kept)", dir.path().display());
        let _ = keep;
        let kept = dir.keep();
        return all_targets_in(&kept, time);
    }
    all_targets_in(dir.path(), time);
}

/// A whole upload plan — header search, rows, date order, cleaning, the laws, features —
/// on mutated exports beside a valid stock snapshot.
fn plan(dir: &Path, extension: &str, bytes: &[u8]) {
    let sales = dir.join(format!("sales_2026-03.{extension}"));
    std::fs::write(&sales, bytes).unwrap();
    let request = plastinka::ingest::UploadRequest {
        stock: Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/base/stock_2026-04-01.csv"),
        sales: vec![sales],
        stock_date: None,
        empty_months: Default::default(),
        allow_incomplete_month: true,
        accept_incoherent: false,
        today: chrono::NaiveDate::from_ymd_opt(2026, 11, 28).unwrap(),
        max_file_bytes: 10_000_000,
    };
    let config = plastinka::config::DataConfig::default();
    let stored = plastinka::ingest::laws::StoredMonths::default();
    let _ = plastinka::ingest::plan_upload(&request, &config, &stored, &|_, _| {});
}

fn all_targets_in(dir: &Path, time: Duration) {
    // Workbooks go through the child process, as in the binary: an abort inside calamine
    // (it asked for 1.8 TB on one fuzzed .xls) must be a refusal, not the end of the run.
    plastinka::ingest::workbook::isolate_in(PathBuf::from(env!("CARGO_BIN_EXE_plastinka")));
    let each = time / 8;
    fuzz(
        "csv bytes",
        each,
        prop::collection::vec(any::<u8>(), 0..2048),
        |b| read_as(dir, "csv", &b),
    );
    fuzz("csv mutated", each, mutated(corpus_files("csv")), |b| {
        read_as(dir, "csv", &b)
    });
    fuzz("xlsx mutated", each, mutated(corpus_files("xlsx")), |b| {
        read_as(dir, "xlsx", &b)
    });
    let xls = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("data/fixtures/sales_2026-01.xls"),
    )
    .unwrap();
    fuzz("xls mutated", each, mutated(vec![xls]), |b| {
        read_as(dir, "xls", &b)
    });
    fuzz(
        "upload plan, csv",
        each,
        mutated(corpus_files("csv")),
        |b| plan(dir, "csv", &b),
    );
    fuzz(
        "upload plan, xlsx",
        each,
        mutated(corpus_files("xlsx")),
        |b| plan(dir, "xlsx", &b),
    );
    fuzz(
        "cells",
        each,
        (".{0,40}", any::<f64>()),
        |(text, number)| {
            for cell in [Cell::Text(&text), Cell::Number(number)] {
                let _ = dates::date_cell(cell);
                let _ = dates::parse_date(cell);
                let _ = rows::parse_price(cell);
                let _ = rows::normalise_barcode(cell);
                let _ = rows::parse_release_year(cell);
            }
        },
    );
    fuzz("file names", each, "[a-zа-я0-9._ -]{0,40}", |name| {
        let _ = date_in_name(Path::new(&name));
    });
}

#[test]
fn readers_and_parsers_never_panic_smoke() {
    all_targets(Duration::from_secs(6));
}

#[test]
#[ignore = "the long run: FUZZ_SECONDS=600 cargo test --release --test fuzz -- --ignored"]
fn readers_and_parsers_never_panic_long() {
    all_targets(budget());
}

/// Crashes the fuzzer found, kept so they stay fixed (each is also in the corpus, where
/// the binary must refuse it by name).
#[test]
fn regressions() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    // In a child, as the binary reads workbooks: the second one aborts a release build.
    plastinka::ingest::workbook::isolate_in(PathBuf::from(env!("CARGO_BIN_EXE_plastinka")));
    // calamine 0.38's CFB reader: "slice index starts at 4096 but ends at 3739"; and a
    // 1.8 TB allocation from a DIMENSIONS record.
    for name in ["fuzz_crash_cfb.xls", "fuzz_crash_alloc.xls"] {
        let path = corpus.join(name);
        let bytes = std::fs::read(&path).unwrap();
        let err = read::for_each_row(&path, &bytes, |_, _| Ok(()))
            .unwrap_err()
            .to_string();
        assert!(err.contains("damaged"), "{name}: {err}");
    }
}
