//! What other players are shown of a client's text: display names and chat lines.
//!
//! Names (from a token's `name` claim, else its `sub`) lose control characters and every
//! default-ignorable code point (bidi controls such as U+202E, zero-width characters,
//! variation selectors, fillers), whitespace runs (tabs and line breaks included) become
//! one space, each base character
//! keeps at most [`MAX_MARKS_PER_BASE`] combining marks, and the result is cut to
//! [`MAX_NAME_CHARS`] characters. A name with nothing visible left is replaced by one
//! generated from the account id (`player-1a2b`). Chat lines lose C0 and C1 control
//! characters (NUL, ESC, CR, LF, ...). PROTOCOL.md states the same rules.
//!
//! Pure functions: must not log, allocate beyond the result, or know where text is from.

use unicode_normalization::char::is_combining_mark;

/// Longest display name kept, in characters; longer names are cut.
pub const MAX_NAME_CHARS: usize = 24;
/// Combining marks kept on one base character: enough for stacked diacritics
/// (Vietnamese) and Indic vowel signs, not for a tower of 1,000.
pub const MAX_MARKS_PER_BASE: usize = 3;

/// The name shown for an account: its cleaned `claimed` name, else its cleaned `sub`,
/// else a name generated from the `sub`.
pub fn display_name(claimed: Option<&str>, sub: &str) -> String {
    claimed
        .and_then(clean_name)
        .or_else(|| clean_name(sub))
        .unwrap_or_else(|| generated_name(sub))
}

/// A name with the rules applied, or `None` when nothing visible is left.
pub fn clean_name(raw: &str) -> Option<String> {
    let mut out = String::with_capacity(raw.len().min(4 * MAX_NAME_CHARS));
    let (mut chars, mut marks, mut base) = (0usize, 0usize, false);
    for c in raw.chars() {
        if chars == MAX_NAME_CHARS {
            break;
        }
        // Whitespace first: a tab or a line break in a name reads as a space.
        if c.is_whitespace() {
            if !out.is_empty() && !out.ends_with(' ') {
                out.push(' ');
                chars += 1;
            }
            base = false;
            continue;
        }
        if c.is_control() || is_default_ignorable(c) {
            continue;
        }
        if is_combining_mark(c) {
            // A mark needs a base, and each base carries only a few.
            if !base || marks == MAX_MARKS_PER_BASE {
                continue;
            }
            marks += 1;
        } else {
            (base, marks) = (true, 0);
        }
        out.push(c);
        chars += 1;
    }
    let trimmed = out.trim_end();
    trimmed
        .chars()
        .any(|c| !c.is_whitespace() && !is_combining_mark(c))
        .then(|| trimmed.to_owned())
}

/// A chat line without C0 or C1 control characters (CR and LF included: one line each).
pub fn clean_chat(raw: &str) -> String {
    raw.chars().filter(|c| !c.is_control()).collect()
}

/// `player-` and four hex digits of a hash of `sub`: stable for an account.
fn generated_name(sub: &str) -> String {
    // FNV-1a: stable across builds and platforms, unlike the std hasher.
    let hash = sub.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    format!("player-{:04x}", hash & 0xffff)
}

/// Unicode's `Default_Ignorable_Code_Point` (DerivedCoreProperties.txt): characters a
/// renderer shows as nothing, among them the bidi controls and zero-width characters.
fn is_default_ignorable(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{061C}'
            | '\u{115F}'..='\u{1160}'
            | '\u{17B4}'..='\u{17B5}'
            | '\u{180B}'..='\u{180F}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{FFF0}'..='\u{FFF8}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0000}'..='\u{E0FFF}'
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bidi_controls_and_zero_width_characters_are_stripped() {
        assert_eq!(clean_name("ali\u{202E}ecila").as_deref(), Some("aliecila"));
        assert_eq!(
            clean_name("\u{2066}bob\u{2069}\u{200B}\u{FEFF}\u{200D}").as_deref(),
            Some("bob")
        );
        assert_eq!(
            clean_name("a\u{0}b\u{1b}[31mc\r\nd").as_deref(),
            Some("ab[31mc d")
        );
    }

    #[test]
    fn names_with_nothing_visible_are_none() {
        for invisible in [
            "",
            "   ",
            "\u{200B}\u{200B}",
            "\u{202E}\u{2066}",
            "\u{3164}\u{FFA0}\u{115F}",
            "\u{0301}\u{0301}",
            "\u{7}\u{85}",
        ] {
            assert_eq!(clean_name(invisible), None, "{invisible:?}");
        }
    }

    #[test]
    fn combining_marks_are_capped_per_base_character() {
        let zalgo = format!("Z{}a{}", "\u{0301}".repeat(1000), "\u{0316}".repeat(5));
        let name = clean_name(&zalgo).unwrap();
        assert_eq!(
            name,
            format!("Z{}a{}", "\u{0301}".repeat(3), "\u{0316}".repeat(3))
        );
        // Real text keeps its marks: Vietnamese (decomposed) and Hindi.
        let viet = "Nguye\u{0302}\u{0303}n";
        assert_eq!(clean_name(viet).as_deref(), Some(viet));
        assert_eq!(clean_name("नमस्ते").as_deref(), Some("नमस्ते"));
        // A mark with no base is dropped.
        assert_eq!(clean_name("\u{0301}x").as_deref(), Some("x"));
    }

    #[test]
    fn whitespace_collapses_and_names_are_cut_to_24_characters() {
        assert_eq!(
            clean_name("  ana \t  maria  ").as_deref(),
            Some("ana maria")
        );
        let long = "x".repeat(100);
        assert_eq!(clean_name(&long).unwrap().chars().count(), MAX_NAME_CHARS);
        let spaced = format!("{} y", "x".repeat(23));
        assert_eq!(
            clean_name(&spaced).unwrap(),
            "x".repeat(23),
            "no trailing space"
        );
    }

    #[test]
    fn the_display_name_falls_back_to_the_sub_then_a_generated_name() {
        assert_eq!(display_name(Some("Ana"), "acct-1"), "Ana");
        assert_eq!(display_name(Some("\u{200B}"), "acct-1"), "acct-1");
        assert_eq!(display_name(None, "acct-1"), "acct-1");
        let generated = display_name(Some("\u{202E}"), "\u{202E}\u{200B}");
        assert!(generated.starts_with("player-"), "{generated}");
        assert_eq!(generated.len(), "player-0000".len());
        assert_eq!(generated, display_name(None, "\u{202E}\u{200B}"), "stable");
        assert_ne!(generated, display_name(None, "\u{202E}\u{200C}"));
    }

    #[test]
    fn chat_loses_c0_and_c1_controls_only() {
        assert_eq!(
            clean_chat("gg\u{0}\u{1b}[2J\r\nwp\u{85}\u{9b}!"),
            "gg[2Jwp!"
        );
        assert_eq!(clean_chat("héllo \u{202E} wörld"), "héllo \u{202E} wörld");
    }
}
