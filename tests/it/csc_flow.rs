//! The whole CSC flow for every key type, every sign algorithm and both API versions:
//! login → list → info → sendOTP → authorize → signHash (1 and 100 hashes); every signature is
//! verified with openssl against the certificate credentials/info returned.

use openssl::ecdsa::EcdsaSig;
use openssl::md::{Md, MdRef};
use openssl::pkey::{PKey, Public};
use openssl::pkey_ctx::PkeyCtx;
use openssl::rsa::Padding;
use reqwest::StatusCode;
use serde_json::json;
use sigillo::hsm::mechanism::pss_params_der;
use sigillo::hsm::HashAlg;

use crate::support::{digests, unb64, Csc, TestApp};

fn md(hash: HashAlg) -> &'static MdRef {
    match hash {
        HashAlg::Sha256 => Md::sha256(),
        HashAlg::Sha384 => Md::sha384(),
        HashAlg::Sha512 => Md::sha512(),
    }
}

#[derive(Clone, Copy, Debug)]
enum Scheme {
    Pkcs1,
    Pss,
    Ecdsa,
}

/// Verifies `signature` over `digest` with openssl.
fn verify(
    key: &PKey<Public>,
    scheme: Scheme,
    hash: HashAlg,
    digest: &[u8],
    signature: &[u8],
) -> bool {
    match scheme {
        Scheme::Ecdsa => {
            let sig = EcdsaSig::from_der(signature).expect("ECDSA signature is DER");
            sig.verify(digest, &key.ec_key().unwrap()).unwrap()
        }
        Scheme::Pkcs1 | Scheme::Pss => {
            let mut ctx = PkeyCtx::new(key).unwrap();
            ctx.verify_init().unwrap();
            ctx.set_signature_md(md(hash)).unwrap();
            if let Scheme::Pss = scheme {
                ctx.set_rsa_padding(Padding::PKCS1_PSS).unwrap();
                ctx.set_rsa_mgf1_md(md(hash)).unwrap();
                ctx.set_rsa_pss_saltlen(openssl::sign::RsaPssSaltlen::custom(
                    hash.digest_len() as i32
                ))
                .unwrap();
            } else {
                ctx.set_rsa_padding(Padding::PKCS1).unwrap();
            }
            ctx.verify(digest, signature).unwrap_or(false)
        }
    }
}

/// (signAlgo, hashAlgorithmOID to send, hash, scheme, PSS params)
fn algorithms(
    key_algo: &str,
) -> Vec<(
    &'static str,
    Option<&'static str>,
    HashAlg,
    Scheme,
    Option<Vec<u8>>,
)> {
    if key_algo.starts_with("ec") {
        vec![
            (
                "1.2.840.10045.4.3.2",
                None,
                HashAlg::Sha256,
                Scheme::Ecdsa,
                None,
            ),
            (
                "1.2.840.10045.4.3.3",
                Some("2.16.840.1.101.3.4.2.2"),
                HashAlg::Sha384,
                Scheme::Ecdsa,
                None,
            ),
            (
                "1.2.840.10045.4.3.4",
                None,
                HashAlg::Sha512,
                Scheme::Ecdsa,
                None,
            ),
            (
                "1.2.840.10045.2.1",
                Some("2.16.840.1.101.3.4.2.1"),
                HashAlg::Sha256,
                Scheme::Ecdsa,
                None,
            ),
        ]
    } else {
        let mut v = vec![
            (
                "1.2.840.113549.1.1.11",
                None,
                HashAlg::Sha256,
                Scheme::Pkcs1,
                None,
            ),
            (
                "1.2.840.113549.1.1.12",
                None,
                HashAlg::Sha384,
                Scheme::Pkcs1,
                None,
            ),
            (
                "1.2.840.113549.1.1.13",
                Some("2.16.840.1.101.3.4.2.3"),
                HashAlg::Sha512,
                Scheme::Pkcs1,
                None,
            ),
            (
                "1.2.840.113549.1.1.1",
                Some("2.16.840.1.101.3.4.2.1"),
                HashAlg::Sha256,
                Scheme::Pkcs1,
                None,
            ),
        ];
        for hash in HashAlg::ALL {
            let params = pss_params_der(hash, hash.digest_len() as u8);
            v.push((
                "1.2.840.113549.1.1.10",
                None,
                hash,
                Scheme::Pss,
                Some(params),
            ));
        }
        v
    }
}

async fn full_flow(key_algo: &str) {
    let app = TestApp::spawn_with(|c| c.otp.send_limit = 1000).await;
    let (_user, token, credential, pin) = app.active_credential(key_algo, "signing").await;

    for v in [Csc::V1, Csc::V2] {
        // list → info
        let (status, list) = app
            .post(&v.path("credentials/list"), Some(&token), json!({}))
            .await;
        assert_eq!(status, StatusCode::OK, "{list}");
        assert_eq!(list["credentialIDs"], json!([credential]));
        let leaf = app.leaf_certificate(v, &token, &credential).await;
        let key = leaf.public_key().unwrap();

        for (sign_algo, hash_oid, hash, scheme, params) in algorithms(key_algo) {
            for n in [1usize, 100] {
                let hashes = digests(n, hash.digest_len());
                let sad = app
                    .sad_for(v, &token, &credential, &pin, &hashes, hash.oid())
                    .await;
                let (status, body) = app
                    .sign_hash(
                        v,
                        &token,
                        &credential,
                        &sad,
                        &hashes,
                        hash_oid,
                        sign_algo,
                        params.as_deref(),
                    )
                    .await;
                assert_eq!(
                    status,
                    StatusCode::OK,
                    "{v:?} {key_algo} {sign_algo} n={n}: {body}"
                );
                let signatures = body["signatures"].as_array().unwrap();
                assert_eq!(signatures.len(), n);
                for (digest, signature) in hashes.iter().zip(signatures) {
                    let signature = unb64(signature.as_str().unwrap());
                    assert!(
                        verify(&key, scheme, hash, digest, &signature),
                        "{v:?} {key_algo} {sign_algo}: signature does not verify"
                    );
                }
                // Signatures are in request order: a swapped pair does not verify.
                if n > 1 {
                    let second = unb64(signatures[1].as_str().unwrap());
                    assert!(!verify(&key, scheme, hash, &hashes[0], &second));
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ec_p256_signs_with_every_algorithm_in_both_versions() {
    full_flow("ec-p256").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ec_p384_signs_with_every_algorithm_in_both_versions() {
    full_flow("ec-p384").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rsa_2048_signs_with_every_algorithm_in_both_versions() {
    full_flow("rsa-2048").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rsa_3072_signs_with_every_algorithm_in_both_versions() {
    full_flow("rsa-3072").await;
}
