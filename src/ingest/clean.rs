//! Upload-wide cleaning: release-year repair, missing covers, product identity and the
//! product attributes that go with it.
//!
//! Unlike the original, which imputed per file (original-ml.md §7.A.7), statistics here are
//! taken over the whole upload, so the same album is cleaned the same way in every file.

use super::rows::ParsedRow;
use crate::config::DataConfig;
use chrono::NaiveDate;
use std::collections::HashMap;

/// The literal the export uses for an original pressing.
pub const ORIGINAL_RELEASE: &str = "Оригинал";

/// A product as this upload sees it. The key is what makes it the same record from
/// month to month; the other fields are attributes, updated by every upload.
#[derive(Debug, Clone, PartialEq)]
pub struct Product {
    pub key: String,
    pub barcode: Option<String>,
    pub artist: String,
    pub album: String,
    pub sealed: bool,
    pub price: f64,
    pub release_type: String,
    pub recording_year: i32,
    pub release_year: i32,
    pub style: String,
    /// Derived attributes, set by [`Product::derive`] once the price is final.
    pub price_category: usize,
    pub price_category_label: String,
    pub recording_decade: i32,
    pub release_decade: i32,
}

impl Product {
    /// Fills the derived attributes (category, decades) from price and years.
    pub fn derive(&mut self, edges: &[f64]) {
        self.price_category = price_category(self.price, edges);
        self.price_category_label = price_category_label(self.price_category, edges);
        self.recording_decade = decade(self.recording_year);
        self.release_decade = decade(self.release_year);
    }
}

/// The stable identity: normalised barcode + condition, or normalised artist + album +
/// condition when the barcode is missing. Price category, style and years are not part
/// of it (the original's 10-attribute key split one record into several series).
pub fn product_key(barcode: Option<&str>, artist: &str, album: &str, sealed: bool) -> String {
    let condition = if sealed { "sealed" } else { "opened" };
    match barcode {
        Some(code) => format!("ean:{code}|{condition}"),
        None => format!("name:{}\u{1f}{}|{condition}", fold(artist), fold(album)),
    }
}

fn fold(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// Identity of a row before its condition is known.
fn base_identity(row: &ParsedRow) -> String {
    match &row.barcode {
        Some(code) => format!("ean:{code}"),
        None => format!("name:{}\u{1f}{}", fold(&row.artist), fold(&row.album)),
    }
}

/// The whole upload after cleaning: every row points at its product.
pub struct Cleaned {
    pub products: Vec<Product>,
    /// `product_of_row[i]` is the index in `products` of `rows[i]`.
    pub product_of_row: Vec<u32>,
    /// Release years imputed with the mean gap (a summary figure).
    pub release_years_imputed: usize,
    pub covers_imputed: usize,
}

/// `as_of` is the snapshot date: years are clipped to `[min_year, its year]`.
pub fn clean(rows: &mut [ParsedRow], config: &DataConfig, as_of: NaiveDate) -> Cleaned {
    let max_year = chrono::Datelike::year(&as_of);
    let gap = mean_release_gap(rows).unwrap_or(config.default_release_gap_years);
    let mut release_years_imputed = 0;
    for row in rows.iter_mut() {
        let recording = row.recording_year;
        let release = if row.release_type == ORIGINAL_RELEASE {
            recording
        } else {
            match row.release_year {
                Some(year) if year >= recording => year,
                _ => {
                    release_years_imputed += 1;
                    recording + gap
                }
            }
        };
        row.recording_year = recording.clamp(config.min_year, max_year);
        row.release_year = Some(release.clamp(config.min_year, max_year));
    }

    // Missing cover → the condition most rows of the same record have (ties: opened),
    // as the original filled covers from the group's mode before mapping SS/other.
    let mut votes: HashMap<String, (usize, usize)> = HashMap::new();
    for row in rows.iter() {
        if let Some(sealed) = row.sealed {
            let entry = votes.entry(base_identity(row)).or_default();
            if sealed { entry.0 += 1 } else { entry.1 += 1 }
        }
    }
    let mut covers_imputed = 0;
    for row in rows.iter_mut() {
        if row.sealed.is_none() {
            covers_imputed += 1;
            let (sealed, opened) = votes.get(&base_identity(row)).copied().unwrap_or_default();
            row.sealed = Some(sealed > opened);
        }
    }

    let mut index: HashMap<String, u32> = HashMap::new();
    let mut products: Vec<Product> = Vec::new();
    let mut latest: Vec<NaiveDate> = Vec::new();
    let mut styles: Vec<HashMap<String, usize>> = Vec::new();
    let mut product_of_row = Vec::with_capacity(rows.len());
    for row in rows.iter() {
        let sealed = row.sealed.unwrap_or(false);
        let key = product_key(row.barcode.as_deref(), &row.artist, &row.album, sealed);
        // Snapshot rows describe the shop on the snapshot date: the freshest attributes.
        let seen = row.sold.unwrap_or(as_of);
        let id = *index.entry(key.clone()).or_insert_with(|| {
            products.push(to_product(key, row, sealed));
            latest.push(seen);
            styles.push(HashMap::new());
            (products.len() - 1) as u32
        });
        let i = id as usize;
        if seen > latest[i] {
            let key = std::mem::take(&mut products[i].key);
            products[i] = to_product(key, row, sealed);
            latest[i] = seen;
        }
        if let Some(style) = &row.style {
            *styles[i].entry(style.clone()).or_default() += 1;
        }
        product_of_row.push(id);
    }
    for (product, votes) in products.iter_mut().zip(&styles) {
        // Most frequent style; ties → the alphabetically first, as the original.
        if let Some((style, _)) = votes
            .iter()
            .max_by(|a, b| a.1.cmp(b.1).then_with(|| b.0.cmp(a.0)))
        {
            product.style = style.clone();
        }
    }
    Cleaned {
        products,
        product_of_row,
        release_years_imputed,
        covers_imputed,
    }
}

fn to_product(key: String, row: &ParsedRow, sealed: bool) -> Product {
    Product {
        key,
        barcode: row.barcode.clone(),
        artist: row.artist.clone(),
        album: row.album.clone(),
        sealed,
        price: row.price,
        release_type: row.release_type.clone(),
        recording_year: row.recording_year,
        release_year: row.release_year.unwrap_or(row.recording_year),
        style: row.style.clone().unwrap_or_else(|| "None".to_string()),
        price_category: 0,
        price_category_label: String::new(),
        recording_decade: 0,
        release_decade: 0,
    }
}

/// Rounded mean of (release − recording) over dated re-issues; `None` when there are
/// none. (The original needed more than ten and crashed otherwise, and let impossible
/// negative gaps pull the mean down; those are left out here.)
fn mean_release_gap(rows: &[ParsedRow]) -> Option<i32> {
    let gaps: Vec<i32> = rows
        .iter()
        .filter(|r| r.release_type != ORIGINAL_RELEASE)
        .filter_map(|r| r.release_year.map(|y| y - r.recording_year))
        .filter(|&gap| gap >= 0)
        .collect();
    (!gaps.is_empty())
        .then(|| (gaps.iter().map(|&g| g as f64).sum::<f64>() / gaps.len() as f64).round() as i32)
}

/// Decade of a year: `floor(year / 10) * 10` (1960 is in the 1960s, unlike the original).
pub fn decade(year: i32) -> i32 {
    year.div_euclid(10) * 10
}

/// Index of the price category: the first edge the price does not exceed (intervals
/// closed on the right), or `edges.len()` for the open top category.
pub fn price_category(price: f64, edges: &[f64]) -> usize {
    edges
        .iter()
        .position(|&edge| price <= edge)
        .unwrap_or(edges.len())
}

/// `(689.999, 2490]`-style label of a category, as the original printed them.
pub fn price_category_label(category: usize, edges: &[f64]) -> String {
    let lower = if category == 0 {
        0.0
    } else {
        edges[category - 1]
    };
    match edges.get(category) {
        Some(upper) => format!("({lower}, {upper}]"),
        None => format!("({lower}, inf)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(release_type: &str, recording: i32, release: Option<i32>) -> ParsedRow {
        ParsedRow {
            file: 0,
            row: 2,
            barcode: Some("123".into()),
            artist: "Кино".into(),
            album: "Группа крови".into(),
            sealed: None,
            price: 3000.0,
            release_type: release_type.into(),
            recording_year: recording,
            release_year: release,
            style: Some("Rock".into()),
            created: NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
            sold: None,
            copies: 1,
        }
    }

    #[test]
    fn release_years_follow_the_original_rules_without_its_crash() {
        let config = DataConfig::default();
        let as_of = NaiveDate::from_ymd_opt(2026, 11, 1).unwrap();
        let mut rows = vec![
            row(ORIGINAL_RELEASE, 1988, Some(2020)), // original: release := recording
            row("Переиздание", 1970, Some(1990)),    // gap 20
            row("Переиздание", 1980, Some(2004)),    // gap 24 → mean 22
            row("Переиздание", 1975, None),          // imputed 1975 + 22
            row("Переиздание", 1940, Some(1930)),    // before recording → 1940 + 22, clipped
        ];
        let cleaned = clean(&mut rows, &config, as_of);
        let years: Vec<(i32, i32)> = rows
            .iter()
            .map(|r| (r.recording_year, r.release_year.unwrap()))
            .collect();
        assert_eq!(
            years,
            [
                (1988, 1988),
                (1970, 1990),
                (1980, 2004),
                (1975, 1997),
                (1950, 1962)
            ]
        );
        assert_eq!(cleaned.release_years_imputed, 2);
        // One small file no longer crashes: no dated re-issue → the configured default gap.
        let mut lonely = vec![row("Переиздание", 1975, None)];
        clean(&mut lonely, &config, as_of);
        assert_eq!(lonely[0].release_year, Some(1990));
    }

    #[test]
    fn missing_cover_takes_the_records_usual_condition() {
        let as_of = NaiveDate::from_ymd_opt(2026, 11, 1).unwrap();
        let mut rows = vec![row("Переиздание", 1970, Some(1990)); 3];
        rows[0].sealed = Some(true);
        rows[1].sealed = Some(true);
        let cleaned = clean(&mut rows, &DataConfig::default(), as_of);
        assert_eq!(cleaned.products.len(), 1);
        assert!(cleaned.products[0].sealed);
        assert_eq!(cleaned.covers_imputed, 1);
    }

    #[test]
    fn keys_ignore_case_spacing_and_price() {
        assert_eq!(
            product_key(None, "  Аквариум ", "Радио  Африка", false),
            product_key(None, "аквариум", "радио африка", false)
        );
        assert_ne!(
            product_key(Some("1"), "a", "b", true),
            product_key(Some("1"), "a", "b", false)
        );
    }

    #[test]
    fn categories_and_decades() {
        let edges = DataConfig::default().price_category_edges;
        assert_eq!(price_category(689.999, &edges), 0);
        assert_eq!(price_category(690.0, &edges), 1);
        assert_eq!(price_category(2490.0, &edges), 1);
        assert_eq!(price_category(20000.0, &edges), 7);
        assert_eq!(price_category_label(1, &edges), "(689.999, 2490]");
        assert_eq!(price_category_label(7, &edges), "(11990, inf)");
        assert_eq!(decade(1960), 1960);
        assert_eq!(decade(1969), 1960);
    }
}
