//! Problems found while loading assets, and their text and JSON renderings.
//!
//! Pure formatting: must not read files or decide what counts as a problem. Positions are
//! already resolved to 1-based line and column by the time a [`Problem`] exists.

use std::collections::BTreeSet;

/// One thing wrong with the assets, located in a file.
///
/// `line` and `column` are 1-based; the column counts characters (not bytes). Problems
/// about a whole file (missing, unreadable, no spawn points) point at 1:1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize)]
#[error("{file}:{line}:{column}: error: {message}")]
pub struct Problem {
    /// Path as given; relative to the assets directory (with `/`) when loading a directory.
    pub file: String,
    /// 1-based line.
    pub line: u32,
    /// 1-based column, in characters.
    pub column: u32,
    /// What is wrong.
    pub message: String,
    /// How to fix it, when there is something useful to say.
    pub help: Option<String>,
}

impl Problem {
    /// A problem about a file as a whole (missing, unreadable, badly named), at 1:1.
    pub fn file(file: impl Into<String>, message: impl Into<String>, help: Option<String>) -> Self {
        Problem {
            file: file.into(),
            line: 1,
            column: 1,
            message: message.into(),
            help,
        }
    }
}

/// Every problem found in one load, in file then position order.
#[derive(Debug, Clone, Default, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.summary())]
pub struct Report {
    /// The problems; empty means the assets are valid.
    pub problems: Vec<Problem>,
}

impl Report {
    /// True when nothing is wrong.
    pub fn is_empty(&self) -> bool {
        self.problems.is_empty()
    }

    /// Sorts by file, then line, then column, keeping discovery order for ties so related
    /// problems on one entry stay in the order they were explained.
    pub(crate) fn sort(&mut self) {
        self.problems.sort_by(|a, b| {
            (a.file.as_str(), a.line, a.column).cmp(&(b.file.as_str(), b.line, b.column))
        });
    }

    fn file_count(&self) -> usize {
        self.problems
            .iter()
            .map(|p| p.file.as_str())
            .collect::<BTreeSet<_>>()
            .len()
    }

    /// One line, e.g. `3 problems in 2 files`.
    pub fn summary(&self) -> String {
        let n = self.problems.len();
        if n == 0 {
            return "no problems found".to_string();
        }
        let files = self.file_count();
        format!(
            "{n} {} in {files} {}",
            if n == 1 { "problem" } else { "problems" },
            if files == 1 { "file" } else { "files" }
        )
    }

    /// Compiler-style text: `file:line:column: error: message`, then `  help: ...` lines,
    /// then a summary line.
    pub fn render_text(&self) -> String {
        let mut out = String::new();
        for p in &self.problems {
            out.push_str(&format!("{p}\n"));
            if let Some(help) = &p.help {
                for line in help.lines() {
                    out.push_str(&format!("  help: {line}\n"));
                }
            }
        }
        if self.is_empty() {
            out.push_str("ok: no problems found\n");
        } else {
            out.push_str(&format!("error: {}\n", self.summary()));
        }
        out
    }

    /// JSON for editors: `{"problems": [{file, line, column, message, help}],
    /// "problem_count", "file_count"}`; `help` is `null` when absent.
    pub fn render_json(&self) -> String {
        #[derive(serde::Serialize)]
        struct Json<'a> {
            problems: &'a [Problem],
            problem_count: usize,
            file_count: usize,
        }
        let json = Json {
            problems: &self.problems,
            problem_count: self.problems.len(),
            file_count: self.file_count(),
        };
        // Strings and integers only: serialisation cannot fail, but a panic-free fallback
        // costs nothing.
        match serde_json::to_string_pretty(&json) {
            Ok(text) => text + "\n",
            Err(e) => format!("{{\"problems\": [], \"error\": {:?}}}\n", e.to_string()),
        }
    }
}

impl From<Vec<Problem>> for Report {
    fn from(problems: Vec<Problem>) -> Self {
        let mut report = Report { problems };
        report.sort();
        report
    }
}
