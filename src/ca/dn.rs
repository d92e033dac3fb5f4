//! Distinguished names: building a subscriber's subject and printing names in RFC 4514 form.

use openssl::nid::Nid;
use openssl::x509::{X509Name, X509NameRef};

/// RFC 4514 string of `name` (most specific attribute first), with RFC 4514 escaping.
pub fn rfc4514(name: &X509NameRef) -> String {
    let mut parts: Vec<String> = name
        .entries()
        .map(|entry| {
            let nid = entry.object().nid();
            let key = match nid {
                Nid::COMMONNAME => "CN",
                Nid::COUNTRYNAME => "C",
                Nid::ORGANIZATIONNAME => "O",
                Nid::ORGANIZATIONALUNITNAME => "OU",
                Nid::GIVENNAME => "GN",
                Nid::SURNAME => "SN",
                Nid::SERIALNUMBER => "serialNumber",
                other => other.short_name().unwrap_or("UNKNOWN"),
            };
            let value = entry.data().to_string().unwrap_or_default();
            format!("{key}={}", escape(&value))
        })
        .collect();
    parts.reverse();
    parts.join(",")
}

fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && (c == '#' || c == ' '))
            || (i == last && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The subject of a subscriber certificate (ETSI EN 319 412-2 natural person).
pub struct Subject<'a> {
    pub given_name: &'a str,
    pub surname: &'a str,
    pub fiscal_code: &'a str,
    pub organization: Option<&'a str>,
    pub country: &'a str,
}

impl Subject<'_> {
    pub fn to_name(&self) -> Result<X509Name, openssl::error::ErrorStack> {
        let mut name = X509Name::builder()?;
        name.append_entry_by_nid(Nid::COUNTRYNAME, self.country)?;
        if let Some(org) = self.organization {
            name.append_entry_by_nid(Nid::ORGANIZATIONNAME, org)?;
        }
        name.append_entry_by_nid(Nid::SURNAME, self.surname)?;
        name.append_entry_by_nid(Nid::GIVENNAME, self.given_name)?;
        name.append_entry_by_nid(Nid::SERIALNUMBER, &format!("TINIT-{}", self.fiscal_code))?;
        name.append_entry_by_nid(
            Nid::COMMONNAME,
            &format!("{} {}", self.given_name, self.surname),
        )?;
        Ok(name.build())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_prints_in_rfc4514_order_with_escaping() {
        let subject = Subject {
            given_name: "Mario",
            surname: "Rossi, jr",
            fiscal_code: "RSSMRA80A01H501U",
            organization: None,
            country: "IT",
        };
        let dn = rfc4514(&subject.to_name().unwrap());
        assert_eq!(
            dn,
            "CN=Mario Rossi\\, jr,serialNumber=TINIT-RSSMRA80A01H501U,GN=Mario,SN=Rossi\\, jr,C=IT"
        );
    }
}
