//! `--assert` gates: `METRIC OP VALUE` checked against a report, for CI.
//!
//! `METRIC` is any numeric leaf of the report by its dotted name
//! (`well_behaved.rtt.p99_ms`) or its snake name (`well_behaved_rtt_p99_ms`). Keys of
//! the count maps (`closes_by_code`, `errors_by_code`, `failures_by_status`) are open
//! ended: a code that never happened is 0, so `closes_by_code_1011==0` works. Any other
//! unknown name is an error, reported before the run starts. Must not do IO.

use std::fmt;
use std::str::FromStr;

use crate::report::Report;

/// Comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `==`
    Eq,
}

impl Op {
    fn as_str(self) -> &'static str {
        match self {
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Eq => "==",
        }
    }

    fn holds(self, a: f64, b: f64) -> bool {
        match self {
            Op::Lt => a < b,
            Op::Le => a <= b,
            Op::Gt => a > b,
            Op::Ge => a >= b,
            // Metrics are rounded to 1e-3 in the report; compare at that resolution.
            Op::Eq => (a - b).abs() < 1e-9 * a.abs().max(b.abs()).max(1.0),
        }
    }
}

/// One gate, e.g. `rtt_p99_ms<50`.
#[derive(Debug, Clone, PartialEq)]
pub struct Assertion {
    /// Metric name as written.
    pub metric: String,
    /// Operator.
    pub op: Op,
    /// Threshold.
    pub value: f64,
}

impl fmt::Display for Assertion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.metric, self.op.as_str(), self.value)
    }
}

/// Why an assertion cannot be evaluated.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AssertError {
    /// Not `METRIC OP NUMBER`.
    #[error(
        "--assert `{0}`: expected METRIC OP NUMBER with OP one of < <= > >= == (e.g. rtt_p99_ms<50)"
    )]
    Syntax(String),
    /// No such metric.
    #[error("--assert: unknown metric `{name}`{hint}")]
    UnknownMetric {
        /// The name given.
        name: String,
        /// Suggestions.
        hint: String,
    },
}

impl FromStr for Assertion {
    type Err = AssertError;
    fn from_str(s: &str) -> Result<Self, AssertError> {
        let syntax = || AssertError::Syntax(s.to_owned());
        let at = s.find(['<', '>', '=']).ok_or_else(syntax)?;
        let (metric, rest) = s.split_at(at);
        let (op, value) = [
            ("<=", Op::Le),
            (">=", Op::Ge),
            ("==", Op::Eq),
            ("<", Op::Lt),
            (">", Op::Gt),
        ]
        .into_iter()
        .find_map(|(sym, op)| rest.strip_prefix(sym).map(|v| (op, v)))
        .ok_or_else(syntax)?;
        let metric = metric.trim();
        let value: f64 = value.trim().parse().map_err(|_| syntax())?;
        if metric.is_empty() || !value.is_finite() {
            return Err(syntax());
        }
        Ok(Assertion {
            metric: metric.to_owned(),
            op,
            value,
        })
    }
}

/// Open-ended count maps: any key under them is a valid metric, 0 when absent.
const COUNT_MAPS: [&str; 3] = ["closes_by_code", "errors_by_code", "failures_by_status"];

fn snake(dotted: &str) -> String {
    dotted.replace('.', "_")
}

/// Looks `name` up among `metrics` (dotted name first, then snake name).
fn lookup(metrics: &[(String, f64)], name: &str) -> Result<f64, AssertError> {
    if let Some((_, v)) = metrics.iter().find(|(n, _)| n == name) {
        return Ok(*v);
    }
    if let Some((_, v)) = metrics.iter().find(|(n, _)| snake(n) == name) {
        return Ok(*v);
    }
    if is_count_map_key(name) {
        return Ok(0.0);
    }
    Err(unknown(name))
}

/// Dotted paths of every count map in the report, found by putting a probe key in each
/// (empty maps have no leaves to find).
fn count_maps() -> Vec<String> {
    let mut r = Report::template();
    let probe = |m: &mut std::collections::BTreeMap<String, u64>| {
        m.insert("0".into(), 0);
    };
    probe(&mut r.closes_by_code);
    probe(&mut r.errors_by_code);
    probe(&mut r.handshake.failures_by_status);
    for g in [&mut r.well_behaved, &mut r.abusive.group] {
        probe(&mut g.closes_by_code);
        probe(&mut g.errors_by_code);
    }
    for m in r.abusive.by_mode.values_mut() {
        probe(&mut m.closes_by_code);
    }
    r.metrics()
        .into_iter()
        .filter_map(|(n, _)| n.strip_suffix(".0").map(str::to_owned))
        .filter(|p| COUNT_MAPS.iter().any(|m| p.ends_with(m)))
        .collect()
}

/// Whether `name` names a key of a count map (dotted or snake), e.g.
/// `well_behaved.closes_by_code.1011` or `closes_by_code_1011`.
fn is_count_map_key(name: &str) -> bool {
    count_maps().iter().any(|path| {
        let dotted = name
            .strip_prefix(path.as_str())
            .and_then(|k| k.strip_prefix('.'));
        let snaked = name
            .strip_prefix(snake(path).as_str())
            .and_then(|k| k.strip_prefix('_'));
        dotted
            .or(snaked)
            .is_some_and(|k| !k.is_empty() && !k.contains('.'))
    })
}

fn unknown(name: &str) -> AssertError {
    let names: Vec<String> = Report::template()
        .metrics()
        .into_iter()
        .map(|(n, _)| snake(&n))
        .collect();
    let wanted = snake(name);
    let tokens: Vec<&str> = wanted.split('_').filter(|t| t.len() > 2).collect();
    let mut scored: Vec<(usize, &String)> = names
        .iter()
        .map(|n| (tokens.iter().filter(|t| n.contains(*t)).count(), n))
        .filter(|(score, _)| *score > 0)
        .collect();
    scored.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.len().cmp(&b.1.len())));
    let hint = if scored.is_empty() {
        "; see the README for every metric".to_owned()
    } else {
        let best: Vec<&str> = scored.iter().take(5).map(|(_, n)| n.as_str()).collect();
        format!("; did you mean {}?", best.join(", "))
    };
    AssertError::UnknownMetric {
        name: name.to_owned(),
        hint,
    }
}

/// Checks that every assertion names a metric, before a run.
pub fn validate(assertions: &[Assertion]) -> Result<(), AssertError> {
    let template = Report::template().metrics();
    for a in assertions {
        lookup(&template, &a.metric)?;
    }
    Ok(())
}

/// The result of one assertion.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The gate.
    pub assertion: Assertion,
    /// The metric's value in the report.
    pub actual: f64,
    /// Whether it held.
    pub passed: bool,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} (actual {})",
            if self.passed { "ok    " } else { "FAILED" },
            self.assertion,
            self.actual
        )
    }
}

/// Evaluates every assertion against a report.
pub fn check(report: &Report, assertions: &[Assertion]) -> Result<Vec<Outcome>, AssertError> {
    let metrics = report.metrics();
    assertions
        .iter()
        .map(|a| {
            let actual = lookup(&metrics, &a.metric)?;
            Ok(Outcome {
                assertion: a.clone(),
                actual,
                passed: a.op.holds(actual, a.value),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_operator() {
        let a: Assertion = "rtt_p99_ms<50".parse().unwrap();
        assert_eq!(
            (a.metric.as_str(), a.op, a.value),
            ("rtt_p99_ms", Op::Lt, 50.0)
        );
        assert_eq!("x <= 1".parse::<Assertion>().unwrap().op, Op::Le);
        assert_eq!("x>=1".parse::<Assertion>().unwrap().op, Op::Ge);
        assert_eq!("x>1.5".parse::<Assertion>().unwrap().value, 1.5);
        assert_eq!("x==0".parse::<Assertion>().unwrap().op, Op::Eq);
        for bad in ["x", "x<", "<5", "x=5", "x<y", "x<=NaN"] {
            assert!(bad.parse::<Assertion>().is_err(), "{bad}");
        }
    }

    #[test]
    fn names_resolve_dotted_snake_and_open_maps() {
        let mut r = Report::template();
        r.rtt.p99_ms = 12.5;
        r.well_behaved.unexpected_closes = 2;
        r.closes_by_code.insert("1000".into(), 7);
        let check1 = |s: &str| check(&r, &[s.parse().unwrap()]).map(|o| o[0].clone());
        assert!(check1("rtt_p99_ms<50").unwrap().passed);
        assert!(!check1("rtt.p99_ms<10").unwrap().passed);
        assert_eq!(
            check1("well_behaved_unexpected_closes==0").unwrap().actual,
            2.0
        );
        assert_eq!(check1("closes_by_code_1000==7").unwrap().actual, 7.0);
        assert_eq!(check1("closes_by_code.1011==0").unwrap().actual, 0.0);
        assert_eq!(
            check1("well_behaved_closes_by_code_1008==0")
                .unwrap()
                .actual,
            0.0
        );
        assert_eq!(
            check1("handshake_failures_by_status_429<1").unwrap().actual,
            0.0
        );
        assert!(check1("abusive_by_mode_flood_cut_off>=0").unwrap().passed);
        assert!(matches!(
            check1("rtt_p98_ms<1"),
            Err(AssertError::UnknownMetric { .. })
        ));
        assert!(validate(&["nope<1".parse().unwrap()]).is_err());
        assert!(validate(&["cpu_per_bot_second_ms<1".parse().unwrap()]).is_ok());
    }
}
