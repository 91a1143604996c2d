//! Relabelling cases after Prometheus' `relabel_test.go` semantics (our own vectors). Expected
//! hashmod values come from Python, not from this code:
//! `int.from_bytes(hashlib.md5(s.encode()).digest()[8:], "big") % m`.

use std::collections::BTreeMap;
use std::path::Path;

use super::selector::{load_selector, parse_selector, SelectorError};
use super::*;

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn run(yaml: &str, input: &[(&str, &str)]) -> Option<BTreeMap<String, String>> {
    let rules = parse_relabel_config(yaml).expect("valid config");
    process(&labels(input), &rules)
}

fn error(yaml: &str) -> String {
    parse_relabel_config(yaml)
        .expect_err("an invalid config")
        .to_string()
}

#[test]
fn defaults_are_prometheus_defaults() {
    let rules = parse_relabel_config("- target_label: x\n").unwrap();
    let rule = &rules[0];
    assert_eq!(rule.action, Action::Replace);
    assert_eq!(rule.separator, ";");
    assert_eq!(rule.regex.as_str(), "(.*)");
    assert_eq!(rule.replacement, "$1");
    assert_eq!(rule.modulus, 0);
    assert!(rule.source_labels.is_empty());
    assert_eq!(parse_relabel_config("").unwrap(), vec![]);
    assert_eq!(parse_relabel_config("# nothing\n").unwrap(), vec![]);
    assert_eq!(parse_relabel_config("[]").unwrap(), vec![]);
}

#[test]
fn scalars_are_strings_and_nulls_are_empty() {
    let rules = parse_relabel_config(
        "- {source_labels: [a], regex: 0, action: keep}\n- {regex: ~, source_labels: [b], action: KEEP}\n- {separator: ~, target_label: t, source_labels: [a, b]}\n",
    )
    .unwrap();
    assert_eq!(rules[0].regex.as_str(), "0");
    assert_eq!(rules[1].regex.as_str(), "");
    assert_eq!(
        rules[1].action,
        Action::Keep,
        "actions are case-insensitive"
    );
    assert_eq!(rules[2].separator, "");
    let out = process(&labels(&[("a", "x"), ("b", "y")]), &rules[2..]).unwrap();
    assert_eq!(out["t"], "xy");
    assert!(error("- {action: ~}").contains("rule 1: action: must not be empty"));
}

#[test]
fn keep_and_drop_match_the_whole_value() {
    let input = [("a", "foo"), ("b", "bar")];
    assert!(run("- {source_labels: [a], regex: f, action: keep}", &input).is_none());
    assert!(run("- {source_labels: [a], regex: 'f.*', action: keep}", &input).is_some());
    assert!(run("- {source_labels: [a], regex: 'o+', action: drop}", &input).is_some());
    assert!(run(
        "- {source_labels: [a, b], regex: 'foo;bar', action: drop}",
        &input
    )
    .is_none());
    // `.` matches a newline ((?s)), and a missing label joins as an empty value.
    assert!(run(
        "- {source_labels: [n], regex: 'a.b', action: keep}",
        &[("n", "a\nb")]
    )
    .is_some());
    assert!(run(
        "- {source_labels: [a, z], regex: 'foo;', action: keep}",
        &input
    )
    .is_some());
    // A `^`/`$` of the user's is harmless inside the anchoring.
    assert!(run(
        "- {source_labels: [a], regex: '^foo$', action: keep}",
        &input
    )
    .is_some());
}

#[test]
fn replace_expands_like_go() {
    let input = [("a", "foo"), ("b", "bar")];
    let one = |yaml: &str| run(yaml, &input).unwrap();
    let out =
        one("- {source_labels: [a], regex: 'f(o+)', target_label: d, replacement: 'x-$1-${1}y'}");
    assert_eq!(out["d"], "x-oo-ooy");
    let out = one(
        "- {source_labels: [a], regex: 'f(?P<rest>o+)', target_label: d, replacement: '${rest}$$'}",
    );
    assert_eq!(out["d"], "oo$");
    // `$1x` names group `1x` (empty); `${1` is malformed and stays as text; `$01` is a name.
    let out = one(
        "- {source_labels: [a], regex: 'f(o+)', target_label: d, replacement: '[$1x][${1][$01]'}",
    );
    assert_eq!(out["d"], "[][${1][]");
    // The target label may use groups; no match changes nothing.
    let out = one(
        "- {source_labels: [a, b], regex: '(.*);(.*)', target_label: 'l_${2}', replacement: '$1'}",
    );
    assert_eq!(out["l_bar"], "foo");
    assert_eq!(
        one("- {source_labels: [a], regex: 'x', target_label: d}"),
        labels(&input)
    );
    // An empty replacement deletes the target.
    let out = one("- {source_labels: [z], target_label: a, replacement: ''}");
    assert!(!out.contains_key("a"));
    let out = one("- {target_label: c, replacement: fixed}");
    assert_eq!(out["c"], "fixed");
}

#[test]
fn hashmod_matches_independently_computed_values() {
    // Python: "baz" % 1000 = 976 (also Prometheus' own vector), "foo" % 1000 = 696,
    // "bar;baz" % 1000 = 82, "" % 7 = 1, "foo" % (2^64-1) = 17145033699835028696.
    assert_eq!(hashmod("baz", 1000), 976);
    assert_eq!(hashmod("foo", 1000), 696);
    assert_eq!(hashmod("", 7), 1);
    assert_eq!(hashmod("foo", u64::MAX), 17_145_033_699_835_028_696);
    let out = run(
        "- {source_labels: [b, c], target_label: h, modulus: 1000, action: hashmod}",
        &[("b", "bar"), ("c", "baz")],
    )
    .unwrap();
    assert_eq!(out["h"], "82");
}

#[test]
fn hashmod_then_keep_then_labeldrop_shards() {
    let yaml = "- {source_labels: [c], target_label: __tmp_hash, modulus: 2, action: hashmod}\n- {source_labels: [__tmp_hash], regex: 1, action: keep}\n- {regex: __tmp_hash, action: labeldrop}\n";
    // Python: "cluster-03" % 2 = 1, "eu-1" % 2 = 0.
    let kept = run(yaml, &[("c", "cluster-03")]).unwrap();
    assert_eq!(kept, labels(&[("c", "cluster-03")]));
    assert!(run(yaml, &[("c", "eu-1")]).is_none());
}

#[test]
fn label_actions() {
    let input = [("a", "1"), ("b_x", "2"), ("b_y", "3")];
    let out = run(
        "- {regex: 'b_(.*)', replacement: 'm_$1', action: labelmap}",
        &input,
    )
    .unwrap();
    assert_eq!(
        out,
        labels(&[
            ("a", "1"),
            ("b_x", "2"),
            ("b_y", "3"),
            ("m_x", "2"),
            ("m_y", "3")
        ])
    );
    // Two labels mapped to one name: the later one in walk order wins.
    let out = run(
        "- {regex: 'b_.*', replacement: m, action: labelmap}",
        &input,
    )
    .unwrap();
    assert_eq!(out["m"], "3");
    let out = run("- {regex: 'b_.*', action: labeldrop}", &input).unwrap();
    assert_eq!(out, labels(&[("a", "1")]));
    let out = run("- {regex: 'b_.*', action: labelkeep}", &input).unwrap();
    assert_eq!(out, labels(&[("b_x", "2"), ("b_y", "3")]));
    // Every label dropped leaves an empty set, not a dropped one.
    assert_eq!(
        run("- {regex: '.*', action: labeldrop}", &input),
        Some(BTreeMap::new())
    );
}

#[test]
fn case_and_equality_actions() {
    let input = [("a", "FoO-ß-İ"), ("b", "foo"), ("c", "foo")];
    let out = run("- {source_labels: [a], target_label: l, action: lowercase}\n- {source_labels: [a], target_label: u, action: uppercase}", &input).unwrap();
    // Go maps one character to one: ß has no one-character upper case, İ lowers to i.
    assert_eq!(out["l"], "foo-ß-i");
    assert_eq!(out["u"], "FOO-ß-İ");
    assert!(run(
        "- {source_labels: [b], target_label: c, action: keepequal}",
        &input
    )
    .is_some());
    assert!(run(
        "- {source_labels: [a], target_label: c, action: keepequal}",
        &input
    )
    .is_none());
    assert!(run(
        "- {source_labels: [b], target_label: c, action: dropequal}",
        &input
    )
    .is_none());
    assert!(run(
        "- {source_labels: [a], target_label: c, action: dropequal}",
        &input
    )
    .is_some());
}

#[test]
fn regexes_are_re2_as_go_reads_them() {
    let matches = |regex: &str, text: &str| AnchoredRegex::new(regex).unwrap().is_match(text);
    // Perl classes and word boundaries are ASCII in Go.
    assert!(matches(r"\d+", "42"));
    assert!(!matches(r"\d", "٣"));
    assert!(!matches(r"\w", "é"));
    assert!(matches(r"\W", "é"));
    assert!(!matches(r"\s", "\u{A0}"));
    assert!(matches(r"[\d.]+", "1.5"));
    assert!(matches(r"a\b.*", "a-é"));
    // \Q…\E quotes; `[`, `&` and `~` are literal inside a class; a leading `]` too.
    assert!(matches(r"\Qa.b\E", "a.b"));
    assert!(!matches(r"\Qa.b\E", "axb"));
    assert!(matches(r"\Q(x", "(x"));
    assert!(matches(r"[[]+", "[["));
    assert!(matches(r"[a&&b~]+", "a&b~"));
    assert!(matches(r"[]a]+", "]a"));
    assert!(matches(r"[^]a]", "b"));
    assert!(matches(r"[[:alpha:]]+", "abc"));
    assert!(matches(r"(?i)FOO", "foo"));
    assert!(matches(r"\x41\101", "AA"));
}

#[test]
fn invalid_configs_name_the_rule_and_the_field() {
    let cases = [
        (
            "- action: hashmodd",
            "rule 1: action: unknown relabel action \"hashmodd\"",
        ),
        (
            "- {source_labels: [a], regex: '(', action: keep}",
            "rule 1: regex: invalid regular expression \"(\"",
        ),
        (
            "- {action: keep}\n- {source_labels: [a]}",
            "rule 2: target_label: the replace action requires it",
        ),
        (
            "- {source_labels: [a], target_label: h, action: hashmod}",
            "rule 1: modulus: hashmod requires a non-zero modulus",
        ),
        (
            "- {source_labels: [a], modulus: 2, action: hashmod}",
            "rule 1: target_label: the hashmod action requires it",
        ),
        (
            "- {source_labels: [a], target_label: b, regex: x, action: keepequal}",
            "rule 1: regex: the keepequal action takes only",
        ),
        (
            "- {source_labels: [a], target_label: b, separator: ',', action: dropequal}",
            "rule 1: separator: the dropequal action",
        ),
        (
            "- {source_labels: [a], regex: x, action: labeldrop}",
            "rule 1: source_labels: the labeldrop action takes only regex",
        ),
        (
            "- {regex: x, modulus: 3, action: labelkeep}",
            "rule 1: modulus: the labelkeep action",
        ),
        (
            "- {source_labels: [a], target_label: b, replacement: x, action: lowercase}",
            "rule 1: replacement: can not be set for the lowercase action",
        ),
        (
            "- {regex: x, replacement: '', action: labelmap}",
            "rule 1: replacement: the labelmap action needs a label name",
        ),
        (
            "- {source_labels: [''], action: keep}",
            "rule 1: source_labels: \"\" is not a valid label name",
        ),
        (
            "- {source_labels: [a], modulus: x, target_label: h, action: hashmod}",
            "rule 1: modulus: invalid type",
        ),
        ("- [a, b", "invalid YAML"),
        ("source_labels: [a]", "invalid YAML"),
    ];
    for (yaml, want) in cases {
        let got = error(yaml);
        assert!(got.contains(want), "{yaml:?}: got {got:?}, want {want:?}");
    }
}

#[test]
fn configs_round_trip_through_json_as_traces_record_them() {
    let rules = parse_relabel_config(
        "- {source_labels: [a, b], separator: '/', regex: 'x(.)', target_label: t, replacement: '$1', action: replace}\n- {source_labels: [a], modulus: 4, target_label: h, action: hashmod}",
    )
    .unwrap();
    let json = serde_json::to_string(&rules).unwrap();
    assert!(json.contains(r#""regex":"x(.)""#) && json.contains(r#""action":"hashmod""#));
    let back: Vec<RelabelConfig> = serde_json::from_str(&json).unwrap();
    assert_eq!(back, rules);
    assert!(back[0].regex.is_match("xy"));
}

#[test]
fn selectors_allow_keep_drop_and_hashmod_only() {
    let ok = "- {source_labels: [c], target_label: s, modulus: 2, action: hashmod}\n- {source_labels: [s], regex: 0, action: keep}\n- {source_labels: [c], regex: x, action: drop}";
    assert_eq!(parse_selector(ok).unwrap().len(), 3);
    let got = parse_selector("- {source_labels: [c], regex: x, action: keep}\n- {target_label: a}")
        .unwrap_err()
        .to_string();
    assert!(
        got.contains("rule 2: action: replace is not supported"),
        "{got}"
    );
}

#[test]
fn selector_flags_follow_thanos_path_or_content() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("selector.yml");
    std::fs::write(&file, "- {source_labels: [c], regex: a, action: keep}\n").unwrap();
    assert_eq!(load_selector(Some(&file), None).unwrap().len(), 1);
    assert_eq!(
        load_selector(None, Some("- {source_labels: [c], regex: a, action: drop}"))
            .unwrap()
            .len(),
        1
    );
    assert!(load_selector(None, None).unwrap().is_empty());
    assert!(load_selector(Some(Path::new("")), Some(""))
        .unwrap()
        .is_empty());
    let both = load_selector(Some(&file), Some("[]")).unwrap_err();
    assert!(matches!(both, SelectorError::BothFlags));
    let missing = dir.path().join("missing.yml");
    let got = load_selector(Some(&missing), None).unwrap_err().to_string();
    assert!(
        got.starts_with("--selector.relabel-config-file ")
            && got.contains("missing.yml: cannot read it"),
        "{got}"
    );
    std::fs::write(&file, "- {source_labels: [c], regex: '[', action: keep}\n").unwrap();
    let got = load_selector(Some(&file), None).unwrap_err().to_string();
    assert!(
        got.contains("selector.yml: rule 1: regex: invalid regular expression"),
        "{got}"
    );
    let got = load_selector(
        None,
        Some("- {source_labels: [$(COMPACTD_TEST_UNSET_VARIABLE)]}"),
    )
    .unwrap_err()
    .to_string();
    assert!(
        got.starts_with("--selector.relabel-config: ")
            && got.contains("COMPACTD_TEST_UNSET_VARIABLE"),
        "{got}"
    );
}
