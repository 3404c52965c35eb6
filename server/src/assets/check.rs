//! The validation pass: what a game (or the engine) checks of its settings once serde has
//! read them — ranges with units, required keys, lists of entries, rules between keys —
//! each problem worded for a designer and pointing at the key or value it is about.
//!
//! A check is given the value serde read (the default where the file's was refused or is
//! absent) and looks at the file itself for positions, the text as written and the type
//! found, so a refused value is explained in the words of the check that wanted it
//! ("must be a whole number, found a string") rather than serde's.
//!
//! Must not decide what is valid: callers declare ranges and rules. Never panics.

use std::ops::Range;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::document::Log;
use super::source::Source;

type Node<'a> = Spanned<DeValue<'a>>;

/// The checks of one table of a file: the top level, a `[table]` or one `[[entry]]`.
#[derive(Debug)]
pub struct Check<'a> {
    src: &'a Source,
    /// `None` when the table is absent: every key reads as absent.
    table: Option<&'a DeTable<'a>>,
    /// Blamed for missing keys: the table's header, or the file's start.
    span: Range<usize>,
    scope: Scope,
    log: &'a mut Log,
}

/// An allowed range of a number and its plural unit ("units/s"), inclusive at both ends.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    pub min: f64,
    pub max: f64,
    pub unit: &'static str,
}

impl Limits {
    /// Any finite number (map coordinates, which other rules place).
    pub const ANY: Limits = Limits::new(f64::NEG_INFINITY, f64::INFINITY, "");

    pub const fn new(min: f64, max: f64, unit: &'static str) -> Limits {
        Limits { min, max, unit }
    }

    /// Whether this is a range rather than [`Limits::ANY`].
    fn bounded(&self) -> bool {
        *self != Limits::ANY
    }

    fn contains(&self, v: f64) -> bool {
        v >= self.min && v <= self.max
    }

    /// "0.1 to 5 units".
    pub fn describe(&self) -> String {
        format!("{} to {} {}", self.min, self.max, self.unit)
    }
}

/// One `[[entry]]` that passed its checks: its 1-based number among the entries of its
/// kind (as messages name it: `spawn #3`), its header's span, and what was made of it.
#[derive(Debug, Clone)]
pub struct Entry<T> {
    pub number: usize,
    pub span: Range<usize>,
    pub value: T,
}

impl<'a> Check<'a> {
    pub(crate) fn new(src: &'a Source, root: &'a DeTable<'a>, log: &'a mut Log) -> Check<'a> {
        let scope = Scope::default();
        Check {
            src,
            table: Some(root),
            span: 0..0,
            scope,
            log,
        }
    }

    /// The checks of the table at `node` (absent: every key reads as absent), blaming
    /// `span` for missing keys.
    fn sub(&mut self, node: Option<&'a Node<'a>>, span: Range<usize>, scope: Scope) -> Check<'_> {
        let table = match node.map(Spanned::get_ref) {
            Some(DeValue::Table(t)) => Some(t),
            _ => None,
        };
        let (src, log) = (self.src, &mut *self.log);
        Check {
            src,
            table,
            span,
            scope,
            log,
        }
    }

    /// The checks of the `[key]` table; a `key` that is not a table is reported here.
    pub fn table(&mut self, key: &str) -> Check<'_> {
        let node = self.node(key);
        let not_table = node.filter(|n| !matches!(n.get_ref(), DeValue::Table(_)));
        if let Some(node) = not_table.filter(|n| self.claim(n)) {
            let expected = format!("a `[{}]` table", self.scope.key(key).dotted());
            self.wrong_type(key, node, &expected, None);
        }
        let scope = self.scope.key(key);
        self.sub(node, node.map_or(0..0, Spanned::span), scope)
    }

    /// An optional number within `limits` (integers are accepted). `value` is what serde
    /// read, shown as the example when the file's is refused. Whether it is valid or absent.
    pub fn real(&mut self, key: &str, value: f32, limits: Limits) -> bool {
        let example = match limits.contains(value.into()) {
            true => value,
            false => limits.min as f32,
        };
        self.number(key, &example.to_string(), limits, false)
    }

    /// An optional whole number within `limits`; `value` as for [`Check::real`].
    pub fn whole(&mut self, key: &str, value: impl Into<i64>, limits: Limits) -> bool {
        self.number(key, &value.into().to_string(), limits, true)
    }

    fn number(&mut self, key: &str, example: &str, limits: Limits, whole: bool) -> bool {
        let Some(node) = self.node(key) else {
            return true;
        };
        let refused = self.claim(node);
        let found = self.src.snippet(node.span());
        let v = number(node.get_ref());
        match node.get_ref() {
            DeValue::Float(_) if whole => {
                let help = match v.filter(|v| v.fract() == 0.0 && v.abs() < 1e15) {
                    Some(v) => format!("write it without a decimal point: `{key} = {v}`"),
                    None => format!("allowed: whole numbers from {}", limits.describe()),
                };
                let message = format!(
                    "{} must be a whole number, found `{found}`",
                    self.field(key)
                );
                self.invalid(node.span(), message, Some(help))
            }
            // An integer serde refused does not fit the type: out of range either way.
            DeValue::Integer(_) if whole => match v {
                Some(v) if !refused && limits.contains(v) => true,
                _ => self.out_of_range(key, node, limits),
            },
            DeValue::Integer(_) | DeValue::Float(_) if !refused => match v {
                Some(v) if !v.is_finite() => {
                    let field = self.field(key);
                    let message = format!("{field} must be a finite number, found `{found}`");
                    let help = limits
                        .bounded()
                        .then(|| format!("allowed: {}", limits.describe()));
                    self.invalid(node.span(), message, help)
                }
                Some(v) if !limits.contains(v) => self.out_of_range(key, node, limits),
                _ => true,
            },
            // Not a number, and serde took it: a key serde reads as something else.
            _ if !whole && !refused => true,
            _ => {
                let kind = if whole { "a whole number" } else { "a number" };
                let help = match limits.bounded() {
                    true => format!(
                        "use {kind} from {}, e.g. `{key} = {example}`",
                        limits.describe()
                    ),
                    false => format!("use a plain number, e.g. `{key} = 12.5`"),
                };
                self.wrong_type(key, node, kind, Some(help));
                false
            }
        }
    }

    /// Reports `key` when it is absent (`limits` go into the help); whether it is present.
    pub fn required(&mut self, key: &str, limits: Limits) -> bool {
        if self.has(key) {
            return true;
        }
        let help = match limits {
            Limits::ANY => format!("add `{key} = ...`"),
            _ => format!("add `{key} = ...` ({})", limits.describe()),
        };
        let message = format!("missing required key `{key}` {}", self.scope.location());
        self.report(self.span.clone(), message, Some(help));
        false
    }

    /// [`Check::required`] and [`Check::real`].
    pub fn required_real(&mut self, key: &str, value: f32, limits: Limits) -> bool {
        self.required(key, limits) & self.real(key, value, limits)
    }

    /// A list of names (`["a", "b"]`) as written, each with its span; entries that are
    /// not text are reported and left out. `None` when absent or not a list.
    pub fn names(&mut self, key: &str) -> Option<Vec<(String, Range<usize>)>> {
        let node = self.node(key)?;
        let DeValue::Array(items) = node.get_ref() else {
            if self.claim(node) {
                self.wrong_type(key, node, "a list of names like `[\"a\", \"b\"]`", None);
            }
            return None;
        };
        let mut names = Vec::new();
        for (n, item) in (1..).zip(items) {
            if let DeValue::String(s) = item.get_ref() {
                names.push((s.to_string(), item.span()));
                continue;
            }
            self.claim(item);
            let (field, found) = (self.field(key), type_name(item.get_ref()));
            let message = format!("entry {n} of {field} must be a string, found {found}");
            let help = "put names in double quotes, e.g. `\"courtyard\"`".to_string();
            self.report(item.span(), message, Some(help));
        }
        Some(names)
    }

    /// The `[[key]]` entries serde read, each checked by `read` in its own scope; those it
    /// makes something of come back, numbered as in the file. Entries that are not tables
    /// are reported (and still count for numbering). `None`, reported, when there are
    /// more than `max`: a bound on the work a hostile file can cause.
    pub fn entries<T, U>(
        &mut self,
        key: &str,
        entries: &[Spanned<T>],
        max: usize,
        mut read: impl FnMut(&mut Check<'_>, &T) -> Option<U>,
    ) -> Option<Vec<Entry<U>>> {
        let Some(node) = self.node(key) else {
            return Some(Vec::new());
        };
        let header = format!("`[[{}]]`", self.scope.key(key).dotted());
        let help = format!("start each entry with {header} (double brackets)");
        let DeValue::Array(items) = node.get_ref() else {
            if self.claim(node) {
                let expected = format!("a list of {header} entries");
                self.wrong_type(key, node, &expected, Some(help));
            }
            return Some(Vec::new());
        };
        if let Some(extra) = items.get(max) {
            let message = format!("too many {header} entries: {} (at most {max})", items.len());
            self.report(extra.span(), message, None);
            return None;
        }
        for (n, item) in (1..).zip(items) {
            if self.claim(item) {
                let found = type_name(item.get_ref());
                let message = format!("{key} #{n} must be a table, found {found}");
                self.report(item.span(), message, Some(help.clone()));
            }
        }
        let mut checked = Vec::new();
        for entry in entries {
            let span = entry.span();
            let Some(index) = items.iter().position(|item| item.span() == span) else {
                continue;
            };
            let scope = self.scope.key(key).entry(index);
            if let Some(value) = read(
                &mut self.sub(Some(&items[index]), span.clone(), scope),
                entry.get_ref(),
            ) {
                let number = index + 1;
                checked.push(Entry {
                    number,
                    span,
                    value,
                });
            }
        }
        Some(checked)
    }

    /// Whether `key` is written.
    pub fn has(&self, key: &str) -> bool {
        self.node(key).is_some()
    }

    /// Whether `key` is absent or passed every check so far.
    pub fn ok(&self, key: &str) -> bool {
        self.node(key)
            .is_none_or(|n| !self.log.invalid.contains(&n.span()))
    }

    /// How many entries the list `key` has as written: 0 when absent, `None` when it is
    /// not a list.
    pub fn count(&self, key: &str) -> Option<usize> {
        match self.node(key).map(Spanned::get_ref) {
            None => Some(0),
            Some(DeValue::Array(items)) => Some(items.len()),
            Some(_) => None,
        }
    }

    /// The span of `key`'s value, or of this table when it is absent.
    pub fn span(&self, key: &str) -> Range<usize> {
        self.node(key).map_or(self.span.clone(), Spanned::span)
    }

    /// How messages name `key` here: `` `player.radius` ``, `` `x` of spawn #3 ``.
    pub fn field(&self, key: &str) -> String {
        self.scope.field(key)
    }

    /// Reports a problem at `span` (from [`Check::span`] or an [`Entry`]).
    pub fn report(&mut self, span: Range<usize>, message: impl Into<String>, help: Option<String>) {
        let problem = self.src.problem(span, message, help);
        self.log.problems.push(problem);
    }

    /// 1-based line and column of `span`'s start.
    pub(crate) fn position(&self, span: Range<usize>) -> (u32, u32) {
        self.src.position(span.start)
    }

    fn node(&self, key: &str) -> Option<&'a Node<'a>> {
        self.table?.get(key)
    }

    /// Takes serde's refusal of `node` to explain it here; whether there was one.
    fn claim(&mut self, node: &Node<'_>) -> bool {
        let found = self.log.refused.iter().position(|(s, _)| *s == node.span());
        found.map(|i| self.log.refused.remove(i)).is_some()
    }

    /// Reports that `key` must be `expected`, with `help` (a quoted number is told to
    /// lose its quotes instead).
    fn wrong_type(&mut self, key: &str, node: &Node<'_>, expected: &str, help: Option<String>) {
        let found = node.get_ref();
        let help = match found {
            DeValue::String(s) if s.trim().parse::<f64>().is_ok() => {
                Some(format!("remove the quotes: `{key} = {}`", s.trim()))
            }
            _ => help,
        };
        let (field, found) = (self.field(key), type_name(found));
        self.report(
            node.span(),
            format!("{field} must be {expected}, found {found}"),
            help,
        );
    }

    fn out_of_range(&mut self, key: &str, node: &Node<'_>, limits: Limits) -> bool {
        let Limits { min, max, unit } = limits;
        let (field, found) = (self.field(key), self.src.snippet(node.span()));
        let message =
            format!("{field} is out of range: `{found}` is not between {min} and {max} {unit}");
        self.invalid(node.span(), message, None)
    }

    /// Reports an invalid value and leaves it out of later reads, so its default stands
    /// in for it; always `false`.
    fn invalid(&mut self, span: Range<usize>, message: String, help: Option<String>) -> bool {
        if !self.log.invalid.contains(&span) {
            self.log.invalid.push(span.clone());
        }
        self.report(span, message, help);
        false
    }
}

/// A number as written, integers included (beyond `i64` too: TOML's parser leaves the
/// range to the reader, and an `f32` takes any). The parser only produces radix 2, 8, 10
/// or 16, but `from_str_radix` panics outside 2..=36, so that is not taken on trust.
fn number(v: &DeValue<'_>) -> Option<f64> {
    match v {
        DeValue::Integer(i) if (2..=36).contains(&i.radix()) => {
            let n = i128::from_str_radix(i.as_str(), i.radix());
            // Longer still: no range holds it.
            Some(n.map_or(f64::INFINITY, |n| n as f64))
        }
        DeValue::Float(f) => f.as_str().parse::<f64>().ok(),
        _ => None,
    }
}

/// How a TOML value's type is named to a designer.
pub(crate) fn type_name(v: &DeValue<'_>) -> &'static str {
    match v {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "a whole number",
        DeValue::Float(_) => "a decimal number",
        DeValue::Boolean(_) => "true/false",
        DeValue::Datetime(_) => "a date/time",
        DeValue::Array(_) => "a list",
        DeValue::Table(_) => "a table",
    }
}

/// Where a table sits in its file, for messages: its dotted keys, and its 1-based number
/// when it is an entry of an array of tables.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Scope {
    keys: Vec<String>,
    entry: Option<usize>,
}

impl Scope {
    pub(crate) fn key(&self, key: &str) -> Scope {
        let keys = self.keys.iter().cloned().chain([key.to_string()]).collect();
        Scope { keys, entry: None }
    }

    pub(crate) fn entry(&self, index: usize) -> Scope {
        let keys = self.keys.clone();
        Scope {
            keys,
            entry: Some(index + 1),
        }
    }

    pub(crate) fn is_top(&self) -> bool {
        self.keys.is_empty()
    }

    fn dotted(&self) -> String {
        self.keys.join(".")
    }

    /// How a key in this scope is named in a message.
    pub(crate) fn field(&self, key: &str) -> String {
        match (self.entry, self.keys.last()) {
            (Some(n), Some(kind)) => format!("`{key}` of {kind} #{n}"),
            (_, None) => format!("`{key}`"),
            _ => format!("`{}.{key}`", self.dotted()),
        }
    }

    /// "in ..." for messages about the scope itself.
    pub(crate) fn location(&self) -> String {
        match (self.entry, self.keys.last()) {
            (Some(n), Some(kind)) => format!("in {kind} #{n} (`[[{}]]`)", self.dotted()),
            (_, None) => "at the top level".to_string(),
            _ => format!("in `[{}]`", self.dotted()),
        }
    }

    /// The table header a designer would look for.
    pub(crate) fn header(&self) -> String {
        match (self.entry, self.keys.last()) {
            (Some(_), Some(_)) => format!("`[[{}]]`", self.dotted()),
            (_, None) => "the top level (before any `[table]` line)".to_string(),
            _ => format!("`[{}]`", self.dotted()),
        }
    }
}
