//! The forwards a front runs on its hosts (the app's Tunnels view, Bitvise's C2S / S2C lists):
//! each host's saved rules that run now, one-off forwards that are not saved, why a rule could
//! not start, and the view of one host with live counters. The forwards run on host sessions
//! ([`HostSession::forward`]), so they keep working across reconnects; the book only keeps
//! track of them.

use std::{
    collections::HashMap,
    net::{Ipv4Addr, SocketAddr},
    sync::{
        Mutex, MutexGuard,
        atomic::{AtomicU32, Ordering},
    },
    time::Duration,
};

use serde::Serialize;

use super::{Forward, HostSession};
use crate::{
    error::{ErrorCode, Problem},
    jupyter::http::wait_answers,
    profile::{ProfileError, ProfileStore},
    secret::Sensitive,
    tunnel::{ForwardRule, ForwardSpec, TunnelError},
};

/// Live counters of a running forward.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct ForwardCounters {
    /// Connections being forwarded now.
    pub open_connections: u64,
    /// Connections forwarded since it started.
    pub total_connections: u64,
    /// Bytes towards the far side.
    pub bytes_up: u64,
    /// Bytes back from the far side.
    pub bytes_down: u64,
}

/// One forward as the Tunnels view shows it: a saved rule (running or not) or a one-off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct ForwardView {
    /// Position in the host's saved rules; `null` for a one-off.
    pub index: Option<u32>,
    /// The rule (a one-off is always enabled).
    pub rule: ForwardRule,
    /// Id of the running forward (for `stop_forward`); `null` when not running.
    pub running_id: Option<String>,
    /// What it forwards, e.g. `127.0.0.1:43210 -> 127.0.0.1:6006`.
    pub description: Option<String>,
    /// The local address listened on (local and SOCKS forwards).
    pub local_addr: Option<String>,
    /// `http://` URL of the local end, for "Open" (local forwards only).
    pub url: Option<String>,
    /// Live counters (zero when not running).
    pub counters: ForwardCounters,
    /// Why it could not start, when it failed to.
    pub error: Option<String>,
    /// What to know about how it started, e.g. that its port of last time was taken and it
    /// listens on another now.
    pub notice: Option<String>,
}

/// A host's forwards.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct TunnelsView {
    /// The host (its saved name).
    pub host_id: String,
    /// The live session whose host session carries the forwards; `null` when the host is not
    /// connected (rules can still be edited).
    pub session_id: Option<String>,
    /// Saved rules, in saved order.
    pub rules: Vec<ForwardView>,
    /// Running one-off forwards.
    pub one_off: Vec<ForwardView>,
    /// What the server forbids, named by its `sshd_config` setting, when it forbids TCP forwarding
    /// (probed on connect, known within about 2 s); `null` when allowed, not connected, or not
    /// known yet.
    pub forwarding: Option<String>,
}

struct Running {
    host_id: String,
    session_id: String,
    /// `Some(i)` for saved rule `i`.
    index: Option<usize>,
    tunnel: Forward,
}

/// The forwards running now, of every host, by id (`f1`, `f2`, …), and why saved rules could
/// not start.
#[derive(Default)]
pub struct Forwards {
    running: Mutex<HashMap<String, Running>>,
    errors: Mutex<HashMap<(String, usize), String>>,
    /// What the view says of a running saved rule (its port of last time was taken).
    notices: Mutex<HashMap<(String, usize), String>>,
    next: AtomicU32,
    /// Held while [`Forwards::start_enabled`] runs: the start on connect and the Tunnels view's
    /// "Start enabled rules" never start one rule twice.
    starting: tokio::sync::Mutex<()>,
}

impl Forwards {
    fn running(&self) -> MutexGuard<'_, HashMap<String, Running>> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn errors(&self) -> MutexGuard<'_, HashMap<(String, usize), String>> {
        self.errors.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn notices(&self) -> MutexGuard<'_, HashMap<(String, usize), String>> {
        self.notices.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts saved rule `index` of host `host_id` (`rule`, as saved in `profiles`) on `host`
    /// (session `session_id`); returns the forward's id. A rule with port 0 asks for the port it
    /// got last time ([`ForwardRule::last_port`]), so its address stays the same from one start
    /// to the next; when that port is taken it takes a free one and the view says so. The port
    /// it got is saved to the rule (the store writes atomically).
    ///
    /// # Errors
    /// The host session's, when the forward cannot start.
    pub async fn start_rule(
        &self,
        profiles: &ProfileStore,
        host_id: &str,
        session_id: &str,
        host: &HostSession,
        index: usize,
        rule: &ForwardRule,
    ) -> Result<String, TunnelError> {
        let key = (host_id.to_string(), index);
        self.notices().remove(&key);
        let spec = rule.spec_to_start();
        let mut started = self
            .start(host_id, session_id, host, Some(index), spec.clone())
            .await;
        // Its own listener of a moment ago (a restart: stopped, then started) may still be
        // closing: the port is asked for again for up to a second before another is taken.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
        while spec != rule.spec
            && matches!(started, Err(TunnelError::PortInUse { .. }))
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(100)).await;
            started = self
                .start(host_id, session_id, host, Some(index), spec.clone())
                .await;
        }
        if spec != rule.spec
            && let Err(TunnelError::PortInUse { port, .. }) = &started
        {
            let taken = *port;
            started = self
                .start(host_id, session_id, host, Some(index), rule.spec.clone())
                .await;
            if started.is_ok() {
                let now = self.local_port(host_id, index).unwrap_or(0);
                self.notices().insert(
                    key,
                    format!(
                        "port {taken} (its port last time) is taken now: it listens on port {now}"
                    ),
                );
            }
        }
        let id = started?;
        if rule.picks_its_port()
            && let Some(port) = self.local_port(host_id, index)
            && rule.last_port != Some(port)
        {
            // Only the rule as it was started: one edited meanwhile is left as it is.
            let saved = profiles.edit(host_id, |p| {
                if let Some(r) = p.forwards.get_mut(index)
                    && r.spec == rule.spec
                {
                    r.last_port = Some(port);
                }
            });
            if let Err(e) = saved {
                tracing::warn!(error = %e, "cannot remember the forward's port");
            }
        }
        Ok(id)
    }

    /// The local port saved rule `index` of `host_id` listens on, while it runs.
    fn local_port(&self, host_id: &str, index: usize) -> Option<u16> {
        self.running()
            .values()
            .find(|r| r.host_id == host_id && r.index == Some(index))
            .and_then(|r| r.tunnel.local_addr())
            .map(|a| a.port())
    }

    /// Forgets the forwards of sessions `alive` says ended (closed, or lost for good) and
    /// closes them.
    pub async fn prune(&self, alive: impl Fn(&str) -> bool) {
        let dead: Vec<Forward> = {
            let mut running = self.running();
            let ids: Vec<String> = running
                .iter()
                .filter(|(_, r)| !alive(&r.session_id))
                .map(|(id, _)| id.clone())
                .collect();
            ids.iter()
                .filter_map(|id| running.remove(id))
                .map(|r| r.tunnel)
                .collect()
        };
        for t in dead {
            t.close().await;
        }
    }

    /// Starts `spec` on `host` (session `session_id` on host `host_id`) as saved rule `index`
    /// (`None`: a one-off); returns the forward's id. A saved rule's error is kept for the view
    /// until it starts.
    ///
    /// # Errors
    /// The host session's, when the forward cannot start.
    pub async fn start(
        &self,
        host_id: &str,
        session_id: &str,
        host: &HostSession,
        index: Option<usize>,
        spec: ForwardSpec,
    ) -> Result<String, TunnelError> {
        let result = host.forward(&spec).await;
        if let Some(i) = index {
            let key = (host_id.to_string(), i);
            match &result {
                Ok(_) => self.errors().remove(&key),
                Err(e) => self.errors().insert(key, e.to_string()),
            };
        }
        let tunnel = result?;
        let n = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let id = format!("f{n}");
        tracing::info!(
            host = host_id,
            forward = tunnel.description(),
            "forward started"
        );
        self.running().insert(
            id.clone(),
            Running {
                host_id: host_id.to_string(),
                session_id: session_id.to_string(),
                index,
                tunnel,
            },
        );
        Ok(id)
    }

    /// Whether saved rule `index` of `host_id` runs.
    pub fn is_running(&self, host_id: &str, index: usize) -> bool {
        self.running()
            .values()
            .any(|r| r.host_id == host_id && r.index == Some(index))
    }

    /// Stops saved rule `index` of `host_id` when it runs; with `forget_error`, its last error
    /// goes too (the rule was turned off).
    pub async fn stop_rule(&self, host_id: &str, index: usize, forget_error: bool) {
        let tunnel = {
            let mut running = self.running();
            let id = running
                .iter()
                .find(|(_, r)| r.host_id == host_id && r.index == Some(index))
                .map(|(id, _)| id.clone());
            id.and_then(|id| running.remove(&id))
        };
        if forget_error {
            self.errors().remove(&(host_id.to_string(), index));
        }
        self.notices().remove(&(host_id.to_string(), index));
        if let Some(r) = tunnel {
            r.tunnel.close().await;
        }
    }

    /// Saved rule `index` of `host_id` was deleted: stops it, later rules move up one place,
    /// and the host's errors are forgotten.
    pub async fn rule_removed(&self, host_id: &str, index: usize) {
        self.stop_rule(host_id, index, false).await;
        for r in self.running().values_mut() {
            if r.host_id == host_id
                && let Some(i) = r.index.as_mut()
                && *i > index
            {
                *i -= 1;
            }
        }
        self.errors().retain(|(h, _), _| h != host_id);
        self.notices().retain(|(h, _), _| h != host_id);
    }

    /// Saves `rule` as saved rule `index` of host `host_id` in `profiles` (`None`, or an index
    /// past the end: a new rule at the end); returns where it is now. A running rule restarts
    /// with its new settings; an enabled one starts when `on` (the live session on the host and
    /// its host session) is given.
    ///
    /// # Errors
    /// The profile cannot be saved (nothing changed), or the rule was saved but cannot start.
    pub async fn save_rule(
        &self,
        profiles: &ProfileStore,
        host_id: &str,
        index: Option<usize>,
        rule: ForwardRule,
        on: Option<(String, HostSession)>,
    ) -> Result<usize, Problem> {
        // The port an unchanged rule got last time stays with it (the form does not carry it).
        let mut rule = rule;
        let profile = profiles.edit(host_id, |p| match index {
            Some(i) if i < p.forwards.len() => {
                if rule.last_port.is_none() && p.forwards[i].spec == rule.spec {
                    rule.last_port = p.forwards[i].last_port;
                }
                p.forwards[i] = rule.clone();
            }
            _ => p.forwards.push(rule.clone()),
        })?;
        let slot = match index {
            Some(i) if profile.forwards.get(i) == Some(&rule) => i,
            _ => profile.forwards.len().saturating_sub(1),
        };
        self.stop_rule(host_id, slot, false).await;
        if let (true, Some((session_id, host))) = (rule.enabled, on) {
            self.start_rule(profiles, host_id, &session_id, &host, slot, &rule)
                .await?;
        }
        Ok(slot)
    }

    /// Turns saved rule `index` of host `host_id` on or off (saved in `profiles`); on `on` (the
    /// live session on the host and its host session) the forward starts or stops at once.
    ///
    /// # Errors
    /// The profile cannot be saved; no rule `index` (code `notFound`); the rule was turned on
    /// but cannot start.
    pub async fn set_rule_enabled(
        &self,
        profiles: &ProfileStore,
        host_id: &str,
        index: usize,
        enabled: bool,
        on: Option<(String, HostSession)>,
    ) -> Result<(), Problem> {
        let profile = profiles.edit(host_id, |p| {
            if let Some(r) = p.forwards.get_mut(index) {
                r.enabled = enabled;
            }
        })?;
        let rule = profile.forwards.get(index).cloned().ok_or_else(|| {
            Problem::new(ErrorCode::NotFound, format!("no rule {index} on {host_id}"))
        })?;
        if !enabled {
            self.stop_rule(host_id, index, true).await;
        } else if let Some((session_id, host)) = on
            && !self.is_running(host_id, index)
        {
            self.start_rule(profiles, host_id, &session_id, &host, index, &rule)
                .await?;
        }
        Ok(())
    }

    /// Deletes saved rule `index` of host `host_id` from `profiles` (stopping it when it runs;
    /// later rules move up one place).
    ///
    /// # Errors
    /// The profile cannot be saved.
    pub async fn delete_rule(
        &self,
        profiles: &ProfileStore,
        host_id: &str,
        index: usize,
    ) -> Result<(), ProfileError> {
        profiles.edit(host_id, |p| {
            if index < p.forwards.len() {
                p.forwards.remove(index);
            }
        })?;
        self.rule_removed(host_id, index).await;
        Ok(())
    }

    /// Starts every enabled rule of `rules` (host `host_id`'s saved ones in `profiles`) that is
    /// not running ([`Forwards::start_rule`]), on `on` (the live session on the host and its host session). Rules that cannot start keep
    /// why for the view.
    pub async fn start_enabled(
        &self,
        profiles: &ProfileStore,
        host_id: &str,
        rules: Vec<ForwardRule>,
        on: &(String, HostSession),
    ) {
        let (session_id, host) = on;
        let _one_at_a_time = self.starting.lock().await;
        for (i, rule) in rules.into_iter().enumerate().filter(|(_, r)| r.enabled) {
            if !self.is_running(host_id, i) {
                let _ = self
                    .start_rule(profiles, host_id, session_id, host, i, &rule)
                    .await;
            }
        }
    }

    /// Stops running forward `id`; returns its host, `None` when no forward has that id.
    pub async fn stop(&self, id: &str) -> Option<String> {
        let r = self.running().remove(id)?;
        r.tunnel.close().await;
        Some(r.host_id)
    }

    /// Stops every forward (on quit).
    pub async fn stop_all(&self) {
        let all: Vec<Running> = self.running().drain().map(|(_, r)| r).collect();
        for r in all {
            r.tunnel.close().await;
        }
    }

    /// The view of `host_id`: its saved `rules` (running or not, with their errors) and its
    /// running one-offs. `connected`: the live session carrying its forwards and its host
    /// session, when it is connected.
    pub fn view(
        &self,
        host_id: &str,
        rules: Vec<ForwardRule>,
        connected: Option<(String, HostSession)>,
    ) -> TunnelsView {
        // The host session probes the policy on connect: a forbidding server is named before
        // any rule is tried.
        let forwarding = connected
            .as_ref()
            .and_then(|(_, host)| host.forwarding())
            .filter(|f| !f.tcp)
            .map(|f| f.describe());
        let session_id = connected.map(|(id, _)| id);
        let running = self.running();
        let errors = self.errors();
        let notices = self.notices();
        let rules = rules
            .into_iter()
            .enumerate()
            .map(|(i, rule)| {
                let found = running
                    .iter()
                    .find(|(_, r)| r.host_id == host_id && r.index == Some(i));
                match found {
                    Some((id, r)) => ForwardView {
                        rule: rule.clone(),
                        notice: notices.get(&(host_id.to_string(), i)).cloned(),
                        ..running_view(id, r)
                    },
                    None => ForwardView {
                        index: u32::try_from(i).ok(),
                        rule,
                        running_id: None,
                        description: None,
                        local_addr: None,
                        url: None,
                        counters: ForwardCounters::default(),
                        error: errors.get(&(host_id.to_string(), i)).cloned(),
                        notice: None,
                    },
                }
            })
            .collect();
        let mut one_off: Vec<(&String, &Running)> = running
            .iter()
            .filter(|(_, r)| r.host_id == host_id && r.index.is_none())
            .collect();
        one_off.sort_by_key(|(id, _)| id.trim_start_matches('f').parse::<u32>().unwrap_or(0));
        TunnelsView {
            host_id: host_id.to_string(),
            session_id,
            rules,
            forwarding,
            one_off: one_off
                .into_iter()
                .map(|(id, r)| running_view(id, r))
                .collect(),
        }
    }
}

impl HostSession {
    /// Forwards a free loopback port to a JupyterLab at `host:port` as the host sees it (a SLURM
    /// job's compute node, through the login node; the listener survives reconnects) and waits
    /// up to `wait` for it to answer with `token`. `Ok(None)` when it did not answer in time (the
    /// forward is closed then).
    ///
    /// # Errors
    /// The forward cannot start.
    pub async fn forward_to_jupyter(
        &self,
        host: &str,
        port: u16,
        token: &Sensitive<String>,
        wait: Duration,
    ) -> Result<Option<(Forward, SocketAddr)>, TunnelError> {
        let forward = self
            .forward(&ForwardSpec::Local {
                bind: "127.0.0.1".into(),
                port: 0,
                host: host.to_string(),
                host_port: port,
            })
            .await?;
        let Some(local) = forward.local_addr() else {
            forward.close().await;
            return Err(TunnelError::Listen {
                bind: Ipv4Addr::LOCALHOST.into(),
                port: 0,
                source: std::io::Error::other("the forward has no port"),
            });
        };
        if wait_answers(local, token, wait).await {
            Ok(Some((forward, local)))
        } else {
            forward.close().await;
            Ok(None)
        }
    }
}

fn running_view(id: &str, r: &Running) -> ForwardView {
    let local_addr = r.tunnel.local_addr().map(|a| a.to_string());
    let url = match (r.tunnel.spec(), r.tunnel.local_addr()) {
        (ForwardSpec::Local { .. }, Some(addr)) => Some(format!("http://{addr}/")),
        _ => None,
    };
    let s = r.tunnel.stats();
    ForwardView {
        index: r.index.and_then(|i| u32::try_from(i).ok()),
        rule: ForwardRule {
            last_port: None,
            enabled: true,
            spec: r.tunnel.spec().clone(),
        },
        running_id: Some(id.to_string()),
        description: Some(r.tunnel.description().to_string()),
        local_addr,
        url,
        counters: ForwardCounters {
            open_connections: s.open_connections,
            total_connections: s.total_connections,
            bytes_up: s.bytes_up,
            bytes_down: s.bytes_down,
        },
        error: None,
        notice: None,
    }
}
