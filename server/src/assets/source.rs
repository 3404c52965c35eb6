//! One asset file's text, and turning byte offsets in it into `line:column` problems.
//!
//! Must not read the file system: callers hand over the text. Must never panic on an
//! offset, however wrong (past the end, inside a multi-byte character).

use std::ops::Range;

use super::report::Problem;

/// A file being validated: the name problems are reported under, and its text.
#[derive(Debug, Clone)]
pub struct Source {
    /// Display name: relative to the assets directory, or the path as given.
    pub name: String,
    /// The whole file.
    pub text: String,
}

impl Source {
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Self {
        Source {
            name: name.into(),
            text: text.into(),
        }
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn position(&self, offset: usize) -> (u32, u32) {
        line_column(self.text.as_bytes(), offset)
    }

    /// A problem located at the start of `span`.
    pub fn problem(
        &self,
        span: Range<usize>,
        message: impl Into<String>,
        help: Option<String>,
    ) -> Problem {
        let (line, column) = self.position(span.start);
        Problem {
            file: self.name.clone(),
            line,
            column,
            message: message.into(),
            help,
        }
    }

    /// The source text of a span, for quoting a value exactly as the designer wrote it.
    pub fn snippet(&self, span: Range<usize>) -> &str {
        self.text.get(span).unwrap_or("")
    }
}

/// Works on bytes so that an offset inside a multi-byte character (or past the end) is
/// clamped rather than a slicing panic. Columns count characters because that is what an
/// editor's cursor shows; a leading byte-order mark is invisible there, so it is skipped.
pub(crate) fn line_column(bytes: &[u8], offset: usize) -> (u32, u32) {
    let offset = offset.min(bytes.len());
    let before = &bytes[..offset];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let mut line_bytes = &before[line_start..];
    if line_start == 0 {
        line_bytes = line_bytes
            .strip_prefix(b"\xEF\xBB\xBF")
            .unwrap_or(line_bytes);
    }
    // Continuation bytes (0b10xx_xxxx) do not start a character.
    let column = line_bytes.iter().filter(|&&b| b & 0xC0 != 0x80).count() + 1;
    (saturate(line), saturate(column))
}

fn saturate(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_column_counts_lines_and_characters() {
        let text = "a = 1\nbé = 2\n";
        assert_eq!(line_column(text.as_bytes(), 0), (1, 1));
        assert_eq!(line_column(text.as_bytes(), 4), (1, 5));
        assert_eq!(line_column(text.as_bytes(), 6), (2, 1));
        // `=` on line 2 is after `b`, `é` (two bytes) and a space.
        assert_eq!(line_column(text.as_bytes(), 10), (2, 4));
        // Past the end clamps to the end.
        assert_eq!(line_column(text.as_bytes(), 999), (3, 1));
        // Inside `é` does not panic.
        assert_eq!(line_column(text.as_bytes(), 8), (2, 3));
        assert_eq!(line_column(b"\xEF\xBB\xBFkey", 3), (1, 1));
    }
}
