//! `compactd tools generate`: realistic sample blocks, reproducible from a seed.
//!
//! Series look like what a Prometheus scraping node exporters and an HTTP service holds:
//! counters (request counts by method/code/handler, CPU seconds by cpu/mode, classic
//! histogram buckets, network bytes) with occasional resets, gauges (memory, goroutines, load)
//! and `up`. Every instance carries the same families, so `--series` grows the instance count
//! and the cardinality of `instance` while the other labels keep theirs. Scrapes happen every
//! `--scrape-interval` at a per-instance offset, with a few milliseconds of jitter now and then,
//! as real scrapes do. Blocks are cut on `--block-duration` boundaries aligned to the Unix
//! epoch; with external labels each block also gets a Thanos section (`source: sidecar`).
//! With `--histograms` ([`GenerateExtras`]), every instance also gets native histogram series
//! (module `histograms`); the float series stay exactly as without it.

mod histograms;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use crate::rng::Rng;
use crate::tsdb::block_id::BlockId;
use crate::tsdb::block_writer::BlockWriter;
use crate::tsdb::chunks::DEFAULT_SEGMENT_SIZE;
use crate::tsdb::histogram::{CutHeaders, SampleValue};
use crate::tsdb::labels::Labels;
use crate::tsdb::meta::{BlockMeta, ThanosMeta};
use crate::tsdb::tombstones::Tombstones;
use crate::tsdb::{Result, TsdbError};
use crate::units::HOUR_MS;

/// What to generate.
#[derive(Clone, Debug)]
pub struct GenerateOptions {
    /// Directory the blocks are written into.
    pub out: PathBuf,
    /// Number of series.
    pub series: usize,
    /// Time span in hours.
    pub hours: f64,
    /// Block length in ms; blocks are aligned to multiples of it.
    pub block_duration_ms: i64,
    /// First scrape, Unix ms.
    pub start_ms: i64,
    /// Scrape interval in ms.
    pub scrape_interval_ms: i64,
    /// External labels; when set, blocks carry a Thanos section with them.
    pub external_labels: BTreeMap<String, String>,
    /// Seed of every random choice.
    pub seed: u64,
}

/// What to generate beyond [`GenerateOptions`] (kept apart so that its users need not change).
#[derive(Clone, Debug, Default)]
pub struct GenerateExtras {
    /// Add native histogram series (`--histograms`, module `histograms`).
    pub histograms: bool,
}

/// Seed constant mixed into block ids when histograms are generated, so that blocks with and
/// without them never share an id.
const HISTOGRAM_ID_SALT: u64 = 0x6869_7374;

#[derive(Clone, Copy)]
enum Kind {
    Counter { rate_max: f64, integer: bool },
    Gauge { mean: f64, spread: f64 },
    Up,
}

struct Family {
    name: &'static str,
    kind: Kind,
    dims: &'static [(&'static str, &'static [&'static str])],
}

const HANDLERS: &[&str] = &["/api/v1/query", "/api/v1/series", "/metrics"];

const FAMILIES: &[Family] = &[
    Family {
        name: "http_requests_total",
        kind: Kind::Counter {
            rate_max: 40.0,
            integer: true,
        },
        dims: &[
            ("code", &["200", "404", "500"]),
            ("handler", HANDLERS),
            ("method", &["GET", "POST"]),
        ],
    },
    Family {
        name: "http_request_duration_seconds_bucket",
        kind: Kind::Counter {
            rate_max: 30.0,
            integer: true,
        },
        dims: &[
            ("handler", HANDLERS),
            ("le", &["0.005", "0.05", "0.5", "5", "+Inf"]),
        ],
    },
    Family {
        name: "node_cpu_seconds_total",
        kind: Kind::Counter {
            rate_max: 15.0,
            integer: false,
        },
        dims: &[
            ("cpu", &["0", "1", "2", "3"]),
            ("mode", &["idle", "iowait", "system", "user"]),
        ],
    },
    Family {
        name: "node_network_receive_bytes_total",
        kind: Kind::Counter {
            rate_max: 2.0e6,
            integer: true,
        },
        dims: &[("device", &["eth0", "lo"])],
    },
    Family {
        name: "process_resident_memory_bytes",
        kind: Kind::Gauge {
            mean: 2.0e8,
            spread: 4.0e6,
        },
        dims: &[],
    },
    Family {
        name: "go_goroutines",
        kind: Kind::Gauge {
            mean: 120.0,
            spread: 3.0,
        },
        dims: &[],
    },
    Family {
        name: "node_load1",
        kind: Kind::Gauge {
            mean: 1.5,
            spread: 0.1,
        },
        dims: &[],
    },
    Family {
        name: "up",
        kind: Kind::Up,
        dims: &[],
    },
];

const JOBS: &[&str] = &["api", "db", "node"];
/// Probability that a counter resets at a scrape (a restarted process).
const COUNTER_RESET_PROBABILITY: f64 = 1.0 / 3000.0;

struct SeriesState {
    labels: Labels,
    kind: Kind,
    offset_ms: i64,
    value: f64,
    rate: f64,
    rng: Rng,
}

/// A block written by [`generate`].
#[derive(Debug, Clone)]
pub struct GeneratedBlock {
    /// Its directory.
    pub dir: PathBuf,
    /// Its meta.
    pub meta: BlockMeta,
}

/// Writes the sample blocks; returns them in time order.
pub fn generate(opts: &GenerateOptions) -> Result<Vec<GeneratedBlock>> {
    generate_with(opts, &GenerateExtras::default())
}

/// [`generate`] with the series of `extras` added.
pub fn generate_with(
    opts: &GenerateOptions,
    extras: &GenerateExtras,
) -> Result<Vec<GeneratedBlock>> {
    validate(opts)?;
    let mut series = build_series(opts);
    series.sort_by(|a, b| a.labels.cmp(&b.labels));
    let mut hist = if extras.histograms {
        histograms::build(&instances(&series), opts.seed, opts.scrape_interval_ms)
    } else {
        Vec::new()
    };
    hist.sort_by(|a, b| a.labels.cmp(&b.labels));
    let labels = series.iter().map(|s| &s.labels);
    let symbols: BTreeSet<&str> = labels
        .chain(hist.iter().map(|h| &h.labels))
        .flat_map(|l| l.iter().flat_map(|l| [l.name.as_str(), l.value.as_str()]))
        .collect();
    let symbols: Vec<String> = symbols.into_iter().map(str::to_string).collect();
    let end_ms = opts.start_ms + (opts.hours * HOUR_MS as f64) as i64;
    let bd = opts.block_duration_ms;
    // Block ids depend on every option that changes the data, so two different generations
    // into one directory never collide, and the same generation is reproducible.
    let salt = if extras.histograms {
        HISTOGRAM_ID_SALT
    } else {
        0
    };
    let mut ids = Rng::new(
        opts.seed
            ^ 0x5eed_b10c
            ^ salt
            ^ (opts.start_ms as u64).rotate_left(17)
            ^ (opts.series as u64).rotate_left(41)
            ^ (opts.scrape_interval_ms as u64).rotate_left(7),
    );
    let mut out = Vec::new();
    let mut window = opts.start_ms.div_euclid(bd) * bd;
    while window < end_ms {
        let id = BlockId::from_parts((window + bd).max(0) as u64, ids.ulid_bits());
        let mut all = AllSeries {
            floats: &mut series,
            histograms: &mut hist,
        };
        let block = write_block(opts, id, &symbols, &mut all, window, end_ms)?;
        out.extend(block);
        window += bd;
    }
    Ok(out)
}

/// The `(instance, job)` pairs of `series`, sorted.
fn instances(series: &[SeriesState]) -> Vec<(String, String)> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for s in series {
        let (Some(instance), Some(job)) = (s.labels.get("instance"), s.labels.get("job")) else {
            continue;
        };
        if seen.insert(instance.to_string()) {
            out.push((instance.to_string(), job.to_string()));
        }
    }
    out.sort();
    out
}

/// The float and histogram series of a generation, each sorted by labels.
struct AllSeries<'a> {
    floats: &'a mut [SeriesState],
    histograms: &'a mut [histograms::HistogramSeries],
}

fn validate(opts: &GenerateOptions) -> Result<()> {
    let bad = |what: &str| Err(TsdbError::Unsupported(format!("generate: {what}")));
    if opts.series == 0 {
        return bad("--series must be at least 1");
    }
    if opts.hours.is_nan() || opts.hours <= 0.0 {
        return bad("--hours must be positive");
    }
    if opts.block_duration_ms <= 0 || opts.scrape_interval_ms <= 0 {
        return bad("--block-duration and --scrape-interval must be positive");
    }
    if opts.external_labels.values().any(String::is_empty) {
        return bad("--external-labels values must not be empty");
    }
    Ok(())
}

fn build_series(opts: &GenerateOptions) -> Vec<SeriesState> {
    let mut out = Vec::with_capacity(opts.series);
    let mut instance = 0usize;
    let mut seeds = Rng::new(opts.seed);
    'outer: loop {
        let host = format!("host-{instance:05}:9100");
        let job = JOBS[instance % JOBS.len()];
        let offset_ms = seeds.below(opts.scrape_interval_ms as u64) as i64;
        for fam in FAMILIES {
            let combos: usize = fam.dims.iter().map(|(_, v)| v.len()).product();
            for combo in 0..combos {
                let mut pairs = vec![
                    ("__name__", fam.name.to_string()),
                    ("instance", host.clone()),
                    ("job", job.to_string()),
                ];
                let mut rest = combo;
                for (name, values) in fam.dims {
                    pairs.push((name, values[rest % values.len()].to_string()));
                    rest /= values.len();
                }
                let mut rng = Rng::new(seeds.next_u64());
                let (value, rate) = initial_value(fam.kind, &mut rng);
                out.push(SeriesState {
                    labels: Labels::from_pairs(pairs),
                    kind: fam.kind,
                    offset_ms,
                    value,
                    rate,
                    rng,
                });
                if out.len() == opts.series {
                    break 'outer;
                }
            }
        }
        instance += 1;
    }
    out
}

fn initial_value(kind: Kind, rng: &mut Rng) -> (f64, f64) {
    match kind {
        Kind::Counter { rate_max, integer } => {
            let start = rng.next_f64() * rate_max * 1000.0;
            (
                if integer { start.floor() } else { start },
                rng.next_f64() * rate_max,
            )
        }
        Kind::Gauge { mean, spread } => (mean + spread * rng.normal(), 0.0),
        Kind::Up => (1.0, 0.0),
    }
}

fn next_value(s: &mut SeriesState, interval_s: f64) -> f64 {
    let rng = &mut s.rng;
    s.value = match s.kind {
        Kind::Counter { integer, .. } => {
            if rng.chance(COUNTER_RESET_PROBABILITY) {
                0.0
            } else {
                let inc = s.rate * interval_s * (0.5 + rng.next_f64());
                s.value
                    + if integer {
                        inc.round()
                    } else {
                        (inc * 100.0).round() / 100.0
                    }
            }
        }
        Kind::Gauge { mean, spread } => {
            let v = s.value + (mean - s.value) * 0.05 + spread * 0.3 * rng.normal();
            if mean > 1e6 {
                (v / 4096.0).round() * 4096.0
            } else if mean > 10.0 {
                v.round()
            } else {
                (v * 100.0).round() / 100.0
            }
        }
        Kind::Up => {
            if rng.chance(0.002) {
                0.0
            } else {
                1.0
            }
        }
    };
    s.value
}

/// Writes one block covering `[window, window + block duration)`; `None` if it has no samples.
fn write_block(
    opts: &GenerateOptions,
    id: BlockId,
    symbols: &[String],
    all: &mut AllSeries<'_>,
    window: i64,
    end_ms: i64,
) -> Result<Option<GeneratedBlock>> {
    let window_end = window + opts.block_duration_ms;
    let mut w = BlockWriter::create(
        &opts.out,
        id,
        symbols.iter().map(String::as_str),
        DEFAULT_SEGMENT_SIZE,
    )?;
    let mut samples = Vec::new();
    let mut hist_samples = Vec::new();
    let mut any = false;
    // Both lists are sorted; the index wants all series in label order.
    let (mut f, mut h) = (0, 0);
    while f < all.floats.len() || h < all.histograms.len() {
        let float_first = match (all.floats.get(f), all.histograms.get(h)) {
            (Some(x), Some(y)) => x.labels < y.labels,
            (x, _) => x.is_some(),
        };
        if float_first {
            let s = &mut all.floats[f];
            float_samples(opts, s, window, end_ms, &mut samples);
            any |= !samples.is_empty();
            w.add_float_series(&s.labels, &samples)?;
            f += 1;
        } else {
            let s = &mut all.histograms[h];
            histogram_samples(opts, s, window, end_ms, &mut hist_samples);
            any |= !hist_samples.is_empty();
            w.add_histogram_series(&s.labels, &hist_samples, CutHeaders::Head)?;
            h += 1;
        }
    }
    if !any {
        return Ok(None);
    }
    let meta = block_meta(opts, id, window, window_end);
    let (dir, meta) = w.finish(meta, &Tombstones::default())?;
    Ok(Some(GeneratedBlock { dir, meta }))
}

/// The scrape times of a series scraped at `offset_ms` that fall into the block at `window`:
/// `(first scrape index, block end)`.
fn first_scrape(opts: &GenerateOptions, offset_ms: i64, window: i64) -> (i64, i64) {
    let base = opts.start_ms + offset_ms;
    let step = opts.scrape_interval_ms;
    let k = if window > base {
        (window - base + step - 1) / step
    } else {
        0
    };
    (k, window + opts.block_duration_ms)
}

/// The float samples of `s` in the block at `window` (into `samples`).
fn float_samples(
    opts: &GenerateOptions,
    s: &mut SeriesState,
    window: i64,
    end_ms: i64,
    samples: &mut Vec<(i64, f64)>,
) {
    samples.clear();
    let step = opts.scrape_interval_ms;
    let jitter = step >= 1000;
    let base = opts.start_ms + s.offset_ms;
    let (mut k, window_end) = first_scrape(opts, s.offset_ms, window);
    loop {
        let mut t = base + k * step;
        if t >= window_end || t >= end_ms {
            break;
        }
        if jitter && s.rng.chance(0.1) {
            t += s.rng.below(5) as i64 - 2;
        }
        let v = next_value(s, step as f64 / 1000.0);
        samples.push((t.clamp(window, window_end - 1), v));
        k += 1;
    }
    samples.dedup_by_key(|x| x.0);
}

/// The histogram samples of `s` in the block at `window` (into `samples`), scraped as the
/// float series are.
fn histogram_samples(
    opts: &GenerateOptions,
    s: &mut histograms::HistogramSeries,
    window: i64,
    end_ms: i64,
    samples: &mut Vec<(i64, SampleValue)>,
) {
    samples.clear();
    let step = opts.scrape_interval_ms;
    let base = opts.start_ms + s.offset_ms;
    let (mut k, window_end) = first_scrape(opts, s.offset_ms, window);
    loop {
        let t = base + k * step;
        if t >= window_end || t >= end_ms {
            break;
        }
        let jitter = s.jitter_ms(step);
        samples.push((
            (t + jitter).clamp(window, window_end - 1),
            s.next_value(step as f64 / 1000.0),
        ));
        k += 1;
    }
    samples.dedup_by_key(|x| x.0);
}

fn block_meta(opts: &GenerateOptions, id: BlockId, min_time: i64, max_time: i64) -> BlockMeta {
    BlockMeta {
        thanos: (!opts.external_labels.is_empty()).then(|| ThanosMeta {
            labels: opts.external_labels.clone(),
            source: "sidecar".into(),
            ..ThanosMeta::default()
        }),
        ..BlockMeta::level1(id, min_time, max_time)
    }
}

/// Parses `k=v,k2=v2` into external labels.
pub fn parse_external_labels(s: &str) -> std::result::Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, v) = part
            .split_once('=')
            .ok_or_else(|| format!("external label {part:?} is not of the form name=value"))?;
        if k.is_empty()
            || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            || k.starts_with(|c: char| c.is_ascii_digit())
        {
            return Err(format!(
                "external label name {k:?} is not a valid label name"
            ));
        }
        if out.insert(k.to_string(), v.to_string()).is_some() {
            return Err(format!("external label {k:?} given twice"));
        }
    }
    Ok(out)
}
