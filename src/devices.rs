//! Changing the OTP device: to an authenticator app (TOTP) or to SMS on a (new) phone.
//!
//! Invariant: a change takes effect only when confirmed twice — by a code from the NEW device
//! and by the CURRENT factor (the subscriber's present phone or app) — after the password
//! started it. A stolen password alone cannot move the second factor. The current factor is
//! checked (and consumed) first: a wrong new-device code means starting again. Every start
//! and every refusal is audited with its reason and the client's address.

use qrcode::render::svg;
use qrcode::QrCode;
use serde_json::json;

use crate::audit::AuditError;
use crate::auth::{budget, session, AuthError};
use crate::db::{repo, DbError};
use crate::model::{Origin, OtpMethod, User};
use crate::otp::{OtpError, Purpose, SmsCode};
use crate::services::Services;

#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error("the password is wrong")]
    WrongPassword,
    #[error("phone: E.164, + followed by 8 to 15 digits")]
    BadPhone,
    #[error("no device change is pending (or it expired): start again")]
    NothingPending,
    #[error("the code from the new device is wrong")]
    NewDeviceCode,
    #[error(transparent)]
    CurrentFactor(OtpError),
    #[error(transparent)]
    Otp(#[from] OtpError),
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Audit(#[from] AuditError),
    #[error("QR code: {0}")]
    Qr(String),
    #[error("an authenticator app is already enrolled: change it with POST /api/v1/otp/totp")]
    AppEnrolled,
    #[error("this user's OTP comes by SMS: change the device with POST /api/v1/otp/totp")]
    NotTotpUser,
}

async fn user(services: &Services, user_id: &str) -> Result<User, DeviceError> {
    repo::users::find(&services.db, user_id)
        .await?
        .ok_or(DeviceError::Auth(AuthError::InvalidToken))
}

/// The password, within the login budget (wrong ones count as wrong logins do).
async fn check_password(
    services: &Services,
    user: &User,
    password: &str,
) -> Result<(), DeviceError> {
    if budget::check_user_password(
        services,
        &user.user_id,
        user.password_hash.as_deref().unwrap_or_default(),
        password,
    )
    .await?
    {
        Ok(())
    } else {
        Err(DeviceError::WrongPassword)
    }
}

/// For SMS users, the current factor is a code texted now to the present phone.
async fn send_current_factor(services: &Services, user: &User) -> Result<(), DeviceError> {
    if user.otp_method == OtpMethod::Sms {
        services.otp.send_sms(user, Purpose::DeviceChange).await?;
    }
    Ok(())
}

/// A new authenticator app to scan.
pub struct TotpStart {
    pub otpauth_uri: String,
    pub qr_svg: String,
}

fn qr_svg(otpauth_uri: &str) -> Result<String, DeviceError> {
    Ok(QrCode::new(otpauth_uri.as_bytes())
        .map_err(|e| DeviceError::Qr(e.to_string()))?
        .render::<svg::Color<'_>>()
        .min_dimensions(200, 200)
        .build())
}

/// A TOTP user who has no app yet (first sign-in); anyone else is refused.
async fn awaiting_app(services: &Services, user_id: &str) -> Result<User, DeviceError> {
    let user = user(services, user_id).await?;
    if user.otp_method != OtpMethod::Totp {
        return Err(DeviceError::NotTotpUser);
    }
    if user.totp_secret.is_some() {
        return Err(DeviceError::AppEnrolled);
    }
    Ok(user)
}

/// Whether `user_id` signs with an authenticator app that is not enrolled yet (the portal
/// sends such a subscriber to enrol it first).
pub async fn app_enrolment_pending(
    services: &Services,
    user_id: &str,
) -> Result<bool, DeviceError> {
    let user = user(services, user_id).await?;
    Ok(user.otp_method == OtpMethod::Totp && user.totp_secret.is_none())
}

/// `POST /api/v1/otp/totp/enrol`: the first authenticator app of a TOTP user, who has none
/// yet (the operator never sees the secret). Stages a secret, to confirm with a code of it.
pub async fn enrol_first_totp(
    services: &Services,
    user_id: &str,
) -> Result<TotpStart, DeviceError> {
    awaiting_app(services, user_id).await?;
    let enrolment = services.otp.stage_totp(user_id).await?;
    Ok(TotpStart {
        qr_svg: qr_svg(&enrolment.otpauth_uri)?,
        otpauth_uri: enrolment.otpauth_uri,
    })
}

/// `POST /api/v1/otp/totp/enrol/confirm {otp}`: a code of the staged app makes it the user's.
/// Only while none is enrolled (compare-and-set: of two racing confirmations one wins).
pub async fn confirm_first_totp(
    services: &Services,
    user_id: &str,
    otp: &str,
    origin: &Origin,
) -> Result<(), DeviceError> {
    let result = confirm_first(services, user_id, otp).await;
    let mut detail = origin.audit_fields();
    detail.insert("to".into(), "totp".into());
    let outcome = match &result {
        Ok(()) => "ok",
        Err(e) => {
            detail.insert("reason".into(), e.audit_reason().into());
            "refused"
        }
    };
    services
        .audit
        .record(user_id, "otp.first_enrolment", None, outcome, detail.into())
        .await?;
    result
}

async fn confirm_first(services: &Services, user_id: &str, otp: &str) -> Result<(), DeviceError> {
    awaiting_app(services, user_id).await?;
    let sealed = services
        .otp
        .confirm_staged_totp(user_id, otp)
        .await
        .map_err(|e| match e {
            OtpError::Expired => DeviceError::NothingPending,
            OtpError::Wrong => DeviceError::NewDeviceCode,
            other => DeviceError::Otp(other),
        })?;
    if !repo::users::enrol_first_totp(&services.db, user_id, &sealed).await? {
        return Err(DeviceError::AppEnrolled);
    }
    services.otp.clear_staged(user_id).await?;
    Ok(())
}

/// `POST /api/v1/otp/totp {password}`: stages a new TOTP secret.
async fn start_totp(
    services: &Services,
    user_id: &str,
    password: &str,
) -> Result<TotpStart, DeviceError> {
    let user = user(services, user_id).await?;
    check_password(services, &user, password).await?;
    let enrolment = services.otp.stage_totp(user_id).await?;
    let qr_svg = qr_svg(&enrolment.otpauth_uri)?;
    send_current_factor(services, &user).await?;
    Ok(TotpStart {
        otpauth_uri: enrolment.otpauth_uri,
        qr_svg,
    })
}

/// `POST /api/v1/otp/totp/confirm {code, otp}`: the app's code and the current factor.
async fn confirm_totp(
    services: &Services,
    user_id: &str,
    code: &str,
    otp: &str,
) -> Result<(), DeviceError> {
    let user = user(services, user_id).await?;
    services
        .otp
        .verify(&user, otp, Purpose::DeviceChange)
        .await
        .map_err(DeviceError::CurrentFactor)?;
    let device = prove_app(services, user_id, code).await?;
    install(services, user_id, device).await
}

/// A new OTP device, proven by a code from it.
pub enum NewDevice {
    /// An authenticator app: its secret, sealed.
    App(Vec<u8>),
    /// A phone for SMS codes.
    Phone(String),
}

impl NewDevice {
    /// `totp` or `sms`, as the audit log names them.
    pub fn method(&self) -> &'static str {
        match self {
            NewDevice::App(_) => "totp",
            NewDevice::Phone(_) => "sms",
        }
    }
}

async fn prove_app(
    services: &Services,
    user_id: &str,
    code: &str,
) -> Result<NewDevice, DeviceError> {
    let sealed = services
        .otp
        .confirm_staged_totp(user_id, code)
        .await
        .map_err(|e| match e {
            OtpError::Expired => DeviceError::NothingPending,
            OtpError::Wrong => DeviceError::NewDeviceCode,
            other => DeviceError::Otp(other),
        })?;
    Ok(NewDevice::App(sealed))
}

async fn prove_phone(
    services: &Services,
    user_id: &str,
    phone: String,
    code: &str,
) -> Result<NewDevice, DeviceError> {
    services
        .otp
        .verify_code(user_id, SmsCode::NewPhone, Purpose::DeviceChange, code)
        .await
        .map_err(|e| match e {
            OtpError::Wrong | OtpError::Expired | OtpError::Malformed => DeviceError::NewDeviceCode,
            other => DeviceError::Otp(other),
        })?;
    Ok(NewDevice::Phone(phone))
}

/// The device change `user_id` started last (a phone or an app: starting one forgets the
/// other), if `code` is from it. The current factor is NOT asked: the caller has checked what
/// stands in for it (the PUK, when the subscriber lost the device).
pub async fn prove_staged(
    services: &Services,
    user_id: &str,
    code: &str,
) -> Result<NewDevice, DeviceError> {
    match services.otp.staged_phone(user_id).await? {
        Some(phone) => prove_phone(services, user_id, phone, code).await,
        None => prove_app(services, user_id, code).await,
    }
}

/// Makes `device` the OTP device of `user_id`: the old one stops working and every session
/// ends. Audited as `otp.device_change`.
pub async fn install(
    services: &Services,
    user_id: &str,
    device: NewDevice,
) -> Result<(), DeviceError> {
    let to = device.method();
    match &device {
        NewDevice::App(sealed) => {
            repo::users::set_otp(&services.db, user_id, OtpMethod::Totp, None, Some(sealed)).await?
        }
        NewDevice::Phone(phone) => {
            repo::users::set_otp(&services.db, user_id, OtpMethod::Sms, Some(phone), None).await?
        }
    }
    services.otp.clear_staged(user_id).await?;
    session::end_sessions(&services.kv, user_id).await?;
    services
        .audit
        .record(
            user_id,
            "otp.device_change",
            None,
            "ok",
            json!({ "to": to }),
        )
        .await?;
    Ok(())
}

/// `POST /api/v1/otp/sms {phone, password}`: stages the phone and texts it a code.
async fn start_sms(
    services: &Services,
    user_id: &str,
    phone: &str,
    password: &str,
) -> Result<(), DeviceError> {
    let digits = phone.strip_prefix('+').unwrap_or_default();
    if !(8..=15).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(DeviceError::BadPhone);
    }
    let user = user(services, user_id).await?;
    check_password(services, &user, password).await?;
    services.otp.stage_phone(user_id, phone).await?;
    services
        .otp
        .send_code(user_id, SmsCode::NewPhone, Purpose::DeviceChange, phone)
        .await?;
    send_current_factor(services, &user).await?;
    Ok(())
}

/// `POST /api/v1/otp/sms/confirm {code, otp}`: the new phone's code and the current factor.
async fn confirm_sms(
    services: &Services,
    user_id: &str,
    code: &str,
    otp: &str,
) -> Result<(), DeviceError> {
    let user = user(services, user_id).await?;
    let phone = services
        .otp
        .staged_phone(user_id)
        .await?
        .ok_or(DeviceError::NothingPending)?;
    services
        .otp
        .verify(&user, otp, Purpose::DeviceChange)
        .await
        .map_err(DeviceError::CurrentFactor)?;
    let device = prove_phone(services, user_id, phone, code).await?;
    install(services, user_id, device).await
}

impl DeviceError {
    /// A spent budget (HTTP 429 on the API and on the portal's pages alike).
    pub fn is_limited(&self) -> bool {
        match self {
            DeviceError::CurrentFactor(e) | DeviceError::Otp(e) => e.is_limited(),
            DeviceError::Auth(e) => e.is_limited(),
            _ => false,
        }
    }

    /// The audit log's reason for a refused device change (never a secret).
    pub fn audit_reason(&self) -> &'static str {
        match self {
            DeviceError::WrongPassword => "wrong_password",
            DeviceError::BadPhone => "bad_phone",
            DeviceError::NothingPending => "nothing_pending",
            DeviceError::NewDeviceCode => "wrong_new_device_code",
            DeviceError::CurrentFactor(e) => match e.audit_outcome() {
                "otp_limited" => "current_factor_limited",
                _ => "wrong_current_factor",
            },
            DeviceError::Otp(OtpError::RateLimited { .. }) => "otp_rate_limited",
            DeviceError::Otp(_) => "otp_failure",
            DeviceError::Auth(_) => "auth_failure",
            DeviceError::AppEnrolled => "app_enrolled",
            DeviceError::NotTotpUser => "not_totp_user",
            DeviceError::Db(_) | DeviceError::Audit(_) | DeviceError::Qr(_) => "internal_error",
        }
    }
}

/// Which step of a device change is audited.
#[derive(Clone, Copy)]
enum Step {
    /// `otp.device_change_start`, ok or refused.
    Start,
    /// `otp.device_change` when refused (an accepted one is recorded where it takes effect).
    Confirm,
}

/// Records a device change step with the reason of a refusal and where the request came from.
async fn audited<T>(
    services: &Services,
    user_id: &str,
    step: Step,
    to: &'static str,
    origin: &Origin,
    result: Result<T, DeviceError>,
) -> Result<T, DeviceError> {
    let (action, outcome) = match (step, &result) {
        (Step::Confirm, Ok(_)) => return result,
        (Step::Start, Ok(_)) => ("otp.device_change_start", "ok"),
        (Step::Start, Err(_)) => ("otp.device_change_start", "refused"),
        (Step::Confirm, Err(_)) => ("otp.device_change", "refused"),
    };
    let mut detail = origin.audit_fields();
    detail.insert("to".into(), to.into());
    if let Err(e) = &result {
        detail.insert("reason".into(), e.audit_reason().into());
    }
    services
        .audit
        .record(user_id, action, None, outcome, detail.into())
        .await?;
    result
}

/// [`start_totp`], audited with the request's origin.
pub async fn start_totp_from(
    services: &Services,
    user_id: &str,
    password: &str,
    origin: &Origin,
) -> Result<TotpStart, DeviceError> {
    let result = start_totp(services, user_id, password).await;
    audited(services, user_id, Step::Start, "totp", origin, result).await
}

/// [`confirm_totp`], a refusal audited with the request's origin.
pub async fn confirm_totp_from(
    services: &Services,
    user_id: &str,
    code: &str,
    otp: &str,
    origin: &Origin,
) -> Result<(), DeviceError> {
    let result = confirm_totp(services, user_id, code, otp).await;
    audited(services, user_id, Step::Confirm, "totp", origin, result).await
}

/// [`start_sms`], audited with the request's origin.
pub async fn start_sms_from(
    services: &Services,
    user_id: &str,
    phone: &str,
    password: &str,
    origin: &Origin,
) -> Result<(), DeviceError> {
    let result = start_sms(services, user_id, phone, password).await;
    audited(services, user_id, Step::Start, "sms", origin, result).await
}

/// [`confirm_sms`], a refusal audited with the request's origin.
pub async fn confirm_sms_from(
    services: &Services,
    user_id: &str,
    code: &str,
    otp: &str,
    origin: &Origin,
) -> Result<(), DeviceError> {
    let result = confirm_sms(services, user_id, code, otp).await;
    audited(services, user_id, Step::Confirm, "sms", origin, result).await
}
