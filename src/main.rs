//! The `sigillo` command: `serve`, `migrate`, the operator's `admin` commands, and `audit`
//! (verify the audit log's chain, export it).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use serde_json::json;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use sigillo::audit::chain::ChainKey;
use sigillo::audit::{export, verify};
use sigillo::config::Config;
use sigillo::enrolment::{self, NewCredential, NewUser};
use sigillo::hsm::Hsm;
use sigillo::services::{Services, StartError};
use sigillo::{app, db, telemetry};

#[derive(Parser)]
#[command(
    name = "sigillo",
    version,
    about = "Remote-signing HSM gateway (CSC API)"
)]
struct Cli {
    /// Configuration file layered over the built-in defaults (env: SIGILLO_CONFIG).
    #[arg(long, env = "SIGILLO_CONFIG", global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the gateway: public API and admin API.
    Serve,
    /// Applies pending database migrations and exits.
    Migrate,
    /// Operator commands (the same operations as the admin API).
    #[command(subcommand)]
    Admin(AdminCommand),
    /// The tamper-evident audit log: check its chain, export it.
    #[command(subcommand)]
    Audit(AuditCommand),
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Checks every row's link in the HSM-keyed hash chain; prints a JSON report and exits
    /// non-zero at the first broken row.
    Verify,
    /// Writes the rows of a time range (RFC 3339; from inclusive, to exclusive) as JSON lines
    /// with their chain values.
    Export {
        #[arg(long, value_parser = parse_time)]
        from: Option<OffsetDateTime>,
        #[arg(long, value_parser = parse_time)]
        to: Option<OffsetDateTime>,
    },
}

fn parse_time(value: &str) -> Result<OffsetDateTime, String> {
    OffsetDateTime::parse(value, &Rfc3339).map_err(|e| format!("not an RFC 3339 time: {e}"))
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Creates a subscriber and e-mails the setup link (password and envelope passphrase are
    /// the subscriber's to choose); prints {user_id, otp_method, locale, setup_link_expires_at}.
    CreateUser {
        #[arg(long)]
        user_id: String,
        #[arg(long)]
        given_name: String,
        #[arg(long)]
        surname: String,
        #[arg(long)]
        fiscal_code: String,
        #[arg(long)]
        email: String,
        #[arg(long)]
        phone: String,
        /// sms or totp
        #[arg(long, default_value = "sms")]
        otp_method: String,
        /// it or en: the language of the subscriber's e-mails
        #[arg(long, default_value = "it")]
        locale: String,
    },
    /// Creates a credential (key in the HSM + certificate); its PUK goes in the sealed
    /// envelope, e-mailed now or when the subscriber completes the setup.
    CreateCredential {
        #[arg(long)]
        user_id: String,
        /// ec-p256, ec-p384, rsa-2048 or rsa-3072
        #[arg(long)]
        key_algo: String,
        /// signing or authentication
        #[arg(long, default_value = "signing")]
        purpose: String,
        #[arg(long)]
        validity_days: Option<u32>,
    },
}

#[derive(Debug, thiserror::Error)]
enum CliError {
    #[error(transparent)]
    Start(#[from] StartError),
    #[error(transparent)]
    Config(#[from] sigillo::config::ConfigError),
    #[error(transparent)]
    Db(#[from] db::DbError),
    #[error(transparent)]
    Enrol(#[from] enrolment::EnrolError),
    #[error("{0}")]
    Usage(String),
    #[error("HSM: {0}")]
    Hsm(#[from] sigillo::hsm::HsmError),
    #[error(transparent)]
    Export(#[from] sigillo::audit::export::ExportError),
    #[error("the audit chain is broken at row {row:?}: {why}")]
    ChainBroken { row: Option<i64>, why: String },
}

async fn run(cli: Cli) -> Result<(), CliError> {
    let config = Config::load(cli.config.as_deref())?;
    match cli.command {
        Command::Serve => {
            let running = app::start(config).await?;
            running.serve_until_signal().await;
        }
        Command::Migrate => {
            let pool = db::connect_owner(&config.database).await?;
            let applied = db::migrate::run(&pool).await?;
            println!("{}", json!({ "applied": applied }));
        }
        Command::Admin(command) => {
            let services = Services::build(config).await?;
            admin(&services, command).await?;
        }
        Command::Audit(command) => audit(config, command).await?,
    }
    Ok(())
}

async fn audit(config: Config, command: AuditCommand) -> Result<(), CliError> {
    let pool = db::connect(&config.database).await?;
    match command {
        AuditCommand::Verify => {
            let hsm_config = config.hsm.clone();
            let hsm = tokio::task::spawn_blocking(move || Hsm::start(&hsm_config, None))
                .await
                .map_err(|e| StartError::Task(e.to_string()))??;
            let key = ChainKey::open(&hsm).await?;
            let report = verify::verify(&pool, &key).await?;
            println!("{}", json!(report));
            if let Some(broken) = report.broken {
                return Err(CliError::ChainBroken {
                    row: broken.row_id,
                    why: broken.explanation,
                });
            }
        }
        AuditCommand::Export { from, to } => {
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            export::export(&pool, from, to, &mut out).await?;
        }
    }
    Ok(())
}

async fn admin(services: &Services, command: AdminCommand) -> Result<(), CliError> {
    match command {
        AdminCommand::CreateUser {
            user_id,
            given_name,
            surname,
            fiscal_code,
            email,
            phone,
            otp_method,
            locale,
        } => {
            let otp_method = otp_method
                .parse()
                .map_err(|()| CliError::Usage("--otp-method: sms or totp".into()))?;
            let locale = match locale.as_str() {
                "it" => sigillo::mail::Locale::It,
                "en" => sigillo::mail::Locale::En,
                _ => return Err(CliError::Usage("--locale: it or en".into())),
            };
            let created = enrolment::create_user(
                services,
                NewUser {
                    user_id,
                    locale,
                    given_name,
                    surname,
                    fiscal_code,
                    email,
                    phone,
                    otp_method,
                },
            )
            .await?;
            println!(
                "{}",
                json!({
                    "user_id": created.user_id,
                    "otp_method": created.otp_method.as_str(),
                    "locale": created.locale.as_str(),
                    "setup_link_expires_at": created
                        .setup_link_expires_at
                        .format(&Rfc3339)
                        .unwrap_or_default(),
                })
            );
        }
        AdminCommand::CreateCredential {
            user_id,
            key_algo,
            purpose,
            validity_days,
        } => {
            let created = enrolment::create_credential(
                services,
                NewCredential {
                    user_id,
                    key_algo: key_algo.parse().map_err(|()| {
                        CliError::Usage("--key-algo: ec-p256, ec-p384, rsa-2048 or rsa-3072".into())
                    })?,
                    purpose: purpose.parse().map_err(|()| {
                        CliError::Usage("--purpose: signing or authentication".into())
                    })?,
                    validity_days,
                },
            )
            .await?;
            println!(
                "{}",
                json!({
                    "credential_id": created.credential_id,
                    "status": created.status.as_str(),
                    "serial_number": created.serial_number,
                    "envelope": created.envelope.as_str(),
                })
            );
        }
    }
    Ok(())
}

/// glibc raises its mmap threshold after the first large free, after which the ~19 MiB
/// Argon2 buffers of logins come from the heap and stay resident in per-thread arenas (the
/// gateway grew to ~900 MB under a login load). A fixed threshold keeps them mmap'd, so
/// they go back to the system when freed.
fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; called before any other thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
        libc::mallopt(libc::M_ARENA_MAX, 4);
    }
}

fn main() -> ExitCode {
    tune_allocator();
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(run_main()),
        Err(e) => {
            eprintln!("sigillo: cannot start the async runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run_main() -> ExitCode {
    telemetry::init();
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "sigillo failed");
            eprintln!("sigillo: {e}");
            ExitCode::FAILURE
        }
    }
}
