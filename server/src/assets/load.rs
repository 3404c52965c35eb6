//! Loading an assets directory for a game: `game.toml` (the engine's top-level keys and
//! the game's tables, read and checked together, so a key in the wrong table is told
//! where it belongs), then the game's own files, then the rotation against the game's
//! maps; validated [`Assets`] or a [`Report`] of every problem in every file.
//!
//! Must not know any game: the game declares its settings type, its checks and its files
//! through [`GameAssets`].

use std::collections::BTreeSet;
use std::path::Path;

use super::document::{Document, known_keys};
use super::engine::{EngineSettings, MapRef};
use super::files::Files;
use super::report::{Problem, Report};
use super::suggest;
use crate::game::GameAssets;

/// A complete, validated set of assets: the engine's settings and game `A`'s data.
#[derive(Debug, Clone, PartialEq)]
pub struct Assets<A> {
    /// The engine's settings.
    pub engine: EngineSettings,
    /// The game's data.
    pub game: A,
    /// Content hash of every file that was loaded (hex), to tell versions apart.
    pub version: String,
}

/// What a game made of its files ([`GameAssets::load`]).
#[derive(Debug)]
pub struct Loaded<A> {
    /// The game's data; `None` when it could not be built (the problems were reported).
    pub game: Option<A>,
    /// Every map the rotation may name, including maps with problems (those are reported
    /// on their own, not as missing).
    pub maps: BTreeSet<String>,
    /// When `maps` is empty, why: the help for a rotation naming a map.
    pub no_maps: Option<String>,
}

/// `game.toml` as read: the settings with defaults in place of anything invalid, and
/// the rotation as written (`None`: not trustworthy enough to check).
struct GameToml<S> {
    engine: EngineSettings,
    game: S,
    rotation: Option<Vec<MapRef>>,
}

/// Loads and validates an assets directory for game data `A`.
pub fn load_dir<A: GameAssets>(dir: &Path) -> Result<Assets<A>, Report> {
    if !dir.is_dir() {
        return Err(vec![Problem::file(
            dir.display().to_string(),
            "assets directory not found (or not a directory)",
            Some("pass the directory that contains `game.toml`".to_string()),
        )]
        .into());
    }
    let mut files = Files::new(dir);
    let (engine, settings, rotation) = match read_game_toml::<A>(&mut files) {
        Some(g) => (Some(g.engine), g.game, g.rotation),
        // The game's files are still checked, against the default settings.
        None => (None, A::Settings::default(), None),
    };
    let loaded = A::load(settings, &mut files);
    if let Some(rotation) = &rotation {
        let problems = check_rotation::<A>(rotation, &loaded);
        files.report(problems);
    }
    let (version, problems) = files.finish();
    match (engine, loaded.game) {
        (Some(engine), Some(game)) if problems.is_empty() => Ok(Assets {
            engine,
            game,
            version,
        }),
        _ => Err(problems.into()),
    }
}

/// Reads and checks `game.toml`. The settings returned have defaults in place of
/// anything invalid, so the game's own files are checked against the intended ones.
fn read_game_toml<A: GameAssets>(files: &mut Files<'_>) -> Option<GameToml<A::Settings>> {
    if !files.exists("game.toml") {
        files.report([Problem::file(
            "game.toml",
            "`game.toml` is missing",
            Some(format!(
                "create it; every setting has a default, so an empty file (or one with just `maps = [\"{}\"]`) works",
                A::DEFAULT_MAP
            )),
        )]);
        return None;
    }
    let src = files.read("game.toml")?;
    let mut doc = Document::parse(&src);
    let engine: EngineSettings = doc.read();
    let game: A::Settings = doc.read();
    let mut known = known_keys(&engine);
    known.extend(known_keys(&game));
    doc.unknown_keys(&known);
    let rotation = {
        let mut check = doc.check();
        let rotation = engine.validate(&mut check);
        A::check_settings(&game, &mut check);
        rotation
    };
    let mut engine: EngineSettings = doc.read();
    let game: A::Settings = doc.read();
    let rotation = rotation.unwrap_or_else(|| {
        engine.maps = vec![A::DEFAULT_MAP.to_string()];
        vec![(A::DEFAULT_MAP.to_string(), None)]
    });
    // After a syntax error the recovered document still gives the settings, but its
    // rotation is not trustworthy enough to check against the game's maps.
    let rotation = doc.syntax_ok().then_some(rotation);
    files.report(doc.finish());
    Some(GameToml {
        engine,
        game,
        rotation,
    })
}

/// Every map the rotation names must be one the game has.
fn check_rotation<A: GameAssets>(rotation: &[MapRef], loaded: &Loaded<A>) -> Vec<Problem> {
    let available: Vec<&str> = loaded.maps.iter().map(String::as_str).collect();
    let mut problems = Vec::new();
    for (name, at) in rotation {
        if loaded.maps.contains(name) {
            continue;
        }
        let mut help = Vec::new();
        if let Some(close) = suggest::closest(name, &available) {
            help.push(format!("did you mean `{close}`?"));
        }
        help.push(match &loaded.no_maps {
            Some(why) if available.is_empty() => why.clone(),
            _ => format!("available maps: {}", available.join(", ")),
        });
        let mut message = A::missing_map(name);
        if at.is_none() {
            message.push_str(&format!(
                " (`maps` is not set, so the rotation defaults to [\"{name}\"])"
            ));
        }
        // The default rotation has no position; blame the top of the file.
        let (line, column) = at.unwrap_or((1, 1));
        problems.push(Problem {
            file: "game.toml".to_string(),
            line,
            column,
            message,
            help: Some(help.join("; ")),
        });
    }
    problems
}

/// Longest accepted map name.
const MAX_MAP_NAME: usize = 64;

/// Whether `name` may name a map. Map names travel to clients and into URLs
/// (`/admin/maps/<name>.svg`), hence the conservative alphabet. The error is help for a
/// designer: the nearest valid name.
pub fn check_map_name(name: &str) -> Result<(), String> {
    let valid = |n: &str| {
        !n.is_empty()
            && n.len() <= MAX_MAP_NAME
            && n.bytes()
                .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-'))
    };
    if valid(name) {
        return Ok(());
    }
    let rule = format!(
        "map names use only lowercase letters a-z, digits, `_` and `-` (at most {MAX_MAP_NAME})"
    );
    let fixed: String = name
        .chars()
        .flat_map(char::to_lowercase)
        .map(|c| match c {
            'a'..='z' | '0'..='9' | '-' => c,
            _ => '_',
        })
        .take(MAX_MAP_NAME)
        .collect();
    Err(if valid(&fixed) {
        format!("{rule}; e.g. rename it to `{fixed}.toml`")
    } else {
        rule
    })
}
