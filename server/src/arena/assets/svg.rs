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

use super::{MapDef, Point, Tuning};
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
    render_svg_with_problems(map, player_radius, &[])
}

/// Renders `map` with its `problems` marked and listed (see the module header).
pub fn render_svg_with_problems(map: &MapDef, player_radius: f32, problems: &[Problem]) -> String {
    let width = sane(f64::from(map.width), 10.0);
    let height = sane(f64::from(map.height), 10.0);
    let scale = (TARGET_PX / width.max(height)).clamp(0.5, 40.0);
    let (pw, ph) = (num(width * scale), num(height * scale));
    let list_h = match problems.len() {
        0 => 0.0,
        n => PROBLEM_ROW_PX * (n as f64 + 1.0) + 8.0,
    };
    let floor_h = height * scale + MARGIN_TOP + MARGIN_BOTTOM;
    let (w, h) = (
        num(width * scale + MARGIN_LEFT + MARGIN_RIGHT),
        num(floor_h + list_h),
    );
    let (name, left, top) = (escape(&map.name), num(MARGIN_LEFT), num(MARGIN_TOP));
    let step = grid_step(width, height, scale);
    let (walls, spawns, pickups) = (map.walls.len(), map.spawns.len(), map.pickups.len());
    let plural = if step == 1.0 { "" } else { "s" };
    let mut s = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" data-map="{name}">
<title>{name}</title>
<style>{STYLE}</style>
<rect class="background" x="0" y="0" width="{w}" height="{h}"/>
<text class="title" x="{left}" y="20">{name}</text>
<text class="subtitle" x="{left}" y="38">{} × {} units · {walls} walls · {spawns} spawns · {pickups} pickups · grid {} unit{plural} · y grows downwards</text>
<g transform="translate({left} {top})">
<rect class="floor" x="0" y="0" width="{pw}" height="{ph}"/>
"#,
        num(width),
        num(height),
        num(step),
    );
    draw_grid(&mut s, [width, height], step, scale);
    draw_walls(&mut s, map, scale);
    s += &format!("<rect class=\"border\" x=\"0\" y=\"0\" width=\"{pw}\" height=\"{ph}\"/>\n");
    draw_things(
        &mut s,
        map,
        sane(f64::from(player_radius), 0.5) * scale,
        scale,
    );
    mark_problems(&mut s, map, scale, problems);
    s.push_str("</g>\n");
    list_problems(&mut s, problems, floor_h);
    s.push_str("</svg>\n");
    s
}

/// A line every `step` units, a darker labelled one every 5 steps.
fn draw_grid(s: &mut String, [width, height]: [f64; 2], step: f64, scale: f64) {
    // (k, where in pixels, the label in units) for each line along `extent`.
    let lines = |extent: f64| {
        let at = move |k: u32| f64::from(k) * step;
        (0u32..)
            .take_while(move |&k| at(k) <= extent + 1e-9)
            .map(move |k| (k, num(at(k) * scale), num(at(k))))
    };
    let class = |k: u32| {
        if k.is_multiple_of(5) {
            "major"
        } else {
            "minor"
        }
    };
    let (pw, ph) = (num(width * scale), num(height * scale));
    s.push_str("<g class=\"grid\">\n");
    for (k, x, label) in lines(width) {
        let class = class(k);
        let _ = writeln!(
            s,
            r#"<line class="{class}" x1="{x}" y1="0" x2="{x}" y2="{ph}"/>"#
        );
        if k.is_multiple_of(5) {
            let _ = writeln!(
                s,
                r#"<text class="axis" x="{x}" y="-6" text-anchor="middle">{label}</text>"#
            );
        }
    }
    for (k, y, label) in lines(height) {
        let class = class(k);
        let _ = writeln!(
            s,
            r#"<line class="{class}" x1="0" y1="{y}" x2="{pw}" y2="{y}"/>"#
        );
        if k.is_multiple_of(5) && k > 0 {
            let _ = writeln!(
                s,
                r#"<text class="axis" x="-6" y="{y}" text-anchor="end" dominant-baseline="middle">{label}</text>"#
            );
        }
    }
    s.push_str("</g>\n");
}

/// Every wall, exactly one `<rect class="wall">` each.
fn draw_walls(s: &mut String, map: &MapDef, scale: f64) {
    let px = |v: f32| num(f64::from(v) * scale);
    s.push_str("<g class=\"walls\">\n");
    for (n, r) in (1..).zip(&map.walls) {
        let (x, y, w, h) = (px(r.x), px(r.y), px(r.w.max(0.0)), px(r.h.max(0.0)));
        let title = format!("wall #{n}: x={}, y={}, w={}, h={}", r.x, r.y, r.w, r.h);
        let _ = writeln!(
            s,
            r#"<rect class="wall" data-wall="{n}" x="{x}" y="{y}" width="{w}" height="{h}"><title>{title}</title></rect>"#
        );
    }
    s.push_str("</g>\n");
}

/// Spawn points as numbered circles of radius `r` (pixels), pickups as lettered diamonds.
fn draw_things(s: &mut String, map: &MapDef, r: f64, scale: f64) {
    let at = |x: f32, y: f32| (f64::from(x) * scale, f64::from(y) * scale);
    s.push_str("<g class=\"spawns\">\n");
    for (n, p) in (1..).zip(&map.spawns) {
        let (cx, cy) = at(p.x, p.y);
        let (x, y, lx, ly, rr) = (num(cx), num(cy), num(cx + r + 2.0), num(cy - r), num(r));
        let _ = writeln!(
            s,
            r##"<circle class="spawn" data-spawn="{n}" cx="{x}" cy="{y}" r="{rr}"><title>spawn #{n}: ({}, {})</title></circle>
<text class="spawn-label" x="{lx}" y="{ly}">#{n}</text>"##,
            p.x, p.y
        );
    }
    s.push_str("</g>\n<g class=\"pickups\">\n");
    let r = f64::from(Tuning::default().pickup.radius) * scale;
    for (n, p) in (1..).zip(&map.pickups) {
        let (cx, cy) = at(p.x, p.y);
        let (x, y, top, bottom) = (num(cx), num(cy), num(cy - r), num(cy + r));
        let (left, right, lx) = (num(cx - r), num(cx + r), num(cx + r + 2.0));
        let _ = writeln!(
            s,
            r#"<polygon class="pickup" data-pickup="{n}" points="{x},{top} {right},{y} {x},{bottom} {left},{y}"><title>pickup #{n}: ({}, {})</title></polygon>
<text class="pickup-label" x="{lx}" y="{top}">P{n}</text>"#,
            p.x, p.y
        );
    }
    s.push_str("</g>\n");
}

/// Where a problem's marker goes, in map units (centre and ring radius): on the wall,
/// spawn or pickup its message starts with (`spawn #2 at …`).
fn marker(problem: &Problem, map: &MapDef) -> Option<(f32, f32, f32)> {
    let (kind, rest) = problem.message.split_once(" #")?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let i = digits.parse::<usize>().ok()?.checked_sub(1)?;
    let point = |p: &Point| (p.x, p.y, 1.0);
    match kind {
        "wall" => map.walls.get(i).map(|r| {
            let ring = (r.w.max(r.h) / 2.0).max(0.5);
            (r.x + r.w / 2.0, r.y + r.h / 2.0, ring)
        }),
        "spawn" => map.spawns.get(i).map(point),
        "pickup" => map.pickups.get(i).map(point),
        _ => None,
    }
}

/// A numbered red ring on each element a problem names (map coordinates, scaled).
fn mark_problems(s: &mut String, map: &MapDef, scale: f64, problems: &[Problem]) {
    s.push_str("<g class=\"problems\">\n");
    for (n, problem) in (1..).zip(problems) {
        let Some((x, y, r)) = marker(problem, map) else {
            continue;
        };
        let (cx, cy) = (f64::from(x) * scale, f64::from(y) * scale);
        let r = f64::from(r) * scale + 4.0;
        let (x, y, lx, ly, r) = (num(cx), num(cy), num(cx + r + 2.0), num(cy + r), num(r));
        let _ = writeln!(
            s,
            r#"<circle class="problem" data-problem="{n}" cx="{x}" cy="{y}" r="{r}"/>
<text class="problem-label" x="{lx}" y="{ly}">!{n}</text>"#
        );
    }
    s.push_str("</g>\n");
}

/// Every problem, numbered like its marker, under the drawing starting at `top`.
fn list_problems(s: &mut String, problems: &[Problem], top: f64) {
    let left = num(MARGIN_LEFT);
    let row = |n: usize| num(top + PROBLEM_ROW_PX * (n as f64 + 1.0));
    let (count, plural) = (problems.len(), if problems.len() == 1 { "" } else { "s" });
    if count > 0 {
        let _ = writeln!(
            s,
            r#"<text class="problem-label" x="{left}" y="{}">{count} problem{plural}: this map does not load</text>"#,
            row(0)
        );
    }
    for (n, p) in (1..).zip(problems) {
        let (line, column, message) = (p.line, p.column, escape(&p.message));
        let _ = writeln!(
            s,
            r#"<text class="problem-text" x="{left}" y="{}">!{n} {line}:{column}: {message}</text>"#,
            row(n)
        );
    }
}

/// The smallest of 1, 2, 5, 10, 20, 50, ... units that keeps lines at least 8 px apart
/// and at most 100 per side.
fn grid_step(width: f64, height: f64, scale: f64) -> f64 {
    let steps = [1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0];
    let fits = |step: &f64| step * scale >= 8.0 && width.max(height) / step <= 100.0;
    steps.into_iter().find(fits).unwrap_or(1000.0)
}

/// `v` when it is a usable size, `fallback` otherwise.
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
    let s = format!("{:.2}", if v.is_finite() { v } else { 0.0 });
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0" } else { s }.to_string()
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
