//! The mutations `--bug` switches on: each turns one safety mechanism off, so the checker
//! must find a violation (a checker that cannot fail proves nothing).

use std::fmt;
use std::str::FromStr;

/// One mechanism switched off.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Bug {
    /// The leader ignores its local lease deadline (keeps writing until told otherwise).
    NoDeadline,
    /// No bucket fence: no CAS at takeover or before commits; singletons do not check it.
    NoFence,
    /// A new leader commits right after fencing, without the takeover delay.
    NoTakeoverDelay,
    /// The driver sends a mutation whose permit has expired.
    NoPermitCheck,
    /// A node keeps renewing its lease while it hears no acknowledgement (etcd keeps its key
    /// alive as long as the renewals reach it): no failover under one-way cuts.
    KeepRenewing,
    /// A stream's holder commits without CASing the stream's fence.
    NoStreamFence,
    /// A node keeps writing to a stream after it handed it over (withdrew its key).
    StaleOwnership,
    /// A stream's new holder commits right after fencing it, without the takeover delay.
    NoRebalanceDelay,
    /// Operator requests' commits skip the gate: sent under the permit, no fence CAS first.
    UngatedAdmin,
}

impl Bug {
    /// Every mutation.
    pub const ALL: [Bug; 9] = [
        Bug::NoDeadline,
        Bug::NoFence,
        Bug::NoTakeoverDelay,
        Bug::NoPermitCheck,
        Bug::KeepRenewing,
        Bug::NoStreamFence,
        Bug::StaleOwnership,
        Bug::NoRebalanceDelay,
        Bug::UngatedAdmin,
    ];

    /// The `--bug` name.
    pub fn name(self) -> &'static str {
        match self {
            Bug::NoDeadline => "no-deadline",
            Bug::NoFence => "no-fence",
            Bug::NoTakeoverDelay => "no-takeover-delay",
            Bug::NoPermitCheck => "no-permit-check",
            Bug::KeepRenewing => "keep-renewing",
            Bug::NoStreamFence => "no-stream-fence",
            Bug::StaleOwnership => "stale-ownership",
            Bug::NoRebalanceDelay => "no-rebalance-delay",
            Bug::UngatedAdmin => "ungated-admin",
        }
    }
}

impl fmt::Display for Bug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Bug {
    type Err = String;

    fn from_str(s: &str) -> Result<Bug, String> {
        Bug::ALL.into_iter().find(|b| b.name() == s).ok_or_else(|| {
            let names: Vec<&str> = Bug::ALL.iter().map(|b| b.name()).collect();
            format!("unknown bug {s:?}; one of {}", names.join(", "))
        })
    }
}
