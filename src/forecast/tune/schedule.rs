//! Successive halving on the epoch budget: every trial is trained for a few epochs, the
//! best third go on with three times as many, and so on up to the full `max_epochs`
//! (where early stopping decides as in `train`). Promotion reads only stored scores, so
//! a resumed study makes the same decisions it would have made uninterrupted.

use super::{CURRENT, TrialRecord};

/// The halving rate: a third of each rung goes on, with three times the epochs.
pub const ETA: usize = 3;
/// At most this many rungs (the last one at the full budget).
pub const MAX_RUNGS: usize = 3;

#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    /// Candidate trials, numbered 1..=trials (0 is the current settings).
    pub trials: usize,
    /// Epoch budget of each rung, ascending; the last is the full `max_epochs`.
    pub budgets: Vec<usize>,
}

/// One evaluation to run: trial `trial` at `epochs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Job {
    pub trial: usize,
    pub epochs: usize,
}

impl Schedule {
    /// Rungs: enough that the last keeps at least one trial (1 + ⌊log₃ trials⌋, at most
    /// [`MAX_RUNGS`]); the first at `min_epochs`, each next ×[`ETA`], the last at
    /// `max_epochs`.
    pub fn new(trials: usize, min_epochs: usize, max_epochs: usize) -> Self {
        let mut rungs = 1;
        while rungs < MAX_RUNGS && ETA.pow(rungs as u32) <= trials {
            rungs += 1;
        }
        let mut budgets: Vec<usize> = (0..rungs - 1)
            .map(|r| min_epochs.max(1) * ETA.pow(r as u32))
            .filter(|&b| b < max_epochs)
            .collect();
        budgets.push(max_epochs);
        Self { trials, budgets }
    }

    /// How many candidates rung `rung` keeps: ⌈trials / 3^rung⌉.
    pub fn keeps(&self, rung: usize) -> usize {
        self.trials.div_ceil(ETA.pow(rung as u32))
    }

    /// The evaluations rung `rung` needs, given what is stored: every candidate on rung 0
    /// (and the current settings at the full budget); on a later rung the best
    /// [`Self::keeps`] of the previous rung's scored trials (ties to the lower number).
    /// None while the previous rung is unfinished.
    pub fn rung(&self, rung: usize, stored: &[TrialRecord]) -> Option<Vec<Job>> {
        let epochs = self.budgets[rung];
        if rung == 0 {
            let mut jobs = vec![Job {
                trial: CURRENT,
                epochs: self.full(),
            }];
            jobs.extend((1..=self.trials).map(|trial| Job { trial, epochs }));
            return Some(jobs);
        }
        let previous = self.rung(rung - 1, stored)?;
        let below = self.budgets[rung - 1];
        let mut scored = Vec::new();
        for job in previous.iter().filter(|j| j.trial != CURRENT) {
            let record = find(stored, job.trial, below)?;
            if let Some(pinball) = record.pinball() {
                scored.push((pinball, job.trial));
            }
        }
        scored.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        Some(
            scored
                .into_iter()
                .take(self.keeps(rung))
                .map(|(_, trial)| Job { trial, epochs })
                .collect(),
        )
    }

    /// Whether every rung has all its evaluations stored.
    pub fn is_complete(&self, stored: &[TrialRecord]) -> bool {
        (0..self.budgets.len()).all(|rung| {
            self.rung(rung, stored).is_some_and(|jobs| {
                jobs.iter()
                    .all(|j| find(stored, j.trial, j.epochs).is_some())
            })
        })
    }

    pub fn full(&self) -> usize {
        *self.budgets.last().unwrap_or(&1)
    }

    /// The best candidate at the highest budget any candidate reached, lowest pinball.
    pub fn best<'a>(&self, stored: &'a [TrialRecord]) -> Option<&'a TrialRecord> {
        let candidates = || {
            stored
                .iter()
                .filter(|r| r.trial != CURRENT && r.trial <= self.trials && r.pinball().is_some())
        };
        let top = candidates().map(|r| r.epochs).max()?;
        candidates().filter(|r| r.epochs == top).min_by(|a, b| {
            a.pinball()
                .unwrap_or(f64::INFINITY)
                .total_cmp(&b.pinball().unwrap_or(f64::INFINITY))
                .then(a.trial.cmp(&b.trial))
        })
    }
}

/// The stored evaluation of `trial` at `epochs`.
pub fn find(stored: &[TrialRecord], trial: usize, epochs: usize) -> Option<&TrialRecord> {
    stored
        .iter()
        .find(|r| r.trial == trial && r.epochs == epochs)
}

#[cfg(test)]
mod tests {
    use super::super::{FORMAT_VERSION, Outcome, TrialScore};
    use super::*;

    fn record(trial: usize, epochs: usize, pinball: Option<f64>) -> TrialRecord {
        TrialRecord {
            format_version: FORMAT_VERSION,
            study_id: "s".into(),
            trial,
            epochs,
            values: Default::default(),
            outcome: match pinball {
                Some(pinball) => Outcome::Scored(TrialScore {
                    months: vec![],
                    products: 1,
                    pinball,
                    wape: None,
                    coverage: 0.9,
                    coverage_inner: None,
                    best_baseline: "tsb".into(),
                    best_baseline_pinball: 1.0,
                }),
                None => Outcome::Failed("too few months".into()),
            },
            seconds: 1.0,
            threads: 1,
            created_at: String::new(),
        }
    }

    #[test]
    fn rungs_grow_with_the_trials_and_end_at_the_full_budget() {
        assert_eq!(Schedule::new(1, 5, 200).budgets, [200]);
        assert_eq!(Schedule::new(2, 5, 200).budgets, [200]);
        assert_eq!(Schedule::new(4, 5, 200).budgets, [5, 200]);
        assert_eq!(Schedule::new(8, 5, 200).budgets, [5, 200]);
        assert_eq!(Schedule::new(9, 5, 200).budgets, [5, 15, 200]);
        assert_eq!(Schedule::new(20, 5, 200).budgets, [5, 15, 200]);
        assert_eq!(Schedule::new(100, 5, 200).budgets, [5, 15, 200]);
        // A budget at or above the full one is dropped.
        assert_eq!(Schedule::new(20, 5, 12).budgets, [5, 12]);
        let s = Schedule::new(20, 5, 200);
        assert_eq!((s.keeps(0), s.keeps(1), s.keeps(2)), (20, 7, 3));
    }

    /// Rung 1 waits for rung 0, then takes the best third by pinball (failures never
    /// go on, ties to the lower trial); the current settings run once, at full budget.
    #[test]
    fn the_best_third_of_a_finished_rung_go_on() {
        let s = Schedule::new(4, 5, 30);
        let first = s.rung(0, &[]).unwrap();
        assert_eq!(
            first[0],
            Job {
                trial: 0,
                epochs: 30
            }
        );
        assert_eq!(first.len(), 5);
        assert!(first[1..].iter().all(|j| j.epochs == 5));
        let mut stored = vec![
            record(1, 5, Some(0.30)),
            record(2, 5, None),
            record(3, 5, Some(0.20)),
        ];
        assert_eq!(s.rung(1, &stored), None, "trial 4 is not scored yet");
        assert!(!s.is_complete(&stored));
        stored.push(record(4, 5, Some(0.20)));
        assert_eq!(
            s.rung(1, &stored).unwrap(),
            [
                Job {
                    trial: 3,
                    epochs: 30
                },
                Job {
                    trial: 4,
                    epochs: 30
                }
            ]
        );
        // The best is read at the highest budget reached.
        assert_eq!(s.best(&stored).unwrap().trial, 3);
        stored.push(record(4, 30, Some(0.25)));
        stored.push(record(0, 30, Some(0.10)));
        assert_eq!(s.best(&stored).unwrap().trial, 4);
        assert!(!s.is_complete(&stored), "trial 3 at 30 epochs is missing");
        stored.push(record(3, 30, Some(0.22)));
        assert!(s.is_complete(&stored));
    }
}
