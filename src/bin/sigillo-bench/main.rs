//! `sigillo-bench`: the performance report behind `scripts/bench`. Against a running gateway
//! and its SoftHSM2 token it measures, per key algorithm, the raw HSM (cryptoki directly, the
//! same number of threads as the gateway's pool, no HTTP) and the gateway's signHash with
//! batches of 1/10/100/1000, then the full flow, and writes `target/bench/report.json`.
//! With `BENCH_TSA=1`, only the RFC 3161 TSA: tokens/s next to the TSA key's raw rate.
//! `sigillo-bench provision …` enrols and activates subscribers through the real subscriber
//! flow and writes them as JSON (provision.rs), for the k6 scenarios and the scripts.
//! It is a load generator: the numbers go to the report, never into tests.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use cryptoki::context::Pkcs11;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, ObjectClass};
use cryptoki::session::UserType;
use cryptoki::types::AuthPin;
use serde_json::{json, Value};

mod provision;

use provision::Gateway;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Result<T> = std::result::Result<T, BoxError>;

struct Env {
    public: String,
    admin: String,
    admin_token: String,
    outbox: PathBuf,
    /// The SMTP server's Maildir: the subscribers' setup links and envelopes arrive there.
    maildir: PathBuf,
    module: PathBuf,
    token_label: String,
    pin: String,
    workers: usize,
    /// Length of one gateway run and of one raw run.
    seconds: f64,
    /// Gateway runs per figure, each bracketed by raw runs.
    rounds: usize,
    gateway_pid: Option<u32>,
    report: PathBuf,
    algos: Vec<String>,
    batches: Vec<usize>,
}

fn var(name: &str) -> Result<String> {
    std::env::var(name).map_err(|_| format!("{name} is not set (run scripts/bench)").into())
}

impl Env {
    /// The length of a single, unbracketed run: as long as one figure's gateway runs.
    fn long(&self) -> f64 {
        self.seconds * self.rounds.max(1) as f64
    }

    fn load() -> Result<Env> {
        let list = |name: &str, default: &str| {
            std::env::var(name)
                .unwrap_or_else(|_| default.into())
                .split(',')
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
        };
        Ok(Env {
            public: var("BENCH_PUBLIC_URL")?,
            admin: var("BENCH_ADMIN_URL")?,
            admin_token: var("BENCH_ADMIN_TOKEN")?,
            outbox: var("BENCH_OUTBOX")?.into(),
            maildir: var("BENCH_MAILDIR")?.into(),
            module: var("BENCH_HSM_MODULE")?.into(),
            token_label: var("BENCH_HSM_TOKEN_LABEL")?,
            pin: var("BENCH_HSM_PIN")?,
            workers: var("BENCH_WORKERS")?.parse()?,
            seconds: std::env::var("BENCH_SECONDS")
                .unwrap_or_else(|_| "2".into())
                .parse()?,
            rounds: std::env::var("BENCH_ROUNDS")
                .unwrap_or_else(|_| "5".into())
                .parse()?,
            gateway_pid: std::env::var("BENCH_GATEWAY_PID")
                .ok()
                .and_then(|p| p.parse().ok()),
            report: std::env::var("BENCH_REPORT")
                .unwrap_or_else(|_| "target/bench/report.json".into())
                .into(),
            algos: list("BENCH_ALGOS", "ec-p256,ec-p384,rsa-2048,rsa-3072"),
            batches: list("BENCH_BATCHES", "1,10,100,1000")
                .iter()
                .map(|b| b.parse())
                .collect::<std::result::Result<_, _>>()?,
        })
    }
}

/// One subscriber with an active credential and a SAD that covers the whole run.
struct Subject {
    user: String,
    password: String,
    phone: String,
    token: String,
    credential: String,
    pin: String,
}

struct Client {
    gw: Gateway,
    env: Arc<Env>,
}

fn random_digits(n: usize) -> String {
    (0..n)
        .map(|_| char::from(b'0' + rand::random::<u8>() % 10))
        .collect()
}

impl std::ops::Deref for Client {
    type Target = Gateway;

    fn deref(&self) -> &Gateway {
        &self.gw
    }
}

impl Client {
    /// A subscriber (SMS OTP) with an active `key_algo` credential, enrolled as a real one
    /// is (provision.rs).
    async fn subject(&self, key_algo: &str) -> Result<Subject> {
        let spec = provision::Spec {
            otp: provision::OtpKind::Sms,
            key_algo: key_algo.to_owned(),
            prefix: format!("bench-{}", random_digits(10)),
            user: serde_json::Map::new(),
            envelopes: None,
        };
        let s = self.gw.subscriber(&spec, 0).await?;
        Ok(Subject {
            user: s.user_id,
            password: s.password,
            phone: s.phone,
            token: s.token,
            credential: s.credential_id,
            pin: s.pin,
        })
    }

    /// A SCAL1 SAD for `n` signatures of any hashes (the bench gateway runs with SCAL "1").
    async fn sad(&self, s: &Subject, n: u64) -> Result<String> {
        let otp = self.otp(&s.token, &s.credential, &s.phone).await?;
        let body = self
            .ok(
                format!("{}/csc/v2/credentials/authorize", self.env.public),
                Some(&s.token),
                &json!({ "credentialID": s.credential, "numSignatures": n,
                         "authData": [{ "id": "PIN", "value": s.pin }, { "id": "OTP", "value": otp }] }),
                200,
            )
            .await?;
        Ok(body["SAD"].as_str().ok_or("no SAD")?.to_owned())
    }
}

fn sign_algo(key_algo: &str) -> &'static str {
    if key_algo.starts_with("ec") {
        "1.2.840.10045.4.3.2"
    } else {
        "1.2.840.113549.1.1.11"
    }
}

/// Raw HSM: `workers` threads, each with its own logged-in session, signing a SHA-256 digest
/// in a loop for `seconds` (the same mechanism and input the gateway uses).
fn raw_sps(env: &Env, ctx: &Pkcs11, key_algo: &str, credential: &str) -> Result<f64> {
    let slot = ctx
        .get_slots_with_token()?
        .into_iter()
        .find(|s| {
            ctx.get_token_info(*s)
                .map(|i| i.label().trim_end() == env.token_label)
                .unwrap_or(false)
        })
        .ok_or("token not found")?;
    let id = uuid::Uuid::parse_str(credential)?.as_bytes().to_vec();
    let ec = key_algo.starts_with("ec");
    let digest = [7u8; 32];
    let input: Vec<u8> = if ec {
        digest.to_vec()
    } else {
        // DigestInfo(SHA-256) || digest, as the gateway builds it.
        [
            &[
                0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x01, 0x05, 0x00, 0x04, 0x20,
            ][..],
            &digest[..],
        ]
        .concat()
    };
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let threads: Vec<_> = (0..env.workers)
        .map(|_| {
            let (ctx, stop, count, id, input, pin) = (
                ctx.clone(),
                stop.clone(),
                count.clone(),
                id.clone(),
                input.clone(),
                env.pin.clone(),
            );
            std::thread::spawn(move || -> Result<()> {
                let session = ctx.open_ro_session(slot)?;
                let _ = session.login(UserType::User, Some(&AuthPin::new(pin.into())));
                let key = *session
                    .find_objects(&[
                        Attribute::Class(ObjectClass::PRIVATE_KEY),
                        Attribute::Id(id),
                    ])?
                    .first()
                    .ok_or("key not found")?;
                let mechanism = if ec {
                    Mechanism::Ecdsa
                } else {
                    Mechanism::RsaPkcs
                };
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    session.sign(&mechanism, key, &input)?;
                    n += 1;
                }
                count.fetch_add(n, Ordering::Relaxed);
                Ok(())
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs_f64(env.seconds));
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().map_err(|_| "raw thread panicked")??;
    }
    Ok(count.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64())
}

/// `raw_sps` off the runtime's thread, so that the client's idle connections stay served.
async fn raw(env: &Arc<Env>, ctx: &Pkcs11, key_algo: &str, credential: &str) -> Result<f64> {
    let (env, ctx, key_algo, credential) = (
        env.clone(),
        ctx.clone(),
        key_algo.to_owned(),
        credential.to_owned(),
    );
    tokio::task::spawn_blocking(move || raw_sps(&env, &ctx, &key_algo, &credential)).await?
}

/// A prepared signHash body with `batch` random SHA-256 digests.
fn sign_body(s: &Subject, sad: &str, key_algo: &str, batch: usize) -> bytes::Bytes {
    let hashes: Vec<String> = (0..batch)
        .map(|_| STANDARD.encode((0..32).map(|_| rand::random::<u8>()).collect::<Vec<u8>>()))
        .collect();
    let body = json!({ "credentialID": s.credential, "SAD": sad, "hashes": hashes, "signAlgo": sign_algo(key_algo) });
    bytes::Bytes::from(body.to_string())
}

struct Run {
    sps: f64,
    latencies: Vec<f64>,
    errors: u64,
}

/// One figure of the table: `rounds` gateway runs, each between two raw runs.
struct Figure {
    /// Per round: the gateway's sig/s and its base, the mean of the raw runs just before and
    /// just after it.
    rounds: Vec<(f64, f64)>,
    latencies: Vec<f64>,
    errors: u64,
}

impl Figure {
    fn gateway_sps(&self) -> f64 {
        mean(self.rounds.iter().map(|(g, _)| *g))
    }

    fn raw_sps(&self) -> f64 {
        mean(self.rounds.iter().map(|(_, r)| *r))
    }

    fn round_ratios(&self) -> Vec<f64> {
        self.rounds.iter().map(|(g, r)| g / r).collect()
    }

    /// The median of the rounds' ratios: one round that a neighbour's load on the host cut
    /// short moves it by at most one rank, where it would drag a mean.
    fn ratio(&self) -> f64 {
        let mut ratios = self.round_ratios();
        ratios.sort_by(|a, b| a.total_cmp(b));
        let n = ratios.len();
        let middle = |i: usize| ratios.get(i).copied().unwrap_or(f64::NAN);
        if n % 2 == 1 {
            middle(n / 2)
        } else {
            (middle((n / 2).wrapping_sub(1)) + middle(n / 2)) / 2.0
        }
    }
}

fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    if n == 0 {
        f64::NAN
    } else {
        sum / n as f64
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Measures one figure. This VM's speed drifts by tens of percent within minutes (two
/// `openssl speed` runs of 2 s in a row differ by up to 30 %), so only raw figures taken right
/// next to the gateway's are a fair base: each round's base is the mean of the raw runs
/// before and after it, the estimate of the HSM's speed during the round under a linear drift.
/// (Taking the higher of the two is biased, not careful: with this noise the maximum of two
/// runs exceeds their mean by ~6 % on average, which alone puts a gateway at 0.97 of the HSM
/// below 0.92.) `raw_prev` is the raw figure that ends the previous measurement, updated to
/// the last one taken. `on_round` sees each gateway run, the CPU spent during it and how
/// long it took.
async fn bracketed<F: std::future::Future<Output = Result<Run>>>(
    env: &Arc<Env>,
    ctx: &Pkcs11,
    subject: &Subject,
    algo: &str,
    gateway: impl Fn() -> F,
    raw_prev: &mut f64,
    mut on_round: impl FnMut(&Run, CpuTicks, f64),
) -> Result<Figure> {
    let mut figure = Figure {
        rounds: Vec::new(),
        latencies: Vec::new(),
        errors: 0,
    };
    for _ in 0..env.rounds.max(1) {
        let (ticks, started) = (cpu_ticks(env.gateway_pid), Instant::now());
        let run = gateway().await?;
        on_round(
            &run,
            cpu_ticks(env.gateway_pid) - ticks,
            started.elapsed().as_secs_f64(),
        );
        let raw_next = raw(env, ctx, algo, &subject.credential).await?;
        figure.rounds.push((run.sps, (*raw_prev + raw_next) / 2.0));
        figure.latencies.extend(run.latencies);
        figure.errors += run.errors;
        *raw_prev = raw_next;
    }
    figure.latencies.sort_by(|a, b| a.total_cmp(b));
    Ok(figure)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or(f64::NAN)
}

/// A keep-alive HTTP/1.1 connection that sends one prepared request and reads the answer: a
/// load generator as lean as wrk, so that on a 2-core machine the CPU goes to the gateway, not
/// to the client (reqwest costs several times more per request).
struct Wire {
    stream: tokio::net::TcpStream,
    buf: Vec<u8>,
}

/// `POST path` with a bearer token and a JSON body, as bytes ready to write.
fn prepared_request(host: &str, path: &str, token: &str, body: &[u8]) -> bytes::Bytes {
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body);
    req.into()
}

impl Wire {
    async fn connect(host: &str) -> Result<Wire> {
        let stream = tokio::net::TcpStream::connect(host).await?;
        stream.set_nodelay(true)?;
        Ok(Wire {
            stream,
            buf: Vec::with_capacity(16 * 1024),
        })
    }

    /// Sends `request` and reads the whole answer; its status, and whether the body holds
    /// `want` (a cheap check that a 200 carries signatures).
    async fn round_trip(&mut self, request: &[u8], want: &[u8]) -> Result<(u16, bool)> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        self.stream.write_all(request).await?;
        self.buf.clear();
        let (status, head, length) = loop {
            if self.stream.read_buf(&mut self.buf).await? == 0 {
                return Err("the gateway closed the connection".into());
            }
            let mut headers = [httparse::EMPTY_HEADER; 24];
            let mut res = httparse::Response::new(&mut headers);
            if let httparse::Status::Complete(head) = res.parse(&self.buf)? {
                let length = res
                    .headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                    .and_then(|h| {
                        std::str::from_utf8(h.value)
                            .ok()?
                            .trim()
                            .parse::<usize>()
                            .ok()
                    })
                    .ok_or("an answer without content-length")?;
                break (res.code.unwrap_or(0), head, length);
            }
        };
        while self.buf.len() < head + length {
            if self.stream.read_buf(&mut self.buf).await? == 0 {
                return Err("the gateway closed the connection".into());
            }
        }
        let body = self.buf.get(head..head + length).unwrap_or_default();
        Ok((status, body.windows(want.len()).any(|w| w == want)))
    }
}

/// The `host:port` of an `http://` URL.
fn host_of(url: &str) -> &str {
    url.trim_start_matches("http://").trim_end_matches('/')
}

const SIGNED: &[u8] = b"\"signatures\"";

/// Closed loop: `concurrency` connections send the same signHash request back to back.
async fn gateway_closed(
    c: &Client,
    token: &str,
    body: bytes::Bytes,
    batch: usize,
    concurrency: usize,
    seconds: f64,
) -> Result<Run> {
    let host = host_of(&c.env.public).to_owned();
    let request = prepared_request(&host, "/csc/v2/signatures/signHash", token, &body);
    let mut wires = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        wires.push(Wire::connect(&host).await?);
    }
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let tasks: Vec<_> = wires
        .into_iter()
        .map(|mut wire| {
            let request = request.clone();
            tokio::spawn(async move {
                let mut lat = Vec::new();
                let mut errors = 0u64;
                // At least three answers per connection: a batch of 1000 RSA-3072 hashes takes
                // seconds, and a window that ends after one answer measures mostly its tail.
                while Instant::now() < deadline || (lat.len() < 3 && errors == 0) {
                    let t0 = Instant::now();
                    match wire.round_trip(&request, SIGNED).await {
                        Ok((200, true)) => lat.push(t0.elapsed().as_secs_f64() * 1000.0),
                        Ok((status, _)) => {
                            errors += 1;
                            if errors == 1 {
                                eprintln!("signHash HTTP {status}");
                            }
                        }
                        Err(e) => {
                            errors += 1;
                            eprintln!("signHash failed: {e}");
                            break;
                        }
                    }
                }
                (lat, errors)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (lat, e) = t.await?;
        latencies.extend(lat);
        errors += e;
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort_by(|a, b| a.total_cmp(b));
    Ok(Run {
        sps: (latencies.len() * batch) as f64 / elapsed,
        latencies,
        errors,
    })
}

/// One request on an idle connection of `idle` (or a new one), which goes back to `idle` after
/// a good answer. The gateway closes connections idle past its keep-alive, as any server
/// does: a request that fails on a reused connection is retried once on a new one, as
/// browsers and HTTP clients do.
async fn send_pooled(idle: &std::sync::Mutex<Vec<Wire>>, host: &str, request: &[u8]) -> bool {
    let reused = idle.lock().ok().and_then(|mut w| w.pop());
    if let Some(mut wire) = reused {
        if let Ok(answer) = wire.round_trip(request, SIGNED).await {
            return answer == (200, true) && give_back(idle, wire);
        }
    }
    let Ok(mut wire) = Wire::connect(host).await else {
        return false;
    };
    matches!(wire.round_trip(request, SIGNED).await, Ok((200, true))) && give_back(idle, wire)
}

fn give_back(idle: &std::sync::Mutex<Vec<Wire>>, wire: Wire) -> bool {
    if let Ok(mut idle) = idle.lock() {
        idle.push(wire);
    }
    true
}

/// Open loop: requests started at a fixed `rate` per second, whatever the answers do; each
/// takes an idle connection or opens one.
async fn gateway_open(
    c: &Client,
    token: &str,
    body: bytes::Bytes,
    rate: f64,
    seconds: f64,
) -> Result<Run> {
    let host = host_of(&c.env.public).to_owned();
    let request = prepared_request(&host, "/csc/v2/signatures/signHash", token, &body);
    let idle: Arc<std::sync::Mutex<Vec<Wire>>> = Arc::default();
    for _ in 0..16 {
        let wire = Wire::connect(&host).await?;
        idle.lock().map_err(|_| "poisoned")?.push(wire);
    }
    let total = (rate * seconds) as usize;
    let interval = Duration::from_secs_f64(1.0 / rate);
    let started = Instant::now();
    let mut handles = VecDeque::new();
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    for _ in 0..total {
        tick.tick().await;
        let (idle, host, request) = (idle.clone(), host.clone(), request.clone());
        handles.push_back(tokio::spawn(async move {
            let t0 = Instant::now();
            let ok = send_pooled(&idle, &host, &request).await;
            (ok, t0.elapsed().as_secs_f64() * 1000.0)
        }));
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    for h in handles {
        let (ok, ms) = h.await?;
        if ok {
            latencies.push(ms);
        } else {
            errors += 1;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort_by(|a, b| a.total_cmp(b));
    Ok(Run {
        sps: latencies.len() as f64 / elapsed,
        latencies,
        errors,
    })
}

/// CPU time (user + system, in the kernel's 1/100 s ticks) of what serves a signHash.
#[derive(Debug, Default, Clone, Copy)]
struct CpuTicks {
    hsm: u64,
    gateway: u64,
    redis: u64,
    postgres: u64,
    client: u64,
}

/// The command name and CPU ticks of a `/proc/…/stat` file.
fn stat_ticks(path: &Path) -> Option<(String, u64)> {
    let text = std::fs::read_to_string(path).ok()?;
    let (head, rest) = text.rsplit_once(')')?;
    let comm = head.split_once('(')?.1.to_owned();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state, ppid, … utime is the 14th field of the line, stime the 15th.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((comm, utime + stime))
}

/// Reads the CPU time so far of the gateway's HSM threads and other threads, of every
/// `redis-server` and `postgres` process (the bench's own stack), and of this load client.
fn cpu_ticks(gateway: Option<u32>) -> CpuTicks {
    let mut t = CpuTicks::default();
    let dir = |p: PathBuf| std::fs::read_dir(p).into_iter().flatten().flatten();
    if let Some(pid) = gateway {
        for task in dir(PathBuf::from(format!("/proc/{pid}/task"))) {
            if let Some((comm, ticks)) = stat_ticks(&task.path().join("stat")) {
                if comm.starts_with("hsm-") {
                    t.hsm += ticks;
                } else {
                    t.gateway += ticks;
                }
            }
        }
    }
    for process in dir(PathBuf::from("/proc")) {
        if let Some((comm, ticks)) = stat_ticks(&process.path().join("stat")) {
            match comm.as_str() {
                "redis-server" => t.redis += ticks,
                "postgres" => t.postgres += ticks,
                _ => {}
            }
        }
    }
    t.client = stat_ticks(Path::new("/proc/self/stat")).map_or(0, |(_, ticks)| ticks);
    t
}

impl std::ops::Sub for CpuTicks {
    type Output = CpuTicks;
    fn sub(self, o: CpuTicks) -> CpuTicks {
        CpuTicks {
            hsm: self.hsm.saturating_sub(o.hsm),
            gateway: self.gateway.saturating_sub(o.gateway),
            redis: self.redis.saturating_sub(o.redis),
            postgres: self.postgres.saturating_sub(o.postgres),
            client: self.client.saturating_sub(o.client),
        }
    }
}

impl std::ops::AddAssign for CpuTicks {
    fn add_assign(&mut self, o: CpuTicks) {
        self.hsm += o.hsm;
        self.gateway += o.gateway;
        self.redis += o.redis;
        self.postgres += o.postgres;
        self.client += o.client;
    }
}

/// The cumulative buckets (`le` → count) of each histogram series of the gateway's /metrics,
/// keyed by name and labels: `sigillo_hsm_job_duration_seconds{op="sign"}`.
async fn histograms(c: &Client) -> Result<std::collections::HashMap<String, Vec<(f64, f64)>>> {
    let text = c
        .http
        .get(format!("{}/metrics", c.env.admin))
        .send()
        .await?
        .text()
        .await?;
    let mut all: std::collections::HashMap<String, Vec<(f64, f64)>> = Default::default();
    for line in text.lines() {
        let Some((name, rest)) = line.split_once("_bucket{") else {
            continue;
        };
        let Some((labels, count)) = rest.rsplit_once("} ") else {
            continue;
        };
        let (mut series, mut le) = (Vec::new(), None);
        for label in labels.split(',') {
            match label.strip_prefix("le=") {
                Some(v) => le = Some(v.trim_matches('"')),
                None => series.push(label),
            }
        }
        let le = match le {
            Some("+Inf") => f64::INFINITY,
            Some(v) => v.parse().unwrap_or(f64::NAN),
            None => continue,
        };
        if let Ok(count) = count.trim().parse::<f64>() {
            let key = format!("{name}{{{}}}", series.join(","));
            all.entry(key).or_default().push((le, count));
        }
    }
    Ok(all)
}

/// The bucket bound under which 99 % of what `name` observed between two scrapes falls.
fn p99_bound(
    before: &std::collections::HashMap<String, Vec<(f64, f64)>>,
    after: &std::collections::HashMap<String, Vec<(f64, f64)>>,
    name: &str,
) -> Option<f64> {
    let (b, a) = (before.get(name)?, after.get(name)?);
    let delta: Vec<(f64, f64)> = a
        .iter()
        .map(|(le, n)| {
            let was = b.iter().find(|(l, _)| l == le).map_or(0.0, |(_, n)| *n);
            (*le, n - was)
        })
        .collect();
    let total = delta.iter().map(|(_, n)| *n).fold(0.0, f64::max);
    delta
        .iter()
        .find(|(_, n)| *n >= 0.99 * total)
        .map(|(le, _)| *le)
}

/// Full flows (login → sendOTP → authorize → signHash of one hash) per second.
async fn flows(c: Arc<Client>, subjects: Vec<Subject>, seconds: f64) -> Result<(f64, u64)> {
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let tasks: Vec<_> = subjects
        .into_iter()
        .map(|s| {
            let c = c.clone();
            tokio::spawn(async move {
                let (mut done, mut errors) = (0u64, 0u64);
                while Instant::now() < deadline {
                    let one = async {
                        let token = c.login(&s.user, &s.password).await?;
                        let subject = Subject { token, ..s.clone_shallow() };
                        let sad = c.sad(&subject, 1).await?;
                        let body = json!({ "credentialID": subject.credential, "SAD": sad,
                                           "hashes": [STANDARD.encode([9u8; 32])], "signAlgo": sign_algo("ec-p256") });
                        c.ok(format!("{}/csc/v2/signatures/signHash", c.env.public), Some(&subject.token), &body, 200).await?;
                        Ok::<_, BoxError>(())
                    };
                    match one.await {
                        Ok(()) => done += 1,
                        Err(e) => {
                            errors += 1;
                            if errors == 1 {
                                eprintln!("flow failed: {e}");
                            }
                        }
                    }
                }
                (done, errors)
            })
        })
        .collect();
    let (mut done, mut errors) = (0, 0);
    for t in tasks {
        let (d, e) = t.await?;
        done += d;
        errors += e;
    }
    Ok((done as f64 / started.elapsed().as_secs_f64(), errors))
}

impl Subject {
    fn clone_shallow(&self) -> Subject {
        Subject {
            user: self.user.clone(),
            password: self.password.clone(),
            phone: self.phone.clone(),
            token: self.token.clone(),
            credential: self.credential.clone(),
            pin: self.pin.clone(),
        }
    }
}

fn rss_mb(pid: Option<u32>) -> Option<(f64, f64)> {
    let status = std::fs::read_to_string(format!("/proc/{}/status", pid?)).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map(|kb| kb / 1024.0)
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// Requests in flight per batch size (`BENCH_CONCURRENCY` overrides it for every batch).
/// Enough that the HSM queue never runs dry while some requests wait on their audit commit (a WAL flush, ~1–2 ms, as long as the HSM work of a
/// P-256 batch of 100), and no more: p50 latency grows with every request queued behind.
fn concurrency_for(batch: usize, workers: usize) -> usize {
    if let Some(n) = std::env::var("BENCH_CONCURRENCY")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
    {
        return n.max(1);
    }
    match batch {
        1 => 32 * workers,
        2..=10 => 8 * workers,
        11..=100 => 4 * workers,
        _ => 2 * workers,
    }
}

/// Fills the token with `many` more credentials, then measures ec-p256 batch 100 again: with
/// handles cached per credential, the throughput must not depend on how many keys the token
/// holds (only the first signature of a credential searches the token).
async fn many_credentials(
    c: &Arc<Client>,
    env: &Arc<Env>,
    ctx: &Pkcs11,
    many: usize,
    runs: &[Value],
) -> Result<Value> {
    // The owner never completes setup: its credentials wait for their envelope (no PUK, no
    // mail), which keeps the filling to the key pair and the certificate.
    let owner = format!("bench-many-{}", random_digits(10));
    c.admin(
        "/admin/v1/users",
        &json!({ "user_id": owner, "given_name": "Bench", "surname": "Mark",
                 "fiscal_code": "BNCMRK80A01H501U", "email": format!("{owner}@load.example.org"),
                 "phone": format!("+39{}", random_digits(10)), "otp_method": "sms" }),
    )
    .await?;
    let started = Instant::now();
    let created = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let (c, user, created) = (c.clone(), owner.clone(), created.clone());
            tokio::spawn(async move {
                while created.fetch_add(1, Ordering::Relaxed) < many as u64 {
                    c.admin(
                        &format!("/admin/v1/users/{user}/credentials"),
                        &json!({ "key_algo": "ec-p256", "purpose": "signing" }),
                    )
                    .await?;
                }
                Ok::<_, BoxError>(())
            })
        })
        .collect();
    for t in tasks {
        t.await??;
    }
    let create_s = started.elapsed().as_secs_f64();
    println!("created {many} more credentials in {create_s:.1} s");
    let subject = c.subject("ec-p256").await?;
    let sad = c.sad(&subject, 100_000_000).await?;
    let first = Instant::now();
    let one = json!({ "credentialID": subject.credential, "SAD": sad,
                      "hashes": [STANDARD.encode([5u8; 32])], "signAlgo": sign_algo("ec-p256") });
    c.ok(
        format!("{}/csc/v2/signatures/signHash", c.env.public),
        Some(&subject.token),
        &one,
        200,
    )
    .await?;
    let first_ms = first.elapsed().as_secs_f64() * 1000.0;
    let body = sign_body(&subject, &sad, "ec-p256", 100);
    // Measured like the main table's figures: the comparison is of gateway/raw ratios, so
    // that the VM's drift between the two measurements does not count as the cache's doing.
    let mut raw_prev = raw(env, ctx, "ec-p256", &subject.credential).await?;
    let figure = bracketed(
        env,
        ctx,
        &subject,
        "ec-p256",
        || {
            gateway_closed(
                c,
                &subject.token,
                body.clone(),
                100,
                concurrency_for(100, env.workers),
                env.seconds,
            )
        },
        &mut raw_prev,
        |_, _, _| {},
    )
    .await?;
    let (sps, ratio) = (figure.gateway_sps(), figure.ratio());
    let (before_sps, before_ratio) = runs
        .iter()
        .find(|r| r["algo"] == "ec-p256" && r["batch"] == 100)
        .map(|r| {
            (
                r["gateway_sps"].as_f64().unwrap_or(f64::NAN),
                r["ratio"].as_f64().unwrap_or(f64::NAN),
            )
        })
        .unwrap_or((f64::NAN, f64::NAN));
    let relative = ratio / before_ratio;
    println!(
        "ec-p256 batch 100 with {many} more keys in the token: {sps:.0} sig/s, {ratio:.3} of raw \
         ({relative:.3} of the ratio with few keys; rounds {:?}); first signature {first_ms:.1} ms",
        figure
            .round_ratios()
            .into_iter()
            .map(round3)
            .collect::<Vec<_>>()
    );
    Ok(
        json!({ "added": many, "create_s": (create_s * 10.0).round() / 10.0, "batch100_sps": sps.round(),
               "batch100_ratio": round3(ratio),
               "batch100_sps_few_keys": before_sps.round(), "batch100_ratio_few_keys": before_ratio,
               "relative": round3(relative), "first_signature_ms": first_ms }),
    )
}

// One thread: the load generator must leave the cores to the gateway.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    if std::env::args().nth(1).as_deref() == Some("provision") {
        let args = <provision::Args as clap::Parser>::parse_from(std::env::args().skip(1));
        return provision::run(args).await;
    }
    let env = Arc::new(Env::load()?);
    let client = Arc::new(Client {
        gw: Gateway {
            http: reqwest::Client::builder()
                .pool_max_idle_per_host(256)
                .build()?,
            public: env.public.clone(),
            admin: env.admin.clone(),
            admin_token: env.admin_token.clone(),
            maildir: env.maildir.clone(),
            outbox: Some(env.outbox.clone()),
            mail_timeout: Duration::from_secs(60),
        },
        env: env.clone(),
    });
    if std::env::var("BENCH_OCSP").is_ok_and(|v| v == "1") {
        // `scripts/bench --ocsp`: the OCSP responder alone.
        let figures = ocsp_bench(&client).await?;
        if let Some(dir) = env.report.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(&env.report, serde_json::to_string_pretty(&figures)?)?;
        println!("report: {}", env.report.display());
        return Ok(());
    }
    // The module as the gateway initialises it for as many threads as its HSM pool (with the
    // gateway's mutexes up to one thread per core): the raw figure is the HSM as the gateway
    // uses it.
    let ctx = sigillo::hsm::context(&env.module, env.workers)?;
    if std::env::var("BENCH_TSA").is_ok_and(|v| v == "1") {
        return tsa_bench(&client, &env, &ctx).await;
    }
    let mut runs = Vec::new();
    let mut extras = serde_json::Map::new();
    println!(
        "{:<9} {:>6} {:>10} {:>12} {:>7} {:>11} {:>9} {:>9} {:>9} {:>6}",
        "algo",
        "batch",
        "raw sig/s",
        "gateway sig/s",
        "ratio",
        "rounds",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "errors"
    );
    for algo in &env.algos {
        let subject = client.subject(algo).await?;
        let mut raw_prev = raw(&env, &ctx, algo, &subject.credential).await?;
        let sad = client.sad(&subject, 100_000_000).await?;
        // Warm up: the first signHash resolves and caches the key handle.
        let warm = sign_body(&subject, &sad, algo, 1);
        gateway_closed(&client, &subject.token, warm, 1, 1, 0.3).await?;
        let mut ratio_by_batch = Vec::new();
        for &batch in &env.batches {
            let body = sign_body(&subject, &sad, algo, batch);
            // Where P-256's CPU goes, per request and per hash: the profile behind its ratios.
            let account = algo == "ec-p256";
            let (mut cpu, mut cpu_seconds, mut answered) = (CpuTicks::default(), 0.0, 0usize);
            let figure = bracketed(
                &env,
                &ctx,
                &subject,
                algo,
                || {
                    gateway_closed(
                        &client,
                        &subject.token,
                        body.clone(),
                        batch,
                        concurrency_for(batch, env.workers),
                        env.seconds,
                    )
                },
                &mut raw_prev,
                |run, ticks, seconds| {
                    if account {
                        cpu += ticks;
                        cpu_seconds += seconds;
                        answered += run.latencies.len();
                    }
                },
            )
            .await?;
            let (sps, raw, ratio) = (figure.gateway_sps(), figure.raw_sps(), figure.ratio());
            let latencies = &figure.latencies;
            let (p50, p95, p99) = (
                percentile(latencies, 0.5),
                percentile(latencies, 0.95),
                percentile(latencies, 0.99),
            );
            let per_round: Vec<f64> = figure.round_ratios().into_iter().map(round3).collect();
            let spread = per_round
                .iter()
                .copied()
                .fold((f64::MAX, f64::MIN), |(lo, hi), r| (lo.min(r), hi.max(r)));
            println!(
                "{algo:<9} {batch:>6} {raw:>10.0} {sps:>12.0} {ratio:>7.3} {:>11} {p50:>9.2} {p95:>9.2} {p99:>9.2} {:>6}",
                format!("{:.2}–{:.2}", spread.0, spread.1),
                figure.errors,
            );
            runs.push(json!({ "algo": algo, "batch": batch, "raw_sps": raw.round(), "gateway_sps": sps.round(),
                              "ratio": round3(ratio), "round_ratios": per_round,
                              "p50_ms": p50, "p95_ms": p95, "p99_ms": p99, "errors": figure.errors }));
            ratio_by_batch.push((batch, ratio, sps));
            if account && answered > 0 {
                // A tick is 10 ms of one core. Per request at batch 1, per hash above.
                let per = (answered * batch) as f64;
                let us = |ticks: u64| ticks as f64 * 10_000.0 / per;
                let r1 = |x: f64| (x * 10.0).round() / 10.0;
                let total = cpu.hsm + cpu.gateway + cpu.redis + cpu.postgres + cpu.client;
                let busy = total as f64 / 100.0 / cpu_seconds;
                let what = if batch == 1 {
                    "request".to_owned()
                } else {
                    format!("hash at batch {batch}")
                };
                println!(
                    "  CPU per {what}, µs: HSM threads {:.1}, rest of the gateway {:.1}, Redis {:.1}, \
                     PostgreSQL {:.1}, load client {:.1}; total {:.1} ({busy:.2} cores busy)",
                    us(cpu.hsm), us(cpu.gateway), us(cpu.redis), us(cpu.postgres), us(cpu.client), us(total)
                );
                let key = if batch == 1 {
                    "batch1_cpu_us_per_request".to_owned()
                } else {
                    format!("batch{batch}_cpu_us_per_hash")
                };
                extras.insert(
                    key,
                    json!({ "hsm_threads": r1(us(cpu.hsm)), "gateway_other_threads": r1(us(cpu.gateway)),
                            "redis": r1(us(cpu.redis)), "postgres": r1(us(cpu.postgres)),
                            "load_client": r1(us(cpu.client)), "total": r1(us(total)),
                            "cores_busy": (busy * 100.0).round() / 100.0 }),
                );
            }
        }
        if let (Some((_, r100, s100)), Some((_, r1000, s1000))) = (
            ratio_by_batch.iter().find(|(b, _, _)| *b == 100),
            ratio_by_batch.iter().find(|(b, _, _)| *b == 1000),
        ) {
            // Time per batch is batch / throughput. Divided by the raw speed measured next to
            // each (the ratios), the VM's drift between the two figures cancels out.
            let linear = 10.0 * r100 / r1000;
            println!("{algo} batch 1000 takes {linear:.2} × the time of batch 100 (at the HSM's speed of the moment)");
            extras.insert(
                format!("linearity_{algo}"),
                json!({ "t1000_over_t100": (linear * 100.0).round() / 100.0,
                        "t1000_over_t100_unnormalised": (10.0 * s100 / s1000 * 100.0).round() / 100.0 }),
            );
        }
        if algo == "ec-p256" {
            if let Some((_, _, s1)) = ratio_by_batch.iter().find(|(b, _, _)| *b == 1) {
                let rate = s1 / 2.0;
                let body = sign_body(&subject, &sad, algo, 1);
                let before = histograms(&client).await?;
                let run = gateway_open(&client, &subject.token, body, rate, env.long()).await?;
                let after = histograms(&client).await?;
                let p99 = percentile(&run.latencies, 0.99);
                let max = run.latencies.last().copied().unwrap_or(f64::NAN);
                let ms = |name| p99_bound(&before, &after, name).map_or(f64::NAN, |s| s * 1000.0);
                let (server, redis, hsm, audit) = (
                    ms("sigillo_sign_hash_duration_seconds{}"),
                    ms("sigillo_redis_duration_seconds{op=\"consume_sad\"}"),
                    ms("sigillo_hsm_job_duration_seconds{op=\"sign\"}"),
                    ms("sigillo_audit_commit_duration_seconds{}"),
                );
                println!(
                    "ec-p256 batch 1 at half the maximum rate ({rate:.0} req/s): p99 {p99:.2} ms, max {max:.1} ms, {} errors",
                    run.errors
                );
                println!(
                    "  inside the gateway, p99 at most: signHash {server} ms; SAD consume (Redis) {redis} ms, \
                     HSM job {hsm} ms, audit commit {audit} ms"
                );
                extras.insert(
                    "batch1_half_rate".into(),
                    json!({ "rate": rate.round(), "p99_ms": p99, "max_ms": max, "errors": run.errors,
                            "gateway_sign_hash_p99_le_ms": server, "redis_consume_p99_le_ms": redis,
                            "hsm_job_p99_le_ms": hsm, "audit_commit_p99_le_ms": audit }),
                );
            }
        }
    }
    if let Some(many) = std::env::var("BENCH_MANY")
        .ok()
        .and_then(|n| n.parse::<usize>().ok())
        .filter(|n| *n > 0)
    {
        extras.insert(
            "many_credentials".into(),
            many_credentials(&client, &env, &ctx, many, &runs).await?,
        );
    }
    let (rss_sign, peak_sign) = rss_mb(env.gateway_pid).unwrap_or((f64::NAN, f64::NAN));
    println!("gateway RSS after the signing runs: {rss_sign:.1} MB now, {peak_sign:.1} MB peak");
    extras.insert(
        "rss_after_signing_mb".into(),
        json!((peak_sign * 10.0).round() / 10.0),
    );
    let mut flow_subjects = Vec::new();
    for _ in 0..4 {
        flow_subjects.push(client.subject("ec-p256").await?);
    }
    let (flows_per_s, flow_errors) = flows(client.clone(), flow_subjects, env.long()).await?;
    println!("full flow (login → sendOTP → authorize PIN+OTP → signHash): {flows_per_s:.1} flows/s, {flow_errors} errors");
    let (rss, peak) = rss_mb(env.gateway_pid).unwrap_or((f64::NAN, f64::NAN));
    println!("gateway RSS {rss:.1} MB now, {peak:.1} MB peak");
    let mut report = json!({ "runs": runs, "rss_mb": (peak * 10.0).round() / 10.0, "rss_now_mb": (rss * 10.0).round() / 10.0,
                             "flows_per_s": (flows_per_s * 10.0).round() / 10.0, "workers": env.workers, "seconds": env.seconds, "rounds": env.rounds });
    if let Some(obj) = report.as_object_mut() {
        obj.extend(extras);
    }
    if let Some(dir) = env.report.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&env.report, serde_json::to_string_pretty(&report)?)?;
    println!("report: {}", env.report.display());
    Ok(())
}

/// `BENCH_TSA=1`: RFC 3161 tokens per second from `POST /tsa` (closed loop, SHA-256 queries
/// without certReq) next to the raw HSM rate of the TSA key itself (EC P-256), and how many
/// tokens each HSM sign job carried (the TSA batches concurrent requests).
async fn tsa_bench(client: &Client, env: &Env, ctx: &Pkcs11) -> Result<()> {
    // The TSA key's CKA_ID: the gateway's own-object prefix and "tsa-1".
    let prefix = std::env::var("SIGILLO__HSM__LABEL_PREFIX").unwrap_or_else(|_| "sigillo-".into());
    let key_id = format!("{prefix}tsa-1").into_bytes();
    let host = host_of(&env.public).to_owned();
    // TimeStampReq v1 { messageImprint { sha256, 32 bytes } }.
    let mut query = vec![
        0x30, 0x36, 0x02, 0x01, 0x01, 0x30, 0x31, 0x30, 0x0d, 0x06, 0x09,
    ];
    query.extend_from_slice(&[
        0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00,
    ]);
    query.extend_from_slice(&[0x04, 0x20]);
    query.extend_from_slice(&[7u8; 32]);
    let mut request = format!(
        "POST /tsa HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/timestamp-query\r\n\
         Content-Length: {}\r\n\r\n",
        query.len()
    )
    .into_bytes();
    request.extend_from_slice(&query);
    let request = bytes::Bytes::from(request);
    // id-ct-TSTInfo: only a granted reply carries it.
    const GRANTED: &[u8] = &[
        0x06, 0x0b, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x10, 0x01, 0x04,
    ];
    let concurrency = std::env::var("BENCH_TSA_CONCURRENCY")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(64usize);
    let raw_before = {
        let (env_ctx, id) = (ctx.clone(), key_id.clone());
        let (label, pin, workers, seconds) = (
            env.token_label.clone(),
            env.pin.clone(),
            env.workers,
            env.seconds,
        );
        tokio::task::spawn_blocking(move || {
            raw_key_sps(&env_ctx, &label, &pin, workers, seconds, id)
        })
        .await??
    };
    let before = histograms(client).await?;
    let mut wires = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        wires.push(Wire::connect(&host).await?);
    }
    let deadline = Instant::now() + Duration::from_secs_f64(env.long());
    let started = Instant::now();
    let tasks: Vec<_> = wires
        .into_iter()
        .map(|mut wire| {
            let request = request.clone();
            tokio::spawn(async move {
                let (mut lat, mut errors) = (Vec::new(), 0u64);
                while Instant::now() < deadline {
                    let t0 = Instant::now();
                    match wire.round_trip(&request, GRANTED).await {
                        Ok((200, true)) => lat.push(t0.elapsed().as_secs_f64() * 1000.0),
                        Ok(_) => errors += 1,
                        Err(_) => {
                            errors += 1;
                            break;
                        }
                    }
                }
                (lat, errors)
            })
        })
        .collect();
    let (mut latencies, mut errors) = (Vec::new(), 0u64);
    for task in tasks {
        let (lat, e) = task.await?;
        latencies.extend(lat);
        errors += e;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let after = histograms(client).await?;
    let raw_after = {
        let (env_ctx, id) = (ctx.clone(), key_id.clone());
        let (label, pin, workers, seconds) = (
            env.token_label.clone(),
            env.pin.clone(),
            env.workers,
            env.seconds,
        );
        tokio::task::spawn_blocking(move || {
            raw_key_sps(&env_ctx, &label, &pin, workers, seconds, id)
        })
        .await??
    };
    latencies.sort_by(|a, b| a.total_cmp(b));
    let tokens = latencies.len() as f64;
    let tps = tokens / elapsed;
    let raw = (raw_before + raw_after) / 2.0;
    let jobs = {
        let count = |h: &std::collections::HashMap<String, Vec<(f64, f64)>>| {
            h.get("sigillo_hsm_job_duration_seconds{op=\"sign\"}")
                .and_then(|b| b.iter().find(|(le, _)| le.is_infinite()).map(|(_, n)| *n))
                .unwrap_or(0.0)
        };
        count(&after) - count(&before)
    };
    let (p50, p99) = (percentile(&latencies, 0.5), percentile(&latencies, 0.99));
    println!(
        "tsa ec-p256: {tps:.0} tokens/s over {concurrency} connections (raw HSM {raw:.0} sig/s with the TSA key, \
         ratio {:.3}); p50 {p50:.2} ms, p99 {p99:.2} ms; {:.1} tokens per HSM sign job; {errors} errors",
        tps / raw,
        if jobs > 0.0 { tokens / jobs } else { f64::NAN },
    );
    let report = json!({ "tsa": { "tokens_per_s": tps.round(), "raw_sps": raw.round(), "ratio": round3(tps / raw),
                                  "concurrency": concurrency, "p50_ms": p50, "p99_ms": p99,
                                  "tokens_per_hsm_job": if jobs > 0.0 { round3(tokens / jobs) } else { 0.0 },
                                  "errors": errors, "workers": env.workers, "seconds": env.long() } });
    if let Some(dir) = env.report.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&env.report, serde_json::to_string_pretty(&report)?)?;
    println!("report: {}", env.report.display());
    Ok(())
}

/// Raw HSM rate of the EC key `id`: `workers` threads, each with its own session, signing a
/// SHA-256 digest in a loop for `seconds` (as `raw_sps` does for a credential's key).
fn raw_key_sps(
    ctx: &Pkcs11,
    token_label: &str,
    pin: &str,
    workers: usize,
    seconds: f64,
    id: Vec<u8>,
) -> Result<f64> {
    let slot = ctx
        .get_slots_with_token()?
        .into_iter()
        .find(|s| {
            ctx.get_token_info(*s)
                .map(|i| i.label().trim_end() == token_label)
                .unwrap_or(false)
        })
        .ok_or("token not found")?;
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let threads: Vec<_> = (0..workers)
        .map(|_| {
            let (ctx, stop, count, id, pin) = (
                ctx.clone(),
                stop.clone(),
                count.clone(),
                id.clone(),
                pin.to_owned(),
            );
            std::thread::spawn(move || -> Result<()> {
                let session = ctx.open_ro_session(slot)?;
                let _ = session.login(UserType::User, Some(&AuthPin::new(pin.into())));
                let key = *session
                    .find_objects(&[
                        Attribute::Class(ObjectClass::PRIVATE_KEY),
                        Attribute::Id(id),
                    ])?
                    .first()
                    .ok_or("TSA key not found")?;
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    session.sign(&Mechanism::Ecdsa, key, &[7u8; 32])?;
                    n += 1;
                }
                count.fetch_add(n, Ordering::Relaxed);
                Ok(())
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs_f64(seconds));
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().map_err(|_| "raw thread panicked")??;
    }
    Ok(count.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64())
}

/// An OCSPRequest (SHA-1 CertID) for `leaf` issued by `issuer`, with a random 16-byte nonce
/// when `nonce`.
fn ocsp_request(
    leaf: &openssl::x509::X509,
    issuer: &openssl::x509::X509,
    nonce: bool,
) -> Result<Vec<u8>> {
    use openssl::hash::{hash, MessageDigest};
    use sigillo::der;
    let spki = issuer.public_key()?.public_key_to_der()?;
    let key = der::spki_key_bits(&spki).ok_or("issuer key")?;
    let serial = leaf.serial_number().to_bn()?.to_vec();
    let cert_id = der::tlv(
        0x30,
        &[
            der::tlv(
                0x30,
                &[der::oid(&[1, 3, 14, 3, 2, 26]), vec![0x05, 0x00]].concat(),
            ),
            der::tlv(
                0x04,
                &hash(MessageDigest::sha1(), &issuer.subject_name().to_der()?)?,
            ),
            der::tlv(0x04, &hash(MessageDigest::sha1(), key)?),
            der::uint(&serial),
        ]
        .concat(),
    );
    let mut tbs = der::tlv(0x30, &der::tlv(0x30, &cert_id));
    if nonce {
        let mut value = [0u8; 16];
        openssl::rand::rand_bytes(&mut value)?;
        let ext = der::extension(
            &[1, 3, 6, 1, 5, 5, 7, 48, 1, 2],
            false,
            &der::tlv(0x04, &value),
        );
        tbs.extend(der::tlv(0xa2, &der::tlv(0x30, &ext)));
    }
    Ok(der::tlv(0x30, &der::tlv(0x30, &tbs)))
}

/// `POST /pki/ocsp` as bytes ready to write.
fn ocsp_http(host: &str, body: &[u8]) -> bytes::Bytes {
    let mut req = format!(
        "POST /pki/ocsp HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/ocsp-request\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body);
    req.into()
}

/// OCSP responses/s, closed loop on `concurrency` connections for `seconds`: with a fresh
/// nonce per request (each answer signed in the HSM), and without (the reused "good" answer).
async fn ocsp_bench(c: &Client) -> Result<Value> {
    let subject = c.subject("ec-p256").await?;
    let info = c
        .ok(
            format!("{}/csc/v2/credentials/info", c.env.public),
            Some(&subject.token),
            &json!({ "credentialID": subject.credential, "certificates": "chain" }),
            200,
        )
        .await?;
    let chain: Vec<openssl::x509::X509> = info["cert"]["certificates"]
        .as_array()
        .ok_or("no chain")?
        .iter()
        .map(|b64| -> Result<openssl::x509::X509> {
            Ok(openssl::x509::X509::from_der(
                &STANDARD.decode(b64.as_str().ok_or("not a string")?)?,
            )?)
        })
        .collect::<Result<_>>()?;
    let (leaf, issuer) = (
        chain.first().ok_or("no leaf")?,
        chain.get(1).ok_or("no issuer")?,
    );
    let host = host_of(&c.env.public).to_owned();
    let concurrency = (c.env.workers * 8).max(16);
    let mut figures = serde_json::Map::new();
    for nonce in [true, false] {
        // Pre-built requests: distinct nonces, so that nothing but the signature repeats.
        let requests: Arc<Vec<bytes::Bytes>> = Arc::new(
            (0..if nonce { 4096 } else { 1 })
                .map(|_| Ok(ocsp_http(&host, &ocsp_request(leaf, issuer, nonce)?)))
                .collect::<Result<_>>()?,
        );
        let deadline = Instant::now() + Duration::from_secs_f64(c.env.seconds);
        let started = Instant::now();
        let mut tasks = Vec::new();
        for t in 0..concurrency {
            let (host, requests) = (host.clone(), requests.clone());
            tasks.push(tokio::spawn(async move {
                let mut wire = Wire::connect(&host).await?;
                let (mut ok, mut errors, mut i) = (0u64, 0u64, t);
                while Instant::now() < deadline {
                    let request = requests.get(i % requests.len()).ok_or("no request")?;
                    i += concurrency;
                    // responseStatus successful, then the basic response type's OID.
                    match wire.round_trip(request, &[0x0a, 0x01, 0x00, 0xa0]).await? {
                        (200, true) => ok += 1,
                        _ => errors += 1,
                    }
                }
                Ok::<_, BoxError>((ok, errors))
            }));
        }
        let (mut ok, mut errors) = (0u64, 0u64);
        for task in tasks {
            let (o, e) = task.await??;
            ok += o;
            errors += e;
        }
        let rate = ok as f64 / started.elapsed().as_secs_f64();
        let what = if nonce {
            "with nonce (signed per request)"
        } else {
            "without nonce (reused good answer)"
        };
        println!("OCSP responses/s {what}: {rate:.0} ({concurrency} connections, {errors} errors)");
        figures.insert(
            if nonce {
                "ocsp_nonce_per_s"
            } else {
                "ocsp_cached_per_s"
            }
            .into(),
            json!(rate.round()),
        );
    }
    Ok(Value::Object(figures))
}
