//! Loading: reads `game.toml` and `maps/*.toml` (or one map file), runs every check, and
//! returns validated [`Assets`] or a [`Report`] with every problem in every file.
//!
//! The only module that touches the file system, and only to list `maps/` and read the
//! files being loaded (each capped at [`MAX_FILE_BYTES`]). Deterministic: files are taken
//! in name order and problems are sorted.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read as _;
use std::path::Path;
use std::sync::Arc;

use super::game::read_game;
use super::hash;
use super::map::{is_valid_map_name, name_help, read_map};
use super::model::{ArenaAssets, Assets, MapDef, Tuning};
use super::report::{Problem, Report};
use super::source::{Source, file_problem, line_column};
use super::suggest;

/// Largest asset file accepted. Real maps are a few kilobytes; this only stops a stray
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

/// A file read from disk, named relative to the assets directory.
#[derive(Debug)]
struct Loaded {
    rel: String,
    bytes: Vec<u8>,
}

/// Loads and validates a whole assets directory (`game.toml` plus `maps/*.toml`).
pub fn load_dir(dir: &Path) -> Result<Assets<ArenaAssets>, Report> {
    let mut problems = Vec::new();
    if !dir.is_dir() {
        problems.push(file_problem(
            dir.display().to_string(),
            "assets directory not found (or not a directory)",
            Some("pass the directory that contains `game.toml` and `maps/`".to_string()),
        ));
        return Err(problems.into());
    }

    let game = match read_limited(&dir.join("game.toml")) {
        Ok(bytes) => Some(Loaded {
            rel: "game.toml".to_string(),
            bytes,
        }),
        Err(ReadError::Missing) => {
            problems.push(file_problem(
                "game.toml",
                "`game.toml` is missing",
                Some("create it next to `maps/`; every setting has a default, so a file with just `maps = [\"courtyard\"]` works".to_string()),
            ));
            None
        }
        Err(e) => {
            problems.push(file_problem("game.toml", e.to_string(), None));
            None
        }
    };

    let mut maps = Vec::new();
    let mut present = BTreeSet::new();
    let maps_dir = dir.join("maps");
    if maps_dir.is_dir() {
        match std::fs::read_dir(&maps_dir) {
            Ok(entries) => {
                let mut files: Vec<(String, std::path::PathBuf)> = Vec::new();
                for entry in entries {
                    match entry {
                        Ok(entry) => files.push((
                            entry.file_name().to_string_lossy().into_owned(),
                            entry.path(),
                        )),
                        Err(e) => problems.push(file_problem(
                            "maps",
                            format!("cannot list the `maps/` directory: {e}"),
                            None,
                        )),
                    }
                }
                files.sort();
                for (file_name, path) in files {
                    let rel = format!("maps/{file_name}");
                    let Some(stem) = map_stem(&file_name, &path) else {
                        continue;
                    };
                    if !is_valid_map_name(stem) || !file_name.ends_with(".toml") {
                        problems.push(file_problem(
                            rel,
                            format!("`{file_name}` is not a valid map file name"),
                            Some(name_help(stem)),
                        ));
                        continue;
                    }
                    present.insert(stem.to_string());
                    match read_limited(&path) {
                        Ok(bytes) => maps.push((stem.to_string(), Loaded { rel, bytes })),
                        Err(e) => problems.push(file_problem(rel, e.to_string(), None)),
                    }
                }
            }
            Err(e) => problems.push(file_problem(
                "maps",
                format!("cannot list the `maps/` directory: {e}"),
                None,
            )),
        }
    }
    assemble(game, maps, &present, maps_dir.is_dir(), problems)
}

/// Loads and validates one map file against `tuning` (for `render-map` and previews).
/// Problems are reported under the path as given.
pub fn load_map_file(path: &Path, tuning: &Tuning) -> Result<MapDef, Report> {
    match read_map_file(path, tuning) {
        (Some(map), report) if report.is_empty() => Ok(map),
        (_, report) => Err(report),
    }
}

/// [`load_map_file`] for drawing: the map as far as it could be read (even when a check
/// failed) and every problem found.
pub fn read_map_file(path: &Path, tuning: &Tuning) -> (Option<MapDef>, Report) {
    let display = path.display().to_string();
    let mut problems = Vec::new();
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    if !is_valid_map_name(&stem) {
        problems.push(file_problem(
            display.clone(),
            format!("`{stem}` is not a valid map name (it comes from the file name)"),
            Some(name_help(&stem)),
        ));
    }
    let map = match read_limited(path) {
        Ok(bytes) => decode(&display, &bytes, &mut problems)
            .and_then(|src| read_map(&src, &stem, tuning, &mut problems)),
        Err(e) => {
            problems.push(file_problem(display, e.to_string(), None));
            None
        }
    };
    (map, problems.into())
}

/// In-memory variant of [`load_dir`] for tests: `game` is `game.toml`'s text (or missing),
/// `maps` are `(name, text)` pairs.
#[cfg(test)]
pub(crate) fn load_memory(
    game: Option<&str>,
    maps: &[(&str, &str)],
) -> Result<Assets<ArenaAssets>, Report> {
    let game = game.map(|t| Loaded {
        rel: "game.toml".to_string(),
        bytes: t.as_bytes().to_vec(),
    });
    let mut problems = Vec::new();
    if game.is_none() {
        problems.push(file_problem("game.toml", "`game.toml` is missing", None));
    }
    let present = maps.iter().map(|(n, _)| n.to_string()).collect();
    let maps = maps
        .iter()
        .map(|(n, t)| {
            (
                n.to_string(),
                Loaded {
                    rel: format!("maps/{n}.toml"),
                    bytes: t.as_bytes().to_vec(),
                },
            )
        })
        .collect();
    assemble(game, maps, &present, true, problems)
}

/// The checks shared by the directory and in-memory loaders.
fn assemble(
    game: Option<Loaded>,
    maps: Vec<(String, Loaded)>,
    present: &BTreeSet<String>,
    have_maps_dir: bool,
    mut problems: Vec<Problem>,
) -> Result<Assets<ArenaAssets>, Report> {
    let mut files: Vec<(&str, &[u8])> = game
        .iter()
        .chain(maps.iter().map(|(_, l)| l))
        .map(|l| (l.rel.as_str(), l.bytes.as_slice()))
        .collect();
    files.sort();
    let version = hash::version(files);

    let game = game.and_then(|g| {
        decode(&g.rel, &g.bytes, &mut problems).map(|src| read_game(&src, &mut problems))
    });
    // Maps are checked against the tuning being loaded, even if `game.toml` has other
    // problems (invalid values fall back to their defaults).
    let tuning = game
        .as_ref()
        .map(|g| g.config.tuning.clone())
        .unwrap_or_default();

    let mut loaded: BTreeMap<String, Arc<MapDef>> = BTreeMap::new();
    for (name, file) in &maps {
        if let Some(src) = decode(&file.rel, &file.bytes, &mut problems)
            && let Some(map) = read_map(&src, name, &tuning, &mut problems)
        {
            loaded.insert(name.clone(), Arc::new(map));
        }
    }

    if let Some(game) = &game {
        check_rotation(game, present, have_maps_dir, &mut problems);
    }

    match game {
        Some(game) if problems.is_empty() => Ok(Assets {
            engine: game.config.engine,
            game: ArenaAssets {
                tuning: game.config.tuning,
                maps: loaded,
            },
            version,
        }),
        _ => Err(problems.into()),
    }
}

/// Every map named in `maps = [...]` must exist in `maps/`.
fn check_rotation(
    game: &super::game::GameFile,
    present: &BTreeSet<String>,
    have_maps_dir: bool,
    problems: &mut Vec<Problem>,
) {
    let available: Vec<&str> = present.iter().map(String::as_str).collect();
    for (name, span) in &game.map_refs {
        if present.contains(name) {
            continue;
        }
        let mut help = Vec::new();
        if let Some(close) = suggest::closest(name, &available) {
            help.push(format!("did you mean `{close}`?"));
        }
        help.push(if !have_maps_dir {
            "there is no `maps/` directory next to `game.toml`".to_string()
        } else if available.is_empty() {
            "there are no map files in `maps/`".to_string()
        } else {
            format!("available maps: {}", available.join(", "))
        });
        let message = format!("map `{name}` not found: there is no `maps/{name}.toml`");
        // The default rotation has no position; blame the top of the file.
        let (line, column) = span.unwrap_or((1, 1));
        let message = if span.is_none() {
            format!("{message} (`maps` is not set, so the rotation defaults to [\"{name}\"])")
        } else {
            message
        };
        problems.push(Problem {
            file: "game.toml".to_string(),
            line,
            column,
            message,
            help: Some(help.join("; ")),
        });
    }
}

/// UTF-8 text, or a problem at the first bad byte.
fn decode(rel: &str, bytes: &[u8], problems: &mut Vec<Problem>) -> Option<Source> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Some(Source::new(rel, text)),
        Err(e) => {
            let (line, column) = line_column(bytes, e.valid_up_to());
            problems.push(Problem {
                file: rel.to_string(),
                line,
                column,
                message: "the file is not valid UTF-8 text".to_string(),
                help: Some("save it as UTF-8 (plain text) in your editor".to_string()),
            });
            None
        }
    }
}

/// The stem of a directory entry that is meant to be a map: a visible regular file named
/// `*.toml` (any case, so `Arena.TOML` gets a helpful error instead of being ignored).
/// Editor droppings (`.#x.toml`, `x.toml~`, `.x.toml.swp`) are not maps.
fn map_stem<'a>(file_name: &'a str, path: &Path) -> Option<&'a str> {
    if file_name.starts_with('.') || !path.is_file() {
        return None;
    }
    let (stem, ext) = file_name.rsplit_once('.')?;
    ext.eq_ignore_ascii_case("toml").then_some(stem)
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
