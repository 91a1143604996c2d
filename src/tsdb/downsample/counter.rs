//! Reading counter aggregates across chunks (Thanos' `ApplyCounterResetsSeriesIterator`).
//!
//! A counter aggregate chunk holds, in order: the first raw value of the stretch it covers (at
//! that raw sample's timestamp), one value per window (the counter since that first value,
//! resets applied), and the stretch's last raw value again at the last window's timestamp. The
//! repeated timestamp marks that last sample: it is not a window, it tells the reader what
//! the raw series really ended with.
//!
//! Read over consecutive chunks, that gives a monotonic series whatever the resets inside or
//! between chunks: within a chunk the window values already include resets; between chunks
//! the next chunk's first raw value is compared with the previous chunk's true last raw value,
//! so a reset at the boundary is seen. The reader emits `(t, total)` for every sample whose
//! timestamp moves forward; a sample at the same timestamp only updates the last raw value;
//! an earlier one is skipped; NaNs are skipped.

use super::batch::Sample;

/// The state of the reader over a sequence of counter aggregate samples.
#[derive(Clone, Debug, Default)]
pub struct CounterResets {
    emitted: u64,
    last_t: i64,
    last_v: f64,
    total: f64,
}

impl CounterResets {
    /// Feeds the next counter aggregate sample; returns the sample to emit, if any.
    pub fn push(&mut self, t: i64, v: f64) -> Option<Sample> {
        if v.is_nan() {
            return None;
        }
        if self.emitted == 0 {
            self.emitted = 1;
            (self.last_t, self.last_v, self.total) = (t, v, v);
            return Some(Sample { t, v });
        }
        if t > self.last_t {
            if v >= self.last_v {
                self.total += v - self.last_v;
            } else {
                // A reset: the counter restarted from 0 and has reached v since.
                self.total += v;
            }
            (self.last_t, self.last_v) = (t, v);
            self.emitted += 1;
            return Some(Sample { t, v: self.total });
        }
        if t == self.last_t {
            // The chunk's true last raw value.
            self.last_v = v;
        }
        None
    }

    /// The last raw value seen: after a whole chunk sequence, the last chunk's true last raw
    /// value.
    pub fn last_value(&self) -> f64 {
        self.last_v
    }
}
