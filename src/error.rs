//! The one mapping from domain errors to CSC errors: an HTTP status and
//! `{"error": "<code>", "error_description": "<text>"}`. Every refusal is a 4xx with a code a
//! client can act on; a 5xx body says nothing internal (the cause goes to the log, inside the
//! request's span, which carries the request id).

use std::fmt;

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::activation::emergency::EmergencyError;
use crate::activation::sad::SadError;
use crate::activation::ActivationError;
use crate::audit::AuditError;
use crate::auth::recovery::RecoveryError;
use crate::auth::AuthError;
use crate::ca::CaError;
use crate::credentials::CredentialError;
use crate::db::DbError;
use crate::devices::DeviceError;
use crate::enrolment::EnrolError;
use crate::hsm::{HsmError, MechanismError};
use crate::kv::KvError;
use crate::lifecycle::LifecycleError;
use crate::mail::MailError;
use crate::oauth2::OAuth2Error;
use crate::otp::OtpError;
use crate::pki::tsa::TsaError;
use crate::renewal::RenewalError;
use crate::signing::SigningError;

/// An error as the client sees it.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub error: &'static str,
    pub description: String,
    pub retry_after: Option<u64>,
}

#[derive(Serialize)]
struct Body<'a> {
    error: &'a str,
    error_description: &'a str,
}

impl ApiError {
    pub fn new(status: StatusCode, error: &'static str, description: impl Into<String>) -> Self {
        ApiError {
            status,
            error,
            description: description.into(),
            retry_after: None,
        }
    }

    /// 400 `invalid_request`: a missing, ill-typed or out-of-range parameter.
    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", description)
    }

    /// 401 `invalid_token`: missing, expired or forged bearer token.
    pub fn invalid_token(description: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "invalid_token", description)
    }

    /// 503 with `Retry-After`: come back shortly.
    fn unavailable(description: &str, retry_after: u64) -> Self {
        ApiError {
            retry_after: Some(retry_after),
            ..Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                description,
            )
        }
    }

    /// 500: logs the cause, tells the client nothing about it.
    fn internal(cause: &dyn fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "internal error; the request id in the logs identifies it",
        )
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.error,
            self.description
        )
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        if let Some(seconds) = self.retry_after {
            response.insert_header((header::RETRY_AFTER, seconds.to_string()));
        }
        if self.status == StatusCode::UNAUTHORIZED && self.error == "invalid_token" {
            response.insert_header((header::WWW_AUTHENTICATE, "Bearer error=\"invalid_token\""));
        }
        response.json(Body {
            error: self.error,
            error_description: &self.description,
        })
    }
}

impl From<HsmError> for ApiError {
    fn from(err: HsmError) -> Self {
        match err {
            HsmError::QueueFull => ApiError::unavailable("the HSM is busy; retry shortly", 1),
            HsmError::Unavailable { .. } | HsmError::SessionLost { .. } | HsmError::Stopped => {
                tracing::error!(error = %err, "HSM unavailable");
                ApiError::unavailable("the HSM is unavailable; retry later", 5)
            }
            other => ApiError::internal(&other),
        }
    }
}

impl From<DbError> for ApiError {
    fn from(err: DbError) -> Self {
        match err {
            DbError::Pool(_) => {
                tracing::error!(error = %err, "database unavailable");
                ApiError::unavailable("the database is unavailable; retry later", 5)
            }
            other => ApiError::internal(&other),
        }
    }
}

impl From<MailError> for ApiError {
    /// Only queueing reaches a request (sending runs in the background): the database's
    /// answer, or an internal fault (a template or recipient that cannot be).
    fn from(err: MailError) -> Self {
        match err {
            MailError::Db(e) => e.into(),
            other => ApiError::internal(&other),
        }
    }
}

impl From<KvError> for ApiError {
    fn from(err: KvError) -> Self {
        tracing::error!(error = %err, "redis unavailable");
        ApiError::unavailable("the session store is unavailable; retry later", 5)
    }
}

impl From<AuditError> for ApiError {
    fn from(err: AuditError) -> Self {
        match err {
            // Not an outage: the SAD's durable record refused the signatures.
            AuditError::SadSpent => SadError::Spent.into(),
            AuditError::Write(_) | AuditError::Stopped => {
                tracing::error!(error = %err, "audit log unavailable");
                ApiError::unavailable("the audit log is unavailable; retry later", 5)
            }
        }
    }
}

impl From<CaError> for ApiError {
    fn from(err: CaError) -> Self {
        match err {
            CaError::Hsm(e) => e.into(),
            CaError::Db(e) => e.into(),
            other => ApiError::internal(&other),
        }
    }
}

impl From<TsaError> for ApiError {
    fn from(err: TsaError) -> Self {
        match err {
            TsaError::Hsm(e) => e.into(),
            TsaError::Db(e) => e.into(),
            TsaError::Ca(e) => e.into(),
            other => ApiError::internal(&other),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(err: AuthError) -> Self {
        match err {
            AuthError::InvalidCredentials => {
                ApiError::new(StatusCode::UNAUTHORIZED, "access_denied", err.to_string())
            }
            AuthError::InvalidToken | AuthError::Revoked | AuthError::SessionEnded => {
                ApiError::invalid_token(err.to_string())
            }
            AuthError::Busy { retry_after_secs } => ApiError {
                retry_after: Some(retry_after_secs),
                ..ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "temporarily_unavailable",
                    err.to_string(),
                )
            },
            AuthError::Policy(rule) => ApiError::invalid_request(rule.to_string()),
            AuthError::TooManyAttempts { retry_after_secs } => ApiError {
                retry_after: Some(retry_after_secs),
                ..ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "access_denied",
                    err.to_string(),
                )
            },
            AuthError::WrongPassword => {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_password", err.to_string())
            }
            AuthError::SamePassword => ApiError::invalid_request(err.to_string()),
            AuthError::Db(e) => e.into(),
            AuthError::Kv(e) => e.into(),
            AuthError::Audit(e) => e.into(),
            AuthError::Hashing(_) => ApiError::internal(&err),
        }
    }
}

impl From<OtpError> for ApiError {
    fn from(err: OtpError) -> Self {
        match err {
            OtpError::Wrong | OtpError::Expired | OtpError::Replayed | OtpError::Malformed => {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_otp", err.to_string())
            }
            // A code sent for another operation or credential: the OTP of this one is wrong.
            OtpError::OtherPurpose => {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_otp", err.to_string())
            }
            OtpError::RateLimited { retry_after_secs }
            | OtpError::TooManyWrong { retry_after_secs } => ApiError {
                retry_after: Some(retry_after_secs),
                ..ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "invalid_request",
                    err.to_string(),
                )
            },
            OtpError::NotOnline | OtpError::NoApp => ApiError::invalid_request(err.to_string()),
            OtpError::Kv(e) => e.into(),
            OtpError::Sms(_) => {
                tracing::error!(error = %err, "SMS sending failed");
                ApiError::unavailable("the SMS could not be sent; retry later", 30)
            }
            // The HSM that seals TOTP seeds: a full queue is a 503 like any other HSM job.
            OtpError::Secrets(crate::secrets::SecretsError::Hsm(e)) => e.into(),
            OtpError::Secrets(_) | OtpError::Totp(_) => ApiError::internal(&err),
        }
    }
}

impl From<ActivationError> for ApiError {
    fn from(err: ActivationError) -> Self {
        match err {
            // CSC has no code of its own for a credential in the wrong state: the description
            // names the state.
            ActivationError::CredentialNotFound
            | ActivationError::Malformed { .. }
            | ActivationError::WrongState(_) => ApiError::invalid_request(err.to_string()),
            ActivationError::WrongPuk { .. } => {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_puk", err.to_string())
            }
            ActivationError::PukBlocked => ApiError::new(
                StatusCode::BAD_REQUEST,
                "credential_blocked",
                err.to_string(),
            ),
            ActivationError::WrongPin { .. } | ActivationError::PinBlocked => {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_pin", err.to_string())
            }
            ActivationError::CertificateExpired | ActivationError::SadUnknown => {
                ApiError::invalid_request(err.to_string())
            }
            ActivationError::Kv(e) => e.into(),
            ActivationError::Otp(e) => e.into(),
            ActivationError::Hsm(e) => e.into(),
            ActivationError::Db(e) => e.into(),
            ActivationError::Audit(e) => e.into(),
            ActivationError::Mail(e) => e.into(),
            ActivationError::Sad(e) => e.into(),
        }
    }
}

/// CSC v2 `credentials/authorize` (§11.6): wrong authentication data — a wrong PIN (also the one
/// that blocks the credential) or a wrong, expired or reused OTP — is 400
/// `invalid_authentication_data`; everything else maps as in v1 (which keeps `invalid_pin` and
/// `invalid_otp`).
pub fn csc_v2_authorize(err: ActivationError) -> ApiError {
    match err {
        ActivationError::WrongPin { .. }
        | ActivationError::PinBlocked
        | ActivationError::Otp(
            OtpError::Wrong
            | OtpError::Expired
            | OtpError::Replayed
            | OtpError::Malformed
            | OtpError::OtherPurpose,
        ) => ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_authentication_data",
            err.to_string(),
        ),
        other => other.into(),
    }
}

/// CSC v2 `auth/login` (§11.2): a wrong user id or password is 400 `authentication_error`, an
/// unusable refresh token 400 `invalid_request`; v1 keeps 401 `access_denied`.
pub fn csc_v2_login(err: AuthError, with_refresh_token: bool) -> ApiError {
    match err {
        AuthError::InvalidCredentials if with_refresh_token => {
            ApiError::invalid_request("Invalid refresh_token")
        }
        AuthError::InvalidCredentials => ApiError::new(
            StatusCode::BAD_REQUEST,
            "authentication_error",
            err.to_string(),
        ),
        other => other.into(),
    }
}

/// CSC v2 `auth/login` without usable HTTP Basic credentials nor a refresh token (§11.2:
/// "Malformed authentication parameter").
pub fn csc_v2_login_malformed() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "invalid_request",
        "Malformed authentication parameter: HTTP Basic user id and password, or a refresh_token",
    )
}

/// 501: a CSC method this service does not implement (CSC v2 §10.1, v1 §10.1).
pub fn csc_not_implemented() -> ApiError {
    ApiError::new(
        StatusCode::NOT_IMPLEMENTED,
        "invalid_request",
        "this CSC method is not implemented by this service (its info lists those that are)",
    )
}

impl From<CredentialError> for ApiError {
    fn from(err: CredentialError) -> Self {
        match err {
            CredentialError::NotFound => ApiError::invalid_request(err.to_string()),
            CredentialError::Db(e) => e.into(),
            CredentialError::Audit(e) => e.into(),
        }
    }
}

impl From<SadError> for ApiError {
    fn from(err: SadError) -> Self {
        match err {
            SadError::TokenRevoked | SadError::SessionEnded => {
                ApiError::invalid_token(err.to_string())
            }
            _ => ApiError::invalid_request(err.to_string()),
        }
    }
}

impl From<SigningError> for ApiError {
    fn from(err: SigningError) -> Self {
        match err {
            SigningError::Sad(e) => e.into(),
            SigningError::Kv(e) => e.into(),
            SigningError::Hsm(e) => e.into(),
            SigningError::Audit(e) => e.into(),
        }
    }
}

impl From<MechanismError> for ApiError {
    fn from(err: MechanismError) -> Self {
        ApiError::invalid_request(err.to_string())
    }
}

impl From<LifecycleError> for ApiError {
    fn from(err: LifecycleError) -> Self {
        match err {
            LifecycleError::NotFound => ApiError::new(
                StatusCode::NOT_FOUND,
                "credential_not_found",
                err.to_string(),
            ),
            LifecycleError::WrongState(_) => {
                ApiError::new(StatusCode::CONFLICT, "invalid_state", err.to_string())
            }
            LifecycleError::BadReason => ApiError::invalid_request(err.to_string()),
            LifecycleError::Db(e) => e.into(),
            LifecycleError::Kv(e) => e.into(),
            LifecycleError::Audit(e) => e.into(),
            LifecycleError::Mail(e) => e.into(),
        }
    }
}

impl From<EmergencyError> for ApiError {
    fn from(err: EmergencyError) -> Self {
        match err {
            // The same answer as a wrong password at login: unknown id and wrong code alike.
            EmergencyError::Refused => {
                ApiError::new(StatusCode::UNAUTHORIZED, "access_denied", err.to_string())
            }
            EmergencyError::Auth(e) => e.into(),
            EmergencyError::Lifecycle(e) => e.into(),
            EmergencyError::Hsm(e) => e.into(),
            EmergencyError::Db(e) => e.into(),
            EmergencyError::Mail(e) => e.into(),
            EmergencyError::Audit(e) => e.into(),
            EmergencyError::NotSubscriberSuspended => ApiError::invalid_request(err.to_string()),
            EmergencyError::Activation(e) => e.into(),
            EmergencyError::Device(e) => e.into(),
        }
    }
}

impl From<RecoveryError> for ApiError {
    fn from(err: RecoveryError) -> Self {
        match err {
            RecoveryError::InvalidLink => {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_grant", err.to_string())
            }
            RecoveryError::TooManyRequests { retry_after_secs } => ApiError {
                retry_after: Some(retry_after_secs),
                ..ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "access_denied",
                    err.to_string(),
                )
            },
            RecoveryError::NotSms => ApiError::invalid_request(err.to_string()),
            RecoveryError::Otp(e) => e.into(),
            RecoveryError::Auth(e) => e.into(),
            RecoveryError::Db(e) => e.into(),
            RecoveryError::Kv(e) => e.into(),
            RecoveryError::Mail(e) => e.into(),
            RecoveryError::Audit(e) => e.into(),
        }
    }
}

impl From<RenewalError> for ApiError {
    fn from(err: RenewalError) -> Self {
        let code = match err {
            RenewalError::Factors(e) => return e.into(),
            RenewalError::Ca(e) => return e.into(),
            RenewalError::Db(e) => return e.into(),
            RenewalError::Audit(e) => return e.into(),
            RenewalError::Certificate(_) => return ApiError::internal(&err),
            RenewalError::BadCount | RenewalError::WrongState(_) => "invalid_request",
            RenewalError::IdentityNotConfirmed => "identity_not_confirmed",
            RenewalError::NotInWindow(_) => "not_in_renewal_window",
            RenewalError::AlreadyRenewed => "already_renewed",
            RenewalError::InvalidCoupon => "invalid_coupon",
            RenewalError::Revoked => "credential_revoked",
            RenewalError::Suspended => "credential_suspended",
            RenewalError::Expired => "credential_expired",
        };
        ApiError::new(StatusCode::BAD_REQUEST, code, err.to_string())
    }
}

impl From<DeviceError> for ApiError {
    fn from(err: DeviceError) -> Self {
        match err {
            DeviceError::WrongPassword => {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_password", err.to_string())
            }
            DeviceError::BadPhone
            | DeviceError::NothingPending
            | DeviceError::AppEnrolled
            | DeviceError::NotTotpUser => ApiError::invalid_request(err.to_string()),
            DeviceError::NewDeviceCode => {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_code", err.to_string())
            }
            DeviceError::CurrentFactor(e) | DeviceError::Otp(e) => e.into(),
            DeviceError::Auth(e) => e.into(),
            DeviceError::Db(e) => e.into(),
            DeviceError::Audit(e) => e.into(),
            DeviceError::Qr(_) => ApiError::internal(&err),
        }
    }
}

impl From<EnrolError> for ApiError {
    fn from(err: EnrolError) -> Self {
        match err {
            EnrolError::Invalid { .. } => ApiError::invalid_request(err.to_string()),
            EnrolError::Policy(rule) => ApiError::invalid_request(rule.to_string()),
            EnrolError::UserExists => {
                ApiError::new(StatusCode::CONFLICT, "user_exists", err.to_string())
            }
            EnrolError::UserNotFound => {
                ApiError::new(StatusCode::NOT_FOUND, "user_not_found", err.to_string())
            }
            EnrolError::CredentialNotFound => {
                ApiError::new(StatusCode::NOT_FOUND, "invalid_request", err.to_string())
            }
            EnrolError::NotInactive | EnrolError::Passphrase(_) => {
                ApiError::invalid_request(err.to_string())
            }
            EnrolError::InvalidSetupLink => {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_grant", err.to_string())
            }
            EnrolError::SetupDone => {
                ApiError::new(StatusCode::CONFLICT, "setup_done", err.to_string())
            }
            EnrolError::Auth(e) => e.into(),
            EnrolError::Otp(e) => e.into(),
            EnrolError::Hsm(e) => e.into(),
            EnrolError::Ca(e) => e.into(),
            EnrolError::Db(e) => e.into(),
            EnrolError::Audit(e) => e.into(),
            EnrolError::Mail(e) => e.into(),
            EnrolError::Secrets(crate::secrets::SecretsError::Hsm(e)) => e.into(),
            EnrolError::Secrets(_) | EnrolError::Envelope(_) | EnrolError::Interrupted => {
                ApiError::internal(&err)
            }
        }
    }
}

/// RFC 6749 §5.2 and §4.1.2.1: the OAuth2 endpoints answer with the same body shape.
impl From<OAuth2Error> for ApiError {
    fn from(err: OAuth2Error) -> Self {
        let code = err.code();
        match err {
            OAuth2Error::InvalidClient => {
                ApiError::new(StatusCode::UNAUTHORIZED, code, err.to_string())
            }
            OAuth2Error::ClientNotFound => {
                ApiError::new(StatusCode::NOT_FOUND, code, err.to_string())
            }
            OAuth2Error::ClientExists => ApiError::new(StatusCode::CONFLICT, code, err.to_string()),
            OAuth2Error::AccessDenied => {
                ApiError::new(StatusCode::FORBIDDEN, code, err.to_string())
            }
            OAuth2Error::InvalidRequest(_)
            | OAuth2Error::InvalidGrant(_)
            | OAuth2Error::UnauthorizedClient(_)
            | OAuth2Error::UnsupportedGrantType
            | OAuth2Error::UnsupportedResponseType
            | OAuth2Error::InvalidScope(_)
            | OAuth2Error::InvalidAuthorizationDetails(_) => {
                ApiError::new(StatusCode::BAD_REQUEST, code, err.to_string())
            }
            OAuth2Error::Db(e) => e.into(),
            OAuth2Error::Kv(e) => e.into(),
            OAuth2Error::Auth(e) => e.into(),
            OAuth2Error::Audit(e) => e.into(),
            OAuth2Error::Seal => ApiError::internal(&err),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::PolicyViolation;
    use crate::model::CredentialStatus;

    fn code(err: impl Into<ApiError>) -> (u16, &'static str) {
        let e = err.into();
        (e.status.as_u16(), e.error)
    }

    #[test]
    fn mail_errors() {
        assert_eq!(
            code(MailError::NoRecipient("u".into())),
            (500, "server_error")
        );
        assert_eq!(
            code(MailError::Db(DbError::Corrupt("x"))),
            (500, "server_error")
        );
        assert_eq!(
            code(ActivationError::Mail(MailError::Build("x".into()))),
            (500, "server_error")
        );
        assert_eq!(
            code(LifecycleError::Mail(MailError::NoRecipient("u".into()))),
            (500, "server_error")
        );
    }

    #[test]
    fn oauth2_errors() {
        assert_eq!(code(OAuth2Error::InvalidClient), (401, "invalid_client"));
        assert_eq!(
            code(OAuth2Error::InvalidGrant("used")),
            (400, "invalid_grant")
        );
        assert_eq!(
            code(OAuth2Error::InvalidRequest("x".into())),
            (400, "invalid_request")
        );
        assert_eq!(
            code(OAuth2Error::UnsupportedGrantType),
            (400, "unsupported_grant_type")
        );
        assert_eq!(
            code(OAuth2Error::UnsupportedResponseType),
            (400, "unsupported_response_type")
        );
        assert_eq!(
            code(OAuth2Error::UnauthorizedClient("x")),
            (400, "unauthorized_client")
        );
        assert_eq!(
            code(OAuth2Error::InvalidScope("x".into())),
            (400, "invalid_scope")
        );
        assert_eq!(
            code(OAuth2Error::InvalidAuthorizationDetails("x".into())),
            (400, "invalid_authorization_details")
        );
        assert_eq!(code(OAuth2Error::AccessDenied), (403, "access_denied"));
        assert_eq!(code(OAuth2Error::ClientExists), (409, "invalid_request"));
        assert_eq!(code(OAuth2Error::ClientNotFound), (404, "invalid_request"));
        assert_eq!(code(OAuth2Error::Seal), (500, "server_error"));
        assert_eq!(
            code(OAuth2Error::Auth(AuthError::TooManyAttempts {
                retry_after_secs: 3
            }))
            .0,
            429
        );
    }

    #[test]
    fn hsm_errors() {
        let full: ApiError = HsmError::QueueFull.into();
        assert_eq!((full.status.as_u16(), full.retry_after), (503, Some(1)));
        assert_eq!(
            code(HsmError::Unavailable {
                op: "x",
                rv: "y".into()
            })
            .0,
            503
        );
        assert_eq!(
            code(HsmError::KeyNotFound("ab".into())),
            (500, "server_error")
        );
    }

    #[test]
    fn tsa_errors() {
        let busy: ApiError = TsaError::Hsm(HsmError::QueueFull).into();
        assert_eq!((busy.status.as_u16(), busy.retry_after), (503, Some(1)));
        assert_eq!(code(TsaError::KeyMismatch), (500, "server_error"));
        assert_eq!(code(TsaError::Policy), (500, "server_error"));
        assert_eq!(
            code(TsaError::Hsm(HsmError::Stopped)),
            (503, "temporarily_unavailable")
        );
    }

    #[test]
    fn auth_errors() {
        assert_eq!(code(AuthError::InvalidCredentials), (401, "access_denied"));
        assert_eq!(code(AuthError::InvalidToken), (401, "invalid_token"));
        assert_eq!(
            code(AuthError::Policy(PolicyViolation::NoDigit)),
            (400, "invalid_request")
        );
        assert_eq!(code(AuthError::Hashing("x".into())), (500, "server_error"));
        assert_eq!(code(AuthError::Revoked), (401, "invalid_token"));
        assert_eq!(code(AuthError::SessionEnded), (401, "invalid_token"));
        let busy: ApiError = AuthError::Busy {
            retry_after_secs: 1,
        }
        .into();
        assert_eq!(
            (busy.status.as_u16(), busy.error, busy.retry_after),
            (429, "temporarily_unavailable", Some(1))
        );
    }

    #[test]
    fn otp_errors() {
        for e in [
            OtpError::Wrong,
            OtpError::Expired,
            OtpError::Replayed,
            OtpError::Malformed,
        ] {
            assert_eq!(code(e), (400, "invalid_otp"));
        }
        let limited: ApiError = OtpError::RateLimited {
            retry_after_secs: 42,
        }
        .into();
        assert_eq!(
            (limited.status.as_u16(), limited.retry_after),
            (429, Some(42))
        );
        assert_eq!(code(OtpError::NotOnline), (400, "invalid_request"));
        assert_eq!(code(OtpError::NoApp), (400, "invalid_request"));
        assert_eq!(code(OtpError::Totp("x".into())), (500, "server_error"));
        assert_eq!(
            code(OtpError::Secrets(crate::secrets::SecretsError::BadSeal)),
            (500, "server_error")
        );
        assert_eq!(
            code(OtpError::Secrets(crate::secrets::SecretsError::Hsm(
                HsmError::QueueFull
            )))
            .0,
            503
        );
        assert_eq!(code(OtpError::OtherPurpose), (400, "invalid_otp"));
    }

    #[test]
    fn activation_errors() {
        assert_eq!(
            code(ActivationError::CredentialNotFound),
            (400, "invalid_request")
        );
        assert_eq!(
            code(ActivationError::Malformed {
                field: "new_pin",
                reason: "x"
            }),
            (400, "invalid_request")
        );
        assert_eq!(
            code(ActivationError::WrongState(CredentialStatus::Active)),
            (400, "invalid_request")
        );
        assert_eq!(
            code(ActivationError::WrongPuk { remaining: 3 }),
            (400, "invalid_puk")
        );
        assert_eq!(
            code(ActivationError::PukBlocked),
            (400, "credential_blocked")
        );
        assert_eq!(
            code(ActivationError::Otp(OtpError::Wrong)),
            (400, "invalid_otp")
        );
    }

    #[test]
    fn signing_errors() {
        assert_eq!(code(SadError::TokenRevoked), (401, "invalid_token"));
        assert_eq!(code(SadError::SessionEnded), (401, "invalid_token"));
        for e in [
            SadError::Unknown,
            SadError::OtherCredential,
            SadError::Exhausted { left: 0, asked: 1 },
            SadError::HashAlgorithm,
            SadError::HashNotAuthorised { position: 1 },
            SadError::KeyMismatch,
            SadError::NotSigning,
            SadError::CredentialHeld,
            SadError::Forged,
            SadError::Spent,
        ] {
            assert_eq!(code(SigningError::Sad(e)), (400, "invalid_request"));
        }
        assert_eq!(code(SigningError::Hsm(HsmError::QueueFull)).0, 503);
        assert_eq!(code(SigningError::Audit(AuditError::Stopped)).0, 503);
        assert_eq!(
            code(SigningError::Audit(AuditError::SadSpent)),
            (400, "invalid_request")
        );
        assert_eq!(code(CredentialError::NotFound), (400, "invalid_request"));
        assert_eq!(
            code(MechanismError::UnknownSignAlgo("1.2.3".into())),
            (400, "invalid_request")
        );
    }

    #[test]
    fn emergency_and_recovery_errors() {
        assert_eq!(code(EmergencyError::Refused), (401, "access_denied"));
        assert_eq!(
            code(EmergencyError::Auth(AuthError::TooManyAttempts {
                retry_after_secs: 9
            })),
            (429, "access_denied")
        );
        assert_eq!(
            code(EmergencyError::Lifecycle(LifecycleError::BadReason)),
            (400, "invalid_request")
        );
        assert_eq!(code(RecoveryError::InvalidLink), (400, "invalid_grant"));
        let limited: ApiError = RecoveryError::TooManyRequests {
            retry_after_secs: 7,
        }
        .into();
        assert_eq!(
            (limited.status.as_u16(), limited.retry_after),
            (429, Some(7))
        );
        assert_eq!(code(RecoveryError::NotSms), (400, "invalid_request"));
        assert_eq!(
            code(RecoveryError::Otp(OtpError::Wrong)),
            (400, "invalid_otp")
        );
        assert_eq!(
            code(RecoveryError::Auth(AuthError::Policy(
                PolicyViolation::NoDigit
            ))),
            (400, "invalid_request")
        );
    }

    #[test]
    fn lifecycle_errors() {
        assert_eq!(
            code(LifecycleError::NotFound),
            (404, "credential_not_found")
        );
        assert_eq!(
            code(LifecycleError::WrongState(CredentialStatus::Revoked)),
            (409, "invalid_state")
        );
        assert_eq!(code(LifecycleError::BadReason), (400, "invalid_request"));
    }

    #[test]
    fn renewal_errors() {
        assert_eq!(
            code(RenewalError::NotInWindow(90)),
            (400, "not_in_renewal_window")
        );
        assert_eq!(code(RenewalError::AlreadyRenewed), (400, "already_renewed"));
        assert_eq!(
            code(RenewalError::IdentityNotConfirmed),
            (400, "identity_not_confirmed")
        );
        assert_eq!(code(RenewalError::InvalidCoupon), (400, "invalid_coupon"));
        assert_eq!(code(RenewalError::Revoked), (400, "credential_revoked"));
        assert_eq!(code(RenewalError::Suspended), (400, "credential_suspended"));
        assert_eq!(code(RenewalError::Expired), (400, "credential_expired"));
        assert_eq!(
            code(RenewalError::Factors(ActivationError::WrongPin {
                remaining: 2
            })),
            (400, "invalid_pin")
        );
        assert_eq!(code(RenewalError::BadCount), (400, "invalid_request"));
    }

    #[test]
    fn device_errors() {
        assert_eq!(code(DeviceError::WrongPassword), (400, "invalid_password"));
        assert_eq!(code(DeviceError::NewDeviceCode), (400, "invalid_code"));
        assert_eq!(code(DeviceError::NothingPending), (400, "invalid_request"));
        assert_eq!(code(DeviceError::BadPhone), (400, "invalid_request"));
        assert_eq!(code(DeviceError::AppEnrolled), (400, "invalid_request"));
        assert_eq!(code(DeviceError::NotTotpUser), (400, "invalid_request"));
        assert_eq!(
            code(DeviceError::CurrentFactor(OtpError::Wrong)),
            (400, "invalid_otp")
        );
    }

    #[test]
    fn enrolment_errors() {
        assert_eq!(
            code(EnrolError::Invalid {
                field: "phone",
                reason: "x"
            }),
            (400, "invalid_request")
        );
        assert_eq!(
            code(EnrolError::Policy(PolicyViolation::TooShort)),
            (400, "invalid_request")
        );
        assert_eq!(code(EnrolError::UserExists), (409, "user_exists"));
        assert_eq!(code(EnrolError::UserNotFound), (404, "user_not_found"));
        assert_eq!(
            code(EnrolError::CredentialNotFound),
            (404, "invalid_request")
        );
        assert_eq!(code(EnrolError::NotInactive), (400, "invalid_request"));
        assert_eq!(code(EnrolError::InvalidSetupLink), (400, "invalid_grant"));
        assert_eq!(code(EnrolError::SetupDone), (409, "setup_done"));
        assert_eq!(code(EnrolError::Passphrase("x")), (400, "invalid_request"));
        assert_eq!(code(EnrolError::Interrupted), (500, "server_error"));
        assert_eq!(
            code(EnrolError::Envelope(
                crate::envelope::EnvelopeError::Malformed("x")
            )),
            (500, "server_error")
        );
        assert_eq!(
            code(EnrolError::Secrets(crate::secrets::SecretsError::BadSeal)),
            (500, "server_error")
        );
        assert_eq!(
            code(EnrolError::Mail(MailError::NoRecipient("u".into()))),
            (500, "server_error")
        );
    }

    #[test]
    fn csc_v2_codes() {
        assert_eq!(
            csc_v2_authorize(ActivationError::WrongPin { remaining: 2 }).error,
            "invalid_authentication_data"
        );
        for e in [
            ActivationError::PinBlocked,
            ActivationError::Otp(OtpError::Wrong),
            ActivationError::Otp(OtpError::Replayed),
            ActivationError::Otp(OtpError::Expired),
        ] {
            assert_eq!(
                code(csc_v2_authorize(e)),
                (400, "invalid_authentication_data")
            );
        }
        assert_eq!(
            code(csc_v2_authorize(ActivationError::WrongState(
                CredentialStatus::PinBlocked
            ))),
            (400, "invalid_request")
        );
        assert_eq!(
            code(csc_v2_authorize(ActivationError::Otp(OtpError::NotOnline))),
            (400, "invalid_request")
        );
        assert_eq!(
            code(csc_v2_login(AuthError::InvalidCredentials, false)),
            (400, "authentication_error")
        );
        assert_eq!(
            code(csc_v2_login(AuthError::InvalidCredentials, true)),
            (400, "invalid_request")
        );
        assert_eq!(
            code(csc_v2_login(AuthError::SessionEnded, true)),
            (401, "invalid_token")
        );
        assert_eq!(code(csc_v2_login_malformed()), (401, "invalid_request"));
        assert_eq!(code(csc_not_implemented()), (501, "invalid_request"));
        assert_eq!(
            code(ActivationError::Sad(SadError::HashAlgorithm)),
            (400, "invalid_request")
        );
    }

    #[test]
    fn server_error_bodies_hide_the_cause() {
        let e: ApiError = HsmError::KeyNotFound("secret-detail".into()).into();
        assert!(!e.description.contains("secret-detail"));
    }
}
