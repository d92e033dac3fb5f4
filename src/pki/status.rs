//! Every node's in-memory view of certificate status, kept in step with PostgreSQL.
//!
//! A node polls `pki_status` every `pki.status_poll_ms` (one small query); when the version
//! moved it loads only the certificates changed since (`issued_certificates.status_version`),
//! and when the CRL is stale (a status changed since it was signed, or half its validity has
//! passed) one node signs a new one under a lock and every node loads it on its next poll.
//! The node that made a change polls at once ([`Pki::refresh`] from the lifecycle), the
//! others within a poll interval. Why a poll and not LISTEN/NOTIFY or Redis pub/sub: a
//! notification lost while a connection is down (a PostgreSQL restart, a pool recycle) is
//! lost for good, while a poll of a version catches up by itself; at 4 queries a second per
//! node it costs nothing. OCSP and CRL requests never touch the database.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use time::OffsetDateTime;

use super::crl::{self, CrlIssuer};
use super::ocsp::{self, CertStatus, Request, Responder, ResponseStatus};
use super::PkiError;
use crate::ca::{Ca, ISSUING_NAME, ROOT_NAME};
use crate::config::PkiConfig;
use crate::db::repo::pki::{self as repo, CrlTimes};
use crate::db::Db;
use crate::hsm::HsmError;

/// Most signed "good" answers kept for reuse.
const CACHE_ENTRIES: usize = 10_000;
/// Least time between two polls caused by requests for unknown serials.
const MISS_POLL_GAP: Duration = Duration::from_millis(50);

struct Known {
    issuer: String,
    revoked: Option<(OffsetDateTime, i16)>,
}

#[derive(Default)]
struct State {
    version: i64,
    certificates: HashMap<String, Known>,
    crl: Option<(i64, Arc<[u8]>)>,
    /// The root's CRL and its nextUpdate.
    root_crl: Option<(Arc<[u8]>, OffsetDateTime)>,
}

struct Cached {
    response: Arc<[u8]>,
    version: i64,
    until: Instant,
}

/// Certificate status for relying parties: the OCSP responder and the CRL, served from memory.
pub struct Pki {
    responder: RwLock<Arc<Responder>>,
    config: PkiConfig,
    state: RwLock<State>,
    /// One poll at a time on this node.
    polling: tokio::sync::Mutex<()>,
    /// Signed answers to nonce-less requests whose every certificate is good, by requestList.
    cache: Mutex<HashMap<Vec<u8>, Cached>>,
    last_miss_poll: Mutex<Option<Instant>>,
}

impl Pki {
    /// Loads or creates the OCSP responder (callers hold the start-up lock).
    pub async fn ensure(
        db: &Db,
        hsm: &crate::hsm::Hsm,
        ca: &Ca,
        config: &PkiConfig,
    ) -> Result<Pki, PkiError> {
        Ok(Pki {
            responder: RwLock::new(Arc::new(Responder::ensure(db, hsm, ca, config).await?)),
            config: config.clone(),
            state: RwLock::new(State::default()),
            polling: tokio::sync::Mutex::new(()),
            cache: Mutex::new(HashMap::new()),
            last_miss_poll: Mutex::new(None),
        })
    }

    /// The responder answering now.
    fn responder(&self) -> Result<Arc<Responder>, PkiError> {
        Ok(self
            .responder
            .read()
            .map_err(|_| PkiError::Poisoned)?
            .clone())
    }

    /// The OCSP responder certificate (DER).
    pub fn responder_certificate(&self) -> Result<Vec<u8>, PkiError> {
        Ok(self.responder()?.certificate().to_vec())
    }

    /// Re-issues the responder certificate when it is in its last third (a node that runs
    /// for months never answers with an expired one): under the start-up lock, so that the
    /// nodes share one new certificate. Returns whether the responder changed.
    pub async fn renew_responder_if_due(
        &self,
        db: &Db,
        hsm: &crate::hsm::Hsm,
        ca: &Ca,
    ) -> Result<bool, PkiError> {
        if !self.responder()?.renewal_due() {
            return Ok(false);
        }
        let lock = db.get().await.map_err(crate::db::DbError::from)?;
        lock.execute(
            "SELECT pg_advisory_lock(hashtext(current_schema() || ':bootstrap'))",
            &[],
        )
        .await
        .map_err(crate::db::DbError::from)?;
        let renewed = Responder::ensure(db, hsm, ca, &self.config).await;
        lock.execute(
            "SELECT pg_advisory_unlock(hashtext(current_schema() || ':bootstrap'))",
            &[],
        )
        .await
        .map_err(crate::db::DbError::from)?;
        let renewed = renewed?;
        *self.responder.write().map_err(|_| PkiError::Poisoned)? = Arc::new(renewed);
        self.cache.lock().map_err(|_| PkiError::Poisoned)?.clear();
        tracing::info!("OCSP responder certificate renewed");
        Ok(true)
    }

    /// The current CRL of `issuer` (DER: the issuing CA's or the root's), if this node has one.
    pub fn crl(&self, issuer: &str) -> Option<Arc<[u8]>> {
        let state = self.state.read().ok()?;
        match issuer {
            ISSUING_NAME => state.crl.as_ref().map(|(_, der)| der.clone()),
            ROOT_NAME => state.root_crl.as_ref().map(|(der, _)| der.clone()),
            _ => None,
        }
    }

    /// Catches up with PostgreSQL: the changed certificates, and the CRL (signed here if it
    /// is stale and no other node is signing it).
    pub async fn refresh(&self, db: &Db, ca: &Ca) -> Result<(), PkiError> {
        let _one = self.polling.lock().await;
        let issuer = ISSUING_NAME;
        let versions = repo::versions(db, issuer).await?;
        let known = self.state.read().map_err(|_| PkiError::Poisoned)?.version;
        if versions.version != known {
            let (version, changed) = repo::changed_since(db, known).await?;
            let mut state = self.state.write().map_err(|_| PkiError::Poisoned)?;
            for c in changed {
                state.certificates.insert(
                    c.serial_number,
                    Known {
                        issuer: c.issuer,
                        revoked: c.revoked,
                    },
                );
            }
            state.version = version;
        }

        let now = OffsetDateTime::now_utc();
        let validity = time::Duration::seconds(
            i64::try_from(self.config.crl_validity_secs).unwrap_or(i64::MAX / 2),
        );
        let times = CrlTimes {
            this_update: now,
            next_update: now + validity,
            reissue_before: now - validity / 2,
        };
        let stale = match versions.crl {
            None => true,
            Some((_, listed, next_update)) => {
                listed < versions.revocation_version || next_update - validity / 2 <= now
            }
        };
        let mut stored = versions.crl.map(|(number, _, _)| number);
        if stale {
            let (this_update, next_update) = (times.this_update, times.next_update);
            let issued = repo::issue_crl_if_stale(db, issuer, true, &times, |input| async move {
                crl::sign_crl(
                    ca,
                    CrlIssuer::Issuing,
                    input.crl_number,
                    this_update,
                    next_update,
                    &input.revoked,
                )
                .await
            })
            .await??;
            if issued {
                stored = None;
            }
        }
        let cached = self
            .state
            .read()
            .map_err(|_| PkiError::Poisoned)?
            .crl
            .as_ref()
            .map(|(number, _)| *number);
        if stored.is_none() || stored != cached {
            if let Some((number, der, _)) = repo::crl(db, issuer).await? {
                let mut state = self.state.write().map_err(|_| PkiError::Poisoned)?;
                state.crl = Some((number, der.into()));
            }
        }
        self.refresh_root_crl(db, ca).await
    }

    /// The root's CRL: it lists CA certificates the root revoked (none: sigillo never revokes
    /// its issuing CA; a compromise means a new CA), so it changes only with time. Signed with
    /// the root key when it is missing or past half of `pki.root_crl_validity_secs` (one node,
    /// under the same lock as the issuing CA's); between those times a poll costs no query.
    async fn refresh_root_crl(&self, db: &Db, ca: &Ca) -> Result<(), PkiError> {
        let now = OffsetDateTime::now_utc();
        let validity = time::Duration::seconds(
            i64::try_from(self.config.root_crl_validity_secs).unwrap_or(i64::MAX / 2),
        );
        let due = match &self.state.read().map_err(|_| PkiError::Poisoned)?.root_crl {
            None => true,
            Some((_, next_update)) => *next_update - validity / 2 <= now,
        };
        if !due {
            return Ok(());
        }
        let times = CrlTimes {
            this_update: now,
            next_update: now + validity,
            reissue_before: now - validity / 2,
        };
        let (this_update, next_update) = (times.this_update, times.next_update);
        repo::issue_crl_if_stale(db, ROOT_NAME, false, &times, |input| async move {
            crl::sign_crl(
                ca,
                CrlIssuer::Root,
                input.crl_number,
                this_update,
                next_update,
                &input.revoked,
            )
            .await
        })
        .await??;
        if let Some((_, der, next_update)) = repo::crl(db, ROOT_NAME).await? {
            let mut state = self.state.write().map_err(|_| PkiError::Poisoned)?;
            state.root_crl = Some((der.into(), next_update));
        }
        Ok(())
    }

    /// The status of every certificate `request` asks about, and the version it was read at;
    /// `None` if this responder is authoritative for none of them.
    fn statuses(
        &self,
        responder: &Responder,
        request: &Request<'_>,
    ) -> Result<Option<(Vec<CertStatus>, i64)>, PkiError> {
        let state = self.state.read().map_err(|_| PkiError::Poisoned)?;
        let mut served = 0;
        let statuses = request
            .ids
            .iter()
            .map(|id| {
                if !responder.serves(id) {
                    return CertStatus::Unknown;
                }
                served += 1;
                match state.certificates.get(&id.serial) {
                    Some(k) if k.issuer == responder.issuer_name => match k.revoked {
                        Some((at, reason)) => CertStatus::Revoked(at, reason),
                        None => CertStatus::Good,
                    },
                    _ => CertStatus::Unknown,
                }
            })
            .collect();
        Ok((served > 0).then_some((statuses, state.version)))
    }

    /// Whether a request for a serial this node does not know may poll PostgreSQL now (a
    /// certificate issued a moment ago, maybe on another node): at most once per
    /// [`MISS_POLL_GAP`], so that unknown serials cannot turn into a query each.
    fn may_poll_on_miss(&self) -> bool {
        let Ok(mut last) = self.last_miss_poll.lock() else {
            return false;
        };
        if last.is_some_and(|t| t.elapsed() < MISS_POLL_GAP) {
            return false;
        }
        *last = Some(Instant::now());
        true
    }

    /// Answers a DER OCSPRequest with a DER OCSPResponse (errors are OCSP statuses too).
    pub async fn ocsp(&self, request: &[u8], db: &Db, ca: &Ca) -> Vec<u8> {
        let Some(request) = ocsp::parse(request) else {
            return ocsp::error_response(ResponseStatus::MalformedRequest);
        };
        let responder = match self.responder() {
            Ok(responder) => responder,
            Err(_) => return ocsp::error_response(ResponseStatus::InternalError),
        };
        let mut found = self.statuses(&responder, &request);
        let missed =
            matches!(&found, Ok(Some((statuses, _))) if statuses.contains(&CertStatus::Unknown));
        if missed && self.may_poll_on_miss() {
            if let Err(e) = self.refresh(db, ca).await {
                tracing::warn!(error = %e, "certificate status poll for an unknown serial failed");
            }
            found = self.statuses(&responder, &request);
        }
        let (statuses, version) = match found {
            Ok(Some(found)) => found,
            Ok(None) => return ocsp::error_response(ResponseStatus::Unauthorized),
            Err(e) => {
                tracing::error!(error = %e, "OCSP status lookup failed");
                return ocsp::error_response(ResponseStatus::InternalError);
            }
        };
        let cacheable = request.nonce.is_none() && statuses.iter().all(|s| *s == CertStatus::Good);
        if cacheable {
            if let Some(hit) = self.cached(request.request_list, version) {
                return hit.to_vec();
            }
        }
        match responder
            .sign(&request, &statuses, OffsetDateTime::now_utc())
            .await
        {
            Ok(response) => {
                if cacheable {
                    self.keep(request.request_list, &response, version);
                }
                response
            }
            Err(PkiError::Hsm(HsmError::QueueFull)) => {
                ocsp::error_response(ResponseStatus::TryLater)
            }
            Err(e) => {
                tracing::error!(error = %e, "OCSP response signing failed");
                ocsp::error_response(ResponseStatus::InternalError)
            }
        }
    }

    fn cached(&self, key: &[u8], version: i64) -> Option<Arc<[u8]>> {
        let cache = self.cache.lock().ok()?;
        cache
            .get(key)
            .filter(|c| c.version == version && c.until > Instant::now())
            .map(|c| c.response.clone())
    }

    fn keep(&self, key: &[u8], response: &[u8], version: i64) {
        // An answer signed for an older version than the node now has is not kept.
        let current = self.state.read().map(|s| s.version).unwrap_or(-1);
        if current != version {
            return;
        }
        let Ok(mut cache) = self.cache.lock() else {
            return;
        };
        if cache.len() >= CACHE_ENTRIES {
            cache.clear();
        }
        // Reused for half the response's validity: a reused answer always has time left.
        let ttl = Duration::from_secs(self.config.ocsp_validity_secs / 2);
        cache.insert(
            key.to_vec(),
            Cached {
                response: response.into(),
                version,
                until: Instant::now() + ttl,
            },
        );
    }
}
