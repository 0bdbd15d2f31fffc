use super::{job::*, *};

const NODES: &str = "NodeName=localhost Arch=x86_64 CoresPerSocket=1 CPUAlloc=2 CPUEfctv=8 CPUTot=8 CPULoad=0.50 AvailableFeatures=(null) ActiveFeatures=(null) Gres=gpu:a100:2,gpu:v100:2 GresDrain=N/A GresUsed=gpu:a100:1(IDX:0),gpu:v100:2(IDX:2-3) NodeAddr=127.0.0.1 NodeHostName=vm Version=22.05.8 OS=Linux 6.1.0-13-amd64 #1 SMP PREEMPT_DYNAMIC Debian 6.1.55-1 (2023-09-29) RealMemory=8000 AllocMem=0 FreeMem=1000 Sockets=8 Boards=1 State=MIXED ThreadsPerCore=1 TmpDisk=0 Weight=1 Owner=N/A MCS_label=N/A Partitions=gpu,debug BootTime=2026-11-30T08:00:00 SlurmdStartTime=2026-11-30T09:00:00
NodeName=n2 Gres=gpu:a100:4(S:0-1) GresUsed=gpu:a100:0(IDX:N/A) State=IDLE+DRAIN Partitions=gpu Reason=bad fan [root@2026-11-30T09:00:00]
NodeName=n3 Gres=gpu:8 GresUsed=gpu:1(IDX:0,2-3) State=MIXED Partitions=big
";

const PARTS: &str = "PartitionName=gpu AllowGroups=ALL AllowAccounts=ALL AllowQos=ALL AllocNodes=ALL Default=YES QoS=N/A DefaultTime=01:00:00 DisableRootJobs=NO ExclusiveUser=NO GraceTime=0 Hidden=NO MaxNodes=UNLIMITED MaxTime=08:00:00 MinNodes=0 LLN=NO MaxCPUsPerNode=UNLIMITED Nodes=localhost,n2 PriorityJobFactor=1 State=UP TotalCPUs=8 TotalNodes=1
PartitionName=debug Default=NO DefaultTime=00:10:00 MaxTime=00:30:00 Nodes=localhost State=UP
PartitionName=big Default=NO DefaultTime=NONE MaxTime=UNLIMITED Nodes=n3 State=UP
";

fn view() -> ClusterView {
    ClusterView::parse(
        NODES,
        PARTS,
        "11|tunnelbook-jupyter|gpu|RUNNING|None|59:58|localhost|gres:gpu:v100:1\n",
    )
}

/// Gres/GresUsed per partition and type; a drained node counts in the total but not as idle;
/// untyped GPUs and index lists with commas are read.
#[test]
fn cluster_view_counts_gpus_per_partition_and_type() {
    let pools = view().pools();
    let find = |p: &str, t: &str| {
        pools
            .iter()
            .find(|x| x.partition == p && x.gpu_type == t)
            .cloned()
            .unwrap()
    };
    let a = find("gpu", "a100");
    assert_eq!((a.total, a.idle, a.per_node_max), (6, 1, 4));
    let v = find("gpu", "v100");
    assert_eq!((v.total, v.idle), (2, 0));
    let d = find("debug", "a100");
    assert_eq!((d.total, d.idle), (2, 1));
    let u = find("big", "");
    assert_eq!((u.total, u.idle), (8, 7));
    assert_eq!(view().jobs[0].time_left, "59:58");
    assert_eq!(view().nodes[0].partitions, vec!["gpu", "debug"]);
}

/// Times in every form SLURM writes them.
#[test]
fn times_read_as_slurm_writes_them() {
    assert_eq!(parse_time("90").unwrap(), Some(5400));
    assert_eq!(parse_time("59:58").unwrap(), Some(3598));
    assert_eq!(parse_time("08:00:00").unwrap(), Some(28800));
    assert_eq!(parse_time("1-02").unwrap(), Some(93600));
    assert_eq!(parse_time("1-00:00:30").unwrap(), Some(86430));
    assert_eq!(parse_time("UNLIMITED").unwrap(), None);
    assert!(parse_time("soon").is_err());
    assert_eq!(format_time(5400), "1:30:00");
    assert_eq!(format_time(86430), "1-00:00:30");
}

/// A request over MaxTime, of a type the partition lacks, or larger than a node is refused
/// with what to change; a good one passes; the flag style decides the sbatch argument.
#[test]
fn requests_are_checked_before_submit() {
    let v = view();
    let req = |p: Option<&str>, t: Option<&str>, g: Option<&str>| {
        JobRequest::from_defaults(
            &SlurmDefaults::default(),
            p.map(Into::into),
            None,
            t.map(Into::into),
            g.map(Into::into),
        )
        .unwrap()
    };
    check_request(&req(None, Some("60"), Some("v100:1")), &v).unwrap();
    let e = check_request(&req(Some("debug"), Some("60"), None), &v)
        .unwrap_err()
        .to_string();
    assert!(e.contains("over partition debug's limit of 0:30:00"), "{e}");
    let e = check_request(&req(None, None, Some("h100:1")), &v)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("no GPU of type \"h100\"") && e.contains("v100"),
        "{e}"
    );
    let e = check_request(&req(None, None, Some("v100:3")), &v)
        .unwrap_err()
        .to_string();
    assert!(e.contains("at most 2"), "{e}");
    let e = check_request(&req(Some("nope"), None, None), &v)
        .unwrap_err()
        .to_string();
    assert!(e.contains("no partition \"nope\""), "{e}");
    let g: GpuRequest = "v100:2".parse().unwrap();
    assert_eq!(g.sbatch_arg(GpuFlag::Gres), "--gres=gpu:v100:2");
    assert_eq!(g.sbatch_arg(GpuFlag::GpusPerNode), "--gpus-per-node=v100:2");
    assert_eq!(
        "3".parse::<GpuRequest>().unwrap().sbatch_arg(GpuFlag::Gpus),
        "--gpus=3"
    );
    assert!("v100:0".parse::<GpuRequest>().is_err());
}

/// Polls: pending with reason and expected start; running with and without the connection
/// file; a stale file of an ended job; a job the controller forgot.
#[test]
fn poll_output_is_read() {
    let p = parse_poll(
        "PENDING|Resources|2026-11-30T09:57:54||1:00:00\n@@tb@@\n@@tb@@\n",
        "12",
    );
    assert!(
        matches!(&p, JobPhase::Queued { reason, expected_start: Some(s), .. } if reason == "Resources" && s == "2026-11-30T09:57:54")
    );
    let file = r#"{"job_id":"12","node":"localhost","host":"vm","port":35321,"pid":7,"cuda_visible_devices":"2","launch_dir":"/h/.tunnelbook/slurm/launch-1"}"#;
    let p = parse_poll(
        &format!("RUNNING|None|2026-11-30T09:57:54|localhost|14:59\n@@tb@@\n@@tb@@\n{file}"),
        "12",
    );
    assert!(
        matches!(&p, JobPhase::Running { connection, time_left_secs: Some(899) } if connection.port == 35321 && connection.cuda_visible_devices == "2")
    );
    let p = parse_poll("RUNNING|None|x|localhost|14:59\n@@tb@@\n@@tb@@\n", "12");
    assert_eq!(
        p,
        JobPhase::Starting {
            node: "localhost".into()
        }
    );
    let p = parse_poll(
        &format!(
            "@@tb@@\nJobId=12 JobName=tunnelbook-jupyter JobState=CANCELLED Reason=None\n@@tb@@\n{file}"
        ),
        "12",
    );
    assert_eq!(
        p,
        JobPhase::Ended {
            state: "CANCELLED".into(),
            reason: None
        }
    );
    assert!(
        matches!(parse_poll("@@tb@@\n@@tb@@\n", "12"), JobPhase::Ended { state, .. } if state == "GONE")
    );
    assert!(
        check_never_clears(
            "12",
            &JobPhase::Queued {
                reason: "PartitionTimeLimit".into(),
                words: String::new(),
                expected_start: None
            }
        )
        .is_err()
    );
    assert!(
        check_never_clears(
            "12",
            &JobPhase::Queued {
                reason: "Resources".into(),
                words: String::new(),
                expected_start: None
            }
        )
        .is_ok()
    );
}

/// The batch script SLURM stores holds no token and reads it from the launch directory.
#[test]
fn job_script_holds_no_secret() {
    let req = JobRequest {
        sbatch_lines: vec!["--mem=1G".into()],
        setup: vec!["module load cuda".into()],
        ..JobRequest::default()
    };
    let s = job_script(&req, &JupyterJob::default(), ".tunnelbook/slurm/launch-ab");
    assert!(s.starts_with("#!/bin/bash\n#SBATCH --mem=1G\n"), "{s}");
    assert!(s.contains("TB_TOKEN_FILE=\"$tb_launch/token\""));
    assert!(s.contains("module load cuda"));
}

/// Each refusal names the request's field to change, and reaches a front end as a validation
/// problem at that field (the app's form shows it there).
#[test]
fn refusals_name_their_field() {
    let v = view();
    let req = |p: Option<&str>, t: Option<&str>, g: Option<&str>| {
        JobRequest::from_defaults(
            &SlurmDefaults::default(),
            p.map(Into::into),
            None,
            t.map(Into::into),
            g.map(Into::into),
        )
        .unwrap()
    };
    let field = |r: JobRequest| match check_request(&r, &v).unwrap_err() {
        SlurmError::Refused { field, .. } => field,
        other => panic!("{other}"),
    };
    assert_eq!(field(req(Some("debug"), Some("60"), None)), "time");
    assert_eq!(field(req(None, None, Some("h100:1"))), "gpus");
    assert_eq!(field(req(None, None, Some("v100:3"))), "gpus");
    assert_eq!(field(req(Some("nope"), None, None)), "partition");
    // The message names what to change (error.rs maps it to the form's field).
    match check_request(&req(None, None, Some("h100")), &v).unwrap_err() {
        SlurmError::Refused { field, message } => {
            assert_eq!(field, "gpus");
            assert!(message.contains("h100"), "{message}");
        }
        other => panic!("{other}"),
    }
}

/// A job Tunnelbook stops (`stopping` written before JupyterLab's shutdown) waits for the
/// scancel that follows, so it ends CANCELLED; JupyterLab's news question is answered.
#[test]
fn job_script_waits_for_scancel_after_a_stop() {
    let s = job_script(
        &JobRequest::default(),
        &JupyterJob::default(),
        ".tunnelbook/slurm/launch-ab",
    );
    let wait = s.find("wait \"$tb_pid\"\ntb_rc=$?").unwrap();
    let marker = s.find("if [ -f \"$tb_dir/stopping\" ]").unwrap();
    assert!(marker > wait, "{s}");
    assert!(s.contains("apputils-extension:announcements"), "{s}");
    assert!(s.find("trap tb_stop TERM").unwrap() < wait, "{s}");
}

/// `squeue`'s end time (`%e`) is read as the ninth field (the quit question and Sessions say
/// until when a job runs); an older eight-field line still reads, with no end time.
#[test]
fn job_rows_carry_their_end_time() {
    let rows = parse_jobs(
        "11|tunnelbook-jupyter|gpu|RUNNING|None|59:58|localhost|gres:gpu:v100:1|2026-11-30T21:45:00\n12|x|gpu|PENDING|Resources|10:00||gres:gpu:1\n",
    );
    assert_eq!(rows[0].end_time, "2026-11-30T21:45:00");
    assert_eq!(rows[1].end_time, "");
    assert_eq!(rows[1].reason, "Resources");
    assert!(SQUEUE_ME.contains(SQUEUE_FORMAT));
}

/// Attaching picks job `id`, else the newest job whose JupyterLab listens; a job without a
/// connection file (queued, starting) is never picked.
#[test]
fn the_job_to_attach_is_the_asked_or_newest_listening_one() {
    let job = |id: &str, listening: bool| {
        TunnelbookJob {
        row: parse_jobs(&format!(
            "{id}|tunnelbook-jupyter|gpu|RUNNING|None|59:58|localhost|gres:gpu:1|2026-11-30T21:45:00"
        ))
        .remove(0),
        connection: listening.then(|| ConnectionFile {
            job_id: id.into(),
            node: "localhost".into(),
            host: "localhost".into(),
            port: 8888,
            pid: 1,
            cuda_visible_devices: "2".into(),
            launch_dir: ".tunnelbook/slurm/launch-x".into(),
        }),
    }
    };
    let jobs = || vec![job("9", true), job("12", true), job("15", false)];
    assert_eq!(find_running(jobs(), None).unwrap().0.job_id, "12");
    assert_eq!(find_running(jobs(), Some("9")).unwrap().1.id, "9");
    assert!(find_running(jobs(), Some("15")).is_none());
    assert!(find_running(Vec::new(), None).is_none());
}

/// The app's form becomes the request; unreadable fields are named as the form names them, and
/// so are refusals of the request (`gpus` is the form's `gpuType`).
#[test]
fn form_fields_are_checked_by_name() {
    let d = SlurmDefaults {
        sbatch_lines: vec!["--mem=1G".into()],
        ..SlurmDefaults::default()
    };
    let form = SlurmRequestForm {
        partition: Some("gpu".into()),
        gpu_type: Some("v100".into()),
        gpu_count: 1,
        time: Some("30".into()),
        account: Some(String::new()),
    };
    let req = form.to_request(&d).unwrap();
    assert_eq!(
        req.sbatch_args(),
        vec!["--partition=gpu", "--time=0:30:00", "--gres=gpu:v100:1"]
    );
    assert_eq!(req.sbatch_lines, vec!["--mem=1G"]);
    let bad = SlurmRequestForm {
        time: Some("soon".into()),
        gpu_type: Some("v100".into()),
        gpu_count: 0,
        ..SlurmRequestForm::default()
    };
    let Err(SlurmError::Form(fields)) = bad.to_request(&d) else {
        panic!("two unreadable fields");
    };
    let names: Vec<_> = fields.iter().map(|(f, _)| *f).collect();
    assert_eq!(names, vec!["time", "gpuCount"]);
    let unlimited = SlurmRequestForm {
        time: Some("UNLIMITED".into()),
        ..SlurmRequestForm::default()
    };
    let err = unlimited.to_request(&d).unwrap_err();
    assert_eq!(err.to_string(), "ask for a time limit, not UNLIMITED");
    let refused = SlurmRequestForm::form_names(SlurmError::Refused {
        field: "gpus",
        message: "no GPU of type \"h100\"".into(),
    });
    assert!(matches!(
        refused,
        SlurmError::Refused {
            field: "gpuType",
            ..
        }
    ));
}

/// The app's request form and the CLI's `up --slurm` start JupyterLab alike: the environment
/// given (not blank) wins over the host's saved one, and the folder given over its notebook folder.
#[test]
fn a_job_runs_jupyterlab_from_the_given_environment_else_the_hosts() {
    use crate::profile::Profile;
    let host = Profile {
        environment: Some("/opt/venv".into()),
        notebook_dir: Some("work".into()),
        ..Profile::default()
    };
    let saved = JupyterJob::on_host(None, None, &host);
    assert_eq!(saved.env_prefix.as_deref(), Some("/opt/venv"));
    assert_eq!(saved.notebook_dir.as_deref(), Some("work"));
    let blank = JupyterJob::on_host(Some("  ".into()), None, &host);
    assert_eq!(blank.env_prefix.as_deref(), Some("/opt/venv"));
    let given = JupyterJob::on_host(Some("/scratch/env".into()), Some("/data".into()), &host);
    assert_eq!(given.env_prefix.as_deref(), Some("/scratch/env"));
    assert_eq!(given.notebook_dir.as_deref(), Some("/data"));
    let bare = JupyterJob::on_host(None, None, &Profile::default());
    assert_eq!((bare.env_prefix, bare.notebook_dir), (None, None));
}
