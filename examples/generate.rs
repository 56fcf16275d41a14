//! Seeded generator of realistic record-shop exports in the shop's own format.
//!
//! ```text
//! cargo run --release --example generate -- --products 300 --months 24 --out data/sample
//! ```
//!
//! It simulates every day of a shop: products launch over time (new releases sell in a
//! burst, then settle), demand is intermittent (Poisson with small rates) with a December
//! peak and a summer lull, sales are capped by the copies on the shelf, shelves run empty
//! and are restocked after a delay (or never), prices drift. It writes one sales export per
//! month — one row per copy sold, with the copy's arrival date — and a stock snapshot of
//! the copies left, grouped with «Экземпляры». `--format mixed` alternates `.xlsx` and
//! `.csv`, with one Windows-1251 `;` file and one UTF-8-with-BOM tab file, as shops send.

use chrono::{Datelike, Duration, NaiveDate};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use rand_distr::{Distribution, LogNormal, Poisson};
use std::collections::VecDeque;
use std::path::{Path, PathBuf};

const HEADER_SALES: [&str; 12] = [
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
    "Комментарий",
];
const HEADER_STOCK: [&str; 12] = [
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
    "Комментарий",
];
const SEASON: [f64; 12] = [0.8, 0.8, 0.9, 0.9, 0.85, 0.75, 0.7, 0.8, 1.0, 1.1, 1.3, 1.8];
const STYLES: [&str; 12] = [
    "Rock",
    "Pop",
    "Jazz",
    "Electronic",
    "Soul",
    "Classical",
    "Hip-Hop",
    "Folk",
    "Rock/Pop",
    "Jazz/Soul",
    "Metal",
    "Post-Punk",
];
const FIRST: [&str; 16] = [
    "Кино",
    "Аквариум",
    "Наутилус",
    "Алиса",
    "The Night",
    "Blue",
    "Velvet",
    "Silver",
    "Северный",
    "Polar",
    "Deep",
    "Красная",
    "Golden",
    "Sonic",
    "Ночные",
    "Electric",
];
const SECOND: [&str; 12] = [
    "Orchestra",
    "Помпилиус",
    "Волны",
    "Riders",
    "Машина",
    "Society",
    "Звери",
    "Union",
    "Трио",
    "Quartet",
    "Club",
    "Experience",
];
const WORDS: [&str; 16] = [
    "Группа крови",
    "Радио Африка",
    "Night Drive",
    "Blue Train",
    "Весна",
    "Kind of Blue",
    "Ночь",
    "Горизонт",
    "Midnight",
    "Огни",
    "Paper Moon",
    "Лето",
    "Sessions",
    "Live",
    "Звезда",
    "Echoes",
];

struct Options {
    products: usize,
    months: i32,
    seed: u64,
    out: PathBuf,
    end: (i32, u32),
    format: String,
    holdout: i32,
    /// Months (the newest) for which to write `<out>-oracle.csv`.
    oracle: i32,
}

fn parse_args() -> Result<Options, String> {
    let mut o = Options {
        products: 300,
        months: 24,
        seed: 42,
        out: PathBuf::from("generated"),
        end: (2026, 10),
        format: "mixed".into(),
        holdout: 0,
        oracle: 0,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let value = args
            .get(i + 1)
            .cloned()
            .ok_or(format!("{} needs a value", args[i]))?;
        let bad = |_| format!("bad value for {}: {value}", args[i]);
        match args[i].as_str() {
            "--products" => o.products = value.parse().map_err(bad)?,
            "--months" => o.months = value.parse().map_err(bad)?,
            "--seed" => o.seed = value.parse().map_err(bad)?,
            "--out" => o.out = PathBuf::from(&value),
            "--format" => o.format = value,
            "--holdout" => o.holdout = value.parse().map_err(bad)?,
            "--oracle" => o.oracle = value.parse().map_err(bad)?,
            "--end" => {
                let (y, m) = value.split_once('-').ok_or("--end takes YYYY-MM")?;
                o.end = (y.parse().map_err(bad)?, m.parse().map_err(bad)?);
            }
            other => return Err(format!("unknown option {other}")),
        }
        i += 2;
    }
    if !["mixed", "csv", "xlsx"].contains(&o.format.as_str()) {
        return Err("--format is mixed, csv or xlsx".into());
    }
    Ok(o)
}

struct Product {
    barcode: String,
    artist: String,
    album: String,
    cover: String,
    price: f64,
    release_type: &'static str,
    recording_year: i32,
    release_year: String,
    style: &'static str,
    launch: NaiveDate,
    rate: f64,
    hype: f64,
}

/// A copy on the shelf: its arrival date and price.
type Copy = (NaiveDate, f64);

struct Row {
    /// 1: the export lost the price, 2: the recording year reads «н/д» — the dirt real
    /// exports carry, which upload drops and counts.
    dirt: u8,
    product: usize,
    created: NaiveDate,
    sold: Option<NaiveDate>,
    copies: u32,
    price: f64,
}

fn main() {
    let options = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("generate: {e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(&options) {
        eprintln!("generate: {e}");
        std::process::exit(1);
    }
}

fn run(o: &Options) -> Result<(), Box<dyn std::error::Error>> {
    let mut rng = StdRng::seed_from_u64(o.seed);
    let end_month = NaiveDate::from_ymd_opt(o.end.0, o.end.1, 1).ok_or("bad --end")?;
    let start = add_months(end_month, -(o.months - 1));
    let stop = add_months(end_month, 1); // snapshot date: the day after the last month
    let holdout_start = add_months(end_month, 1 - o.holdout);
    let products: Vec<Product> = (0..o.products)
        .map(|i| make_product(&mut rng, i, start, stop))
        .collect();

    let mut shelves: Vec<VecDeque<Copy>> = vec![VecDeque::new(); products.len()];
    let mut restock_on: Vec<Option<NaiveDate>> = products
        .iter()
        .map(|p| Some(p.launch.max(start - Duration::days(400))))
        .collect();
    let mut sales: Vec<Row> = Vec::new();
    let mut holdout_snapshot: Vec<Row> = Vec::new();
    let mut day = start - Duration::days(400); // warm-up: stock from before the first month
    let oracle_start = add_months(end_month, 1 - o.oracle);
    let mut oracle = String::from("month,barcode,q05,q25,q50,q75,q95,mean\n");
    while day < stop {
        if o.oracle > 0 && day >= oracle_start && day.day() == 1 {
            let month_end = add_months(day, 1);
            let mut sim = StdRng::seed_from_u64(o.seed ^ (day.num_days_from_ce() as u64) << 20);
            for (p, product) in products.iter().enumerate() {
                if product.barcode.is_empty() || product.launch >= month_end {
                    continue;
                }
                let mut draws: Vec<usize> = (0..ORACLE_RUNS)
                    .map(|_| {
                        simulate_month(
                            product,
                            shelves[p].len(),
                            restock_on[p],
                            day,
                            month_end,
                            &mut sim,
                        )
                    })
                    .collect();
                draws.sort_unstable();
                let q =
                    |level: f64| draws[((level * ORACLE_RUNS as f64).ceil() as usize).max(1) - 1];
                let mean = draws.iter().sum::<usize>() as f64 / ORACLE_RUNS as f64;
                oracle.push_str(&format!(
                    "{},{},{},{},{},{},{},{mean}\n",
                    day.format("%Y-%m"),
                    product.barcode,
                    q(0.05),
                    q(0.25),
                    q(0.5),
                    q(0.75),
                    q(0.95)
                ));
            }
        }
        if day == holdout_start && o.holdout > 0 {
            holdout_snapshot = snapshot(&shelves);
        }
        let season = SEASON[day.month0() as usize];
        for (p, product) in products.iter().enumerate() {
            if day < product.launch {
                continue;
            }
            if restock_on[p] == Some(day) {
                let lot = 1 + Poisson::new(product.rate * 1.5 + 0.5)
                    .map(|d| d.sample(&mut rng) as usize)
                    .unwrap_or(1);
                let price = product.price * rng.random_range(0.95..1.1);
                let price = (price / 10.0).round() * 10.0;
                shelves[p].extend(std::iter::repeat_n((day, price), lot.min(12)));
                restock_on[p] = None;
            }
            let age_months = (day - product.launch).num_days() as f64 / 30.0;
            let hype = 1.0 + product.hype * (-age_months / 1.5).exp();
            let daily = product.rate * season * hype / 30.0;
            let demand = if daily > 0.0 {
                Poisson::new(daily)
                    .map(|d| d.sample(&mut rng) as usize)
                    .unwrap_or(0)
            } else {
                0
            };
            for _ in 0..demand {
                let Some((created, price)) = shelves[p].pop_front() else {
                    break;
                };
                if day >= start {
                    let dirt = if rng.random_bool(0.003) {
                        rng.random_range(1..=2)
                    } else {
                        0
                    };
                    sales.push(Row {
                        dirt,
                        product: p,
                        created,
                        sold: Some(day),
                        copies: 1,
                        price,
                    });
                }
            }
            if shelves[p].is_empty() && restock_on[p].is_none() && rng.random_bool(0.8) {
                // Some records are reordered quickly, some slowly, some never again.
                restock_on[p] = Some(day + Duration::days(rng.random_range(3..60)));
            }
        }
        day += Duration::days(1);
    }
    let final_snapshot = snapshot(&shelves);
    if o.oracle > 0 {
        std::fs::create_dir_all(&o.out)?;
        std::fs::write(oracle_path(&o.out), &oracle)?;
    }

    std::fs::create_dir_all(&o.out)?;
    let mut month = start;
    let mut index = 0;
    let mut written = Vec::new();
    while month < stop {
        let next = add_months(month, 1);
        let rows: Vec<&Row> = sales
            .iter()
            .filter(|r| r.sold.is_some_and(|s| s >= month && s < next))
            .collect();
        let dir = if month >= holdout_start && o.holdout > 0 {
            o.out.join("next")
        } else {
            o.out.clone()
        };
        std::fs::create_dir_all(&dir)?;
        let name = format!("sales_{}", month.format("%Y-%m"));
        let kind = match o.format.as_str() {
            "csv" => "csv",
            "xlsx" => "xlsx",
            _ if index == 0 => "cp1251",
            _ if index == 1 => "bom-tab",
            _ if index % 2 == 0 => "xlsx",
            _ => "csv",
        };
        written.push(write_file(
            &dir,
            &name,
            kind,
            &HEADER_SALES,
            &rows,
            &products,
        )?);
        month = next;
        index += 1;
    }
    let stock_kind = if o.format == "csv" { "csv" } else { "xlsx" };
    if o.holdout > 0 {
        let rows: Vec<&Row> = holdout_snapshot.iter().collect();
        written.push(write_file(
            &o.out,
            &format!("stock_{}", holdout_start),
            stock_kind,
            &HEADER_STOCK,
            &rows,
            &products,
        )?);
        let rows: Vec<&Row> = final_snapshot.iter().collect();
        written.push(write_file(
            &o.out.join("next"),
            &format!("stock_{stop}"),
            stock_kind,
            &HEADER_STOCK,
            &rows,
            &products,
        )?);
    } else {
        let rows: Vec<&Row> = final_snapshot.iter().collect();
        written.push(write_file(
            &o.out,
            &format!("stock_{stop}"),
            stock_kind,
            &HEADER_STOCK,
            &rows,
            &products,
        )?);
    }
    println!(
        "{} products, {} months from {} (snapshot {stop}), {} sales rows, {} copies in stock; {} files in {}",
        products.len(),
        o.months,
        start.format("%Y-%m"),
        sales.len(),
        final_snapshot.iter().map(|r| r.copies).sum::<u32>(),
        written.len(),
        o.out.display()
    );
    Ok(())
}

/// `<out>-oracle.csv` beside the output folder: outside it, so an upload of the folder
/// never reads it as a sales export, and named after it, so shops generated side by side
/// keep their own.
fn oracle_path(out: &Path) -> PathBuf {
    let name = out
        .file_name()
        .map_or("shop".into(), |n| n.to_string_lossy().into_owned());
    out.with_file_name(format!("{name}-oracle.csv"))
}

/// Simulations per product and month behind the oracle's quantiles.
const ORACLE_RUNS: usize = 400;

/// Copies of `product` one run of the shop sells from `from` to `to`, starting from
/// `shelf` copies and a restock due on `restock`: the same rules as the main loop, with
/// its own random numbers. Its quantiles over many runs are what a forecaster who knew
/// the product's true rate and the shop's restock plan would forecast.
fn simulate_month(
    product: &Product,
    mut shelf: usize,
    mut restock: Option<NaiveDate>,
    from: NaiveDate,
    to: NaiveDate,
    rng: &mut StdRng,
) -> usize {
    let mut sold = 0;
    let mut day = from;
    while day < to {
        if day >= product.launch {
            if restock == Some(day) {
                let lot = 1 + Poisson::new(product.rate * 1.5 + 0.5)
                    .map(|d| d.sample(rng) as usize)
                    .unwrap_or(1);
                shelf += lot.min(12);
                restock = None;
            }
            let age_months = (day - product.launch).num_days() as f64 / 30.0;
            let hype = 1.0 + product.hype * (-age_months / 1.5).exp();
            let daily = product.rate * SEASON[day.month0() as usize] * hype / 30.0;
            let demand = if daily > 0.0 {
                Poisson::new(daily)
                    .map(|d| d.sample(rng) as usize)
                    .unwrap_or(0)
            } else {
                0
            };
            let taken = demand.min(shelf);
            shelf -= taken;
            sold += taken;
            if shelf == 0 && restock.is_none() && rng.random_bool(0.8) {
                restock = Some(day + Duration::days(rng.random_range(3..60)));
            }
        }
        day += Duration::days(1);
    }
    sold
}

fn snapshot(shelves: &[VecDeque<Copy>]) -> Vec<Row> {
    let mut rows = Vec::new();
    for (p, shelf) in shelves.iter().enumerate() {
        let mut lots: Vec<Row> = Vec::new();
        for &(created, price) in shelf {
            match lots.last_mut() {
                Some(last) if last.created == created => last.copies += 1,
                _ => lots.push(Row {
                    dirt: 0,
                    product: p,
                    created,
                    sold: None,
                    copies: 1,
                    price,
                }),
            }
        }
        rows.extend(lots);
    }
    rows
}

fn make_product(rng: &mut StdRng, i: usize, start: NaiveDate, stop: NaiveDate) -> Product {
    let artist = format!(
        "{} {}",
        FIRST[rng.random_range(0..FIRST.len())],
        SECOND[rng.random_range(0..SECOND.len())]
    );
    let album = format!("{} {}", WORDS[rng.random_range(0..WORDS.len())], i % 97 + 1);
    let sealed = rng.random_bool(0.6);
    let cover = if sealed {
        "SS".to_string()
    } else {
        ["M", "NM", "VG+", "VG", "EX"][rng.random_range(0..5)].to_string()
    };
    let price = LogNormal::new(7.8, 0.55)
        .map(|d| d.sample(rng))
        .unwrap_or(2500.0_f64)
        .clamp(300.0, 30000.0);
    let original = rng.random_bool(0.35);
    let recording_year = rng.random_range(1956..2026);
    let release_year = if original {
        recording_year.to_string()
    } else if rng.random_bool(0.05) {
        format!("{}x", (recording_year + 10).min(2025) / 10) // sloppy "199x"
    } else if rng.random_bool(0.05) {
        String::new()
    } else {
        rng.random_range(recording_year..=2026).to_string()
    };
    let span = (stop - start).num_days();
    // 45 % were on the shelf before the first month; the rest launch during it.
    let launch = if rng.random_bool(0.45) {
        start - Duration::days(rng.random_range(30..400))
    } else {
        start + Duration::days(rng.random_range(0..span))
    };
    // Intermittent demand: most records sell a unit or less a month, a few are hits.
    let rate = LogNormal::new(-0.4, 0.9)
        .map(|d| d.sample(rng))
        .unwrap_or(0.5_f64)
        .min(25.0);
    let hype = if launch >= start && rng.random_bool(0.5) {
        rng.random_range(1.0..5.0)
    } else {
        0.0
    };
    Product {
        barcode: if rng.random_bool(0.92) {
            format!("{:013}", 4_600_000_000_000u64 + i as u64 * 7919)
        } else {
            String::new()
        },
        artist,
        album,
        cover,
        price: (price / 10.0).round() * 10.0,
        release_type: if original {
            "Оригинал"
        } else {
            "Переиздание"
        },
        recording_year,
        release_year,
        style: STYLES[rng.random_range(0..STYLES.len())],
        launch,
        rate,
        hype,
    }
}

fn add_months(date: NaiveDate, months: i32) -> NaiveDate {
    let index = date.year() * 12 + date.month0() as i32 + months;
    NaiveDate::from_ymd_opt(index.div_euclid(12), index.rem_euclid(12) as u32 + 1, 1)
        .expect("valid month")
}

fn cells(row: &Row, products: &[Product]) -> [String; 12] {
    let p = &products[row.product];
    let last = match row.sold {
        Some(sold) => sold.format("%d.%m.%Y").to_string(),
        None => row.copies.to_string(),
    };
    [
        p.barcode.clone(),
        p.artist.clone(),
        p.album.clone(),
        p.cover.clone(),
        if row.dirt == 1 {
            String::new()
        } else {
            format!("{}", row.price)
        },
        p.release_type.to_string(),
        if row.dirt == 2 {
            "н/д".to_string()
        } else {
            p.recording_year.to_string()
        },
        p.release_year.clone(),
        p.style.to_string(),
        row.created.format("%d.%m.%Y").to_string(),
        last,
        String::new(),
    ]
}

fn write_file(
    dir: &Path,
    name: &str,
    kind: &str,
    header: &[&str; 12],
    rows: &[&Row],
    products: &[Product],
) -> Result<PathBuf, Box<dyn std::error::Error>> {
    if kind == "xlsx" {
        let path = dir.join(format!("{name}.xlsx"));
        let mut book = rust_xlsxwriter::Workbook::new();
        let sheet = book.add_worksheet();
        let date_format = rust_xlsxwriter::Format::new().set_num_format("dd.mm.yyyy");
        for (c, h) in header.iter().enumerate() {
            sheet.write_string(0, c as u16, *h)?;
        }
        for (r, row) in rows.iter().enumerate() {
            let r = r as u32 + 1;
            let values = cells(row, products);
            for (c, value) in values.iter().enumerate() {
                let c = c as u16;
                match c {
                    4 if row.dirt != 1 => sheet.write_number(r, c, row.price)?,
                    9 => sheet.write_datetime_with_format(
                        r,
                        c,
                        excel_date(row.created)?,
                        &date_format,
                    )?,
                    10 => match row.sold {
                        Some(sold) => sheet.write_datetime_with_format(
                            r,
                            c,
                            excel_date(sold)?,
                            &date_format,
                        )?,
                        None => sheet.write_number(r, c, row.copies as f64)?,
                    },
                    _ if value.is_empty() => sheet,
                    _ => sheet.write_string(r, c, value)?,
                };
            }
        }
        book.save(&path)?;
        return Ok(path);
    }
    let (separator, bom) = match kind {
        "cp1251" => (';', false),
        "bom-tab" => ('\t', true),
        _ => (',', false),
    };
    let mut text = String::new();
    if bom {
        text.push('\u{feff}');
    }
    let line = |fields: &[String]| {
        fields
            .iter()
            .map(|f| {
                if f.contains(separator) || f.contains('"') {
                    format!("\"{}\"", f.replace('"', "\"\""))
                } else {
                    f.clone()
                }
            })
            .collect::<Vec<_>>()
            .join(&separator.to_string())
    };
    text.push_str(&line(&header.map(String::from)));
    text.push('\n');
    for row in rows {
        text.push_str(&line(&cells(row, products)));
        text.push('\n');
    }
    let path = dir.join(format!("{name}.csv"));
    if kind == "cp1251" {
        let (bytes, _, _) = encoding_rs::WINDOWS_1251.encode(&text);
        std::fs::write(&path, bytes)?;
    } else {
        std::fs::write(&path, text)?;
    }
    Ok(path)
}

fn excel_date(
    date: NaiveDate,
) -> Result<rust_xlsxwriter::ExcelDateTime, rust_xlsxwriter::XlsxError> {
    rust_xlsxwriter::ExcelDateTime::from_ymd(
        date.year() as u16,
        date.month() as u8,
        date.day() as u8,
    )
}
