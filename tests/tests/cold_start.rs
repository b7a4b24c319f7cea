//! Cold start to first paint of the desktop app: a measurement, not a test (there is no
//! timed assertion). `bench/cold-start.sh` runs it against the release build under Xvfb and
//! prints the table `bench/README.md` keeps.
//!
//! Each run starts the app through tauri-driver with a fresh data directory, as a first
//! start would be, and reads back from the page:
//! - `performance.timeOrigin`: when the web view started loading the page;
//! - the `first-contentful-paint` entry, if WebKit reports one;
//! - the `mtp-first-paint` mark the UI sets after the first screen, with its data, was
//!   painted (ui/src/main.ts).
//!
//! Times count from the app process's start (`/proc/<pid>/stat`, 10 ms ticks), so
//! tauri-driver's and WebKitWebDriver's own start-up are not in them.

use anyhow::{Context, Result, bail};
use mtp_tests::desktop::Desktop;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[tokio::test]
#[ignore = "a measurement, not a test: run bench/cold-start.sh"]
async fn cold_start_to_first_paint() -> Result<()> {
    let runs: usize = std::env::var("MTP_COLD_START_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    println!("binary: {}", mtp_tests::desktop::app_binary().display());
    println!("| run | page load starts | first contentful paint | first screen painted |");
    println!("|---|---|---|---|");
    let mut firsts = Vec::new();
    for run in 1..=runs {
        let app = Desktop::launch(&[]).await?;
        let pid = app.app_pid().context("cannot find the app's process")?;
        let started = process_start_epoch_ms(pid)?;
        let marks = wait_for_mark(&app).await?;
        app.quit().await?;
        let origin = marks[0].as_f64().context("no timeOrigin")?;
        let fcp = marks[1].as_f64();
        let first = marks[2].as_f64().context("no mark")?;
        let ms = |t: f64| format!("{:.0} ms", t - started);
        println!(
            "| {run} | {} | {} | {} |",
            ms(origin),
            fcp.map_or("—".to_string(), |t| ms(origin + t)),
            ms(origin + first)
        );
        firsts.push(origin + first - started);
        // Let the previous app's processes go before the next cold start.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    firsts.sort_by(f64::total_cmp);
    println!(
        "median first screen painted: {:.0} ms (min {:.0}, max {:.0}, {runs} runs)",
        firsts[firsts.len() / 2],
        firsts[0],
        firsts[firsts.len() - 1]
    );
    Ok(())
}

/// `[timeOrigin, first-contentful-paint or null, mtp-first-paint]`, once the mark is set.
async fn wait_for_mark(app: &Desktop) -> Result<Vec<serde_json::Value>> {
    const READ: &str = r#"
const mark = performance.getEntriesByName('mtp-first-paint')[0];
if (!mark) return null;
const fcp = performance.getEntriesByName('first-contentful-paint')[0];
return [performance.timeOrigin, fcp ? fcp.startTime : null, mark.startTime];
"#;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = app.client.execute(READ, vec![]).await?.as_array() {
            return Ok(v.clone());
        }
        if Instant::now() > deadline {
            bail!("the UI never set its mtp-first-paint mark");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// When the process started, in ms since the epoch: its start in clock ticks since boot
/// (field 22 of /proc/<pid>/stat), placed on the wall clock through /proc/uptime.
fn process_start_epoch_ms(pid: u32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name (field 2) may hold spaces: count from the closing parenthesis.
    let after_name = stat.rsplit_once(')').context("odd /proc stat")?.1;
    let ticks: f64 = after_name
        .split_whitespace()
        .nth(19)
        .context("no starttime")?
        .parse()?;
    let uptime: f64 = std::fs::read_to_string("/proc/uptime")?
        .split_whitespace()
        .next()
        .context("odd /proc/uptime")?
        .parse()?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs_f64();
    // USER_HZ is 100 on every Linux this runs on.
    Ok((now - uptime + ticks / 100.0) * 1000.0)
}
