//! The gateway's own certification authority: a root and an issuing CA whose keys live in the
//! HSM (EC P-384), and the issuance of credential certificates.
//!
//! Invariants: every certificate the CA emits is signed inside the HSM; a `signing` certificate
//! carries only nonRepudiation (and the eIDAS QC statements), an `authentication` certificate
//! only digitalSignature + clientAuth; the chain stored with a credential is leaf → issuing →
//! root. openssl assembles the to-be-signed part; the signature that counts comes from the HSM.

mod dn;
mod issue;
mod responder;
mod service;

pub use dn::rfc4514;
pub use issue::{IssueRequest, Issued, PkiUrls};
pub use responder::ECDSA_SHA384;

use openssl::ec::{EcGroup, EcKey};
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::x509::X509;

use crate::config::{CaConfig, PkiConfig};
use crate::db::{repo, Db, DbError};
use crate::hsm::{Hsm, HsmError, KeyAlgo};

#[derive(Debug, thiserror::Error)]
pub enum CaError {
    #[error(transparent)]
    Hsm(#[from] HsmError),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("certificate building failed: {0}")]
    Build(#[from] openssl::error::ErrorStack),
    #[error("malformed DER from the certificate builder")]
    Der,
    #[error("the {0} CA key in the HSM does not match its stored certificate")]
    KeyMismatch(&'static str),
    #[error("certificate building task failed: {0}")]
    Task(String),
}

const ROOT: &str = "ca-root";
const ISSUING: &str = "ca-issuing";
/// The issuing CA's name in `ca_certificates`, the CRL and the caIssuers URLs.
pub const ISSUING_NAME: &str = "issuing";
/// The root's name in `ca_certificates` and its URL.
pub const ROOT_NAME: &str = "root";

/// The loaded CA: certificates in memory, keys in the HSM.
pub struct Ca {
    hsm: Hsm,
    root: X509,
    issuing: X509,
    issuing_key_id: Vec<u8>,
    root_key_id: Vec<u8>,
    /// Signs the throw-away signature of the builder (same algorithm as the CA keys), so that
    /// the to-be-signed bytes carry the right AlgorithmIdentifier. Never a trust anchor.
    placeholder: PKey<Private>,
    config: CaConfig,
    profile: issue::Profile,
}

fn placeholder_key() -> Result<PKey<Private>, CaError> {
    let group = EcGroup::from_curve_name(Nid::SECP384R1)?;
    Ok(PKey::from_ec_key(EcKey::generate(&group)?)?)
}

impl Ca {
    /// Loads the CA, creating keys and certificates on first start. Callers hold the start-up
    /// lock so that two nodes never create two CAs.
    /// `pki.base_url` must be resolved (not empty) for the URLs certificates name.
    pub async fn ensure(
        db: &Db,
        hsm: &Hsm,
        config: &CaConfig,
        pki: &PkiConfig,
    ) -> Result<Ca, CaError> {
        let placeholder = placeholder_key()?;
        let urls = PkiUrls::new(&pki.base_url);
        let root_spki = hsm.ensure_own_key_pair(ROOT, KeyAlgo::EcP384).await?;
        let issuing_spki = hsm.ensure_own_key_pair(ISSUING, KeyAlgo::EcP384).await?;
        let root = match repo::ca::find(db, "root").await? {
            Some(der) => X509::from_der(&der)?,
            None => {
                let builder =
                    issue::ca_builder(&config.root_common_name, config, None, &root_spki, 25)?;
                let der =
                    issue::sign_in_hsm(hsm, hsm.own_key_id(ROOT), builder, &placeholder).await?;
                repo::ca::insert(db, "root", ROOT, &der).await?;
                X509::from_der(&der)?
            }
        };
        let issuing = match repo::ca::find(db, "issuing").await? {
            Some(der) => X509::from_der(&der)?,
            None => {
                let builder = issue::ca_builder(
                    &config.issuing_common_name,
                    config,
                    Some((&root, &urls)),
                    &issuing_spki,
                    20,
                )?;
                let der =
                    issue::sign_in_hsm(hsm, hsm.own_key_id(ROOT), builder, &placeholder).await?;
                repo::ca::insert(db, "issuing", ISSUING, &der).await?;
                X509::from_der(&der)?
            }
        };
        if root.public_key()?.public_key_to_der()? != root_spki {
            return Err(CaError::KeyMismatch("root"));
        }
        if issuing.public_key()?.public_key_to_der()? != issuing_spki {
            return Err(CaError::KeyMismatch("issuing"));
        }
        Ok(Ca {
            hsm: hsm.clone(),
            root,
            issuing,
            issuing_key_id: hsm.own_key_id(ISSUING),
            root_key_id: hsm.own_key_id(ROOT),
            placeholder,
            config: config.clone(),
            profile: issue::Profile {
                urls,
                pds_url: pki.pds_url.clone(),
                policies: pki
                    .signing_policy_oids
                    .iter()
                    .filter_map(|oid| crate::der::parse_oid(oid))
                    .collect(),
            },
        })
    }

    /// The root certificate (trust anchor of every credential).
    pub fn root(&self) -> &X509 {
        &self.root
    }

    /// The issuing CA certificate.
    pub fn issuing(&self) -> &X509 {
        &self.issuing
    }

    /// The URLs the certificates issued from now on name (AIA, CRL distribution point).
    pub fn urls(&self) -> &PkiUrls {
        &self.profile.urls
    }
}
