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
