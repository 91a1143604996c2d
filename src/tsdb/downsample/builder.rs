//! Building one float aggregate chunk: an XOR encoder per present aggregate, and the chunk's
//! time range, which spans the window stamps only (a counter's first raw sample lies before
//! its first window and does not count, as in Thanos' `aggrChunkBuilder`).

use super::super::chunks::ENCODING_XOR;
use super::super::xor::{XorEncoder, SAMPLES_MAX};
use super::aggr::{encode_aggr_chunk, Aggr, AGGR_COUNT};
use super::DownsampleError;

/// A finished aggregate chunk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AggrOutput {
    /// The first window stamp.
    pub min_time: i64,
    /// The last window stamp.
    pub max_time: i64,
    /// Samples of its count aggregate: what Thanos counts as the chunk's samples.
    pub num_samples: u64,
    /// The chunk data (what follows the `0xFF` encoding byte).
    pub data: Vec<u8>,
}

/// An aggregate chunk under construction.
#[derive(Debug)]
pub struct AggrChunkBuilder {
    encoders: [Option<XorEncoder>; AGGR_COUNT],
    min_time: i64,
    max_time: i64,
}

impl AggrChunkBuilder {
    /// A builder with every aggregate present (raw data: all five are written).
    pub fn all_present() -> Self {
        let mut b = Self::none_present();
        for aggr in Aggr::ALL {
            b.start(aggr);
        }
        b
    }

    /// A builder with every aggregate absent until [`Self::start`]ed.
    pub fn none_present() -> Self {
        AggrChunkBuilder {
            encoders: Default::default(),
            min_time: i64::MAX,
            max_time: i64::MIN,
        }
    }

    /// Makes `aggr` present (empty so far).
    pub fn start(&mut self, aggr: Aggr) {
        self.encoders[aggr.index()] = Some(XorEncoder::new());
    }

    /// Appends a window value of `aggr` and widens the chunk's time range to `t`.
    pub fn append_window(&mut self, aggr: Aggr, t: i64, v: f64) -> Result<(), DownsampleError> {
        self.min_time = self.min_time.min(t);
        self.max_time = self.max_time.max(t);
        self.append(aggr, t, v)
    }

    /// Appends a sample of `aggr` without touching the time range (a counter's first and
    /// last raw values). `aggr` must have been started.
    pub fn append(&mut self, aggr: Aggr, t: i64, v: f64) -> Result<(), DownsampleError> {
        let enc = self.encoders[aggr.index()]
            .as_mut()
            .expect("callers start an aggregate before appending to it");
        if enc.num_samples() >= SAMPLES_MAX {
            return Err(DownsampleError::TooLarge(format!(
                "the {} aggregate of one output chunk would hold more than {SAMPLES_MAX} samples",
                aggr.name()
            )));
        }
        enc.append(t, v);
        Ok(())
    }

    /// Whether no window was appended.
    pub fn is_empty(&self) -> bool {
        self.min_time > self.max_time
    }

    /// Encodes the chunk. `None` when no window was appended: such a chunk has no time range.
    pub fn finish(self) -> Option<AggrOutput> {
        if self.is_empty() {
            return None;
        }
        let num_samples = self.encoders[Aggr::Count.index()]
            .as_ref()
            .map_or(0, |e| e.num_samples() as u64);
        let parts =
            std::array::from_fn(|i| self.encoders[i].as_ref().map(|e| (ENCODING_XOR, e.bytes())));
        let mut data = Vec::with_capacity(
            self.encoders
                .iter()
                .flatten()
                .map(|e| e.bytes().len() + 1 + 3)
                .sum::<usize>()
                + AGGR_COUNT,
        );
        encode_aggr_chunk(parts, &mut data);
        Some(AggrOutput {
            min_time: self.min_time,
            max_time: self.max_time,
            num_samples,
            data,
        })
    }
}
