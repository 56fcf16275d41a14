//! The forecasting brain: dataset, TiDE, loss, metrics, baselines, training, prediction.

pub mod adam;
pub mod backtest;
pub mod baselines;
pub mod blend;
pub mod covariates;
pub mod dataset;
pub mod dropout;
pub mod ewm;
pub mod fit;
pub mod history;
pub mod intermittent;
pub mod job;
pub mod loss;
pub mod metrics;
pub mod native;
pub mod predict;
pub mod scaler;
pub mod stored;
pub mod swa;
pub mod tide;
pub mod train;
pub mod tune;
pub mod whole_copies;
pub mod workers;
