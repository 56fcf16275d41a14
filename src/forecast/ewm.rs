//! Exponentially weighted mean and variance exactly as pandas computes them with
//! `adjust=False, ignore_na=False, bias=False` (original-ml.md Appendix A). `None` is a
//! missing value.

/// Running EW mean; `None` while no value has been seen.
pub fn ewm_mean(x: &[Option<f64>], span: usize) -> Vec<Option<f64>> {
    let alpha = 2.0 / (span as f64 + 1.0);
    let f = 1.0 - alpha;
    let mut out = Vec::with_capacity(x.len());
    let mut mean = x.first().copied().flatten();
    let mut omega = 1.0;
    out.push(mean);
    for &xi in x.iter().skip(1) {
        if mean.is_some() {
            omega *= f;
        }
        match (mean, xi) {
            (Some(m), Some(v)) => {
                if m != v {
                    mean = Some((omega * m + alpha * v) / (omega + alpha));
                }
                omega = 1.0;
            }
            (None, Some(v)) => mean = Some(v),
            _ => {}
        }
        out.push(mean);
    }
    out
}

/// Running EW variance, bias-corrected; missing until two observations exist.
pub fn ewm_var(x: &[Option<f64>], span: usize) -> Vec<Option<f64>> {
    let alpha = 2.0 / (span as f64 + 1.0);
    let f = 1.0 - alpha;
    let mut out = Vec::with_capacity(x.len());
    let mut mean = x.first().copied().flatten();
    let (mut cov, mut s1, mut s2, mut omega) = (0.0, 1.0, 1.0, 1.0);
    let mut nobs = usize::from(mean.is_some());
    let emit = |nobs: usize, s1: f64, s2: f64, cov: f64| {
        let denom = s1 * s1 - s2;
        (nobs >= 1 && denom > 0.0).then(|| s1 * s1 / denom * cov)
    };
    out.push(emit(nobs, s1, s2, cov));
    for &xi in x.iter().skip(1) {
        nobs += usize::from(xi.is_some());
        match (mean, xi) {
            (Some(m), xi) => {
                s1 *= f;
                s2 *= f * f;
                omega *= f;
                if let Some(v) = xi {
                    let old = m;
                    let new = if old != v {
                        (omega * old + alpha * v) / (omega + alpha)
                    } else {
                        old
                    };
                    cov = (omega * (cov + (old - new) * (old - new))
                        + alpha * (v - new) * (v - new))
                        / (omega + alpha);
                    s1 = (s1 + alpha) / (omega + alpha);
                    s2 = (s2 + alpha * alpha) / ((omega + alpha) * (omega + alpha));
                    omega = 1.0;
                    mean = Some(new);
                }
            }
            (None, Some(v)) => mean = Some(v),
            (None, None) => {}
        }
        out.push(emit(nobs, s1, s2, cov));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(got: &[Option<f64>], want: &[Option<f64>]) {
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(want) {
            match (g, w) {
                (Some(g), Some(w)) => assert!((g - w).abs() < 1e-4, "{got:?} vs {want:?}"),
                (None, None) => {}
                _ => panic!("{got:?} vs {want:?}"),
            }
        }
    }

    #[test]
    fn matches_the_pandas_check_values() {
        let x = [
            None,
            Some(2.0),
            None,
            Some(4.0),
            Some(1.0),
            Some(0.0),
            Some(3.0),
        ];
        close(
            &ewm_mean(&x, 3),
            &[
                None,
                Some(2.0),
                Some(2.0),
                Some(3.3333),
                Some(2.1667),
                Some(1.0833),
                Some(2.0417),
            ],
        );
        close(
            &ewm_var(&x, 3),
            &[
                None,
                None,
                None,
                Some(2.0),
                Some(2.9545),
                Some(3.1809),
                Some(2.9503),
            ],
        );
        let y = [1.0, 2.0, 3.0, 0.0, 0.0, 5.0].map(Some);
        close(
            &ewm_var(&y, 4),
            &[
                None,
                Some(0.5),
                Some(1.16176),
                Some(2.03330),
                Some(1.67053),
                Some(6.84941),
            ],
        );
    }
}
