//! A map as a standalone SVG picture for designers: to scale, with a unit grid, walls,
//! numbered spawn points (drawn at player size) and pickups.
//!
//! A map that fails its checks is drawn too ([`render_svg_with_problems`]): each problem
//! that names a wall, spawn or pickup (`spawn #2 at …`) is a numbered red marker on it,
//! and every problem is listed under the drawing, so a designer sees what is wrong where.
//!
//! Must not validate or reject anything: any [`MapDef`] renders (garbage numbers draw as
//! garbage, never a panic). Every wall is exactly one `<rect class="wall">`, so tools and
//! tests can count them.

use std::fmt::Write as _;

use super::{MapDef, Tuning};
use crate::assets::Problem;

/// Target size of the drawing's longer side, pixels.
const TARGET_PX: f64 = 800.0;
const MARGIN_LEFT: f64 = 44.0;
const MARGIN_TOP: f64 = 56.0;
const MARGIN_RIGHT: f64 = 24.0;
const MARGIN_BOTTOM: f64 = 24.0;

const STYLE: &str = "\
.background{fill:#ffffff}\
.floor{fill:#f4f1ea}\
.minor{stroke:#ddd8cc;stroke-width:0.5}\
.major{stroke:#b9b2a2;stroke-width:1}\
.axis{font:11px sans-serif;fill:#6b6457}\
.title{font:bold 16px sans-serif;fill:#222}\
.subtitle{font:12px sans-serif;fill:#555}\
.wall{fill:#4a4f5a;stroke:#2b2e35;stroke-width:1}\
.border{fill:none;stroke:#222;stroke-width:2}\
.spawn{fill:#3b82f6;fill-opacity:0.35;stroke:#1d4ed8;stroke-width:1.5}\
.spawn-label{font:bold 11px sans-serif;fill:#1d4ed8}\
.pickup{fill:#22c55e;stroke:#15803d;stroke-width:1.5}\
.pickup-label{font:bold 11px sans-serif;fill:#15803d}\
.problem{fill:none;stroke:#dc2626;stroke-width:2.5}\
.problem-label{font:bold 12px sans-serif;fill:#dc2626}\
.problem-text{font:12px sans-serif;fill:#991b1b}";

/// Height of one listed problem, pixels.
const PROBLEM_ROW_PX: f64 = 18.0;

/// Renders `map`; spawn circles have `player_radius`, pickups the default pickup radius
/// (the map alone does not know the tuned one).
pub fn render_svg(map: &MapDef, player_radius: f32) -> String {
    render(map, player_radius, &[])
}

/// Renders `map` with its `problems` marked and listed (see the module header).
pub fn render_svg_with_problems(map: &MapDef, player_radius: f32, problems: &[Problem]) -> String {
    render(map, player_radius, problems)
}

fn render(map: &MapDef, player_radius: f32, problems: &[Problem]) -> String {
    let width = sane(f64::from(map.width), 10.0);
    let height = sane(f64::from(map.height), 10.0);
    let scale = (TARGET_PX / width.max(height)).clamp(0.5, 40.0);
    let (pw, ph) = (width * scale, height * scale);
    let total_w = pw + MARGIN_LEFT + MARGIN_RIGHT;
    let list_h = if problems.is_empty() {
        0.0
    } else {
        PROBLEM_ROW_PX * (problems.len() as f64 + 1.0) + 8.0
    };
    let total_h = ph + MARGIN_TOP + MARGIN_BOTTOM + list_h;
    let px = |v: f32| num(f64::from(v) * scale);

    let mut s = String::new();
    // `write!` to a String cannot fail; the results are ignored for that reason.
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" data-map="{name}">"#,
        w = num(total_w),
        h = num(total_h),
        name = escape(&map.name)
    );
    let _ = writeln!(s, "<title>{}</title>", escape(&map.name));
    let _ = writeln!(s, "<style>{STYLE}</style>");
    let _ = writeln!(
        s,
        r#"<rect class="background" x="0" y="0" width="{}" height="{}"/>"#,
        num(total_w),
        num(total_h)
    );
    let step = grid_step(width, height, scale);
    let _ = writeln!(
        s,
        r#"<text class="title" x="{}" y="20">{}</text>"#,
        num(MARGIN_LEFT),
        escape(&map.name)
    );
    let _ = writeln!(
        s,
        r#"<text class="subtitle" x="{}" y="38">{} × {} units · {} walls · {} spawns · {} pickups · grid {} unit{} · y grows downwards</text>"#,
        num(MARGIN_LEFT),
        num(width),
        num(height),
        map.walls.len(),
        map.spawns.len(),
        map.pickups.len(),
        num(step),
        if step == 1.0 { "" } else { "s" }
    );
    let _ = writeln!(
        s,
        r#"<g transform="translate({} {})">"#,
        num(MARGIN_LEFT),
        num(MARGIN_TOP)
    );
    let _ = writeln!(
        s,
        r#"<rect class="floor" x="0" y="0" width="{}" height="{}"/>"#,
        num(pw),
        num(ph)
    );

    // Grid: a line every `step` units, a darker labelled one every 5 steps.
    s.push_str("<g class=\"grid\">\n");
    let mut k = 0u32;
    while f64::from(k) * step <= width + 1e-9 {
        let x = f64::from(k) * step * scale;
        let class = if k.is_multiple_of(5) {
            "major"
        } else {
            "minor"
        };
        let _ = writeln!(
            s,
            r#"<line class="{class}" x1="{x}" y1="0" x2="{x}" y2="{}"/>"#,
            num(ph),
            x = num(x)
        );
        if k.is_multiple_of(5) {
            let _ = writeln!(
                s,
                r#"<text class="axis" x="{}" y="-6" text-anchor="middle">{}</text>"#,
                num(x),
                num(f64::from(k) * step)
            );
        }
        k += 1;
    }
    let mut k = 0u32;
    while f64::from(k) * step <= height + 1e-9 {
        let y = f64::from(k) * step * scale;
        let class = if k.is_multiple_of(5) {
            "major"
        } else {
            "minor"
        };
        let _ = writeln!(
            s,
            r#"<line class="{class}" x1="0" y1="{y}" x2="{}" y2="{y}"/>"#,
            num(pw),
            y = num(y)
        );
        if k.is_multiple_of(5) && k > 0 {
            let _ = writeln!(
                s,
                r#"<text class="axis" x="-6" y="{}" text-anchor="end" dominant-baseline="middle">{}</text>"#,
                num(y),
                num(f64::from(k) * step)
            );
        }
        k += 1;
    }
    s.push_str("</g>\n");

    s.push_str("<g class=\"walls\">\n");
    for (i, w) in map.walls.iter().enumerate() {
        let _ = writeln!(
            s,
            r#"<rect class="wall" data-wall="{n}" x="{}" y="{}" width="{}" height="{}"><title>wall #{n}: x={}, y={}, w={}, h={}</title></rect>"#,
            px(w.x),
            px(w.y),
            px(w.w.max(0.0)),
            px(w.h.max(0.0)),
            w.x,
            w.y,
            w.w,
            w.h,
            n = i + 1
        );
    }
    s.push_str("</g>\n");
    let _ = writeln!(
        s,
        r#"<rect class="border" x="0" y="0" width="{}" height="{}"/>"#,
        num(pw),
        num(ph)
    );

    let r = sane(f64::from(player_radius), 0.5) * scale;
    s.push_str("<g class=\"spawns\">\n");
    for (i, p) in map.spawns.iter().enumerate() {
        let (cx, cy) = (f64::from(p.x) * scale, f64::from(p.y) * scale);
        let _ = writeln!(
            s,
            r#"<circle class="spawn" data-spawn="{n}" cx="{}" cy="{}" r="{}"><title>spawn #{n}: ({}, {})</title></circle>"#,
            num(cx),
            num(cy),
            num(r),
            p.x,
            p.y,
            n = i + 1
        );
        let _ = writeln!(
            s,
            r##"<text class="spawn-label" x="{}" y="{}">#{}</text>"##,
            num(cx + r + 2.0),
            num(cy - r),
            i + 1
        );
    }
    s.push_str("</g>\n");

    let pr = f64::from(Tuning::default().pickup.radius) * scale;
    s.push_str("<g class=\"pickups\">\n");
    for (i, p) in map.pickups.iter().enumerate() {
        let (cx, cy) = (f64::from(p.x) * scale, f64::from(p.y) * scale);
        let _ = writeln!(
            s,
            r#"<polygon class="pickup" data-pickup="{n}" points="{},{} {},{} {},{} {},{}"><title>pickup #{n}: ({}, {})</title></polygon>"#,
            num(cx),
            num(cy - pr),
            num(cx + pr),
            num(cy),
            num(cx),
            num(cy + pr),
            num(cx - pr),
            num(cy),
            p.x,
            p.y,
            n = i + 1
        );
        let _ = writeln!(
            s,
            r#"<text class="pickup-label" x="{}" y="{}">P{}</text>"#,
            num(cx + pr + 2.0),
            num(cy - pr),
            i + 1
        );
    }
    s.push_str("</g>\n");
    mark_problems(&mut s, map, scale, problems);
    s.push_str("</g>\n");
    list_problems(&mut s, problems, ph + MARGIN_TOP + MARGIN_BOTTOM);
    s.push_str("</svg>\n");
    s
}

/// The element a problem names, as `(kind, 0-based index)`: its message starts with
/// `wall #N`, `spawn #N` or `pickup #N`.
fn named_element(problem: &Problem) -> Option<(&'static str, usize)> {
    ["wall", "spawn", "pickup"].into_iter().find_map(|kind| {
        let rest = problem.message.strip_prefix(kind)?.strip_prefix(" #")?;
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        Some((kind, digits.parse::<usize>().ok()?.checked_sub(1)?))
    })
}

/// A numbered red ring on each element a problem names (map coordinates, scaled).
fn mark_problems(s: &mut String, map: &MapDef, scale: f64, problems: &[Problem]) {
    s.push_str("<g class=\"problems\">\n");
    for (n, problem) in problems.iter().enumerate() {
        let centre = named_element(problem).and_then(|(kind, i)| match kind {
            "wall" => map.walls.get(i).map(|r| {
                (
                    r.x + r.w / 2.0,
                    r.y + r.h / 2.0,
                    (r.w.max(r.h) / 2.0).max(0.5),
                )
            }),
            "spawn" => map.spawns.get(i).map(|p| (p.x, p.y, 1.0)),
            _ => map.pickups.get(i).map(|p| (p.x, p.y, 1.0)),
        });
        let Some((x, y, r)) = centre else { continue };
        let (cx, cy, r) = (
            f64::from(x) * scale,
            f64::from(y) * scale,
            f64::from(r) * scale + 4.0,
        );
        let _ = writeln!(
            s,
            r#"<circle class="problem" data-problem="{}" cx="{}" cy="{}" r="{}"/>"#,
            n + 1,
            num(cx),
            num(cy),
            num(r)
        );
        let _ = writeln!(
            s,
            r#"<text class="problem-label" x="{}" y="{}">!{}</text>"#,
            num(cx + r + 2.0),
            num(cy + r),
            n + 1
        );
    }
    s.push_str("</g>\n");
}

/// Every problem, numbered like its marker, under the drawing starting at `top`.
fn list_problems(s: &mut String, problems: &[Problem], top: f64) {
    if problems.is_empty() {
        return;
    }
    let _ = writeln!(
        s,
        r#"<text class="problem-label" x="{}" y="{}">{} problem{}: this map does not load</text>"#,
        num(MARGIN_LEFT),
        num(top + PROBLEM_ROW_PX),
        problems.len(),
        if problems.len() == 1 { "" } else { "s" }
    );
    for (n, p) in problems.iter().enumerate() {
        let _ = writeln!(
            s,
            r#"<text class="problem-text" x="{}" y="{}">!{} {}:{}: {}</text>"#,
            num(MARGIN_LEFT),
            num(top + PROBLEM_ROW_PX * (n as f64 + 2.0)),
            n + 1,
            p.line,
            p.column,
            escape(&p.message)
        );
    }
}

/// The smallest of 1, 2, 5, 10, 20, 50, ... units that keeps lines at least 8 px apart
/// and at most 100 per side.
fn grid_step(width: f64, height: f64, scale: f64) -> f64 {
    let mut step = 1.0;
    for candidate in [1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0] {
        step = candidate;
        if candidate * scale >= 8.0 && width.max(height) / candidate <= 100.0 {
            break;
        }
    }
    step
}

fn sane(v: f64, fallback: f64) -> f64 {
    if v.is_finite() && v > 0.0 {
        v.min(1.0e6)
    } else {
        fallback
    }
}

/// Pixel coordinates with at most two decimals, no trailing zeros; non-finite as 0 so
/// the document stays well-formed.
fn num(v: f64) -> String {
    if !v.is_finite() {
        return "0".to_string();
    }
    let s = format!("{v:.2}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".to_string()
    } else {
        s.to_string()
    }
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Control characters are not allowed in XML 1.0 at all.
            c if c.is_control() && !matches!(c, '\t' | '\n' | '\r') => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}
