//! `mtp db ...`

use clap::Subcommand;
use mtp_app::App;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum DbCommand {
    /// Print the database path, schema version, where tokens are kept and row counts.
    Info {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(app: &App, command: DbCommand) -> anyhow::Result<ExitCode> {
    match command {
        DbCommand::Info { json } => {
            let info = app.db_info().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&info)?);
            } else {
                println!("database:        {}", info.location);
                println!(
                    "schema version:  {} (this build knows up to {})",
                    info.schema_version, info.latest_known_version
                );
                println!("Tokens: {}", info.tokens.description);
                if let Some(service) = &info.tokens.keychain_service {
                    println!("  keychain service name: {service}");
                }
                println!("rows:");
                for (table, n) in &info.counts {
                    println!("  {table:<16}{n}");
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
