//! OpenSSH's pattern matching (`match_pattern`, `match_pattern_list`) and the files an
//! `Include` names.

use std::path::{Path, PathBuf};

use super::tokens;

/// An `Include` argument as a glob pattern: `~` expanded, relative paths under `~/.ssh`.
pub(super) fn include_pattern(arg: &str, home: &str) -> String {
    if arg.starts_with('~') {
        tokens::tilde(arg, home)
    } else if Path::new(arg).is_absolute() || arg.starts_with('/') {
        arg.to_string()
    } else {
        Path::new(home).join(".ssh").join(arg).display().to_string()
    }
}

/// The regular files matching `pattern` (C `glob(3)` rules: sorted, hidden files only for a
/// pattern that starts with a dot).
pub(super) fn glob_files(pattern: &str) -> Vec<PathBuf> {
    let options = glob::MatchOptions {
        case_sensitive: true,
        require_literal_separator: true,
        require_literal_leading_dot: true,
    };
    let mut found: Vec<PathBuf> = match glob::glob_with(pattern, options) {
        Ok(paths) => paths.flatten().filter(|p| p.is_file()).collect(),
        Err(_) => Vec::new(),
    };
    found.sort();
    found
}

/// OpenSSH's `match_pattern`: `*` any run, `?` one character; case-sensitive.
pub(crate) fn wildcard(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// OpenSSH's `match_pattern_list`: comma-separated patterns, `!` negates; a negated hit wins.
/// `lower` lower-cases the patterns (the text must already be lower case).
pub(super) fn pattern_list(text: &str, list: &str, lower: bool) -> bool {
    let mut positive = false;
    for sub in list.split(',') {
        let (negated, sub) = match sub.strip_prefix('!') {
            Some(s) => (true, s),
            None => (false, sub),
        };
        let sub = if lower {
            sub.to_lowercase()
        } else {
            sub.to_string()
        };
        if wildcard(&sub, text) {
            if negated {
                return false;
            }
            positive = true;
        }
    }
    positive
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_like_openssh() {
        assert!(wildcard("*.corp", "gpu1.corp"));
        assert!(wildcard("gpu?", "gpu7"));
        assert!(!wildcard("gpu?", "gpu10"));
        assert!(wildcard("*", ""));
        assert!(!wildcard("a*b", "ac"));
        assert!(!wildcard("A", "a"), "Host patterns are case-sensitive");
        assert!(pattern_list("gpu1", "GPU*,!gpu2", true));
        assert!(!pattern_list("gpu2", "gpu*,!gpu2", true));
        assert!(!pattern_list("x", "!y", true), "only negations never match");
    }
}
