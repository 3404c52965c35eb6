//! TOML text to a spanned document, with syntax errors turned into located problems.
//!
//! Must not interpret any keys; that is `game` and `map`'s job.

use toml::Spanned;
use toml::de::DeTable;

use super::report::Problem;
use super::source::Source;

/// Parses `src`. On a syntax error, returns it as a problem together with the parser's
/// best-effort recovery, which callers may mine for values (e.g. the player radius) but
/// should not report further problems from.
///
/// Only the earliest syntax error is reported: after one, the parser's recovery mostly
/// produces echoes of it (one missing `]` yields half a dozen errors on later lines), and
/// a designer fixes them top-down anyway.
pub(crate) fn parse(src: &Source) -> (Spanned<DeTable<'_>>, Option<Problem>) {
    let (doc, errors) = DeTable::parse_recoverable(&src.text);
    let first = errors
        .iter()
        .min_by_key(|e| e.span().map_or(0, |s| s.start))
        .map(|error| {
            let span = error.span().unwrap_or(0..0);
            let message = error.message().trim().replace('\n', "; ");
            src.problem(
                span,
                format!("invalid TOML: {message}"),
                syntax_help(&message),
            )
        });
    (doc, first)
}

/// Extra words for the syntax errors designers hit most.
fn syntax_help(message: &str) -> Option<String> {
    if message.contains("string values must be quoted") || message.contains("unquoted") {
        Some("if this is text, put it in double quotes (`\"courtyard\"`); if it is a number, check it for typos; each `key = value` needs a line of its own".to_string())
    } else if message.contains("duplicate key") {
        Some("each key may appear only once per table; for several walls, spawns or pickups start each one with `[[wall]]`, `[[spawn]]` or `[[pickup]]`".to_string())
    } else {
        None
    }
}
