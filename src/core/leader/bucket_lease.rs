//! The bucket provider's rule for taking over the lease object (the fence), as a candidate
//! sees it (`--election=bucket`, `docs/safety.md`). Object stores keep no TTL, and hosts'
//! wall clocks are not compared: a candidate takes over only after it has seen the same
//! version of the object for `TTL·(1 + drift) + margin` on its own monotonic clock
//! ([`observe_wait_ms`]) — a holder renews every TTL/3, so a live holder always changes the
//! version sooner. An absent fence, or one its holder released (renewed 0), may be taken at
//! once: the create-only or If-Match write lets one candidate win.
//!
//! The leader's watching role (`bucket.rs`) feeds every fence read to a [`LeaseWatch`] and
//! sends its takeover CAS (If-Match on the version watched) once
//! [`LeaseWatch::takeover_at`] has passed.

use super::config::{MAX_DRIFT_PERMILLE, SAFETY_MARGIN_MS};
use crate::core::fence::{FenceRecord, FenceVersion};
use crate::core::types::Millis;

/// How long a candidate must see one version of the lease object unchanged before it may
/// take over, in ms of its own monotonic clock: a TTL stretched by the largest clock-rate
/// drift, plus the safety margin.
pub fn observe_wait_ms(ttl_ms: i64) -> i64 {
    ttl_ms * (1000 + MAX_DRIFT_PERMILLE) / 1000 + SAFETY_MARGIN_MS
}

/// What a candidate has seen of the lease object.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LeaseWatch {
    /// The last read: the record and its version (`None`: the object was absent), and when
    /// that version was first seen.
    seen: Option<Seen>,
    /// The highest epoch this process has seen in the fence or held: a fence deleted by hand
    /// does not send the epochs back to 1 while a replica that saw them runs.
    highest_epoch: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Seen {
    fence: Option<(FenceRecord, FenceVersion)>,
    since: Millis,
}

impl LeaseWatch {
    /// Takes in a read of the lease object at `now` (mono): `None` when it is absent. A
    /// version other than the last one seen restarts the wait.
    pub fn observe(&mut self, now: Millis, read: Option<(FenceRecord, FenceVersion)>) {
        let same = self
            .seen
            .as_ref()
            .is_some_and(|s| s.fence.as_ref().map(|(_, v)| v) == read.as_ref().map(|(_, v)| v));
        if let Some((record, _)) = &read {
            self.highest_epoch = self.highest_epoch.max(record.epoch);
        }
        if !same {
            self.seen = Some(Seen {
                fence: read,
                since: now,
            });
        }
    }

    /// When the candidate may take over (mono), if it has read the object at all: at once
    /// for an absent or released fence, else after [`observe_wait_ms`] of one version.
    pub fn takeover_at(&self, ttl_ms: i64) -> Option<Millis> {
        let seen = self.seen.as_ref()?;
        let free = match &seen.fence {
            None => true,
            Some((record, _)) => record.renewed_unix_ms == 0,
        };
        Some(if free {
            seen.since
        } else {
            Millis(seen.since.0 + observe_wait_ms(ttl_ms))
        })
    }

    /// The version a takeover must name (If-Match), `None` for an absent object (create).
    pub fn version(&self) -> Option<&FenceVersion> {
        self.seen.as_ref()?.fence.as_ref().map(|(_, v)| v)
    }

    /// The epoch a takeover writes: one past the highest seen (1 over an absent object, when
    /// none was ever seen).
    pub fn next_epoch(&self) -> u64 {
        self.highest_epoch + 1
    }

    /// Forgets the versions seen (a term begins: the next watch starts afresh), keeping the
    /// highest epoch, which `held` raises to the term's.
    pub fn restart(&mut self, held: u64) {
        self.seen = None;
        self.highest_epoch = self.highest_epoch.max(held);
    }
}

/// Whether a write of `ours` whose answer was lost (a timeout, or a 412 after a retry that
/// may follow a success) landed, judged by the record read back: the very record written —
/// the same epoch, holder, nonce (the writing process's), seq and renewal time. The same
/// epoch and seq alone do not tell this write from an earlier attempt of ours that was
/// abandoned unanswered and landed late (two takeovers of one absent fence both write
/// epoch 1, seq 1): crediting this write's send time to that one would stretch the lease.
pub fn landed(ours: &FenceRecord, read: Option<&FenceRecord>) -> bool {
    read == Some(ours)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: i64 = 15_000;

    fn fence(epoch: u64, seq: u64, renewed: i64, etag: &str) -> (FenceRecord, FenceVersion) {
        let record = FenceRecord {
            epoch,
            holder: "r1".into(),
            seq,
            renewed_unix_ms: renewed,
            nonce: String::new(),
        };
        let version = FenceVersion {
            e_tag: Some(etag.into()),
            version: None,
        };
        (record, version)
    }

    #[test]
    fn the_wait_stretches_the_ttl_by_the_drift_and_the_margin() {
        assert_eq!(observe_wait_ms(TTL), 15_000 + 750 + 500);
    }

    #[test]
    fn one_unchanged_version_for_the_wait_allows_a_takeover() {
        let mut w = LeaseWatch::default();
        assert_eq!(w.takeover_at(TTL), None, "nothing read yet");
        w.observe(Millis(1_000), Some(fence(7, 3, 99, "a")));
        w.observe(Millis(6_000), Some(fence(7, 3, 99, "a")));
        assert_eq!(
            w.takeover_at(TTL),
            Some(Millis(1_000 + observe_wait_ms(TTL)))
        );
        assert_eq!(w.next_epoch(), 8);
        assert_eq!(w.version().and_then(|v| v.e_tag.as_deref()), Some("a"));
    }

    #[test]
    fn a_renewal_restarts_the_wait() {
        let mut w = LeaseWatch::default();
        w.observe(Millis(1_000), Some(fence(7, 3, 99, "a")));
        w.observe(Millis(6_000), Some(fence(7, 4, 105, "b")));
        assert_eq!(
            w.takeover_at(TTL),
            Some(Millis(6_000 + observe_wait_ms(TTL)))
        );
    }

    #[test]
    fn an_absent_or_released_fence_is_free_at_once() {
        let mut w = LeaseWatch::default();
        w.observe(Millis(2_000), None);
        assert_eq!(w.takeover_at(TTL), Some(Millis(2_000)));
        assert_eq!((w.next_epoch(), w.version()), (1, None));
        w.observe(Millis(3_000), Some(fence(7, 5, 0, "c")));
        assert_eq!(w.takeover_at(TTL), Some(Millis(3_000)));
    }

    #[test]
    fn epochs_never_go_back_when_the_fence_is_deleted() {
        let mut w = LeaseWatch::default();
        w.observe(Millis(1_000), Some(fence(7, 3, 99, "a")));
        w.restart(8);
        w.observe(Millis(9_000), None);
        assert_eq!(w.next_epoch(), 9, "not 1: this process held epoch 8");
        assert_eq!(w.takeover_at(TTL), Some(Millis(9_000)));
    }

    #[test]
    fn only_our_own_record_counts_as_landed() {
        let (ours, _) = fence(8, 1, 100, "x");
        assert!(landed(&ours, Some(&ours)));
        let mut other = ours.clone();
        other.holder = "r2".into();
        assert!(!landed(&ours, Some(&other)));
        let mut later = ours.clone();
        later.seq = 2;
        assert!(!landed(&ours, Some(&later)));
        let mut twin = ours.clone();
        twin.nonce = "another process of the same name".into();
        assert!(!landed(&ours, Some(&twin)));
        let mut earlier = ours.clone();
        earlier.renewed_unix_ms -= 12_750;
        assert!(
            !landed(&ours, Some(&earlier)),
            "an earlier attempt of ours with the same epoch and seq"
        );
        assert!(!landed(&ours, None));
    }
}
