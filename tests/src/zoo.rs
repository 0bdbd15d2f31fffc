//! The "server zoo": test users whose login shells and startup files are set up the way real
//! users' are on GPU servers (tcsh on an old cluster, fish on a workstation, `exec zsh -l` in
//! `.bash_profile`, a banner and `stty` in `.bashrc`). `scripts/setup.sh` installs the shells and
//! creates the users; [`ensure_zoo`] (re)writes their startup files and creates a missing user.
//!
//! Every zoo user's startup files put `~/bin` first on PATH (where [`crate::NvidiaSmiShim`]
//! goes) and export `TB_LOGIN_PROBE=<shell>`, each in its own shell's syntax, so a test can see
//! that the login environment was really read.

use std::{os::unix::fs::PermissionsExt, path::Path, process::Command, sync::Once};

use crate::run;

/// One zoo user.
#[derive(Debug, Clone, Copy)]
pub struct ZooUser {
    /// Login name.
    pub name: &'static str,
    /// Login shell.
    pub shell: &'static str,
    /// The value its startup files give `TB_LOGIN_PROBE`.
    pub probe: &'static str,
    /// Startup files: (path under the home, content).
    pub files: &'static [(&'static str, &'static str)],
}

const POSIX_PROFILE: &str = "PATH=\"$HOME/bin:$PATH\"; export PATH\n";

/// tcsh, as in case 05 (`set path = ( $HOME/bin $path )` in `~/.cshrc`).
pub const TCSH: ZooUser = ZooUser {
    name: "tbtcsh",
    shell: "/usr/bin/tcsh",
    probe: "tcsh",
    files: &[(
        ".cshrc",
        "set path = ( $HOME/bin $path )\nsetenv TB_LOGIN_PROBE tcsh\n",
    )],
};

/// fish, as in case 06 (`set -gx PATH $HOME/bin $PATH` in `config.fish`).
pub const FISH: ZooUser = ZooUser {
    name: "tbfish",
    shell: "/usr/bin/fish",
    probe: "fish",
    files: &[(
        ".config/fish/config.fish",
        "set -gx PATH $HOME/bin $PATH\nset -gx TB_LOGIN_PROBE fish\n",
    )],
};

/// zsh with its login file.
pub const ZSH: ZooUser = ZooUser {
    name: "tbzsh",
    shell: "/usr/bin/zsh",
    probe: "zsh",
    files: &[(
        ".zprofile",
        "path=($HOME/bin $path)\nexport TB_LOGIN_PROBE=zsh\n",
    )],
};

/// ksh (93) reading `~/.profile`.
pub const KSH: ZooUser = ZooUser {
    name: "tbksh",
    shell: "/usr/bin/ksh",
    probe: "ksh",
    files: &[(
        ".profile",
        "PATH=\"$HOME/bin:$PATH\"; export PATH\nexport TB_LOGIN_PROBE=ksh\n",
    )],
};

/// dash reading `~/.profile`.
pub const DASH: ZooUser = ZooUser {
    name: "tbdash",
    shell: "/usr/bin/dash",
    probe: "dash",
    files: &[(
        ".profile",
        "PATH=\"$HOME/bin:$PATH\"; export PATH\nTB_LOGIN_PROBE=dash; export TB_LOGIN_PROBE\n",
    )],
};

/// bash whose `.bash_profile` replaces it with a zsh login shell (an HPC habit), unguarded.
pub const EXEC_ZSH: ZooUser = ZooUser {
    name: "tbexeczsh",
    shell: "/bin/bash",
    probe: "exec-zsh",
    files: &[
        (".bash_profile", "exec zsh -l\n"),
        (
            ".zprofile",
            "path=($HOME/bin $path)\nexport TB_LOGIN_PROBE=exec-zsh\n",
        ),
    ],
};

/// bash whose `.bashrc` (read even by `bash -c` under sshd) prints a banner with escape codes,
/// a line without newline, and calls `stty` without a terminal.
pub const BANNER: ZooUser = ZooUser {
    name: "tbbanner",
    shell: "/bin/bash",
    probe: "banner",
    files: &[
        (
            ".bashrc",
            "printf '\\033[1;32m*** Welcome to the GPU cluster ***\\033[0m\\n'\n\
             printf 'quota: 12%% used'\n\
             stty erase '^H'\n\
             echo 'motd on stderr' >&2\n",
        ),
        (
            ".bash_profile",
            ". \"$HOME/.bashrc\"\nPATH=\"$HOME/bin:$PATH\"; export PATH\nexport TB_LOGIN_PROBE=banner\n",
        ),
    ],
};

/// A bash user whose `~/.jupyter` config the Jupyter-config tests write (case 12).
pub const JUPYTER_CONFIG: ZooUser = ZooUser {
    name: "tbjupcfg",
    shell: "/bin/bash",
    probe: "jupcfg",
    files: &[(
        ".profile",
        "PATH=\"$HOME/bin:$PATH\"; export PATH\nexport TB_LOGIN_PROBE=jupcfg\n\
         [ -f \"$HOME/.jupyter-env\" ] && . \"$HOME/.jupyter-env\"\n",
    )],
};

/// A bash user on a site with Lmod (Debian's `lmod`, whose `/etc/profile.d/lmod.sh` defines
/// `module`): `~/.bash_profile` adds the site's module tree ([`MODULES_DIR`]) with `module use`,
/// as sites tell their users to. JupyterLab is only reachable by loading [`PYTHON_MODULE`].
pub const LMOD: ZooUser = ZooUser {
    name: "tblmod",
    shell: "/bin/bash",
    probe: "lmod",
    files: &[(
        ".bash_profile",
        "PATH=\"$HOME/bin:$PATH\"; export PATH\nexport TB_LOGIN_PROBE=lmod\n\
         module use /opt/tunnelbook-test/modules\n",
    )],
};

/// The whole zoo.
pub const ZOO: [ZooUser; 9] = [
    TCSH,
    FISH,
    ZSH,
    KSH,
    DASH,
    EXEC_ZSH,
    BANNER,
    JUPYTER_CONFIG,
    LMOD,
];

/// The site's Lmod module tree that [`LMOD`]'s startup file adds.
pub const MODULES_DIR: &str = "/opt/tunnelbook-test/modules";

/// The module that provides Python with JupyterLab: the test bed's JupyterLab venv
/// ([`crate::JUPYTER_VENV`]) first on PATH, and `TB_MODULE_PROBE` set to its name.
pub const PYTHON_MODULE: &str = "python-jlab/1.0";

/// A module that has nothing to do with Python (not listed as an environment).
pub const OTHER_MODULE: &str = "gcc/12.2";

/// (Re)writes the Lmod module tree ([`MODULES_DIR`]: [`PYTHON_MODULE`], [`OTHER_MODULE`]) and
/// builds the JupyterLab venv it points at. Panics, saying to run `scripts/setup.sh`, when Lmod
/// is not installed.
pub fn ensure_modules() {
    assert!(
        Path::new("/usr/share/lmod/lmod/init/sh").exists(),
        "Lmod is missing: run scripts/setup.sh (it installs Debian's lmod)"
    );
    let venv = crate::jupyter_venv();
    let files = [
        (
            format!("{MODULES_DIR}/{PYTHON_MODULE}.lua"),
            format!(
                "whatis(\"Python 3 with JupyterLab (Tunnelbook test bed)\")\n\
                 prepend_path(\"PATH\", \"{}/bin\")\n\
                 setenv(\"TB_MODULE_PROBE\", \"{PYTHON_MODULE}\")\n",
                venv.display()
            ),
        ),
        (
            format!("{MODULES_DIR}/{OTHER_MODULE}.lua"),
            "whatis(\"GNU compilers (Tunnelbook test bed)\")\nsetenv(\"TB_GCC\", \"12\")\n".into(),
        ),
    ];
    for (path, text) in files {
        let path = Path::new(&path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, text).unwrap();
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::rename(&tmp, path).unwrap();
    }
    for dir in [
        MODULES_DIR.to_string(),
        format!("{MODULES_DIR}/python-jlab"),
        format!("{MODULES_DIR}/gcc"),
    ] {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}

/// Creates missing zoo users and (re)writes every zoo user's startup files, once per process.
/// Panics, saying to run `scripts/setup.sh`, when a shell is not installed.
pub fn ensure_zoo() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        crate::ensure_users();
        let lock = std::fs::File::create("/tmp/tunnelbook-testbed-zoo.lock").unwrap();
        lock.lock().unwrap();
        for user in ZOO {
            for shell in [user.shell, "/usr/bin/zsh"] {
                assert!(
                    Path::new(shell).exists(),
                    "{shell} is missing: run scripts/setup.sh (it installs the zoo's shells)"
                );
            }
            let exists = Command::new("id")
                .arg(user.name)
                .output()
                .is_ok_and(|o| o.status.success());
            if !exists {
                run(Command::new("useradd").args([
                    "--create-home",
                    "--shell",
                    user.shell,
                    user.name,
                ]));
            }
            // sshd (UsePAM no) refuses accounts whose password is locked, as useradd leaves it.
            run(Command::new("usermod").args([
                "--shell",
                user.shell,
                "--password",
                "*",
                user.name,
            ]));
            let home = format!("/home/{}", user.name);
            std::fs::create_dir_all(&home).unwrap();
            for (file, text) in user.files {
                let path = Path::new(&home).join(file);
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(&path, text).unwrap();
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            }
            // A POSIX ~/.profile too, as Debian's skeleton has, for shells that also read it.
            let profile = Path::new(&home).join(".profile");
            if !user.files.iter().any(|(f, _)| *f == ".profile") {
                std::fs::write(&profile, POSIX_PROFILE).unwrap();
            }
            std::fs::create_dir_all(Path::new(&home).join("bin")).unwrap();
            run(Command::new("chown")
                .arg("-R")
                .arg(format!("{}:", user.name))
                .arg(&home));
        }
    });
}

/// Where [`classic_notebook_venv`] keeps its venv.
pub const CLASSIC_VENV: &str = "/opt/tunnelbook-test/nb6-venv";

/// A venv with only the classic Notebook 6 (no JupyterLab) and ipykernel, built once with
/// `/usr/bin/python3` (~40 s, needs PyPI) and reused; a lock and a `.complete` marker as for
/// [`crate::jupyter_venv`].
pub fn classic_notebook_venv() -> std::path::PathBuf {
    crate::cached_venv(
        std::path::Path::new(CLASSIC_VENV),
        &["notebook==6.5.7", "ipykernel"],
    )
}
