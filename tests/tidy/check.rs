//! The checker: rules, imports and sizes over `(path, contents)` pairs, judged against the
//! exemption list. Policy (what is banned, allowed and exempt) lives in `policy.rs` and
//! `tests/tidy_exemptions.txt`; this module only applies it.

use std::collections::BTreeSet;

use super::lex::{self, is_ident_char};
use super::policy::{ALLOWED, EXEMPTIONS_PATH, FILE_LINES_MAX, FN_LINES_MAX, RULES};
use super::walk::{self, Facts, PathRef};

/// Primitive types, which may root a path (`u64::MAX`).
const PRIMITIVES: &[&str] = &[
    "bool", "char", "str", "u8", "u16", "u32", "u64", "u128", "usize", "i8", "i16", "i32", "i64",
    "i128", "isize", "f32", "f64",
];

/// One finding, printed as `file:line: rule <name>: <reason>: <text>`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Problem {
    file: String,
    line: usize,
    rule: String,
    reason: String,
    text: String,
}

impl Problem {
    fn new(file: &str, line: usize, rule: &str, reason: String, text: &str) -> Self {
        Problem {
            file: file.to_string(),
            line,
            rule: rule.to_string(),
            reason,
            text: text.trim().to_string(),
        }
    }

    fn render(&self) -> String {
        let (file, line, rule) = (&self.file, self.line, &self.rule);
        format!("{file}:{line}: rule {rule}: {}: {}", self.reason, self.text)
    }
}

/// One line of the exemption list: `<kind> <target> <arg> -- <reason>`.
struct Entry {
    line: usize,
    raw: String,
    kind: String,
    target: String,
    arg: String,
    reason: String,
}

/// A file after lexing.
struct Parsed {
    path: String,
    lines: Vec<String>,
    code_lines: Vec<String>,
    facts: Facts,
}

/// Checks the files (paths relative to the repository root, all under `src/core`) against
/// the rules, the allow-list and the size limits with `exemptions` (the text of
/// `tests/tidy_exemptions.txt`). Returns one message per problem; empty means clean.
pub fn check(files: &[(String, String)], exemptions: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let entries = parse_exemptions(exemptions, &mut problems);
    let parsed: Vec<Parsed> = files.iter().map(|(p, t)| parse(p, t)).collect();
    let locals = local_names(&parsed);
    let mut used = vec![false; entries.len()];
    for file in &parsed {
        let flagged = rule_problems(file, &mut problems);
        import_problems(file, &locals, &flagged, &entries, &mut used, &mut problems);
    }
    let items = items(&parsed);
    oversized(&items, &entries, &mut problems);
    stale_sizes(&items, &entries, &mut problems);
    let unused = entries
        .iter()
        .zip(used)
        .filter(|(e, used)| !used && e.kind == "import");
    for (entry, _) in unused {
        let reason = "stale: the core no longer imports this; delete this line".to_string();
        let (line, raw) = (entry.line, &entry.raw);
        problems.push(Problem::new(
            EXEMPTIONS_PATH,
            line,
            "exemption",
            reason,
            raw,
        ));
    }
    problems.sort();
    problems.dedup();
    problems.iter().map(Problem::render).collect()
}

fn parse(path: &str, text: &str) -> Parsed {
    let code = lex::strip(text);
    let facts = walk::walk(path, &lex::tokenize(&code));
    Parsed {
        path: path.to_string(),
        lines: text.lines().map(str::to_string).collect(),
        code_lines: code.lines().map(str::to_string).collect(),
        facts,
    }
}

/// Names that root a path inside the core: its modules and whatever a `use` brought in
/// (that `use` is checked itself).
fn local_names(parsed: &[Parsed]) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for file in parsed {
        names.extend(walk::module_of(&file.path).into_iter().skip(2));
        names.extend(file.facts.names.iter().cloned());
    }
    names
}

/// True when `pattern` occurs in `code` as whole tokens: an end that is an identifier
/// character must not continue an identifier.
fn occurs(code: &str, pattern: &str) -> bool {
    let first = pattern.starts_with(is_ident_char);
    let last = pattern.ends_with(is_ident_char);
    code.match_indices(pattern).any(|(k, _)| {
        let before = code[..k].chars().next_back().is_some_and(is_ident_char);
        let after = code[k + pattern.len()..]
            .chars()
            .next()
            .is_some_and(is_ident_char);
        let cut = (first && before) || (last && after);
        !cut
    })
}

/// Code with whitespace runs collapsed and none around `::`.
fn normalize(code: &str) -> String {
    let joined = code.split_whitespace().collect::<Vec<_>>().join(" ");
    joined.replace(" ::", "::").replace(":: ", "::")
}

/// Applies [`RULES`] to each line of code and to each expanded `use` path (so
/// `use std::{fs, io}` counts as `std::fs`). Returns the lines that broke a rule.
fn rule_problems(file: &Parsed, out: &mut Vec<Problem>) -> BTreeSet<usize> {
    let mut seen = BTreeSet::new();
    let uses = file.facts.paths.iter().filter(|p| p.is_use);
    let use_code = uses.map(|p| (p.line, p.segs.join("::")));
    let line_code = file
        .code_lines
        .iter()
        .enumerate()
        .map(|(n, l)| (n + 1, normalize(l)));
    let in_tests = |line: usize| {
        let spans = &file.facts.test_spans;
        walk::module_of(&file.path).iter().any(|m| m == "tests")
            || spans.iter().any(|&(a, b)| (a..=b).contains(&line))
    };
    for (line, code) in line_code.chain(use_code) {
        for rule in RULES.iter().filter(|r| r.in_tests || !in_tests(line)) {
            let hit = rule.patterns.iter().any(|p| occurs(&code, p));
            if hit && seen.insert((line, rule.name)) {
                let text = file.lines.get(line - 1).map_or("", String::as_str);
                let reason = rule.reason.to_string();
                out.push(Problem::new(&file.path, line, rule.name, reason, text));
            }
        }
    }
    seen.into_iter().map(|(line, _)| line).collect()
}

/// Flags each path outside the allow-list, unless its line already broke a rule (one
/// message per mistake) or an `import` exemption covers it.
fn import_problems(
    file: &Parsed,
    locals: &BTreeSet<String>,
    flagged: &BTreeSet<usize>,
    entries: &[Entry],
    used: &mut [bool],
    out: &mut Vec<Problem>,
) {
    for path in &file.facts.paths {
        let Err(shown) = resolve(path, locals) else {
            continue;
        };
        if flagged.contains(&path.line) {
            continue;
        }
        let exempt = entries.iter().position(|e| {
            e.kind == "import" && e.target == file.path && starts_with(&shown, &e.arg)
        });
        if let Some(k) = exempt {
            used[k] = true;
            continue;
        }
        let reason = format!(
            "`{shown}` is outside the core's allow-list (ALLOWED in tests/tidy/policy.rs): the core \
             may use only itself, pure data and functions, and std's deterministic parts"
        );
        let text = file.lines.get(path.line - 1).map_or("", String::as_str);
        out.push(Problem::new(&file.path, path.line, "import", reason, text));
    }
}

/// True when the path `shown` starts with the path `prefix`, segment by segment.
fn starts_with(shown: &str, prefix: &str) -> bool {
    let shown: Vec<&str> = shown.split("::").filter(|s| *s != "*").collect();
    let prefix: Vec<&str> = prefix.split("::").collect();
    shown.len() >= prefix.len() && shown[..prefix.len()] == prefix[..]
}

/// `Ok` when the path stays in the core or is allowed; else `Err` with the path as resolved
/// (`super::` made absolute, `core::`/`alloc::` written as `std::`).
fn resolve(path: &PathRef, locals: &BTreeSet<String>) -> Result<(), String> {
    let segs = &path.segs;
    let root = segs[0].as_str();
    let external = |name: &str| {
        ALLOWED
            .iter()
            .any(|(p, _)| p.split("::").next() == Some(name))
    };
    let absolute: Vec<String> = match root {
        "self" => return Ok(()),
        "crate" => segs.clone(),
        "super" => {
            let ups = segs.iter().take_while(|s| *s == "super").count();
            if ups >= path.module.len() {
                return Err(segs.join("::"));
            }
            let base = path.module[..path.module.len() - ups].iter();
            base.chain(&segs[ups..]).cloned().collect()
        }
        "std" | "core" | "alloc" => std::iter::once("std".to_string())
            .chain(segs[1..].iter().cloned())
            .collect(),
        _ if external(root) => segs.clone(),
        _ if root.starts_with(char::is_uppercase) => return Ok(()),
        _ if PRIMITIVES.contains(&root) || locals.contains(root) => return Ok(()),
        _ => return Err(segs.join("::")),
    };
    let shown = absolute.join("::");
    let inside = starts_with(&shown, "crate::core");
    if inside || ALLOWED.iter().any(|(p, _)| starts_with(&shown, p)) {
        Ok(())
    } else {
        Err(shown)
    }
}

/// A file or function that the size limits apply to.
struct Item<'a> {
    kind: &'static str,
    target: String,
    file: &'a str,
    line: usize,
    lines: usize,
    limit: usize,
    text: &'a str,
}

/// Every file and function, with its length (a name defined twice keeps the longer).
fn items(parsed: &[Parsed]) -> Vec<Item<'_>> {
    let mut items = Vec::new();
    for f in parsed {
        items.push(Item {
            kind: "file",
            target: f.path.clone(),
            file: &f.path,
            line: 1,
            lines: f.lines.len(),
            limit: FILE_LINES_MAX,
            text: "(the whole file)",
        });
        let mut fns = f.facts.fns.clone();
        fns.sort_by_key(|s| (s.name.clone(), std::cmp::Reverse(s.lines)));
        fns.dedup_by(|a, b| a.name == b.name);
        for s in fns {
            items.push(Item {
                kind: "fn",
                target: format!("{}:{}", f.path, s.name),
                file: &f.path,
                line: s.line,
                lines: s.lines,
                limit: FN_LINES_MAX,
                text: f.lines.get(s.line - 1).map_or("", String::as_str),
            });
        }
    }
    items
}

/// Items over their limit without a large enough exemption.
fn oversized(items: &[Item], entries: &[Entry], out: &mut Vec<Problem>) {
    for item in items.iter().filter(|i| i.lines > i.limit) {
        let (kind, target, lines, limit) = (item.kind, &item.target, item.lines, item.limit);
        let entry = entries
            .iter()
            .find(|e| e.kind == kind && &e.target == target);
        let reason = match entry.map(|e| (e.line, e.arg.parse::<usize>().unwrap_or(0))) {
            None => format!(
                "{lines} lines, over the limit of {limit}: shorten it, or add \
                 `{kind} {target} {lines} -- <why>` to {EXEMPTIONS_PATH}"
            ),
            Some((at, max)) if max < lines => format!(
                "grew to {lines} lines, past its exemption of {max} ({EXEMPTIONS_PATH}:{at}): \
                 shorten it; the list only shrinks"
            ),
            Some(_) => continue,
        };
        let rule = format!("{kind}-size");
        out.push(Problem::new(item.file, item.line, &rule, reason, item.text));
    }
}

/// Size exemptions that are stale: the item is gone, back under its limit, or shorter than
/// the entry's number (the list only shrinks, so it must follow).
fn stale_sizes(items: &[Item], entries: &[Entry], out: &mut Vec<Problem>) {
    for e in entries.iter().filter(|e| e.kind != "import") {
        let found = items
            .iter()
            .find(|i| i.kind == e.kind && i.target == e.target);
        let max = e.arg.parse::<usize>().unwrap_or(0);
        let reason = match found {
            None => format!(
                "stale: no {} {} in src/core; delete this line",
                e.kind, e.target
            ),
            Some(i) if i.lines <= i.limit => format!(
                "stale: now {} lines, within the limit of {}; delete this line",
                i.lines, i.limit
            ),
            Some(i) if max > i.lines => format!(
                "stale: shrank to {} lines; tighten it, write `{} {} {} -- {}`",
                i.lines, e.kind, e.target, i.lines, e.reason
            ),
            Some(_) => continue,
        };
        out.push(Problem::new(
            EXEMPTIONS_PATH,
            e.line,
            "exemption",
            reason,
            &e.raw,
        ));
    }
}

/// Parses the exemption list; malformed and duplicate lines become problems.
fn parse_exemptions(text: &str, out: &mut Vec<Problem>) -> Vec<Entry> {
    let mut entries: Vec<Entry> = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let (line, trimmed) = (n + 1, raw.trim());
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let bad = |why: &str| {
            let reason = format!(
                "{why}; expected `file PATH LINES -- why`, `fn PATH:NAME LINES -- why` or \
                 `import PATH RUST_PATH -- why`"
            );
            Problem::new(EXEMPTIONS_PATH, line, "exemption", reason, raw)
        };
        let Some((head, reason)) = trimmed.split_once(" -- ") else {
            out.push(bad("no ` -- <reason>`"));
            continue;
        };
        let words: Vec<&str> = head.split_whitespace().collect();
        let numeric = words.get(2).is_some_and(|w| w.parse::<usize>().is_ok());
        let well_formed = match words.first() {
            Some(&"file") | Some(&"fn") => words.len() == 3 && numeric,
            Some(&"import") => words.len() == 3,
            _ => false,
        };
        if !well_formed || reason.trim().is_empty() {
            out.push(bad("malformed entry"));
            continue;
        }
        let (kind, target, arg) = (words[0], words[1], words[2]);
        let same = |e: &Entry| e.kind == kind && e.target == target;
        if entries
            .iter()
            .any(|e| same(e) && (kind != "import" || e.arg == arg))
        {
            out.push(bad("duplicate entry"));
            continue;
        }
        entries.push(Entry {
            line,
            raw: raw.to_string(),
            kind: kind.to_string(),
            target: target.to_string(),
            arg: arg.to_string(),
            reason: reason.trim().to_string(),
        });
    }
    entries
}
