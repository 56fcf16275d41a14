//! Upload defects a shop meets every year (issue 7 §1), each pinned end to end through
//! the real binary: closed months, snapshot dates, settings, clamped copies, grouping of
//! months, barcodes typed as numbers, future and ambiguous dates, mixed separators,
//! duplicate columns, and what may be read at all.

mod common;
use common::shop::simulate;
use common::*;

/// Every stored monthly feature row, as text, in a fixed order.
fn features(ws: &Workspace) -> Vec<String> {
    let conn = rusqlite::Connection::open(ws.db()).unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT f.month, p.key, f.units_sold, f.arrivals, f.stock_start, f.stock_end, f.observed_days,
                    f.in_stock_days, round(f.availability, 9), round(f.confidence, 9), round(f.mean_sales_units, 9),
                    round(f.mean_sales_rub, 6), round(f.lost_sales_units, 9), round(f.lost_sales_rub, 6), f.revenue_rub
             FROM monthly_features f JOIN products p ON p.id = f.product_id ORDER BY f.month, p.key",
        )
        .unwrap();
    let n = stmt.column_count();
    stmt.query_map([], |row| {
        Ok((0..n)
            .map(|i| format!("{:?}", row.get_ref(i).unwrap()))
            .collect::<Vec<_>>()
            .join("|"))
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

/// Defect 7: a product sold out for a whole month got rows in a multi-month upload and
/// none month by month. Property: for any shop and any split of its months into
/// uploads, the stored rows equal those of uploading every month at once, and those of
/// uploading them one by one.
#[test]
fn months_uploaded_at_once_or_one_by_one_store_the_same_rows() {
    use proptest::prelude::*;
    let config = ProptestConfig {
        cases: 6,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest!(config, |(seed in 0u64..1_000_000, products in 5usize..30, months in 2usize..6, split in 1usize..5)| {
        let split = split.min(months - 1);
        let sim = simulate(products, months, first_of(2025, 11), seed);
        // Law 2: every month of an upload has sales (a closed month is another test).
        prop_assume!(sim.sales.iter().all(|s| !s.is_empty()));
        let at_once = Workspace::new();
        let sales: Vec<_> = (0..months).map(|k| sim.write_sales(k, at_once.dir.path())).collect();
        ok(&upload(&at_once, &sim.write_snapshot(months - 1, at_once.dir.path()), &sales, &[]));
        let expected = features(&at_once);
        prop_assume!(!expected.is_empty());

        let one_by_one = Workspace::new();
        for k in 0..months {
            let sales = sim.write_sales(k, one_by_one.dir.path());
            ok(&upload(&one_by_one, &sim.write_snapshot(k, one_by_one.dir.path()), &[sales], &[]));
        }
        prop_assert_eq!(features(&one_by_one), expected.clone(), "month by month");

        let two = Workspace::new();
        let dir = two.dir.path();
        let head: Vec<_> = (0..split).map(|k| sim.write_sales(k, dir)).collect();
        ok(&upload(&two, &sim.write_snapshot(split - 1, dir), &head, &[]));
        let tail: Vec<_> = (split..months).map(|k| sim.write_sales(k, dir)).collect();
        ok(&upload(&two, &sim.write_snapshot(months - 1, dir), &tail, &[]));
        prop_assert_eq!(features(&two), expected, "split after month {}", split);
    });
}

/// Defect 2: a month without sales could never be stored.
#[test]
fn a_month_the_shop_was_closed_is_stored_as_empty_and_the_history_goes_on() {
    let ws = Workspace::new();
    let dir = ws.dir.path();
    let sim = simulate(12, 4, first_of(2026, 1), 7);
    ok(&upload(
        &ws,
        &sim.write_snapshot(0, dir),
        &[sim.write_sales(0, dir)],
        &[],
    ));
    // February: closed. Its snapshot is January's (nothing moved) and no sale happened.
    let feb_stock = dir.join("stock_2026-03-01.csv");
    std::fs::copy(sim.write_snapshot(0, dir), &feb_stock).unwrap();
    let nothing = dir.join("sales_2026-02.csv");
    write_csv(&nothing, &SALES_HEADER, &[], ',');
    // Without the flag an upload without a single sale says how to store a closed month.
    refused(
        &upload(&ws, &feb_stock, std::slice::from_ref(&nothing), &[]),
        &["no sales rows", "--empty-month"],
    );
    let summary = ok(&upload(&ws, &feb_stock, &[], &["--empty-month", "2026-02"]));
    assert_eq!(summary["empty_months"], serde_json::json!(["2026-02"]));
    assert_eq!(
        ws.sql("SELECT empty FROM months WHERE month = '2026-02'"),
        1
    );
    assert_eq!(
        ws.sql("SELECT sum(units_sold) FROM monthly_features WHERE month = '2026-02'"),
        0
    );
    // A sale in a month declared empty is a contradiction.
    let out = upload(
        &ws,
        &feb_stock,
        &[sim.write_sales(0, dir)],
        &["--empty-month", "2026-01"],
    );
    refused(&out, &["--empty-month 2026-01"]);
    // The history goes on: March and April, then a model trained across the closed month.
    for k in [2, 3] {
        ok(&upload(
            &ws,
            &sim.write_snapshot(k, dir),
            &[sim.write_sales(k, dir)],
            &[],
        ));
    }
    assert_eq!(ws.sql("SELECT count(*) FROM months"), 4);
    std::fs::write(
        ws.path("plastinka.toml"),
        "[model]\nlags = 1\nhidden_size = 8\nnum_encoder_layers = 1\nnum_decoder_layers = 1\ndecoder_output_dim = 4\ntemporal_decoder_hidden = 4\n[training]\nmax_epochs = 2\nmin_sales_months = 0\n",
    )
    .unwrap();
    let out = ws.plastinka().args(["--json", "train"]).output().unwrap();
    let trained = ok(&out);
    assert_eq!(trained["forecast_month"], "2026-05");
    assert_eq!(trained["metrics"]["holdout_month"], "2026-04");
}

/// Defect 7, the case itself: a record sold out through all of February (its last copy
/// went in January, the next arrived in March) has no February row however the months
/// are uploaded.
#[test]
fn a_month_sold_out_from_first_day_to_last_has_no_row_in_any_grouping() {
    let jan = vec![sale(
        "111",
        "Группа крови",
        "2500",
        "10.12.2025",
        "20.01.2026",
    )];
    let feb = vec![sale("222", "Звезда", "3000", "01.12.2025", "10.02.2026")];
    let mar = vec![sale(
        "111",
        "Группа крови",
        "2500",
        "05.03.2026",
        "15.03.2026",
    )];
    let shelf = |rows: Vec<Row>| rows;
    let snapshots = [
        shelf(vec![stock("222", "Звезда", "3000", "01.12.2025", "1")]),
        shelf(vec![]),
        shelf(vec![stock(
            "111",
            "Группа крови",
            "2500",
            "05.03.2026",
            "1",
        )]),
    ];
    let write = |ws: &Workspace, k: usize| -> (std::path::PathBuf, std::path::PathBuf) {
        let month = ["2026-01", "2026-02", "2026-03"][k];
        let next = ["2026-02-01", "2026-03-01", "2026-04-01"][k];
        let sales = ws.path(&format!("sales_{month}.csv"));
        write_csv(
            &sales,
            &SALES_HEADER,
            &[jan.clone(), feb.clone(), mar.clone()][k],
            ',',
        );
        let stock = ws.path(&format!("stock_{next}.csv"));
        write_csv(&stock, &STOCK_HEADER, &snapshots[k], ',');
        (stock, sales)
    };
    let at_once = Workspace::new();
    let sales: Vec<_> = (0..3).map(|k| write(&at_once, k).1).collect();
    ok(&upload(&at_once, &write(&at_once, 2).0, &sales, &[]));
    let one_by_one = Workspace::new();
    for k in 0..3 {
        let (stock, sales) = write(&one_by_one, k);
        ok(&upload(&one_by_one, &stock, &[sales], &[]));
    }
    let february_rows_of_111 = "SELECT count(*) FROM monthly_features f JOIN products p ON p.id = f.product_id WHERE p.barcode = '111' AND f.month = '2026-02'";
    assert_eq!(at_once.sql(february_rows_of_111), 0);
    assert_eq!(features(&one_by_one), features(&at_once));
}

/// Defect 3: the snapshot date defaulted to the day after the latest sale, so a month
/// whose last day had no sale was refused as unfinished. The date in the name counts.
#[test]
fn the_snapshot_date_comes_from_the_stock_files_name() {
    let ws = Workspace::new();
    let dir = ws.dir.path();
    let mut sim = simulate(10, 1, first_of(2026, 3), 11);
    sim.sales[0].retain(|row| row[10] != "31.03.2026" && row[10] != "30.03.2026");
    let stock = sim.write_snapshot(0, dir); // stock_2026-04-01.csv
    let summary = ok(&upload(
        &ws,
        &stock,
        &[sim.write_sales(0, dir)],
        &["--dry-run"],
    ));
    assert_eq!(summary["stock_date"], "2026-04-01");
    assert_eq!(summary["last_month_complete"], true);
    // Without a date in the name the old default applies, and the refusal says what to give.
    let unnamed = dir.join("stock.csv");
    std::fs::copy(&stock, &unnamed).unwrap();
    let out = upload(&ws, &unnamed, &[sim.write_sales(0, dir)], &[]);
    refused(&out, &["unfinished", "--stock-date"]);
    let named = dir.join("остатки_01.04.2026.csv");
    std::fs::copy(&stock, &named).unwrap();
    ok(&upload(
        &ws,
        &named,
        &[sim.write_sales(0, dir)],
        &["--dry-run"],
    ));
}

/// Defect 5: identical files re-uploaded after changing `[data]` settings were "unchanged".
#[test]
fn changed_data_settings_make_a_reupload_count() {
    let ws = Workspace::new();
    let dir = ws.dir.path();
    let sim = simulate(10, 1, first_of(2026, 3), 5);
    let (stock, sales) = (sim.write_snapshot(0, dir), sim.write_sales(0, dir));
    ok(&upload(&ws, &stock, std::slice::from_ref(&sales), &[]));
    assert_eq!(
        ok(&upload(&ws, &stock, std::slice::from_ref(&sales), &[]))["outcome"],
        "unchanged"
    );
    std::fs::write(
        ws.path("plastinka.toml"),
        "[data]\nprice_category_edges = [1000.0, 3000.0]\n",
    )
    .unwrap();
    let again = ok(&upload(&ws, &stock, std::slice::from_ref(&sales), &[]));
    assert_eq!(again["outcome"], "stored");
    assert!(
        ws.sql("SELECT count(*) FROM products WHERE price_category_label = '(1000, 3000]'") > 0
    );
}

/// Defect 6: a snapshot copy clamped by --accept-incoherent was counted in the snapshot
/// but not in the reconstructed end stock.
#[test]
fn a_clamped_snapshot_copy_stays_on_the_reconstructed_shelf() {
    let ws = Workspace::new();
    write_csv(
        &ws.path("sales_2026-03.csv"),
        &SALES_HEADER,
        &[sale(
            "111",
            "Группа крови",
            "2500",
            "01.03.2026",
            "05.03.2026",
        )],
        ',',
    );
    // Two copies "arrive" on the snapshot day itself, after the shelf was counted.
    write_csv(
        &ws.path("stock_2026-04-01.csv"),
        &STOCK_HEADER,
        &[stock("222", "Звезда", "3000", "01.04.2026", "2")],
        ',',
    );
    let sales = [ws.path("sales_2026-03.csv")];
    refused(
        &upload(&ws, &ws.path("stock_2026-04-01.csv"), &sales, &[]),
        &["law 3", "Дата создания"],
    );
    ok(&upload(
        &ws,
        &ws.path("stock_2026-04-01.csv"),
        &sales,
        &["--accept-incoherent"],
    ));
    assert_eq!(ws.sql("SELECT sum(copies) FROM stock_snapshots"), 2);
    assert_eq!(
        ws.sql("SELECT f.stock_end FROM monthly_features f JOIN products p ON p.id = f.product_id WHERE p.barcode = '222'"),
        2
    );
}

/// Defect 9: barcodes typed as numbers, and cover flags in any case.
#[test]
fn barcodes_typed_as_numbers_are_taken_back_or_refused() {
    let ws = Workspace::new();
    let rows = vec![
        sale(
            "4600123.0",
            "Группа крови",
            "2500",
            "01.03.2026",
            "05.03.2026",
        ),
        sale(
            "4600123",
            "Группа крови",
            "2500",
            "01.03.2026",
            "06.03.2026",
        ),
    ];
    let mut lower = rows.clone();
    lower[1][3] = "ss".into();
    write_csv(&ws.path("sales_2026-03.csv"), &SALES_HEADER, &lower, ',');
    // A header-only snapshot: the shelf is empty.
    write_csv(&ws.path("stock_2026-04-01.csv"), &STOCK_HEADER, &[], ',');
    let stock = ws.path("stock_2026-04-01.csv");
    let out = upload(&ws, &stock, &[ws.path("sales_2026-03.csv")], &[]);
    let summary = ok(&out);
    assert_eq!(summary["products"], 1, "one product, not two: {summary}");
    let mut lost = rows;
    lost[0][0] = "4.6E+12".into();
    write_csv(&ws.path("sales_2026-03.csv"), &SALES_HEADER, &lost, ',');
    refused(
        &upload(&ws, &stock, &[ws.path("sales_2026-03.csv")], &["--dry-run"]),
        &[
            "sales_2026-03.csv: row 2, column «Штрихкод»",
            "scientific notation",
        ],
    );
}
