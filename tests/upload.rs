//! End-to-end tests of `plastinka upload`: the real binary on real xlsx/csv files.

mod common;
use common::*;

/// Two records over January–March 2026; the snapshot is taken on 1 April.
/// A: two copies on the shelf since December, one copy arrives and sells each month.
/// B: sells a copy each month; one copy arrived 20 March and is on the shelf.
fn quarter(ws: &Workspace) -> Vec<std::path::PathBuf> {
    let jan = vec![
        sale("111", "Группа крови", "2500", "10.01.2026", "20.01.2026"),
        sale("222", "Звезда", "3000", "01.12.2025", "02.01.2026"),
    ];
    let feb = vec![
        sale("111", "Группа крови", "2500", "01.02.2026", "05.02.2026"),
        sale("222", "Звезда", "3000", "03.02.2026", "28.02.2026"),
    ];
    let mar = vec![
        sale("111", "Группа крови", "2500", "01.03.2026", "31.03.2026"),
        sale("222", "Звезда", "3000", "15.03.2026", "16.03.2026"),
    ];
    write_csv(&ws.path("sales_2026-01.csv"), &SALES_HEADER, &jan, ',');
    write_xlsx(&ws.path("sales_2026-02.xlsx"), &SALES_HEADER, &feb, 0);
    write_csv(&ws.path("sales_2026-03.csv"), &SALES_HEADER, &mar, ';');
    write_csv(
        &ws.path("stock.csv"),
        &STOCK_HEADER,
        &[
            stock("111", "Группа крови", "2500", "15.12.2025", "2"),
            stock("222", "Звезда", "3000", "20.03.2026", "1"),
        ],
        ',',
    );
    vec![
        ws.path("sales_2026-01.csv"),
        ws.path("sales_2026-02.xlsx"),
        ws.path("sales_2026-03.csv"),
    ]
}

fn upload(
    ws: &Workspace,
    stock: &str,
    sales: &[std::path::PathBuf],
    extra: &[&str],
) -> std::process::Output {
    let mut cmd = ws.plastinka();
    cmd.arg("--json")
        .arg("upload")
        .arg("--stock")
        .arg(ws.path(stock))
        .arg("--sales")
        .args(sales)
        .args(extra);
    cmd.output().unwrap()
}

#[test]
fn a_clean_quarter_is_stored_with_its_features() {
    let ws = Workspace::new();
    let sales = quarter(&ws);
    let out = upload(&ws, "stock.csv", &sales, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let summary = json(&out);
    assert_eq!(summary["outcome"], "stored");
    assert_eq!(
        summary["months"],
        serde_json::json!(["2026-01", "2026-02", "2026-03"])
    );
    assert_eq!(summary["stock_date"], "2026-04-01");
    assert_eq!(summary["products"], 2);
    assert_eq!(summary["units_sold"], 6);
    assert_eq!(summary["copies_in_stock"], 3);
    assert_eq!(ws.sql("SELECT count(*) FROM months WHERE complete = 1"), 3);
    // A in January: 2 copies on the shelf from December, one arrives 10th and sells 20th.
    let a_jan = "FROM monthly_features f JOIN products p ON p.id = f.product_id WHERE p.barcode = '111' AND f.month = '2026-01'";
    assert_eq!(ws.sql(&format!("SELECT stock_start {a_jan}")), 2);
    assert_eq!(ws.sql(&format!("SELECT stock_end {a_jan}")), 2);
    assert_eq!(ws.sql(&format!("SELECT arrivals {a_jan}")), 1);
    assert_eq!(ws.sql(&format!("SELECT in_stock_days {a_jan}")), 31);
    // B in March: out of stock 1–14 March, in stock 15–16 and 20–31.
    let b_mar = "FROM monthly_features f JOIN products p ON p.id = f.product_id WHERE p.barcode = '222' AND f.month = '2026-03'";
    assert_eq!(ws.sql(&format!("SELECT in_stock_days {b_mar}")), 14);
    assert_eq!(
        ws.sql("SELECT count(*) FROM upload_files WHERE length(sha256) = 64"),
        4
    );
}

#[test]
fn the_human_summary_is_a_table() {
    let ws = Workspace::new();
    let sales = quarter(&ws);
    let out = ws
        .plastinka()
        .arg("upload")
        .arg("--stock")
        .arg(ws.path("stock.csv"))
        .arg("--sales")
        .args(&sales)
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("Stored upload #1") && text.contains("2026-01 … 2026-03: 3"),
        "{text}"
    );
}

#[test]
fn an_identical_reupload_is_a_reported_no_op() {
    let ws = Workspace::new();
    let sales = quarter(&ws);
    assert!(upload(&ws, "stock.csv", &sales, &[]).status.success());
    let before = ws.db_bytes();
    let out = upload(&ws, "stock.csv", &sales, &[]);
    assert!(out.status.success());
    assert_eq!(json(&out)["outcome"], "unchanged");
    assert_eq!(ws.db_bytes(), before);
    assert_eq!(ws.sql("SELECT count(*) FROM uploads"), 1);
}

#[test]
fn reuploading_a_month_replaces_it() {
    let ws = Workspace::new();
    let sales = quarter(&ws);
    assert!(upload(&ws, "stock.csv", &sales, &[]).status.success());
    // March again, now with a third copy of B sold on the 30th (it arrived on the 20th).
    let mar = vec![
        sale("111", "Группа крови", "2500", "01.03.2026", "31.03.2026"),
        sale("222", "Звезда", "3000", "15.03.2026", "16.03.2026"),
        sale("222", "Звезда", "3000", "20.03.2026", "30.03.2026"),
    ];
    write_csv(&ws.path("march_fixed.csv"), &SALES_HEADER, &mar, ',');
    write_csv(
        &ws.path("stock2.csv"),
        &STOCK_HEADER,
        &[
            stock("111", "Группа крови", "2500", "15.12.2025", "2"),
            stock("222", "Звезда", "3000", "20.03.2026", "1"),
        ],
        ',',
    );
    let out = upload(&ws, "stock2.csv", &[ws.path("march_fixed.csv")], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let summary = json(&out);
    assert_eq!(summary["replaced_months"], serde_json::json!(["2026-03"]));
    assert_eq!(
        ws.sql("SELECT sum(units_sold) FROM monthly_features WHERE month = '2026-03'"),
        3
    );
    assert_eq!(ws.sql("SELECT sum(units_sold) FROM monthly_features"), 7);
    assert_eq!(ws.sql("SELECT count(*) FROM months"), 3);
    assert_eq!(
        ws.sql("SELECT upload_id FROM months WHERE month = '2026-03'"),
        2
    );
    assert_eq!(
        ws.sql("SELECT upload_id FROM months WHERE month = '2026-01'"),
        1
    );
}

#[test]
fn a_gap_in_the_stored_months_is_refused_and_named() {
    let ws = Workspace::new();
    let sales = quarter(&ws);
    assert!(upload(&ws, "stock.csv", &sales, &[]).status.success());
    let before = ws.db_bytes();
    write_csv(
        &ws.path("may.csv"),
        &SALES_HEADER,
        &[sale(
            "111",
            "Группа крови",
            "2500",
            "15.12.2025",
            "10.05.2026",
        )],
        ',',
    );
    write_csv(
        &ws.path("stock_june.csv"),
        &STOCK_HEADER,
        &[stock("111", "Группа крови", "2500", "15.12.2025", "1")],
        ',',
    );
    let out = upload(
        &ws,
        "stock_june.csv",
        &[ws.path("may.csv")],
        &["--stock-date", "01.06.2026"],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("law 1") && err.contains("2026-04"), "{err}");
    assert_eq!(ws.db_bytes(), before);
}

#[test]
fn a_non_contiguous_upload_is_refused_and_nothing_is_created() {
    let ws = Workspace::new();
    let sales = quarter(&ws);
    let out = upload(&ws, "stock.csv", &[sales[0].clone(), sales[2].clone()], &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("law 2") && err.contains("2026-02"), "{err}");
    assert!(ws.db_litter().is_empty(), "{:?}", ws.db_litter());
}

#[test]
fn an_incoherent_snapshot_is_refused_unless_accepted() {
    let ws = Workspace::new();
    let mut sales = quarter(&ws);
    // A copy "sold" on 20 January that only arrives on the 25th.
    let jan = vec![
        sale("111", "Группа крови", "2500", "25.01.2026", "20.01.2026"),
        sale("222", "Звезда", "3000", "01.12.2025", "02.01.2026"),
    ];
    write_csv(&ws.path("bad_jan.csv"), &SALES_HEADER, &jan, ',');
    sales[0] = ws.path("bad_jan.csv");
    let out = upload(&ws, "stock.csv", &sales, &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("law 3") && err.contains("bad_jan.csv: row 2, column «Дата создания»"),
        "{err}"
    );
    assert!(ws.db_litter().is_empty(), "{:?}", ws.db_litter());

    let out = upload(&ws, "stock.csv", &sales, &["--accept-incoherent"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(json(&out)["incoherent_rows"], 1);
    assert_eq!(ws.sql("SELECT incoherent_rows FROM uploads"), 1);
    assert_eq!(
        ws.sql("SELECT count(*) FROM uploads WHERE warnings_json LIKE '%incoherent%'"),
        1
    );
}

#[test]
fn sales_after_the_snapshot_date_are_refused() {
    let ws = Workspace::new();
    let sales = quarter(&ws);
    let out = upload(&ws, "stock.csv", &sales, &["--stock-date", "2026-03-20"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("law 3") && err.contains("sales_2026-03.csv: row 2"),
        "{err}"
    );
}

#[test]
fn an_unfinished_month_needs_an_explicit_flag() {
    let ws = Workspace::new();
    let mut sales = quarter(&ws);
    // March stops on the 16th: the snapshot (default: the 17th) is inside March.
    write_csv(
        &ws.path("mar_part.csv"),
        &SALES_HEADER,
        &[sale("222", "Звезда", "3000", "15.03.2026", "16.03.2026")],
        ',',
    );
    write_csv(
        &ws.path("stock_17.csv"),
        &STOCK_HEADER,
        &[stock("111", "Группа крови", "2500", "15.12.2025", "2")],
        ',',
    );
    sales[2] = ws.path("mar_part.csv");
    let out = upload(&ws, "stock_17.csv", &sales, &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("2026-03 is unfinished") && err.contains("--allow-incomplete-month"),
        "{err}"
    );
    assert!(ws.db_litter().is_empty(), "{:?}", ws.db_litter());

    let out = upload(&ws, "stock_17.csv", &sales, &["--allow-incomplete-month"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(json(&out)["last_month_complete"], false);
    assert_eq!(
        ws.sql("SELECT complete FROM months WHERE month = '2026-03'"),
        0
    );
    assert_eq!(
        ws.sql("SELECT observed_days FROM monthly_features WHERE month = '2026-03' LIMIT 1"),
        16
    );
}

#[test]
fn malformed_files_are_refused_naming_file_row_and_column() {
    let ws = Workspace::new();
    let sales = quarter(&ws);
    assert!(upload(&ws, "stock.csv", &sales, &[]).status.success());
    let before = ws.db_bytes();
    let april = |rows: Vec<Row>| rows;
    type Writer = Box<dyn Fn(&std::path::Path)>;
    let cases: Vec<(&str, Writer, &str)> = vec![
        (
            "headers.csv",
            Box::new(|p| std::fs::write(p, "Name,Price\nx,1\n").unwrap()),
            "missing required column",
        ),
        (
            "empty.csv",
            Box::new(|p| std::fs::write(p, "").unwrap()),
            "empty",
        ),
        (
            "garbage.csv",
            Box::new(|p| std::fs::write(p, [0u8, 159, 146, 150, 0, 1, 2]).unwrap()),
            "binary",
        ),
        (
            "garbage.xlsx",
            Box::new(|p| std::fs::write(p, b"PK\x03\x04 not really a zip").unwrap()),
            "not a readable Excel workbook",
        ),
        (
            "sheets.xlsx",
            Box::new(|p| {
                write_xlsx(
                    p,
                    &SALES_HEADER,
                    &[sale(
                        "111",
                        "Группа крови",
                        "2500",
                        "15.12.2025",
                        "10.04.2026",
                    )],
                    1,
                )
            }),
            "2 sheets",
        ),
        (
            "baddate.csv",
            Box::new(move |p| {
                write_csv(
                    p,
                    &SALES_HEADER,
                    &april(vec![
                        sale("111", "Группа крови", "2500", "15.12.2025", "10.04.2026"),
                        sale("111", "Группа крови", "2500", "15.12.2025", "32.04.2026"),
                    ]),
                    ',',
                )
            }),
            "row 3, column «Дата заказа»: «32.04.2026» is not a date",
        ),
        (
            "negative.csv",
            Box::new(|p| {
                write_csv(
                    p,
                    &SALES_HEADER,
                    &[sale(
                        "111",
                        "Группа крови",
                        "-100",
                        "15.12.2025",
                        "10.04.2026",
                    )],
                    ',',
                )
            }),
            "row 2, column «Цена, руб.»: negative price",
        ),
        (
            "words.xlsx",
            Box::new(|p| {
                write_xlsx(
                    p,
                    &SALES_HEADER,
                    &[sale(
                        "111",
                        "Группа крови",
                        "дорого",
                        "15.12.2025",
                        "10.04.2026",
                    )],
                    0,
                )
            }),
            "row 2, column «Цена, руб.»: «дорого» is not a price",
        ),
    ];
    write_csv(
        &ws.path("stock_may.csv"),
        &STOCK_HEADER,
        &[stock("111", "Группа крови", "2500", "15.12.2025", "1")],
        ',',
    );
    for (name, write, expected) in cases {
        let path = ws.path(name);
        write(&path);
        let out = upload(
            &ws,
            "stock_may.csv",
            &[path],
            &["--stock-date", "2026-05-01"],
        );
        assert_eq!(out.status.code(), Some(2), "{name}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains(name) && err.contains(expected),
            "{name}: {err}"
        );
        assert!(!err.contains("panicked"), "{err}");
        assert_eq!(ws.db_bytes(), before, "{name} changed the database");
    }
}

#[test]
fn dropped_rows_are_counted_by_reason_and_recorded() {
    let ws = Workspace::new();
    let mut sales = quarter(&ws);
    let mut no_artist = sale("333", "Без имени", "1000", "01.01.2026", "03.01.2026");
    no_artist[1] = String::new();
    let jan = vec![
        sale("111", "Группа крови", "2500", "10.01.2026", "20.01.2026"),
        sale("222", "Звезда", "3000", "01.12.2025", "02.01.2026"),
        no_artist,
        sale("444", "Подарок", "0", "01.01.2026", "04.01.2026"),
    ];
    write_csv(&ws.path("jan_dirty.csv"), &SALES_HEADER, &jan, ',');
    sales[0] = ws.path("jan_dirty.csv");
    let out = upload(&ws, "stock.csv", &sales, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let summary = json(&out);
    assert_eq!(
        summary["dropped_rows"],
        serde_json::json!({"no artist": 1, "price is 0": 1})
    );
    assert_eq!(summary["rows_read"], 10);
    assert_eq!(
        ws.sql("SELECT count(*) FROM uploads WHERE dropped_json LIKE '%missing_artist%'"),
        1
    );
}

#[test]
fn encodings_separators_and_copy_counts_are_detected() {
    let ws = Workspace::new();
    let sales = quarter(&ws);
    // January as Windows-1251 with `;`, February as UTF-8 with BOM and tabs.
    let jan = vec![
        sale("111", "Группа крови", "2500", "10.01.2026", "20.01.2026"),
        sale("222", "Звезда", "3000", "01.12.2025", "02.01.2026"),
    ];
    write_csv(&ws.path("jan_1251.csv"), &SALES_HEADER, &jan, ';');
    let text = std::fs::read_to_string(ws.path("jan_1251.csv")).unwrap();
    let (cp1251, _, _) = encoding_rs::WINDOWS_1251.encode(&text);
    std::fs::write(ws.path("jan_1251.csv"), &cp1251).unwrap();
    let feb = vec![
        sale("111", "Группа крови", "2500", "01.02.2026", "05.02.2026"),
        sale("222", "Звезда", "3000", "03.02.2026", "28.02.2026"),
    ];
    write_csv(&ws.path("feb_tab.csv"), &SALES_HEADER, &feb, '\t');
    let with_bom = [
        b"\xEF\xBB\xBF".as_slice(),
        &std::fs::read(ws.path("feb_tab.csv")).unwrap(),
    ]
    .concat();
    std::fs::write(ws.path("feb_tab.csv"), with_bom).unwrap();
    let out = upload(
        &ws,
        "stock.csv",
        &[
            ws.path("jan_1251.csv"),
            ws.path("feb_tab.csv"),
            sales[2].clone(),
        ],
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let summary = json(&out);
    assert_eq!(summary["units_sold"], 6);
    assert_eq!(
        summary["copies_in_stock"], 3,
        "Экземпляры = 2 on one row counts twice"
    );
    assert_eq!(
        ws.sql("SELECT count(*) FROM products WHERE artist = 'Кино'"),
        2
    );
}

#[test]
fn legacy_xls_exports_are_read() {
    let ws = Workspace::new();
    let mut sales = quarter(&ws);
    // The shipped .xls holds the same January, with Excel date cells and a numeric barcode.
    sales[0] =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/fixtures/sales_2026-01.xls");
    let out = upload(&ws, "stock.csv", &sales, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let summary = json(&out);
    assert_eq!(summary["units_sold"], 6);
    assert_eq!(
        summary["products"], 2,
        "numeric barcode 111 is the same product as text 111"
    );
    assert_eq!(ws.sql("SELECT units_sold FROM monthly_features f JOIN products p ON p.id = f.product_id WHERE p.barcode = '111' AND f.month = '2026-01'"), 1);
}

#[test]
fn a_dry_run_writes_nothing() {
    let ws = Workspace::new();
    let sales = quarter(&ws);
    let out = upload(&ws, "stock.csv", &sales, &["--dry-run"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(json(&out)["outcome"], "dry_run");
    assert!(ws.db_litter().is_empty(), "{:?}", ws.db_litter());
}

#[test]
fn the_sample_data_uploads() {
    let ws = Workspace::new();
    let sample = sample();
    let stock = std::fs::read_dir(&sample)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("stock_")
        })
        .expect("a stock snapshot in data/sample");
    let out = ws
        .plastinka()
        .args(["--json", "upload", "--stock"])
        .arg(&stock)
        .arg("--sales")
        .arg(&sample)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let summary = json(&out);
    assert_eq!(summary["months"].as_array().unwrap().len(), 23);
    assert!(summary["products"].as_u64().unwrap() >= 200);
    // and the held-out next month continues it
    let next = sample.join("next");
    let stock = std::fs::read_dir(&next)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().contains("stock_"))
        .unwrap();
    let out = ws
        .plastinka()
        .args(["--json", "upload", "--stock"])
        .arg(&stock)
        .arg("--sales")
        .arg(&next)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(ws.sql("SELECT count(*) FROM months"), 24);
}

#[test]
fn a_bad_setting_is_rejected_with_its_name() {
    let ws = Workspace::new();
    std::fs::write(ws.path("plastinka.toml"), "[data]\nmin_yaer = 1\n").unwrap();
    let sales = quarter(&ws);
    let out = upload(&ws, "stock.csv", &sales, &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("min_yaer"), "{}", stderr(&out));
}
