//! Upload defects in the files themselves (issue 7 §1): future dates, the day/month
//! order of a column, mixed separators, a field named twice, and what may be read at all.

mod common;
use common::*;

/// Defect 12: sales dated in the future and a snapshot dated after today.
#[test]
fn dates_after_today_are_refused() {
    let ws = Workspace::new();
    write_csv(
        &ws.path("sales.csv"),
        &SALES_HEADER,
        &[sale(
            "111",
            "Группа крови",
            "2500",
            "01.11.2026",
            "29.11.2026",
        )],
        ',',
    );
    write_csv(
        &ws.path("stock.csv"),
        &STOCK_HEADER,
        &[stock("111", "Группа крови", "2500", "01.11.2026", "1")],
        ',',
    );
    let sales = [ws.path("sales.csv")];
    // today is 2026-11-28 (common::TODAY)
    refused(
        &upload(
            &ws,
            &ws.path("stock.csv"),
            &sales,
            &["--stock-date", "2026-11-30", "--allow-incomplete-month"],
        ),
        &["after today (2026-11-28)", "--as-of"],
    );
    refused(
        &upload(
            &ws,
            &ws.path("stock.csv"),
            &sales,
            &["--stock-date", "2026-11-28", "--allow-incomplete-month"],
        ),
        &["sales.csv: row 2, column «Дата заказа»", "after today"],
    );
    // --as-of moves today for a back-fill.
    ok(&upload(
        &ws,
        &ws.path("stock.csv"),
        &sales,
        &[
            "--stock-date",
            "2026-11-30",
            "--allow-incomplete-month",
            "--as-of",
            "2026-12-01",
        ],
    ));
}

fn month_first(rows: &[Row]) -> Vec<Row> {
    rows.iter()
        .map(|r| {
            let mut r = r.clone();
            for i in [9, 10] {
                let p: Vec<&str> = r[i].split('.').collect();
                r[i] = format!("{}/{}/{}", p[1], p[0], p[2]);
            }
            r
        })
        .collect()
}

/// Defect 13: a month-first file whose days are all ≤ 12 was read day-first.
#[test]
fn the_date_order_is_decided_per_file_from_its_values_or_its_name() {
    let ws = Workspace::new();
    let march = vec![
        sale("111", "Группа крови", "2500", "02.03.2026", "05.03.2026"),
        sale("222", "Звезда", "3000", "01.03.2026", "09.03.2026"),
    ];
    let stock_rows = [stock("111", "Группа крови", "2500", "01.03.2026", "1")];
    write_csv(
        &ws.path("stock_2026-04-01.csv"),
        &STOCK_HEADER,
        &stock_rows,
        ',',
    );
    let stock_path = ws.path("stock_2026-04-01.csv");
    // 03/05/2026, 03/09/2026: month first, every day ≤ 12. The file's name says March.
    write_csv(
        &ws.path("sales_2026-03.csv"),
        &SALES_HEADER,
        &month_first(&march),
        ',',
    );
    let summary = ok(&upload(
        &ws,
        &stock_path,
        &[ws.path("sales_2026-03.csv")],
        &["--dry-run", "--allow-incomplete-month"],
    ));
    assert_eq!(
        summary["months"],
        serde_json::json!(["2026-03"]),
        "{summary}"
    );
    // Nameless, nothing tells: refused with the reason rather than guessed.
    write_csv(
        &ws.path("export.csv"),
        &SALES_HEADER,
        &month_first(&march),
        ',',
    );
    refused(
        &upload(&ws, &stock_path, &[ws.path("export.csv")], &["--dry-run"]),
        &[
            "export.csv: column «Дата заказа»",
            "day-first or month-first",
        ],
    );
    // One value with a second number above 12 proves the order for the whole column.
    let mut proof = march.clone();
    proof.push(sale("333", "Кукушка", "2000", "01.03.2026", "13.03.2026"));
    write_csv(
        &ws.path("export.csv"),
        &SALES_HEADER,
        &month_first(&proof),
        ',',
    );
    let summary = ok(&upload(
        &ws,
        &stock_path,
        &[ws.path("export.csv")],
        &["--dry-run"],
    ));
    assert_eq!(
        summary["months"],
        serde_json::json!(["2026-03"]),
        "{summary}"
    );
    // Both orders in one column: refused, naming a row of each.
    let mut both = month_first(&proof);
    both.push(sale("444", "Пачка", "2000", "01.03.2026", "14.03.2026"));
    write_csv(&ws.path("export.csv"), &SALES_HEADER, &both, ',');
    refused(
        &upload(&ws, &stock_path, &[ws.path("export.csv")], &["--dry-run"]),
        &["mixes day-first and month-first", "row 4", "row 5"],
    );
}

/// Defect 14: a CSV whose rows mix `;` and `,` was refused as "unfinished".
#[test]
fn mixed_separators_are_named() {
    let ws = Workspace::new();
    let rows = vec![
        sale("111", "Группа крови", "2500", "02.03.2026", "05.03.2026"),
        sale("222", "Звезда", "3000", "01.03.2026", "31.03.2026"),
    ];
    write_csv(&ws.path("sales_2026-03.csv"), &SALES_HEADER, &rows, ';');
    let mut text = std::fs::read_to_string(ws.path("sales_2026-03.csv")).unwrap();
    text.push_str(&rows[0].join(","));
    text.push('\n');
    std::fs::write(ws.path("sales_2026-03.csv"), text).unwrap();
    write_csv(&ws.path("stock_2026-04-01.csv"), &STOCK_HEADER, &[], ',');
    refused(
        &upload(
            &ws,
            &ws.path("stock_2026-04-01.csv"),
            &[ws.path("sales_2026-03.csv")],
            &[],
        ),
        &["sales_2026-03.csv", "row 4", "mixes separators"],
    );
}

/// Defect 15: two «Дата заказа» columns with different values were read silently.
#[test]
fn a_field_named_twice_must_agree() {
    let ws = Workspace::new();
    let mut header: Vec<&str> = SALES_HEADER.to_vec();
    header.push("Дата заказа");
    let mut rows = vec![
        sale("111", "Группа крови", "2500", "02.03.2026", "05.03.2026"),
        sale("222", "Звезда", "3000", "01.03.2026", "31.03.2026"),
    ];
    for r in &mut rows {
        let sold = r[10].clone();
        r.push(sold);
    }
    write_csv(&ws.path("sales_2026-03.csv"), &header, &rows, ',');
    write_csv(&ws.path("stock_2026-04-01.csv"), &STOCK_HEADER, &[], ',');
    let stock = ws.path("stock_2026-04-01.csv");
    ok(&upload(
        &ws,
        &stock,
        &[ws.path("sales_2026-03.csv")],
        &["--dry-run"],
    ));
    rows[1][11] = "30.03.2026".into();
    write_csv(&ws.path("sales_2026-03.csv"), &header, &rows, ',');
    refused(
        &upload(&ws, &stock, &[ws.path("sales_2026-03.csv")], &["--dry-run"]),
        &["row 3, column «Дата заказа»", "twice (columns 11 and 12)"],
    );
}

/// Defect 16: a FIFO blocked forever and /dev/zero grew memory without bound.
#[cfg(unix)]
#[test]
fn only_plain_files_of_a_sane_size_are_read() {
    let ws = Workspace::new();
    write_csv(&ws.path("stock_2026-04-01.csv"), &STOCK_HEADER, &[], ',');
    let stock = ws.path("stock_2026-04-01.csv");
    let fifo = ws.path("sales_fifo.csv");
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(status.success());
    let started = std::time::Instant::now();
    refused(
        &upload(&ws, &stock, &[fifo], &[]),
        &["sales_fifo.csv", "not a regular file"],
    );
    assert!(started.elapsed().as_secs() < 20);
    refused(
        &upload(&ws, &stock, &["/dev/zero".into()], &[]),
        &["/dev/zero", "not a regular file"],
    );
    // Past data.max_file_mb: refused before reading.
    let big = ws.path("sales_big.csv");
    let file = std::fs::File::create(&big).unwrap();
    file.set_len(3_000_000).unwrap();
    let out = ws
        .plastinka()
        .env("PLASTINKA_DATA_MAX_FILE_MB", "2")
        .args(["upload", "--stock"])
        .arg(&stock)
        .arg("--sales")
        .arg(&big)
        .output()
        .unwrap();
    refused(&out, &["sales_big.csv", "data.max_file_mb"]);
    assert!(ws.db_litter().is_empty(), "{:?}", ws.db_litter());
}

/// A workbook whose sheet spans more cells than `data.workbook_memory_mb` holds is
/// refused by name, and the reader's child stops at the limit instead of the machine's.
#[test]
fn a_workbook_too_big_to_unpack_is_refused_at_the_memory_limit() {
    let ws = Workspace::new();
    let path = ws.path("sales_2026-10.xlsx");
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    for (col, name) in SALES_HEADER.iter().enumerate() {
        sheet.write_string(0, col as u16, *name).unwrap();
    }
    let row = sale("111", "Группа крови", "2500", "01.10.2026", "02.10.2026");
    for (col, value) in row.iter().enumerate() {
        sheet.write_string(1, col as u16, value.as_str()).unwrap();
    }
    // One stray cell far away: the sheet becomes 200,000 × 100 cells to unpack (about
    // 640 MB as the reader holds them), for a file of a few KB.
    sheet.write_string(199_999, 99, "x").unwrap();
    book.save(&path).unwrap();
    write_csv(
        &ws.path("stock.csv"),
        &STOCK_HEADER,
        &[stock("111", "Группа крови", "2500", "01.10.2026", "1")],
        ',',
    );
    let out = ws
        .plastinka()
        .env("PLASTINKA_DATA_WORKBOOK_MEMORY_MB", "256")
        .args(["upload", "--stock"])
        .arg(ws.path("stock.csv"))
        .arg("--sales")
        .arg(&path)
        .args(["--stock-date", "2026-11-01"])
        .output()
        .unwrap();
    refused(
        &out,
        &["sales_2026-10.xlsx", "data.workbook_memory_mb (256 MB)"],
    );
    assert!(!ws.db().exists());
}
