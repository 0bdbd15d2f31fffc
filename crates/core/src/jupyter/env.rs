//! Python environments on a host (one login-shell round trip) and installing JupyterLab into a
//! venv.

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::{Host, JupyterError, log_tail, sh_path};

/// Where Tunnelbook installs JupyterLab when the user asks it to and names no path.
pub const DEFAULT_VENV: &str = "~/.tunnelbook/venv";

/// What kind of environment a Python is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub enum EnvKind {
    /// A conda / mamba environment.
    Conda,
    /// A venv / virtualenv.
    Venv,
    /// The `python3` on the login shell's PATH.
    System,
    /// The `python3` an Lmod / Environment Modules module puts on PATH (`module load NAME`);
    /// [`Environment::name`] is the module, loaded before every launch from it.
    Module,
}

/// One Python environment found on a host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Environment {
    /// Conda, venv, or the PATH's python3.
    pub kind: EnvKind,
    /// Display name: the conda env name, the venv directory's name, the module (`python/3.11`),
    /// or `python3`.
    pub name: String,
    /// The environment's directory (`None` for the PATH's python3).
    pub prefix: Option<String>,
    /// The Python interpreter, absolute.
    pub python: String,
    /// `3.11.2`, when the interpreter ran.
    pub python_version: Option<String>,
    /// Whether `jupyterlab` is importable.
    pub jupyter_lab: bool,
    /// Whether the classic `notebook` is importable.
    pub notebook: bool,
    /// Why the environment is unusable (the interpreter is missing or fails to start).
    pub problem: Option<String>,
    /// Whether it is the environment the profile (or the command line) asked for.
    pub configured: bool,
}

impl Environment {
    /// The directory, or the interpreter for the PATH's python3: what the user recognises.
    pub fn label(&self) -> String {
        self.prefix.clone().unwrap_or_else(|| self.python.clone())
    }

    /// Whether a notebook server can be started from it.
    pub fn has_jupyter(&self) -> bool {
        self.problem.is_none() && (self.jupyter_lab || self.notebook)
    }
}

/// The probe each candidate interpreter runs: version and what is importable, tab separated.
const PROBE: &str = r#"import sys, importlib.util as u
print("ok", "%d.%d.%d" % sys.version_info[:3], int(u.find_spec("jupyterlab") is not None), int(u.find_spec("notebook") is not None), sep="\t")"#;

/// Prints one `env` line per candidate: kind, name, prefix, python, then `ok VERSION LAB NB`,
/// `broken DETAIL` or `missing`.
const DISCOVER: &str = r#"
tb_probe() {
    py=$4
    if [ ! -x "$py" ]; then printf 'env\t%s\t%s\t%s\t%s\tmissing\n' "$1" "$2" "$3" "$py"; return; fi
    if out=$("$py" -c "$tb_code" 2>&1); then :; else out=$(printf 'broken\t%s' "$(printf '%s' "$out" | tail -n 1)"); fi
    printf 'env\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$py" "$(printf '%s' "$out" | tail -n 1)"
}
tb_prefix_py() { if [ -x "$1/bin/python3" ]; then echo "$1/bin/python3"; else echo "$1/bin/python"; fi; }
if [ -n "$tb_cfg" ]; then
    case $tb_cfg in "~/"*) tb_cfg=$HOME/${tb_cfg#"~/"} ;; "~") tb_cfg=$HOME ;; esac
    case $tb_cfg in
    */*)
        if [ -f "$tb_cfg" ] && [ -x "$tb_cfg" ]; then
            tb_p=$(dirname "$(dirname "$tb_cfg")"); tb_probe configured "$(basename "$tb_p")" "$tb_p" "$tb_cfg"
        else
            tb_p=$tb_cfg; tb_probe configured "$(basename "$tb_cfg")" "$tb_cfg" "$(tb_prefix_py "$tb_cfg")"
        fi
        tb_cfg_prefix=$tb_p ;;
    esac
fi
if [ -n "$tb_mods" ] && [ -z "$tb_cfg" ] && tb_py=$(command -v python3 2>/dev/null); then
    tb_probe module-configured "$tb_mods" "$(dirname "$(dirname "$tb_py")")" "$tb_py"
fi
if command -v module >/dev/null 2>&1; then
    # Lmod and Environment Modules print `module -t avail` on stderr: `DIR:` headers, `NAME/`
    # directories, `NAME/VERSION(default)` entries. Modules named like a Python stack are loaded,
    # each in a subshell, and the python3 they put on PATH is probed.
    module -t avail 2>&1 >/dev/null | while IFS= read -r tb_m; do
        tb_m=${tb_m%%(*}
        case $tb_m in ''|*:|*/|*' '*|-*) continue ;; esac
        case $(printf '%s' "$tb_m" | tr 'A-Z' 'a-z') in
        *python*|*jupyter*|*conda*|*mamba*|*miniforge*|*torch*|*tensorflow*|*jax*)
            (
                module load "$tb_m" >/dev/null 2>&1 || exit 0
                tb_py=$(command -v python3 2>/dev/null) || exit 0
                tb_probe module "$tb_m" "$(dirname "$(dirname "$tb_py")")" "$tb_py"
            ) ;;
        esac
    done
fi
# A launch from a path cannot fall to another environment; only a module providing it (above)
# or conda owning it (the scans below tell) changes how it is launched.
if [ -n "${tb_only_cfg:-}" ] && [ -n "${tb_cfg_prefix:-}" ] && [ ! -d "$tb_cfg_prefix/conda-meta" ]; then exit 0; fi
for tb_c in "${CONDA_EXE:-}" "$(command -v conda 2>/dev/null)" "$(command -v mamba 2>/dev/null)"; do
    [ -n "$tb_c" ] && [ -x "$tb_c" ] || continue
    tb_base=$(cd "$(dirname "$tb_c")/.." && pwd)
    for tb_p in $("$tb_c" env list --json 2>/dev/null | sed -n 's/^ *"\(\/[^"]*\)",\{0,1\} *$/\1/p'); do
        if [ "$tb_p" = "$tb_base" ]; then tb_n=base; else tb_n=$(basename "$tb_p"); fi
        tb_probe conda "$tb_n" "$tb_p" "$(tb_prefix_py "$tb_p")"
    done
    break
done
for tb_py in "$HOME"/.tunnelbook/venv/bin/python "$HOME"/*/bin/python "$HOME"/.venvs/*/bin/python "$HOME"/venvs/*/bin/python "$HOME"/.virtualenvs/*/bin/python; do
    [ -e "$tb_py" ] || continue
    tb_p=$(dirname "$(dirname "$tb_py")")
    [ -f "$tb_p/pyvenv.cfg" ] || [ -d "$tb_p/conda-meta" ] || continue
    tb_probe venv "$(basename "$tb_p")" "$tb_p" "$(tb_prefix_py "$tb_p")"
done
tb_envs_dirs=$(sed -n '/^envs_dirs:/,/^[^ -]/s/^ *- *//p' "$HOME/.condarc" 2>/dev/null)
for tb_d in $tb_envs_dirs $(printf '%s' "${CONDA_ENVS_PATH:-}" | tr ':' ' ') "$HOME"/.conda/envs "$HOME"/*/envs /opt/*/envs; do
    case $tb_d in "~/"*) tb_d=$HOME/${tb_d#"~/"} ;; esac
    for tb_py in "$tb_d"/*/bin/python; do
        [ -e "$tb_py" ] || continue
        tb_p=$(dirname "$(dirname "$tb_py")")
        tb_probe conda "$(basename "$tb_p")" "$tb_p" "$(tb_prefix_py "$tb_p")"
    done
done
if tb_j=$(command -v jupyter 2>/dev/null) && [ -f "$tb_j" ]; then
    tb_py=$(sed -n '1s/^#! *\([^ ]*\).*/\1/p' "$tb_j")
    case $tb_py in
    /*/python*) tb_p=$(dirname "$(dirname "$tb_py")"); tb_probe venv "$(basename "$tb_p")" "$tb_p" "$tb_py" ;;
    esac
fi
for tb_py in /opt/*/bin/python3 /opt/*/*/bin/python3 /usr/local/bin/python3; do
    [ -x "$tb_py" ] || continue
    tb_p=$(dirname "$(dirname "$tb_py")")
    if [ -d "$tb_p/conda-meta" ]; then tb_k=conda; else tb_k=venv; fi
    tb_probe "$tb_k" "$(basename "$tb_p")" "$tb_p" "$tb_py"
done
if tb_py=$(command -v python3 2>/dev/null); then tb_probe system python3 "" "$tb_py"; fi
"#;

/// Exit status of a script whose `module load` failed (see [`module_load_sh`]).
pub(crate) const MODULE_LOAD_FAILED: u32 = 96;

/// Shell lines that load `modules` in order (Lmod / Environment Modules `module load`), each
/// module's output appended to `log` (a shell word, e.g. `"$tb_log"` or `/dev/null`). When
/// `module` is not defined, or a module does not load, the script prints a `tunnelbook:` line
/// naming the module (and the tool's own last lines) on stderr and exits with
/// [`MODULE_LOAD_FAILED`].
pub(crate) fn module_load_sh(modules: &[String], log: &str) -> String {
    if modules.is_empty() {
        return String::new();
    }
    let mut s = format!(
        "command -v module >/dev/null 2>&1 || {{ echo {} >&2; exit {MODULE_LOAD_FAILED}; }}\n",
        super::shell_quote(&format!(
            "tunnelbook: modules to load ({}) but `module` (Lmod / Environment Modules) is not \
             defined in the login environment",
            modules.join(" ")
        ))
    );
    for m in modules {
        s.push_str(&format!("tb_m={}\n", super::shell_quote(m)));
        s.push_str(&format!(
            r#"tb_ml=$(mktemp) || exit {MODULE_LOAD_FAILED}
module load "$tb_m" > "$tb_ml" 2>&1; tb_rc=$?
cat "$tb_ml" >> {log}
if [ $tb_rc -ne 0 ]; then
    echo "tunnelbook: \`module load $tb_m\` failed (exit status $tb_rc):" >&2
    grep -v '^ *$' "$tb_ml" | head -n 4 >&2
    rm -f "$tb_ml"; exit {MODULE_LOAD_FAILED}
fi
rm -f "$tb_ml"
"#
        ));
    }
    s
}

/// The discovery script, with the configured environment (path or name) to include and the
/// modules to load first.
fn discover_script(configured: Option<&str>, modules: &[String], only_configured: bool) -> String {
    format!(
        "tb_only_cfg={}\ntb_cfg={}\ntb_code={}\ntb_mods={}\n{}{DISCOVER}",
        if only_configured { "1" } else { "" },
        super::shell_quote(configured.unwrap_or("")),
        super::shell_quote(PROBE),
        super::shell_quote(&modules.join(" ")),
        module_load_sh(modules, "/dev/null"),
    )
}

/// Every Python environment on `host`, in one round trip: the `configured` one (a path, or a
/// conda env name) first when given, then conda envs (as `conda env list` has them), venvs in
/// the home directory, conda's configured `envs_dirs` (`~/.condarc`, `CONDA_ENVS_PATH`, also
/// without `conda` on PATH), the environment of the `jupyter` on the login PATH, system-wide
/// installs (`/opt/*`, `/opt/*/*`, `/usr/local`), and the PATH's `python3`. Each says its Python version and whether JupyterLab is installed.
/// Lmod / Environment Modules modules named like a Python stack (`python`, `jupyter`, `conda`,
/// `mamba`, `miniforge`, `torch`, `tensorflow`, `jax`) in `module -t avail` are listed as
/// [`EnvKind::Module`] with the `python3` each puts on PATH.
pub async fn environments(
    host: &Host,
    configured: Option<&str>,
) -> Result<Vec<Environment>, JupyterError> {
    environments_with_modules(host, configured, &[]).await
}

/// [`environments`] with `modules` loaded first (`module load`, in order, as a launch does): the
/// `python3` they put on PATH comes first, as the configured [`EnvKind::Module`] environment,
/// unless `configured` names another. A module that does not load is
/// [`JupyterError::ModuleLoad`].
pub async fn environments_with_modules(
    host: &Host,
    configured: Option<&str>,
    modules: &[String],
) -> Result<Vec<Environment>, JupyterError> {
    discover(host, configured, modules, false).await
}

/// What a launch chooses from ([`choose`] with `wanted`): [`environments_with_modules`], except
/// that when `wanted` is a path (not a conda prefix) the scan stops after it and the modules —
/// [`choose`] takes it or fails on it, never another, and only a module providing it changes how
/// it is launched — so the host does not start every other interpreter it has first.
pub async fn launch_candidates(
    host: &Host,
    wanted: Option<&str>,
    modules: &[String],
) -> Result<Vec<Environment>, JupyterError> {
    discover(host, wanted, modules, true).await
}

async fn discover(
    host: &Host,
    configured: Option<&str>,
    modules: &[String],
    only_configured: bool,
) -> Result<Vec<Environment>, JupyterError> {
    let out = host
        .exec(&discover_script(configured, modules, only_configured), &[])
        .await?;
    if out.status == Some(MODULE_LOAD_FAILED) {
        return Err(JupyterError::ModuleLoad {
            host: host.name(),
            detail: log_tail(&out.stderr_text(), 5),
        });
    }
    let mut envs = parse_environments(&out.stdout_text());
    if let Some(wanted) = configured.filter(|w| !w.contains('/') && !w.starts_with('~')) {
        for env in envs.iter_mut().filter(|e| e.name == wanted) {
            env.configured = true;
        }
    }
    Ok(envs)
}

/// Checks one environment the user names by its path on `host` (a venv or conda prefix such as
/// a shared `/opt/jlab`, or its interpreter; `~/` is the remote home): whether its Python starts,
/// its version, and whether JupyterLab is installed. Returns it as discovery would list it, with
/// `configured` set; a missing or broken interpreter is an `Ok` whose
/// [`Environment::problem`] says why, so the caller can show it next to the path. A `path` that
/// is not a path (no `/`) is [`JupyterError::NoEnvironment`].
pub async fn check_environment(host: &Host, path: &str) -> Result<Environment, JupyterError> {
    let path = path.trim();
    let not_a_path = || JupyterError::NoEnvironment {
        host: host.name(),
        wanted: path.to_string(),
        available: Vec::new(),
    };
    if !path.contains('/') && path != "~" {
        return Err(not_a_path());
    }
    environments(host, Some(path))
        .await?
        .into_iter()
        .find(|e| e.configured)
        .ok_or_else(not_a_path)
}

/// Parses the `env` lines of the discovery script, keeping the first entry for each directory.
pub fn parse_environments(text: &str) -> Vec<Environment> {
    let mut envs: Vec<Environment> = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() < 6 || f[0] != "env" {
            continue;
        }
        let (kind, configured) = match f[1] {
            "conda" => (EnvKind::Conda, false),
            "system" => (EnvKind::System, false),
            "configured" => (EnvKind::Venv, true),
            "module" => (EnvKind::Module, false),
            "module-configured" => (EnvKind::Module, true),
            _ => (EnvKind::Venv, false),
        };
        let prefix = (!f[3].is_empty()).then(|| f[3].to_string());
        let mut env = Environment {
            kind,
            name: f[2].to_string(),
            prefix,
            python: f[4].to_string(),
            python_version: None,
            jupyter_lab: false,
            notebook: false,
            problem: None,
            configured,
        };
        match f[5] {
            "ok" if f.len() >= 9 => {
                env.python_version = Some(f[6].to_string());
                env.jupyter_lab = f[7] == "1";
                env.notebook = f[8] == "1";
            }
            "missing" => env.problem = Some(format!("{} does not exist", env.python)),
            _ => {
                let detail = f.get(6).copied().unwrap_or("").trim();
                env.problem = Some(format!(
                    "{} does not start: {}",
                    env.python,
                    if detail.is_empty() {
                        "no output"
                    } else {
                        detail
                    }
                ));
            }
        }
        let same = |e: &Environment| {
            (e.prefix.is_some() && e.prefix == env.prefix)
                || (e.prefix.is_none() && env.prefix.is_none() && e.python == env.python)
        };
        if let Some(existing) = envs.iter_mut().find(|e| same(e)) {
            existing.configured |= env.configured;
            // A directory a module provides is launched with the module loaded, also when
            // it was asked for by its path.
            if existing.kind == EnvKind::Venv && env.kind == EnvKind::Conda
                || (env.kind == EnvKind::Module && existing.kind != EnvKind::Module)
            {
                existing.kind = env.kind;
                existing.name = env.name;
            }
        } else {
            envs.push(env);
        }
    }
    envs
}

/// Picks the environment to launch from: the one asked for (`wanted`, a path or name; it must
/// have Jupyter), else the configured one with Jupyter (the saved modules' python3), else the
/// first that has JupyterLab, else the first with the classic notebook.
pub fn choose<'a>(
    host: &str,
    envs: &'a [Environment],
    wanted: Option<&str>,
) -> Result<&'a Environment, JupyterError> {
    let available = || envs.iter().map(Environment::label).collect::<Vec<_>>();
    if let Some(w) = wanted {
        let found = envs.iter().find(|e| e.configured).or_else(|| {
            envs.iter()
                .find(|e| e.name == w || e.prefix.as_deref() == Some(w))
        });
        let Some(env) = found else {
            return Err(JupyterError::NoEnvironment {
                host: host.to_string(),
                wanted: w.to_string(),
                available: available(),
            });
        };
        if let Some(problem) = &env.problem {
            return Err(JupyterError::BrokenEnvironment {
                env: env.label(),
                problem: problem.clone(),
            });
        }
        if !env.has_jupyter() {
            return Err(JupyterError::JupyterMissing {
                env: env.label(),
                host: host.to_string(),
            });
        }
        return Ok(env);
    }
    envs.iter()
        .find(|e| e.configured && e.has_jupyter())
        .or_else(|| envs.iter().find(|e| e.problem.is_none() && e.jupyter_lab))
        .or_else(|| envs.iter().find(|e| e.has_jupyter()))
        .ok_or_else(|| JupyterError::NoJupyterAnywhere {
            host: host.to_string(),
            available: available(),
        })
}

/// Creates a venv at `path` (default [`DEFAULT_VENV`]) with the login shell's `python3 -m venv`
/// and installs `jupyterlab` and `ipykernel` into it, sending pip's output lines to `progress`.
/// Returns the new environment as discovery sees it.
pub async fn install(
    host: &Host,
    path: Option<&str>,
    progress: mpsc::UnboundedSender<String>,
) -> Result<Environment, JupyterError> {
    let path = path.unwrap_or(DEFAULT_VENV);
    let script = format!(
        "set -e\np={}\nmkdir -p \"$(dirname \"$p\")\"\n\
         if [ ! -x \"$p/bin/python\" ]; then echo \"creating venv $p\"; python3 -m venv \"$p\"; fi\n\
         echo \"installing jupyterlab ipykernel into $p\"\n\
         PYTHONUNBUFFERED=1 \"$p/bin/python\" -m pip install --progress-bar off --disable-pip-version-check jupyterlab ipykernel\n",
        sh_path(path)
    );
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    let forward = tokio::spawn(async move {
        let mut last = Vec::new();
        while let Some(line) = rx.recv().await {
            last.push(line.clone());
            if last.len() > 20 {
                last.remove(0);
            }
            let _ = progress.send(line);
        }
        last
    });
    let out = host.exec_lines(&script, tx).await?;
    let last = forward.await.unwrap_or_default();
    if !out.success() {
        return Err(JupyterError::Install {
            path: path.to_string(),
            detail: log_tail(&last.join("\n"), 8),
        });
    }
    let envs = environments(host, Some(path)).await?;
    match envs.into_iter().find(|e| e.configured) {
        Some(env) if env.jupyter_lab => Ok(env),
        Some(env) => Err(JupyterError::Install {
            path: path.to_string(),
            detail: env
                .problem
                .unwrap_or_else(|| "jupyterlab is not importable after the install".into()),
        }),
        None => Err(JupyterError::Install {
            path: path.to_string(),
            detail: "the new venv was not found".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_dedups_discovery_lines() {
        let text = "env\tconfigured\tjlab\t/opt/jlab\t/opt/jlab/bin/python3\tok\t3.11.2\t1\t0\n\
                    env\tvenv\tjlab\t/opt/jlab\t/opt/jlab/bin/python3\tok\t3.11.2\t1\t0\n\
                    env\tconda\tml\t/c/envs/ml\t/c/envs/ml/bin/python3\tbroken\tImportError: x\n\
                    env\tvenv\told\t/h/old\t/h/old/bin/python\tmissing\n\
                    env\tsystem\tpython3\t\t/usr/bin/python3\tok\t3.11.2\t0\t0\n\
                    noise\n";
        let envs = parse_environments(text);
        assert_eq!(envs.len(), 4);
        assert!(envs[0].configured && envs[0].jupyter_lab);
        assert_eq!(envs[0].python_version.as_deref(), Some("3.11.2"));
        assert_eq!(envs[1].kind, EnvKind::Conda);
        assert!(
            envs[1]
                .problem
                .as_deref()
                .unwrap()
                .contains("ImportError: x")
        );
        assert!(
            envs[2]
                .problem
                .as_deref()
                .unwrap()
                .contains("does not exist")
        );
        assert_eq!(envs[3].prefix, None);
        assert_eq!(choose("h", &envs, None).unwrap().name, "jlab");
        assert!(matches!(
            choose("h", &envs[1..], Some("ml")),
            Err(JupyterError::BrokenEnvironment { .. })
        ));
        assert!(matches!(
            choose("h", &envs[3..], None),
            Err(JupyterError::NoJupyterAnywhere { .. })
        ));
        assert!(matches!(
            choose("h", &envs[3..], Some("nope")),
            Err(JupyterError::NoEnvironment { .. })
        ));
    }

    #[test]
    fn a_module_providing_an_environment_found_elsewhere_is_listed_as_the_module() {
        let text = "env\tmodule\tpython/3.11\t/apps/py\t/apps/py/bin/python3\tok\t3.11.2\t1\t0\n\
                    env\tvenv\tpy\t/apps/py\t/apps/py/bin/python3\tok\t3.11.2\t1\t0\n\
                    env\tvenv\tjlab\t/opt/jlab\t/opt/jlab/bin/python3\tok\t3.11.2\t1\t0\n\
                    env\tmodule\tjlab/1\t/opt/jlab\t/opt/jlab/bin/python3\tok\t3.11.2\t1\t0\n";
        let envs = parse_environments(text);
        assert_eq!(envs.len(), 2);
        assert_eq!(
            (envs[0].kind, envs[0].name.as_str()),
            (EnvKind::Module, "python/3.11")
        );
        assert_eq!(
            (envs[1].kind, envs[1].name.as_str()),
            (EnvKind::Module, "jlab/1")
        );
        // The saved modules' python3 is configured and chosen first.
        let text = "env\tvenv\tjlab\t/opt/jlab\t/opt/jlab/bin/python3\tok\t3.11.2\t1\t0\n\
                    env\tmodule-configured\tpy/3\t/apps/py\t/apps/py/bin/python3\tok\t3.11.2\t0\t1\n";
        let envs = parse_environments(text);
        assert_eq!(choose("h", &envs, None).unwrap().name, "py/3");
        let script = module_load_sh(&["py/3".into(), "cuda 12".into()], "/dev/null");
        assert!(script.contains("tb_m='cuda 12'\n"), "{script}");
        assert!(script.contains("module load \"$tb_m\""), "{script}");
    }
}
