//! Daily stock reconstruction and the monthly features (original-ml.md §2.3–2.5), with
//! the original's flaws fixed:
//!
//! * the whole snapshot counts, with its `Экземпляры` (§7.A.1–2);
//! * arrivals are the arrival dates of every copy seen — in the snapshot or sold —
//!   not only of copies sold in the same month (§7.A.3);
//! * stock is evaluated on every calendar day, not only on days with events, with no
//!   off-by-one label shift (§7.A.4).
//!
//! Going backwards from the snapshot (the stock at the start of the snapshot day):
//! `start(d) = end(d) + sold(d) − arrived(d)` and `end(d − 1) = start(d)`. A copy is
//! *on hand* during day `d` if it was there at the start or arrived that day:
//! `on_hand(d) = start(d) + arrived(d) = end(d) + sold(d)`. Availability, confidence and
//! in-stock days are taken over `on_hand`, so a copy that arrives and sells the same day
//! counts as in stock that day.

use super::rows::ParsedRow;
use crate::month::Month;
use chrono::NaiveDate;
use serde::Serialize;

/// The span an upload describes: every day from the first day of `first` up to the day
/// before `stock_date`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Window {
    pub first: Month,
    pub last: Month,
    pub stock_date: NaiveDate,
}

impl Window {
    pub fn days(&self) -> usize {
        (self.stock_date - self.first.first_day()).num_days().max(0) as usize
    }

    fn day_index(&self, date: NaiveDate) -> i64 {
        (date - self.first.first_day()).num_days()
    }

    /// Whether the snapshot is dated after the last day of the last month.
    pub fn last_month_complete(&self) -> bool {
        self.stock_date > self.last.last_day()
    }
}

/// Features of one product in one month.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MonthlyFeatures {
    pub product: u32,
    pub month: Month,
    pub units_sold: u32,
    pub arrivals: u32,
    pub stock_start: i64,
    pub stock_end: i64,
    /// Days of the month covered by the upload (fewer than the month's for an unfinished one).
    pub observed_days: u32,
    pub in_stock_days: u32,
    /// in_stock_days / observed_days.
    pub availability: f64,
    /// Mean over observed days of min(on_hand, saturation) / saturation.
    pub confidence: f64,
    /// Units sold per in-stock day (0 when never in stock).
    pub mean_sales_units: f64,
    /// mean_sales_units × the month's mean sale price (the product's price if unsold).
    pub mean_sales_rub: f64,
    /// Out-of-stock days × mean_sales_units, and the same in rubles.
    pub lost_sales_units: f64,
    pub lost_sales_rub: f64,
    /// Sum of the prices of the copies sold.
    pub revenue_rub: f64,
}

impl MonthlyFeatures {
    pub fn net_movement(&self) -> i64 {
        self.arrivals as i64 - self.units_sold as i64
    }
}

pub struct Reconstruction {
    pub monthly: Vec<MonthlyFeatures>,
    /// (product, day) where the reconstructed stock at the start of the day is negative.
    pub negative: Vec<(u32, NaiveDate)>,
}

#[derive(Clone, Copy)]
struct Event {
    product: u32,
    day: u32,
    sold: u32,
    arrived: u32,
    revenue: f64,
}

/// Rebuilds every product's daily stock over `window` and sums it up per month.
/// `product_price[p]` prices the month of a product that sold nothing.
pub fn reconstruct(
    rows: &[ParsedRow],
    product_of_row: &[u32],
    product_price: &[f64],
    window: &Window,
    saturation: u32,
) -> Reconstruction {
    let days = window.days();
    let (events, end_stock) = collect_events(rows, product_of_row, window, product_price.len());
    let months: Vec<(Month, usize, usize)> = Month::range(window.first, window.last)
        .filter_map(|month| {
            let a = window.day_index(month.first_day()).max(0) as usize;
            let b = (window.day_index(month.last_day()) as usize).min(days.checked_sub(1)?);
            (a <= b).then_some((month, a, b))
        })
        .collect();
    let mut daily = Daily::new(days);
    let mut monthly = Vec::new();
    let mut negative = Vec::new();
    let mut next = 0;
    for (product, &end) in (0u32..).zip(&end_stock) {
        let begin = next;
        while next < events.len() && events[next].product == product {
            next += 1;
        }
        daily.fill(&events[begin..next], end);
        if let Some(d) = (0..days).find(|&d| daily.start[d] < 0) {
            negative.push((
                product,
                window.first.first_day() + chrono::Duration::days(d as i64),
            ));
        }
        let price = product_price[product as usize];
        monthly.extend(
            months
                .iter()
                .filter_map(|&(month, a, b)| daily.month(product, month, a..=b, saturation, price)),
        );
        daily.clear(&events[begin..next]);
    }
    Reconstruction { monthly, negative }
}

/// Each row's arrival and sale inside the window as events, sorted by product and day,
/// and each product's copies on the shelf at the snapshot.
fn collect_events(
    rows: &[ParsedRow],
    product_of_row: &[u32],
    window: &Window,
    n_products: usize,
) -> (Vec<Event>, Vec<i64>) {
    let days = window.days();
    let mut end_stock = vec![0i64; n_products];
    let mut events: Vec<Event> = Vec::with_capacity(rows.len() * 2);
    for (row, &product) in rows.iter().zip(product_of_row) {
        let created = window.day_index(row.created);
        let arrived_in_window = created >= 0 && (created as usize) < days;
        if arrived_in_window {
            events.push(Event {
                product,
                day: created as u32,
                sold: 0,
                arrived: row.copies,
                revenue: 0.0,
            });
        }
        match row.sold {
            Some(sold) => {
                let day = window.day_index(sold);
                if day >= 0 && (day as usize) < days {
                    events.push(Event {
                        product,
                        day: day as u32,
                        sold: row.copies,
                        arrived: 0,
                        revenue: row.price * row.copies as f64,
                    });
                }
            }
            // A snapshot copy is on the shelf at the end unless it arrives on/after the snapshot day.
            None if created < days as i64 => end_stock[product as usize] += row.copies as i64,
            None => {}
        }
    }
    events.sort_unstable_by_key(|e| (e.product, e.day));
    (events, end_stock)
}

/// One product's days in the window: copies sold, arrived and money taken each day, and
/// the stock at the start of each day (`start[days]`: at the snapshot). Reused from
/// product to product; `clear` resets only the days its events touched.
struct Daily {
    sold: Vec<u32>,
    arrived: Vec<u32>,
    revenue: Vec<f64>,
    start: Vec<i64>,
}

impl Daily {
    fn new(days: usize) -> Self {
        Self {
            sold: vec![0; days],
            arrived: vec![0; days],
            revenue: vec![0.0; days],
            start: vec![0; days + 1],
        }
    }

    /// The product's `events` added up by day, and its stock walked back from `end`, the
    /// copies on the shelf at the snapshot.
    fn fill(&mut self, events: &[Event], end: i64) {
        for e in events {
            self.sold[e.day as usize] += e.sold;
            self.arrived[e.day as usize] += e.arrived;
            self.revenue[e.day as usize] += e.revenue;
        }
        let days = self.sold.len();
        self.start[days] = end;
        for d in (0..days).rev() {
            self.start[d] = self.start[d + 1] + self.sold[d] as i64 - self.arrived[d] as i64;
        }
    }

    fn clear(&mut self, events: &[Event]) {
        for e in events {
            self.sold[e.day as usize] = 0;
            self.arrived[e.day as usize] = 0;
            self.revenue[e.day as usize] = 0.0;
        }
    }

    /// The month's features over its `days` in the window; `None` when the product was
    /// neither on the shelf nor sold nor arrived in it. The money figures use the month's
    /// mean selling price, or `list_price` when nothing sold (they are then all 0).
    fn month(
        &self,
        product: u32,
        month: Month,
        days: std::ops::RangeInclusive<usize>,
        saturation: u32,
        list_price: f64,
    ) -> Option<MonthlyFeatures> {
        let (a, b) = (*days.start(), *days.end());
        let mut in_stock_days = 0u32;
        let mut confidence = 0f64;
        let (mut units, mut arrivals, mut money) = (0u32, 0u32, 0f64);
        for d in days {
            let on_hand = self.start[d] + self.arrived[d] as i64;
            if on_hand > 0 {
                in_stock_days += 1;
            }
            confidence += on_hand.clamp(0, saturation as i64) as f64 / saturation as f64;
            units += self.sold[d];
            arrivals += self.arrived[d];
            money += self.revenue[d];
        }
        // A row only for a month the product was on the shelf, sold or arrived in. A
        // month sold out from start to end has no row, as before a launch: the model
        // reads a missing row as no stock and no sales, exactly what such a row would
        // say. Deciding per month keeps stored rows independent of how months were
        // grouped into uploads (a month uploaded alone only sees its own activity).
        if in_stock_days == 0 && units == 0 && arrivals == 0 {
            return None;
        }
        let observed_days = (b - a + 1) as u32;
        let mean_sales_units = if in_stock_days > 0 {
            units as f64 / in_stock_days as f64
        } else {
            0.0
        };
        let price = if units > 0 {
            money / units as f64
        } else {
            list_price
        };
        let lost_sales_units = (observed_days - in_stock_days) as f64 * mean_sales_units;
        Some(MonthlyFeatures {
            product,
            month,
            units_sold: units,
            arrivals,
            stock_start: self.start[a],
            stock_end: self.start[b + 1],
            observed_days,
            in_stock_days,
            availability: in_stock_days as f64 / observed_days as f64,
            confidence: confidence / observed_days as f64,
            mean_sales_units,
            mean_sales_rub: mean_sales_units * price,
            lost_sales_units,
            lost_sales_rub: lost_sales_units * price,
            revenue_rub: money,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn date(m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, m, d).unwrap()
    }

    fn copy(created: NaiveDate, sold: Option<NaiveDate>, copies: u32, price: f64) -> ParsedRow {
        ParsedRow {
            file: 0,
            row: 2,
            barcode: None,
            artist: "a".into(),
            album: "b".into(),
            sealed: Some(true),
            price,
            release_type: "Оригинал".into(),
            recording_year: 1980,
            release_year: None,
            style: None,
            created,
            sold,
            copies,
        }
    }

    fn june() -> Window {
        let june = Month::new(2026, 6).unwrap();
        Window {
            first: june,
            last: june,
            stock_date: date(7, 1),
        }
    }

    /// June (30 days). One copy on the shelf since May, sold 10 June. Two copies arrive
    /// 20 June, one sells the same day, the other is in the snapshot. Hand computed:
    /// on_hand = 1 on days 1–10, 0 on 11–19, 2 on the 20th, 1 on 21–30.
    #[test]
    fn stock_across_a_month_with_a_stock_out_and_an_arrival() {
        let rows = vec![
            copy(date(5, 3), Some(date(6, 10)), 1, 1000.0),
            copy(date(6, 20), Some(date(6, 20)), 1, 1200.0),
            copy(date(6, 20), None, 1, 1200.0),
        ];
        let r = reconstruct(&rows, &[0, 0, 0], &[1200.0], &june(), 5);
        assert!(r.negative.is_empty());
        let m = &r.monthly[0];
        assert_eq!(
            (m.units_sold, m.arrivals, m.stock_start, m.stock_end),
            (2, 2, 1, 1)
        );
        assert_eq!(m.net_movement(), 0);
        assert_eq!((m.observed_days, m.in_stock_days), (30, 21));
        assert!((m.availability - 21.0 / 30.0).abs() < 1e-12);
        // confidence: (10·1 + 2 + 10·1) / 5 / 30
        assert!((m.confidence - 22.0 / 150.0).abs() < 1e-12);
        assert!((m.mean_sales_units - 2.0 / 21.0).abs() < 1e-12);
        // mean sale price (1000 + 1200) / 2 = 1100
        assert!((m.mean_sales_rub - 2.0 / 21.0 * 1100.0).abs() < 1e-9);
        assert!((m.lost_sales_units - 9.0 * 2.0 / 21.0).abs() < 1e-12);
        assert!((m.revenue_rub - 2200.0).abs() < 1e-9);
    }

    #[test]
    fn honours_copy_counts_and_old_stock() {
        // Five copies on the shelf since 2019 (one row, Экземпляры = 5): always in stock.
        let rows = vec![copy(
            NaiveDate::from_ymd_opt(2019, 1, 1).unwrap(),
            None,
            5,
            900.0,
        )];
        let r = reconstruct(&rows, &[0], &[900.0], &june(), 5);
        let m = &r.monthly[0];
        assert_eq!((m.stock_start, m.stock_end, m.in_stock_days), (5, 5, 30));
        assert!((m.confidence - 1.0).abs() < 1e-12);
        assert_eq!(m.lost_sales_rub, 0.0);
    }

    #[test]
    fn no_rows_before_a_product_arrives_and_negative_stock_is_found() {
        let two_months = Window {
            first: Month::new(2026, 5).unwrap(),
            last: Month::new(2026, 6).unwrap(),
            stock_date: date(7, 1),
        };
        let rows = vec![copy(date(6, 15), None, 1, 500.0)];
        let r = reconstruct(&rows, &[0], &[500.0], &two_months, 5);
        assert_eq!(r.monthly.len(), 1);
        assert_eq!(r.monthly[0].month, Month::new(2026, 6).unwrap());
        // Sold on the 5th, "created" on the 9th: stock goes negative in between.
        let bad = vec![copy(date(6, 9), Some(date(6, 5)), 1, 500.0)];
        let r = reconstruct(&bad, &[0], &[500.0], &june(), 5);
        assert_eq!(r.negative, vec![(0, date(6, 6))]);
    }

    proptest! {
        /// For any month of coherent copies: start + arrivals − sales = end, the end is the
        /// snapshot, and the start is every copy that arrived earlier and was not sold earlier.
        #[test]
        fn stock_balances(copies in prop::collection::vec((0i64..60, prop::option::of(0i64..40), 1u32..4), 1..40)) {
            let window = june();
            let june1 = date(6, 1);
            let rows: Vec<ParsedRow> = copies.iter().map(|&(created, sold, n)| {
                // Days relative to 2 May; sales land in June, never before arrival.
                let created = date(5, 2) + chrono::Duration::days(created);
                let sold = sold.map(|s| (june1 + chrono::Duration::days(s % 30)).max(created)).filter(|&s| s < window.stock_date);
                let created = created.min(date(6, 30));
                copy(created, sold, if sold.is_some() { 1 } else { n }, 100.0)
            }).collect();
            let ids = vec![0; rows.len()];
            let r = reconstruct(&rows, &ids, &[100.0], &window, 5);
            prop_assert!(r.negative.is_empty());
            let snapshot: i64 = rows.iter().filter(|c| c.sold.is_none()).map(|c| c.copies as i64).sum();
            let before: i64 = rows.iter()
                .filter(|c| c.created < june1 && c.sold.is_none_or(|s| s >= june1))
                .map(|c| c.copies as i64).sum();
            if let Some(m) = r.monthly.first() {
                prop_assert_eq!(m.stock_start + m.net_movement(), m.stock_end);
                prop_assert_eq!(m.stock_end, snapshot);
                prop_assert_eq!(m.stock_start, before);
                prop_assert!((0.0..=1.0).contains(&m.availability));
            }
        }
    }
}
