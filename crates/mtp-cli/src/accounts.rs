//! `mtp accounts`: integrate services without the window.

use clap::Subcommand;
use mtp_app::{App, Mode};
use mtp_core::Destination;
use mtp_providers::config::OOB_REDIRECT_URI;
use std::io::IsTerminal;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum AccountsCommand {
    /// List the services and who is connected.
    List,
    /// Sign in to a service through the browser (in sandbox mode, the emulator's page is approved for you).
    /// Panoramax: claims a new token on the configured instance (or use `mtp accounts panoramax --token`).
    /// KartaView without an OpenStreetMap app in the settings signs in through KartaView's own
    /// app: OpenStreetMap shows a code, which you paste here.
    Login {
        service: Destination,
        /// KartaView: sign in through KartaView's own OpenStreetMap app (a code to paste)
        /// even when your own app is in the settings.
        #[arg(long)]
        kartaview_app: bool,
    },
    /// Connect a Panoramax instance with an API token.
    Panoramax {
        /// Instance address, e.g. https://panoramax.openstreetmap.fr
        #[arg(long)]
        url: Option<String>,
        /// API token from the instance.
        #[arg(long, env = "PANORAMAX_TOKEN")]
        token: Option<String>,
    },
    /// Connect a service with an access token you already have instead of the browser
    /// sign-in (a KartaView token from upload-scripts, a Mapillary user token from the
    /// developer dashboard). Without TOKEN, it is read from standard input, which keeps it
    /// out of the shell history.
    Token {
        service: Destination,
        token: Option<String>,
        /// Your KartaView username: KartaView cannot tell it from the token, and `mtp
        /// accounts` shows your stats with it.
        #[arg(long)]
        username: Option<String>,
    },
    /// Forget a service's account.
    Logout { service: Destination },
    /// Whether Map the Paths Web may receive your Mapillary token, which it needs to link a
    /// sequence to its Mapillary imagery (the desktop app asks on its card). Without an
    /// answer, shows the current one.
    MtpwLink {
        #[arg(value_enum)]
        answer: Option<LinkAnswer>,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum LinkAnswer {
    /// Send it: Map the Paths Web links your sequences to Mapillary.
    Allow,
    /// Keep it: your sequences are created on Map the Paths Web without the link.
    Deny,
}

pub async fn run(app: &App, command: AccountsCommand) -> anyhow::Result<ExitCode> {
    match command {
        AccountsCommand::List => {
            for c in app.integrations().await? {
                let state = match (&c.connected_as, c.needs_reauth) {
                    (Some(name), false)
                        if name.is_empty() && c.service == Destination::Kartaview =>
                    {
                        "connected with a pasted token".into()
                    }
                    (Some(name), false) => format!("connected as {name}"),
                    (Some(_), true) => match &c.reauth_reason {
                        Some(reason) => format!("needs a new sign-in: {reason}"),
                        None => "sign-in expired: `mtp accounts login` again".into(),
                    },
                    (None, _) if !c.missing_settings.is_empty() => {
                        format!("not configured: set {}", c.missing_settings.join(", "))
                    }
                    (None, _) => "not connected".into(),
                };
                println!("{:<20} {state}", c.label);
                if c.connected_as.is_some()
                    && !c.needs_reauth
                    && let Some(line) = stats_line(app, c.service).await
                {
                    println!("{:<20} {line}", "");
                }
            }
        }
        AccountsCommand::Login {
            service,
            kartaview_app,
        } => {
            let sandbox = app.overview().mode.mode == Mode::Sandbox;
            let started = if kartaview_app {
                if service != Destination::Kartaview {
                    anyhow::bail!("--kartaview-app is for KartaView only");
                }
                app.start_kartaview_app_sign_in(!sandbox).await?
            } else {
                app.start_integration_with(service, !sandbox).await?
            };
            if started.redirect_uri.as_deref() == Some(OOB_REDIRECT_URI) {
                if sandbox {
                    let code =
                        mtp_app::sandbox_browser::approve_code(&started.authorize_url).await?;
                    let name = app.finish_sign_in_with_code(&code).await?;
                    println!("{} connected as {name}.", service.label());
                    return Ok(ExitCode::SUCCESS);
                }
                eprintln!(
                    "Approve in your browser:\n  {}\nOpenStreetMap then shows a code: paste it here:",
                    started.authorize_url
                );
                // A mistyped code (or a moment without network) may be pasted again.
                for _ in 0..3 {
                    let mut line = String::new();
                    if std::io::stdin().read_line(&mut line)? == 0 {
                        break;
                    }
                    match app.finish_sign_in_with_code(&line).await {
                        Ok(name) => {
                            println!("{} connected as {name}.", service.label());
                            return Ok(ExitCode::SUCCESS);
                        }
                        Err(e) if e.code == "code_refused" => {
                            eprintln!("{}\nPaste the code:", e.message);
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
                anyhow::bail!("no code OpenStreetMap accepted was pasted: run this again");
            }
            if sandbox && service == Destination::Panoramax {
                mtp_app::sandbox_browser::claim(&started.authorize_url).await?;
                return wait_for_account(app, service).await;
            }
            if started.listening {
                if sandbox {
                    let location =
                        mtp_app::sandbox_browser::approve(&started.authorize_url).await?;
                    mtp_app::sandbox_browser::follow(&location).await?;
                } else {
                    eprintln!(
                        "Approve MTP Desktop in your browser:\n  {}\nWaiting for it to come back to {}…",
                        started.authorize_url,
                        started.redirect_uri.as_deref().unwrap_or_default()
                    );
                }
                return wait_for_account(app, service).await;
            }
            if !sandbox && service == Destination::Panoramax {
                eprintln!(
                    "Claim the token in your browser:\n  {}\nWaiting for it…",
                    started.authorize_url
                );
                return wait_for_account(app, service).await;
            }
            let link = if sandbox {
                mtp_app::sandbox_browser::approve(&started.authorize_url).await?
            } else {
                eprintln!(
                    "Approve MTP Desktop in your browser:\n  {}",
                    started.authorize_url
                );
                eprintln!(
                    "Your browser then goes to an app.mtp.desktop://app… address. If the desktop app is not running, paste that address here:"
                );
                let mut line = String::new();
                std::io::stdin().read_line(&mut line)?;
                line.trim().to_string()
            };
            let outcome = app.handle_deep_link(&link).await?;
            println!("{}", outcome.message);
            if !outcome.accepted {
                return Ok(ExitCode::from(1));
            }
        }
        AccountsCommand::Panoramax { url, token } => {
            let name = app.connect_panoramax(url, token).await?;
            println!("Panoramax connected as {name}.");
        }
        AccountsCommand::Token {
            service: Destination::Panoramax,
            ..
        } => {
            anyhow::bail!(
                "Panoramax tokens belong to an instance: mtp accounts panoramax --url URL --token TOKEN"
            );
        }
        AccountsCommand::Token {
            service,
            token,
            username,
        } => {
            if username.is_some() && service != Destination::Kartaview {
                anyhow::bail!(
                    "--username is for KartaView only: {} tells whose a token is by itself",
                    service.label()
                );
            }
            let token = match token {
                Some(t) => t,
                None => {
                    if std::io::stdin().is_terminal() {
                        eprintln!("Paste the {} access token:", service.label());
                    }
                    let mut line = String::new();
                    std::io::stdin().read_line(&mut line)?;
                    line
                }
            };
            let name = app
                .connect_with_token(service, &token, username.as_deref())
                .await?;
            if name.is_empty() {
                println!(
                    "{} connected with the token (give --username too to see your stats).",
                    service.label()
                );
            } else {
                println!("{} connected as {name}.", service.label());
            }
        }
        AccountsCommand::Logout { service } => {
            app.disconnect(service).await?;
            println!("{} disconnected.", service.label());
        }
        AccountsCommand::MtpwLink { answer: None } => {
            println!(
                "{}",
                match app.mtpw_mapillary_consent().await? {
                    None =>
                        "Not answered yet: Map the Paths Web jobs wait for `mtp accounts mtpw-link allow` (or deny).",
                    Some(true) =>
                        "Allowed: Map the Paths Web receives your Mapillary token to link your sequences.",
                    Some(false) =>
                        "Denied: your sequences are created on Map the Paths Web without a link to Mapillary.",
                }
            );
        }
        AccountsCommand::MtpwLink {
            answer: Some(answer),
        } => {
            let allow = matches!(answer, LinkAnswer::Allow);
            app.set_mtpw_mapillary_consent(allow).await?;
            println!(
                "{}",
                if allow {
                    "Allowed: Map the Paths Web jobs that were waiting link their sequences at the next `mtp upload` (or in the desktop app)."
                } else {
                    "Denied: Map the Paths Web sequences stay unlinked from Mapillary."
                }
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// What the service says the account holds, in a line; why not, when it could not say.
async fn stats_line(app: &App, service: Destination) -> Option<String> {
    let km = |km: f64| format!("{km:.1} km");
    let parts = match service {
        Destination::Mapillary => {
            let s = app.mapillary_stats().await?;
            let mut parts = Vec::new();
            parts.extend(s.images.map(|n| format!("{n} images")));
            parts.extend(s.km.map(km));
            parts
        }
        Destination::Kartaview => match app.kartaview_stats().await {
            Ok(s) => {
                let s = s?;
                let mut parts = Vec::new();
                parts.extend(s.photos.map(|n| format!("{n} photos")));
                parts.extend(s.km.map(km));
                parts.extend(s.tracks.map(|n| format!("{n} tracks")));
                parts.extend(s.overall_rank.map(|r| format!("rank #{r}")));
                parts.extend(s.weekly_rank.map(|r| format!("#{r} this week")));
                parts
            }
            Err(e) => return Some(e.message),
        },
        Destination::Panoramax => match app.panoramax_stats().await {
            Ok(s) => {
                let s = s?;
                let mut parts = vec![
                    format!("{} photos", s.photos),
                    km(s.km),
                    format!("{} sequences", s.sequences),
                ];
                if s.incomplete > 0 {
                    parts.push(format!("{} still processing", s.incomplete));
                }
                parts
            }
            Err(e) => return Some(e.message),
        },
        Destination::Mtpw => return None,
    };
    (!parts.is_empty()).then(|| parts.join(" · "))
}

/// Waits until the sign-in started in the background (loopback listener, Panoramax claim)
/// connects the account, or fails.
async fn wait_for_account(app: &mtp_app::App, service: Destination) -> anyhow::Result<ExitCode> {
    loop {
        let cards = app.integrations().await?;
        let card = cards
            .iter()
            .find(|c| c.service == service)
            .ok_or_else(|| anyhow::anyhow!("no card for {service}"))?;
        match &card.sign_in {
            None if card.connected_as.is_some() => {
                println!(
                    "{} connected as {}.",
                    service.label(),
                    card.connected_as.clone().unwrap_or_default()
                );
                return Ok(ExitCode::SUCCESS);
            }
            Some(s) if s.phase == mtp_app::signin::SignInPhase::Failed => {
                eprintln!("{}", s.message.clone().unwrap_or_default());
                return Ok(ExitCode::from(1));
            }
            None => {
                eprintln!("{} sign-in was cancelled.", service.label());
                return Ok(ExitCode::from(1));
            }
            Some(_) => tokio::time::sleep(std::time::Duration::from_millis(200)).await,
        }
    }
}
