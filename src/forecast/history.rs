//! The stored history as the model reads it: dense per-product monthly series.

use crate::month::Month;

/// Attributes a product brings to the model as static covariates.
#[derive(Debug, Clone, PartialEq)]
pub struct ProductAttributes {
    pub id: i64,
    pub condition: String,
    pub release_type: String,
    pub style: String,
    pub price_category: String,
    pub recording_year: i32,
    pub recording_decade: i32,
    pub release_decade: i32,
}

/// Every stored month × every product that has a row in any of them. Series are
/// product-major: value of product `i` in month `t` is at `i * months.len() + t`.
/// A missing row (the product was not on the shelf, or not launched yet) reads as 0 with
/// `present` false.
#[derive(Debug, Clone, Default)]
pub struct History {
    pub months: Vec<Month>,
    /// Whether each month is complete (only the newest stored month may be partial).
    pub complete: Vec<bool>,
    /// Months stored empty on purpose (the shop was closed): no demand was observed.
    pub closed: Vec<bool>,
    pub products: Vec<ProductAttributes>,
    pub units: Vec<f64>,
    pub availability: Vec<f64>,
    pub confidence: Vec<f64>,
    pub present: Vec<bool>,
    /// Copies on the shelf at the end of each month (0 without a row): the shelf the next
    /// month starts from, known when it is forecast (the snapshot, for the newest month).
    pub stock_end: Vec<f64>,
    /// Copies that arrived in each month (0 without a row): the shop restocks what sells,
    /// so its lots tell how a record sells even while it was sold out.
    pub arrivals: Vec<f64>,
}

impl History {
    pub fn at(&self, product: usize, month: usize) -> usize {
        product * self.months.len() + month
    }

    /// The newest month that is not partial, if any.
    pub fn newest_complete(&self) -> Option<Month> {
        self.months
            .iter()
            .zip(&self.complete)
            .rev()
            .find(|(_, c)| **c)
            .map(|(m, _)| *m)
    }

    /// The history up to its newest complete month: a partial month is never trained on,
    /// held out or forecast from (its sales are incomplete, so they would read as a
    /// slump). Products seen only in the dropped months are dropped with them.
    pub fn complete_months(&self) -> History {
        let keep = self.complete.iter().rposition(|&c| c).map_or(0, |i| i + 1);
        self.first_months(keep)
    }

    /// The history of its first `keep` months, as it stood before month `keep`: products
    /// not on the books by then are left out (a backtest's view of the past).
    pub fn first_months(&self, keep: usize) -> History {
        let keep = keep.min(self.months.len());
        if keep == self.months.len() {
            return self.clone();
        }
        let t = self.months.len();
        let products: Vec<usize> = (0..self.products.len())
            .filter(|&i| (0..keep).any(|m| self.present[i * t + m]))
            .collect();
        let pick = |values: &Vec<f64>| -> Vec<f64> {
            products
                .iter()
                .flat_map(|&i| values[i * t..i * t + keep].iter().copied())
                .collect()
        };
        History {
            months: self.months[..keep].to_vec(),
            complete: self.complete[..keep].to_vec(),
            closed: self.closed[..keep].to_vec(),
            products: products.iter().map(|&i| self.products[i].clone()).collect(),
            units: pick(&self.units),
            availability: pick(&self.availability),
            confidence: pick(&self.confidence),
            present: products
                .iter()
                .flat_map(|&i| self.present[i * t..i * t + keep].iter().copied())
                .collect(),
            stock_end: pick(&self.stock_end),
            arrivals: pick(&self.arrivals),
        }
    }

    /// Whether month `m` is stored partial (newest month, snapshot inside it).
    pub fn has_partial_month(&self) -> Option<Month> {
        self.months
            .iter()
            .zip(&self.complete)
            .find(|(_, c)| !**c)
            .map(|(m, _)| *m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn complete_months_drop_the_partial_month_and_products_only_seen_there() {
        let m = |k| Month::new(2026, k).unwrap();
        let attrs = |id| ProductAttributes {
            id,
            condition: "sealed".into(),
            release_type: "Оригинал".into(),
            style: "Rock".into(),
            price_category: "x".into(),
            recording_year: 1980,
            recording_decade: 1980,
            release_decade: 1980,
        };
        let h = History {
            months: vec![m(1), m(2), m(3)],
            complete: vec![true, true, false],
            closed: vec![false; 3],
            products: vec![attrs(1), attrs(2)],
            units: vec![1.0, 2.0, 3.0, 0.0, 0.0, 9.0],
            availability: vec![1.0; 6],
            confidence: vec![1.0; 6],
            present: vec![true, true, true, false, false, true],
            stock_end: vec![0.0; 6],
            arrivals: vec![0.0; 6],
        };
        let c = h.complete_months();
        assert_eq!(c.months, vec![m(1), m(2)]);
        assert_eq!(c.products.len(), 1);
        assert_eq!(c.units, vec![1.0, 2.0]);
        assert_eq!(h.has_partial_month(), Some(m(3)));
        assert_eq!(c.newest_complete(), Some(m(2)));
    }
}
