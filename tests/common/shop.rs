//! A small deterministic shop for tests: every day simulated, so each month's sales and
//! the snapshot taken after it are coherent, and any grouping of months into uploads is a
//! valid upload.

use super::{Row, SALES_HEADER, STOCK_HEADER, write_csv};
use chrono::{Datelike, Duration, NaiveDate};
use std::path::{Path, PathBuf};

/// xorshift64*: enough randomness for a test shop, the same on every platform.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

struct Product {
    barcode: String,
    artist: String,
    album: String,
    price: u32,
    style: &'static str,
    year: i32,
    rate: f64,
    /// Arrival dates of the copies on the shelf, oldest first.
    shelf: Vec<NaiveDate>,
    restock_on: Option<NaiveDate>,
}

/// Sales per month and the snapshot taken the day after each month.
pub struct Simulation {
    /// First day of each month.
    pub months: Vec<NaiveDate>,
    pub sales: Vec<Vec<Row>>,
    /// `snapshots[k]` describes the shop at the start of the month after `months[k]`.
    pub snapshots: Vec<Vec<Row>>,
}

const STYLES: [&str; 4] = ["Rock", "Jazz", "Pop", "Rock/Pop"];

pub fn simulate(products: usize, months: usize, first: NaiveDate, seed: u64) -> Simulation {
    let mut rng = Rng::new(seed);
    let mut shop: Vec<Product> = (0..products)
        .map(|i| {
            let copies = 1 + rng.below(4) as usize;
            let arrived = first - Duration::days(10 + rng.below(200) as i64);
            Product {
                barcode: format!("46{:011}", 1000 + i),
                artist: format!("Artist {}", i % 7),
                album: format!("Album {i}"),
                price: 990 + 500 * rng.below(8) as u32,
                style: STYLES[i % STYLES.len()],
                year: 1965 + (i as i32 * 7) % 55,
                rate: 0.02 + 0.25 * rng.unit() * rng.unit(),
                shelf: vec![arrived; copies],
                restock_on: None,
            }
        })
        .collect();
    let mut sim = Simulation {
        months: Vec::new(),
        sales: Vec::new(),
        snapshots: Vec::new(),
    };
    let mut month_start = first;
    for _ in 0..months {
        let next = add_month(month_start);
        let mut sales = Vec::new();
        let mut day = month_start;
        while day < next {
            for p in shop.iter_mut() {
                if p.restock_on == Some(day) {
                    let n = 1 + rng.below(3) as usize;
                    p.shelf.extend(std::iter::repeat_n(day, n));
                    p.restock_on = None;
                }
                // A December peak, like a record shop's.
                let season = if day.month() == 12 { 2.0 } else { 1.0 };
                if !p.shelf.is_empty() && rng.unit() < p.rate * season {
                    let created = p.shelf.remove(0);
                    sales.push(sale_row(p, created, day));
                }
                if p.shelf.is_empty() && p.restock_on.is_none() && rng.unit() < 0.7 {
                    p.restock_on = Some(day + Duration::days(2 + rng.below(40) as i64));
                }
            }
            day = day.succ_opt().unwrap();
        }
        sim.months.push(month_start);
        sim.sales.push(sales);
        sim.snapshots.push(snapshot(&shop));
        month_start = next;
    }
    sim
}

pub fn add_month(d: NaiveDate) -> NaiveDate {
    let (y, m) = if d.month() == 12 {
        (d.year() + 1, 1)
    } else {
        (d.year(), d.month() + 1)
    };
    NaiveDate::from_ymd_opt(y, m, 1).unwrap()
}

fn cells(p: &Product, created: NaiveDate, last: String) -> Row {
    vec![
        p.barcode.clone(),
        p.artist.clone(),
        p.album.clone(),
        "SS".into(),
        p.price.to_string(),
        "Оригинал".into(),
        p.year.to_string(),
        p.year.to_string(),
        p.style.to_string(),
        created.format("%d.%m.%Y").to_string(),
        last,
    ]
}

fn sale_row(p: &Product, created: NaiveDate, sold: NaiveDate) -> Row {
    cells(p, created, sold.format("%d.%m.%Y").to_string())
}

fn snapshot(shop: &[Product]) -> Vec<Row> {
    let mut rows = Vec::new();
    for p in shop {
        let mut k = 0;
        while k < p.shelf.len() {
            let created = p.shelf[k];
            let n = p.shelf[k..].iter().take_while(|&&c| c == created).count();
            rows.push(cells(p, created, n.to_string()));
            k += n;
        }
    }
    rows
}

impl Simulation {
    /// Writes month `k`'s sales as `sales_YYYY-MM.csv` into `dir`.
    pub fn write_sales(&self, k: usize, dir: &Path) -> PathBuf {
        let path = dir.join(format!("sales_{}.csv", self.months[k].format("%Y-%m")));
        write_csv(&path, &SALES_HEADER, &self.sales[k], ';');
        path
    }

    /// Writes the snapshot after month `k` as `stock_YYYY-MM-DD.csv` (dated in its name).
    pub fn write_snapshot(&self, k: usize, dir: &Path) -> PathBuf {
        let date = add_month(self.months[k]);
        let path = dir.join(format!("stock_{}.csv", date.format("%Y-%m-%d")));
        write_csv(&path, &STOCK_HEADER, &self.snapshots[k], ',');
        path
    }
}
