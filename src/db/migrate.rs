//! Schema migrations: numbered SQL files built into the binary, applied in order, each in its
//! transaction, under an advisory lock so that several nodes starting at once apply each
//! migration exactly once.

use super::{Db, DbError};

/// (version, name, SQL), in order.
const MIGRATIONS: &[(i32, &str, &str)] = &[
    (1, "init", include_str!("../../migrations/0001_init.sql")),
    (
        2,
        "lifecycle",
        include_str!("../../migrations/0002_lifecycle.sql"),
    ),
    (
        3,
        "renewal",
        include_str!("../../migrations/0003_renewal.sql"),
    ),
    (
        4,
        "notices",
        include_str!("../../migrations/0004_notices.sql"),
    ),
    (5, "sads", include_str!("../../migrations/0005_sads.sql")),
    (
        6,
        "audit_chain",
        include_str!("../../migrations/0006_audit_chain.sql"),
    ),
    (
        7,
        "pki_status",
        include_str!("../../migrations/0007_pki_status.sql"),
    ),
    (8, "tsa", include_str!("../../migrations/0008_tsa.sql")),
    (
        9,
        "oauth2_clients",
        include_str!("../../migrations/0009_oauth2_clients.sql"),
    ),
    (
        10,
        "mail_outbox",
        include_str!("../../migrations/0010_mail_outbox.sql"),
    ),
    (
        11,
        "emergency_code",
        include_str!("../../migrations/0011_emergency_code.sql"),
    ),
    (
        12,
        "enrolment",
        include_str!("../../migrations/0012_enrolment.sql"),
    ),
    (
        13,
        "signing_history",
        include_str!("../../migrations/0013_signing_history.sql"),
    ),
    (
        14,
        "suspended_by",
        include_str!("../../migrations/0014_suspended_by.sql"),
    ),
];

/// Applies the migrations not yet recorded, all in one transaction; returns how many ran.
pub async fn run(db: &Db) -> Result<usize, DbError> {
    let mut client = db.get().await?;
    let tx = client.transaction().await?;
    // Serialise migrators of this schema across nodes; released at commit.
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtext(current_schema() || ':migrate'))",
        &[],
    )
    .await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
    )
    .await?;
    let mut applied = 0;
    for (version, name, sql) in MIGRATIONS {
        let done = tx
            .query_opt(
                "SELECT 1 FROM schema_migrations WHERE version = $1",
                &[version],
            )
            .await?
            .is_some();
        if !done {
            tx.batch_execute(sql).await?;
            tx.execute(
                "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                &[version, name],
            )
            .await?;
            applied += 1;
            tracing::info!(version, name, "migration applied");
        }
    }
    tx.commit().await?;
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::MIGRATIONS;

    #[test]
    fn every_migration_file_is_listed_in_order() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".sql"))
            .collect();
        files.sort();
        assert_eq!(files.len(), MIGRATIONS.len(), "{files:?}");
        for (file, (version, name, _)) in files.iter().zip(MIGRATIONS) {
            assert_eq!(file, &format!("{version:04}_{name}.sql"));
        }
    }
}
