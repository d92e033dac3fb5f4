//! The `tsa_certificates` table: the certificate of each TSA key.

use crate::db::{Db, DbError};

/// The stored certificate of the TSA key `key_label`.
pub async fn find(db: &Db, key_label: &str) -> Result<Option<Vec<u8>>, DbError> {
    let client = db.get().await?;
    let row = client
        .query_opt(
            "SELECT cert_der FROM tsa_certificates WHERE key_label = $1",
            &[&key_label],
        )
        .await?;
    Ok(row.map(|r| r.try_get("cert_der")).transpose()?)
}

pub async fn insert(db: &Db, key_label: &str, der: &[u8]) -> Result<(), DbError> {
    let client = db.get().await?;
    client
        .execute(
            "INSERT INTO tsa_certificates (key_label, cert_der) VALUES ($1, $2)",
            &[&key_label, &der],
        )
        .await?;
    Ok(())
}
