//! The postings lists the writer builds in memory: per series, its id and the dense key
//! index of each label pair, turned into sorted lists by a counting sort at the end. This is
//! the only state of [`super::IndexWriter`] that grows with the number of series: 4 bytes per
//! label pair, 8 per series and about 20 per distinct pair.

/// A label pair as one sortable key: name in the high half, value in the low half. Symbol
/// references sort like their strings, so keys sort like (name, value) strings.
pub(super) fn pack(name: u32, value: u32) -> u64 {
    (u64::from(name) << 32) | u64::from(value)
}

pub(super) fn unpack(key: u64) -> (u32, u32) {
    ((key >> 32) as u32, key as u32)
}

/// Accumulates, per series, its id and the keys of its label pairs.
#[derive(Default)]
pub(super) struct PostingsBuilder {
    table: KeyTable,
    /// Key index of every label pair written, series after series.
    pair_keys: Vec<u32>,
    series_ids: Vec<u32>,
    label_counts: Vec<u32>,
}

/// The postings lists built by [`PostingsBuilder::into_lists`].
pub(super) struct PostingsLists {
    /// Every series id, in order: the ("", "") list.
    pub(super) series_ids: Vec<u32>,
    /// Key (packed pair) of each key index.
    pub(super) keys: Vec<u64>,
    /// Key indices sorted by key.
    pub(super) order: Vec<u32>,
    /// `ids[starts[k]..starts[k + 1]]` is the list of key index `k`.
    starts: Vec<usize>,
    ids: Vec<u32>,
}

impl PostingsLists {
    /// The ascending series ids of key index `key`.
    pub(super) fn ids_of(&self, key: u32) -> &[u32] {
        let key = key as usize;
        &self.ids[self.starts[key]..self.starts[key + 1]]
    }
}

impl PostingsBuilder {
    /// An empty builder.
    pub(super) fn new() -> Self {
        PostingsBuilder::default()
    }

    /// True before the first series.
    pub(super) fn is_empty(&self) -> bool {
        self.series_ids.is_empty()
    }

    /// Records series `id`. `previous` are the labels of the previous series: pairs at the
    /// same position that did not change reuse its key, which skips most hash lookups since
    /// sorted series share long prefixes. False (and nothing recorded) when the label pairs
    /// would exceed 2^32 - 2 distinct keys.
    #[must_use]
    pub(super) fn add(&mut self, id: u32, labels: &[(u32, u32)], previous: &[(u32, u32)]) -> bool {
        debug_assert_eq!(
            self.label_counts.last().map_or(0, |&c| c as usize),
            previous.len()
        );
        debug_assert!(self.series_ids.last().is_none_or(|&last| last < id));
        let previous_start = self.pair_keys.len() - previous.len();
        for (i, &(name, value)) in labels.iter().enumerate() {
            let key = if previous.get(i) == Some(&(name, value)) {
                self.pair_keys[previous_start + i]
            } else {
                match self.table.get_or_insert(pack(name, value)) {
                    Some(key) => key,
                    None => {
                        self.pair_keys.truncate(previous_start + previous.len());
                        return false;
                    }
                }
            };
            self.pair_keys.push(key);
        }
        self.series_ids.push(id);
        self.label_counts.push(labels.len() as u32);
        true
    }

    /// Groups the series ids by key (a counting sort: ids stay ascending within each list).
    pub(super) fn into_lists(self) -> PostingsLists {
        let keys = self.table.keys;
        let mut starts = vec![0usize; keys.len() + 1];
        for &key in &self.pair_keys {
            starts[key as usize + 1] += 1;
        }
        for k in 1..starts.len() {
            starts[k] += starts[k - 1];
        }
        let mut next = starts[..keys.len()].to_vec();
        let mut ids = vec![0u32; self.pair_keys.len()];
        let mut pair = 0;
        for (&id, &count) in self.series_ids.iter().zip(&self.label_counts) {
            for &key in &self.pair_keys[pair..pair + count as usize] {
                ids[next[key as usize]] = id;
                next[key as usize] += 1;
            }
            pair += count as usize;
        }
        debug_assert_eq!(pair, self.pair_keys.len());
        let mut order: Vec<u32> = (0..keys.len() as u32).collect();
        order.sort_unstable_by_key(|&k| keys[k as usize]);
        PostingsLists {
            series_ids: self.series_ids,
            keys,
            order,
            starts,
            ids,
        }
    }
}

/// Maps packed label pairs to dense key indices: open addressing with linear probing and
/// Fibonacci hashing. Deterministic (no random seed) and two flat arrays, so it stays fast and
/// small with millions of keys.
struct KeyTable {
    /// Key index + 1 per slot, 0 when empty; the length is a power of two.
    slots: Vec<u32>,
    /// Key of each key index, in insertion order.
    keys: Vec<u64>,
    /// 64 - log2(slots.len()).
    shift: u32,
}

impl Default for KeyTable {
    fn default() -> Self {
        const INITIAL_SLOTS_LOG2: u32 = 10;
        KeyTable {
            slots: vec![0; 1 << INITIAL_SLOTS_LOG2],
            keys: Vec::new(),
            shift: 64 - INITIAL_SLOTS_LOG2,
        }
    }
}

impl KeyTable {
    fn home(&self, key: u64) -> usize {
        (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> self.shift) as usize
    }

    /// The index of `key`, inserting it if new; `None` once 2^32 - 2 keys exist.
    fn get_or_insert(&mut self, key: u64) -> Option<u32> {
        // Keep the load at most 1/2 so probe sequences stay short.
        if (self.keys.len() + 1) * 2 > self.slots.len() {
            self.grow();
        }
        let mask = self.slots.len() - 1;
        let mut slot = self.home(key);
        loop {
            match self.slots[slot] {
                0 => {
                    let index = u32::try_from(self.keys.len())
                        .ok()
                        .filter(|&i| i < u32::MAX - 1)?;
                    self.keys.push(key);
                    self.slots[slot] = index + 1;
                    return Some(index);
                }
                entry if self.keys[entry as usize - 1] == key => return Some(entry - 1),
                _ => slot = (slot + 1) & mask,
            }
        }
    }

    fn grow(&mut self) {
        self.shift -= 1;
        self.slots = vec![0; self.slots.len() * 2];
        let mask = self.slots.len() - 1;
        for (index, &key) in self.keys.iter().enumerate() {
            let mut slot = self.home(key);
            while self.slots[slot] != 0 {
                slot = (slot + 1) & mask;
            }
            self.slots[slot] = index as u32 + 1;
        }
    }
}
