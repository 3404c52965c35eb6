//! Designer-owned data in `assets/`, for any game: the engine's machinery to read and
//! validate it, and the engine's own settings.
//!
//! The pieces, in the order a load runs them:
//! - [`files`](Files): reading files (size cap, UTF-8) and the version hash.
//! - [`Document`]: one TOML file parsed with positions, deserialized into serde types
//!   with every refused value found in one pass, and checked for unknown keys.
//! - [`settings!`](crate::settings): a table of settings declared once, each key with its
//!   type, default, range and unit.
//! - [`Check`]: the validation pass a game (and the engine) runs over what serde read:
//!   ranges with units, required keys, entries, rules between keys.
//! - [`Problem`] and [`Report`]: `file:line:column` problems with help, as text or JSON.
//! - [`EngineSettings`]: the top-level keys of `game.toml`; [`load_dir`] puts it all
//!   together for a [`crate::game::GameAssets`].
//!
//! Must not touch sockets or rooms, and must not know any game: a game declares its
//! schema (serde types), its checks and its own files through
//! [`crate::game::GameAssets`]. Callers get either complete validated [`Assets`] or every
//! problem found.

mod check;
mod document;
mod engine;
mod files;
mod hash;
mod load;
mod report;
mod settings;
mod source;
mod suggest;

#[cfg(test)]
mod tests;

pub use check::{Check, Entry, Limits};
pub use document::{Document, known_keys};
pub use engine::EngineSettings;
pub use files::{Files, MAX_FILE_BYTES, read_file};
pub use load::{Assets, Loaded, check_map_name, load_dir};
pub use report::{Problem, Report};
pub use settings::Setting;
pub use source::Source;
