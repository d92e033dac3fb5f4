//! `sigillo-bench provision`: subscribers made the way a real one is made, for every tool that
//! needs signing users (the k6 scenarios, scripts/schemathesis, scripts/dev's demo, the bench
//! itself). The operator's part goes through the admin API, the subscriber's part through the
//! public one and the loopback SMTP server's Maildir:
//!
//! admin creates the user → the setup e-mail arrives → `POST /api/v1/setup` (password and
//! envelope passphrase) → a TOTP user signs in and enrols the app → admin creates the
//! credential → the sealed envelope arrives → the PDF is opened with the passphrase → the
//! credential is activated with the PUK, a new PIN and an OTP.
//!
//! N subscribers are made concurrently (bounded) and written as JSON (`--out`): every secret
//! the subscriber holds, so that a load generator can sign as them. Nothing here reads the
//! database or the HSM: what works for this client works for a real one.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use futures_util::stream::{self, StreamExt};
use serde::Serialize;
use serde_json::{json, Map, Value};
use sigillo::mail::maildir;

use super::{random_digits, Result};

/// How the subscriber receives OTPs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OtpKind {
    /// An authenticator app, enrolled by the subscriber after setup.
    Totp,
    /// SMS, read back from the gateway's SMS outbox file.
    Sms,
}

impl OtpKind {
    /// The admin API's `otp_method`.
    pub fn name(self) -> &'static str {
        match self {
            OtpKind::Totp => "totp",
            OtpKind::Sms => "sms",
        }
    }
}

/// `sigillo-bench provision …`
#[derive(clap::Parser, Debug)]
#[command(
    name = "sigillo-bench provision",
    about = "Enrols and activates subscribers through the real subscriber flow"
)]
pub struct Args {
    /// How many subscribers.
    #[arg(long, default_value_t = 1)]
    pub users: usize,
    /// Subscribers enrolled at the same time.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// The OTP method of every subscriber.
    #[arg(long, value_enum, default_value_t = OtpKind::Totp)]
    pub otp: OtpKind,
    /// The signing key's algorithm.
    #[arg(long, default_value = "ec-p256")]
    pub key_algo: String,
    /// User ids are `<prefix>.<n>`; with --users 1 and a `user_id` in --user, that one.
    #[arg(long, default_value = "prov")]
    pub prefix: String,
    /// Fields of POST /admin/v1/users (JSON object) that replace the generated ones, e.g.
    /// the demo subscriber's name and e-mail address.
    #[arg(long)]
    pub user: Option<String>,
    /// Where to write the subscribers (JSON).
    #[arg(long)]
    pub out: PathBuf,
    /// Also save each envelope PDF here, as `<user_id>.pdf`.
    #[arg(long)]
    pub envelopes: Option<PathBuf>,
    /// Seconds to wait for each e-mail.
    #[arg(long, default_value_t = 30)]
    pub mail_timeout: u64,
    /// The public listener.
    #[arg(long, env = "BENCH_PUBLIC_URL")]
    pub public_url: String,
    /// The admin listener.
    #[arg(long, env = "BENCH_ADMIN_URL")]
    pub admin_url: String,
    /// The admin bearer token.
    #[arg(long, env = "BENCH_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: String,
    /// The SMTP server's Maildir (scripts/lib.sh start_smtp).
    #[arg(long, env = "BENCH_MAILDIR")]
    pub maildir: PathBuf,
    /// The gateway's SMS outbox (otp.outbox_path), for --otp sms.
    #[arg(long, env = "BENCH_OUTBOX")]
    pub outbox: Option<PathBuf>,
    /// A CA certificate (PEM) to trust for HTTPS listeners.
    #[arg(long)]
    pub cacert: Option<PathBuf>,
    /// A client certificate and its key in one PEM file (the admin listener under TLS).
    #[arg(long)]
    pub client_pem: Option<PathBuf>,
}

/// The HTTP side of the gateway, shared by the provisioner and the bench.
pub struct Gateway {
    pub http: reqwest::Client,
    pub public: String,
    pub admin: String,
    pub admin_token: String,
    pub maildir: PathBuf,
    pub outbox: Option<PathBuf>,
    pub mail_timeout: Duration,
}

/// What one subscriber should look like.
#[derive(Clone)]
pub struct Spec {
    pub otp: OtpKind,
    pub key_algo: String,
    pub prefix: String,
    /// Replaces generated fields of the admin request.
    pub user: Map<String, Value>,
    pub envelopes: Option<PathBuf>,
}

/// A subscriber with an active signing credential and everything they hold.
#[derive(Debug, Clone, Serialize)]
pub struct Subscriber {
    pub user_id: String,
    pub password: String,
    /// The envelope passphrase chosen at setup.
    pub passphrase: String,
    pub email: String,
    pub phone: String,
    pub otp_method: OtpKind,
    /// The authenticator app's otpauth:// URI (TOTP only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub totp_uri: Option<String>,
    /// The last TOTP step the gateway accepted for this user: the next code must be later.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_step: Option<u64>,
    pub credential_id: String,
    pub pin: String,
    /// From the envelope; it suspends every credential of the subscriber.
    pub emergency_code: String,
    /// Where the envelope PDF was saved (--envelopes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub envelope: Option<PathBuf>,
    /// The access token of the last sign-in (not written out).
    #[serde(skip)]
    pub token: String,
}

fn random_from(alphabet: &[u8], n: usize) -> String {
    (0..n)
        .filter_map(|_| {
            alphabet
                .get(rand::random::<usize>() % alphabet.len())
                .map(|b| char::from(*b))
        })
        .collect()
}

/// A password the policy takes: upper, lower, digit, special ('-', which an interactive shell
/// leaves alone where '!' would expand history in scripts/dev's copy-paste lines), no
/// character three times in a row.
fn password() -> String {
    loop {
        let p = format!(
            "Pv-{}-7q",
            random_from(
                b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789",
                14
            )
        );
        let chars: Vec<char> = p.chars().collect();
        if !chars
            .windows(3)
            .any(|w| w.iter().all(|c| Some(c) == w.first()))
        {
            return p;
        }
    }
}

/// The current TOTP step and the seconds left in it.
fn now_step() -> (u64, f64) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64();
    ((now / 30.0) as u64, 30.0 - now % 30.0)
}

/// The step of the next TOTP code: later than `last`, as early as the gateway's ±1 window
/// allows (the previous step when nothing was used yet), so that a subscriber enrolled here
/// has the current and the next step left for its first authorisation. A code of the previous
/// step is not sent in the last 3 s of the current one (it would die in flight); a user that
/// used the next step already waits for the step after.
async fn next_step(last: Option<u64>) -> u64 {
    loop {
        let (now, left) = now_step();
        let step = last.map_or(now.saturating_sub(1), |l| {
            (l + 1).max(now.saturating_sub(1))
        });
        let dying = step < now && left < 3.0;
        if step > now + 1 || dying {
            tokio::time::sleep(Duration::from_secs_f64(left + 0.1)).await;
            continue;
        }
        return step;
    }
}

/// The code of `uri` (otpauth://totp/…) for `step`.
fn totp_code(uri: &str, step: u64) -> Result<String> {
    let totp = totp_rs::TOTP::from_url_unchecked(uri).map_err(|e| format!("otpauth URI: {e}"))?;
    Ok(totp.generate(step * totp.step))
}

impl Gateway {
    /// The gateway of `args` (TLS trust and client certificate included).
    pub fn new(args: &Args) -> Result<Gateway> {
        let mut http = reqwest::Client::builder().pool_max_idle_per_host(64);
        if let Some(ca) = &args.cacert {
            http = http.add_root_certificate(reqwest::Certificate::from_pem(&std::fs::read(ca)?)?);
        }
        if let Some(pem) = &args.client_pem {
            http = http.identity(reqwest::Identity::from_pem(&std::fs::read(pem)?)?);
        }
        Ok(Gateway {
            http: http.build()?,
            public: args.public_url.trim_end_matches('/').to_owned(),
            admin: args.admin_url.trim_end_matches('/').to_owned(),
            admin_token: args.admin_token.clone(),
            maildir: args.maildir.clone(),
            outbox: args.outbox.clone(),
            mail_timeout: Duration::from_secs(args.mail_timeout),
        })
    }

    pub async fn post(
        &self,
        url: String,
        token: Option<&str>,
        body: &Value,
    ) -> Result<(u16, Value)> {
        let mut req = self.http.post(url).json(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let res = req.send().await?;
        let status = res.status().as_u16();
        let text = res.text().await?;
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
    }

    /// POST to the public listener, expecting `want`.
    pub async fn ok(
        &self,
        url: String,
        token: Option<&str>,
        body: &Value,
        want: u16,
    ) -> Result<Value> {
        let (status, body_out) = self.post(url.clone(), token, body).await?;
        if status != want {
            return Err(format!("{url}: HTTP {status}: {body_out}").into());
        }
        Ok(body_out)
    }

    /// POST to the admin listener, expecting 201.
    pub async fn admin(&self, path: &str, body: &Value) -> Result<Value> {
        let res = self
            .http
            .post(format!("{}{path}", self.admin))
            .bearer_auth(&self.admin_token)
            .json(body)
            .send()
            .await?;
        let status = res.status().as_u16();
        let text = res.text().await?;
        if status != 201 {
            return Err(format!("{path}: HTTP {status}: {text}").into());
        }
        Ok(serde_json::from_str(&text)?)
    }

    pub async fn login(&self, user: &str, password: &str) -> Result<String> {
        let res = self
            .http
            .post(format!("{}/csc/v2/auth/login", self.public))
            .basic_auth(user, Some(password))
            .json(&json!({}))
            .send()
            .await?;
        let body: Value = res.json().await?;
        body["access_token"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("login of {user} failed: {body}").into())
    }

    /// Sends an OTP to `phone`'s owner and reads it back from the SMS outbox.
    pub async fn otp(&self, token: &str, credential: &str, phone: &str) -> Result<String> {
        let outbox = self
            .outbox
            .as_deref()
            .ok_or("an SMS OTP needs the outbox (BENCH_OUTBOX)")?;
        let before = std::fs::read_to_string(outbox)
            .map(|s| s.len())
            .unwrap_or(0);
        self.ok(
            format!("{}/csc/v2/credentials/sendOTP", self.public),
            Some(token),
            &json!({ "credentialID": credential }),
            204,
        )
        .await?;
        let text = std::fs::read_to_string(outbox)?;
        let fresh = text.get(before.min(text.len())..).unwrap_or_default();
        // Other flows write to the same outbox: take the newest message to this phone.
        let all = fresh.lines().chain(text.lines().rev());
        for line in all {
            let msg: Value = serde_json::from_str(line).unwrap_or(Value::Null);
            if msg["to"] == phone {
                let body = msg["text"].as_str().unwrap_or_default();
                if let Some(code) = body
                    .split(|c: char| !c.is_ascii_digit())
                    .find(|w| w.len() == 6)
                {
                    return Ok(code.to_owned());
                }
            }
        }
        Err(format!("no OTP for {phone} in the outbox").into())
    }

    /// The files of the messages to `address` now in the Maildir.
    fn mail_names(&self, address: &str) -> HashSet<PathBuf> {
        maildir::messages_for(&self.maildir, address)
            .into_iter()
            .map(|m| m.path)
            .collect()
    }

    /// Waits for a message to `address` not in `seen` of which `pick` makes something.
    async fn wait_mail<T>(
        &self,
        address: &str,
        seen: &HashSet<PathBuf>,
        what: &str,
        pick: impl Fn(&maildir::StoredMail) -> Option<T>,
    ) -> Result<T> {
        let wanted = |m: &maildir::StoredMail| !seen.contains(&m.path) && pick(m).is_some();
        maildir::wait_for(&self.maildir, address, self.mail_timeout, wanted)
            .await
            .as_ref()
            .and_then(&pick)
            .ok_or_else(|| {
                format!(
                    "no {what} for {address} in {} after {} s",
                    self.maildir.display(),
                    self.mail_timeout.as_secs()
                )
                .into()
            })
    }

    /// One subscriber through the whole flow; `n` makes the user id unique within the run.
    pub async fn subscriber(&self, spec: &Spec, n: usize) -> Result<Subscriber> {
        let generated_id = format!("{}.{n}", spec.prefix);
        let user_id = spec
            .user
            .get("user_id")
            .and_then(Value::as_str)
            .unwrap_or(&generated_id)
            .to_owned();
        let mut body = json!({
            "user_id": user_id,
            "given_name": "Carico",
            "surname": "Prova",
            "fiscal_code": format!("PRV{}", random_from(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", 13)),
            "email": format!("{}@load.example.org", user_id.to_ascii_lowercase()),
            "phone": format!("+39{}", random_digits(10)),
            "otp_method": spec.otp.name(),
        });
        if let Some(obj) = body.as_object_mut() {
            obj.extend(spec.user.clone());
        }
        let email = body["email"]
            .as_str()
            .ok_or("email: a string expected")?
            .to_ascii_lowercase();
        let phone = body["phone"].as_str().unwrap_or_default().to_owned();

        // The operator enrols the subscriber; sigillo e-mails the setup link.
        let seen = self.mail_names(&email);
        self.admin("/admin/v1/users", &body).await?;
        let token = self
            .wait_mail(&email, &seen, "setup e-mail", |m| setup_token(&m.text))
            .await?;

        // The subscriber chooses the password and the envelope passphrase.
        let password = password();
        let passphrase = format!(
            "busta {} {}",
            random_from(b"abcdefghijkmnopqrstuvwxyz", 8),
            random_digits(6)
        );
        self.ok(
            format!("{}/api/v1/setup", self.public),
            None,
            &json!({ "token": token, "password": password, "passphrase": passphrase }),
            204,
        )
        .await?;

        // A TOTP subscriber enrols the app on first sign-in.
        let (mut totp_uri, mut last_step) = (None, None);
        if spec.otp == OtpKind::Totp {
            let access = self.login(&user_id, &password).await?;
            let started = self
                .ok(
                    format!("{}/api/v1/otp/totp/enrol", self.public),
                    Some(&access),
                    &json!({}),
                    200,
                )
                .await?;
            let uri = started["otpauth_uri"]
                .as_str()
                .ok_or("no otpauth_uri")?
                .to_owned();
            let step = next_step(None).await;
            self.ok(
                format!("{}/api/v1/otp/totp/enrol/confirm", self.public),
                Some(&access),
                &json!({ "otp": totp_code(&uri, step)? }),
                204,
            )
            .await?;
            totp_uri = Some(uri);
            last_step = Some(step);
        }

        // The operator creates the credential; its envelope goes out at once.
        let seen = self.mail_names(&email);
        let created = self
            .admin(
                &format!("/admin/v1/users/{user_id}/credentials"),
                &json!({ "key_algo": spec.key_algo, "purpose": "signing" }),
            )
            .await?;
        let credential_id = created["credential_id"]
            .as_str()
            .ok_or("no credential_id")?
            .to_owned();
        let pdf = self
            .wait_mail(&email, &seen, "envelope", |m| {
                m.attachments
                    .iter()
                    .find(|a| a.content_type.eq_ignore_ascii_case("application/pdf"))
                    .map(|a| a.content.clone())
            })
            .await?;
        let opened = sigillo::envelope::open(&pdf, &passphrase)?;
        let envelope = match &spec.envelopes {
            Some(dir) => {
                std::fs::create_dir_all(dir)?;
                let path = dir.join(format!("{user_id}.pdf"));
                write_private(&path, &pdf)?;
                Some(path)
            }
            None => None,
        };

        // Activation: PUK + a new PIN + an OTP (signed in again: a new OTP device may end the
        // sessions of before).
        let access = self.login(&user_id, &password).await?;
        let pin = pin();
        let otp = match (&totp_uri, spec.otp) {
            (Some(uri), OtpKind::Totp) => {
                let step = next_step(last_step).await;
                last_step = Some(step);
                totp_code(uri, step)?
            }
            _ => self.otp(&access, &credential_id, &phone).await?,
        };
        let activated = self
            .ok(
                format!(
                    "{}/api/v1/credentials/{credential_id}/activate",
                    self.public
                ),
                Some(&access),
                &json!({ "puk": opened.puk, "new_pin": pin, "otp": otp }),
                200,
            )
            .await?;
        if activated["status"] != "active" {
            return Err(format!("activation of {credential_id}: {activated}").into());
        }
        Ok(Subscriber {
            user_id,
            password,
            passphrase,
            email,
            phone,
            otp_method: spec.otp,
            totp_uri,
            last_step,
            credential_id,
            pin,
            emergency_code: opened.emergency_code,
            envelope,
            token: access,
        })
    }

    /// `count` subscribers, `concurrency` at a time, in the order of their numbers.
    pub async fn subscribers(
        &self,
        spec: &Spec,
        count: usize,
        concurrency: usize,
    ) -> Result<Vec<Subscriber>> {
        let mut made: Vec<(usize, Subscriber)> = stream::iter(0..count)
            .map(|n| async move { self.subscriber(spec, n).await.map(|s| (n, s)) })
            .buffer_unordered(concurrency.max(1))
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<Result<_>>()?;
        made.sort_by_key(|(n, _)| *n);
        Ok(made.into_iter().map(|(_, s)| s).collect())
    }
}

/// A PIN that is not trivially weak: 8 digits, at least 4 distinct.
fn pin() -> String {
    loop {
        let p = random_digits(8);
        if p.bytes().collect::<HashSet<_>>().len() >= 4 {
            return p;
        }
    }
}

/// The setup link's token in an e-mail's text: what follows `token=` (base64url).
fn setup_token(text: &str) -> Option<String> {
    let at = text.find("token=")? + "token=".len();
    let token: String = text
        .get(at..)?
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    (token.len() >= 32).then_some(token)
}

/// `sigillo-bench provision`: makes the subscribers and writes them out.
pub async fn run(args: Args) -> Result<()> {
    let gateway = Gateway::new(&args)?;
    let user = match &args.user {
        Some(text) => match serde_json::from_str(text)? {
            Value::Object(map) => map,
            _ => return Err("--user: a JSON object expected".into()),
        },
        None => Map::new(),
    };
    if args.users != 1
        && ["user_id", "email", "phone"]
            .iter()
            .any(|k| user.contains_key(*k))
    {
        return Err("--user with user_id, email or phone needs --users 1".into());
    }
    let spec = Spec {
        otp: args.otp,
        key_algo: args.key_algo.clone(),
        prefix: args.prefix.clone(),
        user,
        envelopes: args.envelopes.clone(),
    };
    let started = Instant::now();
    let made = gateway
        .subscribers(&spec, args.users, args.concurrency)
        .await?;
    let seconds = started.elapsed().as_secs_f64();
    if let Some(dir) = args.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    write_private(
        &args.out,
        &serde_json::to_vec_pretty(&json!({ "subscribers": made }))?,
    )?;
    eprintln!(
        "provisioned {} subscriber{} ({}, {}) in {seconds:.1} s ({:.2} s each, {} at a time): {}",
        made.len(),
        if made.len() == 1 { "" } else { "s" },
        args.otp.name(),
        args.key_algo,
        seconds / made.len().max(1) as f64,
        args.concurrency.max(1),
        args.out.display()
    );
    Ok(())
}

/// Writes `bytes` to `path`, readable by its owner only (it holds passwords and PINs).
fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setup_token_is_read_from_the_link() {
        let t = "x".repeat(43);
        let text = format!("Apri https://portal.example/portal/setup?token={t}\nentro 72 ore");
        assert_eq!(setup_token(&text), Some(t));
        assert_eq!(setup_token("token=short"), None);
    }

    #[test]
    fn passwords_meet_the_policy() {
        for _ in 0..200 {
            assert!(sigillo::auth::check_policy(&password()).is_ok());
        }
    }
}
