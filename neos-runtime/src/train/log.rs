//! The run log: the settings of a run and one record per step. On disk the records are the
//! lines of `steps.jsonl` and the rest is `run.json` (see [`super::journal`]).
//!
//! A step's record is one flat JSON object, `{"step": 3, "loss": …, "cls": …, "edges": […],
//! "seconds": …, "eval_seconds": …}`, with a field per metric (a number) and per report vector
//! (an array), in the analysis's order, so that the log reads like the Python neos's per-step
//! dictionaries and plots can pick series by name.

use std::fmt;

use serde::de::{self, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::trainer::TrainConfig;

/// The record of one training step.
#[derive(Clone, Debug, PartialEq)]
pub struct StepRecord {
    /// Updates applied so far, counting this step's (the first step is 1).
    pub step: usize,
    /// The objective on this step's batch, at the parameters before the update.
    pub loss: f64,
    /// The metrics on the test set at the parameters after the update, by name.
    pub metrics: Vec<(String, f64)>,
    /// The analysis's report vectors at the parameters after the update, by name.
    pub report: Vec<(String, Vec<f64>)>,
    /// Wall time of the training part: the batch, the loss and gradient, and the update.
    pub seconds: f64,
    /// Wall time of the metrics on the test set.
    pub eval_seconds: f64,
}

/// Field names of a record that metrics and report vectors may not take.
pub const RESERVED_FIELDS: [&str; 4] = ["step", "loss", "seconds", "eval_seconds"];

impl StepRecord {
    /// The value of a metric by name, or of the loss for "loss".
    pub fn value(&self, name: &str) -> Option<f64> {
        if name == "loss" {
            return Some(self.loss);
        }
        self.metrics.iter().find(|(n, _)| n == name).map(|(_, v)| *v)
    }
}

impl Serialize for StepRecord {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(4 + self.metrics.len() + self.report.len()))?;
        map.serialize_entry("step", &self.step)?;
        map.serialize_entry("loss", &self.loss)?;
        for (name, value) in &self.metrics {
            map.serialize_entry(name, value)?;
        }
        for (name, values) in &self.report {
            map.serialize_entry(name, values)?;
        }
        map.serialize_entry("seconds", &self.seconds)?;
        map.serialize_entry("eval_seconds", &self.eval_seconds)?;
        map.end()
    }
}

/// A field of a record other than the fixed ones: a metric or a report vector.
#[derive(Deserialize)]
#[serde(untagged)]
enum Field {
    Metric(f64),
    Report(Vec<f64>),
}

impl<'de> Deserialize<'de> for StepRecord {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct RecordVisitor;
        impl<'de> Visitor<'de> for RecordVisitor {
            type Value = StepRecord;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a step record with step, loss, seconds, eval_seconds and metric or report fields")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<StepRecord, A::Error> {
                let (mut step, mut loss, mut seconds, mut eval_seconds) = (None, None, None, None);
                let mut metrics = Vec::new();
                let mut report = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "step" => step = Some(map.next_value()?),
                        "loss" => loss = Some(map.next_value()?),
                        "seconds" => seconds = Some(map.next_value()?),
                        "eval_seconds" => eval_seconds = Some(map.next_value()?),
                        _ => match map.next_value::<Field>()? {
                            Field::Metric(v) => metrics.push((key, v)),
                            Field::Report(v) => report.push((key, v)),
                        },
                    }
                }
                Ok(StepRecord {
                    step: step.ok_or_else(|| de::Error::missing_field("step"))?,
                    loss: loss.ok_or_else(|| de::Error::missing_field("loss"))?,
                    metrics,
                    report,
                    seconds: seconds.ok_or_else(|| de::Error::missing_field("seconds"))?,
                    eval_seconds: eval_seconds.ok_or_else(|| de::Error::missing_field("eval_seconds"))?,
                })
            }
        }
        deserializer.deserialize_map(RecordVisitor)
    }
}

/// One sample as the run saw it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SampleInfo {
    pub name: String,
    pub features: usize,
    pub train_events: usize,
    /// Events of this sample's test set, all of which the metrics use.
    pub test_events: usize,
}

/// What a run was asked to do and what it ran on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunSettings {
    pub config: TrainConfig,
    pub param_count: usize,
    pub samples: Vec<SampleInfo>,
    pub metric_names: Vec<String>,
    pub batches_per_epoch: usize,
}

/// The step with the best value of the configuration's selection metric (smaller is better).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Best {
    pub step: usize,
    pub metric: String,
    pub value: f64,
}

/// How a run ended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Still going: written at a checkpoint.
    Running,
    /// All the configured steps ran.
    Completed,
    /// A step failed; the message says which and why.
    Failed(String),
}

/// Everything a run reports: settings, per-step records, the best step, and the final and
/// best parameters.
///
/// In an output folder, `run.json` holds the settings, status and best step, `steps.jsonl`
/// the records, and the checkpoint the parameters (a network has millions of them).
#[derive(Clone, Debug, PartialEq)]
pub struct RunLog {
    pub settings: RunSettings,
    pub status: RunStatus,
    pub best: Option<Best>,
    pub records: Vec<StepRecord>,
    /// The parameters after the last step.
    pub params: Vec<f64>,
    /// The parameters after the best step (the initial ones before any step).
    pub best_params: Vec<f64>,
}

impl RunLog {
    /// The steps and the values of one series, "loss" or a metric name; `None` for an unknown name.
    pub fn series(&self, name: &str) -> Option<Vec<(usize, f64)>> {
        if !self.series_names().iter().any(|n| n == name) {
            return None;
        }
        self.records.iter().map(|r| r.value(name).map(|v| (r.step, v))).collect()
    }

    /// The names of the series a plot of this run can show: the loss, then every metric.
    pub fn series_names(&self) -> Vec<String> {
        std::iter::once("loss".to_string()).chain(self.settings.metric_names.iter().cloned()).collect()
    }
}
