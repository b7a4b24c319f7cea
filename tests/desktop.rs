//! Drives the real desktop app in a real window through tauri-driver + WebKitWebDriver.
//! Run under Xvfb and a private D-Bus session (`make e2e` does both).

use anyhow::{Context, Result, bail};
use fantoccini::{Client, ClientBuilder, Locator};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The debug build of the desktop app, unless MTP_APP_BINARY says otherwise (`make
/// e2e-release` points it at the release build).
pub fn app_binary() -> PathBuf {
    std::env::var_os("MTP_APP_BINARY")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let target = std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| crate::workspace_root().join("target"));
            target.join("debug/mtp-desktop")
        })
}

fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// One running app with its own data directory and its own D-Bus session (so that
/// single-instance hand-over stays between this app and its own second launches), driven
/// over WebDriver.
pub struct Desktop {
    pub client: Client,
    driver: Child,
    bus: Child,
    pub data_dir: tempfile::TempDir,
    pub env: Vec<(String, String)>,
}

impl Desktop {
    /// Starts tauri-driver, which starts the app with `env` added to a clean test environment
    /// (fresh data dir, sandbox mode, no handler registration in $HOME, a settings file of
    /// its own), and closes the first-run screen if it comes.
    pub async fn launch(env: &[(&str, &str)]) -> Result<Desktop> {
        let desktop = Desktop::launch_first_run(env).await?;
        if desktop.welcome_state().await? == "shown" {
            desktop.click("#welcome-start").await?;
            desktop
                .wait_for(
                    Locator::Css("body[data-welcome='seen']"),
                    Duration::from_secs(10),
                )
                .await?;
        }
        Ok(desktop)
    }

    /// What became of the first-run screen once the app booted: `shown`, `seen` (closed at
    /// an earlier start) or `none` (the app could not open its data).
    pub async fn welcome_state(&self) -> Result<String> {
        let el = self
            .wait_for(Locator::Css("body[data-welcome]"), Duration::from_secs(30))
            .await?;
        Ok(el.attr("data-welcome").await?.unwrap_or_default())
    }

    /// [`Self::launch`], leaving the first-run screen as it comes.
    pub async fn launch_first_run(env: &[(&str, &str)]) -> Result<Desktop> {
        let app = app_binary();
        if !app.exists() {
            bail!(
                "{} does not exist: build it with `make build`",
                app.display()
            );
        }
        let data_dir = tempfile::tempdir()?;
        let (bus, bus_address) = private_bus()?;
        let mut bus_guard = DriverGuard(Some(bus));
        let mut all_env: Vec<(String, String)> = vec![
            ("DBUS_SESSION_BUS_ADDRESS".into(), bus_address),
            ("MTP_DATA_DIR".into(), data_dir.path().display().to_string()),
            ("MTP_SKIP_REGISTER".into(), "1".into()),
            ("MTP_SANDBOX".into(), "1".into()),
            ("NO_AT_BRIDGE".into(), "1".into()),
            // Never the settings of the person running the tests.
            (
                "MTP_SETTINGS_FILE".into(),
                data_dir.path().join("settings.env").display().to_string(),
            ),
        ];
        for (k, v) in env {
            all_env.retain(|(key, _)| key != k);
            all_env.push((k.to_string(), v.to_string()));
        }
        let (mut desktop_driver, url) = start_driver(&all_env).await?;

        let mut caps = serde_json::Map::new();
        caps.insert(
            "tauri:options".into(),
            serde_json::json!({ "application": app.display().to_string() }),
        );
        let client = connect(&url, caps).await?;
        let driver = desktop_driver.0.take().context("driver vanished")?;
        let bus = bus_guard.0.take().context("bus vanished")?;
        let desktop = Desktop {
            client,
            driver,
            bus,
            data_dir,
            env: all_env,
        };
        desktop
            .wait_for(Locator::Css(".nav-item"), Duration::from_secs(30))
            .await?;
        Ok(desktop)
    }

    /// Clicks the element `css` selects, looking it up again for as long as the page
    /// re-renders it under our hands (a stale or vanished node, or one not clickable yet),
    /// up to 15 s. Never clicks a node found before the last re-render.
    pub async fn click(&self, css: &str) -> Result<()> {
        self.on_element(css, |el| async move { el.click().await.map(|_| ()) })
            .await
            .with_context(|| format!("click {css}"))
    }

    /// Types `text` into the field `css` selects, robust to re-rendering like [`Self::click`].
    pub async fn type_into(&self, css: &str, text: &str) -> Result<()> {
        self.on_element(css, |el| async move { el.send_keys(text).await })
            .await
            .with_context(|| format!("type into {css}"))
    }

    /// Replaces the text of the field `css` selects (clears it first), robust to
    /// re-rendering like [`Self::click`].
    pub async fn replace_text(&self, css: &str, text: &str) -> Result<()> {
        self.on_element(css, |el| async move {
            el.clear().await?;
            el.send_keys(text).await
        })
        .await
        .with_context(|| format!("replace the text of {css}"))
    }

    /// Runs `act` on a freshly found `css` element; when the element went stale, vanished
    /// or could not be interacted with, finds it again and retries until 15 s have passed.
    async fn on_element<'a, F, Fut>(&self, css: &str, act: F) -> Result<()>
    where
        F: Fn(fantoccini::elements::Element) -> Fut,
        Fut: std::future::Future<Output = Result<(), fantoccini::error::CmdError>> + 'a,
    {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let outcome = match self.client.find(Locator::Css(css)).await {
                Ok(el) => act(el).await,
                Err(e) => Err(e),
            };
            match outcome {
                Ok(()) => return Ok(()),
                Err(e) if Instant::now() > deadline || !is_transient(&e) => {
                    return Err(e.into());
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    pub async fn wait_for(
        &self,
        loc: Locator<'_>,
        timeout: Duration,
    ) -> Result<fantoccini::elements::Element> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.client.find(loc).await {
                Ok(el) => return Ok(el),
                Err(e) if Instant::now() > deadline => {
                    return Err(e).context(format!("{loc:?} never appeared"));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    /// Runs `body` (the body of an async JS function) in the page and returns what it
    /// resolves to. The work starts from one short script and its result is fetched by
    /// further short scripts, never by one `execute_async` held open for seconds: that is
    /// what WebKitWebDriver drops now and then with "Could not parse script result".
    pub async fn run_in_page(&self, body: &str, timeout: Duration) -> Result<serde_json::Value> {
        let start = format!(
            "const key = arguments[0];
            const box = (window.__mtpTestRuns = window.__mtpTestRuns || {{}});
            box[key] = null;
            (async () => {{ {body} }})().then(
              (value) => {{ box[key] = {{ value: value === undefined ? null : value }}; }},
              (e) => {{ box[key] = {{ error: String(e && e.stack || e) }}; }});
            return true;"
        );
        static RUNS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let key = format!(
            "run-{}",
            RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        self.client
            .execute(&start, vec![serde_json::json!(key)])
            .await
            .context("starting a script in the page")?;
        let deadline = Instant::now() + timeout;
        let mut lost_reads = 0;
        loop {
            // Not too often: the page may be measuring its own frames meanwhile.
            tokio::time::sleep(Duration::from_millis(200)).await;
            // Reading leaves the result in place, so a read whose reply is lost is read again.
            let got = match self
                .client
                .execute(
                    "const r = (window.__mtpTestRuns || {})[arguments[0]]; return r || null;",
                    vec![serde_json::json!(key)],
                )
                .await
            {
                Ok(got) => got,
                Err(e) if lost_reads < 3 => {
                    lost_reads += 1;
                    eprintln!("reading a script's result again after: {e}");
                    continue;
                }
                Err(e) => return Err(e).context("reading a script's result from the page"),
            };
            if let Some(error) = got.get("error") {
                bail!("the script failed in the page: {error}");
            }
            if let Some(value) = got.get("value") {
                return Ok(value.clone());
            }
            if Instant::now() > deadline {
                bail!("the script did not finish in {timeout:?}");
            }
        }
    }

    /// Waits until the element's text contains `needle`; returns the text.
    pub async fn wait_for_text(
        &self,
        css: &str,
        needle: &str,
        timeout: Duration,
    ) -> Result<String> {
        let deadline = Instant::now() + timeout;
        let mut last = String::new();
        loop {
            if let Ok(el) = self.client.find(Locator::Css(css)).await
                && let Ok(text) = el.text().await
            {
                if text.contains(needle) {
                    return Ok(text);
                }
                last = text;
            }
            if Instant::now() > deadline {
                bail!("{css} never contained {needle:?}; last text: {last:?}");
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }

    /// Saves a screenshot of the window under artifacts/screenshots/ (or the folder of
    /// artifacts/ MTP_SCREENSHOTS names, so that a run against another build keeps its own).
    pub async fn screenshot(&self, name: &str) -> Result<PathBuf> {
        // Let WebKit paint what the DOM already shows.
        tokio::time::sleep(Duration::from_millis(400)).await;
        let png = self.client.screenshot().await?;
        let kind = std::env::var("MTP_SCREENSHOTS").unwrap_or_else(|_| "screenshots".into());
        let path = crate::artifacts_dir(&kind).join(format!("{name}.png"));
        std::fs::write(&path, png)?;
        Ok(path)
    }

    /// Resizes the window (the web view's viewport follows: there are no decorations under
    /// Xvfb) and waits until the page has laid itself out at the new size.
    pub async fn resize(&self, width: u32, height: u32) -> Result<()> {
        self.client
            .set_window_size(width, height)
            .await
            .with_context(|| format!("resize to {width}x{height}"))?;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let v = self
                .client
                .execute("return [window.innerWidth, window.innerHeight];", vec![])
                .await?;
            let (w, h) = (v[0].as_u64().unwrap_or(0), v[1].as_u64().unwrap_or(0));
            if w == u64::from(width) && h == u64::from(height) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("the window is {w}x{h}, not {width}x{height}, after resizing");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// What a person would see as broken on the current screen: a horizontal scroll, a
    /// squeezed progress bar, text running over its neighbour or out of its box.
    pub async fn layout_problems(&self) -> Result<Vec<String>> {
        let v = self.client.execute(LAYOUT_CHECK, vec![]).await?;
        Ok(v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Screenshots the current screen at the window's minimum size (900 × 600) and at
    /// 1920 × 1080, as `<name>-900x600.png` and `<name>-1920x1080.png`, and fails on any
    /// layout problem at either size. Leaves the window at its default 1200 × 780.
    pub async fn screenshots(&self, name: &str) -> Result<()> {
        let mut problems = Vec::new();
        for (w, h) in [(900, 600), (1920, 1080)] {
            self.resize(w, h).await?;
            self.screenshot(&format!("{name}-{w}x{h}")).await?;
            problems.extend(
                self.layout_problems()
                    .await?
                    .into_iter()
                    .map(|p| format!("{name} at {w}x{h}: {p}")),
            );
        }
        self.resize(1200, 780).await?;
        if !problems.is_empty() {
            bail!("layout problems:\n{}", problems.join("\n"));
        }
        Ok(())
    }

    /// Runs the app binary a second time with `args`, in the same environment, and returns
    /// its exit status (single instance: it should hand over and exit).
    pub fn second_instance(
        &self,
        args: &[&str],
        timeout: Duration,
    ) -> Result<std::process::ExitStatus> {
        let mut cmd = Command::new(app_binary());
        cmd.args(args).stdin(Stdio::null());
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn()?;
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                bail!(
                    "the second instance did not exit within {timeout:?}: single-instance hand-over failed"
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub async fn quit(mut self) -> Result<()> {
        // Nothing the page did may have been blocked by its Content-Security-Policy.
        if let Ok(v) = self
            .client
            .execute("return (window.__cspViolations || []).join('\\n');", vec![])
            .await
            && let Some(blocked) = v.as_str().filter(|s| !s.is_empty())
        {
            let blocked = blocked.to_string();
            let _ = self.client.clone().close().await;
            self.stop_all();
            bail!("the page broke its Content-Security-Policy: {blocked}");
        }
        let res = self.client.clone().close().await;
        self.stop_all();
        res.map_err(Into::into)
    }

    /// Stops the driver, every app process started with this data dir, and the bus.
    fn stop_all(&mut self) {
        terminate(&mut self.driver);
        kill_apps_using(&self.app_data_dir());
        terminate(&mut self.bus);
    }

    pub fn data_path(&self) -> &Path {
        self.data_dir.path()
    }

    /// The data folder the app was started with (MTP_DATA_DIR: the harness's own, unless
    /// the test named another).
    fn app_data_dir(&self) -> PathBuf {
        self.env
            .iter()
            .find(|(k, _)| k == "MTP_DATA_DIR")
            .map(|(_, v)| PathBuf::from(v))
            .unwrap_or_else(|| self.data_dir.path().to_path_buf())
    }

    /// The process id of the app itself (not the driver or WebKit's helper processes).
    pub fn app_pid(&self) -> Option<u32> {
        let app = std::fs::canonicalize(app_binary()).ok()?;
        pids_using(&self.app_data_dir())
            .into_iter()
            .find(|pid| std::fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|exe| exe == app))
    }
}

impl Drop for Desktop {
    fn drop(&mut self) {
        self.stop_all();
    }
}

/// Finds what would look broken: run in the page, returns a list of descriptions.
const LAYOUT_CHECK: &str = r#"
const problems = [];
const visible = (el) => el.offsetParent !== null && el.getClientRects().length > 0;
const label = (el) => (el.id ? '#' + el.id : el.className ? '.' + String(el.className).split(' ')[0] : el.tagName)
  + ' "' + (el.textContent || '').trim().slice(0, 40) + '"';
const main = document.getElementById('main');
if (main.scrollWidth > main.clientWidth + 1) problems.push('the page scrolls sideways (' + main.scrollWidth + ' > ' + main.clientWidth + ' px)');
for (const bar of document.querySelectorAll('.job .progress')) {
  if (!visible(bar)) continue;
  const w = bar.getBoundingClientRect().width;
  if (w < 120) problems.push('a progress bar is only ' + Math.round(w) + ' px wide');
}
const overlap = (a, b) => a.width > 0 && b.width > 0 && a.left < b.right - 1 && b.left < a.right - 1 && a.top < b.bottom - 1 && b.top < a.bottom - 1;
for (const row of document.querySelectorAll('.job')) {
  if (!visible(row)) continue;
  const parts = [...row.querySelectorAll('.job-dest, .job-status, .job-numbers, .job-speed, .job-link > *, .job-actions > *')].filter(visible);
  for (let i = 0; i < parts.length; i++) for (let j = i + 1; j < parts.length; j++) {
    if (parts[i].contains(parts[j]) || parts[j].contains(parts[i])) continue;
    if (overlap(parts[i].getBoundingClientRect(), parts[j].getBoundingClientRect())) problems.push(label(parts[i]) + ' overlaps ' + label(parts[j]));
  }
}
for (const el of document.querySelectorAll('button, .job-status, .mode-banner, .plan-stats, .card, .plan-seq, .save-form, .rescue, .left-out, .warn-box, .notice, .dialog, .map-legend')) {
  if (!visible(el)) continue;
  const cs = getComputedStyle(el);
  if (cs.textOverflow === 'ellipsis' || cs.overflowX === 'auto' || cs.overflowX === 'scroll') continue;
  if (el.scrollWidth > el.clientWidth + 2) problems.push(label(el) + ' overflows its box (' + el.scrollWidth + ' > ' + el.clientWidth + ' px)');
}
return problems;
"#;

/// A D-Bus session bus of our own: `dbus-daemon --session --print-address`.
/// WebDriver errors that a re-render explains: look the element up again and retry.
fn is_transient(e: &fantoccini::error::CmdError) -> bool {
    e.is_stale_element_reference()
        || e.is_no_such_element()
        || e.is_element_not_interactable()
        || matches!(e, fantoccini::error::CmdError::Standard(w)
            if w.error == fantoccini::error::ErrorStatus::ElementClickIntercepted)
        // WebKitWebDriver's words for a node removed by a re-render.
        || e.to_string().contains("was not found")
}

fn private_bus() -> Result<(Child, String)> {
    use std::io::BufRead;
    let mut child = Command::new("dbus-daemon")
        .args(["--session", "--nofork", "--print-address=1"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("cannot start dbus-daemon (install the dbus package: `make deps`)")?;
    let stdout = child.stdout.take().context("dbus-daemon has no stdout")?;
    let mut line = String::new();
    std::io::BufReader::new(stdout).read_line(&mut line)?;
    let address = line.trim().to_string();
    if address.is_empty() {
        let _ = child.kill();
        bail!("dbus-daemon printed no address");
    }
    Ok((child, address))
}

/// Apps that outlive their WebDriver session (e.g. still shutting down) would capture the
/// next test's launches through single-instance: find them by their data dir and stop them.
fn kill_apps_using(data_dir: &Path) {
    for pid in pids_using(data_dir) {
        let _ = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
    }
}

/// Every process started with this data dir in its environment: the app, and also the
/// driver, WebKitWebDriver and the web processes, which inherit it.
fn pids_using(data_dir: &Path) -> Vec<u32> {
    let needle = format!("MTP_DATA_DIR={}", data_dir.display());
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let pid = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let environ = std::fs::read(entry.path().join("environ")).ok()?;
            environ
                .split(|b| *b == 0)
                .any(|var| var == needle.as_bytes())
                .then_some(pid)
        })
        .collect()
}

struct DriverGuard(Option<Child>);

impl Drop for DriverGuard {
    fn drop(&mut self) {
        if let Some(child) = self.0.as_mut() {
            terminate(child);
        }
    }
}

/// SIGTERM, not SIGKILL: tauri-driver only stops WebKitWebDriver on a catchable signal.
fn terminate(child: &mut Child) {
    if let Ok(None) = child.try_wait() {
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// tauri-driver on two free ports, ready, and its address. A port found free can be taken
/// before WebKitWebDriver binds it (seen once in CI: "Unable to listen for HTTP server",
/// after which tauri-driver spins on accept errors, writing a line each time): the driver
/// is then stopped and started again on other ports, up to three times. Its standard
/// output (those lines) is dropped; its errors stay in the test's output.
async fn start_driver(env: &[(String, String)]) -> Result<(DriverGuard, String)> {
    let mut last = None;
    for _ in 0..3 {
        let port = free_port()?;
        let native_port = free_port()?;
        let mut cmd = Command::new("tauri-driver");
        cmd.args([
            "--port",
            &port.to_string(),
            "--native-port",
            &native_port.to_string(),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let driver = cmd
            .spawn()
            .context("cannot start tauri-driver: install it with `make deps`")?;
        let guard = DriverGuard(Some(driver));
        let url = format!("http://127.0.0.1:{port}");
        match wait_until_ready(&url, Duration::from_secs(20)).await {
            Ok(()) => return Ok((guard, url)),
            Err(e) => {
                eprintln!("{e}: starting it again on other ports");
                last = Some(e);
            }
        }
    }
    Err(last.unwrap_or_else(|| anyhow::anyhow!("tauri-driver never started")))
}

/// tauri-driver answers before WebKitWebDriver listens: poll /status until ready.
async fn wait_until_ready(url: &str, within: Duration) -> Result<()> {
    let http = reqwest::Client::new();
    let deadline = Instant::now() + within;
    loop {
        if let Ok(resp) = http.get(format!("{url}/status")).send().await
            && let Ok(v) = resp.json::<serde_json::Value>().await
            && v["value"]["ready"].as_bool() == Some(true)
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("tauri-driver at {url} never became ready");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn connect(url: &str, caps: serde_json::Map<String, serde_json::Value>) -> Result<Client> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let attempt = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps.clone())
            .connect(url)
            .await;
        match attempt {
            Ok(c) => return Ok(c),
            Err(e) if Instant::now() > deadline => {
                return Err(e).context("cannot open a WebDriver session");
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}
