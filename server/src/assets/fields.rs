//! Typed, position-aware reads from one parsed TOML table: numbers with ranges, strings,
//! sub-tables and arrays of tables, each problem pointing at the offending key or value.
//!
//! Must not know any particular file's layout: callers name the keys they accept, and
//! every key they ask for becomes a known key, so the unknown-key check and its
//! suggestions can never drift from what is actually read.

use std::ops::Range;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::report::Problem;
use super::source::Source;
use super::suggest;

/// Where a table sits, for messages.
#[derive(Debug, Clone)]
pub(crate) enum Scope {
    /// The file's top level.
    Top,
    /// A `[name]` table.
    Table(&'static str),
    /// Entry `index` (1-based) of a `[[kind]]` array.
    Entry { kind: &'static str, index: usize },
}

impl Scope {
    /// How a key in this scope is named in a message.
    pub(crate) fn field(&self, key: &str) -> String {
        match self {
            Scope::Top => format!("`{key}`"),
            Scope::Table(t) => format!("`{t}.{key}`"),
            Scope::Entry { kind, index } => format!("`{key}` of {kind} #{index}"),
        }
    }

    /// "in ..." for messages about the scope itself.
    pub(crate) fn location(&self) -> String {
        match self {
            Scope::Top => "at the top level".to_string(),
            Scope::Table(t) => format!("in `[{t}]`"),
            Scope::Entry { kind, index } => format!("in {kind} #{index} (`[[{kind}]]`)"),
        }
    }

    /// The table header a designer would look for.
    pub(crate) fn header(&self) -> String {
        match self {
            Scope::Top => "the top level (before any `[table]` line)".to_string(),
            Scope::Table(t) => format!("`[{t}]`"),
            Scope::Entry { kind, .. } => format!("`[[{kind}]]`"),
        }
    }
}

/// An allowed numeric range and its unit, inclusive at both ends.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub min: f64,
    pub max: f64,
    /// Plural unit for messages: "units/s", "seconds".
    pub unit: &'static str,
}

pub(crate) const fn limits(min: f64, max: f64, unit: &'static str) -> Limits {
    Limits { min, max, unit }
}

impl Limits {
    fn contains(&self, v: f64) -> bool {
        v >= self.min && v <= self.max
    }

    pub(crate) fn describe(&self) -> String {
        format!("{} to {} {}", self.min, self.max, self.unit)
    }
}

/// A list of strings as written.
#[derive(Debug, Clone)]
pub(crate) struct StringList {
    /// The whole `[...]`.
    pub span: Range<usize>,
    /// The string entries with their own spans.
    pub items: Vec<(String, Range<usize>)>,
    /// Entries written, strings or not.
    pub len: usize,
}

/// Keys found in a table but never asked for.
#[derive(Debug, Clone)]
pub(crate) struct Unknowns {
    pub scope: Scope,
    pub known: Vec<&'static str>,
    pub keys: Vec<(String, Range<usize>)>,
}

/// Reads keys out of one table, remembering which keys exist.
#[derive(Debug)]
pub(crate) struct TableReader<'a, 'i> {
    src: &'a Source,
    table: &'a DeTable<'i>,
    scope: Scope,
    /// Blamed for missing required keys.
    span: Range<usize>,
    known: Vec<&'static str>,
}

impl<'a, 'i> TableReader<'a, 'i> {
    pub(crate) fn new(
        src: &'a Source,
        table: &'a DeTable<'i>,
        scope: Scope,
        span: Range<usize>,
    ) -> Self {
        TableReader {
            src,
            table,
            scope,
            span,
            known: Vec::new(),
        }
    }

    pub(crate) fn scope(&self) -> &Scope {
        &self.scope
    }

    pub(crate) fn span(&self) -> Range<usize> {
        self.span.clone()
    }

    /// Declares `key` as known and returns its value if present.
    pub(crate) fn get(&mut self, key: &'static str) -> Option<&'a Spanned<DeValue<'i>>> {
        if !self.known.contains(&key) {
            self.known.push(key);
        }
        self.table.get(key)
    }

    /// An optional number; integers are accepted where decimals are expected. Falls back to
    /// `default` (after reporting) when absent or invalid.
    pub(crate) fn float(
        &mut self,
        out: &mut Vec<Problem>,
        key: &'static str,
        lim: Limits,
        default: f32,
    ) -> f32 {
        self.float_checked(out, key, Some((lim, default)), false)
            .map_or(default, |(v, _)| v)
    }

    /// A required finite number with its value span, optionally range-checked (map
    /// coordinates are not: geometry checks them against the map later).
    pub(crate) fn required_float(
        &mut self,
        out: &mut Vec<Problem>,
        key: &'static str,
        lim: Option<Limits>,
    ) -> Option<(f32, Range<usize>)> {
        let lim = lim.map(|l| (l, l.min as f32));
        self.float_checked(out, key, lim, true)
    }

    /// `lim` comes with an example value for help texts.
    fn float_checked(
        &mut self,
        out: &mut Vec<Problem>,
        key: &'static str,
        lim: Option<(Limits, f32)>,
        required: bool,
    ) -> Option<(f32, Range<usize>)> {
        let example = lim.map(|(_, e)| e);
        let lim = lim.map(|(l, _)| l);
        let Some(value) = self.get(key) else {
            if required {
                out.push(self.missing(key, lim));
            }
            return None;
        };
        let span = value.span();
        let parsed = match value.get_ref() {
            DeValue::Integer(i) => parse_int(i).map(|n| n as f64),
            DeValue::Float(f) => f.as_str().parse::<f64>().ok(),
            other => {
                let mut p = self.wrong_type(key, span, "a number", other);
                if p.help.is_none() {
                    p.help = Some(match (lim, example) {
                        (Some(l), Some(e)) => {
                            format!("use a number from {}, e.g. `{key} = {e}`", l.describe())
                        }
                        _ => format!("use a plain number, e.g. `{key} = 12.5`"),
                    });
                }
                out.push(p);
                return None;
            }
        };
        let written = self.src.snippet(span.clone()).to_string();
        let Some(v) = parsed.filter(|v| v.is_finite()) else {
            out.push(self.src.problem(
                span,
                format!(
                    "{} must be a finite number, found `{written}`",
                    self.scope.field(key)
                ),
                lim.map(|l| format!("allowed: {}", l.describe())),
            ));
            return None;
        };
        if let Some(lim) = lim
            && !lim.contains(v)
        {
            out.push(self.out_of_range(key, span, &written, lim));
            return None;
        }
        // Ranges are far inside f32's; finite f64 -> f32 only rounds.
        Some((v as f32, span))
    }

    /// An optional whole number in a range. Falls back to `default` when absent or invalid.
    pub(crate) fn int(
        &mut self,
        out: &mut Vec<Problem>,
        key: &'static str,
        lim: Limits,
        default: i64,
    ) -> i64 {
        self.int_spanned(out, key, lim, default)
            .map_or(default, |(v, _)| v)
    }

    /// Like [`Self::int`] but returns the value span, for cross-field checks; `None` when
    /// absent or invalid (already reported).
    pub(crate) fn int_spanned(
        &mut self,
        out: &mut Vec<Problem>,
        key: &'static str,
        lim: Limits,
        default: i64,
    ) -> Option<(i64, Range<usize>)> {
        let value = self.get(key)?;
        let span = value.span();
        let written = self.src.snippet(span.clone()).to_string();
        match value.get_ref() {
            DeValue::Integer(i) => match parse_int(i) {
                Some(n) if lim.contains(n as f64) => Some((n, span)),
                _ => {
                    out.push(self.out_of_range(key, span, &written, lim));
                    None
                }
            },
            DeValue::Float(f) => {
                let whole = f
                    .as_str()
                    .parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite() && v.fract() == 0.0 && v.abs() < 1e15);
                let help = match whole {
                    Some(v) => format!("write it without a decimal point: `{key} = {v}`"),
                    None => format!("allowed: whole numbers from {}", lim.describe()),
                };
                out.push(self.src.problem(
                    span,
                    format!(
                        "{} must be a whole number, found `{written}`",
                        self.scope.field(key)
                    ),
                    Some(help),
                ));
                None
            }
            other => {
                let mut p = self.wrong_type(key, span, "a whole number", other);
                if p.help.is_none() {
                    p.help = Some(format!(
                        "use a whole number from {}, e.g. `{key} = {default}`",
                        lim.describe()
                    ));
                }
                out.push(p);
                None
            }
        }
    }

    /// An optional list of strings. `None` when absent or not a list; entries that are not
    /// strings are reported and left out of `items`.
    pub(crate) fn strings(
        &mut self,
        out: &mut Vec<Problem>,
        key: &'static str,
    ) -> Option<StringList> {
        let value = self.get(key)?;
        let span = value.span();
        let DeValue::Array(items) = value.get_ref() else {
            out.push(self.wrong_type(
                key,
                span,
                "a list of names like `[\"a\", \"b\"]`",
                value.get_ref(),
            ));
            return None;
        };
        let mut found = Vec::new();
        for (n, item) in items.iter().enumerate() {
            match item.get_ref() {
                DeValue::String(s) => found.push((s.to_string(), item.span())),
                other => out.push(self.src.problem(
                    item.span(),
                    format!(
                        "entry {} of {} must be a string, found {}",
                        n + 1,
                        self.scope.field(key),
                        type_name(other)
                    ),
                    Some("put names in double quotes, e.g. `\"courtyard\"`".to_string()),
                )),
            }
        }
        Some(StringList {
            span,
            items: found,
            len: items.len(),
        })
    }

    /// An optional `[key]` table.
    pub(crate) fn table(
        &mut self,
        out: &mut Vec<Problem>,
        key: &'static str,
    ) -> Option<TableReader<'a, 'i>> {
        let value = self.get(key)?;
        match value.get_ref() {
            DeValue::Table(t) => Some(TableReader::new(
                self.src,
                t,
                Scope::Table(key),
                value.span(),
            )),
            other => {
                out.push(self.wrong_type(key, value.span(), &format!("a `[{key}]` table"), other));
                None
            }
        }
    }

    /// An optional `[[key]]` array of tables; each entry gets its own reader. Entries that
    /// are not tables are reported and skipped, but still count for numbering so `#n`
    /// matches the n-th entry in the file.
    pub(crate) fn entries(
        &mut self,
        out: &mut Vec<Problem>,
        key: &'static str,
    ) -> Vec<TableReader<'a, 'i>> {
        let Some(value) = self.get(key) else {
            return Vec::new();
        };
        let DeValue::Array(items) = value.get_ref() else {
            let mut p = self.wrong_type(
                key,
                value.span(),
                &format!("a list of `[[{key}]]` entries"),
                value.get_ref(),
            );
            p.help = Some(format!(
                "start each entry with `[[{key}]]` (double brackets)"
            ));
            out.push(p);
            return Vec::new();
        };
        let mut readers = Vec::new();
        for (n, item) in items.iter().enumerate() {
            let scope = Scope::Entry {
                kind: key,
                index: n + 1,
            };
            match item.get_ref() {
                DeValue::Table(t) => {
                    readers.push(TableReader::new(self.src, t, scope, item.span()))
                }
                other => out.push(self.src.problem(
                    item.span(),
                    format!(
                        "{kind} #{} must be a table, found {}",
                        n + 1,
                        type_name(other),
                        kind = key
                    ),
                    Some(format!(
                        "start each entry with `[[{key}]]` (double brackets)"
                    )),
                )),
            }
        }
        readers
    }

    /// Keys present but never asked for. Call after every read.
    pub(crate) fn finish(self) -> Unknowns {
        let mut keys: Vec<(String, Range<usize>)> = self
            .table
            .iter()
            .filter(|(k, _)| {
                !self
                    .known
                    .iter()
                    .any(|known| *known == k.get_ref().as_ref())
            })
            .map(|(k, _)| (k.get_ref().to_string(), k.span()))
            .collect();
        keys.sort_by_key(|(_, span)| span.start);
        Unknowns {
            scope: self.scope,
            known: self.known,
            keys,
        }
    }

    fn missing(&self, key: &str, lim: Option<Limits>) -> Problem {
        let help = match lim {
            Some(l) => format!("add `{key} = ...` ({})", l.describe()),
            None => format!("add `{key} = ...`"),
        };
        self.src.problem(
            self.span.clone(),
            format!("missing required key `{key}` {}", self.scope.location()),
            Some(help),
        )
    }

    fn wrong_type(
        &self,
        key: &str,
        span: Range<usize>,
        expected: &str,
        found: &DeValue<'_>,
    ) -> Problem {
        let help = match found {
            DeValue::String(s) if s.trim().parse::<f64>().is_ok() => {
                Some(format!("remove the quotes: `{key} = {}`", s.trim()))
            }
            _ => None,
        };
        self.src.problem(
            span,
            format!(
                "{} must be {expected}, found {}",
                self.scope.field(key),
                type_name(found)
            ),
            help,
        )
    }

    fn out_of_range(&self, key: &str, span: Range<usize>, written: &str, lim: Limits) -> Problem {
        self.src.problem(
            span,
            format!(
                "{} is out of range: `{written}` is not between {} and {} {}",
                self.scope.field(key),
                lim.min,
                lim.max,
                lim.unit
            ),
            None,
        )
    }
}

/// Turns unknown keys into problems: a close known key, else another table that has the
/// key (`elsewhere`), else the list of known keys.
pub(crate) fn report_unknowns(
    src: &Source,
    unknowns: &Unknowns,
    elsewhere: &dyn Fn(&str) -> Option<String>,
    out: &mut Vec<Problem>,
) {
    for (key, span) in &unknowns.keys {
        let help = if let Some(close) = suggest::closest(key, &unknowns.known) {
            format!("did you mean `{close}`?")
        } else if let Some(hint) = elsewhere(key) {
            hint
        } else if unknowns.known.is_empty() {
            format!("{} takes no keys", unknowns.scope.header())
        } else {
            format!(
                "known keys in {}: {}",
                unknowns.scope.header(),
                unknowns.known.join(", ")
            )
        };
        out.push(src.problem(
            span.clone(),
            format!("unknown key `{key}` {}", unknowns.scope.location()),
            Some(help),
        ));
    }
}

/// `None` on overflow. The parser only produces radix 2, 8, 10 or 16, but
/// `from_str_radix` panics outside 2..=36, so that is not taken on trust.
fn parse_int(i: &toml::de::DeInteger<'_>) -> Option<i64> {
    let radix = i.radix();
    if !(2..=36).contains(&radix) {
        return None;
    }
    i64::from_str_radix(i.as_str(), radix).ok()
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
