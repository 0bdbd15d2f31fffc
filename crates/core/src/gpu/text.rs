//! Remote text made safe to show: what nvidia-smi, `ps` and the process table say comes from
//! other users of a shared machine (a process name is whatever its owner started it as), so it is
//! cleaned before it reaches a terminal or the app.

/// `text` without control characters, terminal escape sequences (CSI `ESC [ … final`, OSC
/// `ESC ] … BEL`/`ESC \`, and two-byte `ESC x`), C1 controls, and the Unicode bidirectional
/// overrides and isolates that can make a line read differently from what it is. Tabs become
/// spaces; nothing else changes.
pub fn display_safe(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => match chars.next() {
                // CSI: parameters and intermediates, then one final byte in @..~.
                Some('[') => {
                    for c in chars.by_ref() {
                        if ('\u{40}'..='\u{7e}').contains(&c) {
                            break;
                        }
                    }
                }
                // OSC, DCS, SOS, PM, APC: up to BEL or ST (ESC \).
                Some(']' | 'P' | 'X' | '^' | '_') => {
                    while let Some(c) = chars.next() {
                        if c == '\u{7}' {
                            break;
                        }
                        if c == '\u{1b}' {
                            if chars.peek() == Some(&'\\') {
                                chars.next();
                            }
                            break;
                        }
                    }
                }
                _ => {}
            },
            '\t' => out.push(' '),
            c if c.is_control() || is_bidi_control(c) => {}
            c => out.push(c),
        }
    }
    out
}

fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// The longest prefix of `text` of at most `max` bytes that ends on a character boundary.
pub(crate) fn cut(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn escapes_and_controls_are_removed() {
        assert_eq!(display_safe("py\u{1b}[31mthon\u{1b}[0m"), "python");
        assert_eq!(display_safe("a\u{1b}]0;owned\u{7}b"), "ab");
        assert_eq!(display_safe("a\u{1b}]8;;http://x\u{1b}\\b"), "ab");
        assert_eq!(display_safe("x\r\ny\u{0}\u{7f}\u{9b}z"), "xyz");
        assert_eq!(display_safe("tab\there"), "tab here");
        assert_eq!(display_safe("evil\u{202e}txt.exe"), "eviltxt.exe");
        assert_eq!(
            display_safe("NVIDIA H100 80GB HBM3 · ü"),
            "NVIDIA H100 80GB HBM3 · ü"
        );
        assert_eq!(display_safe("trailing\u{1b}"), "trailing");
    }

    #[test]
    fn cut_keeps_char_boundaries() {
        assert_eq!(cut("héllo", 2), "h");
        assert_eq!(cut("héllo", 3), "hé");
        assert_eq!(cut("abc", 10), "abc");
    }

    proptest! {
        #[test]
        fn output_has_no_control_characters(s in any::<String>()) {
            let safe = display_safe(&s);
            prop_assert!(!safe.chars().any(|c| c.is_control() || is_bidi_control(c)));
        }
    }
}
