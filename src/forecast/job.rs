//! What a remote training job reads and writes — one file each, a versioned container
//! read and written only here:
//!
//! * [`JobInput`]: exactly what training needs — the stored history of complete months
//!   and the effective `[model]` and `[training]` settings — not the database;
//! * [`JobOutput`]: the trained [`ModelRecord`] (weights included) and its forecasts, with
//!   the digest of the input it was trained on, so the local side stores it only if it is
//!   the answer to the question it asked.
//!
//! The container: a magic line naming the kind and format version, then sections, each
//! a name, a little-endian length and the bytes. Numbers are raw little-endian arrays, so
//! a history of 20,000 products × 36 months is 18 MB and reads back bit for bit.

use super::history::{History, ProductAttributes};
use super::stored::{ModelRecord, ProductForecast};
use crate::config::{ModelConfig, TrainingConfig};
use crate::month::Month;
use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

pub const FORMAT_VERSION: u32 = 3;
const INPUT_MAGIC: &str = "plastinka job input";
const OUTPUT_MAGIC: &str = "plastinka job output";

/// The training a job is asked to do.
#[derive(Debug, Clone)]
pub struct JobInput {
    pub history: History,
    pub model: ModelConfig,
    pub training: TrainingConfig,
}

/// What a job answers.
#[derive(Debug, Clone)]
pub struct JobOutput {
    /// sha256 of the input file this answers.
    pub input_sha256: String,
    pub record: ModelRecord,
    pub forecasts: Vec<ProductForecast>,
}

#[derive(Serialize, Deserialize)]
struct InputHeader {
    model: ModelConfig,
    training: TrainingConfig,
    months: Vec<Month>,
    complete: Vec<bool>,
    closed: Vec<bool>,
    products: Vec<Product>,
}

#[derive(Serialize, Deserialize)]
struct Product {
    id: i64,
    condition: String,
    release_type: String,
    style: String,
    price_category: String,
    recording_year: i32,
    recording_decade: i32,
    release_decade: i32,
}

#[derive(Serialize, Deserialize)]
struct OutputHeader {
    input_sha256: String,
    record: ModelRecord,
    forecasts: Vec<ProductForecast>,
}

impl JobInput {
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let h = &self.history;
        let header = InputHeader {
            model: self.model.clone(),
            training: self.training.clone(),
            months: h.months.clone(),
            complete: h.complete.clone(),
            closed: h.closed.clone(),
            products: h
                .products
                .iter()
                .map(|p| Product {
                    id: p.id,
                    condition: p.condition.clone(),
                    release_type: p.release_type.clone(),
                    style: p.style.clone(),
                    price_category: p.price_category.clone(),
                    recording_year: p.recording_year,
                    recording_decade: p.recording_decade,
                    release_decade: p.release_decade,
                })
                .collect(),
        };
        let mut out = Container::new(INPUT_MAGIC);
        out.section("header", serde_json::to_vec(&header)?);
        out.section("units", floats(&h.units));
        out.section("availability", floats(&h.availability));
        out.section("confidence", floats(&h.confidence));
        out.section("present", h.present.iter().map(|&p| u8::from(p)).collect());
        out.section("stock_end", floats(&h.stock_end));
        out.section("arrivals", floats(&h.arrivals));
        Ok(out.bytes)
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let sections = open(bytes, INPUT_MAGIC)?;
        let header: InputHeader = serde_json::from_slice(section(&sections, "header")?)
            .context("the job input's header")?;
        let cells = header
            .products
            .len()
            .checked_mul(header.months.len())
            .context("the job input's header is damaged")?;
        let units = read_floats(section(&sections, "units")?, cells)?;
        let availability = read_floats(section(&sections, "availability")?, cells)?;
        let confidence = read_floats(section(&sections, "confidence")?, cells)?;
        let stock_end = read_floats(section(&sections, "stock_end")?, cells)?;
        let arrivals = read_floats(section(&sections, "arrivals")?, cells)?;
        let present = section(&sections, "present")?;
        if present.len() != cells {
            bail!(
                "the job input's presence flags are {} for {cells} cells",
                present.len()
            );
        }
        let t = header.months.len();
        if header.complete.len() != t || header.closed.len() != t {
            bail!("the job input's month flags do not match its {t} months");
        }
        Ok(Self {
            history: History {
                months: header.months,
                complete: header.complete,
                closed: header.closed,
                products: header
                    .products
                    .into_iter()
                    .map(|p| ProductAttributes {
                        id: p.id,
                        condition: p.condition,
                        release_type: p.release_type,
                        style: p.style,
                        price_category: p.price_category,
                        recording_year: p.recording_year,
                        recording_decade: p.recording_decade,
                        release_decade: p.release_decade,
                    })
                    .collect(),
                units,
                availability,
                confidence,
                present: present.iter().map(|&b| b != 0).collect(),
                stock_end,
                arrivals,
            },
            model: header.model,
            training: header.training,
        })
    }
}

impl JobOutput {
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let header = OutputHeader {
            input_sha256: self.input_sha256.clone(),
            record: self.record.clone(),
            forecasts: self.forecasts.clone(),
        };
        let mut out = Container::new(OUTPUT_MAGIC);
        out.section("header", serde_json::to_vec(&header)?);
        out.section("weights", self.record.weights.clone());
        Ok(out.bytes)
    }

    /// Reads an output and checks it is whole: format, the weights against their digest.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let sections = open(bytes, OUTPUT_MAGIC)?;
        let raw: serde_json::Value = serde_json::from_slice(section(&sections, "header")?)
            .context("the job output's header")?;
        let header: OutputHeader =
            serde_json::from_value(raw.clone()).context("the job output's header")?;
        let mut record = header.record;
        // A switch the job's plastinka did not have was off there.
        record.model = crate::config::ModelConfig::from_stored(&raw["record"]["model"])
            .context("the job output's model settings")?;
        record.weights = section(&sections, "weights")?.to_vec();
        record.verify()?;
        Ok(Self {
            input_sha256: header.input_sha256,
            record,
            forecasts: header.forecasts,
        })
    }
}

fn floats(values: &[f64]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn read_floats(bytes: &[u8], count: usize) -> Result<Vec<f64>> {
    if Some(bytes.len()) != count.checked_mul(8) {
        bail!(
            "a job section holds {} bytes, {count} numbers need {}",
            bytes.len(),
            count.saturating_mul(8)
        );
    }
    Ok(bytes
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().unwrap_or_default()))
        .collect())
}

struct Container {
    bytes: Vec<u8>,
}

impl Container {
    fn new(magic: &str) -> Self {
        Self {
            bytes: format!("{magic} {FORMAT_VERSION}\n").into_bytes(),
        }
    }

    fn section(&mut self, name: &str, bytes: Vec<u8>) {
        self.bytes.push(name.len() as u8);
        self.bytes.extend_from_slice(name.as_bytes());
        self.bytes
            .extend_from_slice(&(bytes.len() as u64).to_le_bytes());
        self.bytes.extend_from_slice(&bytes);
    }
}

/// The sections of a container of `magic`; refuses another kind, another version, or a
/// truncated file.
fn open<'a>(bytes: &'a [u8], magic: &str) -> Result<Vec<(&'a str, &'a [u8])>> {
    let line_end = bytes
        .iter()
        .position(|&b| b == b'\n')
        .filter(|&n| n < 64)
        .context("not a plastinka job file")?;
    let first = std::str::from_utf8(&bytes[..line_end]).context("not a plastinka job file")?;
    let expected = format!("{magic} {FORMAT_VERSION}");
    // Output formats 1 and 2 differ from 3 only by fields read with defaults and model
    // switches read as off (`ModelConfig::from_stored`): a job started before an upgrade
    // is still collected.
    let older_output =
        magic == OUTPUT_MAGIC && (first == format!("{magic} 1") || first == format!("{magic} 2"));
    if first != expected && !older_output {
        bail!("«{first}» is not a {magic} this plastinka reads («{expected}»)");
    }
    let mut rest = &bytes[line_end + 1..];
    let mut sections = Vec::new();
    while let Some((&len, tail)) = rest.split_first() {
        let len = len as usize;
        let truncated = || anyhow::anyhow!("the {magic} is truncated");
        let name = tail.get(..len).ok_or_else(truncated)?;
        let size = tail.get(len..len + 8).ok_or_else(truncated)?;
        let size = usize::try_from(u64::from_le_bytes(size.try_into().unwrap_or_default()))
            .map_err(|_| truncated())?;
        // The size is read from the file: an absurd one must not overflow.
        let end = (len + 8).checked_add(size).ok_or_else(truncated)?;
        let body = tail.get(len + 8..end).ok_or_else(truncated)?;
        sections.push((std::str::from_utf8(name).context("a section name")?, body));
        rest = &tail[end..];
    }
    Ok(sections)
}

fn section<'a>(sections: &[(&str, &'a [u8])], name: &str) -> Result<&'a [u8]> {
    sections
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, b)| *b)
        .with_context(|| format!("the job file has no «{name}» section"))
}

/// The job's work: train on the input exactly as `plastinka train` would, and answer with
/// the model and its forecasts.
pub fn run(
    input: &JobInput,
    input_sha256: &str,
    progress: &mut (dyn FnMut(super::train::EpochReport) + Send),
) -> Result<JobOutput> {
    let trained = super::train::train(&input.history, &input.model, &input.training, progress)?;
    let record = ModelRecord::from_trained(
        format!("job-{}", &input_sha256[..12.min(input_sha256.len())]),
        &trained,
        &input.history,
        &input.model,
        &input.training,
    );
    Ok(JobOutput {
        input_sha256: input_sha256.to_string(),
        record,
        forecasts: trained.forecasts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forecast::train::tests::{tiny_config, tiny_history};

    #[test]
    fn input_and_output_round_trip_and_damage_is_refused() {
        let (model, training) = tiny_config();
        let training = TrainingConfig {
            max_epochs: 2,
            ..training
        };
        let input = JobInput {
            history: tiny_history(),
            model,
            training,
        };
        let bytes = input.to_bytes().unwrap();
        let back = JobInput::from_bytes(&bytes).unwrap();
        assert_eq!(back.history.units, input.history.units);
        assert_eq!(back.history.products, input.history.products);
        assert_eq!(back.to_bytes().unwrap(), bytes);
        let digest = crate::digest::sha256_hex(&bytes);
        let mut output = run(&back, &digest, &mut |_| {}).unwrap();
        // Set by hand, so the round trip below cannot pass on two empty values.
        output.record.whole_copies =
            Some(crate::forecast::whole_copies::WholeCopies { offset: 0.35 });
        let written = output.to_bytes().unwrap();
        let read = JobOutput::from_bytes(&written).unwrap();
        assert_eq!(read.forecasts, output.forecasts);
        assert_eq!(read.record.weights, output.record.weights);
        // What the run chose on its held-out month travels with it.
        assert_eq!(read.record.whole_copies, output.record.whole_copies);
        assert!(read.record.whole_copies.is_some());
        assert_eq!(read.record.blend, output.record.blend);
        assert_eq!(read.input_sha256, digest);
        // Truncated, or one weight byte changed: refused.
        assert!(JobOutput::from_bytes(&written[..written.len() - 10]).is_err());
        let mut flipped = written.clone();
        let at = flipped.len() - 100;
        flipped[at] ^= 0xFF;
        let err = JobOutput::from_bytes(&flipped).unwrap_err().to_string();
        assert!(err.contains("damaged"), "{err}");
        assert!(
            JobInput::from_bytes(&written).is_err(),
            "an output is not an input"
        );
        // A format-2 output, from a plastinka before the whole-copy and demand switches,
        // is still read, with those switches off.
        let mut header = serde_json::to_value(OutputHeader {
            input_sha256: digest.clone(),
            record: output.record.clone(),
            forecasts: output.forecasts.clone(),
        })
        .unwrap();
        let model = header["record"]["model"].as_object_mut().unwrap();
        model.remove("whole_copies");
        model.remove("demand_covariates");
        let mut older = Container {
            bytes: format!("{OUTPUT_MAGIC} 2\n").into_bytes(),
        };
        older.section("header", serde_json::to_vec(&header).unwrap());
        older.section("weights", output.record.weights.clone());
        let read = JobOutput::from_bytes(&older.bytes).unwrap();
        assert!(!read.record.model.whole_copies && !read.record.model.demand_covariates);
        assert!(read.record.model.shelf_covariate);
    }
}
