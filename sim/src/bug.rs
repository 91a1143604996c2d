//! The mutations `--bug` switches on: each turns one safety mechanism off, so the checker
//! must find a violation (a checker that cannot fail proves nothing).

use std::fmt;
use std::str::FromStr;

use compactd::core::leader::Provider;

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
    /// An operator request for a stream this node holds no seat for goes to its bucket unit
    /// instead of being refused.
    AdminWrongUnit,
    /// The bucket provider: a candidate takes the fence over at its first read, without
    /// waiting for one version to stand unchanged for `TTL·(1 + drift) + margin`.
    NoObserveWait,
}

impl Bug {
    /// Every mutation.
    pub const ALL: [Bug; 10] = [
        Bug::NoDeadline,
        Bug::NoFence,
        Bug::NoTakeoverDelay,
        Bug::NoPermitCheck,
        Bug::KeepRenewing,
        Bug::NoStreamFence,
        Bug::StaleOwnership,
        Bug::NoRebalanceDelay,
        Bug::AdminWrongUnit,
        Bug::NoObserveWait,
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
            Bug::AdminWrongUnit => "admin-wrong-unit",
            Bug::NoObserveWait => "no-observe-wait",
        }
    }

    /// Whether the mechanism it switches off acts under `provider`; the error says why not.
    pub fn check_provider(self, provider: Provider) -> Result<(), String> {
        let why = match (self, provider) {
            (Bug::KeepRenewing, Provider::Bucket) => {
                "the bucket provider sends no keepalives: its renewals are the fence writes, \
                 and one that is not answered does not move its lease deadline"
            }
            (
                Bug::NoStreamFence
                | Bug::StaleOwnership
                | Bug::NoRebalanceDelay
                | Bug::AdminWrongUnit,
                Provider::Bucket,
            ) => {
                "per-stream ownership needs etcd (the members and the stream seats live \
                 there): under the bucket provider one leader owns the bucket"
            }
            (Bug::NoObserveWait, Provider::Etcd) => {
                "only the bucket provider watches the fence before it takes it over"
            }
            _ => return Ok(()),
        };
        let other = match provider {
            Provider::Etcd => "bucket",
            Provider::Bucket => "etcd",
        };
        Err(format!("--bug {self} needs --election {other}: {why}"))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_parses_back() {
        for b in Bug::ALL {
            assert_eq!(b.name().parse::<Bug>(), Ok(b));
        }
        assert!("no-such"
            .parse::<Bug>()
            .unwrap_err()
            .contains("no-observe-wait"));
    }

    #[test]
    fn a_mutation_of_the_other_provider_is_refused_naming_why() {
        let etcd_only = [
            Bug::KeepRenewing,
            Bug::NoStreamFence,
            Bug::StaleOwnership,
            Bug::NoRebalanceDelay,
            Bug::AdminWrongUnit,
        ];
        for b in Bug::ALL {
            let on_bucket = b.check_provider(Provider::Bucket);
            assert_eq!(on_bucket.is_err(), etcd_only.contains(&b), "{b}");
            let on_etcd = b.check_provider(Provider::Etcd);
            assert_eq!(on_etcd.is_err(), b == Bug::NoObserveWait, "{b}");
        }
        let err = Bug::KeepRenewing
            .check_provider(Provider::Bucket)
            .unwrap_err();
        assert!(
            err.starts_with("--bug keep-renewing needs --election etcd: "),
            "{err}"
        );
        let err = Bug::NoObserveWait
            .check_provider(Provider::Etcd)
            .unwrap_err();
        assert!(err.contains("needs --election bucket"), "{err}");
    }
}
