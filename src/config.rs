//! Typed configuration. Layers: `config/default.toml` (built in) → an optional file →
//! `SIGILLO__SECTION__KEY` environment variables. The raw shape rejects unknown keys, and
//! `Config::validate` refuses to start without the secrets, so a typo never runs silently.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The built-in defaults, also the documentation of every key.
pub const DEFAULT_TOML: &str = include_str!("../config/default.toml");

/// A configuration error: what is wrong and where to fix it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration could not be read: {0}")]
    Load(#[from] config::ConfigError),
    #[error("configuration key {key} is invalid: {reason}")]
    Invalid { key: &'static str, reason: String },
}

/// A secret string: never printed, never logged.
#[derive(Clone, Deserialize, Default)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    /// The secret itself; call only where it is used.
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    pub redis: RedisConfig,
    pub hsm: HsmConfig,
    pub security: SecurityConfig,
    pub otp: OtpConfig,
    pub ca: CaConfig,
    pub csc: CscConfig,
    pub lifecycle: LifecycleConfig,
    pub tls: TlsConfig,
    pub mail: MailConfig,
    pub oauth2: OAuth2Config,
    pub web: WebConfig,
    pub tsa: TsaConfig,
    pub pki: PkiConfig,
    pub recovery: RecoveryConfig,
    pub enrolment: EnrolmentConfig,
}

/// Enrolment: the e-mailed single-use link on which a new subscriber sets the password and
/// the envelope passphrase.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrolmentConfig {
    /// The portal page the e-mail links to; `{token}` is replaced by the link's token.
    pub setup_link: String,
    /// A link works once, for this many hours.
    pub setup_link_hours: u32,
}

/// Password recovery ("Non riesco ad accedere"): the e-mailed link and its limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecoveryConfig {
    /// The portal page the e-mail links to; `{token}` is replaced by the link's token.
    pub link: String,
    /// A link works once, for this long.
    pub link_ttl_secs: u64,
    /// Recovery e-mails asked for one user id per `window_secs` (past it: 429).
    pub max_per_user: u32,
    /// Recovery requests from one client address per `window_secs` (past it: 429).
    pub max_per_addr: u32,
    pub window_secs: u64,
}

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain SMTP, then STARTTLS (required: a server that does not offer it is refused).
    Starttls,
    /// TLS from the first byte (SMTPS, usually port 465).
    Tls,
    /// No TLS at all: only to a server on the loopback interface.
    None,
}

/// E-mail: the SMTP server every node sends the outbox through, and the outbox's pace.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailConfig {
    pub smtp_host: String,
    pub smtp_port: u16,
    pub tls: SmtpTls,
    /// PEM CA certificates the server's certificate must chain to (with the system's).
    pub ca_file: PathBuf,
    /// SMTP AUTH user; empty: no authentication.
    pub username: String,
    pub password: Secret,
    /// The From of every message (`Name <address>` or a bare address).
    pub from: String,
    /// Bound of one SMTP conversation (connect, greeting, each command).
    pub timeout_secs: u64,
    /// How often each node looks for due messages (an enqueue on this node wakes it sooner).
    pub poll_interval_ms: u64,
    /// Messages one node claims at a time.
    pub batch: u32,
    /// How long a claim holds: a node that crashed mid-send leaves its messages to others
    /// after this. Must exceed `timeout_secs`.
    pub lease_secs: u64,
    /// Delay after the first failed attempt; it doubles with each failure up to `retry_max_ms`.
    pub retry_base_ms: u64,
    pub retry_max_ms: u64,
    /// Attempts before a message is given up as failed (logged and counted).
    pub max_attempts: u32,
}

/// The CSC v2 authorization server (`oauth2`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OAuth2Config {
    /// The issuer identifier (RFC 8414), the base of every endpoint in the metadata; empty:
    /// `http(s)://<public listener address>` as bound at start-up.
    pub issuer: String,
    /// Lifetime of an authorization code (single use).
    pub code_ttl_secs: u64,
    /// Lifetime of a pushed authorization request's `request_uri` (RFC 9126).
    pub request_uri_ttl_secs: u64,
    /// How long the authorization page waits for the subscriber (user id, password, PIN, OTP).
    pub interaction_ttl_secs: u64,
}

impl OAuth2Config {
    /// The issuer, if OAuth2 is offered (always once the gateway has started: an empty
    /// setting is replaced by the public listener's address).
    pub fn issuer(&self) -> Option<&str> {
        Some(self.issuer.as_str()).filter(|i| !i.is_empty())
    }
}

/// The server-rendered pages (`web`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebConfig {
    /// A page session ends after this long without a request.
    pub session_idle_secs: u64,
}

/// What relying parties see: CRL, OCSP, the URLs certificates name, the qualified profile.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PkiConfig {
    /// Public base URL of the `/pki/...` endpoints, named in every certificate's AIA and CRL
    /// distribution points; empty: `http(s)://<public listener address>`.
    pub base_url: String,
    /// nextUpdate − thisUpdate of each CRL; a CRL is re-issued at half of it at the latest.
    pub crl_validity_secs: u64,
    /// nextUpdate − thisUpdate of the root's CRL (re-issued at half of it).
    pub root_crl_validity_secs: u64,
    /// How often each node polls the certificate status version in PostgreSQL.
    pub status_poll_ms: u64,
    /// nextUpdate of an OCSP response, and how long a signed "good" answer (no nonce) is
    /// reused.
    pub ocsp_validity_secs: u64,
    /// Validity of the OCSP responder certificate; re-issued in its last third.
    pub ocsp_responder_days: u32,
    /// QcPDS (ETSI EN 319 412-5): the PKI disclosure statement's URL (English).
    pub pds_url: String,
    /// Certificate policy OIDs of signing certificates (e.g. QCP-n-qscd 0.4.0.194112.1.2).
    pub signing_policy_oids: Vec<String>,
}

/// TLS of the two listeners. Off (plain HTTP) while `cert_file` is empty.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain (leaf first) served by both listeners; empty: plain HTTP.
    pub cert_file: PathBuf,
    /// PEM private key of `cert_file`.
    pub key_file: PathBuf,
    /// PEM CA certificates; when set, the admin listener refuses a client without a
    /// certificate issued by one of them (mTLS).
    pub admin_client_ca_file: PathBuf,
    /// `Strict-Transport-Security` max-age of the public listener's responses (0: no header).
    pub hsts_max_age_secs: u64,
}

impl TlsConfig {
    /// Whether the listeners serve TLS.
    pub fn enabled(&self) -> bool {
        !self.cert_file.as_os_str().is_empty()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LifecycleConfig {
    pub renewal_window_days: u32,
    /// Link in expiry notices; `{credential_id}` is replaced.
    pub renewal_link: String,
    pub notice_interval_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    pub public_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub max_body_bytes: usize,
    pub workers: usize,
    /// Bound of a graceful shutdown (SIGTERM/SIGINT) from the signal to the process's exit.
    pub shutdown_timeout_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    pub url: Secret,
    pub pool_size: usize,
    /// Schema the gateway's tables live in (tests give each app its own).
    pub schema: String,
    /// PEM CA certificates the server's certificate must chain to; when set (or when the URL
    /// says `sslmode=verify-full`), connections use TLS with the host name checked.
    pub ca_file: PathBuf,
    /// The schema owner's connection, for migrations only; empty: `url` migrates too.
    #[serde(default)]
    pub migration_url: Secret,
    /// Role every runtime connection takes (`SET ROLE` at connect): it may add audit rows but
    /// never change or remove them. Empty: the login of `url` is used as it is.
    #[serde(default)]
    pub runtime_role: String,
    /// Longest wait of an audit commit for the rows of signHash requests still in flight
    /// (µs; 0: commit at once). Concurrent rows then share one commit (one WAL flush).
    #[serde(default = "default_audit_linger_us")]
    pub audit_linger_us: u64,
}

fn default_audit_linger_us() -> u64 {
    2000
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisConfig {
    pub url: Secret,
    /// Nodes of a Redis Cluster (some of its masters are enough); when set, `url` is unused.
    /// From the environment: `SIGILLO__REDIS__CLUSTER_URLS` as a comma-separated list.
    #[serde(default)]
    pub cluster_urls: Vec<Secret>,
    /// Prefix of every key the gateway writes (tests give each app its own).
    pub key_prefix: String,
    /// PEM CA certificates a `rediss://` server's certificate must chain to (empty: the
    /// system's trust store only).
    pub ca_file: PathBuf,
    /// Bound of each connection attempt and each command, in milliseconds.
    pub timeout_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HsmConfig {
    pub module: PathBuf,
    pub token_label: String,
    pub pin: Secret,
    pub workers: usize,
    pub queue_depth: usize,
    pub label_prefix: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecurityConfig {
    pub admin_token: Secret,
    pub token_secret: Secret,
    pub access_token_ttl_secs: u64,
    pub login_max_failures: u32,
    pub login_window_secs: u64,
    /// Wrong passwords from one client address in `login_window_secs` before it is refused.
    pub login_max_failures_per_addr: u32,
    /// Password checks waiting for an Argon2 slot before more are refused (0: 8 per core).
    pub argon2_queue: usize,
    /// HS256 key of access tokens; empty: derived from `token_secret` (as before).
    pub jwt_secret: Secret,
    /// The previous `jwt_secret`, still accepted while its tokens live (rotation).
    pub jwt_secret_previous: Secret,
    /// The operator the admin token stands for: the actor of every admin action in the audit.
    pub admin_name: String,
}

/// How SMS messages leave the gateway.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SmsSenderKind {
    Outbox,
    Http,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OtpConfig {
    pub sender: SmsSenderKind,
    pub outbox_path: PathBuf,
    pub http_url: String,
    pub ttl_secs: u64,
    pub max_tries: u32,
    pub send_limit: u32,
    pub send_window_secs: u64,
    pub totp_issuer: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaConfig {
    pub country: String,
    pub organization: String,
    pub root_common_name: String,
    pub issuing_common_name: String,
    pub default_validity_days: u32,
}

/// The RFC 3161 time-stamping authority (`POST /tsa`, CSC `signatures/timestamp`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TsaConfig {
    pub enabled: bool,
    /// The TSA policy OID every token names (and the only one a request may ask for).
    pub policy_oid: String,
    /// Accuracy of genTime claimed in every token, in milliseconds (1 or more).
    pub accuracy_ms: u32,
    pub common_name: String,
    /// Validity of the TSA certificate, issued by the issuing CA at first start.
    pub certificate_validity_days: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CscConfig {
    pub name: String,
    pub logo: String,
    pub region: String,
    pub lang: String,
    pub description: String,
    pub scal: String,
    pub sad_ttl_secs: u64,
    /// Absolute lifetime of a SAD from its authorize: extendTransaction never goes past it.
    pub sad_max_lifetime_secs: u64,
    pub max_signatures: u32,
    pub max_hashes: usize,
    pub refresh_token_ttl_secs: u64,
}

impl Config {
    /// Loads defaults, then `file` (if any), then the environment, and validates the result.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut builder = config::Config::builder().add_source(config::File::from_str(
            DEFAULT_TOML,
            config::FileFormat::Toml,
        ));
        if let Some(path) = file {
            builder = builder.add_source(config::File::from(path).required(true));
        }
        let config: Config = builder
            .add_source(environment())
            .build()?
            .try_deserialize()?;
        config.validate()?;
        Ok(config)
    }

    /// The built-in defaults alone, not validated (tests fill in the rest).
    pub fn defaults() -> Result<Self, ConfigError> {
        Ok(config::Config::builder()
            .add_source(config::File::from_str(
                DEFAULT_TOML,
                config::FileFormat::Toml,
            ))
            .build()?
            .try_deserialize()?)
    }

    /// Checks what serde cannot: secrets present and strong enough, sane limits.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.hsm.pin.is_empty() {
            return invalid("hsm.pin", "missing: set SIGILLO__HSM__PIN");
        }
        if self.security.admin_token.expose().len() < 16 {
            return invalid(
                "security.admin_token",
                "missing or shorter than 16 characters: set SIGILLO__SECURITY__ADMIN_TOKEN",
            );
        }
        if !self.enrolment.setup_link.contains("{token}") {
            return invalid("enrolment.setup_link", "must contain {token}");
        }
        if !(1..=720).contains(&self.enrolment.setup_link_hours) {
            return invalid("enrolment.setup_link_hours", "1 to 720");
        }
        if !(1..=3600).contains(&self.server.shutdown_timeout_secs) {
            return invalid("server.shutdown_timeout_secs", "1 to 3600");
        }
        if !(1..=60_000).contains(&self.redis.timeout_ms) {
            return invalid("redis.timeout_ms", "1 to 60000");
        }
        let name = &self.security.admin_name;
        if name.trim().is_empty()
            || name.chars().count() > 100
            || name.chars().any(char::is_control)
        {
            return invalid(
                "security.admin_name",
                "1 to 100 characters, no control characters",
            );
        }
        if self.security.token_secret.expose().len() < 32 {
            return invalid(
                "security.token_secret",
                "missing or shorter than 32 bytes: set SIGILLO__SECURITY__TOKEN_SECRET",
            );
        }
        let jwt = (
            &self.security.jwt_secret,
            &self.security.jwt_secret_previous,
        );
        if [jwt.0, jwt.1]
            .iter()
            .any(|s| !s.is_empty() && s.expose().len() < 32)
        {
            return invalid(
                "security.jwt_secret",
                "jwt_secret and jwt_secret_previous: empty or at least 32 bytes",
            );
        }
        if !jwt.1.is_empty() && (jwt.0.is_empty() || jwt.0.expose() == jwt.1.expose()) {
            return invalid(
                "security.jwt_secret_previous",
                "needs a different jwt_secret (the key that signs now)",
            );
        }
        let security = &self.security;
        if security.login_max_failures == 0
            || security.login_max_failures_per_addr == 0
            || security.login_window_secs == 0
        {
            return invalid(
                "security",
                "login_max_failures, login_max_failures_per_addr and login_window_secs must be positive",
            );
        }
        if self.otp.sender == SmsSenderKind::Http && self.otp.http_url.is_empty() {
            return invalid("otp.http_url", "required when otp.sender = \"http\"");
        }
        if self.otp.max_tries == 0 || self.otp.ttl_secs == 0 || self.otp.send_window_secs == 0 {
            return invalid(
                "otp",
                "ttl_secs, max_tries and send_window_secs must be positive",
            );
        }
        if self.csc.scal != "1" && self.csc.scal != "2" {
            return invalid("csc.scal", "\"1\" or \"2\"");
        }
        if self.csc.max_hashes == 0
            || self.csc.max_signatures == 0
            || self.csc.sad_ttl_secs == 0
            || self.csc.sad_max_lifetime_secs == 0
        {
            return invalid(
                "csc",
                "max_hashes, max_signatures, sad_ttl_secs and sad_max_lifetime_secs must be positive",
            );
        }
        if !(1..=600).contains(&self.oauth2.code_ttl_secs)
            || !(1..=600).contains(&self.oauth2.request_uri_ttl_secs)
            || !(1..=3600).contains(&self.oauth2.interaction_ttl_secs)
            || !(1..=86_400).contains(&self.web.session_idle_secs)
        {
            return invalid(
                "oauth2",
                "code_ttl_secs and request_uri_ttl_secs 1 to 600, interaction_ttl_secs 1 to 3600, web.session_idle_secs 1 to 86400",
            );
        }
        let issuer = &self.oauth2.issuer;
        if !issuer.is_empty()
            && (!(issuer.starts_with("https://") || issuer.starts_with("http://"))
                || issuer.ends_with('/')
                || issuer.contains(['?', '#']))
        {
            return invalid(
                "oauth2.issuer",
                "an http(s) URL without query, fragment or trailing slash",
            );
        }
        if !is_identifier(&self.database.schema) {
            return invalid("database.schema", "must be a plain SQL identifier");
        }
        if !self.database.runtime_role.is_empty() && !is_identifier(&self.database.runtime_role) {
            return invalid("database.runtime_role", "must be a plain SQL identifier");
        }
        if self.database.pool_size == 0 || self.hsm.queue_depth == 0 {
            return invalid("database.pool_size/hsm.queue_depth", "must be positive");
        }
        let tls = &self.tls;
        if tls.enabled() == tls.key_file.as_os_str().is_empty() {
            return invalid("tls.key_file", "tls.cert_file and tls.key_file go together");
        }
        if !tls.enabled() && !tls.admin_client_ca_file.as_os_str().is_empty() {
            return invalid(
                "tls.admin_client_ca_file",
                "client certificates need TLS: set tls.cert_file and tls.key_file",
            );
        }
        let pki = &self.pki;
        if pki.crl_validity_secs < 60
            || pki.root_crl_validity_secs < 60
            || !(10..=60_000).contains(&pki.status_poll_ms)
            || pki.ocsp_validity_secs == 0
            || pki.ocsp_responder_days == 0
        {
            return invalid(
                "pki",
                "crl_validity_secs and root_crl_validity_secs >= 60, status_poll_ms 10 to 60000, ocsp_validity_secs and ocsp_responder_days positive",
            );
        }
        let web_url = |url: &str| url.starts_with("http://") || url.starts_with("https://");
        if !(pki.base_url.is_empty() || web_url(&pki.base_url)) {
            return invalid("pki.base_url", "empty or an http(s):// URL");
        }
        if !web_url(&pki.pds_url) {
            return invalid("pki.pds_url", "an http(s):// URL");
        }
        if pki
            .signing_policy_oids
            .iter()
            .any(|oid| crate::der::parse_oid(oid).is_none())
        {
            return invalid(
                "pki.signing_policy_oids",
                "dotted OIDs, e.g. 0.4.0.194112.1.2",
            );
        }
        if !self.redis.ca_file.as_os_str().is_empty()
            && !self.redis.url.expose().starts_with("rediss://")
        {
            return invalid("redis.ca_file", "a CA needs a rediss:// URL");
        }
        self.validate_cluster()?;
        self.mail.validate()?;
        if crate::pki::tsa::policy_oid_der(&self.tsa.policy_oid).is_none() {
            return invalid(
                "tsa.policy_oid",
                "a dotted OID such as 1.3.6.1.4.1.99999.1.1",
            );
        }
        if self.tsa.accuracy_ms == 0 || self.tsa.certificate_validity_days == 0 {
            return invalid(
                "tsa",
                "accuracy_ms and certificate_validity_days must be positive",
            );
        }
        Ok(())
    }
}

/// The `SIGILLO__SECTION__KEY` variables; `redis.cluster_urls` is a comma-separated list.
fn environment() -> config::Environment {
    config::Environment::with_prefix("SIGILLO")
        .prefix_separator("__")
        .separator("__")
        .try_parsing(true)
        .list_separator(",")
        .with_list_parse_key("redis.cluster_urls")
}

impl Config {
    /// A cluster needs node URLs, and a key prefix without braces: a hash tag in the prefix
    /// would put every key in one slot, an empty one (`{}`) would split a user's keys.
    fn validate_cluster(&self) -> Result<(), ConfigError> {
        let redis = &self.redis;
        if redis.cluster_urls.is_empty() {
            return Ok(());
        }
        if redis.cluster_urls.iter().any(|u| {
            let url = u.expose();
            !(url.starts_with("redis://") || url.starts_with("rediss://"))
        }) {
            return invalid("redis.cluster_urls", "redis:// or rediss:// URLs");
        }
        if !redis.ca_file.as_os_str().is_empty() {
            return invalid(
                "redis.ca_file",
                "not supported with redis.cluster_urls: rediss:// cluster nodes need a certificate the system trusts",
            );
        }
        if redis.key_prefix.contains(['{', '}']) {
            return invalid(
                "redis.key_prefix",
                "no { or } with redis.cluster_urls: the hash tags are the gateway's",
            );
        }
        Ok(())
    }
}

/// The refusal of setting `key`, and why.
fn invalid(key: &'static str, reason: &str) -> Result<(), ConfigError> {
    Err(ConfigError::Invalid {
        key,
        reason: reason.to_owned(),
    })
}

impl MailConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.smtp_host.trim().is_empty() || self.smtp_port == 0 {
            return invalid("mail.smtp_host", "an SMTP host and a port other than 0");
        }
        // Without TLS the password and every message cross the network in clear: only to a
        // server on this machine.
        if self.tls == SmtpTls::None && !is_loopback(&self.smtp_host) {
            return invalid(
                "mail.tls",
                "\"none\" only for a server on the loopback interface (127.0.0.1, ::1, localhost)",
            );
        }
        if self.from.parse::<lettre::message::Mailbox>().is_err() {
            return invalid(
                "mail.from",
                "an address such as \"sigillo <noreply@example.org>\"",
            );
        }
        if !self.username.is_empty() && self.password.is_empty() {
            return invalid("mail.password", "missing: set SIGILLO__MAIL__PASSWORD");
        }
        if !(1..=600).contains(&self.timeout_secs) || self.lease_secs <= self.timeout_secs {
            return invalid(
                "mail.lease_secs",
                "timeout_secs 1 to 600, and lease_secs longer than timeout_secs",
            );
        }
        if self.poll_interval_ms == 0
            || self.batch == 0
            || self.max_attempts == 0
            || self.retry_base_ms == 0
            || self.retry_max_ms < self.retry_base_ms
        {
            return invalid(
                "mail",
                "poll_interval_ms, batch, max_attempts and retry_base_ms positive, retry_max_ms >= retry_base_ms",
            );
        }
        Ok(())
    }
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// `[a-z_][a-z0-9_]*`: safe to splice into `SET search_path`.
pub fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && name.len() <= 63
}

/// The number of threads to use when a config value says 0 ("as many as cores").
pub fn threads_or_cores(configured: usize) -> usize {
    if configured > 0 {
        configured
    } else {
        std::thread::available_parallelism().map_or(2, |n| n.get())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The defaults with the secrets they lack, so that they validate.
    fn with_secrets() -> Config {
        let mut config = Config::defaults().unwrap();
        config.hsm.pin = Secret::new("1234");
        config.security.admin_token = Secret::new("a".repeat(16));
        config.security.token_secret = Secret::new("b".repeat(32));
        config
    }

    /// The setting `validate` refuses, if any.
    fn refused_key(config: &Config) -> Option<&'static str> {
        match config.validate() {
            Err(ConfigError::Invalid { key, .. }) => Some(key),
            _ => None,
        }
    }

    #[test]
    fn defaults_parse_but_do_not_validate_without_secrets() {
        let config = Config::defaults().unwrap();
        assert_eq!(config.server.public_addr.port(), 8080);
        assert!(matches!(
            config.validate(),
            Err(ConfigError::Invalid { key: "hsm.pin", .. })
        ));
    }

    #[test]
    fn a_zero_otp_window_is_refused() {
        let mut config = with_secrets();
        assert!(config.validate().is_ok(), "{:?}", config.validate());
        // A window of 0 s would expire every count at once: no limit at all.
        config.otp.send_window_secs = 0;
        assert!(matches!(
            config.validate(),
            Err(ConfigError::Invalid { key: "otp", .. })
        ));
    }

    #[test]
    fn jwt_keys_and_login_limits_are_checked() {
        let mut config = with_secrets();
        config.security.jwt_secret = Secret::new("short");
        assert_eq!(refused_key(&config), Some("security.jwt_secret"));
        config.security.jwt_secret = Secret::new("c".repeat(32));
        assert_eq!(refused_key(&config), None);
        config.security.jwt_secret_previous = Secret::new("c".repeat(32));
        assert_eq!(refused_key(&config), Some("security.jwt_secret_previous"));
        config.security.jwt_secret_previous = Secret::new("d".repeat(32));
        assert_eq!(refused_key(&config), None);
        config.security.jwt_secret = Secret::new("");
        assert_eq!(refused_key(&config), Some("security.jwt_secret_previous"));
        config.security.jwt_secret = Secret::new("c".repeat(32));
        config.security.login_max_failures_per_addr = 0;
        assert_eq!(refused_key(&config), Some("security"));
    }

    #[test]
    fn the_runtime_role_is_a_plain_identifier_or_empty() {
        let mut config = with_secrets();
        assert_eq!(config.database.runtime_role, "sigillo_runtime");
        assert!(config.validate().is_ok());
        config.database.runtime_role = String::new();
        assert!(config.validate().is_ok());
        config.database.runtime_role = "x -c role=postgres".into();
        assert!(matches!(
            config.validate(),
            Err(ConfigError::Invalid {
                key: "database.runtime_role",
                ..
            })
        ));
    }

    #[test]
    fn mail_settings_are_checked() {
        let mut config = with_secrets();
        assert_eq!(
            (config.mail.smtp_port, config.mail.tls),
            (587, SmtpTls::Starttls)
        );
        assert_eq!(refused_key(&config), None);
        // Plain SMTP only to this machine.
        config.mail.tls = SmtpTls::None;
        config.mail.smtp_host = "smtp.example.org".into();
        assert_eq!(refused_key(&config), Some("mail.tls"));
        for host in ["127.0.0.1", "::1", "[::1]", "localhost"] {
            config.mail.smtp_host = host.into();
            assert_eq!(refused_key(&config), None, "{host}");
        }
        config.mail.username = "sigillo".into();
        assert_eq!(refused_key(&config), Some("mail.password"));
        config.mail.password = Secret::new("pw");
        assert_eq!(refused_key(&config), None);
        config.mail.from = "not an address".into();
        assert_eq!(refused_key(&config), Some("mail.from"));
        config.mail.from = "noreply@example.org".into();
        config.mail.lease_secs = config.mail.timeout_secs;
        assert_eq!(refused_key(&config), Some("mail.lease_secs"));
        config.mail.lease_secs = 300;
        config.mail.retry_max_ms = config.mail.retry_base_ms - 1;
        assert_eq!(refused_key(&config), Some("mail"));
    }

    #[test]
    fn redis_and_shutdown_bounds_are_checked() {
        let mut config = with_secrets();
        assert_eq!(
            (config.redis.timeout_ms, config.server.shutdown_timeout_secs),
            (500, 30)
        );
        config.redis.timeout_ms = 0;
        assert_eq!(refused_key(&config), Some("redis.timeout_ms"));
        config.redis.timeout_ms = 500;
        config.server.shutdown_timeout_secs = 0;
        assert_eq!(refused_key(&config), Some("server.shutdown_timeout_secs"));
        config.server.shutdown_timeout_secs = 30;
        assert_eq!(refused_key(&config), None);
    }

    #[test]
    fn the_admin_name_must_be_a_printable_name() {
        let mut config = with_secrets();
        assert_eq!(config.security.admin_name, "operator");
        for bad in ["", "  ", "a\nb", &"x".repeat(101)] {
            config.security.admin_name = bad.into();
            assert!(
                matches!(
                    config.validate(),
                    Err(ConfigError::Invalid {
                        key: "security.admin_name",
                        ..
                    })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn tls_settings_go_together() {
        let mut config = with_secrets();
        assert!(!config.tls.enabled());
        config.tls.admin_client_ca_file = "ca.pem".into();
        assert_eq!(refused_key(&config), Some("tls.admin_client_ca_file"));
        config.tls.cert_file = "server.pem".into();
        assert_eq!(refused_key(&config), Some("tls.key_file"));
        config.tls.key_file = "server.key".into();
        assert_eq!(refused_key(&config), None);
        config.tls.cert_file = "".into();
        assert_eq!(refused_key(&config), Some("tls.key_file"));
        config.tls.cert_file = "server.pem".into();
        config.redis.ca_file = "ca.pem".into();
        assert_eq!(refused_key(&config), Some("redis.ca_file"));
        config.redis.url = Secret::new("rediss://127.0.0.1:6380/");
        assert_eq!(refused_key(&config), None);
    }

    #[test]
    fn oauth2_settings_are_checked() {
        let mut config = with_secrets();
        assert_eq!(
            (config.oauth2.code_ttl_secs, config.oauth2.issuer.as_str()),
            (60, "")
        );
        config.oauth2.issuer = "https://sign.example/".into();
        assert_eq!(refused_key(&config), Some("oauth2.issuer"));
        config.oauth2.issuer = "https://sign.example".into();
        assert_eq!(refused_key(&config), None);
        config.oauth2.code_ttl_secs = 0;
        assert_eq!(refused_key(&config), Some("oauth2"));
    }

    #[test]
    fn secrets_are_redacted_in_debug() {
        let secret = Secret::new("hunter2-hunter2");
        assert_eq!(format!("{secret:?}"), "Secret(***)");
    }

    #[test]
    fn identifiers() {
        assert!(is_identifier("t_abc123"));
        assert!(!is_identifier("x; drop table users"));
        assert!(!is_identifier("Upper"));
        assert!(!is_identifier(""));
    }

    #[test]
    fn cluster_urls_come_as_a_list_and_are_checked() {
        let env = |vars: &[(&str, &str)]| {
            let vars = vars
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
            config::Config::builder()
                .add_source(config::File::from_str(
                    DEFAULT_TOML,
                    config::FileFormat::Toml,
                ))
                .add_source(environment().source(Some(vars)))
                .build()
                .and_then(config::Config::try_deserialize::<Config>)
                .unwrap()
        };
        assert!(env(&[]).redis.cluster_urls.is_empty());
        let mut config = env(&[
            (
                "SIGILLO__REDIS__CLUSTER_URLS",
                "redis://127.0.0.1:7000/,redis://127.0.0.1:7001/",
            ),
            ("SIGILLO__REDIS__KEY_PREFIX", "a,b:"),
            ("SIGILLO__HSM__PIN", "1234"),
            ("SIGILLO__SECURITY__ADMIN_TOKEN", &"a".repeat(16)),
            ("SIGILLO__SECURITY__TOKEN_SECRET", &"b".repeat(32)),
        ]);
        let urls: Vec<&str> = config
            .redis
            .cluster_urls
            .iter()
            .map(Secret::expose)
            .collect();
        assert_eq!(urls, ["redis://127.0.0.1:7000/", "redis://127.0.0.1:7001/"]);
        assert_eq!(config.redis.key_prefix, "a,b:", "other values stay strings");
        assert_eq!(
            format!("{:?}", config.redis.cluster_urls),
            "[Secret(***), Secret(***)]"
        );
        assert!(config.validate().is_ok(), "{:?}", config.validate());
        config.redis.key_prefix = "{sigillo}:".into();
        assert_eq!(refused_key(&config), Some("redis.key_prefix"));
        config.redis.key_prefix = "sigillo:".into();
        config.redis.ca_file = "ca.pem".into();
        config.redis.url = Secret::new("rediss://127.0.0.1:6380/");
        assert_eq!(refused_key(&config), Some("redis.ca_file"));
        config.redis.ca_file = PathBuf::new();
        config
            .redis
            .cluster_urls
            .push(Secret::new("127.0.0.1:7002"));
        assert_eq!(refused_key(&config), Some("redis.cluster_urls"));
    }
}
