//! Target scaling: one global log min–max pair (original-ml.md §2.9.3), fitted on the
//! training months only (the original also saw the validation target, §7.B.5).

use serde::{Deserialize, Serialize};

/// The original's "scaled zero": a raw 0 maps exactly here.
pub const SCALED_ZERO: f64 = 1e-6;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LogMinMax {
    pub min: f64,
    pub max: f64,
}

impl LogMinMax {
    /// Fits on every value; a constant series gets a unit range so nothing divides by 0.
    pub fn fit(values: impl Iterator<Item = f64>) -> Self {
        let (mut min, mut max) = (f64::INFINITY, f64::NEG_INFINITY);
        for v in values {
            let l = v.max(0.0).ln_1p();
            min = min.min(l);
            max = max.max(l);
        }
        if !min.is_finite() {
            return Self { min: 0.0, max: 1.0 };
        }
        if max - min < 1e-12 {
            max = min + 1.0;
        }
        Self { min, max }
    }

    pub fn transform(&self, x: f64) -> f64 {
        (x.max(0.0).ln_1p() - self.min) / (self.max - self.min) + SCALED_ZERO
    }

    pub fn inverse(&self, z: f64) -> f64 {
        ((z - SCALED_ZERO) * (self.max - self.min) + self.min).exp_m1()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_the_scaled_zero() {
        let s = LogMinMax::fit([0.0, 3.0, 8.0].into_iter());
        assert_eq!((s.min, s.max), (0.0, 9f64.ln()));
        assert_eq!(s.transform(0.0), SCALED_ZERO);
        assert!((s.transform(8.0) - (1.0 + SCALED_ZERO)).abs() < 1e-12);
        for x in [0.0, 0.5, 1.0, 3.0, 8.0, 20.0] {
            assert!((s.inverse(s.transform(x)) - x).abs() < 1e-9, "{x}");
        }
    }
}
