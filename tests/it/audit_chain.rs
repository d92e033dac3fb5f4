//! The audit log proves itself untouched: every row is a link of a hash chain keyed in the
//! HSM, `sigillo audit verify` finds the first row a database administrator edited, removed
//! or added, and the gateway's own database role cannot change or remove a row at all.

use std::process::Command;

use reqwest::StatusCode;
use serde_json::{json, Value};
use sigillo::audit::verify::{self, BreakReason, Report};
use sigillo::db::repo::audit::SadSpend;
use sigillo::db::{self, Db};
use tokio_postgres::error::SqlState;
use uuid::Uuid;

use crate::support::TestApp;

/// A connection as the schema's owner: what a database administrator has.
async fn owner(app: &TestApp) -> Db {
    db::connect_owner(&app.config.database).await.unwrap()
}

async fn check(app: &TestApp) -> Report {
    verify::verify(&app.services().db, &app.services().audit_chain)
        .await
        .unwrap()
}

/// Runs the `sigillo audit` command on `app`'s database and HSM: (exit success, stdout).
fn cli(app: &TestApp, args: &[&str]) -> (bool, String) {
    let c = &app.config;
    let out = Command::new(env!("CARGO_BIN_EXE_sigillo"))
        .arg("audit")
        .args(args)
        .env("SIGILLO__DATABASE__URL", c.database.url.expose())
        .env("SIGILLO__DATABASE__SCHEMA", &c.database.schema)
        .env("SIGILLO__HSM__MODULE", &c.hsm.module)
        .env("SIGILLO__HSM__TOKEN_LABEL", &c.hsm.token_label)
        .env("SIGILLO__HSM__PIN", c.hsm.pin.expose())
        .env("SIGILLO__HSM__LABEL_PREFIX", &c.hsm.label_prefix)
        .env(
            "SIGILLO__SECURITY__ADMIN_TOKEN",
            c.security.admin_token.expose(),
        )
        .env(
            "SIGILLO__SECURITY__TOKEN_SECRET",
            c.security.token_secret.expose(),
        )
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// `n` audit rows (user creations) on `app`; their ids in order.
async fn rows(app: &TestApp, n: usize) -> Vec<i64> {
    for _ in 0..n {
        app.create_user("sms").await;
    }
    let db = owner(app).await;
    let client = db.get().await.unwrap();
    client
        .query("SELECT id FROM audit_log ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

fn broken_at(report: &Report) -> (Option<i64>, BreakReason) {
    let broken = report.broken.as_ref().expect("verify finds the break");
    (broken.row_id, broken.reason.clone())
}

#[tokio::test]
async fn verify_finds_the_row_an_administrator_edited_removed_or_added() {
    let app = TestApp::spawn().await;
    let ids = rows(&app, 5).await;
    assert!(ids.len() >= 5, "{ids:?}");
    let report = check(&app).await;
    assert!(report.broken.is_none(), "{report:?}");
    assert_eq!(report.rows, ids.len() as u64);
    let (ok, out) = cli(&app, &["verify"]);
    assert!(ok, "verify of an untouched log fails: {out}");

    let db = owner(&app).await;
    let dba = db.get().await.unwrap();
    let third = ids[2];

    // Edited: the outcome of one row.
    let outcome: String = dba
        .query_one("SELECT outcome FROM audit_log WHERE id = $1", &[&third])
        .await
        .unwrap()
        .get(0);
    dba.execute(
        "UPDATE audit_log SET outcome = 'refused' WHERE id = $1",
        &[&third],
    )
    .await
    .unwrap();
    assert_eq!(
        broken_at(&check(&app).await),
        (Some(third), BreakReason::Link)
    );
    let (ok, out) = cli(&app, &["verify"]);
    assert!(!ok, "verify exits with success on an edited log: {out}");
    let printed: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(printed["broken"]["row_id"], json!(third), "{printed}");
    // Only the exact content checks: put it back and the chain holds again.
    dba.execute(
        "UPDATE audit_log SET outcome = $2 WHERE id = $1",
        &[&third, &outcome],
    )
    .await
    .unwrap();
    assert!(check(&app).await.broken.is_none());
    // Edited: the detail (jsonb) and the time.
    dba.execute(
        "UPDATE audit_log SET detail = detail || '{\"x\": 1}' WHERE id = $1",
        &[&ids[1]],
    )
    .await
    .unwrap();
    assert_eq!(
        broken_at(&check(&app).await),
        (Some(ids[1]), BreakReason::Link)
    );
    dba.execute(
        "UPDATE audit_log SET detail = detail - 'x' WHERE id = $1",
        &[&ids[1]],
    )
    .await
    .unwrap();
    assert!(check(&app).await.broken.is_none());
    dba.execute(
        "UPDATE audit_log SET at = at - interval '1 hour' WHERE id = $1",
        &[&ids[3]],
    )
    .await
    .unwrap();
    assert_eq!(
        broken_at(&check(&app).await),
        (Some(ids[3]), BreakReason::Link)
    );
    dba.execute(
        "UPDATE audit_log SET at = at + interval '1 hour' WHERE id = $1",
        &[&ids[3]],
    )
    .await
    .unwrap();
    assert!(check(&app).await.broken.is_none());

    // Removed: a row in the middle; the break is at the row after it.
    dba.batch_execute(&format!(
        "CREATE TEMP TABLE kept AS SELECT * FROM audit_log WHERE id = {third}; \
         DELETE FROM audit_log WHERE id = {third}"
    ))
    .await
    .unwrap();
    let (row, reason) = broken_at(&check(&app).await);
    assert_eq!(row, Some(ids[3]));
    assert!(matches!(reason, BreakReason::Sequence { .. }), "{reason:?}");
    dba.batch_execute("INSERT INTO audit_log SELECT * FROM kept")
        .await
        .unwrap();
    assert!(check(&app).await.broken.is_none());

    // Removed: the last row; the break is at the row before it.
    let last = *ids.last().unwrap();
    let before_last = ids[ids.len() - 2];
    dba.batch_execute(&format!(
        "TRUNCATE kept; INSERT INTO kept SELECT * FROM audit_log WHERE id = {last}; \
         DELETE FROM audit_log WHERE id = {last}"
    ))
    .await
    .unwrap();
    let (row, reason) = broken_at(&check(&app).await);
    assert_eq!(row, Some(before_last));
    assert!(
        matches!(reason, BreakReason::Truncated { .. }),
        "{reason:?}"
    );
    dba.batch_execute("INSERT INTO audit_log SELECT * FROM kept")
        .await
        .unwrap();
    assert!(check(&app).await.broken.is_none());

    // Added: a copy of a row (its chain values too) and a row with made-up chain values.
    let copy: i64 = dba
        .query_one(
            "INSERT INTO audit_log (at, actor, action, credential_id, outcome, detail, \
                                    chain_id, chain_seq, chain_hash) \
             SELECT at, actor, action, credential_id, outcome, detail, chain_id, chain_seq, \
                    chain_hash FROM audit_log WHERE id = $1 RETURNING id",
            &[&ids[1]],
        )
        .await
        .unwrap()
        .get(0);
    let (row, reason) = broken_at(&check(&app).await);
    assert_eq!(row, Some(copy));
    assert!(matches!(reason, BreakReason::Sequence { .. }), "{reason:?}");
    dba.execute("DELETE FROM audit_log WHERE id = $1", &[&copy])
        .await
        .unwrap();
    let forged: i64 = dba
        .query_one(
            "INSERT INTO audit_log (actor, action, outcome, chain_id, chain_seq, chain_hash) \
             SELECT 'alice', 'signatures.signHash', 'ok', chain_id, chain_seq + 1, \
                    sha256('forged') FROM audit_log WHERE id = $1 RETURNING id",
            &[&last],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        broken_at(&check(&app).await),
        (Some(forged), BreakReason::Link)
    );
    dba.execute("DELETE FROM audit_log WHERE id = $1", &[&forged])
        .await
        .unwrap();
    // Added without chain values.
    let bare: i64 = dba
        .query_one(
            "INSERT INTO audit_log (actor, action, outcome) VALUES ('alice', 'x', 'ok') RETURNING id",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        broken_at(&check(&app).await),
        (Some(bare), BreakReason::NotChained)
    );
    dba.execute("DELETE FROM audit_log WHERE id = $1", &[&bare])
        .await
        .unwrap();
    assert!(check(&app).await.broken.is_none());

    // The export carries every row with its chain values.
    let (ok, out) = cli(&app, &["export", "--from", "2000-01-01T00:00:00Z"]);
    assert!(ok, "{out}");
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), ids.len());
    assert_eq!(lines[2]["id"], json!(third));
    assert_eq!(
        lines[2]["chain_seq"].as_i64().unwrap() + 1,
        lines[3]["chain_seq"].as_i64().unwrap()
    );
    assert_eq!(lines[2]["chain_hash"].as_str().unwrap().len(), 64);
    let (ok, out) = cli(&app, &["export", "--to", "2000-01-01T00:00:00Z"]);
    assert!(ok && out.is_empty(), "{out}");
}

#[tokio::test]
async fn the_gateways_role_cannot_change_or_remove_audit_rows() {
    let app = TestApp::spawn().await;
    rows(&app, 1).await;
    let client = app.services().db.get().await.unwrap();
    for sql in [
        "UPDATE audit_log SET outcome = 'ok'",
        "DELETE FROM audit_log",
        "TRUNCATE audit_log",
        "DELETE FROM audit_chains",
    ] {
        let err = client.execute(sql, &[]).await.unwrap_err();
        assert_eq!(
            err.as_db_error().map(|e| e.code()),
            Some(&SqlState::INSUFFICIENT_PRIVILEGE),
            "{sql}: {err:?}"
        );
    }
    // It still does everything else it needs.
    let (status, body) = app
        .admin_post("/admin/v1/users", TestApp::user_json("u-after", "sms"))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

#[tokio::test]
async fn refused_spends_and_two_nodes_keep_every_chain_whole() {
    let app = TestApp::spawn().await;
    let second = TestApp::spawn_node(app.config.clone()).await;
    // Many records at once on both nodes (group-committed in batches), half of them spends
    // of SADs that have no durable record: those rows are written as refused, and chained
    // as written.
    let mut calls = Vec::new();
    for i in 0..80 {
        let node = if i % 2 == 0 { &app } else { &second };
        calls.push(async move {
            let audit = &node.services().audit;
            if i % 4 < 2 {
                let spend = SadSpend {
                    sad_id: Uuid::new_v4(),
                    count: 1,
                };
                let credential = Uuid::new_v4();
                audit
                    .record_spend(
                        "alice",
                        "signatures.signHash",
                        credential,
                        json!({"i": i}),
                        spend,
                    )
                    .await
                    .is_ok()
            } else {
                audit
                    .record(
                        "alice",
                        "test.record",
                        None,
                        "ok",
                        json!({"i": i, "z": [1.5, "é"]}),
                    )
                    .await
                    .is_ok()
            }
        });
    }
    let results = futures_util::future::join_all(calls).await;
    let granted = results.iter().filter(|ok| **ok).count();
    assert_eq!(granted, 40, "spends without a durable record were granted");
    let report = check(&app).await;
    assert!(report.broken.is_none(), "{report:?}");
    assert_eq!(report.chains, 2, "{report:?}");
    assert_eq!(report.rows, 80);
    let db = owner(&app).await;
    let refused: i64 = db
        .get()
        .await
        .unwrap()
        .query_one(
            "SELECT count(*) FROM audit_log WHERE outcome = 'refused_sad_spent'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(refused, 40);
}
