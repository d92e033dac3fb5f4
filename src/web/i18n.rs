//! Languages of the pages: Italian (the default) and English, chosen by `?lang=` (or the
//! hidden `lang` of a form), else by the browser's `Accept-Language`. Every string of every
//! page is in the two tables below, one per language, with the same keys.

use std::collections::BTreeMap;

use actix_web::http::header;
use actix_web::HttpRequest;

/// A language of the pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    It,
    En,
}

impl Lang {
    /// `it` or `en`.
    pub fn code(self) -> &'static str {
        match self {
            Lang::It => "it",
            Lang::En => "en",
        }
    }

    /// `it`/`en` (any case, with or without a region); anything else is `None`.
    pub fn parse(tag: &str) -> Option<Lang> {
        let primary = tag.trim().split(['-', '_']).next()?.to_ascii_lowercase();
        match primary.as_str() {
            "it" => Some(Lang::It),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    /// The language asked for explicitly (`explicit`: a `lang` parameter), else the first of
    /// `Accept-Language` (by quality, then order) that the pages speak, else Italian.
    pub fn negotiate(req: &HttpRequest, explicit: Option<&str>) -> Lang {
        if let Some(lang) = explicit.and_then(Lang::parse) {
            return lang;
        }
        let accept = req
            .headers()
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        Lang::from_accept_language(accept)
    }

    /// The best language of an `Accept-Language` value (RFC 9110 §12.5.4), Italian if none.
    pub fn from_accept_language(value: &str) -> Lang {
        let mut best: Option<(u16, Lang)> = None;
        for item in value.split(',').take(32) {
            let mut parts = item.split(';');
            let Some(lang) = parts.next().and_then(Lang::parse) else {
                continue;
            };
            let quality = parts
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.trim().parse::<f32>().ok())
                .map_or(1000, |q| (q.clamp(0.0, 1.0) * 1000.0) as u16);
            if quality > 0 && best.is_none_or(|(q, _)| quality > q) {
                best = Some((quality, lang));
            }
        }
        best.map_or(Lang::It, |(_, lang)| lang)
    }

    /// Every string of the pages in this language, by key.
    pub fn strings(self) -> BTreeMap<&'static str, &'static str> {
        let table = match self {
            Lang::It => IT,
            Lang::En => EN,
        };
        table.iter().copied().collect()
    }

    /// One string; the key itself when it is missing (a test keeps the tables complete).
    pub fn text(self, key: &str) -> &'static str {
        let table = match self {
            Lang::It => IT,
            Lang::En => EN,
        };
        table
            .iter()
            .find(|(k, _)| *k == key)
            .map_or("?", |(_, v)| v)
    }
}

/// Italian.
const IT: &[(&str, &str)] = &[
    ("service_name", "sigillo — firma remota"),
    ("skip", "Vai al contenuto"),
    ("other_lang", "English"),
    ("login_title", "Accedi"),
    ("login_intro", "chiede di accedere ai tuoi certificati di firma."),
    ("user_id", "Codice utente"),
    ("password", "Password"),
    ("sign_in", "Accedi"),
    ("cancel", "Annulla"),
    ("wrong_login", "Codice utente o password non corretti."),
    ("too_many", "Troppi tentativi: riprova tra qualche minuto."),
    ("busy", "Il servizio è occupato: riprova tra qualche secondo."),
    ("consent_title", "Autorizza la firma"),
    ("consent_intro", "chiede di firmare con il tuo certificato."),
    ("signed_in_as", "Accesso come"),
    ("not_you", "Non sei tu? Accedi con un altro utente"),
    ("credential", "Certificato"),
    ("num_signatures", "Numero di firme"),
    ("documents", "Documenti"),
    ("hashes", "Impronte da firmare"),
    ("no_labels", "(nessun nome di documento indicato)"),
    ("pin", "PIN di firma"),
    ("pin_hint", "8 cifre"),
    ("otp", "Codice OTP"),
    ("otp_hint_sms", "Il codice a 6 cifre ricevuto via SMS."),
    ("otp_hint_totp", "Il codice a 6 cifre della tua app di autenticazione."),
    ("send_sms", "Inviami un SMS"),
    ("sms_sent", "Ti abbiamo inviato un SMS con il codice."),
    ("authorize", "Autorizza"),
    ("wrong_pin", "PIN non corretto. Tentativi rimasti:"),
    ("pin_blocked", "PIN bloccato: sbloccalo con il PUK dal portale."),
    ("wrong_otp", "Codice OTP non corretto o scaduto."),
    ("otp_limit", "Troppi SMS richiesti: riprova più tardi."),
    ("cannot_sign", "Questo certificato non può firmare ora (non attivo, sospeso o scaduto)."),
    ("unknown_credential", "Certificato sconosciuto."),
    ("error_title", "Richiesta non valida"),
    ("error_expired", "La richiesta è scaduta o non è valida. Torna all'applicazione e riprova."),
    ("error_client", "L'applicazione che ti ha mandato qui non è registrata o ha indicato un indirizzo di ritorno non valido."),
    ("error_csrf", "Il modulo è scaduto. Torna all'applicazione e riprova."),
    ("error_server", "Si è verificato un errore. Riprova più tardi."),
    ("setup_title", "Attiva il servizio di firma"),
    ("setup_intro", "Scegli la password con cui accederai al portale e la passphrase che aprirà la busta cifrata con il PUK e il codice di emergenza. Nessuno, neanche l'operatore, le conoscerà."),
    ("setup_password_legend", "Password di accesso"),
    ("setup_password", "Nuova password"),
    ("setup_password_again", "Ripeti la password"),
    ("setup_policy_intro", "La password deve rispettare queste regole:"),
    ("setup_rule_min_length", "almeno 8 caratteri"),
    ("setup_rule_max_length", "al massimo 128 caratteri"),
    ("setup_rule_upper", "una lettera maiuscola"),
    ("setup_rule_lower", "una lettera minuscola"),
    ("setup_rule_digit", "una cifra"),
    ("setup_rule_special", "un carattere speciale (ad esempio ! - _ ?)"),
    ("setup_rule_no_triple", "nessun carattere ripetuto più di due volte di fila"),
    ("setup_rule_ok", "rispettata"),
    ("setup_rule_ko", "non ancora rispettata"),
    ("setup_passphrase_legend", "Passphrase della busta cifrata"),
    ("setup_passphrase_hint", "Da 12 a 128 caratteri, diversa dalla password. Ti servirà per aprire il PDF che riceverai per e-mail: annotala in un luogo sicuro, non può essere recuperata."),
    ("setup_passphrase", "Passphrase"),
    ("setup_passphrase_again", "Ripeti la passphrase"),
    ("setup_submit", "Attiva"),
    ("setup_done", "Fatto: la password e la passphrase sono impostate. Le buste cifrate delle tue credenziali arriveranno per e-mail."),
    ("setup_sign_in", "Accedi al portale"),
    ("setup_invalid_link", "Il link non è valido, è scaduto o è già stato usato. Chiedi all'operatore di inviartene uno nuovo."),
    ("setup_passwords_differ", "Le due password non coincidono."),
    ("setup_passphrases_differ", "Le due passphrase non coincidono."),
    ("setup_passphrase_rules", "La passphrase deve avere da 12 a 128 caratteri ed essere diversa dalla password."),
    ("setup_rule_broken_min_length", "La password deve avere almeno 8 caratteri."),
    ("setup_rule_broken_max_length", "La password deve avere al massimo 128 caratteri."),
    ("setup_rule_broken_upper", "La password deve contenere una lettera maiuscola."),
    ("setup_rule_broken_lower", "La password deve contenere una lettera minuscola."),
    ("setup_rule_broken_digit", "La password deve contenere una cifra."),
    ("setup_rule_broken_special", "La password deve contenere un carattere speciale."),
    ("setup_rule_broken_no_triple", "La password non deve ripetere un carattere più di due volte di fila."),
];

/// English.
const EN: &[(&str, &str)] = &[
    ("service_name", "sigillo — remote signing"),
    ("skip", "Skip to content"),
    ("other_lang", "Italiano"),
    ("login_title", "Sign in"),
    ("login_intro", "asks to access your signing certificates."),
    ("user_id", "User ID"),
    ("password", "Password"),
    ("sign_in", "Sign in"),
    ("cancel", "Cancel"),
    ("wrong_login", "Wrong user ID or password."),
    ("too_many", "Too many attempts: try again in a few minutes."),
    ("busy", "The service is busy: try again in a few seconds."),
    ("consent_title", "Authorise signing"),
    ("consent_intro", "asks to sign with your certificate."),
    ("signed_in_as", "Signed in as"),
    ("not_you", "Not you? Sign in as someone else"),
    ("credential", "Certificate"),
    ("num_signatures", "Number of signatures"),
    ("documents", "Documents"),
    ("hashes", "Digests to sign"),
    ("no_labels", "(no document names given)"),
    ("pin", "Signing PIN"),
    ("pin_hint", "8 digits"),
    ("otp", "OTP code"),
    ("otp_hint_sms", "The 6-digit code you received by SMS."),
    (
        "otp_hint_totp",
        "The 6-digit code of your authenticator app.",
    ),
    ("send_sms", "Send me an SMS"),
    ("sms_sent", "We sent you an SMS with the code."),
    ("authorize", "Authorise"),
    ("wrong_pin", "Wrong PIN. Attempts left:"),
    (
        "pin_blocked",
        "PIN blocked: unblock it with the PUK on the portal.",
    ),
    ("wrong_otp", "Wrong or expired OTP code."),
    ("otp_limit", "Too many SMS asked for: try again later."),
    (
        "cannot_sign",
        "This certificate cannot sign now (not active, suspended or expired).",
    ),
    ("unknown_credential", "Unknown certificate."),
    ("error_title", "Invalid request"),
    (
        "error_expired",
        "The request has expired or is not valid. Go back to the application and try again.",
    ),
    (
        "error_client",
        "The application that sent you here is not registered or gave an invalid return address.",
    ),
    (
        "error_csrf",
        "The form has expired. Go back to the application and try again.",
    ),
    ("error_server", "Something went wrong. Try again later."),
    ("setup_title", "Set up your signing service"),
    ("setup_intro", "Choose the password you will sign in to the portal with, and the passphrase that will open the sealed envelope holding your PUK and emergency code. Nobody, not even the operator, will know either."),
    ("setup_password_legend", "Sign-in password"),
    ("setup_password", "New password"),
    ("setup_password_again", "Repeat the password"),
    ("setup_policy_intro", "The password must keep these rules:"),
    ("setup_rule_min_length", "at least 8 characters"),
    ("setup_rule_max_length", "at most 128 characters"),
    ("setup_rule_upper", "an upper-case letter"),
    ("setup_rule_lower", "a lower-case letter"),
    ("setup_rule_digit", "a digit"),
    ("setup_rule_special", "a special character (such as ! - _ ?)"),
    ("setup_rule_no_triple", "no character more than twice in a row"),
    ("setup_rule_ok", "kept"),
    ("setup_rule_ko", "not kept yet"),
    ("setup_passphrase_legend", "Sealed envelope passphrase"),
    ("setup_passphrase_hint", "12 to 128 characters, not the password. You will need it to open the PDF you will receive by e-mail: keep it somewhere safe, it cannot be recovered."),
    ("setup_passphrase", "Passphrase"),
    ("setup_passphrase_again", "Repeat the passphrase"),
    ("setup_submit", "Set up"),
    ("setup_done", "Done: your password and passphrase are set. The sealed envelopes of your credentials will arrive by e-mail."),
    ("setup_sign_in", "Sign in to the portal"),
    ("setup_invalid_link", "This link is not valid, has expired or was already used. Ask the operator to send you a new one."),
    ("setup_passwords_differ", "The two passwords differ."),
    ("setup_passphrases_differ", "The two passphrases differ."),
    ("setup_passphrase_rules", "The passphrase must have 12 to 128 characters and differ from the password."),
    ("setup_rule_broken_min_length", "The password must have at least 8 characters."),
    ("setup_rule_broken_max_length", "The password must have at most 128 characters."),
    ("setup_rule_broken_upper", "The password must contain an upper-case letter."),
    ("setup_rule_broken_lower", "The password must contain a lower-case letter."),
    ("setup_rule_broken_digit", "The password must contain a digit."),
    ("setup_rule_broken_special", "The password must contain a special character."),
    ("setup_rule_broken_no_triple", "The password must not repeat a character more than twice in a row."),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_languages_have_the_same_keys() {
        let it: Vec<_> = Lang::It.strings().into_keys().collect();
        let en: Vec<_> = Lang::En.strings().into_keys().collect();
        assert_eq!(it, en);
        assert_eq!(it.len(), IT.len(), "no key twice");
        assert_eq!(en.len(), EN.len(), "no key twice");
    }

    #[test]
    fn accept_language_picks_the_best_spoken_language() {
        assert_eq!(Lang::from_accept_language(""), Lang::It);
        assert_eq!(Lang::from_accept_language("en-GB,en;q=0.9"), Lang::En);
        assert_eq!(
            Lang::from_accept_language("de-DE,en;q=0.5,it;q=0.8"),
            Lang::It
        );
        assert_eq!(Lang::from_accept_language("fr, EN-us;q=0.3"), Lang::En);
        assert_eq!(Lang::from_accept_language("en;q=0"), Lang::It);
        assert_eq!(Lang::parse("EN_us"), Some(Lang::En));
        assert_eq!(Lang::parse("de"), None);
    }
}
