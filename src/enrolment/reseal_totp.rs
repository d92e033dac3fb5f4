//! Start-up resealing of TOTP seeds sealed before the seal key moved into the HSM: each is
//! opened with the old key (derived from `token_secret`) and sealed again in the HSM, once.
//! The update is a compare-and-set, so nodes starting together and a concurrent device change
//! cannot lose a seed.

use crate::db::repo;
use crate::secrets::{Secrets, SecretsError};
use crate::services::Services;

use super::EnrolError;

/// Seals every old-format TOTP seed again in the HSM; returns how many it resealed. A seed
/// that does not open is left as it is (and logged): the subscriber's next code is refused as
/// it would have been.
pub async fn reseal_totp_seeds(services: &Services) -> Result<usize, EnrolError> {
    let mut resealed = 0;
    for (user_id, old) in repo::users::totp_secrets_to_reseal(&services.db).await? {
        if !Secrets::needs_reseal(&old) {
            continue;
        }
        let seed = match services.secrets.open(&user_id, &old).await {
            Ok(seed) => seed,
            Err(SecretsError::BadSeal) => {
                tracing::error!(user_id, "a stored TOTP seed does not open; left as it is");
                continue;
            }
            Err(e) => return Err(crate::otp::OtpError::Secrets(e).into()),
        };
        let new = services
            .secrets
            .seal(&user_id, &seed)
            .await
            .map_err(crate::otp::OtpError::Secrets)?;
        if repo::users::reseal_totp_secret(&services.db, &user_id, &old, &new).await? {
            resealed += 1;
        }
    }
    Ok(resealed)
}
