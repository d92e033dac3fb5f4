//! The `oauth2_clients` table: the clients of the authorization server.

use time::OffsetDateTime;
use tokio_postgres::Row;

use crate::db::{Db, DbError};

/// A registered client as stored.
#[derive(Debug, Clone)]
pub struct ClientRow {
    pub client_id: String,
    /// SHA-256 of the secret; `None` for a public client.
    pub secret_sha256: Option<Vec<u8>>,
    pub redirect_uris: Vec<String>,
    pub scopes: Vec<String>,
    pub created_at: OffsetDateTime,
}

const COLUMNS: &str = "client_id, secret_sha256, redirect_uris, scopes, created_at";

fn from_row(row: &Row) -> Result<ClientRow, DbError> {
    Ok(ClientRow {
        client_id: row.try_get("client_id")?,
        secret_sha256: row.try_get("secret_sha256")?,
        redirect_uris: row.try_get("redirect_uris")?,
        scopes: row.try_get("scopes")?,
        created_at: row.try_get("created_at")?,
    })
}

/// Registers a client; `UniqueViolation` if the client id is taken.
pub async fn insert(
    db: &Db,
    client_id: &str,
    secret_sha256: Option<&[u8]>,
    redirect_uris: &[String],
    scopes: &[String],
) -> Result<ClientRow, DbError> {
    let client = db.get().await?;
    let row = client
        .query_one(
            &format!(
                "INSERT INTO oauth2_clients (client_id, secret_sha256, redirect_uris, scopes) \
                 VALUES ($1, $2, $3, $4) RETURNING {COLUMNS}"
            ),
            &[&client_id, &secret_sha256, &redirect_uris, &scopes],
        )
        .await?;
    from_row(&row)
}

/// The client `client_id`, if registered.
pub async fn find(db: &Db, client_id: &str) -> Result<Option<ClientRow>, DbError> {
    let client = db.get().await?;
    client
        .query_opt(
            &format!("SELECT {COLUMNS} FROM oauth2_clients WHERE client_id = $1"),
            &[&client_id],
        )
        .await?
        .as_ref()
        .map(from_row)
        .transpose()
}

/// Every registered client, by id.
pub async fn list(db: &Db) -> Result<Vec<ClientRow>, DbError> {
    let client = db.get().await?;
    client
        .query(
            &format!("SELECT {COLUMNS} FROM oauth2_clients ORDER BY client_id"),
            &[],
        )
        .await?
        .iter()
        .map(from_row)
        .collect()
}

/// Removes a client; false if there was none.
pub async fn delete(db: &Db, client_id: &str) -> Result<bool, DbError> {
    let client = db.get().await?;
    Ok(client
        .execute(
            "DELETE FROM oauth2_clients WHERE client_id = $1",
            &[&client_id],
        )
        .await?
        > 0)
}
