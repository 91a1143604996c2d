//! Label sets and label values of the exported metrics.
//!
//! Label names and values are the ones Thanos uses, so dashboards and alerts written for
//! `thanos compact` (the Thanos mixin) select the same series on compactd. Fixed value sets are
//! enums whose label value is the Thanos string; the derive of `EncodeLabelValue` would print
//! the Rust variant name instead, so the impls here are written by hand.

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};

/// Writes a `&'static str` label value; shared by the hand-written `EncodeLabelValue` impls.
fn encode_str(value: &'static str, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
    EncodeLabelValue::encode(&value, encoder)
}

/// An object storage operation, the `operation` label of the `thanos_objstore_bucket_*`
/// metrics (`objstore.Op*` in `thanos-io/objstore`).
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, PartialOrd, Ord)]
pub enum BucketOp {
    /// Listing (`iter`).
    Iter,
    /// Whole-object read (`get`).
    Get,
    /// Ranged read (`get_range`).
    GetRange,
    /// Existence check (`exists`).
    Exists,
    /// Write (`upload`).
    Upload,
    /// Delete (`delete`).
    Delete,
    /// Metadata read: size, last modified (`attributes`).
    Attributes,
}

impl BucketOp {
    /// Every operation, in the order Thanos pre-initialises them.
    pub const ALL: [BucketOp; 7] = [
        BucketOp::Iter,
        BucketOp::Get,
        BucketOp::GetRange,
        BucketOp::Exists,
        BucketOp::Upload,
        BucketOp::Delete,
        BucketOp::Attributes,
    ];

    /// The operations that move object bytes; only these have byte metrics in Thanos.
    pub const TRANSFERRING: [BucketOp; 3] = [BucketOp::Get, BucketOp::GetRange, BucketOp::Upload];

    /// The label value Thanos uses for this operation.
    pub fn as_str(self) -> &'static str {
        match self {
            BucketOp::Iter => "iter",
            BucketOp::Get => "get",
            BucketOp::GetRange => "get_range",
            BucketOp::Exists => "exists",
            BucketOp::Upload => "upload",
            BucketOp::Delete => "delete",
            BucketOp::Attributes => "attributes",
        }
    }
}

impl EncodeLabelValue for BucketOp {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        encode_str(self.as_str(), encoder)
    }
}

/// Labels of the per-operation objstore metrics. `bucket` is a constant label added by the
/// registry (as in Thanos, where it is a `ConstLabel`), so it is not part of this set.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BucketOpLabels {
    /// The operation.
    pub operation: BucketOp,
}

/// A marker file, the `marker` label of `thanos_compact_blocks_marked_total`. Thanos uses the
/// marker's file name as the label value.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, PartialOrd, Ord)]
pub enum Marker {
    /// `deletion-mark.json`.
    Deletion,
    /// `no-compact-mark.json`.
    NoCompact,
    /// `no-downsample-mark.json`.
    NoDownsample,
}

impl Marker {
    /// The marker's file name, which is also its label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Marker::Deletion => "deletion-mark.json",
            Marker::NoCompact => "no-compact-mark.json",
            Marker::NoDownsample => "no-downsample-mark.json",
        }
    }
}

impl EncodeLabelValue for Marker {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        encode_str(self.as_str(), encoder)
    }
}

/// `reason` of a no-compact mark for a block whose index has out-of-order chunks
/// (`metadata.OutOfOrderChunksNoCompactReason`).
pub const REASON_OUT_OF_ORDER_CHUNKS: &str = "block-index-out-of-order-chunk";
/// `reason` of a no-compact mark for a plan whose output index would be too large
/// (`metadata.IndexSizeExceedingNoCompactReason`).
pub const REASON_INDEX_SIZE_EXCEEDING: &str = "index-size-exceeding";
/// `reason` of a no-compact mark for overlapping downsampled blocks
/// (`metadata.DownsampleVerticalCompactionNoCompactReason`).
pub const REASON_DOWNSAMPLE_VERTICAL_COMPACTION: &str = "downsample-vertical-compaction";
/// `reason` of a mark placed by hand (`metadata.ManualNoCompactReason`).
pub const REASON_MANUAL: &str = "manual";

/// Labels of `thanos_compact_blocks_marked_total`. Deletion marks carry an empty reason.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MarkedLabels {
    /// Which marker was written.
    pub marker: Marker,
    /// Why; empty for deletion marks, as in Thanos.
    pub reason: String,
}

/// Labels of the per-resolution group and downsample metrics. Thanos renders the resolution
/// as the integer number of milliseconds (`Thanos.ResolutionString()`): `0`, `300000`,
/// `3600000`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResolutionLabels {
    /// Downsampling resolution in milliseconds.
    pub resolution: i64,
}

/// The `state` label of `thanos_blocks_meta_synced`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabels {
    /// A fetcher state such as `loaded` or `too-fresh`.
    pub state: String,
}

/// The `modified` label of `thanos_blocks_meta_modified`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ModifiedLabels {
    /// A modification such as `replica-label-removed`.
    pub modified: String,
}

/// A probe of `thanos_status`: readiness or liveness.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, PartialOrd, Ord)]
pub enum ProbeCheck {
    /// `ready`.
    Ready,
    /// `healthy`.
    Healthy,
}

impl ProbeCheck {
    /// The label value Thanos uses.
    pub fn as_str(self) -> &'static str {
        match self {
            ProbeCheck::Ready => "ready",
            ProbeCheck::Healthy => "healthy",
        }
    }
}

impl EncodeLabelValue for ProbeCheck {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        encode_str(self.as_str(), encoder)
    }
}

/// Labels of `thanos_status`. Fields are in the order Go's client sorts them.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabels {
    /// The probe.
    pub check: ProbeCheck,
    /// Always `compact`: compactd stands in for the Thanos compact component.
    pub component: &'static str,
}

/// Labels of `compactd_build_info`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BuildLabels {
    /// The crate version.
    pub version: &'static str,
}

/// Labels of `thanos_build_info`: the label names of Go's version collector
/// (`client_golang/prometheus/collectors/version`, which Thanos registers as
/// `NewCollector("thanos")`), in the order Go sorts them, with what is true of compactd's
/// build. See [`ThanosBuildLabels::of_this_build`].
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ThanosBuildLabels {
    /// The branch built, from `COMPACTD_BRANCH` at build time, else `unknown`.
    pub branch: &'static str,
    /// The target architecture in Go's spelling (`amd64`, `arm64`, ...; Rust's name for
    /// those Go has no name for).
    pub goarch: &'static str,
    /// The target operating system in Go's spelling (`linux`, `darwin`, ...).
    pub goos: &'static str,
    /// The Rust compiler that built compactd (it has no Go version), from
    /// `COMPACTD_RUSTC_VERSION` at build time, else `unknown`.
    pub goversion: &'static str,
    /// The commit built, from `COMPACTD_REVISION` at build time, else `unknown` (what Go's
    /// collector says without VCS information).
    pub revision: &'static str,
    /// `debug_assertions` in a build with debug assertions (a debug profile), else empty: the
    /// nearest thing to Go's build tags.
    pub tags: &'static str,
    /// The crate version, as in `compactd_build_info`.
    pub version: &'static str,
}

impl ThanosBuildLabels {
    /// The labels of the running binary.
    pub fn of_this_build() -> ThanosBuildLabels {
        ThanosBuildLabels {
            branch: option_env!("COMPACTD_BRANCH").unwrap_or(UNKNOWN),
            goarch: go_arch(std::env::consts::ARCH),
            goos: go_os(std::env::consts::OS),
            goversion: option_env!("COMPACTD_RUSTC_VERSION").unwrap_or(UNKNOWN),
            revision: option_env!("COMPACTD_REVISION").unwrap_or(UNKNOWN),
            tags: if cfg!(debug_assertions) {
                "debug_assertions"
            } else {
                ""
            },
            version: env!("CARGO_PKG_VERSION"),
        }
    }
}

/// The value of a build label nobody set, as Go's version collector writes it.
const UNKNOWN: &str = "unknown";

/// `GOARCH` of a Rust `target_arch` (`std::env::consts::ARCH`).
fn go_arch(rust_arch: &'static str) -> &'static str {
    match rust_arch {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
        "powerpc64" => "ppc64",
        "loongarch64" => "loong64",
        other => other,
    }
}

/// `GOOS` of a Rust `target_os` (`std::env::consts::OS`).
fn go_os(rust_os: &'static str) -> &'static str {
    match rust_os {
        "macos" => "darwin",
        other => other,
    }
}
