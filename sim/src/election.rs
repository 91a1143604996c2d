//! Who elects the leader in a world (`compactd-sim run --election etcd|bucket`): etcd, the
//! bucket itself (the fence object is the lease, `compactd::core::leader::bucket_lease`), or
//! nobody (single instances, whatever the option). The world hosts etcd only when etcd
//! elects; a cut of the leader from its coordinator takes it out.

use compactd::core::leader::Provider;

use crate::scenario::{Mode, Peer};

/// The `--election` names.
pub const NAMES: [&str; 2] = ["etcd", "bucket"];

/// The provider called `name` (`etcd` or `bucket`).
pub fn parse(name: &str) -> Result<Provider, String> {
    match name {
        "etcd" => Ok(Provider::Etcd),
        "bucket" => Ok(Provider::Bucket),
        other => Err(format!(
            "unknown election {other:?}; one of {}",
            NAMES.join(", ")
        )),
    }
}

/// The `--election` name of `provider`.
pub fn name(provider: Provider) -> &'static str {
    match provider {
        Provider::Etcd => "etcd",
        Provider::Bucket => "bucket",
    }
}

/// Who elects the leader in one world.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Coordinator {
    /// etcd (a host of the world).
    Etcd,
    /// The bucket: the nodes read and CAS the fence object; no etcd host.
    Bucket,
    /// Nobody: single instances, no etcd host.
    None,
}

impl Coordinator {
    /// The coordinator of a world of `mode` under `provider`.
    pub fn of(provider: Provider, mode: Mode) -> Coordinator {
        match (mode, provider) {
            (Mode::Single { .. }, _) => Coordinator::None,
            (Mode::Elected, Provider::Etcd) => Coordinator::Etcd,
            (Mode::Elected, Provider::Bucket) => Coordinator::Bucket,
        }
    }

    /// True when the world hosts etcd.
    pub fn hosts_etcd(self) -> bool {
        self == Coordinator::Etcd
    }

    /// True when the nodes are elected (a leader must exist once the faults heal).
    pub fn elects(self) -> bool {
        self != Coordinator::None
    }

    /// The peer whose cut from the leader takes it out: etcd, or the store when the bucket
    /// elects.
    pub fn peer(self) -> Option<Peer> {
        match self {
            Coordinator::Etcd => Some(Peer::Etcd),
            Coordinator::Bucket => Some(Peer::Store),
            Coordinator::None => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_ones_are_refused() {
        for n in NAMES {
            assert_eq!(name(parse(n).unwrap()), n);
        }
        let err = parse("zookeeper").unwrap_err();
        assert!(err.contains("etcd, bucket"), "{err}");
    }

    #[test]
    fn single_instances_have_no_coordinator_whatever_the_provider() {
        let single = Mode::Single { count: 2 };
        for p in [Provider::Etcd, Provider::Bucket] {
            assert_eq!(Coordinator::of(p, single), Coordinator::None);
        }
        let bucket = Coordinator::of(Provider::Bucket, Mode::Elected);
        assert!(!bucket.hosts_etcd() && bucket.elects());
        assert_eq!(bucket.peer(), Some(Peer::Store));
        assert_eq!(
            Coordinator::of(Provider::Etcd, Mode::Elected).peer(),
            Some(Peer::Etcd)
        );
    }
}
