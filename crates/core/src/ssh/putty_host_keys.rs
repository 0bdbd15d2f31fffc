//! PuTTY's host key cache (`HKCU\Software\SimonTatham\PuTTY\SshHostKeys`), read on Windows so a
//! host the user already trusted in PuTTY counts as known, like a `known_hosts` line.
//!
//! PuTTY stores one registry string value per host key: the value name is
//! `KEYTYPE@PORT:HOST` (e.g. `ssh-ed25519@22:gpu.example.edu`, `rsa2@2222:10.0.0.5`, with
//! characters such as spaces and `%` escaped as `%XX`), the data is the key's numbers in
//! lowercase hex (what PuTTY's `*_cache_str` functions write):
//!
//! - `rsa2`: `0xEXPONENT,0xMODULUS`;
//! - `ssh-ed25519`: `0xX,0xY`, the affine coordinates of the point;
//! - `ecdsa-sha2-nistp256` / `384` / `521`: `CURVE,0xX,0xY` (`nistp256,0x…,0x…`);
//! - `dss`: `0xP,0xQ,0xG,0xY`.
//!
//! Turning a value into a [`PublicKey`] is plain code, compiled and tested everywhere; only
//! [`read_registry`] is Windows-only.

use russh::keys::PublicKey;

use super::known_hosts::lookup_name;

/// Where PuTTY keeps its host keys, under `HKEY_CURRENT_USER`.
pub const REGISTRY_KEY: &str = r"Software\SimonTatham\PuTTY\SshHostKeys";

/// One host key from PuTTY's cache.
#[derive(Debug, Clone)]
pub struct PuttyHostKey {
    /// The registry value name as stored (`ssh-ed25519@22:host`).
    pub value_name: String,
    /// The name the host is looked up under, as OpenSSH writes it (`host` on port 22,
    /// `[host]:port` otherwise; see [`lookup_name`]).
    pub lookup_name: String,
    /// The key.
    pub key: PublicKey,
}

/// Where a PuTTY value is shown in messages: `HKCU\Software\SimonTatham\PuTTY\SshHostKeys`
/// followed by the value name in quotes.
pub fn location(value_name: &str) -> String {
    format!(r#"HKCU\{REGISTRY_KEY} value "{value_name}""#)
}

/// Splits a registry value name (`KEYTYPE@PORT:HOST`, `%XX`-escaped) into PuTTY's key type and
/// the name the host is looked up under (see [`lookup_name`]).
pub fn parse_name(value_name: &str) -> Result<(String, String), String> {
    let name = crate::profile::decode_putty_name(value_name);
    let malformed = || "the name is not KEYTYPE@PORT:HOST".to_string();
    let (key_type, rest) = name.split_once('@').ok_or_else(malformed)?;
    let (port, host) = rest.split_once(':').ok_or_else(malformed)?;
    let port: u16 = port
        .parse()
        .map_err(|_| format!("the port {port:?} is not a number"))?;
    if host.is_empty() {
        return Err("the name has no host".to_string());
    }
    Ok((key_type.to_string(), lookup_name(host, port, None)))
}

/// Parses one cached host key: the registry value name and its data. Errors say what is wrong
/// (for a warning); key types Tunnelbook cannot use (e.g. `ssh-ed448`) are errors too.
pub fn parse(value_name: &str, data: &str) -> Result<PuttyHostKey, String> {
    let (key_type, lookup_name) = parse_name(value_name)?;
    Ok(PuttyHostKey {
        value_name: value_name.to_string(),
        lookup_name,
        key: parse_value(&key_type, data)?,
    })
}

/// Turns PuTTY's cache string for a key of `key_type` (PuTTY's name: `rsa2`, `dss`,
/// `ssh-ed25519`, `ecdsa-sha2-nistp256`, …) into the public key.
pub fn parse_value(key_type: &str, data: &str) -> Result<PublicKey, String> {
    let fields: Vec<&str> = data.trim().split(',').collect();
    let mut blob = Vec::new();
    match (key_type, fields.as_slice()) {
        ("rsa2", [e, n]) => {
            put_string(&mut blob, b"ssh-rsa");
            put_mpint(&mut blob, &hex_number(e)?);
            put_mpint(&mut blob, &hex_number(n)?);
        }
        ("dss", [p, q, g, y]) => {
            put_string(&mut blob, b"ssh-dss");
            for n in [p, q, g, y] {
                put_mpint(&mut blob, &hex_number(n)?);
            }
        }
        ("ssh-ed25519", [x, y]) => {
            let x = hex_number(x)?;
            let y = hex_number(y)?;
            // RFC 8032's encoding: y little-endian, the top bit holding x's low bit.
            let mut point = fixed(&y, 32)?;
            if point[0] & 0x80 != 0 {
                return Err("the y coordinate is out of range".to_string());
            }
            if x.last().is_some_and(|b| b & 1 == 1) {
                point[0] |= 0x80;
            }
            point.reverse();
            put_string(&mut blob, b"ssh-ed25519");
            put_string(&mut blob, &point);
        }
        (t, [curve, x, y]) if t.starts_with("ecdsa-sha2-") => {
            let size = match *curve {
                "nistp256" => 32,
                "nistp384" => 48,
                "nistp521" => 66,
                other => return Err(format!("unknown curve {other}")),
            };
            if t != format!("ecdsa-sha2-{curve}") {
                return Err(format!("the curve {curve} does not match the key type {t}"));
            }
            let mut point = vec![4u8];
            point.extend(fixed(&hex_number(x)?, size)?);
            point.extend(fixed(&hex_number(y)?, size)?);
            put_string(&mut blob, t.as_bytes());
            put_string(&mut blob, curve.as_bytes());
            put_string(&mut blob, &point);
        }
        (t, _) if matches!(t, "rsa2" | "dss" | "ssh-ed25519") || t.starts_with("ecdsa-sha2-") => {
            return Err(format!(
                "the {key_type} value does not have the expected fields"
            ));
        }
        (other, _) => return Err(format!("key type {other} is not supported")),
    }
    PublicKey::from_bytes(&blob).map_err(|e| format!("not a valid {key_type} key ({e})"))
}

/// `0x1f…` (PuTTY writes lowercase hex without leading zeros) as big-endian bytes.
fn hex_number(text: &str) -> Result<Vec<u8>, String> {
    let digits = text
        .trim()
        .strip_prefix("0x")
        .ok_or_else(|| format!("{text:?} is not a 0x… number"))?;
    let padded = if digits.len() % 2 == 1 {
        format!("0{digits}")
    } else {
        digits.to_string()
    };
    data_encoding::HEXLOWER_PERMISSIVE
        .decode(padded.as_bytes())
        .map_err(|_| format!("{text:?} is not a hex number"))
}

/// A big-endian number as exactly `size` bytes.
fn fixed(number: &[u8], size: usize) -> Result<Vec<u8>, String> {
    let start = number.iter().position(|b| *b != 0).unwrap_or(number.len());
    let digits = &number[start..];
    if digits.len() > size {
        return Err("a coordinate is too large for the curve".to_string());
    }
    let mut out = vec![0u8; size - digits.len()];
    out.extend_from_slice(digits);
    Ok(out)
}

fn put_string(blob: &mut Vec<u8>, bytes: &[u8]) {
    blob.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    blob.extend_from_slice(bytes);
}

/// SSH's `mpint` of a non-negative big-endian number.
fn put_mpint(blob: &mut Vec<u8>, number: &[u8]) {
    let start = number.iter().position(|b| *b != 0).unwrap_or(number.len());
    let mut bytes = Vec::with_capacity(number.len() - start + 1);
    if number.get(start).is_some_and(|b| b & 0x80 != 0) {
        bytes.push(0);
    }
    bytes.extend_from_slice(&number[start..]);
    put_string(blob, &bytes);
}

/// The host keys in the current user's PuTTY cache listed for `name` (see [`lookup_name`]),
/// with a warning naming each such value that cannot be used. No PuTTY key in the registry means
/// no keys.
#[cfg(windows)]
pub fn read_registry(name: &str) -> (Vec<PuttyHostKey>, Vec<String>) {
    use winreg::{RegKey, enums::HKEY_CURRENT_USER};
    let Ok(root) = RegKey::predef(HKEY_CURRENT_USER).open_subkey(REGISTRY_KEY) else {
        return (Vec::new(), Vec::new());
    };
    let mut keys = Vec::new();
    let mut warnings = Vec::new();
    for value in root.enum_values() {
        let Ok((value_name, _)) = value else { continue };
        if !parse_name(&value_name).is_ok_and(|(_, listed)| listed == name) {
            continue;
        }
        let parsed = root
            .get_value::<String, _>(&value_name)
            .map_err(|e| e.to_string())
            .and_then(|data| parse(&value_name, &data));
        match parsed {
            Ok(key) => keys.push(key),
            Err(e) => warnings.push(format!("{}: {e}; skipped", location(&value_name))),
        }
    }
    (keys, warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Written by PuTTY 0.78's plink (`~/.putty/sshhostkeys`, the same strings as the registry)
    // after connecting to an sshd with these host keys (made by ssh-keygen).
    const ED_PUB: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIJNvQEfnhW5a/CEkfK4Dk26SumEVOLEChfQgClyLzf2";
    const ED_PUTTY: &str = "0x7ffa26138982ae5ad11bfc3e135e4dc84cf8bcbe175c76c533f108b492173b7b,0x76372f722980d0170ac4e25484e94aba4d0eb8f29184f06bb9159e1f01bd4d82";
    const RSA_PUB: &str = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQCWOJ/5okAuqu/jo80mKPZoRmltZusUfQX/3sYFQS7HGA/aUXhko+tK89L4b1/IJTxfsfNFN9O2KEQkmz0if9/lbA7wqSjLQkdaUdt4K72ELtiJRF0nytOafyaaSRm+R3DYDznxuexrVKqBwPEII1xbYmWuIYMuvHM+Ghbm07P3JMNwnWN7r8fhje7bln3YtD7qHYuB9AWTcR4wpIf/MDkC4LQ6//nEfOHsm5JtcBmk7HZvKP3zETk9MHBfHdh7V+MA2xdkBbsSpfr+9pcI5rHwuAWQ4qYmt5sSnXKjtRPqsBoreMAeAbJIESgks7iyeK3C49a6+7W6HHRsU+KQO+Wr";
    const RSA_PUTTY: &str = "0x10001,0x96389ff9a2402eaaefe3a3cd2628f66846696d66eb147d05ffdec605412ec7180fda517864a3eb4af3d2f86f5fc8253c5fb1f34537d3b62844249b3d227fdfe56c0ef0a928cb42475a51db782bbd842ed889445d27cad39a7f269a4919be4770d80f39f1b9ec6b54aa81c0f108235c5b6265ae21832ebc733e1a16e6d3b3f724c3709d637bafc7e18deedb967dd8b43eea1d8b81f40593711e30a487ff303902e0b43afff9c47ce1ec9b926d7019a4ec766f28fdf311393d30705f1dd87b57e300db176405bb12a5fafef69708e6b1f0b80590e2a626b79b129d72a3b513eab01a2b78c01e01b248112824b3b8b278adc2e3d6bafbb5ba1c746c53e2903be5ab";
    const ECDSA_PUB: &str = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBF5wLyt4xJCc4qq/kkeWh8R9jVVJsb/GsylBA18+Ct6/QntNNtAilu1yLwWMN10tL2VyM+jkCn/1+/plo6rnz9I=";
    const ECDSA_PUTTY: &str = "nistp256,0x5e702f2b78c4909ce2aabf92479687c47d8d5549b1bfc6b32941035f3e0adebf,0x427b4d36d02296ed722f058c375d2d2f657233e8e40a7ff5fbfa65a3aae7cfd2";

    fn key(s: &str) -> PublicKey {
        PublicKey::from_openssh(s).unwrap()
    }

    #[test]
    fn putty_cache_strings_are_the_ssh_keygen_keys() {
        for (name, data, public) in [
            ("ssh-ed25519@22:gpu.example.edu", ED_PUTTY, ED_PUB),
            ("rsa2@2222:10.0.0.5", RSA_PUTTY, RSA_PUB),
            (
                "ecdsa-sha2-nistp256@22:gpu.example.edu",
                ECDSA_PUTTY,
                ECDSA_PUB,
            ),
        ] {
            let parsed = parse(name, data).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(parsed.key.key_data(), key(public).key_data(), "{name}");
        }
        assert_eq!(
            parse("rsa2@2222:10.0.0.5", RSA_PUTTY).unwrap().lookup_name,
            "[10.0.0.5]:2222"
        );
        assert_eq!(
            parse("ssh-ed25519@22:GPU.example.edu", ED_PUTTY)
                .unwrap()
                .lookup_name,
            "gpu.example.edu"
        );
    }

    /// The ed25519 point's x parity decides the top bit: the other parity is another key.
    #[test]
    fn ed25519_sign_bit_and_leading_zeros() {
        let (x, y) = ED_PUTTY.split_once(',').unwrap();
        let even_x = format!("{}a,{y}", &x[..x.len() - 1]);
        let other = parse_value("ssh-ed25519", &even_x).unwrap();
        assert_ne!(other.key_data(), key(ED_PUB).key_data());
        // PuTTY drops leading zeros; a coordinate written with them is the same number.
        let padded = format!("{x},0x00{}", &y[2..]);
        assert_eq!(
            parse_value("ssh-ed25519", &padded).unwrap().key_data(),
            key(ED_PUB).key_data()
        );
    }

    #[test]
    fn unusable_values_are_errors_that_say_why() {
        let cases = [
            ("ssh-ed25519@22:h", "0x1", "fields"),
            ("ecdsa-sha2-nistp256@22:h", "nistp256,0x1,0x2,0x3", "fields"),
            ("ssh-ed25519", ED_PUTTY, "KEYTYPE@PORT:HOST"),
            ("ssh-ed25519@x:h", ED_PUTTY, "port"),
            ("ssh-ed448@22:h", "0x1,0x2", "not supported"),
            ("rsa2@22:h", "10001,0x3", "0x"),
            (
                "ecdsa-sha2-nistp256@22:h",
                "nistp384,0x1,0x2",
                "does not match",
            ),
        ];
        for (name, data, why) in cases {
            let e = parse(name, data).unwrap_err();
            assert!(e.contains(why), "{name}={data}: {e}");
        }
    }

    /// A changed key found in PuTTY's cache names the registry value and says to delete it.
    #[test]
    fn changed_message_names_the_registry_value() {
        let e = crate::ssh::SshError::HostKeyChanged {
            host: "h".into(),
            port: 22,
            expected: "SHA256:a".into(),
            presented: "SHA256:b".into(),
            file: location("ssh-ed25519@22:h"),
            line: 0,
        };
        let text = e.to_string();
        assert!(
            text.contains(r#"expected SHA256:a (HKCU\Software\SimonTatham\PuTTY\SshHostKeys value "ssh-ed25519@22:h")"#)
                && text.contains(r#"delete HKCU\Software\SimonTatham\PuTTY\SshHostKeys value "ssh-ed25519@22:h""#)
                && !text.contains("line 0"),
            "{text}"
        );
        let e = crate::ssh::SshError::HostKeyChanged {
            host: "h".into(),
            port: 22,
            expected: "SHA256:a".into(),
            presented: "SHA256:b".into(),
            file: "/k".into(),
            line: 3,
        };
        let text = e.to_string();
        assert!(
            text.contains("(/k:3)") && text.contains("remove line 3 of /k"),
            "{text}"
        );
    }

    #[test]
    fn escaped_value_names_are_decoded() {
        let parsed = parse("ssh-ed25519@22:my%20host", ED_PUTTY).unwrap();
        assert_eq!(parsed.lookup_name, "my host");
        assert_eq!(
            location("ssh-ed25519@22:h"),
            r#"HKCU\Software\SimonTatham\PuTTY\SshHostKeys value "ssh-ed25519@22:h""#
        );
    }
}
