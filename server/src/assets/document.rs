//! One TOML file read the serde way: parsed with the position of every key and value,
//! deserialized into serde types without stopping at the first bad value, and compared
//! with those types to find keys nobody reads.
//!
//! A value serde refuses (text where a number belongs, a number too big for its type) is
//! left out and the type read again, so one load finds every such value and the type
//! holds its default in each one's place. The validation pass ([`Check`]) words each
//! refusal for a designer; [`Document::finish`] words any it did not claim. Unknown keys
//! are found by comparing the file with the types' own serialized shape, so what serde
//! reads and what the check accepts cannot drift apart.
//!
//! Must not read files or know any file's layout: types declare it through serde.

use std::ops::Range;

use serde::Serialize;
use serde::de::DeserializeOwned;
use toml::Spanned;
use toml::de::{DeArray, DeString, DeTable, DeValue, ValueDeserializer};

use super::check::{Check, Scope, type_name};
use super::report::Problem;
use super::source::Source;
use super::suggest;

/// Refused values one file may have before the rest of it is given up on: each costs a
/// fresh read of the whole file.
const MAX_REFUSED: usize = 200;

/// A parsed TOML file and what reading and checking it found.
#[derive(Debug)]
pub struct Document<'s> {
    src: &'s Source,
    root: Spanned<DeTable<'s>>,
    syntax: Option<Problem>,
    log: Log,
}

/// What reading and checking one file found so far.
#[derive(Debug, Default)]
pub(crate) struct Log {
    /// Values serde refused and no check has explained yet, with serde's reason.
    pub refused: Vec<(Range<usize>, String)>,
    /// Values left out of every read: refused ones and those a check found invalid.
    pub invalid: Vec<Range<usize>>,
    pub problems: Vec<Problem>,
}

impl<'s> Document<'s> {
    /// Parses `src`. Only the earliest syntax error is kept: after one, the parser's
    /// recovery mostly produces echoes of it (one missing `]` yields half a dozen errors
    /// on later lines), and a designer fixes them top-down anyway. The recovered document
    /// can still be read, but [`Document::finish`] then reports the syntax error alone.
    pub fn parse(src: &'s Source) -> Document<'s> {
        let (root, errors) = DeTable::parse_recoverable(&src.text);
        let syntax = errors
            .iter()
            .min_by_key(|e| e.span().map_or(0, |s| s.start))
            .map(|error| {
                let message = error.message().trim().replace('\n', "; ");
                let help = syntax_help(&message);
                src.problem(
                    error.span().unwrap_or(0..0),
                    format!("invalid TOML: {message}"),
                    help,
                )
            });
        Document {
            src,
            root,
            syntax,
            log: Log::default(),
        }
    }

    /// Whether the file is valid TOML.
    pub fn syntax_ok(&self) -> bool {
        self.syntax.is_none()
    }

    /// Reads `T`, leaving out every value `T` refuses and every value a check has found
    /// invalid, so `T` holds its defaults in their place. Every field of `T` needs a
    /// default (`#[serde(default)]`): whether a key must be written is for the
    /// validation pass to say ([`Check::required`]).
    pub fn read<T: DeserializeOwned + Default>(&mut self) -> T {
        let table = DeValue::Table(self.root.get_ref().clone());
        let mut doc = Spanned::new(self.root.span(), table);
        for span in &self.log.invalid {
            leave_out(doc.get_mut(), span);
        }
        for _ in 0..MAX_REFUSED {
            let error = match T::deserialize(ValueDeserializer::from(doc.clone())) {
                Ok(value) => return value,
                Err(error) => error,
            };
            let Some(span) = error.span().filter(|s| leave_out(doc.get_mut(), s)) else {
                let at = error.span().unwrap_or(0..0);
                let message = format!("cannot read: {}", error.message());
                self.log.problems.push(self.src.problem(at, message, None));
                return T::default();
            };
            if !self.log.invalid.contains(&span) {
                self.log.invalid.push(span.clone());
                self.log.refused.push((span, error.message().to_owned()));
            }
        }
        let message =
            format!("more than {MAX_REFUSED} values of the wrong type; the rest was not read");
        let help = Some("fix the values listed and check again".to_string());
        self.log
            .problems
            .push(self.src.problem(0..0, message, help));
        T::default()
    }

    /// [`Document::read`], then every key that `T` does not know is reported.
    pub fn read_checked<T: DeserializeOwned + Default + Serialize>(&mut self) -> T {
        let value = self.read::<T>();
        self.unknown_keys(&known_keys(&value));
        value
    }

    /// Reports every key of the file that `known` (see [`known_keys`]) does not have, with
    /// a close known key, or the table the key belongs in, or the keys there are.
    pub fn unknown_keys(&mut self, known: &toml::Table) {
        let mut homes = Vec::new();
        collect_homes(known, &Scope::default(), &mut homes);
        for (scope, key, _) in keys(self.root.get_ref(), Scope::default()) {
            let name = key.get_ref().as_ref();
            // A table with no counterpart is itself unknown (or refused), and reported so.
            let Some((_, here)) = homes.iter().find(|(s, _)| s.header() == scope.header()) else {
                continue;
            };
            if !here.iter().any(|k| k == name) {
                let problem = unknown(self.src, key, here, &scope, &homes);
                self.log.problems.push(problem);
            }
        }
    }

    /// The validation pass over the whole file.
    pub fn check(&mut self) -> Check<'_> {
        Check::new(self.src, self.root.get_ref(), &mut self.log)
    }

    /// Every problem found: the syntax error alone if there is one; otherwise everything
    /// reported, and every refused value no check explained.
    pub fn finish(self) -> Vec<Problem> {
        if let Some(syntax) = self.syntax {
            return vec![syntax];
        }
        let mut problems = self.log.problems;
        for (span, reason) in self.log.refused {
            let found = describe(self.root.get_ref(), &span);
            let wrong_type = reason.strip_prefix("invalid type: ");
            let message = match (found, wrong_type.and_then(|r| r.split_once(", expected "))) {
                (Some((field, value)), Some((_, expected))) => format!(
                    "{field} must be {}, found {}",
                    plain(expected),
                    type_name(value)
                ),
                (Some((field, _)), None) => format!("{field} cannot be read: {reason}"),
                (None, _) => format!("cannot read: {reason}"),
            };
            problems.push(self.src.problem(span, message, None));
        }
        problems
    }
}

/// The keys a serde type has, as its value serializes: what [`Document::unknown_keys`]
/// compares a file with. Merge several with [`toml::Table::extend`] when types share a
/// file.
///
/// # Panics
/// If `value` does not serialize as a TOML table: settings types are structs.
pub fn known_keys<T: Serialize>(value: &T) -> toml::Table {
    toml::Table::try_from(value).expect("a settings type serializes as a TOML table")
}

/// Removes the value at `span` from the tables and arrays under `value`; whether it was
/// there.
fn leave_out(value: &mut DeValue<'_>, span: &Range<usize>) -> bool {
    match value {
        DeValue::Table(table) => {
            let hit = table.iter().find(|(_, v)| v.span() == *span);
            if let Some(key) = hit.map(|(k, _)| k.get_ref().to_string()) {
                table.remove(key.as_str());
                return true;
            }
            table.iter_mut().any(|(_, v)| leave_out(v.get_mut(), span))
        }
        DeValue::Array(items) => {
            if let Some(i) = items.iter().position(|v| v.span() == *span) {
                let kept = std::mem::replace(items, DeArray::new()).into_iter();
                *items = kept
                    .enumerate()
                    .filter_map(|(j, v)| (j != i).then_some(v))
                    .collect();
                return true;
            }
            items.iter_mut().any(|v| leave_out(v.get_mut(), span))
        }
        _ => false,
    }
}

/// Every key of `table` and of the tables and entries under it, with its scope.
type Keys<'d> = Vec<(Scope, &'d Spanned<DeString<'d>>, &'d Spanned<DeValue<'d>>)>;

fn keys<'d>(table: &'d DeTable<'d>, scope: Scope) -> Keys<'d> {
    let mut out = Vec::new();
    for (key, value) in table {
        let inner = scope.key(key.get_ref());
        out.push((scope.clone(), key, value));
        match value.get_ref() {
            DeValue::Table(t) => out.extend(keys(t, inner)),
            DeValue::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    if let DeValue::Table(t) = item.get_ref() {
                        out.extend(keys(t, inner.entry(i)));
                    }
                }
            }
            _ => {}
        }
    }
    out
}

/// How the value at `span` is named in a message, and the value.
fn describe<'d>(table: &'d DeTable<'d>, span: &Range<usize>) -> Option<(String, &'d DeValue<'d>)> {
    keys(table, Scope::default())
        .into_iter()
        .find_map(|(scope, key, value)| {
            let field = scope.field(key.get_ref());
            if value.span() == *span {
                return Some((field, value.get_ref()));
            }
            let DeValue::Array(items) = value.get_ref() else {
                return None;
            };
            let (i, item) = items.iter().enumerate().find(|(_, v)| v.span() == *span)?;
            Some((format!("entry {} of {field}", i + 1), item.get_ref()))
        })
}

/// What serde expected, in a designer's words.
fn plain(expected: &str) -> &str {
    match expected {
        "f32" | "f64" => "a number",
        "u8" | "u16" | "u32" | "u64" | "i8" | "i16" | "i32" | "i64" => "a whole number",
        "a string" | "a borrowed string" => "text in double quotes",
        "a boolean" => "true or false",
        "a sequence" => "a list",
        e if e.starts_with("struct ") || e == "a map" => "a table",
        other => other,
    }
}

/// Every table of `known` with its keys, the top level first: where a misplaced key
/// belongs. The entries of an array of tables count as one table.
fn collect_homes(known: &toml::Table, scope: &Scope, out: &mut Vec<(Scope, Vec<String>)>) {
    out.push((scope.clone(), known.keys().cloned().collect()));
    for (key, value) in known {
        match value {
            toml::Value::Table(t) => collect_homes(t, &scope.key(key), out),
            toml::Value::Array(items) if items.iter().any(toml::Value::is_table) => {
                collect_homes(&entry_keys(items), &scope.key(key).entry(0), out);
            }
            _ => {}
        }
    }
}

/// The keys of an array of tables: those of its entries together.
fn entry_keys(items: &[toml::Value]) -> toml::Table {
    let mut keys = toml::Table::new();
    for item in items {
        if let toml::Value::Table(t) = item {
            keys.extend(t.clone());
        }
    }
    keys
}

/// An unknown key: a close known key, else the table it belongs in, else the known keys.
fn unknown(
    src: &Source,
    key: &Spanned<DeString<'_>>,
    here: &[String],
    scope: &Scope,
    homes: &[(Scope, Vec<String>)],
) -> Problem {
    let name = key.get_ref().as_ref();
    let here: Vec<&str> = here.iter().map(String::as_str).collect();
    let help = if let Some(close) = suggest::closest(name, &here) {
        format!("did you mean `{close}`?")
    } else if let Some(home) = elsewhere(name, scope, homes) {
        home
    } else if here.is_empty() {
        format!("{} takes no keys", scope.header())
    } else {
        format!("known keys in {}: {}", scope.header(), here.join(", "))
    };
    let message = format!("unknown key `{name}` {}", scope.location());
    src.problem(key.span(), message, Some(help))
}

/// "`damage` belongs in `[weapon]`" when a key sits in the wrong table.
fn elsewhere(key: &str, here: &Scope, homes: &[(Scope, Vec<String>)]) -> Option<String> {
    let has = |keys: &Vec<String>| keys.iter().any(|k| k == key);
    if !here.is_top() && homes.first().is_some_and(|(_, keys)| has(keys)) {
        return Some(format!(
            "`{key}` is a top-level key: move it above the first `[table]` line"
        ));
    }
    let others: Vec<String> = homes
        .iter()
        .filter(|(scope, keys)| !scope.is_top() && scope.header() != here.header() && has(keys))
        .map(|(scope, _)| scope.header())
        .collect();
    match others.as_slice() {
        [] => None,
        [one] => Some(format!("`{key}` belongs in {one}")),
        many => Some(format!("`{key}` is a key of {}", many.join(" and "))),
    }
}

/// Extra words for the syntax errors designers hit most.
fn syntax_help(message: &str) -> Option<String> {
    if message.contains("string values must be quoted") || message.contains("unquoted") {
        Some("if this is text, put it in double quotes (`\"courtyard\"`); if it is a number, check it for typos; each `key = value` needs a line of its own".to_string())
    } else if message.contains("duplicate key") {
        Some("each key may appear only once per table; for several entries of a list, start each one with `[[name]]`".to_string())
    } else {
        None
    }
}
