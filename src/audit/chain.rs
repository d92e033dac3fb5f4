//! The audit hash chain. Each row's `chain_hash` is an HMAC-SHA256, under [`ChainKey`], of the
//! row as written (chain, sequence number, time, actor, action, credential, outcome, detail)
//! and of the previous row's `chain_hash`; the first row of a chain follows the chain's own
//! start value. The key is derived once, at start-up, by an HMAC computed inside the HSM with
//! a non-extractable key of the gateway: nobody who can only write to the database can
//! compute a link, so an edited, removed or added row breaks the chain where it is.

use serde_json::Value;
use uuid::Uuid;

use crate::hsm::{Hsm, HsmError};
use crate::secrets::DerivedKey;

const CHAIN_KEY_NAME: &str = "audit-chain-hmac";
const DERIVATION: &[u8] = b"sigillo-audit-chain-key\0v1";

/// The key of the audit chain, held in memory only (its root stays in the HSM).
pub struct ChainKey(DerivedKey);

/// What one link covers: a row exactly as it is stored.
pub struct RowContent<'a> {
    pub chain_id: Uuid,
    pub seq: i64,
    /// `at`, in microseconds since the Unix epoch (PostgreSQL's precision).
    pub at_micros: i64,
    pub actor: &'a str,
    pub action: &'a str,
    pub credential_id: Option<Uuid>,
    pub outcome: &'a str,
    pub detail: &'a Value,
}

impl ChainKey {
    /// Creates the HSM key on first start (callers hold the bootstrap lock) and derives the
    /// chain key from it.
    pub async fn ensure(hsm: &Hsm) -> Result<ChainKey, HsmError> {
        DerivedKey::ensure(hsm, CHAIN_KEY_NAME, DERIVATION)
            .await
            .map(ChainKey)
    }

    /// Derives the chain key from the HSM key, which must exist (`sigillo audit verify`).
    pub async fn open(hsm: &Hsm) -> Result<ChainKey, HsmError> {
        DerivedKey::open(hsm, CHAIN_KEY_NAME, DERIVATION)
            .await
            .map(ChainKey)
    }

    /// A chain key over `key` (tests; `ensure` in the gateway).
    pub fn from_key(key: &[u8]) -> ChainKey {
        ChainKey(DerivedKey::from_key(key))
    }

    fn hmac(&self, parts: &[&[u8]]) -> [u8; 32] {
        self.0.mac(parts)
    }

    /// The value the first row of `chain_id` follows.
    pub fn start(&self, chain_id: Uuid) -> [u8; 32] {
        self.hmac(&[b"audit-chain-start", chain_id.as_bytes()])
    }

    /// The link of `row`, which follows a row whose link is `prev`.
    pub fn link(&self, prev: &[u8], row: &RowContent<'_>) -> [u8; 32] {
        let credential = row.credential_id.map(|c| *c.as_bytes());
        let detail = canonical_json(row.detail);
        self.hmac(&[
            b"audit-row",
            prev,
            row.chain_id.as_bytes(),
            &row.seq.to_be_bytes(),
            &row.at_micros.to_be_bytes(),
            row.actor.as_bytes(),
            row.action.as_bytes(),
            credential.as_ref().map_or(&[][..], |c| &c[..]),
            row.outcome.as_bytes(),
            detail.as_bytes(),
        ])
    }
}

/// `value` as JSON text with the keys of every object sorted: the same text for the detail
/// the gateway wrote and for the one PostgreSQL's `jsonb` gives back (which reorders keys).
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(item, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn row<'a>(detail: &'a Value, outcome: &'a str) -> RowContent<'a> {
        RowContent {
            chain_id: Uuid::nil(),
            seq: 1,
            at_micros: 1_700_000_000_000_000,
            actor: "alice",
            action: "signatures.signHash",
            credential_id: None,
            outcome,
            detail,
        }
    }

    #[test]
    fn canonical_json_sorts_keys_at_every_depth() {
        let value = json!({"b": 1, "a": {"d": [true, null], "c": "x\"y"}});
        assert_eq!(
            canonical_json(&value),
            r#"{"a":{"c":"x\"y","d":[true,null]},"b":1}"#
        );
    }

    #[test]
    fn a_link_covers_the_row_and_the_previous_link() {
        let key = ChainKey::from_key(b"k");
        let detail = json!({"n": 1});
        let prev = key.start(Uuid::nil());
        let base = key.link(&prev, &row(&detail, "ok"));
        assert_eq!(base, key.link(&prev, &row(&detail, "ok")));
        assert_ne!(base, key.link(&prev, &row(&detail, "refused")));
        assert_ne!(base, key.link(&[0; 32], &row(&detail, "ok")));
        assert_ne!(base, key.link(&prev, &row(&json!({"n": 2}), "ok")));
        assert_ne!(
            base,
            ChainKey::from_key(b"other").link(&prev, &row(&detail, "ok"))
        );
    }
}
