//! The README's architecture invariants (DESIGN §9), checked on the source so that they cannot
//! silently break: reads every `.rs` file under `src/`, collects the crate paths each one uses
//! (`use` trees and inline `crate::…`, `super::…`, `self::…`, `streamprobe::…` paths, in tests
//! too), and fails with a list naming file, line and path when
//! - the top-level modules import each other in a circle,
//! - anything but `app` (and `main.rs`) imports `app` or `cli`,
//! - a module imports a layer above its own (`app` → adapters → `stats`, `verdict` → `probe` →
//!   `stream` → `config` → `dataset`),
//! - the files (and subfolders) of one folder import each other in a circle.
//!
//! Does not: resolve names the way rustc does. Paths are read as text after comments and
//! literals are blanked; a path hidden in a macro's string argument or reached through a
//! re-export of another module is not seen. A folder's `mod.rs` (or `app.rs` for `app/`) is its
//! face, not a sibling: it declares and re-exports its files and they use its types, so edges
//! between a module and its own parent or children are not circles.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// DESIGN §9's layers, highest first: a module may import its own layer and the ones below.
/// Modules not named here (`cli`, `mock`, …) are only held to the rule about `app` and `cli`.
const LAYERS: &[&[&str]] = &[
    &["app"],
    &["metrics", "server", "schedule", "output", "status"],
    // `verdict` judges samples beside `stats` (it uses `stats::percentile`); nothing below may
    // import it.
    &["stats", "verdict"],
    &["probe"],
    &["stream"],
    &["config"],
    &["dataset"],
];

/// The composition roots: only `app` itself and the binary (`main.rs`) may import them.
const ROOTS: &[&str] = &["app", "cli"];

#[test]
fn src_follows_the_architecture() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let files = read_tree(&src);
    assert!(
        files.len() > 10 && files.iter().any(|f| f.module == ["config"]),
        "src/ was not read: {} files",
        files.len()
    );
    let violations = Crate::new(files).violations();
    assert!(
        violations.is_empty(),
        "the architecture (README \"Architecture\", DESIGN §9) is broken:\n{}",
        violations.join("\n")
    );
}

/// README invariant 2: the measurement core (`probe`, `stream`, `stats`) and `verdict` never
/// print, touch Prometheus or the filesystem; `verdict` never reads the clock either (times are
/// passed in, so the same input gives the same verdict).
#[test]
fn the_measurement_core_and_verdicts_do_no_io() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let files = read_tree(&src);
    let mut found = Vec::new();
    for f in &files {
        let Some(top) = f.module.first() else {
            continue;
        };
        if !["probe", "stream", "stats", "verdict"].contains(&top.as_str()) {
            continue;
        }
        let mut forbidden = IO.to_vec();
        if top == "verdict" {
            forbidden.extend(CLOCK);
        }
        for hit in impurities(&f.text, &forbidden) {
            found.push(format!("{}: {hit}", f.shown));
        }
    }
    assert!(
        found.is_empty(),
        "I/O in a module the README says has none:\n{}",
        found.join("\n")
    );
}

/// What counts as I/O: files, printing, Prometheus.
const IO: &[&str] = &[
    "std::fs",
    "fs::",
    "File::",
    "tokio::fs",
    "print!",
    "println!",
    "eprint!",
    "eprintln!",
    "prometheus",
];

/// Reading the clock.
const CLOCK: &[&str] = &["::now(", "::now (", "elapsed("];

/// The forbidden patterns in `text`'s code (comments and literals blanked), with their line;
/// a file's `#[cfg(test)]` part is left out (tests may build fixtures however they like).
fn impurities(text: &str, forbidden: &[&str]) -> Vec<String> {
    let blanked = blank_comments_and_literals(text);
    let code = blanked.split("#[cfg(test)]").next().unwrap_or("");
    let mut hits = Vec::new();
    for (n, line) in code.lines().enumerate() {
        for pattern in forbidden {
            if line.contains(pattern) {
                hits.push(format!("line {}: {pattern}", n + 1));
            }
        }
    }
    hits
}

#[test]
fn impurities_are_found_in_code_but_not_in_comments_strings_or_tests() {
    let text = "use std::fs;\n// println! in a comment\nfn f() { let _ = \"File::open\"; }\n\
                fn g() { let t = std::time::Instant::now(); }\n\
                #[cfg(test)]\nmod tests { fn h() { std::fs::read(\"x\"); } }\n";
    assert_eq!(impurities(text, IO), ["line 1: std::fs"]);
    assert_eq!(impurities(text, CLOCK), ["line 4: ::now("]);
}

// ---------------------------------------------------------------------------------------------
// Reading the source

/// One source file: where it is, the module it defines, and what it says.
struct SourceFile {
    /// Relative to the repository, for messages: `src/config/tls.rs`.
    shown: String,
    /// `["config", "tls"]`; empty for `lib.rs` and `main.rs`.
    module: Vec<String>,
    /// `main.rs` is its own crate: its `crate::` is not the library's.
    binary: bool,
    text: String,
}

fn read_tree(src: &Path) -> Vec<SourceFile> {
    let mut paths = Vec::new();
    collect_rs(src, &mut paths);
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let rel = path.strip_prefix(src).unwrap();
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            SourceFile {
                shown: format!("src/{}", rel.display()),
                module: module_of(rel),
                binary: rel == Path::new("main.rs"),
                text,
            }
        })
        .collect()
}

fn collect_rs(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect_rs(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module a file under `src/` defines: `probe/burst.rs` is `probe::burst`, `app.rs` and
/// `app/mod.rs` are `app`, `lib.rs` and `main.rs` the crate root.
fn module_of(rel: &Path) -> Vec<String> {
    let mut module: Vec<String> = rel
        .with_extension("")
        .iter()
        .map(|s| s.to_string_lossy().into_owned())
        .collect();
    if matches!(
        module.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        module.pop();
    }
    module
}

/// The source with comments, string and character literals replaced by spaces; line breaks
/// stay, so positions keep their line numbers.
fn blank_comments_and_literals(src: &str) -> String {
    let chars: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len());
    let blank = |out: &mut String, c: char| out.push(if c == '\n' { '\n' } else { ' ' });
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        let before = i.checked_sub(1).map(|j| chars[j]);
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                blank(&mut out, chars[i]);
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            // Block comments nest in Rust.
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    blank(&mut out, chars[i]);
                    i += 1;
                }
            }
        } else if c == 'r'
            && !before.is_some_and(|b| ident(b) && b != 'b' && b != 'c')
            && raw_string_hashes(&chars[i + 1..]).is_some()
        {
            // r"…", r#"…"#, br#"…"#: ends at the quote followed by as many hashes.
            let hashes = raw_string_hashes(&chars[i + 1..]).unwrap();
            out.push('r');
            i += 1;
            for _ in 0..=hashes {
                blank(&mut out, chars[i]);
                i += 1;
            }
            while i < chars.len() {
                if chars[i] == '"' && chars[i + 1..].iter().take(hashes).all(|&h| h == '#') {
                    for _ in 0..=hashes {
                        blank(&mut out, chars.get(i).copied().unwrap_or(' '));
                        i += 1;
                    }
                    break;
                }
                blank(&mut out, chars[i]);
                i += 1;
            }
        } else if c == '"' {
            blank(&mut out, c);
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    blank(&mut out, chars[i]);
                    i += 1;
                }
                if i < chars.len() {
                    blank(&mut out, chars[i]);
                    i += 1;
                }
            }
            if i < chars.len() {
                blank(&mut out, chars[i]);
                i += 1;
            }
        } else if c == '\'' && (next == Some('\\') || chars.get(i + 2) == Some(&'\'')) {
            // A character literal ('x', '\n', '\u{1F600}', '"'); a lifetime has no closing quote.
            blank(&mut out, c);
            i += 1;
            if chars.get(i) == Some(&'\\') {
                blank(&mut out, chars[i]);
                i += 1;
                if i < chars.len() {
                    blank(&mut out, chars[i]);
                    i += 1;
                }
            }
            while i < chars.len() && chars[i] != '\'' {
                blank(&mut out, chars[i]);
                i += 1;
            }
            if i < chars.len() {
                blank(&mut out, chars[i]);
                i += 1;
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// After an `r`: `Some(number of #)` when a raw string starts here (`"`, `#"`, `##"`, …).
fn raw_string_hashes(rest: &[char]) -> Option<usize> {
    let hashes = rest.iter().take_while(|&&c| c == '#').count();
    (rest.get(hashes) == Some(&'"')).then_some(hashes)
}

/// A word (identifier or keyword), `::`, or one punctuation character, with its line.
#[derive(Debug, Clone, PartialEq)]
struct Token {
    text: String,
    line: usize,
}

fn tokens(blanked: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut line = 1;
    let mut chars = blanked.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\n' {
            line += 1;
        } else if c.is_alphanumeric() || c == '_' {
            let mut word = String::from(c);
            while let Some(&n) = chars.peek() {
                if !(n.is_alphanumeric() || n == '_') {
                    break;
                }
                word.push(n);
                chars.next();
            }
            out.push(Token { text: word, line });
        } else if c == ':' && chars.peek() == Some(&':') {
            chars.next();
            out.push(Token {
                text: "::".into(),
                line,
            });
        } else if !c.is_whitespace() {
            out.push(Token {
                text: c.to_string(),
                line,
            });
        }
    }
    out
}

/// One path a file uses, as written, and where.
#[derive(Debug, Clone, PartialEq)]
struct UsedPath {
    /// The inline module it appears in, relative to the file's module (`["tests"]`).
    scope: Vec<String>,
    /// The segments as written, a `use` group expanded: `["super", "tls", "UrlFacts"]`.
    segments: Vec<String>,
    line: usize,
}

/// What one file says: the paths it uses, and the modules it declares (per inline scope).
#[derive(Debug, Default)]
struct Parsed {
    paths: Vec<UsedPath>,
    /// Inline scope → the child modules declared there (`mod x;` or `mod x { … }`).
    declared: BTreeMap<Vec<String>, BTreeSet<String>>,
}

/// First words of a path that are about this crate; other paths (std, external crates, local
/// items) do not cross module boundaries.
const PATH_ROOTS: &[&str] = &["crate", "super", "self", "streamprobe"];

fn parse(src: &str) -> Parsed {
    let toks = tokens(&blank_comments_and_literals(src));
    let mut parsed = Parsed::default();
    // Inline `mod name {` blocks: (name, brace depth inside the block).
    let mut scopes: Vec<(String, usize)> = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    let scope_of = |scopes: &[(String, usize)]| -> Vec<String> {
        scopes.iter().map(|(name, _)| name.clone()).collect()
    };
    while i < toks.len() {
        let t = toks[i].text.as_str();
        match t {
            "{" => {
                depth += 1;
                i += 1;
            }
            "}" => {
                if scopes.last().is_some_and(|(_, d)| *d == depth) {
                    scopes.pop();
                }
                depth = depth.saturating_sub(1);
                i += 1;
            }
            "mod" if toks.get(i + 1).is_some_and(|n| is_word(&n.text)) => {
                let name = toks[i + 1].text.clone();
                parsed
                    .declared
                    .entry(scope_of(&scopes))
                    .or_default()
                    .insert(name.clone());
                if toks.get(i + 2).is_some_and(|n| n.text == "{") {
                    depth += 1;
                    scopes.push((name, depth));
                    i += 3;
                } else {
                    i += 2;
                }
            }
            "use" => {
                let line = toks[i].line;
                i += 1;
                if toks.get(i).is_some_and(|n| n.text == "::") {
                    i += 1; // `use ::name` is always an external crate
                    skip_to_semicolon(&toks, &mut i);
                    continue;
                }
                let mut trees = Vec::new();
                use_tree(&toks, &mut i, &[], &mut trees);
                skip_to_semicolon(&toks, &mut i);
                for segments in trees {
                    parsed.paths.push(UsedPath {
                        scope: scope_of(&scopes),
                        segments,
                        line,
                    });
                }
            }
            _ if PATH_ROOTS.contains(&t)
                && toks.get(i + 1).is_some_and(|n| n.text == "::")
                && !(i > 0 && toks[i - 1].text == "::") =>
            {
                let line = toks[i].line;
                let mut segments = vec![t.to_owned()];
                i += 1;
                while toks.get(i).is_some_and(|n| n.text == "::")
                    && toks.get(i + 1).is_some_and(|n| is_word(&n.text))
                {
                    segments.push(toks[i + 1].text.clone());
                    i += 2;
                }
                parsed.paths.push(UsedPath {
                    scope: scope_of(&scopes),
                    segments,
                    line,
                });
            }
            _ => i += 1,
        }
    }
    parsed
}

fn is_word(text: &str) -> bool {
    text.chars()
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_')
}

fn skip_to_semicolon(toks: &[Token], i: &mut usize) {
    while *i < toks.len() && toks[*i].text != ";" {
        *i += 1;
    }
}

/// One use tree from `toks[*i]` (`a::b`, `a::{b, c::{d, e}}`, `a::*`, `a as b`), expanded into
/// full paths after `prefix`; `a::{self, b}` gives `a` and `a::b`.
fn use_tree(toks: &[Token], i: &mut usize, prefix: &[String], out: &mut Vec<Vec<String>>) {
    let mut path = prefix.to_vec();
    loop {
        let Some(t) = toks.get(*i) else { return };
        match t.text.as_str() {
            "{" => {
                *i += 1;
                while toks.get(*i).is_some_and(|t| t.text != "}") {
                    use_tree(toks, i, &path, out);
                    if toks.get(*i).is_some_and(|t| t.text == ",") {
                        *i += 1;
                    }
                }
                *i += 1; // the closing brace
                return;
            }
            "*" => {
                *i += 1;
                out.push(path);
                return;
            }
            word if is_word(word) => {
                if word != "self" || path.is_empty() {
                    path.push(word.to_owned());
                }
                *i += 1;
                if toks.get(*i).is_some_and(|t| t.text == "::") {
                    *i += 1;
                    continue;
                }
                if toks.get(*i).is_some_and(|t| t.text == "as") {
                    *i += 2;
                }
                out.push(path);
                return;
            }
            _ => return, // not a use tree: leave it to the caller
        }
    }
}

/// The absolute module path (from the library's root) a used path names, or `None` when it
/// leaves the library (std, an external crate, the binary's own `crate::`) or names a local
/// item. `module` is where the path is written (the file's module plus inline scopes).
fn resolve(
    segments: &[String],
    module: &[String],
    declared_here: &BTreeSet<String>,
    binary: bool,
) -> Option<Vec<String>> {
    let (first, rest) = segments.split_first()?;
    match first.as_str() {
        "crate" if binary => None,
        "crate" | "streamprobe" => Some(rest.to_vec()),
        "self" => Some([module, rest].concat()),
        "super" => {
            let mut base = module.to_vec();
            base.pop()?;
            let mut rest = rest;
            while rest.first().is_some_and(|s| s == "super") {
                base.pop()?;
                rest = &rest[1..];
            }
            Some([base.as_slice(), rest].concat())
        }
        // 2018 paths: a bare first word is a child module of the current one when declared
        // here (`pub use validate::load;` in a mod.rs), otherwise an external crate.
        word if declared_here.contains(word) => Some([module, segments].concat()),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// The module graph

/// Where an import was seen: file, line, and the path as written.
#[derive(Debug, Clone)]
struct Evidence {
    file: String,
    line: usize,
    path: String,
}

impl std::fmt::Display for Evidence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{} {}", self.file, self.line, self.path)
    }
}

/// Edges between the children of one module: the top-level modules (parent `[]`), or the
/// files and subfolders of one folder (parent `["config"]`).
type Graph = BTreeMap<(String, String), Vec<Evidence>>;

struct Crate {
    /// Parent module → the graph of its children.
    graphs: BTreeMap<Vec<String>, Graph>,
}

impl Crate {
    fn new(files: Vec<SourceFile>) -> Crate {
        let parsed: Vec<(SourceFile, Parsed)> = files
            .into_iter()
            .map(|f| {
                let p = parse(&f.text);
                (f, p)
            })
            .collect();
        // Every module of the library: files, and inline `mod` blocks and declarations.
        let mut modules: BTreeSet<Vec<String>> = BTreeSet::new();
        for (file, p) in &parsed {
            if file.binary {
                continue;
            }
            for prefix in 1..=file.module.len() {
                modules.insert(file.module[..prefix].to_vec());
            }
            for (scope, names) in &p.declared {
                for name in names {
                    modules.insert(
                        [file.module.as_slice(), scope, std::slice::from_ref(name)].concat(),
                    );
                }
            }
        }
        let mut graphs: BTreeMap<Vec<String>, Graph> = BTreeMap::new();
        for (file, p) in &parsed {
            for used in &p.paths {
                let from = [file.module.as_slice(), &used.scope].concat();
                let declared_here = p.declared.get(&used.scope).cloned().unwrap_or_default();
                let Some(to) = resolve(&used.segments, &from, &declared_here, file.binary) else {
                    continue;
                };
                let evidence = Evidence {
                    file: file.shown.clone(),
                    line: used.line,
                    path: used.segments.join("::"),
                };
                // The binary's imports count as the node `main` of the top-level graph.
                let from = if file.binary {
                    vec!["main".to_owned()]
                } else {
                    from
                };
                // The edge joins the two children of the deepest module holding both.
                let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
                let (Some(a), Some(b)) = (from.get(common), to.get(common)) else {
                    continue; // a module's own parent or child
                };
                if !file.binary && !modules.contains(&from[..=common]) {
                    continue;
                }
                if !modules.contains(&to[..=common]) {
                    continue; // an item of the parent module, not a sibling
                }
                graphs
                    .entry(from[..common].to_vec())
                    .or_default()
                    .entry((a.clone(), b.clone()))
                    .or_default()
                    .push(evidence);
            }
        }
        Crate { graphs }
    }

    /// Every broken rule, one finding per line group, in a stable order.
    fn violations(&self) -> Vec<String> {
        let mut found = Vec::new();
        let empty = Graph::new();
        let top = self.graphs.get(&Vec::new()).unwrap_or(&empty);
        for ((a, b), evidence) in top {
            if ROOTS.contains(&b.as_str()) && a != "app" && a != "main" {
                found.push(finding(
                    &format!("{a} imports {b} (only app and main.rs may)"),
                    evidence,
                ));
            }
        }
        for ((a, b), evidence) in top {
            let upward = match (layer(a), layer(b)) {
                (Some(la), Some(lb)) => lb < la,
                _ => false,
            };
            if upward && !ROOTS.contains(&b.as_str()) {
                found.push(finding(
                    &format!(
                        "{a} imports {b}, a layer above it (DESIGN §9: {})",
                        layer_text()
                    ),
                    evidence,
                ));
            }
        }
        for (parent, graph) in &self.graphs {
            for circle in circles(graph) {
                let place = if parent.is_empty() {
                    "top-level modules".to_owned()
                } else {
                    format!("files of src/{}/", parent.join("/"))
                };
                let mut text = format!("circle among the {place}: {}", circle.join(" ↔ "));
                for ((a, b), evidence) in graph {
                    if circle.contains(a) && circle.contains(b) {
                        let _ = write!(text, "\n    {a} → {b}: {}", evidence[0]);
                        if evidence.len() > 1 {
                            let _ = write!(text, " (+{} more)", evidence.len() - 1);
                        }
                    }
                }
                found.push(text);
            }
        }
        found
    }
}

fn finding(what: &str, evidence: &[Evidence]) -> String {
    let mut text = format!("{what}:");
    for e in evidence {
        let _ = write!(text, "\n    {e}");
    }
    text
}

fn layer(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

fn layer_text() -> String {
    LAYERS
        .iter()
        .map(|layer| layer.join(", "))
        .collect::<Vec<_>>()
        .join(" → ")
}

/// The strongly connected components of more than one node (Tarjan), each sorted.
fn circles(graph: &Graph) -> Vec<Vec<String>> {
    let mut next: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (a, b) in graph.keys() {
        if a != b {
            next.entry(a).or_default().push(b);
            next.entry(b).or_default();
        }
    }
    struct Tarjan<'a> {
        next: &'a BTreeMap<&'a str, Vec<&'a str>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        out: Vec<Vec<String>>,
    }
    impl<'a> Tarjan<'a> {
        fn visit(&mut self, v: &'a str) {
            let n = self.index.len();
            self.index.insert(v, n);
            self.low.insert(v, n);
            self.stack.push(v);
            self.on_stack.insert(v);
            for &w in &self.next[v] {
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let low = self.low[v].min(self.low[w]);
                    self.low.insert(v, low);
                } else if self.on_stack.contains(w) {
                    let low = self.low[v].min(self.index[w]);
                    self.low.insert(v, low);
                }
            }
            if self.low[v] == self.index[v] {
                let mut component = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack.remove(w);
                    component.push(w.to_owned());
                    if w == v {
                        break;
                    }
                }
                if component.len() > 1 {
                    component.sort();
                    self.out.push(component);
                }
            }
        }
    }
    let mut t = Tarjan {
        next: &next,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for &v in next.keys() {
        if !t.index.contains_key(v) {
            t.visit(v);
        }
    }
    t.out.sort();
    t.out
}

// ---------------------------------------------------------------------------------------------
// The checker checked, on small sources

fn strings(path: &str) -> Vec<String> {
    path.split("::")
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn written(src: &str) -> Vec<String> {
    parse(src)
        .paths
        .iter()
        .map(|p| p.segments.join("::"))
        .collect()
}

fn file(shown: &str, text: &str) -> SourceFile {
    let rel = shown.strip_prefix("src/").unwrap();
    SourceFile {
        shown: shown.to_owned(),
        module: module_of(Path::new(rel)),
        binary: rel == "main.rs",
        text: text.to_owned(),
    }
}

#[test]
fn files_map_to_modules() {
    for (rel, module) in [
        ("probe/burst.rs", "probe::burst"),
        ("probe/mod.rs", "probe"),
        ("app.rs", "app"),
        ("app/serve.rs", "app::serve"),
        ("stream/dialect/openai.rs", "stream::dialect::openai"),
    ] {
        assert_eq!(module_of(Path::new(rel)), strings(module), "{rel}");
    }
    assert!(module_of(Path::new("lib.rs")).is_empty());
    assert!(module_of(Path::new("main.rs")).is_empty());
}

#[test]
fn use_groups_expand_into_full_paths() {
    let src = "use crate::{app, config::{self, tls::{UrlFacts, Tls as T}}, probe::*};\n\
               pub(crate) use super::raw::{self, Value};\n\
               use std::collections::{BTreeMap, BTreeSet};";
    assert_eq!(
        written(src),
        [
            "crate::app",
            "crate::config",
            "crate::config::tls::UrlFacts",
            "crate::config::tls::Tls",
            "crate::probe",
            "super::raw",
            "super::raw::Value",
            "std::collections::BTreeMap",
            "std::collections::BTreeSet",
        ]
    );
}

#[test]
fn inline_paths_are_collected_and_comments_and_literals_ignored() {
    let src = r####"
        // use crate::app::Shard;
        /* crate::cli /* nested */ crate::app */
        /// Unlike `crate::app::run_once`, this ...
        fn f<'a>(x: &'a str) -> char {
            let _ = "crate::app::serve \" crate::cli";
            let _ = r#"crate::app "quoted" crate::cli"#;
            let _ = br##"crate::cli"#"##;
            let _ = ('"', '\'', '\u{1F600}', 'x');
            let _ = crate::stats::BurstSummary::from_burst(super::burst(), self::local::f());
            let _ = Self::new(); // not a path of this crate
            'x'
        }
    "####;
    assert_eq!(
        written(src),
        [
            "crate::stats::BurstSummary::from_burst",
            "super::burst",
            "self::local::f",
        ]
    );
}

#[test]
fn self_and_super_resolve_from_the_module_they_are_written_in() {
    let declared: BTreeSet<String> = ["validate".to_owned()].into();
    let at = |path: &str, module: &str| {
        resolve(&strings(path), &strings(module), &declared, false).map(|p| p.join("::"))
    };
    assert_eq!(
        at("super::tls::Facts", "config::validate").unwrap(),
        "config::tls::Facts"
    );
    assert_eq!(at("self::tls", "config").unwrap(), "config::tls");
    assert_eq!(
        at("super::super::tls", "config::validate::tests").unwrap(),
        "config::tls"
    );
    assert_eq!(
        at("super::super::super::app", "config::validate::tests").unwrap(),
        "app"
    );
    assert_eq!(
        at("validate::load", "config").unwrap(),
        "config::validate::load"
    );
    assert_eq!(at("streamprobe::app::run", "cli").unwrap(), "app::run");
    assert_eq!(at("serde::Deserialize", "config"), None);
    assert_eq!(at("super::x", ""), None);
    assert_eq!(
        resolve(&strings("crate::x"), &[], &declared, true),
        None,
        "main.rs's crate is the binary"
    );
}

#[test]
fn inline_modules_scope_their_paths() {
    let p = parse(
        "use super::a;\nmod tests {\n    use super::*;\n    fn f() { if true { crate::app::x(); } }\n}\n\
         fn g() { self::h(); }\nmod outer;",
    );
    let scopes: Vec<(String, Vec<String>)> = p
        .paths
        .iter()
        .map(|u| (u.segments.join("::"), u.scope.clone()))
        .collect();
    assert_eq!(
        scopes,
        [
            ("super::a".to_owned(), vec![]),
            ("super".to_owned(), vec!["tests".to_owned()]),
            ("crate::app::x".to_owned(), vec!["tests".to_owned()]),
            ("self::h".to_owned(), vec![]),
        ]
    );
    assert_eq!(
        p.declared[&Vec::<String>::new()],
        ["outer".to_owned(), "tests".to_owned()].into()
    );
}

#[test]
fn every_rule_reports_its_breakage_with_file_and_line() {
    let files = vec![
        file(
            "src/lib.rs",
            "pub mod app; pub mod cli; pub mod config; pub mod dataset;",
        ),
        file(
            "src/main.rs",
            "use streamprobe::app::run;\nuse streamprobe::cli::Cli;",
        ),
        file(
            "src/app.rs",
            "use crate::cli::Args;\nuse crate::probe::Client;",
        ),
        file("src/cli.rs", "use crate::app::Shard;"),
        file(
            "src/schedule.rs",
            "mod tests {\n    use crate::app::Shard;\n}",
        ),
        file("src/mock.rs", "fn f() { streamprobe::app::run(); }"),
        file("src/probe.rs", "use crate::stats::Summary;"),
        file("src/stats.rs", "use crate::probe::Record;"),
        file("src/dataset.rs", "use crate::config::Secret;"),
        file(
            "src/config/mod.rs",
            "mod tls;\nmod validate;\npub use validate::load;\nuse crate::dataset::Template;",
        ),
        file(
            "src/config/validate.rs",
            "use super::tls::{self, UrlFacts};\nuse super::Config;",
        ),
        file(
            "src/config/tls.rs",
            "pub fn f() -> super::validate::Problem { todo!() }",
        ),
    ];
    let found = Crate::new(files).violations();
    let text = found.join("\n");
    let expected = [
        "cli imports app (only app and main.rs may):\n    src/cli.rs:1 crate::app::Shard",
        "mock imports app (only app and main.rs may):\n    src/mock.rs:1 streamprobe::app::run",
        "schedule imports app (only app and main.rs may):\n    src/schedule.rs:2 crate::app::Shard",
        "dataset imports config, a layer above it (DESIGN §9: app → metrics, server, schedule, \
         output, status → stats, verdict → probe → stream → config → dataset):\n    \
         src/dataset.rs:1 crate::config::Secret",
        "probe imports stats, a layer above it",
        "circle among the top-level modules: app ↔ cli\n    app → cli: src/app.rs:1 crate::cli::Args\n    \
         cli → app: src/cli.rs:1 crate::app::Shard",
        "circle among the top-level modules: config ↔ dataset",
        "circle among the top-level modules: probe ↔ stats",
        "circle among the files of src/config/: tls ↔ validate\n    \
         tls → validate: src/config/tls.rs:1 super::validate::Problem\n    \
         validate → tls: src/config/validate.rs:1 super::tls (+1 more)",
    ];
    for e in expected {
        assert!(text.contains(e), "missing {e:?} in:\n{text}");
    }
    assert_eq!(found.len(), expected.len(), "{text}");
    // main.rs may import app and cli; mod.rs and its files are not a circle.
    assert!(
        !text.contains("main imports") && !text.contains("main →"),
        "{text}"
    );
    assert!(
        !text.contains("config ↔ tls") && !text.contains("config ↔ validate"),
        "{text}"
    );
}

#[test]
fn a_clean_tree_passes() {
    let files = vec![
        file("src/main.rs", "use streamprobe::app;"),
        file(
            "src/app.rs",
            "use crate::{cli::Args, metrics::Metrics, probe::run};",
        ),
        file("src/cli.rs", "use crate::config::Protocol;"),
        file(
            "src/metrics.rs",
            "use crate::{stats, probe::Outcome, status::Board};",
        ),
        file("src/status.rs", "use crate::stats::Summary;"),
        file("src/stats.rs", "use crate::probe::Record;"),
        file(
            "src/probe/mod.rs",
            "mod burst;\nmod request;\npub use burst::run;\nuse crate::stream;",
        ),
        file(
            "src/probe/burst.rs",
            "use super::request::send;\nuse super::Record;",
        ),
        file(
            "src/probe/request.rs",
            "use super::{Outcome, Record};\nuse crate::config::Target;",
        ),
        file("src/stream.rs", "use crate::config::Protocol;"),
        file("src/config/mod.rs", "use crate::dataset::Rows;"),
        file("src/mock.rs", "use crate::stream::sse;"),
    ];
    let found = Crate::new(files).violations();
    assert!(found.is_empty(), "{}", found.join("\n"));
}
