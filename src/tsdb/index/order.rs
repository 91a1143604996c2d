//! The order rules of one series entry that go beyond the byte format: label names sorted
//! and unique, chunks in time order. Both the reader and the writer apply them, and Thanos
//! checks them on every block before compacting it (`block.GatherIndexHealthStats`).
//!
//! Two kinds of damage are known from old Prometheus versions, and Thanos' compactor has a
//! switch for each:
//! - label names out of order within a series (Prometheus 2.8.0 and older): refused unless
//!   `--debug.accept-malformed-index` ([`NameOrder`] with `accept_unsorted`), in which case
//!   the labels pass through in their stored order, as Prometheus' reader and writer pass
//!   them;
//! - chunks that overlap or go back in time ([`first_out_of_order_chunk`]): Thanos refuses
//!   the block, or with `--compact.skip-block-with-out-of-order-chunks` no-compact-marks it.

use super::ChunkMeta;

/// Why a label name cannot follow the names before it in its series.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum NameOrderError {
    /// The name is already in the series.
    Repeated,
    /// The name sorts before the previous one (and unsorted names were not accepted).
    Unsorted {
        /// The previous name's symbol reference.
        previous: u32,
    },
}

/// Checks the label names of one series as they come: sorted and unique; with
/// `accept_unsorted`, only unique.
///
/// The sorted case costs one comparison per label. Once a series turned out unsorted, each
/// later name is compared with every earlier one (series hold tens of labels, not more).
#[derive(Clone, Copy, Debug)]
pub(super) struct NameOrder {
    accept_unsorted: bool,
    unsorted: bool,
}

impl NameOrder {
    /// The checker for one series.
    pub(super) fn new(accept_unsorted: bool) -> Self {
        NameOrder {
            accept_unsorted,
            unsorted: false,
        }
    }

    /// Checks that `name` may follow `previous`, the `(name, value)` symbol references
    /// before it in the same series.
    pub(super) fn check(
        &mut self,
        previous: &[(u32, u32)],
        name: u32,
    ) -> Result<(), NameOrderError> {
        let last = previous.last().map(|&(n, _)| n);
        let in_order = last.is_none_or(|last| name > last);
        if in_order && !self.unsorted {
            return Ok(());
        }
        if previous.iter().any(|&(n, _)| n == name) {
            return Err(NameOrderError::Repeated);
        }
        if let (false, Some(last)) = (in_order, last) {
            if !self.accept_unsorted {
                return Err(NameOrderError::Unsorted { previous: last });
            }
            self.unsorted = true;
        }
        Ok(())
    }
}

/// The position of the first chunk that starts at or before the end of the chunk before it,
/// by the index's time ranges, except an exact duplicate range (Thanos' rule in
/// `GatherIndexHealthStats`: a chunk whose range equals the previous one's is counted as a
/// duplicate, not as out of order). `None` when the chunks are in order.
pub fn first_out_of_order_chunk(chunks: &[ChunkMeta]) -> Option<usize> {
    chunks
        .windows(2)
        .position(|w| {
            let (previous, chunk) = (&w[0], &w[1]);
            let duplicate =
                chunk.min_time == previous.min_time && chunk.max_time == previous.max_time;
            chunk.min_time <= previous.max_time && !duplicate
        })
        .map(|i| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(min_time: i64, max_time: i64) -> ChunkMeta {
        ChunkMeta {
            min_time,
            max_time,
            chunk_ref: 0,
        }
    }

    #[test]
    fn chunks_out_of_order_as_thanos_counts_them() {
        assert_eq!(first_out_of_order_chunk(&[]), None);
        assert_eq!(first_out_of_order_chunk(&[chunk(0, 9)]), None);
        assert_eq!(
            first_out_of_order_chunk(&[chunk(0, 9), chunk(10, 19)]),
            None
        );
        // An exact duplicate range is a duplicate, not out of order.
        assert_eq!(
            first_out_of_order_chunk(&[chunk(0, 9), chunk(0, 9), chunk(10, 19)]),
            None
        );
        // Touching (min == previous max), overlapping, or going back in time.
        assert_eq!(
            first_out_of_order_chunk(&[chunk(0, 9), chunk(9, 19)]),
            Some(1)
        );
        assert_eq!(
            first_out_of_order_chunk(&[chunk(0, 9), chunk(10, 19), chunk(5, 25)]),
            Some(2)
        );
        assert_eq!(
            first_out_of_order_chunk(&[chunk(20, 29), chunk(0, 9)]),
            Some(1)
        );
    }

    fn check_all(names: &[u32], accept_unsorted: bool) -> Result<(), NameOrderError> {
        let mut order = NameOrder::new(accept_unsorted);
        let mut seen: Vec<(u32, u32)> = Vec::new();
        for &name in names {
            order.check(&seen, name)?;
            seen.push((name, 0));
        }
        Ok(())
    }

    #[test]
    fn label_names_sorted_or_with_accept_only_unique() {
        assert_eq!(check_all(&[1, 2, 5], false), Ok(()));
        assert_eq!(check_all(&[1, 2, 5], true), Ok(()));
        assert_eq!(
            check_all(&[1, 5, 2], false),
            Err(NameOrderError::Unsorted { previous: 5 })
        );
        assert_eq!(check_all(&[1, 5, 2], true), Ok(()));
        assert_eq!(check_all(&[1, 1], false), Err(NameOrderError::Repeated));
        assert_eq!(check_all(&[1, 1], true), Err(NameOrderError::Repeated));
        // Once unsorted, a later name that sorts after the last one may still repeat.
        assert_eq!(check_all(&[3, 1, 3], true), Err(NameOrderError::Repeated));
        assert_eq!(check_all(&[3, 1, 4, 2], true), Ok(()));
    }
}
