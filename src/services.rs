//! `Services`: everything the domain needs, built once at start-up and shared by every
//! request, CLI command and test. No HTTP types here.

use std::sync::Arc;
use std::time::Duration;

use crate::activation::sad::SadSeal;
use crate::activation::PinVault;
use crate::audit::chain::ChainKey;
use crate::audit::{Audit, Linger};
use crate::auth::Tokens;
use crate::ca::{Ca, CaError};
use crate::config::Config;
use crate::db::{self, Db, DbError};
use crate::hsm::{Hsm, HsmError};
use crate::kv::{Kv, KvError};
use crate::metrics::Metrics;
use crate::otp::{build_sender, Otp, SmsError};
use crate::pki::tsa::{Tsa, TsaError};
use crate::secrets::{Secrets, SecretsError};

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("PostgreSQL: {0}")]
    Db(#[from] DbError),
    #[error("Redis: {0}")]
    Kv(#[from] KvError),
    #[error("HSM: {0}")]
    Hsm(#[from] HsmError),
    #[error("CA: {0}")]
    Ca(#[from] CaError),
    #[error("TSA: {0}")]
    Tsa(#[from] TsaError),
    #[error("secrets: {0}")]
    Secrets(#[from] SecretsError),
    #[error("SMS sender: {0}")]
    Sms(#[from] SmsError),
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error("listener: {0}")]
    Io(#[from] std::io::Error),
    #[error("TLS: {0}")]
    Tls(#[from] crate::tls::TlsError),
    #[error("mail: {0}")]
    Mail(#[from] crate::mail::MailError),
    #[error("PKI: {0}")]
    Pki(#[from] crate::pki::PkiError),
    #[error("start-up task failed: {0}")]
    Task(String),
}

pub struct Services {
    pub config: Config,
    pub db: Db,
    pub audit: Audit,
    /// Keys the audit hash chain (derived in the HSM); `audit::verify` checks with it.
    pub audit_chain: Arc<ChainKey>,
    pub kv: Kv,
    pub hsm: Hsm,
    pub ca: Ca,
    /// The RFC 3161 time-stamping authority; `None` when `tsa.enabled` is false.
    pub tsa: Option<Tsa>,
    /// Certificate status for relying parties (OCSP, CRL), served from memory.
    pub pki: crate::pki::Pki,
    pub pins: PinVault,
    /// Authenticates SADs in Redis (its key derived in the HSM).
    pub sad_seal: SadSeal,
    pub otp: Otp,
    /// Sends the mail outbox over SMTP (every node runs its sender).
    pub mail: crate::mail::Mailer,
    pub tokens: Tokens,
    pub metrics: Metrics,
    /// The gateway's symmetric secrets (TOTP sealing in the HSM, OTP digests, token key).
    pub secrets: Arc<Secrets>,
}

impl Services {
    /// Connects to PostgreSQL (and migrates), Redis and the HSM, then loads or creates the
    /// gateway's own HSM objects under a cluster-wide lock.
    pub async fn build(config: Config) -> Result<Services, StartError> {
        // Migrations as the schema's owner; everything else as the runtime role, which can
        // add audit rows but not change or remove them.
        let owner = db::connect_owner(&config.database).await?;
        db::migrate::run(&owner).await?;
        drop(owner);
        let db = db::connect(&config.database).await?;
        let kv = Kv::connect(&config.redis).await?;
        let metrics = Metrics::new()?;
        let hsm_config = config.hsm.clone();
        let hsm_metrics = metrics.hsm.clone();
        let hsm = tokio::task::spawn_blocking(move || Hsm::start(&hsm_config, Some(hsm_metrics)))
            .await
            .map_err(|e| StartError::Task(e.to_string()))??;

        // Nodes starting together must not each create a CA or a PIN key.
        let lock = db.get().await.map_err(DbError::from)?;
        lock.execute(
            "SELECT pg_advisory_lock(hashtext(current_schema() || ':bootstrap'))",
            &[],
        )
        .await
        .map_err(DbError::from)?;
        let own_objects = async {
            let pins = PinVault::ensure(&hsm).await?;
            let sad_seal = SadSeal::ensure(&hsm).await?;
            let audit_chain = ChainKey::ensure(&hsm).await?;
            let ca = Ca::ensure(&db, &hsm, &config.ca, &config.pki).await?;
            let pki = crate::pki::Pki::ensure(&db, &hsm, &ca, &config.pki).await?;
            let secrets = Secrets::ensure(&hsm, config.security.token_secret.expose()).await?;
            let tsa = match config.tsa.enabled {
                true => Some(Tsa::ensure(&db, &hsm, &ca, &config.tsa).await?),
                false => None,
            };
            Ok::<_, StartError>((pins, sad_seal, audit_chain, ca, pki, secrets, tsa))
        }
        .await;
        lock.execute(
            "SELECT pg_advisory_unlock(hashtext(current_schema() || ':bootstrap'))",
            &[],
        )
        .await
        .map_err(DbError::from)?;
        let (pins, sad_seal, audit_chain, ca, pki, secrets, tsa) = own_objects?;
        // The status and the CRL are ready before the first request.
        pki.refresh(&db, &ca).await?;
        let audit_chain = Arc::new(audit_chain);
        let secrets = Arc::new(secrets);
        let keys = hsm.preload_keys().await?;
        tracing::info!(keys, "HSM key handles cached");

        let otp = Otp::new(
            kv.clone(),
            secrets.clone(),
            build_sender(&config.otp)?,
            config.otp.clone(),
        );
        let tokens = Tokens::configured(&config.security, secrets.token_key());
        let mail = crate::mail::Mailer::new(&config.mail)?;
        let services = Services {
            audit: Audit::start(
                db.clone(),
                &metrics,
                audit_chain.clone(),
                Linger {
                    max: Duration::from_micros(config.database.audit_linger_us),
                    backlog: {
                        let hsm = hsm.clone();
                        Box::new(move || hsm.backlog())
                    },
                },
            ),
            audit_chain,
            metrics,
            config,
            db,
            kv,
            hsm,
            ca,
            tsa,
            pki,
            pins,
            sad_seal,
            otp,
            mail,
            tokens,
            secrets,
        };
        // A key whose destruction failed after its revocation committed goes now.
        match crate::lifecycle::destroy_revoked_keys(&services).await {
            Ok(0) => {}
            Ok(keys) => tracing::warn!(keys, "keys of revoked credentials destroyed at start-up"),
            Err(e) => tracing::error!(error = %e, "start-up sweep of revoked keys failed"),
        }
        // TOTP seeds sealed before the seal key moved into the HSM are sealed again, once.
        match crate::enrolment::reseal_totp_seeds(&services).await {
            Ok(0) => {}
            Ok(seeds) => tracing::info!(seeds, "TOTP seeds resealed in the HSM"),
            Err(e) => tracing::error!(error = %e, "resealing old TOTP seeds failed"),
        }
        Ok(services)
    }
}
