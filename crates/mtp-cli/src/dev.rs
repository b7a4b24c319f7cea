//! `mtp dev`: tools for developers and benchmarks (synthetic photo folders).

use clap::{Args, Subcommand};
use mtp_core::photo::fixture::{TrackSpec, track_photos, write_jpeg};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum DevCommand {
    /// Write a folder of small geotagged JPEGs along a synthetic track (benchmarks, demos).
    GenPhotos(GenArgs),
}

#[derive(Args)]
pub struct GenArgs {
    /// Folder to create (must be empty or missing).
    pub dir: PathBuf,
    /// How many photos.
    #[arg(long, default_value_t = 100)]
    pub count: usize,
    /// Metres between photos.
    #[arg(long, default_value_t = 3.0)]
    pub spacing: f64,
    /// Seconds between photos.
    #[arg(long, default_value_t = 1.0)]
    pub interval: f64,
    /// Write equirectangular 360° photos.
    #[arg(long)]
    pub pano: bool,
}

pub fn run(command: DevCommand) -> anyhow::Result<ExitCode> {
    match command {
        DevCommand::GenPhotos(args) => {
            if args.dir.exists() && std::fs::read_dir(&args.dir)?.next().is_some() {
                anyhow::bail!("{} is not empty: choose a new folder", args.dir.display());
            }
            std::fs::create_dir_all(&args.dir)?;
            let spec = TrackSpec {
                spacing_m: args.spacing,
                interval_ms: (args.interval * 1000.0).round() as i64,
                is_360: args.pano,
                width: Some(if args.pano { 5760 } else { 4000 }),
                height: Some(if args.pano { 2880 } else { 3000 }),
                ..TrackSpec::default()
            };
            let photos = track_photos(args.count, &spec);
            for (i, p) in photos.iter().enumerate() {
                write_jpeg(&args.dir.join(format!("{}{i:05}.jpg", spec.file_prefix)), p)?;
            }
            eprintln!("Wrote {} photos to {}", photos.len(), args.dir.display());
            Ok(ExitCode::SUCCESS)
        }
    }
}
