//! The soak driver of `scripts/soak`: software authenticators run whole
//! user journeys against two instances of the axum example that share
//! PostgreSQL and Redis, then the stores are checked for every passkey link
//! and credential the journeys wrote.
//!
//! A journey: sign up (device 1), `/api/me`, log out, log in, step up and
//! `POST /api/sensitive`, add a second passkey (device 2), delete the first
//! one, log out, log in with device 2, log out: three sign-ins. Every
//! request goes to the other instance than the one before.
//!
//! Restart policy: a request whose connection is refused (the instance is
//! down, nothing was sent) is retried once on the other instance and counted
//! as a failover, not an error. A transport failure after the request was
//! sent (the instance died with it in flight) abandons the journey and
//! counts as interrupted; its rows are not checked. Every other failure
//! (an unexpected status, a body that does not parse) is an error.
//!
//! ```text
//! soak-driver --a http://127.0.0.1:PORT_A --b http://127.0.0.1:PORT_B \
//!     --origin http://localhost:3000 --database-url postgres://... \
//!     [--duration 60s] [--rate 1000] [--concurrency 64]
//! ```
//!
//! Exits non-zero when there was an error or an inconsistency.
//!
//! One-journey mode, for the README app (`scripts/readme-app`):
//!
//! ```text
//! soak-driver --readme http://127.0.0.1:PORT --origin http://localhost:PORT
//! ```
//!
//! signs up, reads `GET /account`, logs out, logs in, steps up and calls
//! `POST /account/delete` (the README's `StepUp<300>` route), logs out, and
//! checks every answer; exits non-zero at the first unexpected one.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use passlock_test::authenticator::SoftAuthenticator;
use serde_json::{Value, json};
use tokio::sync::{Mutex, Semaphore};

type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Command-line settings.
#[derive(Debug, Clone)]
struct Args {
    instances: [String; 2],
    origin: String,
    database_url: String,
    duration: Duration,
    /// Sign-ins per minute.
    rate: u64,
    concurrency: usize,
}

fn parse_duration(s: &str) -> Result<Duration, BoxError> {
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num.parse()?;
    Ok(match unit {
        "" | "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n * 60),
        "ms" => Duration::from_millis(n),
        _ => return Err(format!("bad duration {s:?}").into()),
    })
}

fn parse_args() -> Result<Args, BoxError> {
    let mut map = BTreeMap::new();
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        map.insert(flag, value);
    }
    let get = |k: &str| map.get(k).cloned().ok_or(format!("missing {k}"));
    Ok(Args {
        instances: [get("--a")?, get("--b")?],
        origin: get("--origin")?,
        database_url: get("--database-url")?,
        duration: parse_duration(map.get("--duration").map_or("600s", String::as_str))?,
        rate: map.get("--rate").map_or(Ok(1000), |r| r.parse())?,
        concurrency: map.get("--concurrency").map_or(Ok(64), |c| c.parse())?,
    })
}

/// Counters and latencies of the whole run.
#[derive(Debug, Default)]
struct Stats {
    requests: AtomicU64,
    sign_ins: AtomicU64,
    journeys_done: AtomicU64,
    failovers: AtomicU64,
    interrupted: AtomicU64,
    errors: AtomicU64,
    request_ms: Mutex<Vec<f64>>,
    sign_in_ms: Mutex<Vec<f64>>,
    error_samples: Mutex<Vec<String>>,
}

impl Stats {
    async fn error(&self, what: String) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        let mut samples = self.error_samples.lock().await;
        if samples.len() < 20 {
            samples.push(what);
        }
    }
}

/// What the journeys left: per user, the passkeys that must exist and the
/// ones that must be gone.
#[derive(Debug, Default)]
struct Expected {
    live: Vec<(String, String, String)>,
    deleted: Vec<String>,
    users: Vec<(String, String)>,
}

/// Why a journey stopped early.
#[derive(Debug)]
enum Stop {
    /// The instance died with the request in flight.
    Interrupted,
    /// An application-level error.
    Error(String),
}

/// One browser: a cookie jar (the session, and the sign-up ticket while a
/// sign-up is pending) kept as one `Cookie` header value, alternating
/// instances.
struct Browser {
    http: reqwest::Client,
    args: Arc<Args>,
    stats: Arc<Stats>,
    cookie: Option<String>,
    turn: usize,
    /// The client address this browser poses as (`x-forwarded-for`: the
    /// instances trust it, as behind a load balancer).
    address: String,
    /// The body of the last answer, as text.
    last_text: String,
}

impl Browser {
    /// Keeps a cookie the server set; an empty value removes it.
    fn keep_cookie(&mut self, name: &str, value: &str) {
        let mut pairs: Vec<String> = self
            .cookie
            .as_deref()
            .unwrap_or("")
            .split("; ")
            .filter(|p| !p.is_empty() && p.split_once('=').is_none_or(|(n, _)| n != name))
            .map(str::to_owned)
            .collect();
        if !value.is_empty() {
            pairs.push(format!("{name}={value}"));
        }
        self.cookie = (!pairs.is_empty()).then(|| pairs.join("; "));
    }

    /// Sends one JSON request to the next instance; fails over on a refused
    /// connection.
    async fn send(
        &mut self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<(u16, Value), Stop> {
        let first = self.turn % 2;
        self.turn += 1;
        let mut attempt = 0;
        loop {
            let base = &self.args.instances[(first + attempt) % 2];
            let method_ = reqwest::Method::from_bytes(method.as_bytes())
                .map_err(|e| Stop::Error(e.to_string()))?;
            let mut req = self
                .http
                .request(method_, format!("{base}{path}"))
                .header("origin", &self.args.origin)
                .header("x-forwarded-for", &self.address);
            if let Some(c) = &self.cookie {
                req = req.header("cookie", c);
            }
            if let Some(b) = &body {
                req = req
                    .header("content-type", "application/json")
                    .body(b.to_string());
            }
            let started = Instant::now();
            match req.send().await {
                Ok(res) => {
                    let status = res.status().as_u16();
                    for set in res.headers().get_all("set-cookie") {
                        if let Ok(set) = set.to_str()
                            && let Some((name, value)) =
                                set.split(';').next().and_then(|p| p.split_once('='))
                        {
                            self.keep_cookie(name, value);
                        }
                    }
                    let bytes = res.bytes().await.map_err(|_| Stop::Interrupted)?;
                    let ms = started.elapsed().as_secs_f64() * 1000.0;
                    self.stats.requests.fetch_add(1, Ordering::Relaxed);
                    self.stats.request_ms.lock().await.push(ms);
                    self.last_text = String::from_utf8_lossy(&bytes).into_owned();
                    let json = if bytes.is_empty() {
                        Value::Null
                    } else {
                        serde_json::from_slice(&bytes).unwrap_or(Value::Null)
                    };
                    return Ok((status, json));
                }
                Err(e) if e.is_connect() && attempt == 0 => {
                    self.stats.failovers.fetch_add(1, Ordering::Relaxed);
                    attempt += 1;
                }
                Err(e) if e.is_connect() => {
                    return Err(Stop::Error(format!(
                        "{method} {path}: both instances refused"
                    )));
                }
                Err(_) => return Err(Stop::Interrupted),
            }
        }
    }

    async fn expect(
        &mut self,
        method: &str,
        path: &str,
        body: Option<Value>,
        want: &[u16],
    ) -> Result<Value, Stop> {
        let (status, json) = self.send(method, path, body).await?;
        if want.contains(&status) {
            Ok(json)
        } else {
            Err(Stop::Error(format!("{method} {path}: {status} {json}")))
        }
    }

    /// The path of the passkey service from an authorize answer (its
    /// endpoint is the public origin's).
    fn service_path(&self, answer: &Value) -> Result<String, Stop> {
        let endpoint = answer["endpoint"].as_str().unwrap_or_default();
        let tenancy = answer["tenancyId"].as_str().unwrap_or_default();
        let path = endpoint.strip_prefix(&self.args.origin).unwrap_or(endpoint);
        if tenancy.is_empty() {
            return Err(Stop::Error(format!("authorize answer: {answer}")));
        }
        Ok(format!("{path}/v2/{tenancy}/passkey"))
    }

    /// Registration ceremony (authorize with `body`, options, create,
    /// verification) then `/passkey/register`; returns its answer.
    async fn register(&mut self, auth: &mut SoftAuthenticator, body: Value) -> Result<Value, Stop> {
        let a = self
            .expect(
                "POST",
                "/passkey/registration/authorize",
                Some(body),
                &[200],
            )
            .await?;
        let base = self.service_path(&a)?;
        let o = self
            .expect(
                "POST",
                &format!("{base}/registration/options"),
                Some(json!({ "registrationToken": a["registrationToken"] })),
                &[200],
            )
            .await?;
        let response = auth
            .create(&o["optionsJSON"])
            .await
            .map_err(|e| Stop::Error(format!("authenticator create: {e}")))?;
        let v = self
            .expect(
                "POST",
                &format!("{base}/registration/verification"),
                Some(json!({ "response": response, "sessionToken": o["sessionToken"] })),
                &[200],
            )
            .await?;
        self.expect(
            "POST",
            "/passkey/register",
            Some(json!({ "code": v["code"] })),
            &[201],
        )
        .await
    }

    /// Authentication ceremony for `purpose`, then `/passkey/{route}`.
    async fn authenticate(
        &mut self,
        auth: &mut SoftAuthenticator,
        purpose: &str,
        route: &str,
    ) -> Result<Value, Stop> {
        let a = self
            .expect(
                "POST",
                "/passkey/authentication/authorize",
                Some(json!({ "purpose": purpose })),
                &[200],
            )
            .await?;
        let base = self.service_path(&a)?;
        let o = self
            .expect(
                "POST",
                &format!("{base}/authentication/options"),
                Some(json!({ "authenticationToken": a["authenticationToken"] })),
                &[200],
            )
            .await?;
        let response = auth
            .get(&o["optionsJSON"])
            .await
            .map_err(|e| Stop::Error(format!("authenticator get: {e}")))?;
        let v = self
            .expect(
                "POST",
                &format!("{base}/authentication/verification"),
                Some(json!({ "response": response, "sessionToken": o["sessionToken"] })),
                &[200],
            )
            .await?;
        self.expect(
            "POST",
            &format!("/passkey/{route}"),
            Some(json!({ "code": v["code"] })),
            &[200],
        )
        .await
    }

    /// Counts a sign-in that started at `started`.
    async fn sign_in_done(&self, started: Instant) {
        self.stats.sign_ins.fetch_add(1, Ordering::Relaxed);
        self.stats
            .sign_in_ms
            .lock()
            .await
            .push(started.elapsed().as_secs_f64() * 1000.0);
    }
}

/// One user's whole journey; records what it wrote into `expected`.
async fn journey(browser: &mut Browser, n: usize, expected: &mut Expected) -> Result<(), Stop> {
    let origin = browser.args.origin.clone();
    let mut device1 = SoftAuthenticator::new(&origin);
    let mut device2 = SoftAuthenticator::new(&origin);
    let username = format!("soak-{}-{n}", std::process::id());

    let started = Instant::now();
    let signed = browser
        .register(&mut device1, json!({ "username": username }))
        .await?;
    browser.sign_in_done(started).await;
    let user_id = signed["user_id"].as_str().unwrap_or_default().to_owned();
    let aid1 = signed["authenticator_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    expected.users.push((user_id.clone(), username.clone()));
    expected
        .live
        .push((user_id.clone(), aid1.clone(), username.clone()));

    let me = browser.expect("GET", "/api/me", None, &[200]).await?;
    if me["user_id"].as_i64().map(|id| id.to_string()).as_deref() != Some(user_id.as_str()) {
        return Err(Stop::Error(format!("/api/me {me} is not user {user_id}")));
    }
    browser
        .expect("POST", "/passkey/logout", Some(json!({})), &[200, 204])
        .await?;
    browser.expect("GET", "/api/me", None, &[401]).await?;

    let started = Instant::now();
    let login = browser.authenticate(&mut device1, "login", "login").await?;
    browser.sign_in_done(started).await;
    if login["user_id"].as_str() != Some(user_id.as_str()) {
        return Err(Stop::Error(format!("login {login} is not user {user_id}")));
    }
    browser
        .authenticate(&mut device1, "step_up", "step-up")
        .await?;
    browser
        .expect("POST", "/api/sensitive", Some(json!({})), &[200])
        .await?;

    let added = browser.register(&mut device2, json!({})).await?;
    let aid2 = added["authenticator_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    // A passkey the signed-in user adds is created under their username
    // (the example's `SignUpHook::username_of`), not their numeric id.
    expected
        .live
        .push((user_id.clone(), aid2.clone(), username.clone()));
    browser
        .expect(
            "DELETE",
            &format!("/passkey/passkeys/{aid1}"),
            None,
            &[200, 204],
        )
        .await?;
    expected.live.retain(|(_, a, _)| *a != aid1);
    expected.deleted.push(aid1);
    browser
        .expect("POST", "/passkey/logout", Some(json!({})), &[200, 204])
        .await?;

    let started = Instant::now();
    let login = browser.authenticate(&mut device2, "login", "login").await?;
    browser.sign_in_done(started).await;
    if login["user_id"].as_str() != Some(user_id.as_str()) {
        return Err(Stop::Error(format!(
            "second login {login} is not user {user_id}"
        )));
    }
    browser
        .expect("POST", "/passkey/logout", Some(json!({})), &[200, 204])
        .await?;
    Ok(())
}

/// Checks that the last answer's body was exactly `want`.
fn expect_text(browser: &Browser, what: &str, want: &str) -> Result<(), Stop> {
    if browser.last_text == want {
        Ok(())
    } else {
        Err(Stop::Error(format!(
            "{what}: answered {:?}, want {want:?}",
            browser.last_text
        )))
    }
}

/// The README app's journey: sign up, the guarded route, logout, login,
/// step-up and the step-up route, logout. Every answer is checked exactly.
async fn readme_journey(browser: &mut Browser) -> Result<(), Stop> {
    let mut device = SoftAuthenticator::new(&browser.args.origin);
    let username = format!("readme-{}", std::process::id());

    browser.expect("GET", "/account", None, &[401]).await?;
    let signed = browser
        .register(&mut device, json!({ "username": username }))
        .await?;
    let user_id = signed["user_id"].as_str().unwrap_or_default().to_owned();
    if user_id.is_empty() {
        return Err(Stop::Error(format!(
            "sign-up answer {signed} has no user_id"
        )));
    }
    println!("signed up {username} as user {user_id}");
    browser.expect("GET", "/account", None, &[200]).await?;
    expect_text(
        browser,
        "GET /account",
        &format!("signed in as user {user_id}"),
    )?;
    browser
        .expect("POST", "/passkey/logout", Some(json!({})), &[200, 204])
        .await?;
    browser.expect("GET", "/account", None, &[401]).await?;
    println!("logged out");

    let login = browser.authenticate(&mut device, "login", "login").await?;
    if login["user_id"].as_str() != Some(user_id.as_str()) {
        return Err(Stop::Error(format!("login {login} is not user {user_id}")));
    }
    browser.expect("GET", "/account", None, &[200]).await?;
    expect_text(
        browser,
        "GET /account",
        &format!("signed in as user {user_id}"),
    )?;
    println!("logged in");
    browser
        .authenticate(&mut device, "step_up", "step-up")
        .await?;
    browser
        .expect("POST", "/account/delete", Some(json!({})), &[200])
        .await?;
    expect_text(
        browser,
        "POST /account/delete",
        &format!("user {user_id} may delete the account"),
    )?;
    println!("stepped up");
    browser
        .expect("POST", "/passkey/logout", Some(json!({})), &[200, 204])
        .await?;
    browser.expect("GET", "/account", None, &[401]).await?;
    let refused = browser
        .expect("POST", "/account/delete", Some(json!({})), &[401])
        .await?;
    if refused["error"] != "not_authenticated" {
        return Err(Stop::Error(format!(
            "after logout POST /account/delete answered {refused}, want not_authenticated"
        )));
    }
    println!("logged out; the guarded routes answer 401");
    Ok(())
}

/// `--readme URL --origin ORIGIN`: one [`readme_journey`].
async fn run_readme(url: String, origin: String) -> Result<(), BoxError> {
    let args = Arc::new(Args {
        instances: [url.clone(), url],
        origin,
        database_url: String::new(),
        duration: Duration::ZERO,
        rate: 0,
        concurrency: 1,
    });
    let mut browser = Browser {
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()?,
        args,
        stats: Arc::new(Stats::default()),
        cookie: None,
        turn: 0,
        address: "10.0.0.1".to_owned(),
        last_text: String::new(),
    };
    match readme_journey(&mut browser).await {
        Ok(()) => {
            println!("readme app: sign-up, login, step-up and logout passed");
            Ok(())
        }
        Err(Stop::Error(e)) => Err(format!("readme app: {e}").into()),
        Err(Stop::Interrupted) => Err("readme app: a request was cut off".into()),
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// Checks the stores against what the journeys wrote; returns the problems.
async fn check(
    args: &Args,
    expected: &Expected,
    interrupted_users: usize,
) -> Result<Vec<String>, BoxError> {
    let pool = sqlx::PgPool::connect(&args.database_url).await?;
    let mut problems = Vec::new();
    for (user, aid, handle) in &expected.live {
        let link: Option<(String,)> = sqlx::query_as(
            "SELECT user_id FROM passlock_authenticator WHERE authenticator_id = $1",
        )
        .bind(aid)
        .fetch_optional(&pool)
        .await?;
        if link.as_ref().map(|l| l.0.as_str()) != Some(user.as_str()) {
            problems.push(format!("passkey {aid}: link {link:?}, want user {user}"));
        }
        let cred: Option<(String,)> =
            sqlx::query_as("SELECT username FROM passlock_credential WHERE credential_id = $1")
                .bind(aid)
                .fetch_optional(&pool)
                .await?;
        if cred.as_ref().map(|c| c.0.as_str()) != Some(handle.as_str()) {
            problems.push(format!(
                "passkey {aid}: credential {cred:?}, want username {handle}"
            ));
        }
    }
    for aid in &expected.deleted {
        let (links, creds): (i64, i64) = sqlx::query_as(
            "SELECT (SELECT count(*) FROM passlock_authenticator WHERE authenticator_id = $1),
                    (SELECT count(*) FROM passlock_credential WHERE credential_id = $1)",
        )
        .bind(aid)
        .fetch_one(&pool)
        .await?;
        if links + creds != 0 {
            problems.push(format!(
                "deleted passkey {aid}: {links} links, {creds} credentials left"
            ));
        }
    }
    for (user, name) in &expected.users {
        let row: Option<(String,)> =
            sqlx::query_as("SELECT username FROM users WHERE id::text = $1")
                .bind(user)
                .fetch_optional(&pool)
                .await?;
        if row.as_ref().map(|r| r.0.as_str()) != Some(name.as_str()) {
            problems.push(format!("user {user}: row {row:?}, want {name}"));
        }
    }
    // Store-wide: every link has its credential and its user, and the
    // other way round; interrupted journeys may leave a few of these.
    let (links_without_cred, creds_without_link, links_without_user): (i64, i64, i64) =
        sqlx::query_as(
            "SELECT
               (SELECT count(*) FROM passlock_authenticator a WHERE NOT EXISTS
                  (SELECT 1 FROM passlock_credential c WHERE c.credential_id = a.authenticator_id)),
               (SELECT count(*) FROM passlock_credential c WHERE NOT EXISTS
                  (SELECT 1 FROM passlock_authenticator a WHERE a.authenticator_id = c.credential_id)),
               (SELECT count(*) FROM passlock_authenticator a WHERE NOT EXISTS
                  (SELECT 1 FROM users u WHERE u.id::text = a.user_id))",
        )
        .fetch_one(&pool)
        .await?;
    let orphans = links_without_cred + creds_without_link + links_without_user;
    println!(
        "store-wide: {links_without_cred} links without credential, {creds_without_link} credentials without link, {links_without_user} links without user"
    );
    if orphans > i64::try_from(interrupted_users).unwrap_or(i64::MAX) {
        problems.push(format!(
            "{orphans} orphaned rows, more than the {interrupted_users} interrupted journeys explain"
        ));
    }
    pool.close().await;
    Ok(problems)
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).map(String::as_str) == Some("--readme") {
        let url = argv.get(2).cloned().ok_or("--readme needs the app's URL")?;
        let origin = match (argv.get(3).map(String::as_str), argv.get(4)) {
            (Some("--origin"), Some(origin)) => origin.clone(),
            _ => return Err("usage: soak-driver --readme URL --origin ORIGIN".into()),
        };
        return run_readme(url, origin).await;
    }
    let args = Arc::new(parse_args()?);
    let stats = Arc::new(Stats::default());
    let expected = Arc::new(Mutex::new(Expected::default()));
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(args.concurrency)
        .build()?;
    // Three sign-ins per journey.
    let journeys_per_sec = args.rate as f64 / 60.0 / 3.0;
    let interval = Duration::from_secs_f64(1.0 / journeys_per_sec.max(0.001));
    let limit = Arc::new(Semaphore::new(args.concurrency));
    let started = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut skipped = 0u64;
    println!(
        "soak: {} and {}, {:?}, {} sign-ins/min ({:.2} journeys/s), at most {} in flight",
        args.instances[0],
        args.instances[1],
        args.duration,
        args.rate,
        journeys_per_sec,
        args.concurrency
    );
    let mut last_report = Instant::now();
    while started.elapsed() < args.duration {
        ticker.tick().await;
        let Ok(permit) = limit.clone().try_acquire_owned() else {
            skipped += 1;
            continue;
        };
        let n = next.fetch_add(1, Ordering::Relaxed);
        let (task_args, task_stats, task_expected) =
            (args.clone(), stats.clone(), expected.clone());
        let http = http.clone();
        tasks.spawn(async move {
            let mut browser = Browser {
                http,
                args: task_args,
                stats: task_stats.clone(),
                cookie: None,
                turn: n,
                // One address per journey, in 10.0.0.0/8.
                address: format!("10.{}.{}.{}", (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff),
                last_text: String::new(),
            };
            let mut wrote = Expected::default();
            let outcome = journey(&mut browser, n, &mut wrote).await;
            // An interrupted journey's rows are unknown: not checked.
            if !matches!(outcome, Err(Stop::Interrupted)) {
                let mut all = task_expected.lock().await;
                all.live.extend(wrote.live);
                all.deleted.extend(wrote.deleted);
                all.users.extend(wrote.users);
            }
            match outcome {
                Ok(()) => {
                    task_stats.journeys_done.fetch_add(1, Ordering::Relaxed);
                }
                Err(Stop::Interrupted) => {
                    task_stats.interrupted.fetch_add(1, Ordering::Relaxed);
                }
                Err(Stop::Error(e)) => task_stats.error(e).await,
            }
            drop(permit);
        });
        while tasks.try_join_next().is_some() {}
        if last_report.elapsed() >= Duration::from_secs(10) {
            last_report = Instant::now();
            println!(
                "  {:>4.0}s: {} sign-ins, {} journeys, {} errors, {} failovers, {} interrupted",
                started.elapsed().as_secs_f64(),
                stats.sign_ins.load(Ordering::Relaxed),
                stats.journeys_done.load(Ordering::Relaxed),
                stats.errors.load(Ordering::Relaxed),
                stats.failovers.load(Ordering::Relaxed),
                stats.interrupted.load(Ordering::Relaxed),
            );
        }
    }
    while tasks.join_next().await.is_some() {}
    let elapsed = started.elapsed().as_secs_f64();

    let mut req = std::mem::take(&mut *stats.request_ms.lock().await);
    req.sort_by(f64::total_cmp);
    let mut sign = std::mem::take(&mut *stats.sign_in_ms.lock().await);
    sign.sort_by(f64::total_cmp);
    let sign_ins = stats.sign_ins.load(Ordering::Relaxed);
    let interrupted = stats.interrupted.load(Ordering::Relaxed);
    let errors = stats.errors.load(Ordering::Relaxed);
    println!("--- soak results ({elapsed:.1} s) ---");
    println!(
        "sign-ins: {sign_ins} ({:.0}/min); journeys: {} done, {} started, {skipped} not started (all {} slots busy)",
        sign_ins as f64 * 60.0 / elapsed,
        stats.journeys_done.load(Ordering::Relaxed),
        next.load(Ordering::Relaxed),
        args.concurrency
    );
    println!(
        "requests: {} ({:.0}/s); latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        stats.requests.load(Ordering::Relaxed),
        req.len() as f64 / elapsed,
        percentile(&req, 50.0),
        percentile(&req, 99.0),
        req.last().copied().unwrap_or(0.0)
    );
    println!(
        "sign-in (whole ceremony, 4 requests): p50 {:.1} ms, p99 {:.1} ms",
        percentile(&sign, 50.0),
        percentile(&sign, 99.0)
    );
    println!(
        "errors: {errors}; failovers (refused by a down instance, retried on the other): {}; interrupted (in flight when an instance died): {interrupted}",
        stats.failovers.load(Ordering::Relaxed)
    );
    for e in stats.error_samples.lock().await.iter() {
        println!("  error: {e}");
    }
    let expected = expected.lock().await;
    println!(
        "checking {} live passkeys, {} deleted passkeys, {} users in PostgreSQL",
        expected.live.len(),
        expected.deleted.len(),
        expected.users.len()
    );
    let problems = check(
        &args,
        &expected,
        usize::try_from(interrupted).unwrap_or(usize::MAX),
    )
    .await?;
    for p in problems.iter().take(20) {
        println!("  inconsistent: {p}");
    }
    println!("consistency: {} problems", problems.len());
    if errors > 0 || !problems.is_empty() {
        return Err(format!("{errors} errors, {} inconsistencies", problems.len()).into());
    }
    println!("soak passed");
    Ok(())
}
