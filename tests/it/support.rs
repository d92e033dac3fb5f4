//! `TestApp`: a gateway on ephemeral ports over the shared test stack, plus helpers to drive
//! it like a client would.

use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use rand::Rng;
use reqwest::StatusCode;
use serde_json::{json, Value};
use sigillo::app::{self, Running};
use sigillo::config::{Config, Secret};

/// Every log line the gateways of this test binary wrote (JSON lines).
pub fn captured_logs() -> String {
    String::from_utf8_lossy(&log_buffer().lock().map(|b| b.clone()).unwrap_or_default())
        .into_owned()
}

fn log_buffer() -> &'static Arc<Mutex<Vec<u8>>> {
    static BUFFER: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    BUFFER.get_or_init(Default::default)
}

#[derive(Clone)]
struct BufferWriter(Arc<Mutex<Vec<u8>>>);

impl Write for BufferWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        // SIGILLO_TEST_LOG_STDERR=1 also shows the gateway logs (cargo test shows them on failure).
        if std::env::var_os("SIGILLO_TEST_LOG_STDERR").is_some() {
            eprint!("{}", String::from_utf8_lossy(buf));
        }
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn init_logging() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        let buffer = log_buffer().clone();
        let _ = tracing_subscriber::fmt()
            .json()
            .with_current_span(true)
            .with_env_filter("info,sigillo=trace")
            .with_writer(move || BufferWriter(buffer.clone()))
            .try_init();
    });
}

pub fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the integration tests through scripts/test, which starts Redis, PostgreSQL and SoftHSM2")
    })
}

pub fn random_suffix() -> String {
    format!(
        "{:012x}",
        rand::thread_rng().gen::<u64>() & 0xffff_ffff_ffff
    )
}

/// A config for a fresh, isolated gateway on the test stack.
pub fn test_config(isolation: &str) -> Config {
    let mut c = Config::defaults().expect("defaults parse");
    c.server.public_addr = "127.0.0.1:0".parse().unwrap();
    c.server.admin_addr = "127.0.0.1:0".parse().unwrap();
    c.server.workers = 1;
    c.database.url = Secret::new(env("SIGILLO_TEST_DATABASE_URL"));
    c.database.schema = format!("t_{isolation}");
    c.database.pool_size = 4;
    c.redis.url = Secret::new(env("SIGILLO_TEST_REDIS_URL"));
    c.redis.key_prefix = format!("t_{isolation}:");
    c.hsm.module = PathBuf::from(env("SIGILLO_TEST_HSM_MODULE"));
    c.hsm.token_label = env("SIGILLO_TEST_HSM_TOKEN_LABEL");
    c.hsm.pin = Secret::new(env("SIGILLO_TEST_HSM_PIN"));
    c.hsm.workers = 2;
    c.hsm.label_prefix = format!("t_{isolation}-");
    c.security.admin_token = Secret::new(format!("admin-{}", random_suffix()));
    c.security.token_secret =
        Secret::new(format!("secret-{}-{}", random_suffix(), random_suffix()));
    c.otp.outbox_path =
        PathBuf::from(env("SIGILLO_TEST_TMP")).join(format!("outbox-{isolation}.jsonl"));
    // Mail goes to scripts/test's loopback SMTP server (its Maildir: SIGILLO_TEST_MAILDIR).
    c.mail.smtp_host = "127.0.0.1".into();
    c.mail.smtp_port = env("SIGILLO_TEST_SMTP_PORT").parse().unwrap();
    c.mail.tls = sigillo::config::SmtpTls::None;
    c.mail.poll_interval_ms = 1000;
    c.mail.retry_base_ms = 200;
    c.mail.retry_max_ms = 2000;
    c.mail.timeout_secs = 5;
    c.mail.lease_secs = 10;
    c.validate().expect("test config is valid");
    c
}

/// A config like [`test_config`], on the test stack's Redis Cluster (three masters, started by
/// scripts/test) instead of its single Redis.
pub fn cluster_config(isolation: &str) -> Config {
    let mut c = test_config(isolation);
    c.redis.cluster_urls = env("SIGILLO_TEST_REDIS_CLUSTER_URLS")
        .split(',')
        .map(Secret::new)
        .collect();
    c.validate().expect("cluster test config is valid");
    c
}

pub struct TestApp {
    pub public: String,
    pub admin: String,
    pub admin_token: String,
    pub config: Config,
    pub client: reqwest::Client,
    pub running: Running,
}

/// A subscriber created through the admin API who completed the setup (and, for TOTP, enrolled
/// the app) as a subscriber would.
#[derive(Default, Clone)]
pub struct TestUser {
    pub user_id: String,
    pub password: String,
    pub totp_uri: Option<String>,
    /// `<user_id>@example.org`: unique, so that the Maildir's per-recipient folder is the user's.
    pub email: String,
    pub passphrase: String,
}

/// A credential created through the admin API, its PUK read from the sealed envelope.
pub struct TestCredential {
    pub id: String,
    pub puk: String,
    /// The emergency code the envelope carried (the newest one of the user).
    pub emergency_code: String,
    pub serial_number: String,
}

pub const PASSWORD: &str = "Sigillo-Test-2026!";
pub const PASSPHRASE: &str = "a long envelope passphrase";

/// The test stack's Maildir (scripts/test's loopback SMTP server).
pub fn test_maildir() -> PathBuf {
    PathBuf::from(env("SIGILLO_TEST_MAILDIR"))
}

/// The token of the newest setup link e-mailed to `email` that is not in `seen`.
pub async fn setup_token_after(email: &str, seen: &[String]) -> String {
    let mail = sigillo::mail::maildir::wait_for(
        &test_maildir(),
        email,
        std::time::Duration::from_secs(30),
        |m| {
            m.link_containing("token=")
                .and_then(|l| l.split_once("token=").map(|(_, t)| t.to_owned()))
                .is_some_and(|t| !seen.contains(&t))
        },
    )
    .await
    .unwrap_or_else(|| panic!("no setup link mailed to {email}"));
    let link = mail.link_containing("token=").unwrap();
    link.split_once("token=").unwrap().1.to_owned()
}

/// The token of the newest setup link e-mailed to `email`.
pub async fn setup_token(email: &str) -> String {
    setup_token_after(email, &[]).await
}

/// What the sealed envelope of `serial_number` mailed to `email` holds, opened with
/// `passphrase` (the newest such envelope whose PUK is not in `seen`).
pub async fn envelope_of(
    email: &str,
    serial_number: &str,
    passphrase: &str,
    seen: &[String],
) -> sigillo::envelope::Opened {
    let file = format!("busta-{serial_number}.pdf");
    let mut found = None;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    while found.is_none() && tokio::time::Instant::now() < deadline {
        found = sigillo::mail::maildir::messages_for(&test_maildir(), email)
            .into_iter()
            .rev()
            .filter_map(|m| m.attachments.into_iter().find(|a| a.filename == file))
            .map(|a| sigillo::envelope::open(&a.content, passphrase).expect("the envelope opens"))
            .find(|o| !seen.contains(&o.puk));
        if found.is_none() {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
    found.unwrap_or_else(|| panic!("no envelope of {serial_number} mailed to {email}"))
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        Self::spawn_with(|_| {}).await
    }

    pub async fn spawn_with(adjust: impl FnOnce(&mut Config)) -> TestApp {
        let mut config = test_config(&random_suffix());
        adjust(&mut config);
        Self::spawn_node(config).await
    }

    /// A gateway node with exactly `config` (several nodes may share one).
    pub async fn spawn_node(config: Config) -> TestApp {
        init_logging();
        let running = app::start(config.clone())
            .await
            .expect("the gateway starts");
        TestApp {
            public: format!("http://{}", running.public_addr),
            admin: format!("http://{}", running.admin_addr),
            admin_token: config.security.admin_token.expose().to_owned(),
            config,
            client: reqwest::Client::new(),
            running,
        }
    }

    pub fn services(&self) -> &sigillo::services::Services {
        &self.running.services
    }

    /// POST to the admin listener with the admin token.
    pub async fn admin_post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let res = self
            .client
            .post(format!("{}{path}", self.admin))
            .bearer_auth(&self.admin_token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = res.status();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    /// POST to the public listener, optionally with a bearer token.
    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> (StatusCode, Value) {
        let mut req = self
            .client
            .post(format!("{}{path}", self.public))
            .json(&body);
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        let res = req.send().await.unwrap();
        let status = res.status();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    /// The admin API's body for a new subscriber (e-mail `<user_id>@example.org`).
    pub fn user_json(user_id: &str, otp_method: &str) -> Value {
        json!({
            "user_id": user_id,
            "given_name": "Mario",
            "surname": "Rossi",
            "fiscal_code": "RSSMRA80A01H501U",
            "email": format!("{user_id}@example.org"),
            "phone": "+393331234567",
            "otp_method": otp_method,
        })
    }

    /// A subscriber as the operator enters it: setup not done yet (no password, no envelope
    /// passphrase, no app).
    pub async fn create_pending_user(&self, otp_method: &str) -> TestUser {
        let user_id = format!("user-{}", random_suffix());
        let (status, body) = self
            .admin_post("/admin/v1/users", Self::user_json(&user_id, otp_method))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        TestUser {
            email: format!("{user_id}@example.org"),
            user_id,
            password: PASSWORD.into(),
            totp_uri: None,
            passphrase: PASSPHRASE.into(),
        }
    }

    /// `POST /api/v1/setup` with the token of the link mailed to `user`.
    pub async fn complete_setup(&self, user: &TestUser) {
        let token = setup_token(&user.email).await;
        let (status, body) = self
            .post(
                "/api/v1/setup",
                None,
                json!({ "token": token, "password": user.password, "passphrase": user.passphrase }),
            )
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    }

    /// A TOTP user's first app, enrolled through the API; returns its otpauth:// URI. The
    /// confirmation uses the previous step's code, so that a test starts with the current and
    /// the next codes unused (as with an app enrolled long ago).
    pub async fn enrol_app(&self, user: &TestUser) -> String {
        let token = self.login(user).await;
        let (status, body) = self
            .post("/api/v1/otp/totp/enrol", Some(&token), json!({}))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let uri = body["otpauth_uri"].as_str().unwrap().to_owned();
        let mut confirmed = false;
        for _ in 0..2 {
            let code = previous_totp_code(&uri);
            let (status, body) = self
                .post(
                    "/api/v1/otp/totp/enrol/confirm",
                    Some(&token),
                    json!({ "otp": code }),
                )
                .await;
            if status == StatusCode::NO_CONTENT {
                confirmed = true;
                break;
            }
            // A step boundary between the code and its check: once more.
            assert_eq!(body["error"], "invalid_code", "{body}");
        }
        assert!(confirmed, "the app's code was refused twice");
        uri
    }

    /// A subscriber through the whole enrolment: created by the operator, setup done through
    /// the mailed link, and (TOTP) the app enrolled.
    pub async fn create_user(&self, otp_method: &str) -> TestUser {
        let mut user = self.create_pending_user(otp_method).await;
        self.complete_setup(&user).await;
        if otp_method == "totp" {
            user.totp_uri = Some(self.enrol_app(&user).await);
        }
        user
    }

    pub async fn create_credential(
        &self,
        user: &TestUser,
        key_algo: &str,
        purpose: &str,
    ) -> TestCredential {
        let (status, body) = self
            .admin_post(
                &format!("/admin/v1/users/{}/credentials", user.user_id),
                json!({ "key_algo": key_algo, "purpose": purpose }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body["status"], "inactive");
        assert_eq!(body["envelope"], "sent", "{body}");
        let serial_number = body["serial_number"].as_str().unwrap().to_owned();
        let opened = envelope_of(&user.email, &serial_number, &user.passphrase, &[]).await;
        assert_eq!(opened.serial_number, serial_number);
        TestCredential {
            id: body["credential_id"].as_str().unwrap().to_owned(),
            puk: opened.puk,
            emergency_code: opened.emergency_code,
            serial_number,
        }
    }

    pub async fn login(&self, user: &TestUser) -> String {
        let res = self
            .client
            .post(format!("{}/csc/v2/auth/login", self.public))
            .basic_auth(&user.user_id, Some(&user.password))
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let body: Value = res.json().await.unwrap();
        body["access_token"].as_str().unwrap().to_owned()
    }

    /// Sends an SMS OTP for `credential` and returns the code from the outbox.
    pub async fn sms_otp(&self, token: &str, credential: &str) -> String {
        let (status, body) = self
            .post(
                "/csc/v2/credentials/sendOTP",
                Some(token),
                json!({ "credentialID": credential }),
            )
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
        self.last_sms_code()
    }

    /// Sends an SMS OTP for `operation` (`pin_change`, `renew`, …) on `credential` through
    /// the portal and returns the code from the outbox.
    pub async fn operation_otp(&self, token: &str, credential: &str, operation: &str) -> String {
        let (status, body) = self
            .post(
                &format!("/api/v1/credentials/{credential}/otp"),
                Some(token),
                json!({ "operation": operation }),
            )
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
        self.last_sms_code()
    }

    /// The 6-digit code in the newest outbox message.
    pub fn last_sms_code(&self) -> String {
        let outbox = std::fs::read_to_string(&self.config.otp.outbox_path).expect("outbox exists");
        let line = outbox.lines().last().expect("a message was sent");
        let message: Value = serde_json::from_str(line).unwrap();
        let text = message["text"].as_str().unwrap();
        text.split(|c: char| !c.is_ascii_digit())
            .find(|w| w.len() == 6)
            .expect("a 6-digit code in the SMS")
            .to_owned()
    }

    pub async fn activate(
        &self,
        token: &str,
        credential: &str,
        puk: &str,
        pin: &str,
        otp: &str,
    ) -> (StatusCode, Value) {
        self.post(
            &format!("/api/v1/credentials/{credential}/activate"),
            Some(token),
            json!({ "puk": puk, "new_pin": pin, "otp": otp }),
        )
        .await
    }
}

/// The current TOTP code of an otpauth:// URI, and the code of the next step.
pub fn totp_codes(uri: &str) -> (String, String) {
    let totp = totp_rs::TOTP::from_url_unchecked(uri).expect("valid otpauth URI");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    (totp.generate(now), totp.generate(now + 30))
}

/// The code of the step before the current one (still accepted: the window is ±1 step).
pub fn previous_totp_code(uri: &str) -> String {
    let totp = totp_rs::TOTP::from_url_unchecked(uri).expect("valid otpauth URI");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    totp.generate(now - 30)
}

/// Asserts a CSC error: status and `error` code, with a non-empty description.
pub fn assert_error(got: &(StatusCode, Value), status: StatusCode, code: &str) {
    assert_eq!(got.0, status, "{}", got.1);
    assert_eq!(got.1["error"], code, "{}", got.1);
    assert!(
        got.1["error_description"]
            .as_str()
            .is_some_and(|d| !d.is_empty()),
        "{}",
        got.1
    );
}

/// A CSC client's view of one version of the API.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Csc {
    V1,
    V2,
}

impl Csc {
    pub fn path(self, method: &str) -> String {
        match self {
            Csc::V1 => format!("/csc/v1/{method}"),
            Csc::V2 => format!("/csc/v2/{method}"),
        }
    }
}

pub fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

pub fn unb64(text: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap()
}

/// `n` distinct random digests of `len` bytes.
pub fn digests(n: usize, len: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|_| (0..len).map(|_| rand::random::<u8>()).collect())
        .collect()
}

pub const OID_SHA256: &str = "2.16.840.1.101.3.4.2.1";

impl TestApp {
    /// A user with an active credential: (user, token, credential id, PIN).
    pub async fn active_credential(
        &self,
        key_algo: &str,
        purpose: &str,
    ) -> (TestUser, String, String, String) {
        let user = self.create_user("sms").await;
        let credential = self.create_credential(&user, key_algo, purpose).await;
        let token = self.login(&user).await;
        let pin = format!("{:08}", rand::thread_rng().gen_range(0..100_000_000u32));
        let otp = self.sms_otp(&token, &credential.id).await;
        let (status, body) = self
            .activate(&token, &credential.id, &credential.puk, &pin, &otp)
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        (user, token, credential.id, pin)
    }

    /// `credentials/authorize` with PIN and a fresh SMS OTP; `hashes` bound when given.
    pub async fn authorize(
        &self,
        v: Csc,
        token: &str,
        credential: &str,
        pin: &str,
        n: usize,
        hashes: Option<&[Vec<u8>]>,
        hash_oid: Option<&str>,
    ) -> (StatusCode, Value) {
        let otp = self.sms_otp(token, credential).await;
        self.authorize_with(v, token, credential, pin, &otp, n, hashes, hash_oid)
            .await
    }

    #[allow(clippy::too_many_arguments)]
    pub async fn authorize_with(
        &self,
        v: Csc,
        token: &str,
        credential: &str,
        pin: &str,
        otp: &str,
        n: usize,
        hashes: Option<&[Vec<u8>]>,
        hash_oid: Option<&str>,
    ) -> (StatusCode, Value) {
        let encoded: Option<Vec<String>> = hashes.map(|h| h.iter().map(|d| b64(d)).collect());
        let body = match v {
            Csc::V2 => {
                let mut b = json!({
                    "credentialID": credential,
                    "numSignatures": n,
                    "authData": [{ "id": "PIN", "value": pin }, { "id": "OTP", "value": otp }],
                });
                if let Some(h) = encoded {
                    b["hashes"] = json!(h);
                }
                if let Some(oid) = hash_oid {
                    b["hashAlgorithmOID"] = json!(oid);
                }
                b
            }
            Csc::V1 => {
                let mut b = json!({ "credentialID": credential, "numSignatures": n, "PIN": pin, "OTP": otp });
                if let Some(h) = encoded {
                    b["hash"] = json!(h);
                }
                b
            }
        };
        self.post(&v.path("credentials/authorize"), Some(token), body)
            .await
    }

    /// A SAD for exactly `hashes` (panics if refused).
    pub async fn sad_for(
        &self,
        v: Csc,
        token: &str,
        credential: &str,
        pin: &str,
        hashes: &[Vec<u8>],
        hash_oid: &str,
    ) -> String {
        let (status, body) = self
            .authorize(
                v,
                token,
                credential,
                pin,
                hashes.len(),
                Some(hashes),
                Some(hash_oid),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(body["expiresIn"].as_u64().unwrap() > 0);
        body["SAD"].as_str().unwrap().to_owned()
    }

    #[allow(clippy::too_many_arguments)]
    pub async fn sign_hash(
        &self,
        v: Csc,
        token: &str,
        credential: &str,
        sad: &str,
        hashes: &[Vec<u8>],
        hash_oid: Option<&str>,
        sign_algo: &str,
        params: Option<&[u8]>,
    ) -> (StatusCode, Value) {
        let encoded: Vec<String> = hashes.iter().map(|d| b64(d)).collect();
        let mut body = match v {
            Csc::V2 => {
                json!({ "credentialID": credential, "SAD": sad, "hashes": encoded, "signAlgo": sign_algo })
            }
            Csc::V1 => {
                json!({ "credentialID": credential, "SAD": sad, "hash": encoded, "signAlgo": sign_algo })
            }
        };
        if let Some(oid) = hash_oid {
            body[if v == Csc::V2 {
                "hashAlgorithmOID"
            } else {
                "hashAlgo"
            }] = json!(oid);
        }
        if let Some(p) = params {
            body["signAlgoParams"] = json!(b64(p));
        }
        self.post(&v.path("signatures/signHash"), Some(token), body)
            .await
    }

    /// The leaf certificate of `credential` as credentials/info returns it (chain requested).
    pub async fn leaf_certificate(
        &self,
        v: Csc,
        token: &str,
        credential: &str,
    ) -> openssl::x509::X509 {
        let (status, body) = self
            .post(
                &v.path("credentials/info"),
                Some(token),
                json!({ "credentialID": credential, "certificates": "chain", "certInfo": true }),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let certs = body["cert"]["certificates"].as_array().unwrap();
        assert_eq!(certs.len(), 3, "chain: leaf, issuing, root");
        openssl::x509::X509::from_der(&unb64(certs[0].as_str().unwrap())).unwrap()
    }
}

/// A session of our own on the test token (the gateway's workers hold theirs).
pub fn hsm_session() -> cryptoki::session::Session {
    use cryptoki::session::UserType;
    use cryptoki::types::AuthPin;
    let ctx =
        sigillo::hsm::context(std::path::Path::new(&env("SIGILLO_TEST_HSM_MODULE")), 1).unwrap();
    let label = env("SIGILLO_TEST_HSM_TOKEN_LABEL");
    // SoftHSM2 reads the token's files for C_GetTokenInfo and may answer CKR_GENERAL_ERROR
    // while another process (a gateway of a parallel test) is writing them: ask again.
    let token_label = |s: cryptoki::slot::Slot| {
        (0..20)
            .find_map(|_| {
                let info = ctx.get_token_info(s).ok();
                if info.is_none() {
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                info
            })
            .expect("C_GetTokenInfo")
            .label()
            .trim_end()
            .to_owned()
    };
    let slot = ctx
        .get_slots_with_token()
        .unwrap()
        .into_iter()
        .find(|s| token_label(*s) == label)
        .unwrap();
    let session = ctx.open_rw_session(slot).unwrap();
    let _ = session.login(
        UserType::User,
        Some(&AuthPin::new(env("SIGILLO_TEST_HSM_PIN").into())),
    );
    session
}

/// A redis-server of a test's own (no persistence), so that stopping, pausing or killing it
/// harms no other test; killed when dropped, also when the test fails.
pub struct PrivateRedis {
    child: std::process::Child,
    pub url: String,
}

impl PrivateRedis {
    /// On a free port.
    pub async fn start() -> PrivateRedis {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Self::start_on(port).await
    }

    /// On `port` (again after a kill: what a Redis that comes back looks like), once it
    /// answers.
    pub async fn start_on(port: u16) -> PrivateRedis {
        let dir = PathBuf::from(env("SIGILLO_TEST_TMP")).join(format!("redis-{port}"));
        std::fs::create_dir_all(&dir).unwrap();
        let mut child = std::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--dir"])
            .arg(&dir)
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server is installed by scripts/test");
        let url = format!("redis://127.0.0.1:{port}/");
        for _ in 0..50 {
            if let Ok(client) = redis::Client::open(url.as_str()) {
                if client.get_multiplexed_async_connection().await.is_ok() {
                    return PrivateRedis { child, url };
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("the private redis-server on {port} did not start");
    }

    /// Sends `signal` (e.g. "STOP", "CONT") to the server.
    pub fn signal(&self, signal: &str) {
        let status = std::process::Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success(), "kill -{signal}");
    }

    /// Stops the server for good (SIGKILL) and waits for it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A Redis Cluster of a test's own (three masters, no persistence), so that pausing its nodes
/// harms no other test; killed when dropped. Nodes are not marked failed for 15 s and serve
/// their slots while others are down, so a test can pause some and use the rest.
pub struct PrivateCluster {
    children: Vec<std::process::Child>,
    pub ports: Vec<u16>,
}

impl PrivateCluster {
    pub async fn start() -> PrivateCluster {
        // Each node's cluster bus gets a port of its own (--cluster-port), like scripts/lib.sh's
        // start_redis_cluster: the default, port + 10000, falls in the kernel's ephemeral range,
        // where any outgoing connection may take it before the node binds it.
        let mut ports: Vec<u16> = Vec::new();
        let mut buses: Vec<u16> = Vec::new();
        while ports.len() < 3 {
            let port = rand::thread_rng().gen_range(20_000..32_000u16);
            let bus = rand::thread_rng().gen_range(20_000..32_000u16);
            let free = |p: u16| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok();
            let used = |p: u16| ports.contains(&p) || buses.contains(&p);
            if port != bus && !used(port) && !used(bus) && free(port) && free(bus) {
                ports.push(port);
                buses.push(bus);
            }
        }
        let mut cluster = PrivateCluster {
            children: Vec::new(),
            ports: ports.clone(),
        };
        for (port, bus) in ports.iter().zip(&buses) {
            let dir = PathBuf::from(env("SIGILLO_TEST_TMP")).join(format!("cluster-{port}"));
            std::fs::create_dir_all(&dir).unwrap();
            let child = std::process::Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--cluster-port", &bus.to_string()])
                .args([
                    "--cluster-enabled",
                    "yes",
                    "--cluster-node-timeout",
                    "15000",
                ])
                .args(["--cluster-require-full-coverage", "no"])
                .args(["--save", "", "--appendonly", "no", "--dir"])
                .arg(&dir)
                .stdout(std::process::Stdio::null())
                .spawn()
                .expect("redis-server is installed by scripts/test");
            cluster.children.push(child);
        }
        for port in &ports {
            let url = format!("redis://127.0.0.1:{port}/");
            let mut up = false;
            for _ in 0..50 {
                let client = redis::Client::open(url.as_str()).unwrap();
                if client.get_multiplexed_async_connection().await.is_ok() {
                    up = true;
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            assert!(up, "the private cluster node on {port} did not start");
        }
        let nodes: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        let created = std::process::Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&nodes)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .unwrap();
        assert!(created.status.success(), "{created:?}");
        for _ in 0..100 {
            let ok = ports.iter().all(|p| {
                std::process::Command::new("redis-cli")
                    .args(["-p", &p.to_string(), "cluster", "info"])
                    .output()
                    .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("cluster_state:ok"))
            });
            if ok {
                return cluster;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("the private cluster did not reach cluster_state:ok");
    }

    /// The URLs of its nodes, for `redis.cluster_urls`.
    pub fn urls(&self) -> Vec<Secret> {
        self.ports
            .iter()
            .map(|p| Secret::new(format!("redis://127.0.0.1:{p}/")))
            .collect()
    }

    /// The index (in `ports`) of the master that holds `key`'s slot.
    pub fn master_of(&self, key: &str) -> usize {
        self.ports
            .iter()
            .position(|p| {
                std::process::Command::new("redis-cli")
                    .args(["-p", &p.to_string(), "get", key])
                    .output()
                    .is_ok_and(|o| !String::from_utf8_lossy(&o.stdout).contains("MOVED"))
            })
            .expect("a master holds every slot")
    }

    /// Sends `signal` (e.g. "STOP", "CONT") to node `index`.
    pub fn signal(&self, index: usize, signal: &str) {
        let status = std::process::Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.children[index].id().to_string())
            .status()
            .unwrap();
        assert!(status.success(), "kill -{signal}");
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A TCP relay in front of a server (the test PostgreSQL) that a test can cut — every open
/// connection dropped, new ones refused at once, as a stopped server looks from the gateway —
/// and restore. Dropped with its test.
pub struct Relay {
    pub port: u16,
    up: Arc<std::sync::atomic::AtomicBool>,
    links: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl Relay {
    /// Relays 127.0.0.1:`port` to `target` ("host:port").
    pub async fn start(target: String) -> Relay {
        use std::sync::atomic::Ordering;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let links: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>> = Arc::default();
        let (up_, links_) = (up.clone(), links.clone());
        let accept = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if !up_.load(Ordering::SeqCst) {
                    continue; // dropped at once: the server is "down"
                }
                let target = target.clone();
                let link = tokio::spawn(async move {
                    if let Ok(mut server) = tokio::net::TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                let mut links = links_.lock().unwrap();
                links.retain(|l| !l.is_finished());
                links.push(link);
            }
        });
        Relay {
            port,
            up,
            links,
            accept,
        }
    }

    /// A relay in front of the test PostgreSQL, and the database URL that goes through it.
    pub async fn for_test_database() -> (Relay, String) {
        // postgres://user@host:port/db: the relay stands where host:port was.
        let real = env("SIGILLO_TEST_DATABASE_URL");
        let (head, rest) = real.split_once('@').unwrap();
        let (address, tail) = rest.split_once('/').unwrap();
        let relay = Relay::start(address.to_owned()).await;
        let url = format!("{head}@127.0.0.1:{}/{tail}", relay.port);
        (relay, url)
    }

    /// Every open connection cut, new ones refused.
    pub fn cut(&self) {
        self.up.store(false, std::sync::atomic::Ordering::SeqCst);
        for link in self.links.lock().unwrap().drain(..) {
            link.abort();
        }
    }

    pub fn restore(&self) {
        self.up.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.cut();
        self.accept.abort();
    }
}

/// The `sigillo serve` binary of this build as a node of the gateway `config` describes (same
/// schema, key prefix, HSM labels and secrets), on `public` and `admin` ports of 127.0.0.1,
/// with `extra` settings (`SECTION__KEY`, value) on top. The caller spawns and reaps it.
pub fn gateway_command(
    config: &Config,
    public: u16,
    admin: u16,
    extra: &[(&str, String)],
) -> std::process::Command {
    let settings = [
        ("SERVER__PUBLIC_ADDR", format!("127.0.0.1:{public}")),
        ("SERVER__ADMIN_ADDR", format!("127.0.0.1:{admin}")),
        ("DATABASE__URL", config.database.url.expose().to_owned()),
        ("DATABASE__SCHEMA", config.database.schema.clone()),
        ("REDIS__URL", config.redis.url.expose().to_owned()),
        ("REDIS__KEY_PREFIX", config.redis.key_prefix.clone()),
        ("HSM__MODULE", config.hsm.module.display().to_string()),
        ("HSM__TOKEN_LABEL", config.hsm.token_label.clone()),
        ("HSM__PIN", config.hsm.pin.expose().to_owned()),
        ("HSM__LABEL_PREFIX", config.hsm.label_prefix.clone()),
        (
            "SECURITY__ADMIN_TOKEN",
            config.security.admin_token.expose().to_owned(),
        ),
        (
            "SECURITY__TOKEN_SECRET",
            config.security.token_secret.expose().to_owned(),
        ),
        ("CSC__SCAL", config.csc.scal.clone()),
        ("OTP__SEND_LIMIT", config.otp.send_limit.to_string()),
        (
            "OTP__OUTBOX_PATH",
            config.otp.outbox_path.display().to_string(),
        ),
        ("MAIL__SMTP_HOST", config.mail.smtp_host.clone()),
        ("MAIL__SMTP_PORT", config.mail.smtp_port.to_string()),
        ("MAIL__TLS", "none".to_owned()),
    ];
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_sigillo"));
    command.arg("serve").env("RUST_LOG", "warn");
    for (key, value) in settings
        .iter()
        .map(|(k, v)| (*k, v))
        .chain(extra.iter().map(|(k, v)| (*k, v)))
    {
        command.env(format!("SIGILLO__{key}"), value);
    }
    command
}

/// Runs the openssl CLI: whether it succeeded, and what it printed (stdout, then stderr).
pub fn openssl(args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl CLI");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}
