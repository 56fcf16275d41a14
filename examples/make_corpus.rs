//! Writes the bad-input corpus under `tests/corpus/` (committed; rerun to regenerate):
//! exports as shops really mangle them. `tests/corpus.rs` uploads each one beside a valid
//! month and checks it either reads correctly or is refused with exit 2, naming the file
//! (and the row and column where one is at fault), leaving the database as it was.
//! What cannot live in git — a FIFO, a 1 GB sparse file, a symlink loop, a directory of
//! unrelated files — the test makes on the spot. Files named `fuzz_crash_*` are inputs on
//! which `tests/fuzz.rs` found a crash; they are kept by hand, not written here.
//!
//! ```text
//! cargo run --example make_corpus
//! ```

use rust_xlsxwriter::{Format, Formula, Workbook};
use std::path::Path;

const SALES: [&str; 11] = [
    "Штрихкод",
    "Исполнитель",
    "Альбом",
    "Конверт",
    "Цена, руб.",
    "Тип",
    "Год записи",
    "Год выпуска",
    "Стиль",
    "Дата создания",
    "Дата заказа",
];
const STOCK: [&str; 11] = [
    "Штрихкод",
    "Исполнитель",
    "Альбом",
    "Конверт",
    "Цена, руб.",
    "Тип",
    "Год записи",
    "Год выпуска",
    "Стиль",
    "Дата создания",
    "Экземпляры",
];

/// A copy sold in March 2026: barcode, album, price, created, sold.
fn sale(code: u32, price: &str, created: &str, sold: &str) -> Vec<String> {
    [
        &format!("4607{code:09}"),
        "Корпус",
        &format!("Альбом {code}"),
        "SS",
        price,
        "Оригинал",
        "1987",
        "1987",
        "Rock",
        created,
        sold,
    ]
    .map(|s| s.to_string())
    .to_vec()
}

fn rows(first: u32, n: u32) -> Vec<Vec<String>> {
    (0..n)
        .map(|k| {
            let day = 3 + k % 25;
            sale(
                first + k,
                "1990",
                &format!("0{}.02.2026", 1 + k % 9),
                &format!("{day:02}.03.2026"),
            )
        })
        .collect()
}

fn csv(header: &[&str], rows: &[Vec<String>], sep: char) -> String {
    let quote = |f: &str| {
        if f.contains(sep) || f.contains('"') || f.contains('\n') {
            format!("\"{}\"", f.replace('"', "\"\""))
        } else {
            f.to_string()
        }
    };
    let mut text = header
        .iter()
        .map(|h| quote(h))
        .collect::<Vec<_>>()
        .join(&sep.to_string())
        + "\n";
    for row in rows {
        text += &(row
            .iter()
            .map(|c| quote(c))
            .collect::<Vec<_>>()
            .join(&sep.to_string())
            + "\n");
    }
    text
}

fn xlsx(
    path: &Path,
    build: impl FnOnce(&mut Workbook) -> Result<(), rust_xlsxwriter::XlsxError>,
) -> Result<(), Box<dyn std::error::Error>> {
    let mut book = Workbook::new();
    // A fixed creation time, so regenerating the corpus changes no file that did not change.
    let created = rust_xlsxwriter::ExcelDateTime::from_ymd(2026, 3, 1)?;
    book.set_properties(&rust_xlsxwriter::DocProperties::new().set_creation_datetime(&created));
    build(&mut book)?;
    book.save(path)?;
    Ok(())
}

fn write_rows(
    sheet: &mut rust_xlsxwriter::Worksheet,
    top: u32,
    header: &[&str],
    rows: &[Vec<String>],
) -> Result<(), rust_xlsxwriter::XlsxError> {
    for (c, h) in header.iter().enumerate() {
        sheet.write_string(top, c as u16, *h)?;
    }
    for (r, row) in rows.iter().enumerate() {
        for (c, v) in row.iter().enumerate() {
            sheet.write_string(top + 1 + r as u32, c as u16, v)?;
        }
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    std::fs::create_dir_all(dir.join("base"))?;
    let w = |name: &str, text: &[u8]| std::fs::write(dir.join(name), text);

    // The valid month every corpus file is uploaded beside.
    w(
        "base/sales_2026-03.csv",
        csv(&SALES, &rows(1, 12), ',').as_bytes(),
    )?;
    let shelf: Vec<Vec<String>> = (0..6)
        .map(|k| {
            let mut r = sale(900 + k, "2490", "15.01.2026", "");
            r[10] = "2".into();
            r
        })
        .collect();
    w(
        "base/stock_2026-04-01.csv",
        csv(&STOCK, &shelf, ',').as_bytes(),
    )?;

    let good = rows(100, 5);
    let with = |k: usize, col: usize, value: &str| {
        let mut r = good.clone();
        r[k][col] = value.to_string();
        r
    };

    // Excel.
    xlsx(&dir.join("valid.xlsx"), |b| {
        write_rows(b.add_worksheet(), 0, &SALES, &good)
    })?;
    let valid = std::fs::read(dir.join("valid.xlsx"))?;
    w("truncated.xlsx", &valid[..valid.len() / 2])?;
    w("not_a_zip.xlsx", csv(&SALES, &good, ',').as_bytes())?;
    xlsx(&dir.join("two_sheets.xlsx"), |b| {
        write_rows(b.add_worksheet(), 0, &SALES, &good)?;
        write_rows(b.add_worksheet(), 0, &SALES, &good)
    })?;
    xlsx(&dir.join("merged_cells.xlsx"), |b| {
        let sheet = b.add_worksheet();
        write_rows(sheet, 0, &SALES, &good)?;
        // Artist merged over rows 2–3: the second row's cell reads empty and is dropped.
        sheet.merge_range(1, 1, 2, 1, "Корпус", &Format::new())?;
        Ok(())
    })?;
    xlsx(&dir.join("formulas.xlsx"), |b| {
        let sheet = b.add_worksheet();
        write_rows(sheet, 0, &SALES, &good)?;
        sheet.write_formula(1, 4, Formula::new("=1000+990").set_result("1990"))?;
        Ok(())
    })?;
    xlsx(&dir.join("header_not_first.xlsx"), |b| {
        let sheet = b.add_worksheet();
        sheet.write_string(0, 0, "Продажи за март 2026")?;
        write_rows(sheet, 2, &SALES, &good)
    })?;
    xlsx(&dir.join("excel_serial_before_1900.xlsx"), |b| {
        let sheet = b.add_worksheet();
        write_rows(sheet, 0, &SALES, &good)?;
        sheet.write_number(3, 10, 59.0)?; // 28 February 1900 as a serial: not a plausible sale
        Ok(())
    })?;
    xlsx(&dir.join("number_cells.xlsx"), |b| {
        let sheet = b.add_worksheet();
        write_rows(sheet, 0, &SALES, &good)?;
        for r in 1..=good.len() as u32 {
            sheet.write_number(r, 0, 4_607_000_000_100.0 + r as f64)?; // barcode as a number
            sheet.write_number(r, 4, 1990.0)?;
            sheet.write_number(r, 6, 1987.0)?;
        }
        Ok(())
    })?;

    // CSV: layout.
    w(
        "header_not_first.csv",
        format!("Отчёт: продажи\n\n{}", csv(&SALES, &good, ';')).as_bytes(),
    )?;
    let mut twice: Vec<&str> = SALES.to_vec();
    twice.push("Дата заказа");
    let agree: Vec<Vec<String>> = good
        .iter()
        .map(|r| {
            let mut r = r.clone();
            r.push(r[10].clone());
            r
        })
        .collect();
    w(
        "duplicated_headers_agree.csv",
        csv(&twice, &agree, ',').as_bytes(),
    )?;
    let mut disagree = agree.clone();
    disagree[2][11] = "28.03.2026".into();
    w(
        "duplicated_headers_disagree.csv",
        csv(&twice, &disagree, ',').as_bytes(),
    )?;
    w(
        "missing_columns.csv",
        csv(
            &SALES[..9],
            &good.iter().map(|r| r[..9].to_vec()).collect::<Vec<_>>(),
            ',',
        )
        .as_bytes(),
    )?;
    w("empty.csv", b"")?;
    w("blank_lines_only.csv", b"\n\n  \n")?;
    w("header_only.csv", csv(&SALES, &[], ',').as_bytes())?;
    let mut mixed = csv(&SALES, &good, ';');
    mixed += &(good[0].join(",") + "\n");
    w("mixed_separators.csv", mixed.as_bytes())?;
    let mut quoted = good.clone();
    quoted[1][2] = "Альбом\nс переносом".into();
    w("quoted_newline.csv", csv(&SALES, &quoted, ',').as_bytes())?;
    w(
        "unclosed_quote.csv",
        (csv(&SALES, &good, ',') + "4607000000999,\"Корпус,Без конца,SS,1990\n").as_bytes(),
    )?;
    w(
        "long_cell.csv",
        csv(&SALES, &with(0, 2, &"д".repeat(100_000)), ',').as_bytes(),
    )?;
    w(
        "short_rows.csv",
        (csv(&SALES, &good, ',') + "4607000000998,Корпус\n").as_bytes(),
    )?;

    // CSV: encodings.
    let semicolons = csv(&SALES, &good, ';');
    let (cp1251, _, _) = encoding_rs::WINDOWS_1251.encode(&semicolons);
    w("cp1251_semicolon.csv", &cp1251)?;
    w(
        "utf8_bom_tab.csv",
        format!("\u{feff}{}", csv(&SALES, &good, '\t')).as_bytes(),
    )?;
    let mut utf8_then_cp1251 = csv(&SALES, &good, ',').into_bytes();
    let line = sale(999, "1990", "01.02.2026", "20.03.2026").join(",") + "\n";
    let (row, _, _) = encoding_rs::WINDOWS_1251.encode(&line);
    utf8_then_cp1251.extend_from_slice(&row);
    w("mixed_encodings.csv", &utf8_then_cp1251)?;
    let mut garbage: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    garbage[10] = 0;
    w("binary_garbage.csv", &garbage)?;
    w("sales.ods", &valid)?;

    // Dates: five text formats, and their failures.
    let dates = |f: &dyn Fn(u32, u32) -> String| -> Vec<Vec<String>> {
        good.iter()
            .enumerate()
            .map(|(k, r)| {
                let mut r = r.clone();
                r[9] = f(1 + k as u32, 2);
                r[10] = f(14 + k as u32, 3);
                r
            })
            .collect()
    };
    w(
        "dates_dotted.csv",
        csv(&SALES, &dates(&|d, m| format!("{d:02}.{m:02}.2026")), ',').as_bytes(),
    )?;
    w(
        "dates_iso.csv",
        csv(&SALES, &dates(&|d, m| format!("2026-{m:02}-{d:02}")), ',').as_bytes(),
    )?;
    w(
        "dates_with_time.csv",
        csv(
            &SALES,
            &dates(&|d, m| format!("{d:02}.{m:02}.2026 14:{d:02}:00")),
            ',',
        )
        .as_bytes(),
    )?;
    w(
        "dates_dashed_day_first.csv",
        csv(&SALES, &dates(&|d, m| format!("{d:02}-{m:02}-2026")), ',').as_bytes(),
    )?;
    w(
        "dates_us_month_first.csv",
        csv(&SALES, &dates(&|d, m| format!("{m:02}/{d:02}/2026")), ',').as_bytes(),
    )?;
    let ambiguous = dates(&|d, m| format!("{m:02}/{:02}/2026", 1 + d % 12));
    w(
        "dates_slashed_ambiguous.csv",
        csv(&SALES, &ambiguous, ',').as_bytes(),
    )?;
    w(
        "dates_slashed_ambiguous_sales_2026-03.csv",
        csv(&SALES, &ambiguous, ',').as_bytes(),
    )?;
    w(
        "dates_in_words.csv",
        csv(&SALES, &with(1, 10, "5 марта 2026"), ',').as_bytes(),
    )?;
    w(
        "dates_impossible.csv",
        csv(&SALES, &with(2, 10, "31.02.2026"), ',').as_bytes(),
    )?;
    w(
        "dates_future.csv",
        csv(&SALES, &with(3, 10, "15.03.2031"), ',').as_bytes(),
    )?;
    w(
        "dates_before_arrival.csv",
        csv(&SALES, &with(4, 9, "25.03.2026"), ',').as_bytes(),
    )?;

    // Cells.
    w(
        "price_with_letters.csv",
        csv(&SALES, &with(0, 4, "12о0"), ',').as_bytes(),
    )?;
    w(
        "price_negative.csv",
        csv(&SALES, &with(1, 4, "-1990"), ',').as_bytes(),
    )?;
    w(
        "price_formats.csv",
        csv(&SALES, &with(2, 4, "1 990,50 руб."), ',').as_bytes(),
    )?;
    w(
        "barcode_scientific.csv",
        csv(&SALES, &with(3, 0, "4.607E+12"), ',').as_bytes(),
    )?;
    w(
        "barcode_float_text.csv",
        // Row 4 holds the record of row 3, its barcode typed as a number: one product.
        csv(&SALES, &with(3, 0, "4607000000102.0"), ',').as_bytes(),
    )?;
    w(
        "cover_lowercase.csv",
        csv(&SALES, &with(0, 3, "ss"), ',').as_bytes(),
    )?;
    w(
        "year_words.csv",
        csv(&SALES, &with(4, 6, "восемьдесят седьмой"), ',').as_bytes(),
    )?;
    let copies = |value: &str| {
        let mut shelf = shelf.clone();
        shelf[0][10] = value.into();
        csv(&STOCK, &shelf, ',')
    };
    w("stock_copies_negative.csv", copies("-2").as_bytes())?;
    w("stock_copies_fractional.csv", copies("1.5").as_bytes())?;
    w("stock_copies_zero.csv", copies("0").as_bytes())?;
    println!("corpus written to {}", dir.display());
    Ok(())
}
