//! The command line as a user meets it: every command in the repository's Markdown
//! files parses as written, the README's production example works end to end, `serve`'s
//! flags work without the word `serve`, dev mode refuses non-loopback ports, and text
//! logs are plain when stdout is not a terminal.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rallypoint_protocol::Subprotocol;
use rallypoint_tests::{Connect, TempDir, repo_assets};

use crate::server;

const SERVER: &str = env!("CARGO_BIN_EXE_rallypoint-test-server");
const BOTS: &str = env!("CARGO_BIN_EXE_rallypoint-bots-test");
const BENCH: &str = env!("CARGO_BIN_EXE_rallypoint-bench-test");

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every command line in the Markdown files' code blocks, as `(file, words)`: each line
/// of a `sh`/`bash` block, and the `$ ` lines of console or unlabeled blocks (the rest is
/// output); continuations joined, comments removed.
fn documented_commands() -> Vec<(String, Vec<String>)> {
    let files = [
        "README.md",
        "SECURITY.md",
        "BENCHMARKS.md",
        "bots/README.md",
        "assets/README.md",
        "server/web/README.md",
        "protocol/PROTOCOL.md",
        "tests/fuzz/README.md",
        "server/GAME.md",
        "protocol/client/README.md",
        "protocol/js/README.md",
    ];
    let mut out = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(repo().join(file)).expect("read a Markdown file");
        // Inside a block: `Some(true)` for sh/bash (every line is a command),
        // `Some(false)` for console or unlabeled output (only `$ ` lines are).
        let mut block: Option<Option<bool>> = None;
        let mut pending = String::new();
        for line in text.lines() {
            if let Some(lang) = line.strip_prefix("```") {
                block = match block {
                    Some(_) => None,
                    None => Some(match lang.trim() {
                        "sh" | "bash" => Some(true),
                        "console" | "" => Some(false),
                        _ => None,
                    }),
                };
                continue;
            }
            let line = match (block, line.strip_prefix("$ ")) {
                (Some(Some(_)), Some(command)) => command,
                (Some(Some(true)), None) => line,
                _ if !pending.is_empty() => line,
                _ => continue,
            };
            pending.push_str(line.trim_end_matches('\\'));
            pending.push(' ');
            if line.ends_with('\\') {
                continue;
            }
            let words = shell_words(&std::mem::take(&mut pending));
            if !words.is_empty() {
                out.push((file.to_owned(), words));
            }
        }
    }
    out
}

/// Splits a line like a shell would, for the simple lines docs hold: quotes, and a `#`
/// starting a word ends the line.
fn shell_words(line: &str) -> Vec<String> {
    let (mut words, mut word, mut quote, mut started) = (Vec::new(), String::new(), None, false);
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.push(c),
            (None, '\'' | '"') => (quote, started) = (Some(c), true),
            (None, '#') if !started => break,
            (None, c) if c.is_whitespace() => {
                if started {
                    words.push(std::mem::take(&mut word));
                }
                started = false;
            }
            (None, c) => (word.push(c), started = true).1,
        }
    }
    if started {
        words.push(word);
    }
    words
}

/// The test build of a program the docs run, by its name or its `target/` path.
fn binary_for(program: &str) -> Option<&'static str> {
    match program.rsplit('/').next()? {
        "rallypoint" => Some(SERVER),
        "rallypoint-bots" => Some(BOTS),
        "rallypoint-bench" => Some(BENCH),
        _ => None,
    }
}

/// The workspace members' package names and their `[package]` tables.
fn packages() -> Vec<(String, toml::Table)> {
    let root: toml::Table = std::fs::read_to_string(repo().join("Cargo.toml"))
        .unwrap()
        .parse()
        .unwrap();
    root["workspace"]["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let manifest: toml::Table =
                std::fs::read_to_string(repo().join(m.as_str().unwrap()).join("Cargo.toml"))
                    .unwrap()
                    .parse()
                    .unwrap();
            let name = manifest["package"]["name"].as_str().unwrap().to_owned();
            (name, manifest)
        })
        .collect()
}

/// What `cargo …` in the docs means: the program and arguments `cargo run` would start
/// (`None` for other cargo commands), after checking that every `-p` and `--path` names
/// something that exists and that a package with several binaries has `default-run`.
fn check_cargo(words: &[String], packages: &[(String, toml::Table)]) -> Option<Vec<String>> {
    let (before, after) = match words.iter().position(|w| w == "--") {
        Some(i) => (&words[..i], &words[i + 1..]),
        None => (words, &[][..]),
    };
    let mut package = "rallypoint".to_owned();
    for pair in before.windows(2) {
        match pair[0].as_str() {
            "-p" | "--package" => {
                package = pair[1].clone();
                assert!(
                    packages.iter().any(|(n, _)| *n == package),
                    "{words:?}: no package {package}"
                );
            }
            "--path" => assert!(
                repo().join(&pair[1]).join("Cargo.toml").is_file(),
                "{words:?}: no crate at {}",
                pair[1]
            ),
            _ => {}
        }
    }
    if before.get(1).map(String::as_str) != Some("run") || before.iter().any(|w| w == "--example") {
        return None;
    }
    let manifest = &packages.iter().find(|(n, _)| *n == package)?.1;
    let bins = manifest
        .get("bin")
        .and_then(|b| b.as_array())
        .map_or(1, Vec::len);
    assert!(
        bins == 1 || manifest["package"].get("default-run").is_some(),
        "{words:?}: {package} has {bins} binaries and no default-run"
    );
    let program = match manifest["package"].get("default-run") {
        Some(run) => run.as_str().unwrap().to_owned(),
        None => package,
    };
    Some(
        std::iter::once(program)
            .chain(after.iter().cloned())
            .collect(),
    )
}

#[test]
fn every_documented_command_parses_as_written() {
    let packages = packages();
    let mut checked = 0;
    for (file, words) in documented_commands() {
        let run = match words[0].as_str() {
            "cargo" => match check_cargo(&words, &packages) {
                Some(run) => run,
                None => continue,
            },
            _ => words.clone(),
        };
        let Some(binary) = binary_for(&run[0]) else {
            continue;
        };
        // `--help` after the documented arguments: clap reads them all first, so an
        // unknown flag or a bad value fails, and nothing starts.
        let out = Command::new(binary)
            .args(&run[1..])
            .arg("--help")
            .stdin(Stdio::null())
            .output()
            .expect("run the binary");
        assert!(
            out.status.success(),
            "{file}: `{}` does not parse:\n{}",
            words.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        checked += 1;
    }
    assert!(
        checked >= 15,
        "only {checked} commands found: is the parser broken?"
    );
}

#[test]
fn the_parser_finds_commands_and_would_catch_a_bad_one() {
    assert_eq!(
        shell_words("cargo run -- --assert 'a==0' --x \"b c\" # note"),
        ["cargo", "run", "--", "--assert", "a==0", "--x", "b c"]
    );
    let bad = Command::new(SERVER)
        .args(["--no-such-flag", "--help"])
        .output()
        .unwrap();
    assert!(!bad.status.success(), "an unknown flag before --help fails");
    let packages = packages();
    let run = check_cargo(
        &shell_words("cargo run --release -p rallypoint-bots -- --bots 5"),
        &packages,
    );
    assert_eq!(
        run,
        Some(shell_words("rallypoint-bots --bots 5")),
        "default-run picks the load tester"
    );
}

/// The README's value for `flag` in its `rallypoint <command>` line.
fn readme_flag(command: &str, flag: &str) -> Option<String> {
    let (_, words) = documented_commands()
        .into_iter()
        .find(|(f, w)| f == "README.md" && w[0] == "rallypoint" && w[1] == command)
        .unwrap_or_else(|| panic!("no `rallypoint {command}` in the README"));
    let i = words.iter().position(|w| w == flag)?;
    words.get(i + 1).cloned()
}

#[tokio::test]
async fn the_readme_production_example_mints_a_token_the_server_accepts() {
    let mut serve_args = Vec::new();
    for flag in ["--jwt-issuer", "--jwt-audience"] {
        if let Some(v) = readme_flag("serve", flag) {
            serve_args.extend([flag.to_owned(), v]);
        }
    }
    // The server as the README starts it (on loopback ports, without TLS).
    let s = server().args(serve_args).start();
    // The same secret file, newline-terminated as `base64 > secret` writes it.
    let dir = TempDir::new("readme-prod");
    let secret = dir.join("secret");
    std::fs::write(&secret, [&s.secret[..], b"\n"].concat()).unwrap();
    let (_, token_line) = documented_commands()
        .into_iter()
        .find(|(f, w)| f == "README.md" && w[0] == "rallypoint" && w[1] == "token")
        .expect("a `rallypoint token` line in the README");
    let mut token_args: Vec<String> = token_line[2..].to_vec();
    let i = token_args
        .iter()
        .position(|w| w == "--secret-file")
        .unwrap();
    token_args[i + 1] = secret.display().to_string();
    let token = crate::token_command(&token_args);
    let mut c = Connect::new(&s)
        .protocol(Subprotocol::V1Json.name())
        .header_token(&token)
        .connect()
        .await
        .unwrap_or_else(|r| panic!("the README's token is refused: {r:?}"));
    c.expect_welcome().await;
}

/// Starts the server binary with `args` and stdout piped.
fn spawn(args: &[&str], env: &[(&str, &str)]) -> Child {
    Command::new(SERVER)
        .args(args)
        .envs(env.iter().copied())
        .env_remove("NO_COLOR")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the server")
}

/// Reads stdout lines until one contains `listening`; returns them all.
fn until_listening(child: &mut Child) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut lines = Vec::new();
    for line in BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map_while(Result::ok)
    {
        let done = line.contains("listening");
        lines.push(line);
        if done || Instant::now() > deadline {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    lines
}

#[test]
fn serve_flags_work_without_the_word_serve_and_text_logs_are_plain_in_a_pipe() {
    let assets = repo_assets().display().to_string();
    let mut child = spawn(
        &[
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
            "--assets",
            &assets,
            "--log-format",
            "text",
        ],
        &[],
    );
    let lines = until_listening(&mut child);
    assert!(
        lines.iter().any(|l| l.contains("listening")),
        "did not start: {lines:?}"
    );
    assert!(
        lines.iter().all(|l| !l.contains('\u{1b}')),
        "colour codes in a pipe: {lines:?}"
    );
    let mixed = Command::new(SERVER)
        .args(["--assets", &assets, "check"])
        .output()
        .unwrap();
    assert!(
        !mixed.status.success(),
        "serve flags before another command are an error"
    );
}

#[test]
fn dev_mode_refuses_an_admin_port_off_loopback() {
    let out = Command::new(SERVER)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "0.0.0.0:0",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("only listens on loopback") && stderr.contains("--admin-listen"),
        "{stderr}"
    );
}
