//! Block identifiers: ULIDs (48-bit millisecond time + 80 random bits), written as 26
//! Crockford base32 characters. Ordering by value equals ordering by their text.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use ulid::Ulid;

/// The ULID naming a block directory.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BlockId(pub Ulid);

impl BlockId {
    /// Builds an id from a millisecond timestamp and random bits (the low 80 bits are used).
    /// Callers pass randomness explicitly so that id creation stays deterministic under test.
    pub fn from_parts(timestamp_ms: u64, random: u128) -> Self {
        BlockId(Ulid::from_parts(timestamp_ms, random))
    }

    /// The time part, in Unix milliseconds.
    pub fn timestamp_ms(&self) -> u64 {
        self.0.timestamp_ms()
    }

    /// True when `s` parses as a ULID (how Thanos recognises block directories).
    pub fn is_block_name(s: &str) -> bool {
        s.len() == ulid::ULID_LEN && s.parse::<BlockId>().is_ok()
    }
}

impl fmt::Display for BlockId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for BlockId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl FromStr for BlockId {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ulid::from_string(s)
            .map(BlockId)
            .map_err(|e| format!("invalid ULID {s:?}: {e}"))
    }
}

impl Serialize for BlockId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut buf = [0u8; ulid::ULID_LEN];
        s.serialize_str(self.0.array_to_str(&mut buf))
    }
}

impl<'de> Deserialize<'de> for BlockId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_text_and_orders_by_time() {
        let a = BlockId::from_parts(1_735_689_600_000, 7);
        let b = BlockId::from_parts(1_735_689_600_001, 0);
        assert!(a < b);
        assert!(a.to_string() < b.to_string());
        assert_eq!(a.to_string().parse::<BlockId>().unwrap(), a);
        assert!(BlockId::is_block_name(&a.to_string()));
        assert!(!BlockId::is_block_name("debug"));
        assert!(!BlockId::is_block_name("compactd"));
    }
}
