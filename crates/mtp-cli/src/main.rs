//! `mtp`: MTP Desktop's engine without a window.

mod accounts;
mod db;
mod dev;
mod prepare;
mod sandbox;
mod search;
mod sequence;
mod upload;

use clap::{Parser, Subcommand};
use mtp_app::{App, Settings};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "mtp",
    version,
    about = "Prepare and upload street-level imagery to Mapillary, KartaView and Panoramax",
    long_about = "MTP Desktop's engine, headless. Shares its database and settings (.env) with the desktop app.\n\
                  With no service credentials configured it runs in sandbox mode against built-in emulators."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Read a folder of photos, build clean sequences, and save them (see what was dropped and why).
    Prepare(prepare::PrepareArgs),
    /// Upload sequences (or a folder) to the destinations, with a progress bar.
    Upload(upload::UploadArgs),
    /// Show every sequence and the state of its uploads.
    Status(upload::StatusArgs),
    /// One sequence after its upload: show, edit, delete (here and on the services).
    Sequence {
        #[command(subcommand)]
        command: sequence::SequenceCommand,
    },
    /// Integrate services: list, login, panoramax, logout.
    Accounts {
        #[command(subcommand)]
        command: accounts::AccountsCommand,
    },
    /// Run the built-in emulators of every service and print their URLs.
    Sandbox(sandbox::SandboxArgs),
    /// Search what is already on Mapillary, KartaView and Panoramax in an area (GeoJSON).
    Search(search::SearchArgs),
    /// Export sequences and photos (GeoJSON: LineStrings and Points, WGS84).
    Export(prepare::ExportArgs),
    /// Developer tools: synthetic photo folders for benchmarks and demos.
    Dev {
        #[command(subcommand)]
        command: dev::DevCommand,
    },
    /// Inspect the database: where it is, its schema version and row counts.
    Db {
        #[command(subcommand)]
        command: db::DbCommand,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let settings_files = mtp_app::config::load_settings_files();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    for problem in &settings_files.problems {
        eprintln!("warning: {problem}");
    }
    let cli = Cli::parse();
    match run(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    // Needs no database.
    let command = match cli.command {
        Command::Dev { command } => return dev::run(command),
        Command::Sandbox(args) => return sandbox::run(args).await,
        other => other,
    };
    let app = App::start(Settings::from_env()).await?;
    match command {
        Command::Db { command } => db::run(&app, command).await,
        Command::Prepare(args) => prepare::prepare(&app, args).await,
        Command::Export(args) => prepare::export(&app, args).await,
        Command::Search(args) => search::search(&app, args).await,
        Command::Upload(args) => upload::upload(&app, args).await,
        Command::Status(args) => upload::status(&app, args).await,
        Command::Sequence { command } => sequence::run(&app, command).await,
        Command::Accounts { command } => accounts::run(&app, command).await,
        Command::Dev { .. } | Command::Sandbox(_) => unreachable!("handled above"),
    }
}
