//! Runs the sandbox until killed (SIGINT/SIGTERM), printing its URLs as one JSON line on
//! stdout. For scripts: see `scripts/mapillary_tools_fidelity.sh`. Tokens for scripts come
//! from `POST <sandbox_admin>/tokens?service=mapillary`.
//!
//! ```text
//! mtp-sandbox-server [--host 127.0.0.1] [--port 0] [--processing-delay-ms 3000]
//!                    [--auto-approve] [--panoramax-anonymous] [--faults SPEC]
//!                    [--state-dir DIR]
//! ```
//!
//! The seeded world and Mapillary's box limit come from the environment
//! (`MTP_SANDBOX_WORLD`, `MTP_SANDBOX_WORLD_SEED`, `MTP_SANDBOX_MLY_MAX_BBOX_SQDEG`; see
//! `SandboxConfig::apply_env`).

use std::io::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use mtp_sandbox::{Faults, Sandbox, SandboxConfig};

fn usage() -> ExitCode {
    eprintln!(
        "usage: mtp-sandbox-server [--host IP] [--port N] [--processing-delay-ms MS] \
         [--auto-approve] [--panoramax-anonymous] [--faults SPEC] [--state-dir DIR]"
    );
    ExitCode::from(2)
}

#[tokio::main]
async fn main() -> ExitCode {
    let mut cfg = SandboxConfig::default();
    // MTP_SANDBOX_WORLD, MTP_SANDBOX_WORLD_SEED, MTP_SANDBOX_MLY_MAX_BBOX_SQDEG.
    if let Err(e) = cfg.apply_env(|k| std::env::var(k).ok()) {
        eprintln!("{e}");
        return ExitCode::from(2);
    }
    let mut faults = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next();
        match arg.as_str() {
            "--host" => match value().and_then(|v| v.parse().ok()) {
                Some(h) => cfg.host = h,
                None => return usage(),
            },
            "--port" => match value().and_then(|v| v.parse().ok()) {
                Some(p) => cfg.port = p,
                None => return usage(),
            },
            "--processing-delay-ms" => match value().and_then(|v| v.parse().ok()) {
                Some(ms) => cfg.processing_delay = Duration::from_millis(ms),
                None => return usage(),
            },
            "--auto-approve" => cfg.auto_approve = true,
            "--state-dir" => match value() {
                Some(dir) => cfg.state_dir = Some(dir.into()),
                None => return usage(),
            },
            "--panoramax-anonymous" => cfg.panoramax_anonymous_uploads = true,
            "--faults" => match value() {
                Some(spec) => match Faults::parse_spec(&spec) {
                    Ok(d) => faults = Some(d),
                    Err(e) => {
                        eprintln!("bad --faults: {e}");
                        return ExitCode::from(2);
                    }
                },
                None => return usage(),
            },
            "-h" | "--help" => {
                usage();
                return ExitCode::SUCCESS;
            }
            _ => return usage(),
        }
    }
    let sandbox = match Sandbox::start(cfg).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("cannot start the sandbox: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(d) = faults {
        sandbox.faults().apply(d);
    }
    let line = serde_json::to_string(&sandbox.urls()).unwrap_or_default();
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
    drop(out);
    let _ = tokio::signal::ctrl_c().await;
    sandbox.shutdown().await;
    ExitCode::SUCCESS
}
