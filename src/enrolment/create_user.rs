//! Creating a subscriber: identity and contact data only. The subscriber is e-mailed a setup
//! link (in the transaction of the insert) on which they choose the password and the envelope
//! passphrase; an authenticator-app user enrols the app on first sign-in. The operator sees no
//! secret of the subscriber's: no password, no TOTP secret, no emergency code.

use serde_json::json;
use time::OffsetDateTime;

use super::{setup_link, EnrolError};
use crate::db::{repo, DbError};
use crate::mail::Locale;
use crate::model::{Operator, OtpMethod, User};
use crate::services::Services;

/// A subscriber as the operator enters it.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub user_id: String,
    pub given_name: String,
    pub surname: String,
    pub fiscal_code: String,
    pub email: String,
    pub phone: String,
    pub otp_method: OtpMethod,
    /// The language of the subscriber's e-mails and envelopes.
    pub locale: Locale,
}

/// The new subscriber, and until when the e-mailed setup link works.
#[derive(Debug, Clone)]
pub struct CreatedUser {
    pub user_id: String,
    pub otp_method: OtpMethod,
    pub locale: Locale,
    pub setup_link_expires_at: OffsetDateTime,
}

fn invalid(field: &'static str, reason: &'static str) -> EnrolError {
    EnrolError::Invalid { field, reason }
}

/// `[A-Za-z0-9._@-]{3,64}`: safe in URLs, logs, Redis keys and otpauth URIs.
pub fn valid_user_id(id: &str) -> bool {
    (3..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'@' | b'-'))
}

fn validate(u: &NewUser) -> Result<(), EnrolError> {
    if !valid_user_id(&u.user_id) {
        return Err(invalid(
            "user_id",
            "3 to 64 characters among A-Z a-z 0-9 . _ @ -",
        ));
    }
    for (field, value) in [("given_name", &u.given_name), ("surname", &u.surname)] {
        let len = value.chars().count();
        if len == 0 || len > 64 || value.chars().any(char::is_control) || value.trim() != value {
            return Err(invalid(
                field,
                "1 to 64 printable characters, no outer spaces",
            ));
        }
    }
    if u.fiscal_code.len() != 16
        || !u
            .fiscal_code
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    {
        return Err(invalid("fiscal_code", "16 upper-case letters and digits"));
    }
    let email_ok = u.email.len() <= 254
        && !u.email.chars().any(|c| c.is_whitespace() || c.is_control())
        && matches!(u.email.split_once('@'), Some((local, domain))
            if !local.is_empty() && domain.contains('.') && !domain.contains('@'));
    if !email_ok {
        return Err(invalid("email", "a valid e-mail address"));
    }
    let digits = u.phone.strip_prefix('+').unwrap_or_default();
    if !(8..=15).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid("phone", "E.164: + followed by 8 to 15 digits"));
    }
    Ok(())
}

/// Creates the subscriber after validating every field and e-mails the setup link, as the
/// operator of this machine's command line.
pub async fn create_user(services: &Services, new: NewUser) -> Result<CreatedUser, EnrolError> {
    let operator = Operator::local(&services.config.security.admin_name);
    create_user_by(services, new, &operator).await
}

/// [`create_user`] by `operator`: audited with the operator's name and address, refusals too.
pub async fn create_user_by(
    services: &Services,
    new: NewUser,
    operator: &Operator,
) -> Result<CreatedUser, EnrolError> {
    let user_id = new.user_id.clone();
    let result = create(services, new, operator).await;
    if let Err(err) = &result {
        services
            .audit
            .record(
                &operator.name,
                "user.create",
                None,
                "refused",
                operator.audit_detail(json!({ "user_id": user_id, "error": err.to_string() })),
            )
            .await?;
    }
    result
}

async fn create(
    services: &Services,
    new: NewUser,
    operator: &Operator,
) -> Result<CreatedUser, EnrolError> {
    validate(&new)?;
    let user = User {
        user_id: new.user_id,
        password_hash: None,
        password_by_subscriber: false,
        given_name: new.given_name,
        surname: new.surname,
        fiscal_code: new.fiscal_code,
        email: new.email,
        phone: new.phone,
        otp_method: new.otp_method,
        totp_secret: None,
    };
    let mut client = services.db.get().await.map_err(DbError::from)?;
    let tx = client.transaction().await.map_err(DbError::from)?;
    match repo::users::insert(&tx, &user).await {
        Ok(()) => {}
        Err(DbError::UniqueViolation { .. }) => return Err(EnrolError::UserExists),
        Err(e) => return Err(e.into()),
    }
    tx.execute(
        "UPDATE users SET locale = $2 WHERE user_id = $1",
        &[&user.user_id, &new.locale.as_str()],
    )
    .await
    .map_err(DbError::from)?;
    let setup_link_expires_at = setup_link::issue(services, &tx, &user.user_id).await?;
    tx.commit().await.map_err(DbError::from)?;
    services.mail.wake();
    services
        .audit
        .record(
            &operator.name,
            "user.create",
            None,
            "ok",
            operator.audit_detail(json!({
                "user_id": user.user_id,
                "otp_method": user.otp_method.as_str(),
                "locale": new.locale.as_str(),
            })),
        )
        .await?;
    Ok(CreatedUser {
        user_id: user.user_id,
        otp_method: user.otp_method,
        locale: new.locale,
        setup_link_expires_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> NewUser {
        NewUser {
            user_id: "mario.rossi".into(),
            given_name: "Mario".into(),
            surname: "Rossi".into(),
            fiscal_code: "RSSMRA80A01H501U".into(),
            email: "mario@example.org".into(),
            phone: "+393331234567".into(),
            otp_method: OtpMethod::Sms,
            locale: Locale::It,
        }
    }

    #[test]
    fn a_good_user_validates() {
        assert!(validate(&user()).is_ok());
    }

    #[test]
    fn each_field_is_checked() {
        type Breaker = fn(&mut NewUser);
        let cases: [(&str, Breaker); 6] = [
            ("user_id", |u| u.user_id = "a b".into()),
            ("given_name", |u| u.given_name = String::new()),
            ("surname", |u| u.surname = " Rossi".into()),
            ("fiscal_code", |u| u.fiscal_code = "rssmra80a01h501u".into()),
            ("email", |u| u.email = "mario@localhost".into()),
            ("phone", |u| u.phone = "3331234567".into()),
        ];
        for (field, break_it) in cases {
            let mut u = user();
            break_it(&mut u);
            assert!(
                matches!(validate(&u), Err(EnrolError::Invalid { field: f, .. }) if f == field),
                "{field}"
            );
        }
    }
}
