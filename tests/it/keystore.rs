//! Keys are generated in the token: sensitive, never extractable, and the certificate holds
//! exactly the token's public key.

use cryptoki::object::{Attribute, AttributeInfo, AttributeType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use openssl::x509::X509;
use sigillo::db::repo;
use uuid::Uuid;

use crate::support::{hsm_session as session, TestApp};

fn objects(session: &Session, class: ObjectClass, id: &[u8]) -> Vec<ObjectHandle> {
    sigillo::hsm::with_object_store(|| {
        session
            .find_objects(&[Attribute::Class(class), Attribute::Id(id.to_vec())])
            .unwrap()
    })
}

fn bool_attr(session: &Session, handle: ObjectHandle, ty: AttributeType) -> bool {
    match session.get_attributes(handle, &[ty]).unwrap().as_slice() {
        [Attribute::Sensitive(v)]
        | [Attribute::Extractable(v)]
        | [Attribute::AlwaysSensitive(v)]
        | [Attribute::NeverExtractable(v)]
        | [Attribute::Token(v)] => *v,
        other => panic!("unexpected {other:?}"),
    }
}

fn assert_unreadable(session: &Session, handle: ObjectHandle) {
    assert!(
        bool_attr(session, handle, AttributeType::Token),
        "a token object"
    );
    assert!(bool_attr(session, handle, AttributeType::Sensitive));
    assert!(!bool_attr(session, handle, AttributeType::Extractable));
    assert!(bool_attr(session, handle, AttributeType::AlwaysSensitive));
    assert!(bool_attr(session, handle, AttributeType::NeverExtractable));
    // Reading the key material itself is refused by the token.
    let info = session
        .get_attribute_info(
            handle,
            &[AttributeType::Value, AttributeType::PrivateExponent],
        )
        .unwrap();
    for i in info {
        assert!(
            matches!(i, AttributeInfo::Sensitive | AttributeInfo::TypeInvalid),
            "key material readable: {i:?}"
        );
    }
    assert!(session
        .get_attributes(handle, &[AttributeType::Value])
        .unwrap()
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credential_keys_live_in_the_token_and_cannot_be_read() {
    let app = TestApp::spawn().await;
    let user = app.create_user("sms").await;
    for algo in ["ec-p256", "ec-p384", "rsa-2048", "rsa-3072"] {
        let credential = app.create_credential(&user, algo, "signing").await;
        let id = Uuid::parse_str(&credential.id).unwrap();
        let session = session();
        let private = objects(&session, ObjectClass::PRIVATE_KEY, id.as_bytes());
        assert_eq!(private.len(), 1, "{algo}: one private key");
        assert_unreadable(&session, private[0]);
        let labels = session
            .get_attributes(private[0], &[AttributeType::Label])
            .unwrap();
        assert_eq!(
            labels,
            vec![Attribute::Label(credential.id.clone().into_bytes())],
            "labelled by credential id"
        );

        // The certificate certifies exactly the token's key pair.
        let stored = repo::credentials::find(&app.services().db, id)
            .await
            .unwrap()
            .unwrap();
        let leaf = X509::from_der(&stored.cert_chain[0]).unwrap();
        let public = objects(&session, ObjectClass::PUBLIC_KEY, id.as_bytes());
        assert_eq!(public.len(), 1);
        let cert_key = leaf.public_key().unwrap();
        if algo.starts_with("ec") {
            let ec = cert_key.ec_key().unwrap();
            let mut ctx = openssl::bn::BigNumContext::new().unwrap();
            let point = ec
                .public_key()
                .to_bytes(
                    ec.group(),
                    openssl::ec::PointConversionForm::UNCOMPRESSED,
                    &mut ctx,
                )
                .unwrap();
            let attrs = session
                .get_attributes(public[0], &[AttributeType::EcPoint])
                .unwrap();
            let Attribute::EcPoint(token_point) = &attrs[0] else {
                panic!()
            };
            assert!(
                token_point.ends_with(&point),
                "{algo}: certificate key = token key"
            );
        } else {
            let rsa = cert_key.rsa().unwrap();
            assert_eq!(cert_key.bits(), algo[4..].parse::<u32>().unwrap());
            let attrs = session
                .get_attributes(public[0], &[AttributeType::Modulus])
                .unwrap();
            let Attribute::Modulus(n) = &attrs[0] else {
                panic!()
            };
            assert_eq!(n, &rsa.n().to_vec(), "{algo}: certificate key = token key");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pin_hmac_key_and_ca_keys_are_non_extractable() {
    let app = TestApp::spawn().await;
    let session = session();
    let prefix = &app.config.hsm.label_prefix;
    let hmac = objects(
        &session,
        ObjectClass::SECRET_KEY,
        format!("{prefix}pin-hmac").as_bytes(),
    );
    assert_eq!(hmac.len(), 1, "exactly one PIN HMAC key");
    assert_unreadable(&session, hmac[0]);
    // The TOTP sealing key and the key the other secrets are derived from: their own keys.
    for name in ["seal-aes", "derive-hmac"] {
        let keys = objects(
            &session,
            ObjectClass::SECRET_KEY,
            format!("{prefix}{name}").as_bytes(),
        );
        assert_eq!(keys.len(), 1, "exactly one {name} key");
        assert_unreadable(&session, keys[0]);
    }
    for name in ["ca-root", "ca-issuing"] {
        let keys = objects(
            &session,
            ObjectClass::PRIVATE_KEY,
            format!("{prefix}{name}").as_bytes(),
        );
        assert_eq!(keys.len(), 1, "{name}");
        assert_unreadable(&session, keys[0]);
    }
}

/// The boolean usage attribute `ty` of `handle`, as the token reports it.
fn usage(session: &Session, handle: ObjectHandle, ty: AttributeType) -> bool {
    match session.get_attributes(handle, &[ty]).unwrap().as_slice() {
        [Attribute::Sign(v)]
        | [Attribute::Decrypt(v)]
        | [Attribute::Unwrap(v)]
        | [Attribute::Derive(v)]
        | [Attribute::Encrypt(v)]
        | [Attribute::Wrap(v)]
        | [Attribute::Verify(v)] => *v,
        other => panic!("unexpected {other:?}"),
    }
}

/// Verifies a signature made by the gateway over `digest` with the certificate's key.
fn verifies(
    cert: &X509,
    scheme: &str,
    hash: sigillo::hsm::HashAlg,
    digest: &[u8],
    sig: &[u8],
) -> bool {
    use openssl::md::Md;
    use openssl::pkey_ctx::PkeyCtx;
    use openssl::rsa::Padding;
    let key = cert.public_key().unwrap();
    if scheme == "ecdsa" {
        let sig = openssl::ecdsa::EcdsaSig::from_der(sig).unwrap();
        return sig.verify(digest, &key.ec_key().unwrap()).unwrap();
    }
    let md = match hash {
        sigillo::hsm::HashAlg::Sha256 => Md::sha256(),
        sigillo::hsm::HashAlg::Sha384 => Md::sha384(),
        sigillo::hsm::HashAlg::Sha512 => Md::sha512(),
    };
    let mut ctx = PkeyCtx::new(&key).unwrap();
    ctx.verify_init().unwrap();
    ctx.set_signature_md(md).unwrap();
    if scheme == "pss" {
        ctx.set_rsa_padding(Padding::PKCS1_PSS).unwrap();
        ctx.set_rsa_mgf1_md(md).unwrap();
        ctx.set_rsa_pss_saltlen(openssl::sign::RsaPssSaltlen::custom(
            hash.digest_len() as i32
        ))
        .unwrap();
    } else {
        ctx.set_rsa_padding(Padding::PKCS1).unwrap();
    }
    ctx.verify(digest, sig).unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credential_keys_only_sign_and_only_with_their_signature_mechanisms() {
    use cryptoki::error::{Error as CkError, RvError};
    use cryptoki::mechanism::{Mechanism, MechanismType};
    use sigillo::hsm::mechanism::pss_params_der;
    use sigillo::hsm::HashAlg;

    use crate::support::{digests, unb64, Csc, OID_SHA256};

    let app = TestApp::spawn().await;
    for algo in ["ec-p256", "ec-p384", "rsa-2048", "rsa-3072"] {
        let (_, token, credential, pin) = app.active_credential(algo, "signing").await;
        let id = Uuid::parse_str(&credential).unwrap();
        let session = session();
        let private = objects(&session, ObjectClass::PRIVATE_KEY, id.as_bytes());
        assert_eq!(private.len(), 1, "{algo}: one private key");
        let key = private[0];
        assert!(
            usage(&session, key, AttributeType::Sign),
            "{algo}: CKA_SIGN"
        );
        for ty in [
            AttributeType::Decrypt,
            AttributeType::Unwrap,
            AttributeType::Derive,
        ] {
            assert!(!usage(&session, key, ty), "{algo}: {ty:?} must be false");
        }
        let public = objects(&session, ObjectClass::PUBLIC_KEY, id.as_bytes());
        assert!(usage(&session, public[0], AttributeType::Verify));
        assert!(
            !usage(&session, public[0], AttributeType::Encrypt),
            "{algo}"
        );
        assert!(!usage(&session, public[0], AttributeType::Wrap), "{algo}");
        let allowed = session
            .get_attributes(key, &[AttributeType::AllowedMechanisms])
            .unwrap();
        let expected = if algo.starts_with("ec") {
            vec![MechanismType::ECDSA]
        } else {
            vec![MechanismType::RSA_PKCS, MechanismType::RSA_PKCS_PSS]
        };
        assert_eq!(
            allowed,
            vec![Attribute::AllowedMechanisms(expected)],
            "{algo}: CKA_ALLOWED_MECHANISMS"
        );

        // The token refuses everything else the key could have done.
        let refused = |what: &str, result: Result<(), CkError>| match result {
            Err(CkError::Pkcs11(
                RvError::KeyFunctionNotPermitted
                | RvError::MechanismInvalid
                | RvError::KeyTypeInconsistent,
                _,
            )) => {}
            other => panic!("{algo}: {what} was not refused: {other:?}"),
        };
        if algo.starts_with("ec") {
            refused(
                "CKM_ECDSA_SHA256 (hashing inside the token)",
                session
                    .sign(&Mechanism::EcdsaSha256, key, b"data")
                    .map(|_| ()),
            );
            let peer = {
                let group = openssl::ec::EcGroup::from_curve_name(if algo == "ec-p256" {
                    openssl::nid::Nid::X9_62_PRIME256V1
                } else {
                    openssl::nid::Nid::SECP384R1
                })
                .unwrap();
                let peer = openssl::ec::EcKey::generate(&group).unwrap();
                let mut ctx = openssl::bn::BigNumContext::new().unwrap();
                peer.public_key()
                    .to_bytes(
                        &group,
                        openssl::ec::PointConversionForm::UNCOMPRESSED,
                        &mut ctx,
                    )
                    .unwrap()
            };
            let params = cryptoki::mechanism::elliptic_curve::Ecdh1DeriveParams::new(
                cryptoki::mechanism::elliptic_curve::EcKdf::null(),
                &peer,
            );
            refused(
                "ECDH derivation",
                session
                    .derive_key(
                        &Mechanism::Ecdh1Derive(params),
                        key,
                        &[
                            Attribute::Class(ObjectClass::SECRET_KEY),
                            Attribute::KeyType(cryptoki::object::KeyType::GENERIC_SECRET),
                            Attribute::ValueLen(32u64.into()),
                            Attribute::Token(false),
                        ],
                    )
                    .map(|_| ()),
            );
        } else {
            let size = algo[4..].parse::<usize>().unwrap() / 8;
            refused(
                "RSA decryption",
                session
                    .decrypt(&Mechanism::RsaPkcs, key, &vec![1u8; size])
                    .map(|_| ()),
            );
            refused(
                "CKM_SHA256_RSA_PKCS (hashing inside the token)",
                session
                    .sign(&Mechanism::Sha256RsaPkcs, key, b"data")
                    .map(|_| ()),
            );
        }

        // Signing through the gateway still works with every mechanism the key allows.
        let leaf = app.leaf_certificate(Csc::V2, &token, &credential).await;
        let schemes: &[(&str, &str, Option<Vec<u8>>)] = if algo.starts_with("ec") {
            &[("ecdsa", "1.2.840.10045.4.3.2", None)]
        } else {
            &[
                ("pkcs1", "1.2.840.113549.1.1.11", None),
                (
                    "pss",
                    "1.2.840.113549.1.1.10",
                    Some(pss_params_der(HashAlg::Sha256, 32)),
                ),
            ]
        };
        for (scheme, sign_algo, params) in schemes {
            let hashes = digests(1, 32);
            let sad = app
                .sad_for(Csc::V2, &token, &credential, &pin, &hashes, OID_SHA256)
                .await;
            let (status, body) = app
                .sign_hash(
                    Csc::V2,
                    &token,
                    &credential,
                    &sad,
                    &hashes,
                    Some(OID_SHA256),
                    sign_algo,
                    params.as_deref(),
                )
                .await;
            assert_eq!(status, reqwest::StatusCode::OK, "{algo} {scheme}: {body}");
            let sig = unb64(body["signatures"][0].as_str().unwrap());
            assert!(
                verifies(&leaf, scheme, HashAlg::Sha256, &hashes[0], &sig),
                "{algo} {scheme}: signature does not verify"
            );
        }
    }
}

/// The module guards its state with the gateway's mutexes (`hsm::locks`; with 2 HSM workers on
/// 2 cores or more), and signs right with them while threads meet on them: four sessions of their own sign with one credential's
/// key at once (plus the gateway's workers, idle), and every signature verifies against the
/// certificate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_module_takes_the_gateways_mutexes_and_signs_right_under_contention() {
    use cryptoki::mechanism::Mechanism;
    use openssl::bn::BigNum;
    use openssl::ecdsa::EcdsaSig;

    let app = TestApp::spawn().await;
    // The test gateways run 2 HSM workers: the gateway's mutexes when they fit the cores.
    if std::thread::available_parallelism().map_or(1, |n| n.get()) >= 2 {
        assert!(
            sigillo::hsm::module_mutexes() > 0,
            "SoftHSM2 made no mutex with the gateway's functions: it runs on OS mutexes"
        );
    }
    let user = app.create_user("sms").await;
    let credential = app.create_credential(&user, "ec-p256", "signing").await;
    let id = Uuid::parse_str(&credential.id).unwrap();
    let stored = repo::credentials::find(&app.services().db, id)
        .await
        .unwrap()
        .unwrap();
    let leaf = X509::from_der(&stored.cert_chain[0]).unwrap();
    let public = leaf.public_key().unwrap().ec_key().unwrap();
    let signers: Vec<_> = (0..4u8)
        .map(|t| {
            let id = *id.as_bytes();
            std::thread::spawn(move || {
                let session = session();
                let key = objects(&session, ObjectClass::PRIVATE_KEY, &id)[0];
                (0..50u8)
                    .map(|i| {
                        let digest = openssl::sha::sha256(&[t, i]);
                        let raw = session.sign(&Mechanism::Ecdsa, key, &digest).unwrap();
                        (digest, raw)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut checked = 0;
    for signer in signers {
        for (digest, raw) in signer.join().unwrap() {
            let (r, s) = raw.split_at(raw.len() / 2);
            let sig = EcdsaSig::from_private_components(
                BigNum::from_slice(r).unwrap(),
                BigNum::from_slice(s).unwrap(),
            )
            .unwrap();
            assert!(
                sig.verify(&digest, &public).unwrap(),
                "a signature does not verify"
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 200);
}
