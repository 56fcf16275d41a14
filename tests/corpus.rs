//! The bad-input corpus (`tests/corpus/`, written by `examples/make_corpus.rs`): every
//! file either reads correctly or is refused with exit 2, naming the file and — where a
//! cell is at fault — its row and column; the database stays byte-for-byte as it was.
//! Things git cannot hold (a FIFO, a 1 GB sparse file, a symlink loop, a directory of
//! unrelated files) are made here.

mod common;
use common::*;
use std::path::{Path, PathBuf};

enum Expect {
    /// Reads: this many of the file's rows read and kept.
    Reads(u64, u64),
    /// Reads as above, and this query over the stored upload gives this number.
    ReadsAs(u64, u64, &'static str, i64),
    /// Refused with exit 2; the message holds each of these.
    Refused(&'static [&'static str]),
}
use Expect::*;

const CASES: &[(&str, Expect)] = &[
    ("valid.xlsx", Reads(5, 5)),
    (
        "truncated.xlsx",
        Refused(&["not a readable Excel workbook"]),
    ),
    (
        "not_a_zip.xlsx",
        Refused(&["not a readable Excel workbook"]),
    ),
    ("two_sheets.xlsx", Refused(&["2 sheets"])),
    ("merged_cells.xlsx", Reads(5, 4)),
    // =1000+990 is read as its result: the month's revenue is 17 copies × 1990.
    (
        "formulas.xlsx",
        ReadsAs(
            5,
            5,
            "SELECT CAST(sum(revenue_rub) AS INTEGER) FROM monthly_features",
            17 * 1990,
        ),
    ),
    ("header_not_first.xlsx", Reads(5, 5)),
    (
        "excel_serial_before_1900.xlsx",
        Refused(&["row 4, column «Дата заказа»", "«59» is not a date"]),
    ),
    ("number_cells.xlsx", Reads(5, 5)),
    ("header_not_first.csv", Reads(5, 5)),
    ("duplicated_headers_agree.csv", Reads(5, 5)),
    (
        "duplicated_headers_disagree.csv",
        Refused(&["row 4, column «Дата заказа»", "twice"]),
    ),
    (
        "missing_columns.csv",
        Refused(&["row 1 (header)", "Дата создания, Дата заказа"]),
    ),
    ("empty.csv", Refused(&["the file is empty"])),
    ("blank_lines_only.csv", Refused(&["the file is empty"])),
    ("header_only.csv", Reads(0, 0)),
    (
        "mixed_separators.csv",
        Refused(&["row 7", "mixes separators"]),
    ),
    ("quoted_newline.csv", Reads(5, 5)),
    ("unclosed_quote.csv", Refused(&["row 7", "quote left open"])),
    ("long_cell.csv", Reads(5, 5)),
    ("short_rows.csv", Refused(&["row 7", "cut short"])),
    ("cp1251_semicolon.csv", Reads(5, 5)),
    ("utf8_bom_tab.csv", Reads(5, 5)),
    (
        "mixed_encodings.csv",
        Refused(&["row 7", "mixes encodings"]),
    ),
    ("binary_garbage.csv", Refused(&["binary data"])),
    ("sales.ods", Refused(&["unsupported file type «.ods»"])),
    ("dates_dotted.csv", Reads(5, 5)),
    ("dates_iso.csv", Reads(5, 5)),
    ("dates_with_time.csv", Reads(5, 5)),
    ("dates_dashed_day_first.csv", Reads(5, 5)),
    // 03/14/2026 … month first: every sale lands in March, none in another month.
    (
        "dates_us_month_first.csv",
        ReadsAs(5, 5, "SELECT count(*) FROM months", 1),
    ),
    (
        "dates_slashed_ambiguous.csv",
        Refused(&["column «Дата заказа»", "day-first or month-first"]),
    ),
    ("dates_slashed_ambiguous_sales_2026-03.csv", Reads(5, 5)),
    (
        "dates_in_words.csv",
        Refused(&["row 3, column «Дата заказа»", "not a date"]),
    ),
    (
        "dates_impossible.csv",
        Refused(&["row 4, column «Дата заказа»", "«31.02.2026»"]),
    ),
    (
        "dates_future.csv",
        Refused(&["row 5, column «Дата заказа»", "after today"]),
    ),
    (
        "dates_before_arrival.csv",
        Refused(&["row 6, column «Дата создания»", "law 3"]),
    ),
    (
        "price_with_letters.csv",
        Refused(&["row 2, column «Цена, руб.»", "not a price"]),
    ),
    (
        "price_negative.csv",
        Refused(&["row 3, column «Цена, руб.»", "negative"]),
    ),
    ("price_formats.csv", Reads(5, 5)),
    (
        "barcode_scientific.csv",
        Refused(&["row 5, column «Штрихкод»", "scientific notation"]),
    ),
    // 4607000000102.0 is the record 4607000000102 of the row above: 12 + 5 − 1 products sold.
    (
        "barcode_float_text.csv",
        ReadsAs(
            5,
            5,
            "SELECT count(DISTINCT product_id) FROM monthly_features WHERE units_sold > 0",
            16,
        ),
    ),
    // `ss` is sealed: no opened copy anywhere.
    (
        "cover_lowercase.csv",
        ReadsAs(
            5,
            5,
            "SELECT count(*) FROM products WHERE condition = 'opened'",
            0,
        ),
    ),
    ("year_words.csv", Reads(5, 4)),
    (
        "stock_copies_negative.csv",
        Refused(&["row 2, column «Экземпляры»"]),
    ),
    (
        "stock_copies_fractional.csv",
        Refused(&["row 2, column «Экземпляры»"]),
    ),
    ("stock_copies_zero.csv", Reads(6, 5)),
    // Found by tests/fuzz.rs: calamine's .xls reader panicked on it (cfb.rs slice index).
    (
        "fuzz_crash_cfb.xls",
        Refused(&["not a readable Excel workbook", "damaged"]),
    ),
    // Found by the long fuzz run: calamine asked for 1.8 TB on it (a DIMENSIONS record it
    // trusts) and the allocation failure aborted the process; now it only kills the
    // workbook reader's child (in debug builds the same arithmetic overflows and panics).
    (
        "fuzz_crash_alloc.xls",
        Refused(&["not a readable Excel workbook", "damaged"]),
    ),
];

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus")
}

/// A store holding the base month, to upload each corpus file beside it.
fn base() -> Workspace {
    let ws = Workspace::new();
    let out = upload(&ws, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    ws
}

/// Uploads March again: the base exports plus `extra` (a stock file replaces the base's).
fn upload(ws: &Workspace, extra: &[PathBuf]) -> std::process::Output {
    let base = corpus().join("base");
    let stock_file = extra.iter().find(|p| {
        p.file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("stock_"))
    });
    let mut cmd = ws.plastinka();
    cmd.args(["--json", "upload", "--stock-date", "2026-04-01", "--stock"])
        .arg(
            stock_file
                .cloned()
                .unwrap_or_else(|| base.join("stock_2026-04-01.csv")),
        )
        .arg("--sales")
        .arg(base.join("sales_2026-03.csv"))
        .args(extra.iter().filter(|p| Some(*p) != stock_file));
    cmd.output().unwrap()
}

fn check(ws: &Workspace, name: &str, path: PathBuf, expect: &Expect) {
    let before = ws.db_bytes();
    let out = upload(ws, std::slice::from_ref(&path));
    let err = stderr(&out);
    match expect {
        Reads(read, kept) | ReadsAs(read, kept, _, _) => {
            assert!(out.status.success(), "{name}: {err}");
            let summary = json(&out);
            let file = summary["files"]
                .as_array()
                .unwrap()
                .iter()
                .find(|f| f["path"].as_str().unwrap().ends_with(name))
                .unwrap_or_else(|| panic!("{name} not in the summary: {summary}"));
            assert_eq!(
                (file["rows_read"].as_u64(), file["rows_kept"].as_u64()),
                (Some(*read), Some(*kept)),
                "{name}"
            );
            if let ReadsAs(_, _, query, value) = expect {
                assert_eq!(ws.sql(query), *value, "{name}: {query}");
            }
        }
        Refused(needles) => {
            assert_eq!(out.status.code(), Some(2), "{name}: {err}");
            assert!(
                err.contains(name),
                "{name}: the message does not name the file: {err}"
            );
            for needle in *needles {
                assert!(
                    err.contains(needle),
                    "{name}: «{needle}» missing from: {err}"
                );
            }
            assert_eq!(ws.db_bytes(), before, "{name} changed the database");
        }
    }
}

#[test]
fn every_corpus_file_reads_correctly_or_is_refused_by_name() {
    let ws = base();
    assert!(CASES.len() >= 30);
    let on_disk = std::fs::read_dir(corpus())
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().is_file())
        .count();
    assert_eq!(
        on_disk,
        CASES.len(),
        "every file of tests/corpus has an expected outcome"
    );
    for (name, expect) in CASES {
        check(&ws, name, corpus().join(name), expect);
    }
}

#[cfg(unix)]
#[test]
fn what_git_cannot_hold_is_refused_quickly_and_by_name() {
    let ws = base();
    let before = ws.db_bytes();
    let refused = |path: PathBuf, needle: &str| {
        let started = std::time::Instant::now();
        let out = upload(&ws, std::slice::from_ref(&path));
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{}: {err}", path.display());
        assert!(
            err.contains(&path.display().to_string()) && err.contains(needle),
            "{err}"
        );
        assert!(
            started.elapsed().as_secs() < 30,
            "{} took {:?}",
            path.display(),
            started.elapsed()
        );
        assert_eq!(ws.db_bytes(), before);
    };
    // A 1 GB sparse file: refused by size before a byte is read.
    let sparse = ws.path("sales_sparse.csv");
    std::fs::File::create(&sparse)
        .unwrap()
        .set_len(1 << 30)
        .unwrap();
    refused(sparse, "data.max_file_mb");
    // A symlink loop.
    let a = ws.path("loop_a.csv");
    std::os::unix::fs::symlink(ws.path("loop_b.csv"), &a).unwrap();
    std::os::unix::fs::symlink(&a, ws.path("loop_b.csv")).unwrap();
    refused(a, "cannot read");
    // A FIFO would block a reader forever.
    let fifo = ws.path("sales_pipe.csv");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    refused(fifo, "not a regular file");
    // A directory of unrelated files: nothing to read there…
    let junk = ws.path("junk");
    std::fs::create_dir(&junk).unwrap();
    std::fs::write(junk.join("notes.txt"), "покупки").unwrap();
    std::fs::write(junk.join("photo.png"), [0x89, b'P', b'N', b'G']).unwrap();
    refused(junk.clone(), "holds no .xlsx, .xls or .csv file");
    // …and beside an export the unrelated files are skipped.
    std::fs::copy(corpus().join("dates_iso.csv"), junk.join("dates_iso.csv")).unwrap();
    let out = upload(&ws, &[junk]);
    assert!(out.status.success(), "{}", stderr(&out));
}
