//! The sealed envelope read by programs that are not ours: qpdf decrypts and checks it, pypdf
//! decrypts it and extracts the letter's text, and, the other way round, sigillo's algorithm
//! 2.B validates the password of a file that qpdf encrypted and recovers qpdf's file key. No
//! gateway is needed: these run the external tools (qpdf from apt, pypdf in the test venv).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sigillo::envelope::{self, crypt, EnvelopeError, Letter, Lock};
use sigillo::mail::Locale;

use crate::support::{env, random_suffix};

const PASSPHRASE: &str = "ventitré gatti sul tetto";
const PUK: &str = "58204716";
const CODE: &str = "H4TR-9KXM-2QWF-7CBN";
const SERIAL: &str = "1B7E44C0A9D2F35581C3";

fn dir() -> PathBuf {
    let dir = PathBuf::from(env("SIGILLO_TEST_TMP")).join(format!("envelope-{}", random_suffix()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn letter(locale: Locale) -> Letter {
    Letter {
        locale,
        given_name: "Lucrezia".into(),
        surname: "Càrdenas Niccolò".into(),
        user_id: "lucrezia.cardenas".into(),
        credential_id: "a8f1d2c4-5b6e-4f70-8a91-b2c3d4e5f607".into(),
        serial_number: SERIAL.into(),
        puk: PUK.into(),
        emergency_code: CODE.into(),
        issued_on: time::macros::date!(2026 - 12 - 02),
    }
}

/// An envelope written to `dir`/`name`.
fn sealed(dir: &Path, name: &str, locale: Locale) -> PathBuf {
    let lock = Lock::from_passphrase(PASSPHRASE).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, envelope::seal(&lock, &letter(locale)).unwrap()).unwrap();
    path
}

fn qpdf(args: &[&str]) -> Output {
    Command::new("qpdf")
        .args(args)
        .output()
        .expect("qpdf runs (installed by scripts/lib.sh sigillo_install_deps)")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[test]
fn qpdf_decrypts_and_checks_the_envelope() {
    let dir = dir();
    for (locale, title) in [
        (Locale::It, "Busta cifrata"),
        (Locale::En, "Sealed envelope"),
    ] {
        let pdf = sealed(&dir, &format!("{}.pdf", locale.as_str()), locale);
        let pdf = pdf.to_str().unwrap();
        let password = format!("--password={PASSPHRASE}");

        let check = qpdf(&[&password, "--check", pdf]);
        let said = text(&check);
        eprintln!("qpdf --check: {said}");
        assert!(check.status.success(), "qpdf --check failed: {said}");
        assert!(said.contains("PDF Version: 2.0"), "{said}");
        assert!(
            said.contains("No syntax or stream encoding errors found"),
            "{said}"
        );
        assert!(!said.contains("WARNING"), "{said}");

        let plain = dir.join(format!("{}-plain.pdf", locale.as_str()));
        let decrypt = qpdf(&[
            &password,
            "--decrypt",
            "--qdf",
            "--object-streams=disable",
            pdf,
            plain.to_str().unwrap(),
        ]);
        assert!(
            decrypt.status.success(),
            "qpdf --decrypt: {}",
            text(&decrypt)
        );
        let plain = std::fs::read(&plain).unwrap();
        for value in [PUK, CODE, SERIAL, title] {
            assert!(contains(&plain, value), "{value} not in the decrypted file");
        }
        // And nothing of it in the encrypted one.
        let sealed = std::fs::read(pdf).unwrap();
        for value in [PUK, CODE, SERIAL, title] {
            assert!(!contains(&sealed, value), "{value} in the clear");
        }
    }
}

#[test]
fn qpdf_refuses_a_wrong_passphrase() {
    let dir = dir();
    let pdf = sealed(&dir, "it.pdf", Locale::It);
    let out = dir.join("out.pdf");
    for wrong in ["ventitre gatti sul tetto", "", "VENTITRÉ GATTI SUL TETTO"] {
        let decrypt = qpdf(&[
            &format!("--password={wrong}"),
            "--decrypt",
            pdf.to_str().unwrap(),
            out.to_str().unwrap(),
        ]);
        let said = text(&decrypt);
        assert!(!decrypt.status.success(), "{wrong:?} opened it: {said}");
        assert!(said.contains("invalid password"), "{said}");
    }
}

#[test]
fn qpdf_shows_aes_256_revision_6_and_the_permissions() {
    let dir = dir();
    let pdf = sealed(&dir, "it.pdf", Locale::It);
    let show = qpdf(&[
        &format!("--password={PASSPHRASE}"),
        "--show-encryption",
        pdf.to_str().unwrap(),
    ]);
    let said = text(&show);
    eprintln!("qpdf --show-encryption: {said}");
    assert!(show.status.success(), "{said}");
    for line in [
        "R = 6",
        "P = -1340",
        "Supplied password is user password",
        "stream encryption method: AESv3",
        "string encryption method: AESv3",
        "file encryption method: AESv3",
        "print low resolution: allowed",
        "print high resolution: allowed",
        "extract for any purpose: not allowed",
        "modify anything: not allowed",
        "modify annotations: not allowed",
        "modify forms: not allowed",
        "modify document assembly: not allowed",
    ] {
        assert!(
            said.lines().any(|l| l.trim() == line),
            "no {line:?} in: {said}"
        );
    }
}

#[test]
fn pypdf_decrypts_the_envelope_and_extracts_the_codes() {
    let dir = dir();
    for locale in [Locale::It, Locale::En] {
        let pdf = sealed(&dir, &format!("{}.pdf", locale.as_str()), locale);
        let script = r#"
import sys, pypdf
reader = pypdf.PdfReader(sys.argv[1])
assert reader.is_encrypted
result = reader.decrypt(sys.argv[2])
print("DECRYPT", int(result))
if int(result) == 0:
    sys.exit(3)
print("PAGES", len(reader.pages))
box = reader.pages[0].mediabox
print("MEDIABOX", round(float(box.width)), round(float(box.height)))
print(reader.pages[0].extract_text())
"#;
        let out = Command::new(env("SIGILLO_TEST_PYTHON"))
            .args(["-c", script])
            .arg(&pdf)
            .arg(PASSPHRASE)
            .output()
            .expect("the test venv's python (SIGILLO_TEST_PYTHON) runs");
        let said = text(&out);
        eprintln!("pypdf: {said}");
        assert!(out.status.success(), "pypdf: {said}");
        assert!(said.contains("DECRYPT 1"), "the user password: {said}");
        assert!(said.contains("PAGES 1"), "{said}");
        assert!(said.contains("MEDIABOX 595 842"), "one A4 page: {said}");
        for value in [PUK, CODE, SERIAL, "lucrezia.cardenas", "Càrdenas Niccolò"] {
            assert!(said.contains(value), "{value} not extracted: {said}");
        }
        let (instructions, date) = match locale {
            Locale::It => ("/portal/emergency", "2 dicembre 2026"),
            Locale::En => ("/portal/emergency", "2 December 2026"),
        };
        assert!(said.contains(instructions) && said.contains(date), "{said}");
        if locale == Locale::It {
            assert!(said.contains("chiederà"), "accents extracted: {said}");
        }

        // A wrong passphrase: pypdf's decrypt says NOT_DECRYPTED (0).
        let wrong = Command::new(env("SIGILLO_TEST_PYTHON"))
            .args(["-c", script])
            .arg(&pdf)
            .arg("ventitré gatti sul tetti")
            .output()
            .unwrap();
        assert_eq!(wrong.status.code(), Some(3), "pypdf: {}", text(&wrong));
    }
}

/// The standard's hash, not only a self-consistent one: qpdf encrypts a file (AES-256, R 6)
/// with a user and an owner password; sigillo's algorithm 2.B accepts qpdf's user password
/// against qpdf's /U, refuses another, recovers from /UE the very key qpdf reports, checks
/// /Perms with it, and recomputes the owner hash in /O (the 2.B variant with U as extra data).
#[test]
fn sigillo_validates_a_password_of_a_file_qpdf_encrypted() {
    let dir = dir();
    let user = "utente-è-qui";
    let owner = "proprietario";
    let pdf = dir.join("by-qpdf.pdf");
    let made = qpdf(&[
        "--empty",
        "--encrypt",
        user,
        owner,
        "256",
        "--",
        pdf.to_str().unwrap(),
    ]);
    assert!(made.status.success(), "qpdf --encrypt: {}", text(&made));

    let show = qpdf(&[
        &format!("--password={user}"),
        "--show-encryption-key",
        "--show-encryption",
        pdf.to_str().unwrap(),
    ]);
    let said = text(&show);
    assert!(said.contains("R = 6"), "{said}");
    let qpdf_key = said
        .lines()
        .find_map(|l| l.trim().strip_prefix("Encryption key = "))
        .map(|k| hex::decode(k.trim()).unwrap())
        .unwrap_or_else(|| panic!("no key in: {said}"));

    // The dictionary's entries, read by pypdf (without decrypting).
    let script = r#"
import sys, pypdf
e = pypdf.PdfReader(sys.argv[1]).trailer["/Encrypt"].get_object()
def raw(v):
    return bytes(getattr(v, "original_bytes", v)).hex()
for k in ("/U", "/UE", "/O", "/OE", "/Perms"):
    print(k[1:], raw(e[k]))
print("P", int(e["/P"]))
"#;
    let out = Command::new(env("SIGILLO_TEST_PYTHON"))
        .args(["-c", script])
        .arg(&pdf)
        .output()
        .unwrap();
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    let entry = |name: &str| -> String {
        said.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no {name} in {said}"))
            .to_owned()
    };
    let bytes = |name: &str| hex::decode(entry(name)).unwrap();
    let (u, ue, o, perms) = (bytes("U"), bytes("UE"), bytes("O"), bytes("Perms"));
    let p: i32 = entry("P").parse().unwrap();

    let key = crypt::unlock(crypt::password_bytes(user), &u, &ue).unwrap();
    assert_eq!(*key, qpdf_key, "the key from /UE is qpdf's file key");
    crypt::check_perms(&key, &perms, p).unwrap();
    assert!(matches!(
        crypt::unlock(crypt::password_bytes("utente-e-qui"), &u, &ue),
        Err(EnvelopeError::WrongPassphrase)
    ));
    assert!(matches!(
        crypt::unlock(crypt::password_bytes(owner), &u, &ue),
        Err(EnvelopeError::WrongPassphrase)
    ));
    let owner_hash = crypt::hash_2b(owner.as_bytes(), &o[32..40], &u).unwrap();
    assert_eq!(
        &owner_hash[..],
        &o[..32],
        "the owner entry of 2.B with U as extra data"
    );
}
