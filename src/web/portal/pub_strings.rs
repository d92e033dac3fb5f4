//! The strings of the portal pages reached without signing in (emergency suspension, password
//! recovery) and of the signing history, the expiry notices and the renewal, Italian and
//! English, with the same keys (all `portal_`; `web::i18n` serves them beside the others, and
//! its test keeps the tables alike and every key unique).

/// Italian.
pub const IT: &[(&str, &str)] = &[
    ("portal_more", "Altre pagine"),
    // Emergency suspension
    ("portal_emergency_title", "Sospensione di emergenza"),
    (
        "portal_emergency_intro",
        "Hai perso il telefono o temi che qualcuno usi i tuoi certificati? Con il codice utente e il codice di emergenza della busta cifrata sospendi subito tutti i tuoi certificati di firma, senza accedere.",
    ),
    ("portal_emergency_code", "Codice di emergenza"),
    (
        "portal_emergency_code_hint",
        "12 caratteri, come nella busta cifrata (ad esempio 7KQ2-MX9D-4TRA); maiuscole, minuscole e trattini non contano.",
    ),
    ("portal_emergency_submit", "Sospendi tutti i miei certificati"),
    (
        "portal_emergency_refused",
        "Codice utente o codice di emergenza non corretti.",
    ),
    (
        "portal_emergency_done",
        "Fatto: i tuoi certificati di firma sono sospesi e nessuno può firmare con essi. Ti abbiamo inviato un'e-mail di conferma.",
    ),
    ("portal_emergency_count", "Certificati sospesi ora"),
    (
        "portal_emergency_resume",
        "Per riattivarli accedi al portale con il PUK della busta cifrata e un nuovo dispositivo OTP, oppure rivolgiti al tuo operatore.",
    ),
    // Password recovery
    ("portal_recovery_title", "Non riesco ad accedere"),
    (
        "portal_recovery_intro",
        "Indica il tuo codice utente: ti invieremo per e-mail un link, valido pochi minuti e una sola volta, per scegliere una nuova password.",
    ),
    ("portal_recovery_send", "Inviami il link"),
    (
        "portal_recovery_asked",
        "Se il codice utente è registrato, ti abbiamo inviato un'e-mail con il link. Controlla la tua casella di posta.",
    ),
    ("portal_recovery_link_title", "Scegli una nuova password"),
    (
        "portal_recovery_link_intro",
        "Conferma con il codice OTP e scegli la nuova password. Dopo il cambio ogni sessione aperta termina.",
    ),
    ("portal_recovery_new_password", "Nuova password"),
    ("portal_recovery_new_password_again", "Ripeti la nuova password"),
    (
        "portal_recovery_rules",
        "Da 8 a 128 caratteri, con almeno una maiuscola, una minuscola, una cifra e un carattere speciale; nessun carattere ripetuto più di due volte di seguito.",
    ),
    ("portal_recovery_change", "Cambia la password"),
    (
        "portal_recovery_done",
        "Password cambiata. Ogni sessione aperta è terminata: accedi con la nuova password.",
    ),
    ("portal_recovery_sign_in", "Vai all'accesso"),
    (
        "portal_recovery_invalid_link",
        "Il link non è valido, è già stato usato o è scaduto: chiedine uno nuovo qui sotto.",
    ),
    (
        "portal_recovery_wrong_otp",
        "Codice OTP non corretto o scaduto. Per sicurezza il link non vale più: chiedine uno nuovo qui sotto.",
    ),
    ("portal_recovery_mismatch", "Le due password non coincidono."),
    ("portal_recovery_otp_required", "Inserisci il codice OTP."),
    // Signing history
    ("portal_history_title", "Cronologia delle firme"),
    ("portal_history_total", "Firme fatte con questo certificato"),
    ("portal_history_none", "Nessuna firma finora."),
    ("portal_history_when", "Quando"),
    ("portal_history_count", "Firme"),
    ("portal_history_client", "Applicazione"),
    ("portal_history_addr", "Indirizzo di rete"),
    ("portal_history_unknown", "non indicato"),
    ("portal_history_pages", "Pagine della cronologia"),
    ("portal_history_older", "Firme precedenti"),
    ("portal_history_newest", "Le più recenti"),
    // Expiry notices
    ("portal_notices_title", "Avvisi di scadenza"),
    (
        "portal_notices_intro",
        "Gli avvisi che ti abbiamo mandato prima della scadenza dei tuoi certificati.",
    ),
    ("portal_notices_none", "Nessun avviso finora."),
    ("portal_notices_due", "Data dell'avviso"),
    ("portal_notices_channel", "Inviato via"),
    ("portal_notices_text", "Testo"),
    ("portal_notices_sms", "SMS"),
    ("portal_notices_email", "e-mail"),
    ("portal_notices_link", "Avvisi di scadenza"),
    // Renewal
    ("portal_renew_title", "Rinnova il certificato"),
    (
        "portal_renew_intro",
        "Il nuovo certificato usa la stessa chiave e vale 3 anni dalla scadenza attuale. Controlla i tuoi dati, poi indica il coupon di rinnovo, il PIN e il codice OTP.",
    ),
    ("portal_renew_identity", "I dati che il nuovo certificato riporterà"),
    ("portal_renew_given_name", "Nome"),
    ("portal_renew_surname", "Cognome"),
    ("portal_renew_fiscal_code", "Codice fiscale"),
    ("portal_renew_confirm", "Confermo che i miei dati sono corretti"),
    ("portal_renew_coupon", "Coupon di rinnovo"),
    (
        "portal_renew_coupon_hint",
        "Il codice monouso che hai ricevuto con l'acquisto del rinnovo.",
    ),
    ("portal_renew_submit", "Rinnova"),
    ("portal_renew_done", "Certificato rinnovato."),
    ("portal_renew_new_expiry", "Nuova scadenza"),
    (
        "portal_renew_confirm_required",
        "Conferma i tuoi dati spuntando la casella «Confermo».",
    ),
    (
        "portal_renew_not_in_window",
        "Il certificato non si può ancora rinnovare: il rinnovo si apre negli ultimi giorni prima della scadenza.",
    ),
    ("portal_renew_already", "Il certificato è già stato rinnovato."),
    (
        "portal_renew_invalid_coupon",
        "Il coupon non è valido o è già stato usato.",
    ),
];

/// English.
pub const EN: &[(&str, &str)] = &[
    ("portal_more", "More pages"),
    // Emergency suspension
    ("portal_emergency_title", "Emergency suspension"),
    (
        "portal_emergency_intro",
        "Lost your phone, or afraid someone is using your certificates? With your user ID and the emergency code from the sealed envelope you suspend all your signing certificates at once, without signing in.",
    ),
    ("portal_emergency_code", "Emergency code"),
    (
        "portal_emergency_code_hint",
        "12 characters, as in the sealed envelope (for example 7KQ2-MX9D-4TRA); case and dashes do not matter.",
    ),
    ("portal_emergency_submit", "Suspend all my certificates"),
    ("portal_emergency_refused", "Wrong user ID or emergency code."),
    (
        "portal_emergency_done",
        "Done: your signing certificates are suspended and nobody can sign with them. We sent you a confirmation e-mail.",
    ),
    ("portal_emergency_count", "Certificates suspended now"),
    (
        "portal_emergency_resume",
        "To resume them, sign in to the portal with the PUK from the sealed envelope and a new OTP device, or contact your operator.",
    ),
    // Password recovery
    ("portal_recovery_title", "I can't sign in"),
    (
        "portal_recovery_intro",
        "Enter your user ID: we will e-mail you a link, valid for a few minutes and once only, to choose a new password.",
    ),
    ("portal_recovery_send", "Send me the link"),
    (
        "portal_recovery_asked",
        "If the user ID is registered, we sent it an e-mail with the link. Check your mailbox.",
    ),
    ("portal_recovery_link_title", "Choose a new password"),
    (
        "portal_recovery_link_intro",
        "Confirm with your OTP code and choose the new password. Once it is changed, every open session ends.",
    ),
    ("portal_recovery_new_password", "New password"),
    ("portal_recovery_new_password_again", "New password again"),
    (
        "portal_recovery_rules",
        "8 to 128 characters, with at least one upper-case letter, one lower-case letter, one digit and one special character; no character more than twice in a row.",
    ),
    ("portal_recovery_change", "Change the password"),
    (
        "portal_recovery_done",
        "Password changed. Every open session has ended: sign in with the new password.",
    ),
    ("portal_recovery_sign_in", "Go to sign-in"),
    (
        "portal_recovery_invalid_link",
        "The link is not valid, was already used or has expired: ask for a new one below.",
    ),
    (
        "portal_recovery_wrong_otp",
        "Wrong or expired OTP code. For your safety the link no longer works: ask for a new one below.",
    ),
    ("portal_recovery_mismatch", "The two passwords differ."),
    ("portal_recovery_otp_required", "Enter the OTP code."),
    // Signing history
    ("portal_history_title", "Signing history"),
    ("portal_history_total", "Signatures made with this certificate"),
    ("portal_history_none", "No signatures yet."),
    ("portal_history_when", "When"),
    ("portal_history_count", "Signatures"),
    ("portal_history_client", "Application"),
    ("portal_history_addr", "Network address"),
    ("portal_history_unknown", "not given"),
    ("portal_history_pages", "History pages"),
    ("portal_history_older", "Older signatures"),
    ("portal_history_newest", "Newest"),
    // Expiry notices
    ("portal_notices_title", "Expiry notices"),
    (
        "portal_notices_intro",
        "The notices we sent you before your certificates expire.",
    ),
    ("portal_notices_none", "No notices yet."),
    ("portal_notices_due", "Date of the notice"),
    ("portal_notices_channel", "Sent by"),
    ("portal_notices_text", "Text"),
    ("portal_notices_sms", "SMS"),
    ("portal_notices_email", "e-mail"),
    ("portal_notices_link", "Expiry notices"),
    // Renewal
    ("portal_renew_title", "Renew the certificate"),
    (
        "portal_renew_intro",
        "The new certificate keeps the same key and is valid for 3 years from the current expiry. Check your data, then enter the renewal coupon, the PIN and the OTP code.",
    ),
    ("portal_renew_identity", "The data the new certificate will carry"),
    ("portal_renew_given_name", "Given name"),
    ("portal_renew_surname", "Surname"),
    ("portal_renew_fiscal_code", "Fiscal code"),
    ("portal_renew_confirm", "I confirm that my data is correct"),
    ("portal_renew_coupon", "Renewal coupon"),
    (
        "portal_renew_coupon_hint",
        "The single-use code you received when you bought the renewal.",
    ),
    ("portal_renew_submit", "Renew"),
    ("portal_renew_done", "Certificate renewed."),
    ("portal_renew_new_expiry", "New expiry date"),
    (
        "portal_renew_confirm_required",
        "Confirm your data by ticking the “I confirm” box.",
    ),
    (
        "portal_renew_not_in_window",
        "The certificate cannot be renewed yet: renewal opens in the last days before it expires.",
    ),
    ("portal_renew_already", "The certificate was already renewed."),
    (
        "portal_renew_invalid_coupon",
        "The coupon is not valid or was already used.",
    ),
];
