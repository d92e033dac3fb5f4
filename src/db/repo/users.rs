//! The `users` table.

use deadpool_postgres::GenericClient;
use tokio_postgres::Row;

use crate::db::{Db, DbError};
use crate::model::User;

const COLUMNS: &str = "user_id, password_hash, given_name, surname, fiscal_code, email, phone, \
                       otp_method, totp_secret, password_by_subscriber";

fn from_row(row: &Row) -> Result<User, DbError> {
    let otp_method: String = row.try_get("otp_method")?;
    Ok(User {
        user_id: row.try_get("user_id")?,
        password_hash: row.try_get("password_hash")?,
        password_by_subscriber: row.try_get("password_by_subscriber")?,
        given_name: row.try_get("given_name")?,
        surname: row.try_get("surname")?,
        fiscal_code: row.try_get("fiscal_code")?,
        email: row.try_get("email")?,
        phone: row.try_get("phone")?,
        otp_method: otp_method
            .parse()
            .map_err(|()| DbError::Corrupt("users.otp_method"))?,
        totp_secret: row.try_get("totp_secret")?,
    })
}

/// Inserts a new subscriber (in the caller's transaction); `UniqueViolation` if the user id is
/// taken.
pub async fn insert(client: &impl GenericClient, user: &User) -> Result<(), DbError> {
    client
        .execute(
            &format!(
                "INSERT INTO users ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
            ),
            &[
                &user.user_id,
                &user.password_hash,
                &user.given_name,
                &user.surname,
                &user.fiscal_code,
                &user.email,
                &user.phone,
                &user.otp_method.as_str(),
                &user.totp_secret,
                &user.password_by_subscriber,
            ],
        )
        .await?;
    Ok(())
}

/// The subscriber `user_id`, if any.
pub async fn find(db: &Db, user_id: &str) -> Result<Option<User>, DbError> {
    let client = db.get().await?;
    let row = client
        .query_opt(
            &format!("SELECT {COLUMNS} FROM users WHERE user_id = $1"),
            &[&user_id],
        )
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// Replaces the password hash of `user_id` by one the subscriber chose.
pub async fn set_password(db: &Db, user_id: &str, password_hash: &str) -> Result<(), DbError> {
    let client = db.get().await?;
    client
        .execute(
            "UPDATE users SET password_hash = $2, password_by_subscriber = true WHERE user_id = $1",
            &[&user_id, &password_hash],
        )
        .await?;
    Ok(())
}

/// Makes `method` the user's OTP method (with its phone or sealed TOTP secret).
pub async fn set_otp(
    db: &Db,
    user_id: &str,
    method: crate::model::OtpMethod,
    phone: Option<&str>,
    totp_secret: Option<&[u8]>,
) -> Result<(), DbError> {
    let client = db.get().await?;
    client
        .execute(
            "UPDATE users SET otp_method = $2, phone = COALESCE($3, phone), totp_secret = $4 \
             WHERE user_id = $1",
            &[&user_id, &method.as_str(), &phone, &totp_secret],
        )
        .await?;
    Ok(())
}

/// `(user_id, totp_secret)` of every TOTP seed not sealed in the HSM's format (`S2…`).
pub async fn totp_secrets_to_reseal(db: &Db) -> Result<Vec<(String, Vec<u8>)>, DbError> {
    let client = db.get().await?;
    let rows = client
        .query(
            "SELECT user_id, totp_secret FROM users \
             WHERE totp_secret IS NOT NULL AND substring(totp_secret FROM 1 FOR 2) <> '\\x5332'::bytea",
            &[],
        )
        .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("user_id")?, r.try_get("totp_secret")?)))
        .collect()
}

/// Replaces `user_id`'s sealed TOTP seed `old` by `new` (the same seed, sealed again); false
/// if it changed meanwhile (a device change won).
pub async fn reseal_totp_secret(
    db: &Db,
    user_id: &str,
    old: &[u8],
    new: &[u8],
) -> Result<bool, DbError> {
    let client = db.get().await?;
    let updated = client
        .execute(
            "UPDATE users SET totp_secret = $3 WHERE user_id = $1 AND totp_secret = $2",
            &[&user_id, &old, &new],
        )
        .await?;
    Ok(updated == 1)
}

/// Stores the first TOTP secret of a TOTP user who has none; false if one is there already
/// (another confirmation won).
pub async fn enrol_first_totp(db: &Db, user_id: &str, totp_secret: &[u8]) -> Result<bool, DbError> {
    let client = db.get().await?;
    let updated = client
        .execute(
            "UPDATE users SET totp_secret = $2 \
             WHERE user_id = $1 AND otp_method = 'totp' AND totp_secret IS NULL",
            &[&user_id, &totp_secret],
        )
        .await?;
    Ok(updated == 1)
}
