//! The `notices` table.

use time::{Date, OffsetDateTime};
use uuid::Uuid;

use crate::db::{Db, DbError};

/// A credential that may need an expiry notice.
pub struct Expiring {
    pub credential_id: Uuid,
    pub user_id: String,
    pub phone: String,
    pub email: String,
    pub serial_number: String,
    pub valid_to: OffsetDateTime,
}

/// A notice as stored.
pub struct Notice {
    pub credential_id: Uuid,
    pub due_date: Date,
    pub channel: String,
    pub text: String,
    pub sent_at: OffsetDateTime,
}

/// Credentials not revoked, not renewed, expiring between `from` and `to`.
pub async fn expiring(
    db: &Db,
    from: OffsetDateTime,
    to: OffsetDateTime,
) -> Result<Vec<Expiring>, DbError> {
    let client = db.get().await?;
    let rows = client
        .query(
            "SELECT c.credential_id, c.user_id, u.phone, u.email, c.serial_number, c.valid_to \
             FROM credentials c JOIN users u USING (user_id) \
             WHERE c.status NOT IN ('revoked', 'blocked') AND c.renewed_at IS NULL \
               AND c.valid_to > $1 AND c.valid_to <= $2",
            &[&from, &to],
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok(Expiring {
                credential_id: r.try_get(0)?,
                user_id: r.try_get(1)?,
                phone: r.try_get(2)?,
                email: r.try_get(3)?,
                serial_number: r.try_get(4)?,
                valid_to: r.try_get(5)?,
            })
        })
        .collect()
}

/// Claims the notice (credential, due date): true if this caller inserted it and must send it.
/// Pass the transaction that also queues the notice's e-mail.
pub async fn claim(
    client: &impl deadpool_postgres::GenericClient,
    e: &Expiring,
    due: Date,
    channel: &str,
    text: &str,
) -> Result<bool, DbError> {
    let inserted = client
        .execute(
            "INSERT INTO notices (credential_id, due_date, user_id, channel, text) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
            &[&e.credential_id, &due, &e.user_id, &channel, &text],
        )
        .await?;
    Ok(inserted == 1)
}

/// The notices sent to `user_id`, oldest first.
pub async fn for_user(db: &Db, user_id: &str) -> Result<Vec<Notice>, DbError> {
    let client = db.get().await?;
    let rows = client
        .query(
            "SELECT credential_id, due_date, channel, text, sent_at FROM notices \
             WHERE user_id = $1 ORDER BY due_date, credential_id",
            &[&user_id],
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok(Notice {
                credential_id: r.try_get(0)?,
                due_date: r.try_get(1)?,
                channel: r.try_get(2)?,
                text: r.try_get(3)?,
                sent_at: r.try_get(4)?,
            })
        })
        .collect()
}
