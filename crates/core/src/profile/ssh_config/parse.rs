//! Reading ssh_config text the way OpenSSH's `readconf.c` does: the file's encoding, then each
//! line split into a keyword and its arguments (`strdelim` for the keyword, `argv_split` for the
//! arguments, the raw rest of the line for commands such as `ProxyCommand`).

use std::path::Path;

/// OpenSSH's `WHITESPACE` for `strdelim`.
const WHITESPACE: &[char] = &[' ', '\t', '\r', '\n'];

/// The text of a config file, and a remark when it was not plain UTF-8.
#[derive(Debug)]
pub(super) struct Decoded {
    /// The text, without a byte-order mark.
    pub text: String,
    /// Set when the file had a byte-order mark or was UTF-16 (OpenSSH refuses both).
    pub remark: Option<String>,
}

/// Decodes a config file: UTF-8, UTF-8 with a byte-order mark, UTF-16 LE or BE with a
/// byte-order mark (what Windows editors and PowerShell 5 redirection write). The error says
/// what the file is and how to save it instead.
pub(super) fn decode(bytes: &[u8], path: &Path) -> Result<Decoded, String> {
    let shown = path.display();
    if let Some(rest) = bytes.strip_prefix(b"\xef\xbb\xbf") {
        let text = std::str::from_utf8(rest).map_err(|e| not_utf8(path, e))?;
        return Ok(Decoded {
            text: text.to_string(),
            remark: Some(format!(
                "{shown} starts with a UTF-8 byte-order mark, which OpenSSH refuses \
                 (\"Bad configuration option\"); it was skipped. Save the file as UTF-8 without BOM \
                 so that ssh reads it too"
            )),
        });
    }
    let utf16 = |rest: &[u8], little: bool| -> Result<String, String> {
        if !rest.len().is_multiple_of(2) {
            return Err(format!(
                "{shown} is UTF-16 but has an odd number of bytes; save it as UTF-8"
            ));
        }
        let units = rest.chunks_exact(2).map(|c| {
            if little {
                u16::from_le_bytes([c[0], c[1]])
            } else {
                u16::from_be_bytes([c[0], c[1]])
            }
        });
        char::decode_utf16(units)
            .collect::<Result<String, _>>()
            .map_err(|_| format!("{shown} is not valid UTF-16; save it as UTF-8"))
    };
    for (bom, little, name) in [
        (&b"\xff\xfe"[..], true, "UTF-16 LE"),
        (&b"\xfe\xff"[..], false, "UTF-16 BE"),
    ] {
        if let Some(rest) = bytes.strip_prefix(bom) {
            return Ok(Decoded {
                text: utf16(rest, little)?,
                remark: Some(format!(
                    "{shown} is {name} (as PowerShell 5 `>` writes it), which OpenSSH refuses; it \
                     was read anyway. Save it as UTF-8 so that ssh reads it too"
                )),
            });
        }
    }
    // UTF-16 without a byte-order mark: ASCII text with every other byte zero.
    if bytes.len() >= 4 && bytes.iter().skip(1).step_by(2).take(64).all(|b| *b == 0) {
        return Err(format!(
            "{shown} looks like UTF-16 without a byte-order mark; save it as UTF-8"
        ));
    }
    match std::str::from_utf8(bytes) {
        Ok(text) => Ok(Decoded {
            text: text.to_string(),
            remark: None,
        }),
        Err(e) => Err(not_utf8(path, e)),
    }
}

fn not_utf8(path: &Path, e: std::str::Utf8Error) -> String {
    format!(
        "{} is not UTF-8 text (invalid byte at offset {}); save it as UTF-8",
        path.display(),
        e.valid_up_to()
    )
}

/// One meaningful line of a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Line {
    /// The keyword in lower case.
    pub keyword: String,
    /// The keyword as written (for messages).
    pub written: String,
    /// The arguments, split and unquoted as `argv_split` does (empty when the quotes do not
    /// close: see `bad_quotes`).
    pub args: Vec<String>,
    /// The rest of the line after the keyword, as OpenSSH hands it to commands
    /// (`ProxyCommand`): leading whitespace and `=` removed, nothing else.
    pub raw: String,
    /// Quotes that do not close (OpenSSH: "invalid quotes").
    pub bad_quotes: bool,
    /// 1-based line number.
    pub number: usize,
}

/// The lines of `text` that hold a keyword (comments and blank lines dropped). Line numbers
/// count `\n` as OpenSSH's `getline` does, so CRLF files number the same.
pub(super) fn lines(text: &str) -> Vec<Line> {
    let mut out = Vec::new();
    for (n, raw) in text.split('\n').enumerate() {
        // Trailing whitespace, \f included, goes first (CRLF's \r with it).
        let line = raw.trim_end_matches([' ', '\t', '\r', '\n', '\x0c']);
        let Some((mut keyword, mut rest)) = strdelim(line, true) else {
            continue;
        };
        if keyword.is_empty() {
            let Some((k, r)) = rest.and_then(|r| strdelim(r, true)) else {
                continue;
            };
            keyword = k;
            rest = r;
        }
        if keyword.is_empty() || keyword.starts_with('#') {
            continue;
        }
        let rest = rest.unwrap_or("").trim_start_matches(WHITESPACE);
        let (args, bad_quotes) = match argv_split(rest) {
            Some(args) => (args, false),
            None => (Vec::new(), true),
        };
        out.push(Line {
            keyword: keyword.to_ascii_lowercase(),
            written: keyword,
            args,
            raw: rest
                .trim_start_matches([' ', '\t', '\r', '\n', '='])
                .to_string(),
            bad_quotes,
            number: n + 1,
        });
    }
    out
}

/// OpenSSH's `strdelim_internal`: the next token (up to whitespace, a quote or one `=`), and
/// the rest after the delimiter and the whitespace that follows it. `None` when a quote does
/// not close.
fn strdelim(s: &str, split_equals: bool) -> Option<(String, Option<&str>)> {
    let is_delim = |c: char| WHITESPACE.contains(&c) || c == '"' || (split_equals && c == '=');
    let Some(i) = s.find(is_delim) else {
        return Some((s.to_string(), None));
    };
    if s[i..].starts_with('"') {
        let after = &s[i + 1..];
        let close = after.find('"')?;
        let token = format!("{}{}", &s[..i], &after[..close]);
        let rest = after[close + 1..].trim_start_matches(WHITESPACE);
        return Some((token, Some(rest)));
    }
    let equals = split_equals && s[i..].starts_with('=');
    let mut rest = s[i + 1..].trim_start_matches(WHITESPACE);
    if split_equals && !equals && rest.starts_with('=') {
        rest = rest[1..].trim_start_matches(WHITESPACE);
    }
    Some((s[..i].to_string(), Some(rest)))
}

/// OpenSSH's `argv_split(s, …, terminate_on_comment = 1)`: words split on spaces and tabs,
/// single and double quotes, `\"` `\'` `\\` and (outside quotes) `\ ` escapes, and a `#` at the
/// start of a word ends the line. `None` when a quote does not close.
pub(super) fn argv_split(s: &str) -> Option<Vec<String>> {
    let chars: Vec<char> = s.chars().collect();
    let mut args = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == ' ' || chars[i] == '\t' {
            i += 1;
            continue;
        }
        if chars[i] == '#' {
            break;
        }
        let mut arg = String::new();
        let mut quote: Option<char> = None;
        while i < chars.len() {
            let c = chars[i];
            if c == '\\' {
                match chars.get(i + 1) {
                    Some(&n)
                        if n == '\'' || n == '"' || n == '\\' || (quote.is_none() && n == ' ') =>
                    {
                        arg.push(n);
                        i += 1;
                    }
                    _ => arg.push(c),
                }
            } else if quote.is_none() && (c == ' ' || c == '\t') {
                break;
            } else if quote.is_none() && (c == '"' || c == '\'') {
                quote = Some(c);
            } else if quote == Some(c) {
                quote = None;
            } else {
                arg.push(c);
            }
            i += 1;
        }
        if quote.is_some() {
            return None;
        }
        args.push(arg);
    }
    Some(args)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(line: &str) -> Line {
        lines(line).remove(0)
    }

    #[test]
    fn keyword_forms_like_openssh() {
        let l = one("  IdentityFile=\"/a b/key\"  # mine");
        assert_eq!(
            (l.keyword.as_str(), l.args),
            ("identityfile", vec!["/a b/key".to_string()])
        );
        let l = one("HOSTNAME = x.example");
        assert_eq!(
            (l.keyword.as_str(), l.args),
            ("hostname", vec!["x.example".into()])
        );
        let l = one("\tPort\t2222\r");
        assert_eq!((l.keyword.as_str(), l.args), ("port", vec!["2222".into()]));
        assert!(lines("# only a comment\n\n   \r\n").is_empty());
        let l = one("Host a b #c");
        assert_eq!(l.args, vec!["a".to_string(), "b".into()]);
        let l = one("ProxyCommand = ssh -W '%h:%p' \"j\" # kept");
        assert_eq!(l.raw, "ssh -W '%h:%p' \"j\" # kept");
        assert!(one("User \"open").bad_quotes);
        assert_eq!(one("User a\\ b").args, vec!["a b".to_string()]);
    }

    #[test]
    fn encodings() {
        let p = Path::new("config");
        let d = decode(b"\xef\xbb\xbfHost a\n", p).unwrap();
        assert_eq!(d.text, "Host a\n");
        assert!(d.remark.unwrap().contains("byte-order mark"));
        let le: Vec<u8> = [0xff, 0xfe]
            .into_iter()
            .chain("Host b\r\n".encode_utf16().flat_map(|u| u.to_le_bytes()))
            .collect();
        assert_eq!(decode(&le, p).unwrap().text, "Host b\r\n");
        let be: Vec<u8> = [0xfe, 0xff]
            .into_iter()
            .chain("Host c".encode_utf16().flat_map(|u| u.to_be_bytes()))
            .collect();
        assert_eq!(decode(&be, p).unwrap().text, "Host c");
        let bare: Vec<u8> = "Host c"
            .encode_utf16()
            .flat_map(|u| u.to_le_bytes())
            .collect();
        assert!(decode(&bare, p).unwrap_err().contains("UTF-16"));
        assert!(decode(b"Host \xff", p).unwrap_err().contains("not UTF-8"));
    }
}
