//! `mtp sequence show|edit|delete`: one sequence after its upload.

use clap::Subcommand;
use mtp_app::App;
use mtp_app::manage::{ChangeOutcome, RemoteHow, RemotePlan};
use mtp_core::store::{RemoteActionStatus, SequenceMeta};
use std::process::ExitCode;
use std::time::Duration;

#[derive(Subcommand)]
pub enum SequenceCommand {
    /// Its photos (kept and left out, with why), where it is on each service, its history.
    Show {
        id: i64,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Change its name, description, transport type or tags, here and where a service can
    /// take it (Panoramax: the title).
    Edit {
        id: i64,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        description: Option<String>,
        /// A Map the Paths transport type (Walk, Bicycle, Car, …; a name it does not know is
        /// answered with the whole list), or "" for none.
        #[arg(long)]
        transport: Option<String>,
        /// Comma-separated; replaces the tags.
        #[arg(long)]
        tags: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove it from MTP Desktop (the photo files are never touched); with --remote, delete
    /// it on the services first (KartaView, Panoramax; Mapillary and Map the Paths Web are
    /// explained, with the page to do it on).
    Delete {
        id: i64,
        /// Also delete it on the services.
        #[arg(long)]
        remote: bool,
        /// Do it without asking (otherwise the plan is printed and nothing is done).
        #[arg(long, short = 'y')]
        yes: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(app: &App, command: SequenceCommand) -> anyhow::Result<ExitCode> {
    match command {
        SequenceCommand::Show { id, json } => show(app, id, json).await,
        SequenceCommand::Edit {
            id,
            name,
            description,
            transport,
            tags,
            json,
        } => {
            let current = app.sequence(id).await?;
            let meta = SequenceMeta {
                name: name.unwrap_or(current.name),
                description: description.unwrap_or(current.description),
                transport_type: match transport {
                    Some(t) if t.trim().is_empty() => None,
                    Some(t) => Some(t),
                    None => current.transport_type,
                },
                tags: tags
                    .map(|t| t.split(',').map(str::to_owned).collect())
                    .unwrap_or(current.tags),
            };
            let outcome = app.edit_sequence(id, meta).await?;
            finish(app, outcome, json, "Saved.").await
        }
        SequenceCommand::Delete {
            id,
            remote,
            yes,
            json,
        } => {
            if !yes {
                let plan = app.delete_plan(id).await?;
                if json {
                    println!("{}", serde_json::to_string_pretty(&plan)?);
                } else {
                    println!("Deleting \"{}\" would:", plan.name);
                    println!("  - {}", plan.local);
                    if plan.running_uploads > 0 {
                        println!(
                            "  - cancel its {} uploads still running",
                            plan.running_uploads
                        );
                    }
                    if remote {
                        for p in &plan.remote {
                            println!("  - {}: {} — {}", p.label, p.what, p.says);
                        }
                    } else if !plan.remote.is_empty() {
                        println!(
                            "  (it stays on {}: add --remote to delete it there too)",
                            plan.remote
                                .iter()
                                .map(|p| p.label)
                                .collect::<Vec<_>>()
                                .join(", ")
                        );
                    }
                    println!("Run again with --yes to do it.");
                }
                return Ok(ExitCode::SUCCESS);
            }
            let outcome = app.delete_sequence(id, remote).await?;
            let done = if outcome.removed_locally {
                "Removed from MTP Desktop."
            } else {
                "Deleted on the services; removed from MTP Desktop."
            };
            finish(app, outcome, json, done).await
        }
    }
}

/// Runs the remote actions an edit or a delete queued, then says what happened where.
async fn finish(
    app: &App,
    outcome: ChangeOutcome,
    json: bool,
    done: &str,
) -> anyhow::Result<ExitCode> {
    let mut failed = false;
    let mut actions = Vec::new();
    if !outcome.actions.is_empty() {
        app.start_engine()?;
        if app.engine_elsewhere() {
            eprintln!(
                "The desktop app (or another `mtp`) is running this database's uploads and changes: it sends this one. Waiting for it."
            );
        }
        actions = app
            .wait_for_remote_actions(outcome.sequence_id, Duration::from_secs(600))
            .await?
            .into_iter()
            .filter(|a| outcome.actions.contains(&a.id))
            .collect();
        failed = actions
            .iter()
            .any(|a| a.status == RemoteActionStatus::Failed);
    }
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "outcome": outcome,
                "actions": actions,
            }))?
        );
    } else {
        for plan in &outcome.remote {
            print_plan(plan);
        }
        for a in &actions {
            match (&a.outcome, &a.last_error) {
                (Some(o), _) => println!("{}: {o}", a.label),
                (None, Some(e)) => println!("{}: FAILED — {e}", a.label),
                (None, None) => {}
            }
        }
        if failed {
            println!(
                "Not everything could be done: `mtp sequence show {}` has the details.",
                outcome.sequence_id
            );
        } else {
            println!("{done}");
        }
    }
    app.shutdown().await;
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn print_plan(p: &RemotePlan) {
    match &p.how {
        RemoteHow::Api => {}
        RemoteHow::OpenPage { url } => println!("{}: {} Open {url}", p.label, p.says),
        RemoteHow::NoApi { link: Some(link) } => println!("{}: {} ({link})", p.label, p.says),
        RemoteHow::NoApi { link: None } => println!("{}: {}", p.label, p.says),
    }
}

async fn show(app: &App, id: i64, json: bool) -> anyhow::Result<ExitCode> {
    let page = app.sequence_page(id).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&page)?);
        return Ok(ExitCode::SUCCESS);
    }
    let s = &page.summary;
    println!("{} (#{})", s.name, s.id);
    if !s.description.is_empty() {
        println!("  {}", s.description);
    }
    println!(
        "  {} photos, {:.2} km, transport: {}, tags: {}",
        s.photo_count,
        s.distance_m / 1000.0,
        s.transport_type.as_deref().unwrap_or("none"),
        if s.tags.is_empty() {
            "none".to_owned()
        } else {
            s.tags.join(", ")
        }
    );
    if let Some(folder) = &s.folder {
        println!("  from {folder}");
    }
    if page.deleting_at.is_some() {
        println!("  Being deleted everywhere.");
    }
    println!("Destinations:");
    for j in &s.jobs {
        println!(
            "  {:<18} {:?} / {:?}  {}  {}",
            j.label,
            j.status,
            j.stage,
            j.remote_id.as_deref().unwrap_or("-"),
            j.remote_url.as_deref().unwrap_or("")
        );
    }
    for a in &page.actions {
        println!(
            "  {:<18} {:?} {:?}{}",
            a.label,
            a.action,
            a.status,
            a.outcome
                .as_ref()
                .or(a.last_error.as_ref())
                .map(|t| format!(": {t}"))
                .unwrap_or_default()
        );
    }
    let (kept, left): (Vec<_>, Vec<_>) = page.photos.iter().partition(|p| p.index.is_some());
    println!("Photos: {} kept, {} left out", kept.len(), left.len());
    for p in &left {
        println!(
            "  left out: {} — {}",
            p.file_name,
            p.reason.as_deref().unwrap_or("")
        );
    }
    println!("History (newest first):");
    for h in page.history.iter().take(20) {
        println!("  {}  {}", mtp_app::sequences::iso(h.at), h.message);
    }
    Ok(ExitCode::SUCCESS)
}
