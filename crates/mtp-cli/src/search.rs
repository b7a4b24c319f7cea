//! `mtp search`: what is already on the services in an area, as one GeoJSON
//! FeatureCollection (a Point per image, a LineString per sequence).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use mtp_app::App;
use mtp_app::explore::{ExploreProgress, ExploreQuery, Near, SEARCHABLE, ServiceState, UserFilter};
use mtp_core::Destination;
use mtp_providers::search::Bbox;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Which {
    Mapillary,
    Kartaview,
    Panoramax,
    All,
}

#[derive(Debug, Args)]
pub struct SearchArgs {
    /// The service to search, or all three.
    which: Which,
    /// The area: minLon,minLat,maxLon,maxLat.
    #[arg(long, allow_hyphen_values = true, conflicts_with = "near")]
    bbox: Option<String>,
    /// The area: a place (lat,lon), with --radius.
    #[arg(long, allow_hyphen_values = true, requires = "radius")]
    near: Option<String>,
    /// Metres around --near.
    #[arg(long, requires = "near")]
    radius: Option<f64>,
    /// Captured from this day (YYYY-MM-DD) or time (RFC 3339).
    #[arg(long)]
    from: Option<String>,
    /// Captured up to this day (inclusive) or time.
    #[arg(long)]
    to: Option<String>,
    /// Only this user's images; `me` is your account on each service.
    #[arg(long)]
    user: Option<String>,
    /// Only 360° images.
    #[arg(long)]
    pano: bool,
    /// Stop after this many images in all.
    #[arg(long)]
    limit: Option<usize>,
    /// Write the GeoJSON here (default: standard output).
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// Print when the first and the last images arrived (for bench/explore.sh).
    #[arg(long, hide = true)]
    timings: bool,
}

fn parse_near(text: &str, radius: f64) -> anyhow::Result<Near> {
    let parts: Vec<f64> = text
        .split(',')
        .map(|p| p.trim().parse::<f64>())
        .collect::<Result<_, _>>()
        .ok()
        .filter(|v: &Vec<f64>| v.len() == 2)
        .with_context(|| format!("--near {text:?}: write lat,lon, e.g. --near 48.8566,2.3522"))?;
    Ok(Near {
        lat: parts[0],
        lon: parts[1],
        radius_m: radius,
    })
}

fn query(args: &SearchArgs) -> anyhow::Result<ExploreQuery> {
    let services = match args.which {
        Which::Mapillary => vec![Destination::Mapillary],
        Which::Kartaview => vec![Destination::Kartaview],
        Which::Panoramax => vec![Destination::Panoramax],
        Which::All => SEARCHABLE.to_vec(),
    };
    let bbox = args
        .bbox
        .as_deref()
        .map(|b| Bbox::parse(b).map_err(|e| anyhow::anyhow!("--bbox: {e}")))
        .transpose()?;
    let near = match (&args.near, args.radius) {
        (Some(n), Some(r)) => Some(parse_near(n, r)?),
        _ => None,
    };
    if bbox.is_none() && near.is_none() {
        bail!(
            "say where to search: --bbox minLon,minLat,maxLon,maxLat, or --near lat,lon --radius METRES"
        );
    }
    let user = match args.user.as_deref().map(str::trim) {
        None | Some("") => UserFilter::Anyone,
        Some(u) if u.eq_ignore_ascii_case("me") => UserFilter::Me,
        Some(u) => UserFilter::Named(u.to_owned()),
    };
    Ok(ExploreQuery {
        services,
        bbox,
        near,
        from: args.from.clone(),
        to: args.to.clone(),
        user,
        pano_only: args.pano,
        limit: args.limit,
    })
}

pub async fn search(app: &App, args: SearchArgs) -> anyhow::Result<ExitCode> {
    let query = query(&args)?;
    let id = app.new_search();
    let found = AtomicUsize::new(0);
    let started = std::time::Instant::now();
    let first = std::sync::OnceLock::new();
    let on = |p: ExploreProgress| {
        let total = found.fetch_add(p.images.len(), Ordering::SeqCst) + p.images.len();
        if !p.images.is_empty() {
            first.get_or_init(|| started.elapsed());
            eprint!("\r{total} images found…");
        }
        if let Some(o) = p.outcome.filter(|o| o.state == ServiceState::Running) {
            eprintln!("\rSearching {}…", o.service.label());
        }
    };
    let cancel = {
        let app = app.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("\rStopping; keeping what was found so far.");
                app.cancel_search(id);
            }
        })
    };
    let result = app.explore(id, &query, &on).await;
    cancel.abort();
    let result = result?;
    let all = started.elapsed();
    eprintln!();
    if args.timings {
        let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
        eprintln!(
            "timings: first_ms={:.1} all_ms={:.1} images={}",
            first.get().copied().map_or(f64::NAN, ms),
            ms(all),
            result.images
        );
    }
    let images = app.search_images(id).unwrap_or_default();
    let features = match &args.output {
        Some(path) => mtp_app::explore::write_geojson(&images, path).await?,
        None => {
            let out = std::io::BufWriter::new(std::io::stdout().lock());
            let count = mtp_app::explore::write_geojson_to(&images, out)?;
            println!();
            count
        }
    };
    let mut failed = false;
    for o in &result.services {
        let what = match o.state {
            ServiceState::Done => format!("{} images", o.images),
            ServiceState::Stopped => format!("{} images (stopped)", o.images),
            ServiceState::Skipped => "not searched".into(),
            ServiceState::Failed => {
                failed = true;
                "failed".into()
            }
            ServiceState::Running => "still running".into(),
        };
        let waits = if o.rate_limited > 0 {
            format!(", waited {} times for its rate limit", o.rate_limited)
        } else {
            String::new()
        };
        eprintln!(
            "{}: {what} ({} requests{waits})",
            o.service.label(),
            o.requests
        );
        for line in o.message.iter().chain(&o.incomplete) {
            eprintln!("  {line}");
        }
    }
    if result.limited {
        eprintln!(
            "Stopped at --limit {}.",
            query.limit.unwrap_or(result.images)
        );
    }
    if let Some(path) = &args.output {
        eprintln!(
            "Wrote {features} features ({} images) to {}",
            result.images,
            path.display()
        );
    }
    // Partial results are written either way; the code tells a script something is missing.
    Ok(if failed {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    })
}
