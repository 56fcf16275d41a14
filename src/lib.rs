//! plastinka: monthly sales forecasts for a record shop.
//!
//! Data flows one way: files → [`ingest`] → [`store`] → forecast → [`store`] → report.
//! Only [`store`] speaks SQL; [`commands`] wire the modules together.

pub mod cli;
pub mod clock;
pub mod commands;
pub mod config;
pub mod digest;
pub mod error;
pub mod faults;
pub mod forecast;
pub mod health;
pub mod ingest;
pub mod month;
pub mod output;
pub mod remote;
pub mod report;
pub mod store;
