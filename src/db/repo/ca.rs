//! The `ca_certificates` table: the gateway's root and issuing certificates.

use crate::db::{Db, DbError};

/// The stored certificate of CA `name` ("root" or "issuing").
pub async fn find(db: &Db, name: &str) -> Result<Option<Vec<u8>>, DbError> {
    let client = db.get().await?;
    let row = client
        .query_opt(
            "SELECT cert_der FROM ca_certificates WHERE name = $1",
            &[&name],
        )
        .await?;
    Ok(row.map(|r| r.try_get("cert_der")).transpose()?)
}

pub async fn insert(db: &Db, name: &str, key_label: &str, der: &[u8]) -> Result<(), DbError> {
    let client = db.get().await?;
    client
        .execute(
            "INSERT INTO ca_certificates (name, key_label, cert_der) VALUES ($1, $2, $3)",
            &[&name, &key_label, &der],
        )
        .await?;
    Ok(())
}
