//! Tidy: the core's purity and size, enforced (issue 16; `docs/architecture.md`, "Purity of
//! the core, enforced").
//!
//! `src/core` is a sans-IO state machine: the same code runs in production, in the simulation
//! and in trace replay, and `Node::step(now, input)` must give the same outputs for the same
//! state and input, bit for bit. Convention alone does not keep it so, so this test reads
//! every `.rs` file under `src/core` (tests included: one rule set for the whole core, but
//! for printing) and fails on:
//! - **banned code** (`policy::RULES`): clocks, sleeps, spawning and tokio, async, unseeded
//!   randomness, ULID generation, direct I/O, printing, `HashMap`/`HashSet` order, global
//!   state. Rules match code only: comments, doc comments and the contents of string and char
//!   literals are blanked first (`lex::strip`), so a doc saying "no `Instant::now`" passes;
//! - **imports outside the allow-list** (`policy::ALLOWED`): every `use` path (nested braces
//!   expanded) and every inline path rooted at `crate`, `super`, `std` or a crate name must
//!   stay inside `crate::core` or start with an allowed path;
//! - **size**: a file over 600 lines or a function over 70 (`policy::FILE_LINES_MAX`,
//!   `FN_LINES_MAX`), unless `tests/tidy_exemptions.txt` lists it with its reason. That list only
//!   shrinks: an entry's number is the most it may hold, and an entry that is larger than the
//!   item, or names an item back under the limit or gone, fails too (with the line to write).
//!
//! The checker is a function over `(path, contents)` pairs (`check::check`), so the self-tests
//! below feed it the acceptance cases (`Instant::now()`, `tokio::spawn`, `HashMap` in a core
//! file) without touching the tree. Clippy's disallowed-methods lists were not used: clippy
//! configuration applies to the whole crate, and the driver and adapters legitimately use
//! clocks, tokio and files.

#[path = "tidy/check.rs"]
mod check;
#[path = "tidy/lex.rs"]
mod lex;
#[path = "tidy/policy.rs"]
mod policy;
#[path = "tidy/walk.rs"]
mod walk;

use std::path::{Path, PathBuf};

use check::check;
use policy::{ALLOWED, EXEMPTIONS_PATH, FILE_LINES_MAX, FN_LINES_MAX, RULES};

/// Every `.rs` file under `dir`, as (path relative to the repository root, contents), sorted.
fn read_tree(root: &Path, dir: &Path, out: &mut Vec<(String, String)>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            read_tree(root, &path, out);
        } else if path.extension().is_some_and(|x| x == "rs") {
            let rel = path.strip_prefix(root).expect("under the root");
            let rel = rel.to_string_lossy().replace('\\', "/");
            let text = std::fs::read_to_string(&path).expect("a UTF-8 source file");
            out.push((rel, text));
        }
    }
}

#[test]
fn core_is_pure_and_small() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    read_tree(root, &root.join("src/core"), &mut files);
    // A moved directory must not make this test pass vacuously.
    assert!(
        files.iter().any(|(p, _)| p == "src/core/node.rs"),
        "tidy found no src/core/node.rs under {}",
        root.display()
    );
    let exemptions = std::fs::read_to_string(root.join(EXEMPTIONS_PATH))
        .unwrap_or_else(|e| panic!("reading {EXEMPTIONS_PATH}: {e}"));
    let problems = check(&files, &exemptions);
    assert!(
        problems.is_empty(),
        "tidy: {} problem(s) in src/core (policy: tests/tidy/policy.rs, {EXEMPTIONS_PATH}, \
         docs/architecture.md \"Purity of the core, enforced\"):\n{}\n",
        problems.len(),
        problems.join("\n")
    );
}

/// Issue 16's acceptance, in memory: a clock read, a spawn or a `HashMap` appended to any
/// real core file fails naming its rule (the tree on disk is not touched).
#[test]
fn a_clock_spawn_or_hashmap_in_any_core_file_fails() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    read_tree(root, &root.join("src/core"), &mut files);
    let exemptions = std::fs::read_to_string(root.join(EXEMPTIONS_PATH)).unwrap_or_default();
    let before = check(&files, &exemptions);
    let probes = [
        ("clock", "let t = std::time::Instant::now();"),
        ("spawn", "tokio::spawn(async {});"),
        ("hash-order", "let m: HashMap<u8, u8> = HashMap::new();"),
    ];
    for k in 0..files.len() {
        for (rule, code) in probes {
            let mut tree = files.clone();
            let text = &mut tree[k].1;
            text.push_str(&format!("\nfn tidy_probe() {{\n    {code}\n}}\n"));
            let line = text.lines().count() - 1;
            let path = &files[k].0;
            let after = check(&tree, &exemptions);
            let want = format!("{path}:{line}: rule {rule}: ");
            let new: Vec<&String> = after.iter().filter(|p| !before.contains(p)).collect();
            assert!(new.iter().any(|p| p.starts_with(&want)), "{want}: {new:#?}");
        }
    }
}

// ---- Self-tests: the checker on small inputs. ----

/// The problems `check` finds in one core file with no exemptions.
fn problems(path: &str, code: &str) -> Vec<String> {
    check(&[(path.to_string(), code.to_string())], "")
}

/// Asserts that `code` in `path` fails, and that one message names `rule` and contains `needle`.
fn fails(path: &str, code: &str, rule: &str, needle: &str) {
    let found = problems(path, code);
    assert!(
        found
            .iter()
            .any(|p| p.contains(&format!(": rule {rule}: ")) && p.contains(needle)),
        "expected rule {rule} ({needle:?}) for {code:?}, got {found:#?}"
    );
}

/// Asserts that `code` passes in a core file.
fn passes(code: &str) {
    let found = problems("src/core/x.rs", code);
    assert!(
        found.is_empty(),
        "expected {code:?} to pass, got {found:#?}"
    );
}

#[test]
fn the_acceptance_cases_fail_naming_their_rule() {
    for path in [
        "src/core/x.rs",
        "src/core/leader/tests.rs",
        "src/core/plan/mod.rs",
    ] {
        let clock = "fn f() {\n    let t = std::time::Instant::now();\n}\n";
        fails(path, clock, "clock", &format!("{path}:2: rule clock: "));
        fails(
            path,
            "fn f() {\n    tokio::spawn(async {});\n}\n",
            "spawn",
            ":2:",
        );
        fails(path, "fn f() { tokio::spawn(async {}); }", "async", "async");
        fails(
            path,
            "use std::collections::HashMap;\n",
            "hash-order",
            "HashMap",
        );
        fails(
            path,
            "struct S { m: HashMap<u64, u64> }",
            "hash-order",
            "HashMap",
        );
    }
}

#[test]
fn each_rule_catches_its_examples() {
    let cases = [
        ("clock", "use std::time::{Duration, Instant};"),
        ("clock", "let t = SystemTime::now();"),
        ("sleep", "std::thread::sleep(d);"),
        ("sleep", "tokio::time::sleep(d).await;"),
        ("spawn", "let h = std::thread::spawn(|| 1);"),
        ("spawn", "use tokio::sync::mpsc;"),
        ("async", "async fn f() {}"),
        ("async", "x.await;"),
        ("rng", "let r = rand::thread_rng();"),
        ("rng", "let s = RandomState::new();"),
        ("ulid", "let id = Ulid::new();"),
        ("ulid", "let id = ulid::Ulid::generate();"),
        ("io", "let f = std::fs::read(p);"),
        ("io", "use std::{fs, io};"),
        ("io", "let v = std::env::var(\"X\");"),
        ("print", "println!(\"{x}\");"),
        ("print", "mod a { fn f() { dbg!(1); } }"),
        ("io", "let m = BlockMeta::read_dir(dir);"),
        ("hash-order", "use std::collections::{BTreeMap, HashSet};"),
        ("global-state", "static mut N: u64 = 0;"),
        ("global-state", "thread_local! { static N: u64 = 0; }"),
    ];
    for (rule, code) in cases {
        fails("src/core/x.rs", code, rule, "src/core/x.rs:1: ");
    }
    for rule in RULES {
        assert!(
            !rule.reason.is_empty() && !rule.patterns.is_empty(),
            "{}",
            rule.name
        );
    }
}

#[test]
fn test_code_may_print_but_nothing_else() {
    assert!(problems("src/core/x/tests.rs", "fn f() { eprintln!(\"{}\", 1); }").is_empty());
    passes("fn f() {}\n#[cfg(test)]\nmod tests {\n    fn g() { println!(\"x\"); }\n}\n");
    fails(
        "src/core/x.rs",
        "mod tests {}\nfn g() { println!(\"x\"); }",
        "print",
        ":2:",
    );
    fails(
        "src/core/x/tests.rs",
        "fn f() { let m = HashMap::new(); }",
        "hash-order",
        "",
    );
}

#[test]
fn comments_strings_and_chars_are_not_code() {
    passes("// Instant::now in a comment\nfn f() {}\n");
    passes("/// no `Instant::now`, no `tokio::spawn`\n//! no HashMap\nfn f() {}\n");
    passes("/* HashMap /* nested */ tokio::spawn */ fn f() {}");
    passes("fn f() -> &'static str { \"HashMap\" }");
    passes("fn f() -> &'static str { \"a \\\" HashMap \\\\\" }");
    passes("fn f() -> &'static str { r#\"tokio::spawn(\"quoted\")\"# }");
    passes("fn f() -> &'static [u8] { br\"std::fs\" }");
    passes("fn f(x: char) -> bool { x == '\"' || x == '\\'' || x == '{' }");
    // The lexer must not swallow the code after a char literal or a lifetime.
    fails(
        "src/core/x.rs",
        "fn f() { let q = '\"'; let m = HashSet::new(); }",
        "hash-order",
        "",
    );
    let lifetime = "fn f<'a>(x: &'a str) -> &'a str { x }\nstruct S { m: HashMap<u8, u8> }";
    fails("src/core/x.rs", lifetime, "hash-order", "x.rs:2:");
    let raw = "const A: &str = r#\"\"#; fn f() { std::process::exit(1) }";
    fails("src/core/x.rs", raw, "io", "x.rs:1:");
}

#[test]
fn imports_must_be_in_the_allow_list() {
    passes(
        "use std::collections::{BTreeMap, BTreeSet, VecDeque};\nuse std::fmt::{self, Write as _};",
    );
    passes("use crate::tsdb::meta::{BlockMeta, ThanosMeta};\nuse crate::rng::Rng;");
    passes("use super::types::Millis;\nuse crate::core::view::BucketView;\nuse serde::Serialize;");
    passes("fn f() { let v = serde_json::json!({}); let m = std::mem::take(&mut 1); }");
    passes("mod tests {\n    use super::*;\n    use proptest::prelude::*;\n}");
    let x = "src/core/x.rs";
    fails(
        x,
        "use crate::tsdb::block::BlockReader;",
        "import",
        "crate::tsdb::block::BlockReader",
    );
    fails(
        x,
        "use crate::tsdb::meta::*;",
        "import",
        "crate::tsdb::meta::*",
    );
    fails(x, "use crate::tsdb::meta;", "import", "crate::tsdb::meta");
    fails(
        x,
        "use std::{fmt, path::Path};",
        "import",
        "std::path::Path",
    );
    fails(
        x,
        "use crate::{rng::Rng, driver::{Driver}};",
        "import",
        "crate::driver::Driver",
    );
    fails(
        x,
        "fn f() { crate::driver::run(); }",
        "import",
        "crate::driver::run",
    );
    fails(
        x,
        "fn f() -> u64 { md5::compute(b).len() }",
        "import",
        "md5::compute",
    );
    fails(x, "use regex::Regex;", "import", "regex::Regex");
    let escape = "use super::super::super::driver::Driver;";
    fails(
        "src/core/cycle/pass.rs",
        escape,
        "import",
        "crate::driver::Driver",
    );
}

#[test]
fn relative_paths_resolve_from_the_files_module() {
    let inside = "use super::super::plan::GroupKey;";
    assert!(problems("src/core/cycle/pass.rs", inside).is_empty());
    let nested =
        "mod tests {\n    mod deeper {\n        use super::super::super::types::Millis;\n    }\n}";
    assert!(problems("src/core/cycle.rs", nested).is_empty());
    let out = "mod tests {\n    use super::super::super::driver::Driver;\n}";
    fails(
        "src/core/node.rs",
        out,
        "import",
        "src/core/node.rs:2: rule import: ",
    );
}

/// A function of `lines` lines (from `fn` to its closing brace) named `name`.
fn function(name: &str, lines: usize) -> String {
    let body = "    let x = 1;\n".repeat(lines - 2);
    format!("fn {name}() {{\n{body}}}\n")
}

#[test]
fn functions_over_the_limit_need_an_exemption() {
    let x = "src/core/x.rs";
    assert_eq!(FN_LINES_MAX, 70);
    passes(&function("small", 70));
    let big = function("big", 71);
    fails(x, &big, "fn-size", "fn src/core/x.rs:big 71 -- <why>");
    let files = [(x.to_string(), big.clone())];
    assert!(check(
        &files,
        "fn src/core/x.rs:big 71 -- one match over the whole protocol\n"
    )
    .is_empty());
    let grown = check(&files, "fn src/core/x.rs:big 70 -- reason\n");
    assert!(
        grown
            .iter()
            .any(|p| p.contains("rule fn-size") && p.contains("grew")),
        "{grown:#?}"
    );
    let loose = check(&files, "fn src/core/x.rs:big 80 -- reason\n");
    let tighten = "write `fn src/core/x.rs:big 71 -- reason`";
    assert!(loose.iter().any(|p| p.contains(tighten)), "{loose:#?}");
    let gone = check(
        &files,
        "fn src/core/x.rs:big 71 -- r\nfn src/core/x.rs:old 90 -- r\n",
    );
    assert!(
        gone.iter().any(|p| p.contains(":2: rule exemption: ")),
        "{gone:#?}"
    );
    let in_impl = format!(
        "struct S;\nimpl<'a> std::fmt::Debug for S {{\n{}}}\n",
        function("fmt", 71)
    );
    fails(x, &in_impl, "fn-size", "fn src/core/x.rs:S::fmt 71");
    let shrunk = [(x.to_string(), function("big", 60))];
    let stale = check(&shrunk, "fn src/core/x.rs:big 71 -- reason\n");
    assert!(
        stale.iter().any(|p| p.contains("delete this line")),
        "{stale:#?}"
    );
}

#[test]
fn files_over_the_limit_need_an_exemption() {
    let long = "const A: u8 = 1;\n".repeat(FILE_LINES_MAX + 1);
    let files = [("src/core/x.rs".to_string(), long)];
    let none = check(&files, "");
    assert!(
        none.iter()
            .any(|p| p.contains("file src/core/x.rs 601 -- <why>")),
        "{none:#?}"
    );
    assert!(check(&files, "# why\nfile src/core/x.rs 601 -- one table\n").is_empty());
    let bad = check(&files, "file src/core/x.rs 601\n");
    assert!(bad.iter().any(|p| p.contains("rule exemption")), "{bad:#?}");
}

#[test]
fn the_allow_list_gives_reasons() {
    for (path, why) in ALLOWED {
        assert!(!why.is_empty(), "{path}");
    }
    assert_eq!(lex::strip("a /* b */ 'c' \"d\" e"), "a         ' ' \" \" e");
}
