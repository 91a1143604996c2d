//! The tidy test's policy: the size limits, the banned constructs and the allow-list of
//! what the core may name outside itself. Change it here, with the reason beside the entry;
//! `check.rs` only applies it.

/// The exemption list, relative to the repository root.
pub const EXEMPTIONS_PATH: &str = "tests/tidy_exemptions.txt";
/// A file under `src/core` may have this many lines without an exemption.
pub const FILE_LINES_MAX: usize = 600;
/// A function (from its `fn` line to its closing brace) may have this many lines without an
/// exemption (TigerBeetle's limit: a function fits on a screen).
pub const FN_LINES_MAX: usize = 70;

/// A banned construct: its name, why the core may not use it, and the code that shows it;
/// `in_tests` is false for the one rule that test code may break (printing). A pattern
/// matches whole tokens (`spawn` does not match `respawned`), after whitespace
/// around `::` is removed; it is matched against each line of code and each expanded `use`
/// path.
pub struct Rule {
    pub name: &'static str,
    pub reason: &'static str,
    pub patterns: &'static [&'static str],
    pub in_tests: bool,
}

/// What the core may not contain, anywhere under `src/core`. Tests are included (a test that
/// reads the clock or iterates a `HashMap` is as irreproducible as the code it tests), except
/// for `print`: test code is `tests.rs` files and inline `mod tests` blocks.
pub const RULES: &[Rule] = &[
    Rule {
        name: "clock",
        reason: "the core reads time only from the `now` passed to `step`; a clock read makes a \
                 step irreproducible in the simulation and in trace replay",
        patterns: &[
            "Instant",
            "SystemTime",
            "UNIX_EPOCH",
            "Utc::now",
            "Local::now",
        ],
        in_tests: true,
    },
    Rule {
        name: "sleep",
        reason:
            "waiting is the driver's job: the core asks for a wake-up with `Output::Timer` and \
                 is stepped with `Input::Tick`",
        patterns: &["sleep", "sleep_until", "thread::sleep", "tokio::time"],
        in_tests: true,
    },
    Rule {
        name: "spawn",
        reason:
            "the core runs in one driver task and on the simulation's single thread: no tokio, \
                 threads or spawned work; heavy work leaves as an `Output` job",
        patterns: &[
            "tokio",
            "spawn",
            "spawn_blocking",
            "spawn_local",
            "std::thread",
            "thread::",
        ],
        in_tests: true,
    },
    Rule {
        name: "async",
        reason: "`step` is synchronous and returns its outputs; awaiting would hide I/O and \
                 scheduling order inside the core",
        patterns: &["async", "await", "futures::", "std::future", "std::task"],
        in_tests: true,
    },
    Rule {
        name: "rng",
        reason:
            "randomness comes from the seeded `crate::rng::Rng` in the core's state, so a seed \
                 reproduces a run",
        patterns: &[
            "rand::",
            "thread_rng",
            "getrandom",
            "RandomState",
            "OsRng",
            "fastrand",
        ],
        in_tests: true,
    },
    Rule {
        name: "ulid",
        reason: "block ids are built from `now` and the seeded RNG (`BlockId::from_parts`); \
                 `Ulid::new` reads the clock and the OS's randomness",
        patterns: &[
            "Ulid::new",
            "Ulid::generate",
            "ulid::Generator",
            "Ulid::from_datetime",
        ],
        in_tests: true,
    },
    Rule {
        name: "io",
        reason: "every I/O result comes in as an `Input` and every request leaves as an `Output`; \
                 direct I/O would bypass the permit, the fence and the trace",
        patterns: &[
            "std::fs",
            "fs::",
            "std::io",
            "std::net",
            "std::process",
            "std::env",
            "std::os",
            "File::open",
            "File::create",
            "OpenOptions",
            "TcpStream",
            "UdpSocket",
            "stdin",
            "stdout",
            "stderr",
            // `BlockMeta` is allowed data, but these two methods read and write meta.json.
            "read_dir",
            "write_dir",
        ],
        in_tests: true,
    },
    Rule {
        name: "print",
        reason: "the core reports through `Output::Event` and the driver decides what to log \
                 (test code may print: the harness captures it and it changes no output)",
        patterns: &["println!", "eprintln!", "print!", "eprint!", "dbg!"],
        in_tests: false,
    },
    Rule {
        name: "hash-order",
        reason: "`HashMap`/`HashSet` iterate in a per-process random order, so outputs would \
                 differ between runs; use `BTreeMap`/`BTreeSet` or a sorted `Vec`",
        patterns: &["HashMap", "HashSet", "hash_map", "hash_set"],
        in_tests: true,
    },
    Rule {
        name: "global-state",
        reason: "a step depends only on the node's state and its input; statics, thread-locals \
                 and atomics are hidden state shared by every node in a process (the \
                 simulation runs many)",
        patterns: &[
            "static mut",
            "thread_local",
            "atomic::",
            "OnceLock",
            "OnceCell",
            "lazy_static",
        ],
        in_tests: true,
    },
];

/// What the core may name outside itself (`crate::core::...`, `self::` and `super::` within
/// the core are always allowed). A path is allowed when it starts with an entry, segment by
/// segment: `crate::tsdb::meta::BlockMeta` allows `crate::tsdb::meta::BlockMeta::level1` but
/// not `crate::tsdb::meta` or `crate::tsdb::meta::*`. Crate-internal entries name pure data
/// and pure functions only; mixed modules are listed item by item.
pub const ALLOWED: &[(&str, &str)] = &[
    (
        "std::collections::BTreeMap",
        "ordered collections iterate the same way every run",
    ),
    ("std::collections::BTreeSet", "ordered"),
    ("std::collections::VecDeque", "a queue in insertion order"),
    ("std::collections::BinaryHeap", "ordered by its elements"),
    (
        "std::collections::btree_map",
        "BTreeMap's entry and iterator types",
    ),
    ("std::collections::btree_set", "BTreeSet's iterator types"),
    ("std::borrow", "Cow and Borrow: ownership, no effects"),
    ("std::cmp", "ordering"),
    ("std::convert", "conversions"),
    ("std::error", "the Error trait behind thiserror's sources"),
    ("std::f64", "float constants"),
    ("std::fmt", "formatting into strings"),
    (
        "std::hash::Hash",
        "the trait (derives); not DefaultHasher or RandomState",
    ),
    ("std::iter", "iterator adapters"),
    ("std::marker", "marker traits"),
    ("std::mem", "take/replace/swap"),
    ("std::num", "integer types and parse errors"),
    ("std::ops", "operators and ranges"),
    ("std::str", "string parsing"),
    ("std::string", "String"),
    // Arc shares immutable data cheaply and is deterministic; locks, channels and atomics
    // (the rest of std::sync) imply concurrency and are not allowed.
    ("std::sync::Arc", "shared immutable data"),
    ("serde", "derives for the trace and the fence record's JSON"),
    (
        "serde_json",
        "in-memory JSON (the fence record, meta.json's extensions)",
    ),
    ("thiserror", "error derives"),
    (
        "xxhash_rust::xxh64",
        "Thanos' labels hash (xxh64, seed 0): a pure function of bytes",
    ),
    // A dev-dependency: it compiles only in `#[cfg(test)]` code, where it drives the core
    // with generated inputs (its shrinking is test-harness behaviour, not core behaviour).
    ("proptest", "property tests of the core"),
    (
        "crate::bucket::markers",
        "marker structs and their JSON encode/parse over byte slices",
    ),
    ("crate::duration", "duration text <-> milliseconds"),
    (
        "crate::units",
        "time and resolution constants in ms, and the pure resolution ladder",
    ),
    (
        "crate::rng",
        "the seeded SplitMix64 whose state is part of the core's",
    ),
    (
        "crate::timefmt",
        "RFC3339 text <-> Unix milliseconds, pure arithmetic",
    ),
    (
        "crate::tsdb::block_id",
        "the ULID newtype, built from parts; it never calls Ulid::new",
    ),
    // tsdb::meta also reads and writes meta.json (`BlockMeta::read_dir`/`write_dir`, banned by
    // the `io` rule), so its items are listed one by one.
    (
        "crate::tsdb::meta::BlockMeta",
        "meta.json's data; parse/to_json work on bytes",
    ),
    ("crate::tsdb::meta::BlockFile", "data"),
    ("crate::tsdb::meta::BlockStats", "data"),
    ("crate::tsdb::meta::Compaction", "data"),
    ("crate::tsdb::meta::Downsample", "data"),
    ("crate::tsdb::meta::ThanosMeta", "data"),
    ("crate::tsdb::meta::META_FILENAME", "a constant"),
    ("crate::tsdb::meta::META_VERSION", "a constant"),
    ("crate::tsdb::meta::SOURCE_COMPACTOR", "a constant"),
    (
        "crate::tsdb::meta::merge_metas",
        "a pure function of parent metas",
    ),
    // relabel::selector::load_selector reads a file and the environment, so item by item.
    ("crate::relabel::RelabelConfig", "selector rules as data"),
    (
        "crate::relabel::process",
        "applies rules to labels: regex and md5 over strings",
    ),
    ("crate::relabel::selector::BLOCK_ID_LABEL", "a constant"),
    (
        "crate::relabel::selector::parse_selector",
        "parses rules from a YAML string",
    ),
];
