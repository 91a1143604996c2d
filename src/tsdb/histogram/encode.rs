//! Encoding a series' samples, in time order, into finished chunks: Prometheus'
//! `seriesToChunkEncoder`, which compaction uses to re-encode merged samples.
//!
//! A new chunk is cut when the sample type changes (float, histogram, float histogram), after
//! [`SAMPLES_PER_CHUNK`] samples, and whenever the histogram appender starts one (a counter
//! reset, a layout it cannot widen, a gauge/counter switch, a sample after a staleness
//! marker). A chunk recoded to a wider layout stays the current chunk and keeps counting.
//!
//! [`CutHeaders`] says what header a chunk cut at the sample limit gets: compaction passes no
//! previous appender, so it is unknown; Prometheus' head derives it from the previous chunk
//! (not reset, reset, or unknown after a layout change), which the block generator imitates.

use super::error::HistogramError;
use super::float_chunk::FloatChunk;
use super::int_chunk::{Appended, IntChunk};
use super::model::{
    is_known_schema, FloatHistogram, Histogram, SampleValue, CUSTOM_BUCKETS_SCHEMA,
};
use super::FinishedChunk;
use crate::tsdb::chunks::ENCODING_XOR;
use crate::tsdb::xor::XorEncoder;

/// Samples per chunk before a cut (`seriesToChunkEncoderSplit`).
pub const SAMPLES_PER_CHUNK: usize = 120;

/// The counter-reset header of a chunk cut because the previous one was full.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CutHeaders {
    /// Unknown, as compaction writes it (`seriesToChunkEncoder` passes no previous appender).
    #[default]
    Compaction,
    /// Derived from the previous chunk, as Prometheus' head writes it.
    Head,
}

/// The chunk being filled.
#[derive(Debug)]
enum Open {
    Float(XorEncoder),
    Histogram(IntChunk),
    FloatHistogram(FloatChunk),
}

impl Open {
    fn finish(&self) -> Option<FinishedChunk> {
        match self {
            Open::Float(enc) => enc.time_range().map(|(min_time, max_time)| FinishedChunk {
                min_time,
                max_time,
                encoding: ENCODING_XOR,
                data: enc.bytes().to_vec(),
            }),
            Open::Histogram(c) => c.finish(),
            Open::FloatHistogram(c) => c.finish(),
        }
    }
}

/// Turns one series' samples, given in time order, into chunks.
#[derive(Debug, Default)]
pub struct SeriesEncoder {
    cut_headers: CutHeaders,
    open: Option<Open>,
    /// Samples counted toward [`SAMPLES_PER_CHUNK`] in the open chunk.
    in_chunk: usize,
    done: Vec<FinishedChunk>,
}

impl SeriesEncoder {
    /// An encoder giving chunks cut at the sample limit the headers of `cut_headers`.
    pub fn new(cut_headers: CutHeaders) -> Self {
        SeriesEncoder {
            cut_headers,
            ..SeriesEncoder::default()
        }
    }

    /// Appends a sample of any type.
    pub fn append(&mut self, t: i64, value: &SampleValue) -> Result<(), HistogramError> {
        match value {
            SampleValue::Float(v) => {
                self.append_float(t, *v);
                Ok(())
            }
            SampleValue::Histogram(h) => self.append_histogram(t, h),
            SampleValue::FloatHistogram(h) => self.append_float_histogram(t, h),
        }
    }

    /// Appends a float sample (XOR chunks).
    pub fn append_float(&mut self, t: i64, v: f64) {
        if !matches!(self.open, Some(Open::Float(_))) || self.in_chunk >= SAMPLES_PER_CHUNK {
            self.close();
            self.open = Some(Open::Float(XorEncoder::new()));
        }
        if let Some(Open::Float(enc)) = &mut self.open {
            enc.append(t, v);
        }
        self.in_chunk += 1;
    }

    /// Appends an integer histogram; refuses one whose buckets do not match its spans.
    pub fn append_histogram(&mut self, t: i64, h: &Histogram) -> Result<(), HistogramError> {
        check(t, h.schema, &h.custom_values, h.check_layout())?;
        match self.open.take() {
            Some(Open::Histogram(mut chunk)) if self.in_chunk < SAMPLES_PER_CHUNK => {
                if let Appended::NewChunk(next) = chunk.append(None, t, h) {
                    self.done.extend(chunk.finish());
                    chunk = next;
                    self.in_chunk = 0;
                }
                self.open = Some(Open::Histogram(chunk));
            }
            other => {
                let prev = match self.finish_open(other) {
                    Some(Open::Histogram(c)) if self.cut_headers == CutHeaders::Head => Some(c),
                    _ => None,
                };
                let mut chunk = IntChunk::new();
                chunk.append(prev.as_ref(), t, h);
                self.open = Some(Open::Histogram(chunk));
            }
        }
        self.in_chunk += 1;
        Ok(())
    }

    /// Appends a float histogram; refuses one whose buckets do not match its spans.
    pub fn append_float_histogram(
        &mut self,
        t: i64,
        h: &FloatHistogram,
    ) -> Result<(), HistogramError> {
        check(t, h.schema, &h.custom_values, h.check_layout())?;
        match self.open.take() {
            Some(Open::FloatHistogram(mut chunk)) if self.in_chunk < SAMPLES_PER_CHUNK => {
                if let Appended::NewChunk(next) = chunk.append(None, t, h) {
                    self.done.extend(chunk.finish());
                    chunk = next;
                    self.in_chunk = 0;
                }
                self.open = Some(Open::FloatHistogram(chunk));
            }
            other => {
                let prev = match self.finish_open(other) {
                    Some(Open::FloatHistogram(c)) if self.cut_headers == CutHeaders::Head => {
                        Some(c)
                    }
                    _ => None,
                };
                let mut chunk = FloatChunk::new();
                chunk.append(prev.as_ref(), t, h);
                self.open = Some(Open::FloatHistogram(chunk));
            }
        }
        self.in_chunk += 1;
        Ok(())
    }

    /// Finishes `open` (taken out of `self.open`) and returns it, for its header.
    fn finish_open(&mut self, open: Option<Open>) -> Option<Open> {
        if let Some(o) = &open {
            self.done.extend(o.finish());
        }
        self.in_chunk = 0;
        open
    }

    fn close(&mut self) {
        let open = self.open.take();
        self.finish_open(open);
    }

    /// Chunks finished so far (the open one excluded).
    pub fn finished(&self) -> &[FinishedChunk] {
        &self.done
    }

    /// All chunks, the open one last.
    pub fn finish(mut self) -> Vec<FinishedChunk> {
        self.close();
        self.done
    }
}

/// The encoder's checks of a histogram: what the chunk cannot store or the decoder would
/// refuse.
fn check(
    t: i64,
    schema: i32,
    custom_values: &[f64],
    layout: Result<(), String>,
) -> Result<(), HistogramError> {
    let invalid = |what: String| HistogramError::Invalid { t, what };
    layout.map_err(invalid)?;
    if !is_known_schema(schema) {
        return Err(invalid(format!("unknown schema {schema}")));
    }
    if schema != CUSTOM_BUCKETS_SCHEMA && !custom_values.is_empty() {
        return Err(invalid(format!(
            "custom bucket bounds with exponential schema {schema}"
        )));
    }
    Ok(())
}
