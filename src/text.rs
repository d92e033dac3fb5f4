//! Caller text, checked once at the wire layer: every string a request carries (JSON fields,
//! path parameters, the HTTP Basic user id and password) is refused with 400
//! `invalid_request` when it holds a control character (NUL above all: PostgreSQL cannot store
//! it in a `text` column and would answer with an error) or is longer than its field's bound.
//!
//! Invariant: no text reaches the domain, Redis, PostgreSQL or the HSM without [`check`].
//! The wire types use [`text`]/[`opt_text`] through `#[serde(deserialize_with)]`, so a field
//! cannot be added without its bound being chosen; the bounds are far above any legitimate
//! value and below anything that costs memory or log space. Domain rules (a user id's
//! alphabet, a reason's 500 characters) stay in the domain.

use serde::{Deserialize, Deserializer};

use crate::error::ApiError;

/// Identifiers: credential ids, user ids, OIDs, algorithm and mode names.
pub const ID: usize = 128;
/// Secrets typed by a person: passwords, PINs, PUKs, OTPs, coupons.
pub const SECRET: usize = 1024;
/// Tokens and SADs the gateway issued.
pub const TOKEN: usize = 4096;
/// Free text: an operator's reason, a person's name, an e-mail address, a phone number.
pub const PROSE: usize = 2048;

/// Why a text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    #[error("{len} bytes, at most {max}")]
    TooLong { len: usize, max: usize },
    #[error("control characters are not allowed")]
    Control,
}

/// Checks `value` against `max` bytes and refuses control characters (Unicode `Cc`: U+0000
/// to U+001F and U+007F to U+009F, NUL, CR, LF and TAB included).
pub fn check(value: &str, max: usize) -> Result<(), TextError> {
    if value.len() > max {
        return Err(TextError::TooLong {
            len: value.len(),
            max,
        });
    }
    if value.chars().any(char::is_control) {
        return Err(TextError::Control);
    }
    Ok(())
}

/// [`check`] for a parameter named `field` outside a JSON body (path, header): the CSC error.
pub fn param(field: &str, value: &str, max: usize) -> Result<(), ApiError> {
    check(value, max)
        .map_err(|e| ApiError::invalid_request(format!("Invalid parameter {field}: {e}")))
}

/// A checked path parameter `field` (at most [`ID`] bytes).
pub fn path_param(field: &str, value: String) -> Result<String, ApiError> {
    param(field, &value, ID)?;
    Ok(value)
}

/// serde `deserialize_with` for a `String` field of at most `MAX` bytes.
pub fn text<'de, const MAX: usize, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let value = String::deserialize(d)?;
    check(&value, MAX).map_err(serde::de::Error::custom)?;
    Ok(value)
}

/// serde `deserialize_with` for an optional `String` field (with `#[serde(default)]`): absent
/// is `None`; present, it must be a string of at most `MAX` bytes (`null` is a wrong type, as
/// the OpenAPI document and the CSC specification type these fields as strings).
pub fn opt_text<'de, const MAX: usize, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<String>, D::Error> {
    text::<MAX, D>(d).map(Some)
}

/// serde `deserialize_with` for an optional field of another type (with `#[serde(default)]`):
/// absent is `None`, `null` is refused like any other value of the wrong type.
pub fn present<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Sample {
        #[serde(deserialize_with = "text::<8, _>")]
        name: String,
        #[serde(default, deserialize_with = "opt_text::<8, _>")]
        note: Option<String>,
        #[serde(default, deserialize_with = "present")]
        count: Option<u32>,
    }

    #[test]
    fn control_characters_and_lengths_are_refused() {
        assert_eq!(check("Zoë Ö 漢", 64), Ok(()));
        assert_eq!(check("", 0), Ok(()));
        for bad in ["a\0b", "\n", "tab\t", "\u{7f}", "\u{85}", "\u{1b}[31m"] {
            assert_eq!(check(bad, 64), Err(TextError::Control), "{bad:?}");
        }
        assert_eq!(
            check("abcdefghi", 8),
            Err(TextError::TooLong { len: 9, max: 8 })
        );
        // Bytes, not characters: four 2-byte characters fill 8 bytes.
        assert!(check("éééé", 8).is_ok());
        assert!(check("ééééé", 8).is_err());
    }

    #[test]
    fn serde_fields_are_checked_when_decoded() {
        let ok: Sample = serde_json::from_str(r#"{"name":"ann"}"#).unwrap();
        assert_eq!((ok.name.as_str(), ok.note, ok.count), ("ann", None, None));
        let ok: Sample = serde_json::from_str(r#"{"name":"ann","note":"n","count":3}"#).unwrap();
        assert_eq!((ok.note.as_deref(), ok.count), (Some("n"), Some(3)));
        for bad in [
            r#"{"name":"ann","note":null}"#,
            r#"{"name":"ann","count":null}"#,
            r#"{"name":null}"#,
            r#"{"name":"a\u0000"}"#,
            r#"{"name":"123456789"}"#,
            r#"{"name":"ann","note":"x\u0000"}"#,
            r#"{"name":"ann","note":"123456789"}"#,
        ] {
            let err = serde_json::from_str::<Sample>(bad).unwrap_err();
            assert!(err.is_data(), "{bad}: {err}");
        }
    }

    #[test]
    fn parameters_give_the_csc_error() {
        let err = param("user_id", "a\0", ID).unwrap_err();
        assert_eq!(err.status, actix_web::http::StatusCode::BAD_REQUEST);
        assert_eq!(err.error, "invalid_request");
        assert!(err.description.contains("user_id"), "{}", err.description);
    }
}
