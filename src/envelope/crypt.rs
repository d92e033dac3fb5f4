//! The standard security handler of ISO 32000-2 (PDF 2.0), revision 6: AES-256 with the file
//! encryption key used as it is for every string and stream (no per-object key), the
//! passphrase checked and the key unwrapped through the iterated hash of algorithm 2.B.
//!
//! Invariants: the file key and every intermediate hash live in `Zeroizing` buffers; the
//! owner password is random and forgotten once O and OE are computed, so nobody can use the
//! owner entries to lift the restrictions; every encrypted string or stream gets its own
//! random 16-byte IV.

use openssl::sha::{sha256, sha384, sha512};
use openssl::symm::{Cipher, Crypter, Mode};
use rand::RngCore;
use zeroize::Zeroizing;

use super::{EnvelopeError, LockPublic};

/// Passwords are cut to this many bytes of their UTF-8 form (ISO 32000-2, 7.6.4.3.3: "truncate
/// the UTF-8 representation to 127 bytes"). The spec also asks for SASLprep (RFC 4013) first;
/// we do not apply it: the passphrase is used as the subscriber typed it, and a reader that
/// normalises gets the same bytes for any passphrase already in normal form (the setup page
/// and API accept what the browser sends, which is NFC in practice).
pub const PASSWORD_MAX_BYTES: usize = 127;

/// The permissions of every envelope (the /P entry, a 32-bit signed integer): printing (bits 3
/// and 12) and extraction for accessibility (bit 10) allowed; modifying (4), copying (5),
/// annotating (6), filling forms (9) and assembling (11) not. Bits 7-8 and 13-32 are reserved
/// and must be 1, bits 1-2 must be 0.
pub const PERMISSIONS: i32 = {
    let reserved: u32 = 0xFFFF_F000 | (1 << 6) | (1 << 7);
    let allowed: u32 = (1 << 2) | (1 << 9) | (1 << 11);
    (reserved | allowed) as i32
};

const KEY_LEN: usize = 32;
const SALT_LEN: usize = 8;
/// U and O: 32-byte hash, 8-byte validation salt, 8-byte key salt.
const ENTRY_LEN: usize = KEY_LEN + 2 * SALT_LEN;
const BLOCK: usize = 16;

/// The password bytes the handler works on: UTF-8, at most 127 bytes (cut on a byte boundary,
/// as the standard does, even inside a character).
pub fn password_bytes(passphrase: &str) -> &[u8] {
    let bytes = passphrase.as_bytes();
    bytes.get(..PASSWORD_MAX_BYTES).unwrap_or(bytes)
}

/// Algorithm 2.B of ISO 32000-2 (7.6.4.3.4): the hash of `password` with `salt` and, for the
/// owner entries, the 48-byte U (`udata`; empty for the user entries).
pub fn hash_2b(
    password: &[u8],
    salt: &[u8],
    udata: &[u8],
) -> Result<Zeroizing<Vec<u8>>, EnvelopeError> {
    let mut first = Zeroizing::new(Vec::with_capacity(
        password.len() + salt.len() + udata.len(),
    ));
    first.extend_from_slice(password);
    first.extend_from_slice(salt);
    first.extend_from_slice(udata);
    let mut k = Zeroizing::new(sha256(&first).to_vec());
    let mut round: usize = 0;
    loop {
        // K1 = (password ‖ K ‖ udata) repeated 64 times; E = AES-128-CBC(K1), key K[0..16],
        // IV K[16..32], no padding (K1's length is a multiple of 16 because 64 is).
        let mut unit = Zeroizing::new(Vec::with_capacity(password.len() + k.len() + udata.len()));
        unit.extend_from_slice(password);
        unit.extend_from_slice(&k);
        unit.extend_from_slice(udata);
        let k1 = Zeroizing::new(unit.repeat(64));
        let key = k.get(..16).ok_or(EnvelopeError::Malformed("hash length"))?;
        let iv = k
            .get(16..32)
            .ok_or(EnvelopeError::Malformed("hash length"))?;
        let e = cipher(
            Cipher::aes_128_cbc(),
            Mode::Encrypt,
            key,
            Some(iv),
            &k1,
            false,
        )?;
        // The first 16 bytes of E as a big-endian number, modulo 3: since 256 ≡ 1 (mod 3),
        // that is the sum of the bytes modulo 3.
        let head = e.get(..16).ok_or(EnvelopeError::Malformed("hash length"))?;
        let selector = head.iter().map(|&b| u32::from(b)).sum::<u32>() % 3;
        k = Zeroizing::new(match selector {
            0 => sha256(&e).to_vec(),
            1 => sha384(&e).to_vec(),
            _ => sha512(&e).to_vec(),
        });
        round += 1;
        // At least 64 rounds; then go on while E's last byte exceeds (round number − 32).
        let last = usize::from(e.last().copied().unwrap_or(0));
        if round >= 64 && last + 32 <= round {
            break;
        }
    }
    k.truncate(KEY_LEN);
    Ok(k)
}

/// A new random file key and the dictionary entries for `passphrase` (user password) and a
/// random owner password that is dropped on return.
pub fn make_lock(passphrase: &str) -> Result<(Zeroizing<Vec<u8>>, LockPublic), EnvelopeError> {
    let mut file_key = Zeroizing::new(vec![0u8; KEY_LEN]);
    rand::rngs::OsRng.fill_bytes(&mut file_key);
    let user = password_bytes(passphrase);
    let (u, ue) = entry(user, &[], &file_key)?;
    // The owner password: 32 random bytes, never kept (nobody may lift the restrictions).
    let mut owner = Zeroizing::new([0u8; 32]);
    rand::rngs::OsRng.fill_bytes(owner.as_mut());
    let (o, oe) = entry(owner.as_ref(), &u, &file_key)?;
    let perms = perms(&file_key)?;
    Ok((
        file_key,
        LockPublic {
            u,
            ue,
            o,
            oe,
            perms,
        },
    ))
}

/// Algorithms 8 and 9: the 48-byte U (or O, with `udata` = U) and the 32-byte UE (or OE).
fn entry(
    password: &[u8],
    udata: &[u8],
    file_key: &[u8],
) -> Result<(Vec<u8>, Vec<u8>), EnvelopeError> {
    let mut salts = [0u8; 2 * SALT_LEN];
    rand::rngs::OsRng.fill_bytes(&mut salts);
    let (validation_salt, key_salt) = salts.split_at(SALT_LEN);
    let mut entry = hash_2b(password, validation_salt, udata)?.to_vec();
    entry.extend_from_slice(&salts);
    let wrapping = hash_2b(password, key_salt, udata)?;
    // AES-256 in CBC mode with a zero IV and no padding: the "no IV" wrap of the standard.
    let wrapped = cipher(
        Cipher::aes_256_cbc(),
        Mode::Encrypt,
        &wrapping,
        Some(&[0u8; BLOCK]),
        file_key,
        false,
    )?;
    Ok((entry, wrapped.to_vec()))
}

/// Algorithm 10: Perms, the permissions block (P little-endian, four 0xFF, 'T' for
/// EncryptMetadata true, "adb", four random bytes) encrypted with AES-256-ECB under the file key.
fn perms(file_key: &[u8]) -> Result<Vec<u8>, EnvelopeError> {
    let mut block = [0u8; BLOCK];
    let (head, tail) = block.split_at_mut(12);
    head.copy_from_slice(
        &[
            PERMISSIONS.to_le_bytes().as_slice(),
            &[0xFF; 4],
            b"T",
            b"adb",
        ]
        .concat(),
    );
    rand::rngs::OsRng.fill_bytes(tail);
    let out = cipher(
        Cipher::aes_256_ecb(),
        Mode::Encrypt,
        file_key,
        None,
        &block,
        false,
    )?;
    Ok(out.to_vec())
}

/// Algorithm 2.A for the user password: checks `passphrase` against U (algorithm 11) and
/// unwraps the file key from UE. A wrong passphrase is `WrongPassphrase`.
pub fn unlock(passphrase: &[u8], u: &[u8], ue: &[u8]) -> Result<Zeroizing<Vec<u8>>, EnvelopeError> {
    if u.len() != ENTRY_LEN || ue.len() != KEY_LEN {
        return Err(EnvelopeError::Malformed("U or UE length"));
    }
    let (hash, salts) = u.split_at(KEY_LEN);
    let (validation_salt, key_salt) = salts.split_at(SALT_LEN);
    let computed = hash_2b(passphrase, validation_salt, &[])?;
    // Not a secret comparison in the usual sense (U is public), but constant time costs nothing.
    if !openssl::memcmp::eq(&computed, hash) {
        return Err(EnvelopeError::WrongPassphrase);
    }
    let wrapping = hash_2b(passphrase, key_salt, &[])?;
    cipher(
        Cipher::aes_256_cbc(),
        Mode::Decrypt,
        &wrapping,
        Some(&[0u8; BLOCK]),
        ue,
        false,
    )
}

/// Checks Perms against the file key (algorithm 13): it must decrypt to a block with the "adb"
/// marker and the same P as the dictionary's.
pub fn check_perms(file_key: &[u8], perms: &[u8], p: i32) -> Result<(), EnvelopeError> {
    if perms.len() != BLOCK {
        return Err(EnvelopeError::Malformed("Perms length"));
    }
    let block = cipher(
        Cipher::aes_256_ecb(),
        Mode::Decrypt,
        file_key,
        None,
        perms,
        false,
    )?;
    if block.get(9..12) != Some(b"adb".as_slice())
        || block.get(..4) != Some(p.to_le_bytes().as_slice())
    {
        return Err(EnvelopeError::Malformed("Perms does not match"));
    }
    Ok(())
}

/// A string or stream encrypted for the file (7.6.3.2, AESV3): a random 16-byte IV, then the
/// data in AES-256-CBC with PKCS#5 padding.
pub fn encrypt_object(file_key: &[u8], data: &[u8]) -> Result<Vec<u8>, EnvelopeError> {
    let mut iv = [0u8; BLOCK];
    rand::rngs::OsRng.fill_bytes(&mut iv);
    let body = cipher(
        Cipher::aes_256_cbc(),
        Mode::Encrypt,
        file_key,
        Some(&iv),
        data,
        true,
    )?;
    Ok([iv.as_slice(), &body].concat())
}

/// The inverse of [`encrypt_object`].
pub fn decrypt_object(file_key: &[u8], data: &[u8]) -> Result<Zeroizing<Vec<u8>>, EnvelopeError> {
    if data.len() < 2 * BLOCK || data.len() % BLOCK != 0 {
        return Err(EnvelopeError::Malformed("encrypted object length"));
    }
    let (iv, body) = data.split_at(BLOCK);
    cipher(
        Cipher::aes_256_cbc(),
        Mode::Decrypt,
        file_key,
        Some(iv),
        body,
        true,
    )
}

/// One AES operation over `data`, the output in a zeroizing buffer.
fn cipher(
    cipher: Cipher,
    mode: Mode,
    key: &[u8],
    iv: Option<&[u8]>,
    data: &[u8],
    pad: bool,
) -> Result<Zeroizing<Vec<u8>>, EnvelopeError> {
    let mut crypter = Crypter::new(cipher, mode, key, iv)?;
    crypter.pad(pad);
    let mut out = Zeroizing::new(vec![0u8; data.len() + cipher.block_size()]);
    let mut n = crypter.update(data, &mut out)?;
    n += crypter.finalize(out.get_mut(n..).unwrap_or_default())?;
    out.truncate(n);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permissions_allow_printing_but_not_modifying_or_copying() {
        let p = PERMISSIONS as u32;
        assert_eq!(PERMISSIONS, -1340);
        assert_ne!(p & (1 << 2), 0, "print");
        assert_ne!(p & (1 << 11), 0, "high-quality print");
        assert_eq!(p & (1 << 3), 0, "modify");
        assert_eq!(p & (1 << 4), 0, "copy");
        assert_eq!(p & 0b11, 0, "bits 1-2 are zero");
    }

    #[test]
    fn unlock_recovers_the_key_and_refuses_another_passphrase() {
        let (key, public) = make_lock("correct horse battery").unwrap();
        let got = unlock(b"correct horse battery", &public.u, &public.ue).unwrap();
        assert_eq!(*got, *key);
        check_perms(&key, &public.perms, PERMISSIONS).unwrap();
        assert!(matches!(
            unlock(b"correct horse batterz", &public.u, &public.ue),
            Err(EnvelopeError::WrongPassphrase)
        ));
    }

    #[test]
    fn objects_get_a_fresh_iv_and_decrypt_back() {
        let key = [7u8; 32];
        let a = encrypt_object(&key, b"BT /F1 12 Tf ET").unwrap();
        let b = encrypt_object(&key, b"BT /F1 12 Tf ET").unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
        assert_eq!(&*decrypt_object(&key, &a).unwrap(), b"BT /F1 12 Tf ET");
    }

    #[test]
    fn a_password_is_cut_at_127_bytes() {
        let long = "é".repeat(100); // 200 bytes
        let cut = password_bytes(&long);
        assert_eq!(cut.len(), 127);
        assert_eq!(password_bytes("short"), b"short");
    }
}
