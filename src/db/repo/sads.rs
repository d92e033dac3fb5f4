//! The `sads` table: the durable record of every SAD issued. A SAD is spent by the audit
//! commit of the signHash that uses it (`repo::audit::insert_many`), never here.

use time::OffsetDateTime;
use uuid::Uuid;

use crate::db::{Db, DbError};

/// A SAD to record.
pub struct NewSadRecord<'a> {
    pub sad_id: Uuid,
    pub user_id: &'a str,
    pub credential_id: Uuid,
    pub authorised: u32,
    /// The absolute deadline asked for; the certificate's notAfter may make it earlier.
    pub deadline: OffsetDateTime,
}

/// What the database granted.
#[derive(Debug, Clone, Copy)]
pub struct Recorded {
    /// The credential's generation at this moment (bumped by each suspension or revocation).
    pub generation: i64,
    /// The deadline, never after the certificate's notAfter.
    pub expires_at: OffsetDateTime,
}

/// Records a SAD in ONE statement that succeeds only while the credential is active, its
/// owner's and its certificate valid: a SAD is never issued for a credential that is not
/// active at the moment it is issued. `None` when it is not.
pub async fn insert(db: &Db, new: &NewSadRecord<'_>) -> Result<Option<Recorded>, DbError> {
    let authorised = i32::try_from(new.authorised).unwrap_or(i32::MAX);
    let client = db.get().await?;
    let row = client
        .query_opt(
            "INSERT INTO sads (sad_id, user_id, credential_id, authorised, generation, expires_at) \
             SELECT $1, c.user_id, c.credential_id, $4, c.generation, LEAST($5, c.valid_to) \
             FROM credentials c \
             WHERE c.credential_id = $3 AND c.user_id = $2 AND c.status = 'active' \
               AND c.valid_to > now() \
             RETURNING generation, expires_at",
            &[
                &new.sad_id,
                &new.user_id,
                &new.credential_id,
                &authorised,
                &new.deadline,
            ],
        )
        .await?;
    row.map(|r| {
        Ok(Recorded {
            generation: r.try_get("generation")?,
            expires_at: r.try_get("expires_at")?,
        })
    })
    .transpose()
}

/// Deletes the records of SADs whose deadline passed before `before`; returns how many.
pub async fn purge_expired(db: &Db, before: OffsetDateTime) -> Result<u64, DbError> {
    let client = db.get().await?;
    Ok(client
        .execute("DELETE FROM sads WHERE expires_at < $1", &[&before])
        .await?)
}
