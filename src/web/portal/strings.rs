//! The portal's strings, Italian and English, with the same keys (every key starts with
//! `portal_`; `web::i18n` serves them beside the shared ones, and its test keeps the two tables
//! alike and every key unique).

/// Italian.
pub const IT: &[(&str, &str)] = &[
    ("portal_home", "Torna ai tuoi certificati"),
    ("portal_nav", "Il tuo account"),
    ("portal_sign_out", "Esci"),
    ("portal_signed_in_as", "Accesso come"),
    ("portal_login_title", "Accedi al portale"),
    (
        "portal_login_intro",
        "Gestisci i tuoi certificati di firma: attivazione, PIN, password e dispositivo OTP.",
    ),
    ("portal_home_title", "I tuoi certificati"),
    ("portal_no_credentials", "Non hai ancora certificati."),
    ("portal_status", "Stato"),
    ("portal_serial", "Numero di serie"),
    ("portal_expiry", "Scadenza"),
    ("portal_days_left", "giorni rimasti"),
    (
        "portal_window_warning",
        "Il certificato scade presto: rinnovalo prima della scadenza.",
    ),
    ("portal_renewed", "Già rinnovato."),
    ("portal_actions", "Azioni"),
    ("portal_password_link", "Cambia password"),
    ("portal_device_link", "Cambia dispositivo OTP"),
    ("portal_purpose_signing", "Firma digitale"),
    ("portal_purpose_authentication", "Autenticazione"),
    ("portal_status_inactive", "Da attivare"),
    ("portal_status_active", "Attivo"),
    ("portal_status_pin_blocked", "PIN bloccato"),
    ("portal_status_blocked", "Bloccato"),
    ("portal_status_suspended", "Sospeso"),
    ("portal_status_revoked", "Revocato"),
    ("portal_status_expired", "Scaduto"),
    (
        "portal_hint_inactive",
        "Attivalo con il PUK della busta cifrata ricevuta via e-mail.",
    ),
    (
        "portal_hint_pin_blocked",
        "Troppi PIN errati: sbloccalo con il PUK e scegli un nuovo PIN.",
    ),
    (
        "portal_hint_blocked",
        "Troppi PUK errati: il certificato è bloccato. Contatta l'operatore.",
    ),
    (
        "portal_hint_suspended",
        "Il certificato è sospeso. Per riattivarlo contatta l'operatore.",
    ),
    ("portal_hint_revoked", "Il certificato è revocato e non può più firmare."),
    ("portal_hint_expired", "Il certificato è scaduto e non può più firmare."),
    ("portal_action_activate", "Attiva"),
    ("portal_action_pin", "Cambia PIN"),
    ("portal_action_unblock", "Sblocca con il PUK"),
    ("portal_action_renew", "Rinnova"),
    ("portal_action_history", "Storico firme"),
    ("portal_done_activated", "Certificato attivato: ora puoi firmare con il tuo PIN."),
    ("portal_done_pin", "PIN cambiato."),
    ("portal_done_unblocked", "PIN sbloccato: ora puoi firmare con il nuovo PIN."),
    ("portal_done_signed_out", "Sei uscito dal portale."),
    (
        "portal_done_password",
        "Password cambiata: accedi con la nuova password.",
    ),
    (
        "portal_done_device",
        "Dispositivo OTP cambiato: accedi di nuovo.",
    ),
    (
        "portal_csrf",
        "Il modulo è scaduto o non viene da questo sito: nulla è stato fatto. Ricarica la pagina e riprova.",
    ),
    ("portal_signed_out", "La sessione è terminata: accedi di nuovo."),
    ("portal_not_sms", "Il tuo codice OTP viene dall'app di autenticazione, non via SMS."),
    ("portal_wrong_password", "La password attuale non è corretta."),
    (
        "portal_same_password",
        "La nuova password deve essere diversa da quella attuale.",
    ),
    ("portal_policy_too_short", "La password deve avere almeno 8 caratteri."),
    ("portal_policy_too_long", "La password può avere al massimo 128 caratteri."),
    ("portal_policy_no_upper", "La password deve contenere una lettera maiuscola."),
    ("portal_policy_no_lower", "La password deve contenere una lettera minuscola."),
    ("portal_policy_no_digit", "La password deve contenere una cifra."),
    (
        "portal_policy_no_special",
        "La password deve contenere un carattere speciale.",
    ),
    (
        "portal_policy_repeated",
        "La password non può ripetere lo stesso carattere più di due volte di seguito.",
    ),
    ("portal_wrong_puk", "PUK non corretto. Tentativi rimasti:"),
    (
        "portal_pin_blocked",
        "PIN non corretto: il PIN ora è bloccato. Sbloccalo con il PUK.",
    ),
    (
        "portal_puk_blocked",
        "Troppi PUK errati: il certificato è bloccato. Contatta l'operatore.",
    ),
    ("portal_puk_format", "Il PUK è di 8 cifre."),
    ("portal_pin_format", "Il PIN deve essere di 8 cifre."),
    ("portal_pin_same", "Il nuovo PIN deve essere diverso da quello attuale."),
    (
        "portal_wrong_state",
        "Questa operazione non è possibile nello stato attuale del certificato.",
    ),
    ("portal_cert_expired", "Il certificato è scaduto."),
    (
        "portal_bad_phone",
        "Numero di telefono non valido: + seguito da 8 a 15 cifre (es. +393331234567).",
    ),
    (
        "portal_nothing_pending",
        "Nessun cambio di dispositivo in corso (o è scaduto): ricomincia.",
    ),
    (
        "portal_new_device_code",
        "Il codice del nuovo dispositivo non è corretto.",
    ),
];

/// English.
pub const EN: &[(&str, &str)] = &[
    ("portal_home", "Back to your certificates"),
    ("portal_nav", "Your account"),
    ("portal_sign_out", "Sign out"),
    ("portal_signed_in_as", "Signed in as"),
    ("portal_login_title", "Sign in to the portal"),
    (
        "portal_login_intro",
        "Manage your signing certificates: activation, PIN, password and OTP device.",
    ),
    ("portal_home_title", "Your certificates"),
    ("portal_no_credentials", "You have no certificates yet."),
    ("portal_status", "Status"),
    ("portal_serial", "Serial number"),
    ("portal_expiry", "Expires"),
    ("portal_days_left", "days left"),
    (
        "portal_window_warning",
        "This certificate expires soon: renew it before it does.",
    ),
    ("portal_renewed", "Already renewed."),
    ("portal_actions", "Actions"),
    ("portal_password_link", "Change password"),
    ("portal_device_link", "Change OTP device"),
    ("portal_purpose_signing", "Digital signature"),
    ("portal_purpose_authentication", "Authentication"),
    ("portal_status_inactive", "Not activated yet"),
    ("portal_status_active", "Active"),
    ("portal_status_pin_blocked", "PIN blocked"),
    ("portal_status_blocked", "Blocked"),
    ("portal_status_suspended", "Suspended"),
    ("portal_status_revoked", "Revoked"),
    ("portal_status_expired", "Expired"),
    (
        "portal_hint_inactive",
        "Activate it with the PUK from the encrypted envelope you received by e-mail.",
    ),
    (
        "portal_hint_pin_blocked",
        "Too many wrong PINs: unblock it with the PUK and choose a new PIN.",
    ),
    (
        "portal_hint_blocked",
        "Too many wrong PUKs: the certificate is blocked. Contact the operator.",
    ),
    (
        "portal_hint_suspended",
        "The certificate is suspended. Contact the operator to resume it.",
    ),
    (
        "portal_hint_revoked",
        "The certificate is revoked and can never sign again.",
    ),
    (
        "portal_hint_expired",
        "The certificate has expired and can no longer sign.",
    ),
    ("portal_action_activate", "Activate"),
    ("portal_action_pin", "Change PIN"),
    ("portal_action_unblock", "Unblock with the PUK"),
    ("portal_action_renew", "Renew"),
    ("portal_action_history", "Signing history"),
    (
        "portal_done_activated",
        "Certificate activated: you can now sign with your PIN.",
    ),
    ("portal_done_pin", "PIN changed."),
    (
        "portal_done_unblocked",
        "PIN unblocked: you can now sign with the new PIN.",
    ),
    ("portal_done_signed_out", "You have signed out."),
    (
        "portal_done_password",
        "Password changed: sign in with the new password.",
    ),
    ("portal_done_device", "OTP device changed: sign in again."),
    (
        "portal_csrf",
        "The form has expired or does not come from this site: nothing was done. Reload the page and try again.",
    ),
    ("portal_signed_out", "Your session has ended: sign in again."),
    (
        "portal_not_sms",
        "Your OTP code comes from your authenticator app, not by SMS.",
    ),
    ("portal_wrong_password", "The current password is wrong."),
    (
        "portal_same_password",
        "The new password must differ from the current one.",
    ),
    (
        "portal_policy_too_short",
        "The password must be at least 8 characters long.",
    ),
    (
        "portal_policy_too_long",
        "The password must be at most 128 characters long.",
    ),
    (
        "portal_policy_no_upper",
        "The password must contain an upper-case letter.",
    ),
    (
        "portal_policy_no_lower",
        "The password must contain a lower-case letter.",
    ),
    ("portal_policy_no_digit", "The password must contain a digit."),
    (
        "portal_policy_no_special",
        "The password must contain a special character.",
    ),
    (
        "portal_policy_repeated",
        "The password must not repeat a character more than twice in a row.",
    ),
    ("portal_wrong_puk", "Wrong PUK. Attempts left:"),
    (
        "portal_pin_blocked",
        "Wrong PIN: the PIN is now blocked. Unblock it with the PUK.",
    ),
    (
        "portal_puk_blocked",
        "Too many wrong PUKs: the certificate is blocked. Contact the operator.",
    ),
    ("portal_puk_format", "The PUK is 8 digits."),
    ("portal_pin_format", "The PIN must be 8 digits."),
    (
        "portal_pin_same",
        "The new PIN must differ from the current one.",
    ),
    (
        "portal_wrong_state",
        "This operation is not possible in the certificate's current state.",
    ),
    ("portal_cert_expired", "The certificate has expired."),
    (
        "portal_bad_phone",
        "Invalid phone number: + followed by 8 to 15 digits (e.g. +393331234567).",
    ),
    (
        "portal_nothing_pending",
        "No device change in progress (or it expired): start again.",
    ),
    (
        "portal_new_device_code",
        "The code from the new device is wrong.",
    ),
];
