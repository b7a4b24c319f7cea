//! `mtp prepare` and `mtp export`.

use clap::Args;
use mtp_app::App;
use mtp_app::prepare::{PrepareOptions, SaveImport, plural};
use mtp_app::sequences::iso;
use mtp_core::Destination;
use mtp_core::store::SequenceMeta;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args)]
pub struct PrepareArgs {
    /// Folder of geotagged JPEGs (read recursively; files are never modified).
    pub folder: PathBuf,
    /// GPX track to place photos that have no GPS position.
    #[arg(long)]
    pub gpx: Option<PathBuf>,
    /// Seconds added to the photos' times before the GPX lookup (camera clock off).
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub gpx_offset: f64,
    /// Camera's UTC offset in minutes for photos without one (default: this computer's zone).
    #[arg(long, allow_negative_numbers = true)]
    pub camera_utc_offset: Option<i32>,
    /// Drop photos closer than this many metres to the previous kept one (1–20 m).
    #[arg(long)]
    pub min_distance: Option<f64>,
    /// Drop photos sooner than this many seconds after the previous kept one (1–20 s).
    #[arg(long)]
    pub min_interval: Option<f64>,
    /// Degrees added to every heading (camera mounted sideways or backwards).
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub heading_offset: f64,
    /// Most photos per sequence (Mapillary: 1000).
    #[arg(long)]
    pub max_photos: Option<usize>,
    /// Name of the sequence (default: the folder's name).
    #[arg(long)]
    pub name: Option<String>,
    /// Map the Paths transport type, e.g. Walk, Bicycle, Car.
    #[arg(long)]
    pub transport: Option<String>,
    /// Comma-separated tags.
    #[arg(long, value_delimiter = ',')]
    pub tags: Vec<String>,
    /// Queue uploads to these destinations (comma-separated: mapillary,kartaview,panoramax,mtpw).
    #[arg(long, value_delimiter = ',')]
    pub to: Vec<Destination>,
    /// Also save the sequences that look unintended (a stray photo, photos taken years
    /// apart), which are left out by default, as the window leaves them unticked.
    #[arg(long)]
    pub all: bool,
    /// Show the plan without saving it.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the plan as JSON.
    #[arg(long)]
    pub json: bool,
}

pub async fn prepare(app: &App, args: PrepareArgs) -> anyhow::Result<ExitCode> {
    let mut options = PrepareOptions {
        gpx: args.gpx.clone(),
        gpx_offset_s: args.gpx_offset,
        camera_utc_offset_minutes: args.camera_utc_offset,
        transport_type: args.transport.clone(),
        ..PrepareOptions::default()
    };
    options.plan.min_distance_m = args.min_distance;
    options.plan.min_interval_s = args.min_interval;
    options.plan.heading_offset_deg = args.heading_offset;
    if let Some(n) = args.max_photos {
        options.plan.max_photos_per_sequence = n;
    }
    let view = app.prepare_folder(&args.folder, options).await?;
    let choices = view.default_choices(args.all);
    let none_chosen = !choices.is_empty() && choices.iter().all(|c| !c.include);
    let saved = if args.dry_run || view.sequences.is_empty() || none_chosen {
        None
    } else {
        Some(
            app.save_import(SaveImport {
                sequences: choices,
                token: view.token.clone(),
                meta: SequenceMeta {
                    name: args
                        .name
                        .clone()
                        .unwrap_or_else(|| view.suggested_name.clone()),
                    description: String::new(),
                    transport_type: args.transport.clone(),
                    tags: args.tags.clone(),
                },
                destinations: args.to.clone(),
            })
            .await?,
        )
    };
    if args.json {
        // Streamed from the typed values: going through `json!` first would build a
        // `serde_json::Value` tree of the whole plan (≈ 6 MB more heap at 10,000 photos).
        #[derive(serde::Serialize)]
        struct Output<'a> {
            plan: &'a mtp_app::prepare::PreparedImport,
            saved: &'a Option<mtp_app::prepare::SavedImport>,
        }
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        serde_json::to_writer(
            &mut out,
            &Output {
                plan: &view,
                saved: &saved,
            },
        )?;
        writeln!(out)?;
        out.flush()?;
    } else {
        let s = &view.summary;
        println!(
            "Read {} in {} ({} ignored)",
            plural(view.files_seen, "file", "files"),
            view.folder,
            plural(view.ignored, "sidecar file", "sidecar files")
        );
        println!(
            "{}, {} kept, {} left out",
            plural(view.sequences.len(), "sequence", "sequences"),
            plural(s.kept, "photo", "photos"),
            view.left_out.len()
        );
        for seq in &view.sequences {
            println!(
                "  #{:<3} {:>5} photos {:>8.0} m  {} → {}{}  {}",
                seq.index + 1,
                seq.photo_count,
                seq.distance_m,
                iso(seq.started_at),
                iso(seq.ended_at),
                if seq.is_360 { "  360°" } else { "" },
                seq.split_message
            );
            let checks: Vec<String> = seq
                .checks
                .iter()
                .map(|c| {
                    if c.ok {
                        format!("{} ok", c.destination.label())
                    } else {
                        format!(
                            "{} NO ({})",
                            c.destination.label(),
                            c.problems.first().map(|p| p.message.as_str()).unwrap_or("")
                        )
                    }
                })
                .collect();
            println!("        {}", checks.join(" · "));
            if !seq.include_by_default && !args.all {
                println!(
                    "        left out unless you add --all: {}",
                    seq.warnings.join("; ")
                );
            }
        }
        if !view.left_out.is_empty() {
            println!("Left out:");
            for l in &view.left_out {
                println!("  {:<24} {:<18} {}", l.file_name, l.code, l.message);
            }
        }
        if let Some(existing) = &view.already_imported {
            println!(
                "This folder was imported before as: {}",
                existing.names.join(", ")
            );
        }
        match &saved {
            Some(saved) if saved.created => println!(
                "Saved as sequence(s) {}. Upload with: mtp upload {} --to mapillary,kartaview,panoramax",
                join_ids(&saved.sequence_ids),
                saved.sequence_ids.first().copied().unwrap_or_default()
            ),
            Some(saved) => println!(
                "Already saved as sequence(s) {}: nothing new created.",
                join_ids(&saved.sequence_ids)
            ),
            None if args.dry_run => println!("Dry run: nothing saved."),
            None if none_chosen => println!(
                "Nothing saved: every sequence here looks unintended (see why above). Add --all to save them anyway."
            ),
            None => {}
        }
        if let Some(saved) = &saved {
            for s in &saved.skipped {
                println!("  {s}");
            }
        }
    }
    Ok(if let Some(why) = &view.nothing_to_upload {
        eprintln!("{why}");
        ExitCode::from(2)
    } else if none_chosen && !args.dry_run {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

fn join_ids(ids: &[i64]) -> String {
    ids.iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

#[derive(Args)]
pub struct ExportArgs {
    /// Format: geojson.
    #[arg(value_parser = ["geojson"])]
    pub format: String,
    /// Only this sequence.
    #[arg(long)]
    pub sequence: Option<i64>,
    /// Write to this file instead of standard output.
    #[arg(long, short)]
    pub out: Option<PathBuf>,
}

pub async fn export(app: &App, args: ExportArgs) -> anyhow::Result<ExitCode> {
    let json = app.export_geojson(args.sequence).await?;
    let text = serde_json::to_string_pretty(&json)?;
    match args.out {
        Some(path) => {
            std::fs::write(&path, text)?;
            eprintln!("Wrote {}", path.display());
        }
        None => println!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}
