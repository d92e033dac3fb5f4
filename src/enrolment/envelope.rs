//! Making sealed envelopes: the PUK of a credential is created here, with the envelope that
//! carries it, and nowhere else.
//!
//! Invariants: a credential's PUK HMAC is stored if and only if its envelope mail is queued
//! (one transaction); the envelopes made together carry one fresh emergency code, whose digest
//! replaces the earlier one in that same transaction; the subscriber's row is locked first
//! (`FOR UPDATE`), by setup as by credential creation, so that a credential created while its
//! subscriber completes the setup gets exactly one envelope. Neither the PUK nor the code is
//! returned, logged or audited.

use deadpool_postgres::Transaction;
use rand::Rng;
use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;
use zeroize::Zeroizing;

use super::EnrolError;
use crate::activation::{emergency, SecretKind};
use crate::db::{repo, DbError};
use crate::envelope::{self, Letter, Lock, LockPublic};
use crate::mail::{self, Locale, Message};
use crate::model::{CredentialStatus, Operator};
use crate::services::Services;

/// The context the HSM binds a subscriber's sealed envelope key to.
pub(crate) fn key_context(user_id: &str) -> String {
    format!("envelope:{user_id}")
}

/// Whether a credential's envelope went out or waits for the subscriber's setup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnvelopeState {
    Sent,
    AwaitingSetup,
}

impl EnvelopeState {
    pub fn as_str(self) -> &'static str {
        match self {
            EnvelopeState::Sent => "sent",
            EnvelopeState::AwaitingSetup => "awaiting_setup",
        }
    }
}

/// An envelope queued in a transaction, to audit once it committed.
#[derive(Debug, Clone)]
pub(crate) struct Made {
    pub credential_id: Uuid,
    pub serial_number: String,
}

/// Locks the row of `user_id` for the rest of `tx`; `UserNotFound` if there is none. True if
/// the subscriber's envelope lock exists (setup done).
pub(crate) async fn lock_user(tx: &Transaction<'_>, user_id: &str) -> Result<bool, EnrolError> {
    let row = tx
        .query_opt(
            "SELECT envelope_key IS NOT NULL FROM users WHERE user_id = $1 FOR UPDATE",
            &[&user_id],
        )
        .await
        .map_err(DbError::from)?
        .ok_or(EnrolError::UserNotFound)?;
    Ok(row.try_get::<_, bool>(0).map_err(DbError::from)?)
}

/// Makes, in `tx`, the envelope of every credential of `user_id` that waits for one (no PUK
/// yet, not revoked): a fresh PUK each, one fresh emergency code for all, each sealed with the
/// subscriber's lock and queued as an e-mail. Nothing if the subscriber has no lock yet.
pub(crate) async fn make_waiting(
    services: &Services,
    tx: &Transaction<'_>,
    user_id: &str,
) -> Result<Vec<Made>, EnrolError> {
    let user = tx
        .query_opt(
            "SELECT locale, given_name, surname, envelope_lock, envelope_key FROM users \
             WHERE user_id = $1 FOR UPDATE",
            &[&user_id],
        )
        .await
        .map_err(DbError::from)?
        .ok_or(EnrolError::UserNotFound)?;
    let get = |i: usize| user.try_get::<_, String>(i).map_err(DbError::from);
    let (locale, given_name, surname) = (Locale::from_db(&get(0)?), get(1)?, get(2)?);
    let lock: Option<serde_json::Value> = user.try_get(3).map_err(DbError::from)?;
    let sealed_key: Option<Vec<u8>> = user.try_get(4).map_err(DbError::from)?;
    let (Some(lock), Some(sealed_key)) = (lock, sealed_key) else {
        return Ok(Vec::new());
    };
    let waiting = tx
        .query(
            "SELECT credential_id, serial_number FROM credentials \
             WHERE user_id = $1 AND puk_hmac IS NULL AND status <> $2 \
             ORDER BY created_at, credential_id FOR UPDATE",
            &[&user_id, &CredentialStatus::Revoked.as_str()],
        )
        .await
        .map_err(DbError::from)?;
    if waiting.is_empty() {
        return Ok(Vec::new());
    }
    let public: LockPublic =
        serde_json::from_value(lock).map_err(|_| DbError::Corrupt("users.envelope_lock"))?;
    let file_key = services
        .secrets
        .open(&key_context(user_id), &sealed_key)
        .await?;
    let lock = Lock::from_parts(Zeroizing::new(file_key.to_vec()), public)?;

    let (emergency_code, emergency_digest) = emergency::new_code_for(services, user_id).await?;
    emergency::store_digest_in(tx, user_id, &emergency_digest).await?;
    let issued_on = OffsetDateTime::now_utc().date();
    let mut made = Vec::with_capacity(waiting.len());
    for row in &waiting {
        let credential_id: Uuid = row.try_get(0).map_err(DbError::from)?;
        let serial_number: String = row.try_get(1).map_err(DbError::from)?;
        let puk = Zeroizing::new(format!(
            "{:08}",
            rand::rngs::OsRng.gen_range(0..100_000_000u32)
        ));
        let puk_hmac = services
            .pins
            .digest(SecretKind::Puk, credential_id, &puk)
            .await?;
        let letter = Letter {
            locale,
            given_name: given_name.clone(),
            surname: surname.clone(),
            user_id: user_id.to_owned(),
            credential_id: credential_id.to_string(),
            serial_number: serial_number.clone(),
            puk: puk.to_string(),
            emergency_code: emergency_code.clone(),
            issued_on,
        };
        let pdf = envelope::seal(&lock, &letter)?;
        mail::enqueue(
            tx,
            user_id,
            &Message::Envelope {
                serial_number: serial_number.clone(),
                pdf,
            },
        )
        .await?;
        tx.execute(
            "UPDATE credentials SET puk_hmac = $2, puk_failures = 0 WHERE credential_id = $1",
            &[&credential_id, &puk_hmac],
        )
        .await
        .map_err(DbError::from)?;
        made.push(Made {
            credential_id,
            serial_number,
        });
    }
    Ok(made)
}

/// Audits envelopes that committed and wakes the mail sender.
pub(crate) async fn sent(
    services: &Services,
    actor: &str,
    user_id: &str,
    made: &[Made],
    detail: impl Fn(serde_json::Value) -> serde_json::Value,
) -> Result<(), EnrolError> {
    if made.is_empty() {
        return Ok(());
    }
    services.mail.wake();
    for m in made {
        services
            .audit
            .record(
                actor,
                "credential.envelope",
                Some(m.credential_id),
                "sent",
                detail(json!({ "user_id": user_id, "serial_number": m.serial_number })),
            )
            .await?;
    }
    Ok(())
}

/// `POST /admin/v1/credentials/{id}/envelope`: an envelope lost before activation is replaced:
/// a new PUK (the old one stops working at once) and a new emergency code, in a new envelope.
/// Only for an inactive credential; if the subscriber has not done the setup yet, the
/// envelope waits for it as a new credential's does.
pub async fn replace_envelope(
    services: &Services,
    credential_id: Uuid,
    operator: &Operator,
) -> Result<EnvelopeState, EnrolError> {
    let result = replace(services, credential_id, operator).await;
    if let Err(err) = &result {
        services
            .audit
            .record(
                &operator.name,
                "credential.envelope",
                Some(credential_id),
                "refused",
                operator.audit_detail(json!({ "error": err.to_string() })),
            )
            .await?;
    }
    result
}

async fn replace(
    services: &Services,
    credential_id: Uuid,
    operator: &Operator,
) -> Result<EnvelopeState, EnrolError> {
    let credential = repo::credentials::find(&services.db, credential_id)
        .await?
        .ok_or(EnrolError::CredentialNotFound)?;
    let user_id = credential.user_id;
    let mut client = services.db.get().await.map_err(DbError::from)?;
    let tx = client.transaction().await.map_err(DbError::from)?;
    // The subscriber first, then the credential: the order setup takes them in.
    let has_lock = lock_user(&tx, &user_id).await?;
    let reset = tx
        .execute(
            "UPDATE credentials SET puk_hmac = NULL WHERE credential_id = $1 AND status = $2",
            &[&credential_id, &CredentialStatus::Inactive.as_str()],
        )
        .await
        .map_err(DbError::from)?;
    if reset != 1 {
        return Err(EnrolError::NotInactive);
    }
    let made = make_waiting(services, &tx, &user_id).await?;
    tx.commit().await.map_err(DbError::from)?;
    sent(services, &operator.name, &user_id, &made, |d| {
        operator.audit_detail(d)
    })
    .await?;
    Ok(if has_lock {
        EnvelopeState::Sent
    } else {
        EnvelopeState::AwaitingSetup
    })
}
