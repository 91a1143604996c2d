//! The trace of a simulated world: what it takes to run it again (seed, scenario, election,
//! bug) and
//! what it gave (event-log hash, violations). `compactd-sim run --trace-dir` writes one per
//! failing world; `compactd-sim replay` runs it again and compares the hash.

use std::path::{Path, PathBuf};

use compactd::core::leader::Provider;
use serde::{Deserialize, Serialize};

use crate::bug::Bug;
use crate::election;
use crate::scenario::Scenario;
use crate::world::Outcome;

/// The format tag of a simulation trace.
pub const FORMAT: &str = "compactd-sim-trace/1";

/// A recorded world.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SimTrace {
    /// [`FORMAT`].
    pub format: String,
    /// The compactd-sim version that recorded it.
    pub version: String,
    /// The seed.
    pub seed: u64,
    /// The scenario's name.
    pub scenario: String,
    /// The `--election` name when the bucket elects (absent: etcd, as in traces from
    /// before the option).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub election: Option<String>,
    /// The `--bug` name, if any.
    pub bug: Option<String>,
    /// The event-log hash, 16 hex digits.
    pub hash: String,
    /// Events logged.
    pub events: u64,
    /// Simulated milliseconds.
    pub sim_ms: i64,
    /// The violations found.
    pub violations: Vec<String>,
}

impl SimTrace {
    /// The trace of `o`.
    pub fn of(o: &Outcome) -> SimTrace {
        SimTrace {
            format: FORMAT.into(),
            version: env!("CARGO_PKG_VERSION").into(),
            seed: o.seed,
            scenario: o.scenario.name().into(),
            election: (o.election != Provider::Etcd).then(|| election::name(o.election).into()),
            bug: o.bug.map(|b| b.name().to_string()),
            hash: format!("{:016x}", o.hash),
            events: o.events,
            sim_ms: o.sim_ms,
            violations: o.violations.iter().map(|v| v.to_string()).collect(),
        }
    }

    /// Writes it as `<dir>/<scenario>-<seed>[-<election>][-<bug>].json` (the election when
    /// not etcd); returns the path.
    pub fn write(&self, dir: &Path) -> Result<PathBuf, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let on = self
            .election
            .as_ref()
            .map_or(String::new(), |e| format!("-{e}"));
        let bug = self.bug.as_ref().map_or(String::new(), |b| format!("-{b}"));
        let path = dir.join(format!("{}-{}{on}{bug}.json", self.scenario, self.seed));
        let json = serde_json::to_string_pretty(self).expect("serializable");
        std::fs::write(&path, json + "\n").map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(path)
    }

    /// Reads a trace, with errors naming the file.
    pub fn read(path: &Path) -> Result<SimTrace, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let t: SimTrace = serde_json::from_str(&text)
            .map_err(|e| format!("{}: not a simulation trace: {e}", path.display()))?;
        if t.format != FORMAT {
            return Err(format!(
                "{}: format {:?}, expected {FORMAT:?}",
                path.display(),
                t.format
            ));
        }
        Ok(t)
    }

    /// The scenario, election and bug it names.
    pub fn world(&self) -> Result<(Scenario, Provider, Option<Bug>), String> {
        let scenario = Scenario::parse(&self.scenario)?;
        let election = match &self.election {
            Some(name) => election::parse(name)?,
            None => Provider::Etcd,
        };
        let bug = self.bug.as_deref().map(str::parse).transpose()?;
        Ok((scenario, election, bug))
    }
}
