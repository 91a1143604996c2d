//! A small Rust lexer for the tidy test: enough to match rules on code only, expand `use`
//! trees, resolve `super::` paths and find where each function ends. It is not a parser;
//! it relies on rustfmt-formatted, compiling code.

/// A token of stripped code: an identifier (or number), `::`, `->`, `=>` or one punctuation
/// character, with its 1-based line.
#[derive(Debug, Clone)]
pub struct Tok {
    pub text: String,
    pub line: usize,
}

/// True for characters that may continue an identifier.
pub fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// True for an identifier token (not a number, not punctuation).
pub fn is_ident(s: &str) -> bool {
    s.starts_with(|c: char| c.is_alphabetic() || c == '_')
}

/// Blanks comments (doc comments included) and the contents of string and char literals,
/// keeping newlines and the literals' quotes, so rules see code only and lines keep their
/// numbers. Lifetimes (`'a`) are code and stay.
pub fn strip(src: &str) -> String {
    let c: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    while i < c.len() {
        let Some((open, close, end)) = literal_at(&c, i) else {
            out.push(c[i]);
            i += 1;
            continue;
        };
        let keep_until = i + open;
        let keep_from = end.saturating_sub(close).max(keep_until);
        for (k, &ch) in c.iter().enumerate().take(end).skip(i) {
            let kept = k < keep_until || k >= keep_from || ch == '\n';
            out.push(if kept { ch } else { ' ' });
        }
        i = end;
    }
    out
}

/// The comment or literal starting at `i`, if any: (length of its opening delimiter, length
/// of its closing delimiter, end index). Comments keep no delimiters.
fn literal_at(c: &[char], i: usize) -> Option<(usize, usize, usize)> {
    let at = |k: usize| c.get(k).copied().unwrap_or('\0');
    let before = if i == 0 { '\0' } else { c[i - 1] };
    match (at(i), at(i + 1)) {
        ('/', '/') => Some((
            0,
            0,
            (i..c.len()).find(|&k| c[k] == '\n').unwrap_or(c.len()),
        )),
        ('/', '*') => Some((0, 0, block_comment_end(c, i))),
        ('"', _) => Some((1, 1, string_end(c, i + 1))),
        ('\'', _) => char_end(c, i).map(|end| (1, 1, end)),
        ('r', '"' | '#') if raw_prefix_ok(c, i, before) => raw_string(c, i),
        _ => None,
    }
}

/// True when the `r` at `i` starts a raw string (`r"`, `br"`, `cr"`), not an identifier's end.
fn raw_prefix_ok(c: &[char], i: usize, before: char) -> bool {
    if !is_ident_char(before) {
        return true;
    }
    let before2 = if i < 2 { '\0' } else { c[i - 2] };
    matches!(before, 'b' | 'c') && !is_ident_char(before2)
}

/// The end of a `/* */` comment starting at `i` (they nest).
fn block_comment_end(c: &[char], i: usize) -> usize {
    let (mut depth, mut k) = (0usize, i);
    while k < c.len() {
        if c[k] == '/' && c.get(k + 1) == Some(&'*') {
            depth += 1;
            k += 2;
        } else if c[k] == '*' && c.get(k + 1) == Some(&'/') {
            depth -= 1;
            k += 2;
            if depth == 0 {
                return k;
            }
        } else {
            k += 1;
        }
    }
    c.len()
}

/// The end (past the closing quote) of a string whose contents start at `k`.
fn string_end(c: &[char], mut k: usize) -> usize {
    while k < c.len() {
        match c[k] {
            '\\' => k += 2,
            '"' => return k + 1,
            _ => k += 1,
        }
    }
    c.len()
}

/// The end of a char literal at `i` (`'x'`, `'\n'`, `'\u{1F600}'`), or `None` for a
/// lifetime or a label (`'a`).
fn char_end(c: &[char], i: usize) -> Option<usize> {
    if c.get(i + 1) == Some(&'\\') {
        let limit = (i + 13).min(c.len());
        return (i + 3..limit).find(|&k| c[k] == '\'').map(|k| k + 1);
    }
    (c.get(i + 2) == Some(&'\'') && c.get(i + 1) != Some(&'\'')).then_some(i + 3)
}

/// A raw string at `i` (`r"..."`, `r#"..."#`): (opening length, closing length, end). `r#`
/// followed by an identifier is a raw identifier, not a string.
fn raw_string(c: &[char], i: usize) -> Option<(usize, usize, usize)> {
    let hashes = c[i + 1..].iter().take_while(|&&ch| ch == '#').count();
    if c.get(i + 1 + hashes) != Some(&'"') {
        return None;
    }
    let mut k = i + 2 + hashes;
    while k < c.len() {
        let closes = c[k] == '"' && (1..=hashes).all(|h| c.get(k + h) == Some(&'#'));
        if closes {
            return Some((2 + hashes, 1 + hashes, k + 1 + hashes));
        }
        k += 1;
    }
    Some((2 + hashes, 0, c.len()))
}

/// Splits stripped code into tokens.
pub fn tokenize(code: &str) -> Vec<Tok> {
    let c: Vec<char> = code.chars().collect();
    let (mut toks, mut line, mut i) = (Vec::new(), 1, 0);
    while i < c.len() {
        let ch = c[i];
        let start = i;
        if ch == '\n' {
            line += 1;
            i += 1;
            continue;
        }
        if ch.is_whitespace() {
            i += 1;
            continue;
        }
        if is_ident_char(ch) {
            while i < c.len() && is_ident_char(c[i]) {
                i += 1;
            }
            // A raw identifier `r#type` is the identifier `type`.
            if ch == 'r' && i == start + 1 && c.get(i) == Some(&'#') {
                let from = i + 1;
                i = from + c[from..].iter().take_while(|&&x| is_ident_char(x)).count();
                let text = c[from..i].iter().collect();
                toks.push(Tok { text, line });
                continue;
            }
        } else {
            let pair: String = c[i..(i + 2).min(c.len())].iter().collect();
            i += if matches!(pair.as_str(), "::" | "->" | "=>") {
                2
            } else {
                1
            };
        }
        let text = c[start..i].iter().collect();
        toks.push(Tok { text, line });
    }
    toks
}
