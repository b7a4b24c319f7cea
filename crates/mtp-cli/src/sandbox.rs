//! `mtp sandbox`: run the service emulators on their own, for demos, scripts and tests.

use clap::Args;
use mtp_sandbox::{Sandbox, SandboxConfig};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Args)]
pub struct SandboxArgs {
    /// Port to listen on (0 = any free port).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// How long server-side processing takes, in milliseconds.
    #[arg(long, default_value_t = 3000)]
    pub processing_delay_ms: u64,
    /// Approve sign-in pages at once, without a click.
    #[arg(long)]
    pub auto_approve: bool,
    /// Faults to inject, e.g. "mapillary.upload:error_rate=0.3,status=503;kartaview.photo:rate_limit=1,retry_after=2".
    #[arg(long)]
    pub faults: Option<String>,
    /// Keep the emulators' state in this folder, so that a restart resumes where the last
    /// run stopped (default: in memory only).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}

pub async fn run(args: SandboxArgs) -> anyhow::Result<ExitCode> {
    let mut config = SandboxConfig {
        port: args.port,
        processing_delay: Duration::from_millis(args.processing_delay_ms),
        auto_approve: args.auto_approve,
        state_dir: args.state_dir,
        ..SandboxConfig::default()
    };
    // MTP_SANDBOX_WORLD and the other emulator knobs.
    config
        .apply_env(|k| std::env::var(k).ok())
        .map_err(anyhow::Error::msg)?;
    let sandbox = Sandbox::start(config).await?;
    if let Some(spec) = &args.faults {
        sandbox
            .faults()
            .apply_spec(spec)
            .map_err(|e| anyhow::anyhow!("--faults: {e}"))?;
    }
    let urls = sandbox.urls();
    println!("{}", serde_json::to_string_pretty(&urls)?);
    eprintln!(
        "Emulators of Mapillary, KartaView, Panoramax and Map the Paths Web are running. \
         Point the MTP settings at these URLs (see .env.example). Ctrl-C stops them."
    );
    tokio::signal::ctrl_c().await?;
    sandbox.shutdown().await;
    Ok(ExitCode::SUCCESS)
}
