//! The mail templates, built into the binary: one per kind and language, a `Subject:` line,
//! an empty line, then the body, with `{{name}}` placeholders. The substitution is plain text
//! (the messages are text/plain): a value is inserted as it is, never interpreted again.

use super::MailError;

/// The language of a subscriber's messages (`users.locale`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Locale {
    It,
    En,
}

impl Locale {
    pub fn as_str(self) -> &'static str {
        match self {
            Locale::It => "it",
            Locale::En => "en",
        }
    }

    /// The stored value; anything unknown falls back to Italian (the column's default).
    pub fn from_db(value: &str) -> Locale {
        match value {
            "en" => Locale::En,
            _ => Locale::It,
        }
    }
}

macro_rules! templates {
    ($($kind:literal),* $(,)?) => {
        /// (kind, Italian, English).
        const TEMPLATES: &[(&str, &str, &str)] = &[
            $((
                $kind,
                include_str!(concat!("../../templates/mail/it/", $kind, ".txt")),
                include_str!(concat!("../../templates/mail/en/", $kind, ".txt")),
            )),*
        ];
    };
}

templates!(
    "expiry_notice",
    "pin_changed",
    "pin_unblocked",
    "credential_suspended",
    "credential_resumed",
    "credential_revoked",
    "envelope",
    "emergency_suspension",
    "password_recovery",
    "password_changed",
    "setup_link",
);

/// A rendered message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub body: String,
}

/// Renders template `kind` in `locale` with `values`; every placeholder must get a value.
pub fn render(
    kind: &'static str,
    locale: Locale,
    values: &[(&str, String)],
) -> Result<Rendered, MailError> {
    let fail = |reason: String| MailError::Template {
        kind,
        locale: locale.as_str(),
        reason,
    };
    let source = TEMPLATES
        .iter()
        .find(|(k, _, _)| *k == kind)
        .map(|(_, it, en)| match locale {
            Locale::It => *it,
            Locale::En => *en,
        })
        .ok_or_else(|| fail("no such template".into()))?;
    let text = substitute(source, values).map_err(fail)?;
    let (head, body) = text
        .split_once("\n\n")
        .ok_or_else(|| fail("no empty line after the subject".into()))?;
    let subject = head
        .strip_prefix("Subject: ")
        .filter(|s| !s.contains('\n') && !s.trim().is_empty())
        .ok_or_else(|| fail("the first line must be \"Subject: ...\"".into()))?;
    Ok(Rendered {
        subject: subject.trim().to_owned(),
        body: body.to_owned(),
    })
}

/// One pass over `source`: each `{{name}}` becomes its value (values are not scanned again).
fn substitute(source: &str, values: &[(&str, String)]) -> Result<String, String> {
    let mut out = String::with_capacity(source.len() + 64);
    let mut rest = source;
    while let Some(start) = rest.find("{{") {
        out.push_str(rest.get(..start).unwrap_or_default());
        let after = rest.get(start + 2..).unwrap_or_default();
        let end = after
            .find("}}")
            .ok_or_else(|| "an unclosed {{".to_owned())?;
        let name = after.get(..end).unwrap_or_default().trim();
        let value = values
            .iter()
            .find(|(n, _)| *n == name)
            .ok_or_else(|| format!("no value for {{{{{name}}}}}"))?;
        out.push_str(&value.1);
        rest = after.get(end + 2..).unwrap_or_default();
    }
    out.push_str(rest);
    Ok(out)
}

/// Every template kind (for the tests).
pub fn kinds() -> impl Iterator<Item = &'static str> {
    TEMPLATES.iter().map(|(k, _, _)| *k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_replaced_once_and_missing_ones_refused() {
        let values = [("a", "{{b}}".to_owned()), ("b", "x".to_owned())];
        assert_eq!(
            substitute("1 {{a}} 2 {{ b }}", &values).unwrap(),
            "1 {{b}} 2 x"
        );
        assert!(substitute("{{c}}", &values).is_err());
        assert!(substitute("{{a", &values).is_err());
    }

    #[test]
    fn an_unknown_kind_is_an_error() {
        assert!(matches!(
            render("nope", Locale::It, &[]),
            Err(MailError::Template { kind: "nope", .. })
        ));
    }

    #[test]
    fn locales_round_trip_and_default_to_italian() {
        assert_eq!(Locale::from_db("en"), Locale::En);
        assert_eq!(Locale::from_db("it"), Locale::It);
        assert_eq!(Locale::from_db("xx"), Locale::It);
    }
}
