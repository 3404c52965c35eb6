//! Tests that drive a program from outside Rust (a browser, Python, Node, Redis): each
//! declares the program it needs, and a test whose program is missing is reported as
//! *ignored*, with the reason, never as passed.
//!
//! The `external` test target (`tests/tests/external/main.rs`, `harness = false`) runs on
//! libtest-mimic: [`Needs::probe`] looks for every program once at start and prints what
//! it found; [`Needs::trial`] turns an `async fn(Tool)` into a trial that runs on its own
//! tokio runtime when its program is there, is ignored (`ignored (chromium not found —
//! apt-get install -y chromium)`) when it is not, and fails with the same reason when
//! `RALLYPOINT_REQUIRE_<NEED>=1` is set (CI sets one per need), so CI cannot skip them.
//!
//! Adding a need: a variant of [`Need`], its row in [`Need::ALL`], and arms in
//! [`Need::name`], [`Need::hint`] and [`Need::locate`]. Adding a trial: an `async fn`
//! taking a [`Tool`], listed with [`external_trials!`](crate::external_trials); one that
//! needs two programs (the SDK or a browser against a Redis cluster) takes two and is
//! made with [`Needs::trial2`].
//!
//! Must not depend on the game: this only finds programs and runs tests.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use libtest_mimic::{Completion, Failed, Trial};

/// An outside program a trial needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Need {
    /// Nothing outside Rust.
    None,
    /// Headless Chromium (or Chrome), for the browser client.
    Chromium,
    /// `python3` with the `websockets` and `msgpack` packages.
    Python,
    /// `node` 20 or later, with the JavaScript SDK's development packages installed
    /// (`npm ci` in `protocol/js`: `ws` and `typescript`).
    Node,
    /// `redis-server`, started by the test itself.
    Redis,
}

impl Need {
    /// Every need, in the order the start-up line lists them.
    pub const ALL: [Need; 5] = [
        Need::None,
        Need::Chromium,
        Need::Python,
        Need::Node,
        Need::Redis,
    ];

    /// Lower-case name, as in messages; upper-cased in the variable that requires it.
    pub const fn name(self) -> &'static str {
        match self {
            Need::None => "none",
            Need::Chromium => "chromium",
            Need::Python => "python",
            Need::Node => "node",
            Need::Redis => "redis",
        }
    }

    /// What to do when it is missing.
    pub const fn hint(self) -> &'static str {
        match self {
            Need::None => "",
            Need::Chromium => {
                "apt-get install -y chromium, or set RALLYPOINT_CHROMIUM to a Chrome binary"
            }
            Need::Python => "pip install websockets msgpack",
            Need::Node => "apt-get install -y nodejs npm, then npm ci in protocol/js",
            Need::Redis => "apt-get install -y redis-server",
        }
    }

    /// The variable that turns a missing program into a failure: `RALLYPOINT_REQUIRE_<NEED>`.
    pub fn require_var(self) -> String {
        format!("RALLYPOINT_REQUIRE_{}", self.name().to_ascii_uppercase())
    }

    /// Whether the environment requires this need (`RALLYPOINT_REQUIRE_<NEED>=1`).
    pub fn required(self) -> bool {
        std::env::var(self.require_var()).is_ok_and(|v| v == "1")
    }

    /// Looks for the program: its path, or why it is not usable.
    pub fn locate(self) -> Result<PathBuf, String> {
        match self {
            Need::None => Ok(PathBuf::new()),
            Need::Chromium => {
                crate::cdp::find_chromium().ok_or_else(|| "chromium not found".to_owned())
            }
            Need::Python => {
                let python = on_path("python3").ok_or("python3 not found")?;
                runs(
                    &python,
                    &["-c", "import websockets.asyncio.client, msgpack"],
                )
                .then_some(python)
                .ok_or_else(|| "python3 has no websockets or msgpack".to_owned())
            }
            Need::Node => {
                let node = on_path("node").ok_or("node not found")?;
                let major = node_major(&node).ok_or("node does not run")?;
                if major < 20 {
                    return Err(format!("node {major} is older than 20"));
                }
                let packages =
                    Path::new(env!("CARGO_MANIFEST_DIR")).join("../protocol/js/node_modules");
                match ["ws", "typescript"]
                    .iter()
                    .find(|p| !packages.join(p).is_dir())
                {
                    Some(missing) => Err(format!("protocol/js/node_modules has no {missing}")),
                    None => Ok(node),
                }
            }
            Need::Redis => {
                let redis = on_path("redis-server").ok_or("redis-server not found")?;
                runs(&redis, &["--version"])
                    .then_some(redis)
                    .ok_or_else(|| "redis-server does not run".to_owned())
            }
        }
    }
}

/// The program a trial was given.
#[derive(Debug, Clone)]
pub struct Tool {
    /// Which need it satisfies.
    pub need: Need,
    /// Its path (empty for [`Need::None`]).
    pub path: PathBuf,
}

impl Tool {
    /// The program's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A command for the program.
    pub fn command(&self) -> Command {
        Command::new(&self.path)
    }
}

/// What [`Needs::probe`] found for each need, and which needs the environment requires.
#[derive(Debug, Clone)]
pub struct Needs {
    found: Vec<(Need, Result<PathBuf, String>)>,
    required: Vec<Need>,
}

impl Needs {
    /// Looks for every program once and, unless `quiet` (e.g. `--list`), prints one line
    /// per need to stderr (libtest-mimic captures nothing, so it reaches the terminal).
    pub fn probe(quiet: bool) -> Needs {
        let found: Vec<_> = Need::ALL
            .iter()
            .filter(|n| **n != Need::None)
            .map(|&n| (n, n.locate()))
            .collect();
        let required: Vec<Need> = Need::ALL.into_iter().filter(|n| n.required()).collect();
        for (need, result) in found.iter().filter(|_| !quiet) {
            match result {
                Ok(path) => eprintln!("external: {} found at {}", need.name(), path.display()),
                Err(why) if required.contains(need) => eprintln!(
                    "external: {why} and {}=1: its trials will fail — {}",
                    need.require_var(),
                    need.hint()
                ),
                Err(why) => eprintln!("external: {why}: its trials are ignored — {}", need.hint()),
            }
        }
        Needs { found, required }
    }

    /// Needs as given, without probing or reading the environment (tests of this module).
    pub fn from_results(found: Vec<(Need, Result<PathBuf, String>)>, required: &[Need]) -> Needs {
        Needs {
            found,
            required: required.to_vec(),
        }
    }

    /// The program for `need`, or why there is none.
    pub fn tool(&self, need: Need) -> Result<Tool, String> {
        if need == Need::None {
            return Ok(Tool {
                need,
                path: PathBuf::new(),
            });
        }
        match self.found.iter().find(|(n, _)| *n == need) {
            Some((_, Ok(path))) => Ok(Tool {
                need,
                path: path.clone(),
            }),
            Some((_, Err(why))) => Err(format!("{why} — {}", need.hint())),
            None => Err(format!("{} was not probed", need.name())),
        }
    }

    /// A trial named `name` that runs `test` on a fresh tokio runtime when `need` is
    /// met; otherwise it is ignored with the reason, or fails with it when the need is
    /// required.
    pub fn trial<F, Fut>(&self, name: &str, need: Need, test: F) -> Trial
    where
        F: FnOnce(Tool) -> Fut + Send + 'static,
        Fut: Future<Output = ()>,
    {
        let tool = self.tool(need);
        let required = self.required.contains(&need);
        Trial::ignorable_test(name, move || {
            run_trial(tool, need.require_var(), required, test)
        })
    }

    /// [`Needs::trial`] for a test that needs two programs: it runs when both are found,
    /// and is ignored (or fails, when either need is required) naming the missing one.
    pub fn trial2<F, Fut>(&self, name: &str, needs: [Need; 2], test: F) -> Trial
    where
        F: FnOnce(Tool, Tool) -> Fut + Send + 'static,
        Fut: Future<Output = ()>,
    {
        let (tools, missing) = self.tools(needs);
        let required = self.required.contains(&missing);
        Trial::ignorable_test(name, move || {
            run_trial(tools, missing.require_var(), required, |(a, b)| test(a, b))
        })
    }

    /// Both programs, or why not; and the need to blame when one is missing (the first
    /// that is).
    fn tools(&self, needs: [Need; 2]) -> (Result<(Tool, Tool), String>, Need) {
        let (a, b) = (self.tool(needs[0]), self.tool(needs[1]));
        let missing = needs[usize::from(a.is_ok())];
        (a.and_then(|a| b.map(|b| (a, b))), missing)
    }
}

/// Runs `test` with its tool on a fresh tokio runtime, or says why not: ignored when the
/// tool is missing, failed when it is missing and `required`. A panic in `test` is a
/// failure (libtest-mimic catches it).
fn run_trial<T, F, Fut>(
    tool: Result<T, String>,
    require_var: String,
    required: bool,
    test: F,
) -> Result<Completion, Failed>
where
    F: FnOnce(T) -> Fut,
    Fut: Future<Output = ()>,
{
    match tool {
        Ok(tool) => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| Failed::from(format!("tokio runtime: {e}")))?;
            runtime.block_on(test(tool));
            Ok(Completion::Completed)
        }
        Err(why) if required => Err(Failed::from(format!(
            "{why}; {require_var}=1 requires this test to run"
        ))),
        Err(why) => Ok(Completion::ignored_with(why)),
    }
}

/// Trials for `async fn name(tool: Tool)` functions of the calling module, named
/// `<module>::<fn>` (the test crate's name left out):
/// `external_trials!(needs, Need::Chromium => [plays_over_ws, resumes])`.
#[macro_export]
macro_rules! external_trials {
    ($needs:expr, $need:expr => [$($test:ident),* $(,)?]) => {{
        let module = module_path!().split_once("::").map_or("", |(_, m)| m);
        vec![$(
            $needs.trial(
                &if module.is_empty() {
                    stringify!($test).to_owned()
                } else {
                    format!("{module}::{}", stringify!($test))
                },
                $need,
                $test,
            )
        ),*]
    }};
}

/// `name` in a directory of `PATH`.
pub fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// The major version `node --version` prints (`v20.19.2` → 20).
pub fn node_major(node: &Path) -> Option<u32> {
    let out = Command::new(node)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.trim()
        .strip_prefix('v')?
        .split('.')
        .next()?
        .parse()
        .ok()
}

/// Whether `program args` exits 0 (output discarded).
fn runs(program: &Path, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    fn missing(required: &[Need]) -> Needs {
        Needs::from_results(
            vec![(Need::Redis, Err("redis-server not found".into()))],
            required,
        )
    }

    /// Runs a Redis trial body the way a trial would; says whether the body ran.
    fn redis_trial(needs: &Needs) -> (Result<Completion, Failed>, bool) {
        let ran = Cell::new(false);
        let required = needs.required.contains(&Need::Redis);
        let var = Need::Redis.require_var();
        let outcome = run_trial(needs.tool(Need::Redis), var, required, |tool| {
            ran.set(true);
            async move { assert_eq!(tool.need, Need::Redis) }
        });
        (outcome, ran.get())
    }

    #[test]
    fn require_variables_follow_the_need() {
        assert_eq!(Need::Chromium.require_var(), "RALLYPOINT_REQUIRE_CHROMIUM");
        assert_eq!(Need::Python.require_var(), "RALLYPOINT_REQUIRE_PYTHON");
        assert_eq!(Need::Node.require_var(), "RALLYPOINT_REQUIRE_NODE");
        assert_eq!(Need::Redis.require_var(), "RALLYPOINT_REQUIRE_REDIS");
    }

    #[test]
    fn a_trial_of_two_programs_blames_the_missing_one() {
        let needs = Needs::from_results(
            vec![
                (Need::Node, Ok(PathBuf::from("/usr/bin/node"))),
                (Need::Redis, Err("redis-server not found".into())),
            ],
            &[Need::Redis],
        );
        let (tools, missing) = needs.tools([Need::Node, Need::Redis]);
        assert_eq!(missing, Need::Redis);
        assert!(tools.unwrap_err().starts_with("redis-server not found"));
        let (tools, missing) = needs.tools([Need::Redis, Need::Node]);
        assert_eq!(missing, Need::Redis);
        assert!(tools.is_err());
    }

    #[test]
    fn a_missing_program_is_named_with_its_hint() {
        let why = missing(&[]).tool(Need::Redis).unwrap_err();
        assert_eq!(
            why,
            "redis-server not found — apt-get install -y redis-server"
        );
        assert!(missing(&[]).tool(Need::Node).is_err(), "not probed");
        assert!(missing(&[]).tool(Need::None).is_ok());
    }

    #[test]
    fn a_missing_need_is_ignored_with_the_reason_never_passed() {
        let (outcome, ran) = redis_trial(&missing(&[]));
        assert!(!ran);
        match outcome {
            Ok(Completion::Ignored { reason }) => assert_eq!(
                reason.as_deref(),
                Some("redis-server not found — apt-get install -y redis-server")
            ),
            Ok(Completion::Completed) => panic!("counted as passed"),
            Err(e) => panic!("failed: {e:?}"),
        }
    }

    #[test]
    fn a_missing_required_need_fails_with_the_reason() {
        let (outcome, ran) = redis_trial(&missing(&[Need::Redis]));
        assert!(!ran);
        let message = outcome.err().and_then(|e| e.message().map(str::to_owned));
        assert_eq!(
            message.as_deref(),
            Some(
                "redis-server not found — apt-get install -y redis-server; \
                 RALLYPOINT_REQUIRE_REDIS=1 requires this test to run"
            )
        );
    }

    #[test]
    fn a_met_need_runs_its_test() {
        let needs = Needs::from_results(vec![(Need::Redis, Ok(PathBuf::from("/bin/true")))], &[]);
        let (outcome, ran) = redis_trial(&needs);
        assert!(ran);
        assert!(matches!(outcome, Ok(Completion::Completed)));
    }
}
