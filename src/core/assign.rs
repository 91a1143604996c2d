//! Which member writes which stream: every stream goes to one member, the members' counts
//! differ by at most one, and a member joining or leaving moves few streams (issue 17).
//!
//! Rendezvous (highest-random-weight) hashing with bounded loads: each (stream, member) pair
//! has a fixed [`score`]; pairs are taken best first, and a stream goes to the first member
//! whose pair comes up while the member still has room. Room is the balance bound: with `S`
//! streams and `N` members, `⌊S/N⌋` each, and `S mod N` of them one more, whichever reach it
//! first. Without the bound this is plain rendezvous hashing (a change moves only the streams
//! of the member that left or to the member that joined, but counts are uneven); the bound
//! moves a few more, measured in `assign/tests.rs`.
//!
//! Pure and deterministic: ordered sets in, an ordered map out, no hash-map order; the
//! score is xxh64 over fixed bytes, the same on every platform and in every version (a test
//! pins a value), so replicas running different builds agree on the assignment.

use std::collections::{BTreeMap, BTreeSet};

use xxhash_rust::xxh64::xxh64;

use super::stream::StreamId;

/// The rendezvous weight of `member` for `stream`: xxh64 (seed 0) over the stream id's 8
/// big-endian bytes followed by the member name's UTF-8 bytes (the id's fixed width keeps the
/// concatenation unambiguous). Never change it: replicas of different versions must agree.
pub fn score(stream: StreamId, member: &str) -> u64 {
    let mut bytes = Vec::with_capacity(8 + member.len());
    bytes.extend_from_slice(&stream.0.to_be_bytes());
    bytes.extend_from_slice(member.as_bytes());
    xxh64(&bytes, 0)
}

/// Maps every stream to one member, balanced: the members' counts differ by at most one.
/// Empty when there are no members. See the module doc for the rule.
pub fn assign(
    members: &BTreeSet<String>,
    streams: &BTreeSet<StreamId>,
) -> BTreeMap<StreamId, String> {
    let mut owners = BTreeMap::new();
    if members.is_empty() {
        return owners;
    }
    // Best score first; ties (a 64-bit collision) by stream, then member: a total order.
    let mut pairs: Vec<(u64, StreamId, &String)> = streams
        .iter()
        .flat_map(|s| members.iter().map(move |m| (score(*s, m), *s, m)))
        .collect();
    pairs.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(b.2)));
    let mut room = Room::new(members, streams.len());
    for (_, stream, member) in pairs {
        if owners.contains_key(&stream) || !room.has(member) {
            continue;
        }
        room.take(member);
        owners.insert(stream, member.clone());
    }
    // Complete: while a stream is left, some member has had room all along (room only
    // shrinks), so the stream's pair with it found it.
    debug_assert_eq!(owners.len(), streams.len(), "every stream has an owner");
    debug_assert!(room.balanced(), "counts within one of each other");
    owners
}

/// The balance bound while streams are handed out.
struct Room<'a> {
    /// `⌊S/N⌋`: what every member gets.
    base: usize,
    /// `S mod N`: how many members get one more.
    extra: usize,
    /// Members that already hold `base + 1`.
    extra_taken: usize,
    counts: BTreeMap<&'a str, usize>,
}

impl<'a> Room<'a> {
    fn new(members: &'a BTreeSet<String>, streams: usize) -> Self {
        debug_assert!(!members.is_empty());
        Room {
            base: streams / members.len(),
            extra: streams % members.len(),
            extra_taken: 0,
            counts: members.iter().map(|m| (m.as_str(), 0)).collect(),
        }
    }

    /// Whether `member` may take one more stream.
    fn has(&self, member: &str) -> bool {
        let count = self.counts[member];
        count < self.base || (count == self.base && self.extra_taken < self.extra)
    }

    fn take(&mut self, member: &str) {
        debug_assert!(self.has(member));
        let count = self.counts.get_mut(member).expect("a member");
        *count += 1;
        if *count == self.base + 1 {
            self.extra_taken += 1;
        }
    }

    /// Every member holds `base` or `base + 1`, and `extra` of them the latter.
    fn balanced(&self) -> bool {
        let all_within = self
            .counts
            .values()
            .all(|c| *c == self.base || *c == self.base + 1);
        all_within && self.extra_taken == self.extra
    }
}

#[cfg(test)]
mod tests;
