//! The world's event log: one line per thing that happened (a core output, a message
//! dropped, a fault, a write), hashed as it grows. Same seed, same lines, same hash; the
//! lines themselves are kept only when asked for (`replay --verbose`).

use compactd::units::{HOUR_MS, MINUTE_MS, SECOND_MS};
use xxhash_rust::xxh64::Xxh64;

/// The event log of one world.
pub struct EventLog {
    hasher: Xxh64,
    events: u64,
    lines: Option<Vec<String>>,
}

impl EventLog {
    /// An empty log; `keep` keeps the lines.
    pub fn new(keep: bool) -> EventLog {
        EventLog {
            hasher: Xxh64::new(0),
            events: 0,
            lines: keep.then(Vec::new),
        }
    }

    /// Appends the event `what` of `who` at world time `at_ms`.
    pub fn push(&mut self, at_ms: i64, who: &str, what: &str) {
        self.events += 1;
        self.hasher.update(&at_ms.to_le_bytes());
        self.hasher.update(who.as_bytes());
        self.hasher.update(&[0]);
        self.hasher.update(what.as_bytes());
        self.hasher.update(&[0]);
        if let Some(lines) = &mut self.lines {
            lines.push(format!("{} {who:<8} {what}", format_ms(at_ms)));
        }
    }

    /// The hash of every event so far.
    pub fn hash(&self) -> u64 {
        self.hasher.digest()
    }

    /// How many events were logged.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// The lines, when kept.
    pub fn lines(&self) -> &[String] {
        self.lines.as_deref().unwrap_or_default()
    }
}

/// World milliseconds as `mm:ss.mmm` (hours prefixed when reached).
pub fn format_ms(ms: i64) -> String {
    let (h, m, s, milli) = (
        ms / HOUR_MS,
        ms / MINUTE_MS % 60,
        ms / SECOND_MS % 60,
        ms % SECOND_MS,
    );
    if h > 0 {
        format!("{h}:{m:02}:{s:02}.{milli:03}")
    } else {
        format!("{m:02}:{s:02}.{milli:03}")
    }
}
