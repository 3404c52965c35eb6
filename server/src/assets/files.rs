//! Reading asset files: each capped at [`MAX_FILE_BYTES`], decoded as UTF-8 (or reported
//! at the first bad byte), and remembered for the assets version.
//!
//! The only module that touches the file system, and only to list directories and read
//! the files being loaded. Deterministic: listings come sorted.

use std::io::Read as _;
use std::path::Path;

use super::hash;
use super::report::Problem;
use super::source::{Source, line_column};

/// Largest asset file accepted. Real files are a few kilobytes; this only stops a stray
/// huge file from being read into memory.
pub const MAX_FILE_BYTES: u64 = 1 << 20;

#[derive(Debug, thiserror::Error)]
enum ReadError {
    #[error("file not found")]
    Missing,
    #[error("file is larger than {} KiB; asset files are small text files", MAX_FILE_BYTES / 1024)]
    TooLarge,
    #[error("cannot read the file: {0}")]
    Io(#[from] std::io::Error),
}

/// An assets directory as a game reads its own files from it: every file read is capped,
/// decoded and hashed into the version, and every problem is kept for the report.
#[derive(Debug)]
pub struct Files<'a> {
    dir: &'a Path,
    /// `(path relative to dir, bytes)` of every file read.
    read: Vec<(String, Vec<u8>)>,
    problems: Vec<Problem>,
}

impl<'a> Files<'a> {
    pub(crate) fn new(dir: &'a Path) -> Files<'a> {
        Files {
            dir,
            read: Vec::new(),
            problems: Vec::new(),
        }
    }

    /// Whether `rel` (a path relative to the directory, with `/`) exists.
    pub fn exists(&self, rel: &str) -> bool {
        self.dir.join(rel).exists()
    }

    /// Reads `rel`; a missing, unreadable, oversized or non-UTF-8 file is reported (under
    /// `rel`) and gives `None`.
    pub fn read(&mut self, rel: &str) -> Option<Source> {
        let bytes = match read_limited(&self.dir.join(rel)) {
            Ok(bytes) => bytes,
            Err(e) => {
                self.problems.push(Problem::file(rel, e.to_string(), None));
                return None;
            }
        };
        let source = decode(rel, &bytes);
        self.read.push((rel.to_string(), bytes));
        source.map_err(|p| self.problems.push(p)).ok()
    }

    /// The names of the visible regular files in the subdirectory `rel`, sorted; `None`
    /// when there is no such directory. Names starting with a dot (editor droppings) are
    /// left out.
    pub fn list(&mut self, rel: &str) -> Option<Vec<String>> {
        let dir = self.dir.join(rel);
        if !dir.is_dir() {
            return None;
        }
        let mut names = Vec::new();
        let cannot = |e: std::io::Error| {
            let message = format!("cannot list the `{rel}/` directory: {e}");
            Problem::file(rel, message, None)
        };
        match std::fs::read_dir(&dir) {
            Ok(entries) => {
                for entry in entries {
                    match entry {
                        Ok(entry) => {
                            let name = entry.file_name().to_string_lossy().into_owned();
                            if !name.starts_with('.') && entry.path().is_file() {
                                names.push(name);
                            }
                        }
                        Err(e) => self.problems.push(cannot(e)),
                    }
                }
            }
            Err(e) => self.problems.push(cannot(e)),
        }
        names.sort();
        Some(names)
    }

    /// Adds problems to the report.
    pub fn report(&mut self, problems: impl IntoIterator<Item = Problem>) {
        self.problems.extend(problems);
    }

    /// The version (a content hash of every file read) and every problem.
    pub(crate) fn finish(mut self) -> (String, Vec<Problem>) {
        self.read.sort();
        let version = hash::version(self.read.iter().map(|(r, b)| (r.as_str(), b.as_slice())));
        (version, self.problems)
    }
}

/// Reads one file outside an assets directory (a map given to `render-map`): capped and
/// decoded like [`Files::read`], problems reported under `name`.
pub fn read_file(path: &Path, name: &str) -> Result<Source, Problem> {
    let bytes = read_limited(path).map_err(|e| Problem::file(name, e.to_string(), None))?;
    decode(name, &bytes)
}

/// UTF-8 text, or a problem at the first bad byte.
fn decode(name: &str, bytes: &[u8]) -> Result<Source, Problem> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Ok(Source::new(name, text)),
        Err(e) => {
            let (line, column) = line_column(bytes, e.valid_up_to());
            Err(Problem {
                file: name.to_string(),
                line,
                column,
                message: "the file is not valid UTF-8 text".to_string(),
                help: Some("save it as UTF-8 (plain text) in your editor".to_string()),
            })
        }
    }
}

fn read_limited(path: &Path) -> Result<Vec<u8>, ReadError> {
    let file = std::fs::File::open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => ReadError::Missing,
        _ => ReadError::Io(e),
    })?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(ReadError::TooLarge);
    }
    Ok(bytes)
}
