//! Several nodes starting at once on one database and one token create ONE CA and ONE PIN key.

use cryptoki::object::{Attribute, ObjectClass};
use sigillo::services::Services;

use crate::support::{random_suffix, test_config};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_starts_share_one_ca_and_one_pin_key() {
    let isolation = random_suffix();
    let config = test_config(&isolation);
    let (a, b, c) = tokio::join!(
        Services::build(config.clone()),
        Services::build(config.clone()),
        Services::build(config.clone())
    );
    let (a, b, c) = (a.unwrap(), b.unwrap(), c.unwrap());
    for other in [&b, &c] {
        assert_eq!(
            a.ca.root().to_der().unwrap(),
            other.ca.root().to_der().unwrap()
        );
        assert_eq!(
            a.ca.issuing().to_der().unwrap(),
            other.ca.issuing().to_der().unwrap()
        );
    }
    // A later start (a restart) loads the same CA.
    let again = Services::build(config.clone()).await.unwrap();
    assert_eq!(
        a.ca.root().to_der().unwrap(),
        again.ca.root().to_der().unwrap()
    );

    // A start caches every private key of the token (at least this CA's two) in one search.
    assert!(again.hsm.preload_keys().await.unwrap() >= 2);
    let session = crate::support::hsm_session();
    let prefix = &config.hsm.label_prefix;
    for (class, name) in [
        (ObjectClass::SECRET_KEY, "pin-hmac"),
        (ObjectClass::PRIVATE_KEY, "ca-root"),
        (ObjectClass::PRIVATE_KEY, "ca-issuing"),
    ] {
        let found = sigillo::hsm::with_object_store(|| {
            session
                .find_objects(&[
                    Attribute::Class(class),
                    Attribute::Id(format!("{prefix}{name}").into_bytes()),
                ])
                .unwrap()
        });
        assert_eq!(found.len(), 1, "{name}");
    }
}
