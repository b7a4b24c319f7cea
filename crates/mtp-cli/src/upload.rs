//! `mtp upload` and `mtp status`.

use clap::Args;
use mtp_app::dry_run::DryRun;
use mtp_app::jobs::{JobAction, JobTarget};
use mtp_app::prepare::{PrepareOptions, SaveImport, plural};
use mtp_app::sequences::SequenceSummary;
use mtp_app::{App, AppEvent};
use mtp_core::Destination;
use mtp_core::engine::{ErrorKind, JobStatus};
use mtp_core::store::SequenceMeta;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(Args)]
pub struct UploadArgs {
    /// A sequence id (see `mtp status`) or a folder of photos (prepared and saved first).
    pub target: String,
    /// Destinations, comma-separated: mapillary,kartaview,panoramax,mtpw.
    #[arg(long, value_delimiter = ',', required = true)]
    pub to: Vec<Destination>,
    /// For a folder: the sequence's name (default: the folder's name).
    #[arg(long)]
    pub name: Option<String>,
    /// For a folder: Map the Paths transport type (Walk, Bicycle, Car, …).
    #[arg(long)]
    pub transport: Option<String>,
    /// For a folder: also send the sequences that look unintended (a stray photo, photos
    /// taken years apart), which are left out by default, as the window leaves them unticked.
    #[arg(long)]
    pub all: bool,
    /// Queue only; the desktop app (or a later `mtp upload`) does the work.
    #[arg(long)]
    pub no_wait: bool,
    /// Give up waiting after this many seconds (the queue is kept).
    #[arg(long, default_value_t = 24 * 3600)]
    pub timeout: u64,
    /// Send nothing: show per destination what would be sent, what would be refused and
    /// whether the account can upload now (a folder is read, not saved).
    #[arg(long)]
    pub dry_run: bool,
    /// With --dry-run: print the result as JSON.
    #[arg(long, requires = "dry_run")]
    pub json: bool,
}

pub async fn upload(app: &App, args: UploadArgs) -> anyhow::Result<ExitCode> {
    if args.dry_run {
        return dry_run(app, &args).await;
    }
    let ids = match args.target.parse::<i64>() {
        Ok(id) => vec![id],
        Err(_) => save_folder(app, &args).await?,
    };
    let skipped = app.queue_upload(&ids, &args.to).await?;
    for s in &skipped {
        eprintln!("skipped: {s}");
    }
    reopen(app, &ids, &args.to).await?;
    if !skipped.is_empty() && args.to.contains(&Destination::Mtpw) && args.transport.is_none() {
        if args.target.parse::<i64>().is_ok() {
            eprintln!(
                "hint: give the sequence a transport type with `mtp sequence edit {} --transport Walk` (or Bicycle, Car, …), then upload again",
                args.target
            );
        } else {
            eprintln!(
                "hint: give the folder's transport type with --transport Walk (or Bicycle, Car, …)"
            );
        }
    }
    if args.no_wait {
        eprintln!("Queued. Watch it with `mtp status` or in the desktop app.");
        return Ok(if skipped.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        });
    }
    app.start_engine()?;
    if app.engine_elsewhere() {
        eprintln!(
            "The desktop app (or another `mtp`) is running the uploads of this database: it sends these too. Showing its progress as it saves it; if it stops first, this command carries on."
        );
    }
    let progress = tokio::spawn(show_progress(app.clone(), ids.clone()));
    let result = app
        .wait_for_jobs(&ids, Duration::from_secs(args.timeout))
        .await;
    progress.abort();
    app.shutdown().await;
    if std::io::stderr().is_terminal() {
        eprintln!();
    }
    result?;
    // A destination asked for and not queued is not done either.
    let mut code = if skipped.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    };
    let mut shown = Vec::new();
    for id in ids {
        let s = app.sequence(id).await?;
        print_sequence(&s, true);
        if s.jobs.iter().any(|j| j.status != JobStatus::Done) {
            code = ExitCode::from(1);
        }
        shown.push(s);
    }
    print_link_hint(app, &shown).await?;
    print_retry_hint(&shown);
    // Nothing runs once this command ends: say who carries on what waits for a later try.
    let later: Vec<String> = shown
        .iter()
        .filter(|s| {
            s.jobs
                .iter()
                .any(|j| j.status == JobStatus::Pending && j.waiting.is_some())
        })
        .map(|s| s.id.to_string())
        .collect();
    match later.as_slice() {
        [] => {}
        [one] => eprintln!(
            "hint: what waits for a later try carries on while the desktop app is open, or when `mtp upload {one} --to …` runs again"
        ),
        many => eprintln!(
            "hint: what waits for a later try carries on while the desktop app is open, or when `mtp upload <id> --to …` runs again for sequences {}",
            many.join(", ")
        ),
    }
    Ok(code)
}

/// Reads, plans and saves the folder `args.target` (what the window leaves unticked left
/// out unless `--all`); returns its sequences.
async fn save_folder(app: &App, args: &UploadArgs) -> anyhow::Result<Vec<i64>> {
    let view = read_folder(app, args).await?;
    let choices = view.default_choices(args.all);
    let chosen = |s: &mtp_app::prepare::SequenceView| {
        choices.is_empty() || choices.iter().any(|c| c.index == s.index && c.include)
    };
    for s in view.sequences.iter().filter(|s| !chosen(s)) {
        eprintln!(
            "left out unless you add --all: sequence {} ({}): {}",
            s.index + 1,
            plural(s.photo_count, "photo", "photos"),
            s.warnings.join("; ")
        );
    }
    if !view.sequences.iter().any(chosen) {
        anyhow::bail!(
            "every sequence in {} looks unintended (see why above): nothing sent. Add --all to send them anyway.",
            args.target
        );
    }
    // Only the counts are shown: the preview (a point per photo) goes before saving.
    let kept: usize = view
        .sequences
        .iter()
        .filter(|s| chosen(s))
        .map(|s| s.photo_count)
        .sum();
    let left_out = view.left_out.len();
    let (token, suggested_name) = (view.token, view.suggested_name);
    drop((
        view.sequences,
        view.left_out,
        view.left_out_groups,
        view.not_photos,
    ));
    let saved = app
        .save_import(SaveImport {
            sequences: choices,
            token,
            meta: SequenceMeta {
                name: args.name.clone().unwrap_or(suggested_name),
                description: String::new(),
                transport_type: args.transport.clone(),
                tags: Vec::new(),
            },
            destinations: Vec::new(),
        })
        .await?;
    eprintln!(
        "{} from {} ({}, {left_out} left out)",
        plural(saved.sequence_ids.len(), "sequence", "sequences"),
        args.target,
        plural(kept, "photo", "photos"),
    );
    Ok(saved.sequence_ids)
}

/// Asking to upload a sequence again to a destination where its job stopped (failed,
/// cancelled, paused, or waiting for a sign-in) carries that job on, as Retry or Resume
/// does in the window; what already arrived is not sent again.
async fn reopen(app: &App, ids: &[i64], to: &[Destination]) -> anyhow::Result<()> {
    for &id in ids {
        for j in app.sequence(id).await?.jobs {
            if !to.contains(&j.destination) {
                continue;
            }
            let action = match j.status {
                JobStatus::Failed | JobStatus::Cancelled | JobStatus::WaitingAuth => {
                    JobAction::Retry
                }
                JobStatus::Paused => JobAction::Resume,
                JobStatus::Pending | JobStatus::Running | JobStatus::Done => continue,
            };
            if app.job_action(JobTarget::Job(j.id), action).await? > 0 {
                let was = match j.status {
                    JobStatus::Failed => "it had failed",
                    JobStatus::Cancelled => "it was cancelled",
                    JobStatus::Paused => "it was paused",
                    _ => "it was waiting for a sign-in",
                };
                eprintln!(
                    "Sending #{id} to {} again ({was}); what already arrived is not sent again.",
                    j.label
                );
            }
        }
    }
    Ok(())
}

/// One status line, redrawn on a terminal, printed every few seconds otherwise.
async fn show_progress(app: App, ids: Vec<i64>) {
    let mut rx = app.subscribe();
    let tty = std::io::stderr().is_terminal();
    let started = Instant::now();
    let mut last_line = Instant::now() - Duration::from_secs(60);
    let mut jobs: std::collections::BTreeMap<i64, (i64, i64, i64, i64)> = Default::default();
    while let Ok(event) = rx.recv().await {
        let AppEvent::JobProgress {
            job_id,
            sequence_id,
            photos_done,
            photos_total,
            bytes_done,
            bytes_total,
        } = event
        else {
            continue;
        };
        if !ids.contains(&sequence_id) {
            continue;
        }
        jobs.insert(job_id, (photos_done, photos_total, bytes_done, bytes_total));
        let (pd, pt, bd, bt) = jobs.values().fold((0, 0, 0, 0), |a, v| {
            (a.0 + v.0, a.1 + v.1, a.2 + v.2, a.3 + v.3)
        });
        let secs = started.elapsed().as_secs_f64().max(0.001);
        let rate = bd as f64 / secs;
        let pct = if bt > 0 {
            100.0 * bd as f64 / bt as f64
        } else {
            0.0
        };
        let width = 30usize;
        let filled = ((pct / 100.0) * width as f64) as usize;
        let bar = format!(
            "{}{}",
            "#".repeat(filled.min(width)),
            "-".repeat(width - filled.min(width))
        );
        let line = format!(
            "[{bar}] {pct:5.1}%  {pd}/{pt} photos  {:.1}/{:.1} MiB  {:.1} MiB/s",
            bd as f64 / 1048576.0,
            bt as f64 / 1048576.0,
            rate / 1048576.0
        );
        if tty {
            eprint!("\r{line}");
            let _ = std::io::stderr().flush();
        } else if last_line.elapsed() >= Duration::from_secs(5) {
            eprintln!("{line}");
            last_line = Instant::now();
        }
    }
}

/// `sending_now`: a process runs the uploads (this one, or the desktop app): a `running` row
/// is really running. Otherwise it was stopped mid-stage and resumes at the next start.
fn print_sequence(s: &SequenceSummary, sending_now: bool) {
    println!(
        "#{} {} — {} photos, {:.2} km",
        s.id,
        s.name,
        s.photo_count,
        s.distance_m / 1000.0
    );
    if s.jobs.is_empty() {
        println!("    not sent anywhere (mtp upload {} --to …)", s.id);
    }
    for j in &s.jobs {
        let detail = match j.status {
            JobStatus::Done => j
                .remote_url
                .clone()
                .or(j.remote_id.clone().map(|id| format!("id {id}")))
                .unwrap_or_default(),
            JobStatus::Failed | JobStatus::WaitingAuth => j.last_error.clone().unwrap_or_default(),
            JobStatus::Pending if j.last_error_kind == Some(ErrorKind::Retry) => format!(
                "waiting for {} (try {}): {}",
                j.label,
                j.attempts,
                j.last_error.clone().unwrap_or_default()
            ),
            JobStatus::Pending | JobStatus::Running => j.waiting.clone().unwrap_or_default(),
            JobStatus::Paused | JobStatus::Cancelled => String::new(),
        };
        let photos = if j.destination == Destination::Mtpw {
            "metadata".to_string()
        } else {
            format!("{}/{} photos", j.photos_done, j.photos_total)
        };
        // Mapillary not confirming an upload is not a failure (the window says the same).
        let unconfirmed = j.mapillary.as_ref().is_some_and(|m| m.unconfirmed);
        let status = if j.status == JobStatus::Failed && unconfirmed {
            "unconfirmed".to_string()
        } else if j.status == JobStatus::Running && !sending_now {
            "interrupted".to_string()
        } else {
            j.status.to_string()
        };
        println!(
            "    {:<18} {:<8} {:<13} {:<16} {}",
            j.label, j.stage, status, photos, detail
        );
        // A done job with a note did not end as plainly as "done" says (partly published,
        // not linked, not confirmed…): the same words as the window's row.
        if j.status == JobStatus::Done
            && let Some(note) = &j.note
        {
            println!("        {note}");
        }
        // Mapillary: the four processing stages of each chunk, raw statuses in brackets.
        if let Some(m) = &j.mapillary {
            for line in m.lines() {
                println!("        {line}");
            }
            if let Some(at) = m.next_check_at {
                println!(
                    "        next look at Mapillary: {}",
                    mtp_app::mapillary_status::utc(at)
                );
            }
        }
    }
}

#[derive(Args)]
pub struct StatusArgs {
    /// Only this sequence.
    pub sequence: Option<i64>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

pub async fn status(app: &App, args: StatusArgs) -> anyhow::Result<ExitCode> {
    let list = match args.sequence {
        Some(id) => vec![app.sequence(id).await?],
        None => app.sequences().await?,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&list)?);
    } else if list.is_empty() {
        println!("No sequences yet: `mtp prepare <folder>` or import one in the app.");
    } else {
        // This command sends nothing: another process does, or nobody does now.
        let sending_now = app.uploads_run_elsewhere();
        for s in &list {
            print_sequence(s, sending_now);
        }
        print_link_hint(app, &list).await?;
        print_retry_hint(&list);
        let to_send = list
            .iter()
            .flat_map(|s| &s.jobs)
            .any(|j| matches!(j.status, JobStatus::Pending | JobStatus::Running));
        if to_send && sending_now {
            eprintln!(
                "The desktop app (or another `mtp`) is sending these now: `mtp status` again shows how far it got."
            );
        } else if to_send {
            eprintln!(
                "hint: nothing is sending these now: they carry on while the desktop app is open, or with `mtp upload <id> --to …`"
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// How to carry on a job that stopped (the window's Retry and Resume buttons).
fn print_retry_hint(list: &[SequenceSummary]) {
    let stopped: Vec<String> = list
        .iter()
        .filter_map(|s| {
            let to: Vec<String> = s
                .jobs
                .iter()
                .filter(|j| {
                    matches!(
                        j.status,
                        JobStatus::Failed | JobStatus::Cancelled | JobStatus::Paused
                    )
                })
                .map(|j| j.destination.to_string())
                .collect();
            (!to.is_empty()).then(|| format!("`mtp upload {} --to {}`", s.id, to.join(",")))
        })
        .collect();
    let unconfirmed = list
        .iter()
        .flat_map(|s| &s.jobs)
        .any(|j| j.mapillary.as_ref().is_some_and(|m| m.unconfirmed));
    if !stopped.is_empty() {
        eprintln!(
            "hint: {} carries on what stopped (once its cause is fixed), without sending again what arrived{}",
            stopped.join(", "),
            if unconfirmed {
                "; where Mapillary has not confirmed the photos yet, it looks again"
            } else {
                ""
            }
        );
    }
}

/// The window asks on its Map the Paths Web card whether MTPW may receive the Mapillary
/// token; here the question is a command. Printed when a Map the Paths Web job waits for
/// the answer, or ended unlinked because of a "no".
async fn print_link_hint(app: &App, list: &[SequenceSummary]) -> anyhow::Result<()> {
    let mtpw: Vec<_> = list
        .iter()
        .flat_map(|s| &s.jobs)
        .filter(|j| j.destination == Destination::Mtpw)
        .collect();
    if mtpw.is_empty() {
        return Ok(());
    }
    match app.mtpw_mapillary_consent().await? {
        None if mtpw.iter().any(|j| j.status != JobStatus::Done) => eprintln!(
            "hint: Map the Paths Web waits for your answer: `mtp accounts mtpw-link allow` sends it your Mapillary token to link your sequences (`deny` keeps it)"
        ),
        Some(false) if mtpw.iter().any(|j| j.note.is_some()) => {
            eprintln!("hint: `mtp accounts mtpw-link allow` links the sequences you kept unlinked")
        }
        _ => {}
    }
    Ok(())
}

/// The target folder read and planned; an error when nothing in it can be uploaded.
async fn read_folder(
    app: &App,
    args: &UploadArgs,
) -> anyhow::Result<mtp_app::prepare::PreparedImport> {
    let folder = PathBuf::from(&args.target);
    let view = app
        .prepare_folder(
            &folder,
            PrepareOptions {
                transport_type: args.transport.clone(),
                ..PrepareOptions::default()
            },
        )
        .await?;
    if view.sequences.is_empty() {
        anyhow::bail!(
            "no photo in {} can be uploaded: run `mtp prepare {}` to see why",
            folder.display(),
            folder.display()
        );
    }
    Ok(view)
}

/// `mtp upload --dry-run`: nothing is saved or sent.
async fn dry_run(app: &App, args: &UploadArgs) -> anyhow::Result<ExitCode> {
    let result = match args.target.parse::<i64>() {
        Ok(id) => app.dry_run_sequence(id, &args.to).await?,
        Err(_) => {
            let view = read_folder(app, args).await?;
            let meta = SequenceMeta {
                name: args.name.clone().unwrap_or(view.suggested_name.clone()),
                description: String::new(),
                transport_type: args.transport.clone(),
                tags: Vec::new(),
            };
            app.dry_run_prepared(&view.token, &meta, &args.to).await?
        }
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&result)?);
    } else {
        print_dry_run(&result);
    }
    Ok(ExitCode::SUCCESS)
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / 1_048_576.0)
}

fn print_dry_run(result: &DryRun) {
    println!("Dry run: nothing was sent.");
    for s in &result.sequences {
        println!();
        println!("{} — {} photos, {}", s.name, s.photos, mib(s.bytes));
        for d in &s.destinations {
            let account = if d.account.can_upload {
                "ok"
            } else {
                "PROBLEM"
            };
            println!("  {}", d.label);
            println!("    account: {account} — {}", d.account.says);
            if d.destination == Destination::Mtpw {
                println!("    sends: the sequence's details (no photo)");
            } else {
                let chunks: Vec<String> = d.chunks.iter().map(|c| c.photos.to_string()).collect();
                println!(
                    "    sends: {} photos, {}, {} chunk(s) ({})",
                    d.photos,
                    mib(d.bytes),
                    d.chunks.len(),
                    chunks.join(" + ")
                );
            }
            if !d.accepted {
                println!(
                    "    REFUSED: saving leaves {} out for this sequence",
                    d.label
                );
            }
            for r in &d.refused {
                match &r.file {
                    Some(file) => println!("    refused {file}: {}", r.reason),
                    None => println!("    refused: {}", r.reason),
                }
            }
            if !d.fields.is_empty() {
                if d.destination == Destination::Mtpw {
                    println!("    fields sent with the sequence:");
                } else {
                    println!("    fields of the first photo:");
                }
                for (k, v) in &d.fields {
                    println!("      {k} = {v}");
                }
            }
            if let Some(desc) = &d.first_description {
                println!("    MAP* description of the first photo: {desc}");
            }
            for n in &d.notes {
                println!("    note: {n}");
            }
        }
    }
}
