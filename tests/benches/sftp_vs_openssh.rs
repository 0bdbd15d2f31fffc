//! Tunnelbook's SFTP transfers against OpenSSH's `scp -r` and `sftp -b` on the same sshd,
//! cipher and machine, in one run: a folder of 200 files (1–100 KB) and one 500 MB file, up and
//! down. Prints medians (MB/s) and the Tunnelbook / OpenSSH ratios.
//!
//! Run: `bash scripts/bench.sh` (release CLI), or for a quick look with the debug CLI (the data
//! path crates are optimized in dev builds too): `cargo bench -p tunnelbook-testbed --profile dev
//! --bench sftp_vs_openssh`. `TB_BENCH_RUNS=N` sets the runs per measure (default 3).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Instant,
};

use tunnelbook_testbed::{BENCH_CIPHER as CIPHER, BenchBed, USER, median};

const SMALL_FILES: usize = 200;
const BIG: usize = 500_000_000;

fn runs() -> usize {
    std::env::var("TB_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
}

/// Incompressible bytes.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// The source folder: `src/files/f-NNN.bin` (1–100 KB) and `src/big.bin`; returns its bytes.
fn make_source(root: &Path) -> (u64, u64) {
    let files = root.join("files");
    std::fs::create_dir_all(&files).unwrap();
    let mut small = 0u64;
    for i in 0..SMALL_FILES {
        let len = 1000 + (i * 99_000) / (SMALL_FILES - 1);
        std::fs::write(
            files.join(format!("f-{i:03}.bin")),
            noise(len, i as u64 + 1),
        )
        .unwrap();
        small += len as u64;
    }
    std::fs::write(root.join("big.bin"), noise(BIG, 99)).unwrap();
    (small, BIG as u64)
}

fn run(mut c: Command, what: &str) -> f64 {
    let start = Instant::now();
    let out = c.stdin(Stdio::null()).output().unwrap();
    let secs = start.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    secs
}

fn ssh_opts(bed: &BenchBed) -> Vec<String> {
    vec![
        "-F".into(),
        "/dev/null".into(),
        "-i".into(),
        bed.key.path.display().to_string(),
        "-P".into(),
        bed.sshd.port.to_string(),
        "-c".into(),
        CIPHER.into(),
        "-o".into(),
        format!(
            "UserKnownHostsFile={}",
            bed.client.home().join("known_hosts").display()
        ),
        "-o".into(),
        "StrictHostKeyChecking=yes".into(),
        "-o".into(),
        "BatchMode=yes".into(),
        "-o".into(),
        "IdentitiesOnly=yes".into(),
    ]
}

fn scp(bed: &BenchBed, from: &str, to: &str) -> Command {
    let mut c = Command::new("scp");
    c.env("HOME", bed.client.dir.path())
        .env_remove("SSH_AUTH_SOCK")
        .args(ssh_opts(bed))
        .args(["-q", "-r", from, to]);
    c
}

fn sftp_batch(bed: &BenchBed, batch: &str, dir: &Path) -> Command {
    let file = dir.join("batch");
    std::fs::write(&file, batch).unwrap();
    let mut c = Command::new("sftp");
    c.env("HOME", bed.client.dir.path())
        .env_remove("SSH_AUTH_SOCK")
        .args(ssh_opts(bed))
        .arg("-q")
        .arg("-b")
        .arg(&file)
        .arg(format!("{USER}@127.0.0.1"));
    c
}

fn clean_remote(remote: &Path) {
    let _ = std::fs::remove_dir_all(remote);
}

struct Row {
    what: &'static str,
    tb: f64,
    scp: f64,
    sftp: f64,
}

fn main() {
    let bed = BenchBed::start(|_| {});
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    let (small_bytes, big_bytes) = make_source(&src);
    let remote_home = PathBuf::from(format!("/home/{USER}"));
    let remote = remote_home.join("tb-bench-sftp");
    let rdir = format!("{USER}@127.0.0.1:tb-bench-sftp");
    let mut rows = Vec::new();

    for (what, sub, bytes) in [
        ("200 files, 1–100 KB", "files", small_bytes),
        ("one 500 MB file", "big.bin", big_bytes),
    ] {
        let local = src.join(sub);
        let local_s = local.display().to_string();
        let (mut tb_up, mut scp_up, mut sftp_up) = (Vec::new(), Vec::new(), Vec::new());
        let (mut tb_down, mut scp_down, mut sftp_down) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..runs() {
            // Up.
            clean_remote(&remote);
            let mut c = bed.tunnelbook();
            c.args(["files", "box", "put", &local_s, "tb-bench-sftp"]);
            tb_up.push(bytes as f64 / 1e6 / run(c, "tunnelbook files put"));
            clean_remote(&remote);
            bed.ssh(&[]).arg("mkdir -p tb-bench-sftp").output().unwrap();
            scp_up.push(
                bytes as f64 / 1e6 / run(scp(&bed, &local_s, &format!("{rdir}/")), "scp -r up"),
            );
            clean_remote(&remote);
            bed.ssh(&[]).arg("mkdir -p tb-bench-sftp").output().unwrap();
            let batch = format!("put -r {local_s} tb-bench-sftp/\n");
            sftp_up.push(
                bytes as f64 / 1e6 / run(sftp_batch(&bed, &batch, work.path()), "sftp -b put -r"),
            );
            // Down (from what sftp just put there).
            let remote_item = format!("tb-bench-sftp/{sub}");
            for (list, name) in [
                (&mut tb_down, "tb"),
                (&mut scp_down, "scp"),
                (&mut sftp_down, "sftp"),
            ] {
                let into = work.path().join(format!("down-{name}"));
                let _ = std::fs::remove_dir_all(&into);
                std::fs::create_dir_all(&into).unwrap();
                let secs = match name {
                    "tb" => {
                        let mut c = bed.tunnelbook();
                        c.args(["files", "box", "get", &remote_item]).arg(&into);
                        run(c, "tunnelbook files get")
                    }
                    "scp" => run(
                        scp(
                            &bed,
                            &format!("{USER}@127.0.0.1:{remote_item}"),
                            &into.display().to_string(),
                        ),
                        "scp -r down",
                    ),
                    _ => run(
                        sftp_batch(
                            &bed,
                            &format!("get -r {remote_item} {}\n", into.display()),
                            work.path(),
                        ),
                        "sftp -b get -r",
                    ),
                };
                list.push(bytes as f64 / 1e6 / secs);
                let _ = std::fs::remove_dir_all(&into);
            }
        }
        rows.push(Row {
            what: if sub == "files" {
                "200 files up (MB/s)"
            } else {
                "500 MB file up (MB/s)"
            },
            tb: median(tb_up),
            scp: median(scp_up),
            sftp: median(sftp_up),
        });
        rows.push(Row {
            what: if sub == "files" {
                "200 files down (MB/s)"
            } else {
                "500 MB file down (MB/s)"
            },
            tb: median(tb_down),
            scp: median(scp_down),
            sftp: median(sftp_down),
        });
        eprintln!("measured: {what}");
    }
    clean_remote(&remote);

    println!("| measure | tunnelbook | scp -r | sftp -b | ratio vs scp | ratio vs sftp | target |");
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    for r in rows {
        let (a, b) = (r.tb / r.scp, r.tb / r.sftp);
        println!(
            "| {} | {:.0} | {:.0} | {:.0} | {:.2} | {:.2} | ≥ 1.0{} |",
            r.what,
            r.tb,
            r.scp,
            r.sftp,
            a,
            b,
            if a >= 1.0 && b >= 1.0 {
                " — met"
            } else {
                " — **missed**"
            }
        );
    }
}
