//! One walk over a file's tokens: the paths it names (`use` trees expanded, inline paths),
//! the module it is in at each point (for `super::`), and each function's extent.

use super::lex::{is_ident, Tok};

/// A path the code names, with the module it is named from.
#[derive(Debug, Clone)]
pub struct PathRef {
    pub line: usize,
    pub segs: Vec<String>,
    pub module: Vec<String>,
    /// From a `use` declaration (else inline in code).
    pub is_use: bool,
}

/// A function: its qualified name (`Type::name`, `tests::name`), first line and length.
#[derive(Debug, Clone)]
pub struct FnSpan {
    pub name: String,
    pub line: usize,
    pub lines: usize,
}

/// What one file declares and names.
#[derive(Debug, Default)]
pub struct Facts {
    pub paths: Vec<PathRef>,
    pub fns: Vec<FnSpan>,
    /// Names the file brings into scope: `mod x`, and each `use` path's last name or alias.
    pub names: Vec<String>,
    /// The lines of inline `mod tests { }` blocks: (first, last).
    pub test_spans: Vec<(usize, usize)>,
}

/// What a brace scope is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Mod,
    Fn,
    /// An `impl` or `trait` block: it names the functions inside.
    Item,
}

/// A brace scope the walk is inside.
struct Scope {
    name: String,
    kind: Kind,
    line: usize,
    depth: usize,
}

/// A scope whose `{` has not been seen yet; `;` at the same bracket depth cancels it.
struct Pending {
    name: String,
    kind: Kind,
    line: usize,
    brackets: usize,
}

/// The walk's state.
struct Walk<'t> {
    toks: &'t [Tok],
    file_module: Vec<String>,
    scopes: Vec<Scope>,
    pending: Option<Pending>,
    depth: usize,
    brackets: usize,
    facts: Facts,
}

/// The module path of a file under `src/`: `src/core/cycle/pass.rs` is `crate::core::cycle::pass`.
pub fn module_of(path: &str) -> Vec<String> {
    let rel = path.strip_prefix("src/").unwrap_or(path);
    let rel = rel.strip_suffix(".rs").unwrap_or(rel);
    let mut segs: Vec<String> = std::iter::once("crate")
        .chain(rel.split('/'))
        .map(str::to_string)
        .collect();
    if segs.last().is_some_and(|s| s == "mod" || s == "lib") {
        segs.pop();
    }
    segs
}

/// Walks a file's tokens.
pub fn walk(path: &str, toks: &[Tok]) -> Facts {
    let mut w = Walk {
        toks,
        file_module: module_of(path),
        scopes: Vec::new(),
        pending: None,
        depth: 0,
        brackets: 0,
        facts: Facts::default(),
    };
    let mut i = 0;
    while i < toks.len() {
        i = w.step(i);
    }
    w.facts
}

impl Walk<'_> {
    /// The token at `i`, or "" past the end.
    fn text(&self, i: usize) -> &str {
        self.toks.get(i).map_or("", |t| t.text.as_str())
    }

    /// The token before `i`, or "" at the start.
    fn prev(&self, i: usize) -> &str {
        if i == 0 {
            ""
        } else {
            self.text(i - 1)
        }
    }

    /// Handles the token at `i`; returns the index of the next one to handle.
    fn step(&mut self, i: usize) -> usize {
        let t = self.text(i).to_string();
        let next = self.text(i + 1).to_string();
        match t.as_str() {
            "(" | "[" => self.brackets += 1,
            ")" | "]" => self.brackets = self.brackets.saturating_sub(1),
            "{" => self.open(),
            "}" => self.close(self.toks[i].line),
            ";" if self
                .pending
                .as_ref()
                .is_some_and(|p| p.brackets == self.brackets) =>
            {
                self.pending = None
            }
            "use" if !matches!(self.prev(i), "+" | "::") => return self.use_decl(i),
            "fn" | "mod" | "trait" if is_ident(&next) => {
                let kind = match t.as_str() {
                    "fn" => Kind::Fn,
                    "mod" => Kind::Mod,
                    _ => Kind::Item,
                };
                if kind == Kind::Mod {
                    self.facts.names.push(next.clone());
                }
                self.expect_scope(next, kind, self.toks[i].line);
            }
            "impl" if matches!(self.prev(i), "" | ";" | "}" | "{" | "]" | "unsafe") => {
                let name = self.impl_name(i + 1);
                self.expect_scope(name, Kind::Item, self.toks[i].line);
            }
            _ if is_ident(&t) && next == "::" && !matches!(self.prev(i), "::" | "$" | ".") => {
                return self.inline_path(i);
            }
            _ => {}
        }
        i + 1
    }

    /// Notes that the next `{` at this bracket depth opens a scope.
    fn expect_scope(&mut self, name: String, kind: Kind, line: usize) {
        let brackets = self.brackets;
        self.pending = Some(Pending {
            name,
            kind,
            line,
            brackets,
        });
    }

    fn open(&mut self) {
        self.depth += 1;
        if let Some(p) = self.pending.take() {
            if p.brackets == self.brackets {
                let (name, kind, line, depth) = (p.name, p.kind, p.line, self.depth);
                self.scopes.push(Scope {
                    name,
                    kind,
                    line,
                    depth,
                });
            } else {
                self.pending = Some(p);
            }
        }
    }

    fn close(&mut self, line: usize) {
        if self.scopes.last().is_some_and(|s| s.depth == self.depth) {
            let scope = self.scopes.pop().expect("checked");
            if scope.kind == Kind::Mod && scope.name == "tests" {
                self.facts.test_spans.push((scope.line, line));
            }
            if scope.kind == Kind::Fn {
                let mut names: Vec<&str> = self.scopes.iter().map(|s| s.name.as_str()).collect();
                names.push(&scope.name);
                let name = names.join("::");
                let lines = line - scope.line + 1;
                self.facts.fns.push(FnSpan {
                    name,
                    line: scope.line,
                    lines,
                });
            }
        }
        self.depth = self.depth.saturating_sub(1);
    }

    /// The module the walk is in: the file's, plus inline `mod x { }` blocks.
    fn module(&self) -> Vec<String> {
        let inline = self.scopes.iter().filter(|s| s.kind == Kind::Mod);
        let mut m = self.file_module.clone();
        m.extend(inline.map(|s| s.name.clone()));
        m
    }

    /// The type an `impl` header starting at `i` is for: `impl<T> fmt::Debug for Foo<T>` is
    /// `Foo`.
    fn impl_name(&self, mut i: usize) -> String {
        let (mut angle, mut name) = (0i32, String::new());
        while i < self.toks.len() && !matches!(self.text(i), "{" | ";" | "where") {
            match self.text(i) {
                "'" => i += 1, // a lifetime: skip its name too
                "<" => angle += 1,
                ">" => angle -= 1,
                "for" if angle == 0 => name.clear(),
                s if angle == 0 && is_ident(s) && !matches!(s, "dyn" | "mut") => {
                    name = s.to_string()
                }
                _ => {}
            }
            i += 1;
        }
        name
    }

    /// Records a path in code (`crate::x::y`, `std::mem::take`); returns the index after it.
    fn inline_path(&mut self, i: usize) -> usize {
        let mut segs = vec![self.text(i).to_string()];
        let mut j = i + 1;
        while self.text(j) == "::" && is_ident(self.text(j + 1)) {
            segs.push(self.text(j + 1).to_string());
            j += 2;
        }
        if segs.len() < 2 {
            return j; // `name::<T>`: a turbofish, not a path
        }
        let line = self.toks[i].line;
        let module = self.module();
        self.facts.paths.push(PathRef {
            line,
            segs,
            module,
            is_use: false,
        });
        j
    }

    /// Records every path of the `use` declaration at `i`; returns the index of its `;`.
    fn use_decl(&mut self, i: usize) -> usize {
        let end = (i + 1..self.toks.len())
            .find(|&k| self.text(k) == ";")
            .unwrap_or(self.toks.len());
        let mut found = Vec::new();
        let mut k = 0;
        let tree = &self.toks[i + 1..end];
        while k < tree.len() {
            use_tree(tree, &mut k, Vec::new(), &mut found);
        }
        let module = self.module();
        for (segs, line, name) in found {
            self.facts.names.extend(name);
            let module = module.clone();
            self.facts.paths.push(PathRef {
                line,
                segs,
                module,
                is_use: true,
            });
        }
        end
    }
}

/// One expanded `use` path: its segments, line and the name it brings into scope.
type UsePath = (Vec<String>, usize, Option<String>);

/// Parses one use tree at `toks[*i]` (`a::b`, `a::{b, c::d as e}`, `a::*`), appending each
/// full path under `prefix`.
fn use_tree(toks: &[Tok], i: &mut usize, prefix: Vec<String>, out: &mut Vec<UsePath>) {
    let text = |k: usize| toks.get(k).map_or("", |t| t.text.as_str());
    let mut path = prefix;
    while let Some(t) = toks.get(*i) {
        match t.text.as_str() {
            "::" => *i += 1,
            "{" => {
                *i += 1;
                while *i < toks.len() && text(*i) != "}" {
                    use_tree(toks, i, path.clone(), out);
                    if text(*i) == "," {
                        *i += 1;
                    }
                }
                *i += 1;
                return;
            }
            "*" => {
                *i += 1;
                path.push("*".to_string());
                out.push((path, t.line, None));
                return;
            }
            s if is_ident(s) => {
                path.push(s.to_string());
                *i += 1;
                if text(*i) == "::" {
                    continue;
                }
                if path.len() > 1 && s == "self" {
                    path.pop();
                }
                let mut name = path.last().cloned();
                if text(*i) == "as" {
                    name = Some(text(*i + 1).to_string());
                    *i += 2;
                }
                out.push((path, t.line, name));
                return;
            }
            _ => {
                *i += 1;
                return;
            }
        }
    }
}
