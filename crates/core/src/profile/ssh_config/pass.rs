//! One pass of `readconf.c` over the config's lines for one host: `Host` and `Match` switch
//! lines on and off, the first value of each keyword wins, an `Include`d file runs in its own
//! context.

use std::path::Path;

use super::{
    forward::parse_forward,
    parse::Line,
    patterns::{pattern_list, wildcard},
    resolve::{MAPPED, MAX_DEPTH, SshConfig, SshConfigHost},
    tokens,
};

/// OpenSSH's `convtime`: `90`, `1m30s`, `2h`, `1w` → seconds.
pub(super) fn convtime(s: &str) -> Option<u32> {
    if s.is_empty() {
        return None;
    }
    let mut total: u64 = 0;
    let mut digits = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit: u64 = match c {
            's' | 'S' => 1,
            'm' | 'M' => 60,
            'h' | 'H' => 3600,
            'd' | 'D' => 86400,
            'w' | 'W' => 604800,
            _ => return None,
        };
        let n: u64 = digits.parse().ok()?;
        total = total.checked_add(n.checked_mul(unit)?)?;
        digits.clear();
    }
    if !digits.is_empty() {
        total = total.checked_add(digits.parse().ok()?)?;
    }
    u32::try_from(total).ok().filter(|t| *t <= i32::MAX as u32)
}

/// One pass over the config for one host.
pub(super) struct Pass<'a> {
    config: &'a SshConfig,
    /// `originalhost` and `%n`.
    original: &'a str,
    /// What `Host` lines match against.
    host: String,
    final_pass: bool,
    want_final: bool,
    out: &'a mut SshConfigHost,
}

impl<'a> Pass<'a> {
    /// Runs OpenSSH's passes for `alias` over `config` into `out`: one, and a second one
    /// (matching the final host name) when a `Match final` asked for it.
    pub(super) fn run(config: &'a SshConfig, alias: &'a str, out: &'a mut SshConfigHost) {
        let mut pass = Pass {
            config,
            original: alias,
            host: alias.to_string(),
            final_pass: false,
            want_final: false,
            out,
        };
        let mut active = true;
        pass.file(&config.root, false, &mut active, 0);
        if pass.want_final {
            // ssh.c: the second pass matches `Host` against the final, lower-cased host name.
            pass.host = pass.out.final_hostname();
            pass.final_pass = true;
            let mut active = true;
            pass.file(&config.root, false, &mut active, 0);
        }
    }

    fn file(&mut self, path: &Path, never: bool, active: &mut bool, depth: u32) {
        let config = self.config;
        let Some(lines) = config.files.get(path) else {
            return;
        };
        *active = !never;
        for line in lines {
            if line.bad_quotes {
                continue;
            }
            let at = format!("{}:{}", path.display(), line.number);
            match line.keyword.as_str() {
                "host" => {
                    *active = false;
                    if never {
                        continue;
                    }
                    for arg in &line.args {
                        let (negated, pattern) = match arg.strip_prefix('!') {
                            Some(p) => (true, p),
                            None => (false, arg.as_str()),
                        };
                        if wildcard(pattern, &self.host) {
                            if negated {
                                *active = false;
                                break;
                            }
                            *active = true;
                        }
                    }
                }
                "match" => {
                    let matched = self.match_line(&line.args, &at);
                    *active = !never && matched;
                }
                "include" => {
                    if !*active {
                        continue;
                    }
                    let targets = config
                        .includes
                        .get(&(path.to_path_buf(), line.number))
                        .cloned()
                        .unwrap_or_default();
                    for target in targets {
                        let outer = *active;
                        if depth < MAX_DEPTH {
                            self.file(&target, !outer, active, depth + 1);
                        }
                        *active = outer;
                    }
                }
                _ if *active => self.set(line, &at),
                _ => {}
            }
        }
    }

    /// OpenSSH's `match_cfg_line`.
    fn match_line(&mut self, args: &[String], at: &str) -> bool {
        let host = if self.final_pass {
            self.out.final_hostname()
        } else {
            match &self.out.hostname {
                Some(h) => h.replace("%h", self.original).to_lowercase(),
                None => self.original.to_lowercase(),
            }
        };
        let config = self.config;
        let local = &config.local;
        let user = self.out.user.clone().unwrap_or_else(|| local.user.clone());
        let mut result = true;
        let mut args = args.iter();
        let mut criteria = 0;
        while let Some(attr) = args.next() {
            let (negate, name) = match attr.strip_prefix('!') {
                Some(n) => (true, n.to_ascii_lowercase()),
                None => (false, attr.to_ascii_lowercase()),
            };
            if name == "all" {
                if criteria > 0 || args.len() > 0 {
                    self.out.problems.push(format!(
                        "{at}: Match all cannot be combined with other criteria"
                    ));
                    return false;
                }
                return result && !negate;
            }
            criteria += 1;
            if name == "canonical" || name == "final" {
                if name == "final" {
                    self.want_final = true;
                }
                if self.final_pass == negate {
                    result = false;
                }
                continue;
            }
            let Some(arg) = args.next() else {
                self.out
                    .problems
                    .push(format!("{at}: Match {name} has no argument"));
                return false;
            };
            let hit = match name.as_str() {
                "host" => pattern_list(&host, arg, true),
                "originalhost" => pattern_list(&self.original.to_lowercase(), arg, true),
                "user" => pattern_list(&user, arg, false),
                "localuser" => pattern_list(&local.user, arg, false),
                "exec" => false,
                other => {
                    self.out.problems.push(format!(
                        "{at}: Match {other} is not a criterion OpenSSH 9.2 knows"
                    ));
                    return false;
                }
            };
            if hit == negate {
                result = false;
            }
        }
        result
    }

    fn set(&mut self, line: &Line, at: &str) {
        let o = &mut *self.out;
        let keyword = line.keyword.as_str();
        let arg = line.args.first().cloned();
        let Some(arg) = arg else {
            if MAPPED.contains(&keyword) {
                o.problems
                    .push(format!("{at}: {} has no value", line.written));
            }
            return;
        };
        let origin = |o: &mut SshConfigHost| {
            o.origins
                .entry(keyword.to_string())
                .or_insert_with(|| at.to_string());
        };
        let bad = |o: &mut SshConfigHost, what: &str| {
            o.problems
                .push(format!("{at}: {} \"{arg}\" {what}", line.written));
        };
        macro_rules! first {
            ($field:expr, $value:expr) => {
                if $field.is_none() {
                    $field = Some($value);
                    origin(o);
                }
            };
        }
        match keyword {
            "hostname" => first!(o.hostname, arg),
            "user" => first!(o.user, arg),
            "port" => match arg.parse::<u16>() {
                Ok(p) if p > 0 => first!(o.port, p),
                _ => bad(o, "is not a port number"),
            },
            "identityfile" if !o.identity_files.contains(&arg) => {
                o.origins
                    .insert(format!("identityfile {arg}"), at.to_string());
                o.identity_files.push(arg);
                origin(o);
            }
            "certificatefile" if !o.certificate_files.contains(&arg) => {
                o.origins
                    .insert(format!("certificatefile {arg}"), at.to_string());
                o.certificate_files.push(arg);
                origin(o);
            }
            "identitiesonly" | "clearallforwardings" => {
                let value = match arg.to_ascii_lowercase().as_str() {
                    "yes" | "true" => true,
                    "no" | "false" => false,
                    _ => return bad(o, "is not yes or no"),
                };
                if keyword == "identitiesonly" {
                    first!(o.identities_only, value);
                } else {
                    first!(o.clear_all_forwardings, value);
                }
            }
            "proxyjump" if o.proxy_jump.is_none() && o.proxy_command.is_none() => {
                let value = if arg.eq_ignore_ascii_case("none") {
                    arg
                } else {
                    // As OpenSSH keeps it: the hops before the last as written, the last
                    // one parsed (`ssh://` and defaults dropped).
                    let hops = match crate::profile::jump::parse_jump(&arg) {
                        Ok(hops) => hops,
                        Err(e) => return bad(o, &e),
                    };
                    let last = hops.last().map(|h| h.to_destination()).unwrap_or_default();
                    match arg.rsplit_once(',') {
                        Some((before, _)) => format!("{before},{last}"),
                        None => last,
                    }
                };
                o.proxy_jump = Some(value);
                origin(o);
            }
            "proxycommand" => {
                let jump_set = o
                    .proxy_jump
                    .as_deref()
                    .is_some_and(|j| !j.eq_ignore_ascii_case("none"));
                if !jump_set {
                    first!(o.proxy_command, line.raw.clone());
                }
            }
            "serveraliveinterval" | "connecttimeout" => {
                let Some(secs) = convtime(&arg) else {
                    return bad(o, "is not a time (e.g. 30, 1m30s)");
                };
                if keyword == "connecttimeout" {
                    first!(o.connect_timeout, secs);
                } else {
                    first!(o.server_alive_interval, secs);
                }
            }
            "serveralivecountmax" => match arg.parse::<u32>() {
                Ok(n) if n <= i32::MAX as u32 => first!(o.server_alive_count_max, n),
                _ => bad(o, "is not a number"),
            },
            "stricthostkeychecking" => {
                let value = match arg.to_ascii_lowercase().as_str() {
                    "yes" | "true" => "true",
                    "no" | "false" | "off" => "false",
                    "ask" => "ask",
                    "accept-new" => "accept-new",
                    _ => return bad(o, "is not yes, no, ask or accept-new"),
                };
                first!(o.strict_host_key_checking, value.to_string());
            }
            "userknownhostsfile" => first!(o.user_known_hosts_files, line.args.clone()),
            "globalknownhostsfile" => first!(o.global_known_hosts_files, line.args.clone()),
            "hostkeyalias" => first!(o.host_key_alias, arg),
            "hostkeyalgorithms" | "pubkeyacceptedalgorithms" | "pubkeyacceptedkeytypes" => {
                if let Err(e) = tokens::assemble_key_algorithms(&arg) {
                    return bad(o, &e);
                }
                if keyword == "hostkeyalgorithms" {
                    first!(o.host_key_algorithms, arg);
                } else {
                    first!(o.pubkey_accepted_algorithms, arg);
                }
            }
            "localforward" | "remoteforward" | "dynamicforward" => {
                let second = line.args.get(1);
                let (spec, dynamic) = match (keyword, second) {
                    ("dynamicforward", _) => (arg.clone(), true),
                    (_, Some(second)) => (format!("{arg}:{second}"), false),
                    ("remoteforward", None) => (arg.clone(), true),
                    _ => return bad(o, "needs a second argument (HOST:PORT)"),
                };
                let Some(forward) = parse_forward(&spec, dynamic, keyword == "remoteforward")
                else {
                    o.unimported_forwards.push(format!(
                        "{at}: {} {spec} is not a TCP forward ([bind:]port host:port) that \
                         Tunnelbook can save; left out",
                        line.written
                    ));
                    return;
                };
                let list = match keyword {
                    "localforward" => &mut o.local_forwards,
                    "remoteforward" if !dynamic => &mut o.remote_forwards,
                    "remoteforward" => {
                        o.unimported_forwards.push(format!(
                            "{at}: RemoteForward {spec} is a remote SOCKS forward, which \
                             Tunnelbook lacks; left out"
                        ));
                        return;
                    }
                    _ => &mut o.dynamic_forwards,
                };
                if !list.contains(&forward) {
                    list.push(forward);
                    origin(o);
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_like_convtime() {
        assert_eq!(convtime("90"), Some(90));
        assert_eq!(convtime("1m30s"), Some(90));
        assert_eq!(convtime("1h"), Some(3600));
        assert_eq!(convtime("x"), None);
    }
}
