//! Observation: which node this one knows to lead, and how long a failover took — from the
//! moment this node saw the leader it replaces go, to its own first permitted write. It
//! reports through events only and decides nothing.

use super::config::LeaderConfig;
use crate::core::coord::ElectionKey;
use crate::core::types::{Epoch, Event, LeaderInfo, Millis, Now, Output};

/// The leader as this node observes it.
#[derive(Debug, Default)]
pub(super) struct Observer {
    /// The leader this node knows of.
    pub(super) known: Option<LeaderInfo>,
    /// When this node saw the leader it knew go.
    leader_gone_at: Option<Millis>,
}

impl Observer {
    /// An observation of the election found `first` oldest (the leader; none: no key). `me`
    /// is this node's name.
    pub(super) fn note_leader(
        &mut self,
        now: Now,
        first: Option<&ElectionKey>,
        me: &str,
        out: &mut Vec<Output>,
    ) {
        let seen = first.map(|k| (k.value.clone(), k.create_revision as u64));
        self.note_holder(now, seen, me, out);
    }

    /// The leader observed is `seen` (its name and epoch; none: no leader). `me` is this
    /// node's name.
    pub(super) fn note_holder(
        &mut self,
        now: Now,
        seen: Option<(String, u64)>,
        me: &str,
        out: &mut Vec<Output>,
    ) {
        let known = self.known.as_ref().map(|k| (k.node.clone(), k.epoch));
        if seen == known {
            return;
        }
        match &seen {
            // Another node leads: whatever departure we timed was replaced by it.
            Some((node, _)) if *node != me => self.leader_gone_at = None,
            // The leader we knew went (no leader now, or we are next): time from here.
            _ if known.is_some() => self.leader_gone_at = Some(now.mono),
            _ => {}
        }
        self.known = seen.map(|(node, epoch)| LeaderInfo {
            node,
            epoch,
            since_unix_ms: now.wall.0,
        });
        out.push(Output::Event(Event::LeaderKnown(self.known.clone())));
    }

    /// This node leads under `epoch` from `now`: reports it with the failover time, and a
    /// single instance, which observes no election, knows itself as the leader.
    pub(super) fn took_over(
        &mut self,
        now: Now,
        epoch: Epoch,
        cfg: &LeaderConfig,
        out: &mut Vec<Output>,
    ) {
        let failover_ms = self.leader_gone_at.take().map(|t| now.mono.0 - t.0);
        out.push(Output::Event(Event::Leading {
            epoch: epoch.0,
            failover_ms,
        }));
        if cfg.election.is_none() {
            let info = LeaderInfo {
                node: cfg.node.clone(),
                epoch: epoch.0,
                since_unix_ms: now.wall.0,
            };
            self.known = Some(info.clone());
            out.push(Output::Event(Event::LeaderKnown(Some(info))));
        }
    }
}
