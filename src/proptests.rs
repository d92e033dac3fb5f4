//! Property tests of the code that parses what callers send: DER (`der`), signAlgo and its
//! RSASSA-PSS parameters (`hsm::mechanism`), OIDs, and the signHash body with its checks
//! (`csc::common`). Whatever the input, the answer is a value or a 4xx — never a panic, never a
//! 5xx. The cases are bounded (a few thousand per property), so the suite stays fast.

use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;

use crate::csc::common::{decode_hashes, hash_alg, sign_algo_params};
use crate::csc::v2_wire::SignHashRequest;
use crate::der;
use crate::error::ApiError;
use crate::hsm::mechanism::pss_params_der;
use crate::hsm::{HashAlg, SignAlgo};

/// OIDs near the ones the gateway knows (so that parsing goes deep), and arbitrary text.
fn oid_text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("1.2.840.10045.4.3.2".to_owned()),
        Just("1.2.840.10045.4.3.4".to_owned()),
        Just("1.2.840.10045.2.1".to_owned()),
        Just("1.2.840.113549.1.1.1".to_owned()),
        Just("1.2.840.113549.1.1.10".to_owned()),
        Just("1.2.840.113549.1.1.13".to_owned()),
        Just("2.16.840.1.101.3.4.2.1".to_owned()),
        Just("2.16.840.1.101.3.4.2.3".to_owned()),
        vec(0u64..100_000, 0..12).prop_map(|arcs| arcs
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(".")),
        ".{0,80}",
    ]
}

fn hash() -> impl Strategy<Value = HashAlg> {
    prop_oneof![
        Just(HashAlg::Sha256),
        Just(HashAlg::Sha384),
        Just(HashAlg::Sha512)
    ]
}

/// Valid PSS parameters, then damaged: bytes flipped, cut short, or extended.
fn damaged_pss_params() -> impl Strategy<Value = Vec<u8>> {
    (
        hash(),
        any::<u8>(),
        vec((any::<usize>(), any::<u8>()), 0..4),
        any::<usize>(),
        vec(any::<u8>(), 0..4),
    )
        .prop_map(|(hash, salt, flips, cut, tail)| {
            let mut der = pss_params_der(hash, salt);
            for (at, byte) in flips {
                let i = at % der.len();
                der[i] ^= byte;
            }
            der.truncate(cut % (der.len() + 1));
            der.extend(tail);
            der
        })
}

fn is_client_error(e: impl Into<ApiError>) -> bool {
    e.into().status.is_client_error()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn der_readers_take_any_bytes(bytes in vec(any::<u8>(), 0..600)) {
        let _ = der::split_first(&bytes);
        let _ = der::tag(&bytes);
        let _ = der::oid_string(&bytes);
        let _ = der::small_uint(&bytes);
        let _ = der::split_certificate(&bytes);
        if let Some(content) = der::content(&bytes) {
            prop_assert!(content.len() < bytes.len());
            if let Some(parts) = der::elements(content) {
                prop_assert_eq!(parts.iter().map(|p| p.len()).sum::<usize>(), content.len());
            }
        }
    }

    #[test]
    fn oids_written_are_read_back(arcs in (0u64..3, 0u64..40, vec(any::<u64>(), 0..10))) {
        let (first, second, rest) = arcs;
        let all: Vec<u64> = [first, second].into_iter().chain(rest).collect();
        let text = all.iter().map(u64::to_string).collect::<Vec<_>>().join(".");
        prop_assert_eq!(der::oid_string(&der::oid(&all)), Some(text));
    }

    #[test]
    fn sign_algos_resolve_or_are_refused_as_bad_requests(
        sign_algo in oid_text(),
        hash_oid in option::of(oid_text()),
        params in option::of(prop_oneof![vec(any::<u8>(), 0..80), damaged_pss_params()]),
    ) {
        match SignAlgo::resolve(&sign_algo, hash_oid.as_deref(), params.as_deref()) {
            Ok(algo) => {
                if let Some(oid) = &hash_oid {
                    prop_assert_eq!(algo.hash().oid(), oid.as_str());
                }
            }
            Err(e) => prop_assert!(is_client_error(e)),
        }
    }

    #[test]
    fn pss_parameters_round_trip(hash in hash(), salt in any::<u8>()) {
        let params = pss_params_der(hash, salt);
        let algo = SignAlgo::resolve("1.2.840.113549.1.1.10", None, Some(&params));
        prop_assert_eq!(algo.ok(), Some(SignAlgo::RsaPss { hash, salt_len: u32::from(salt) }));
    }

    #[test]
    fn sign_hash_bodies_decode_or_are_refused_as_bad_requests(
        credential in ".{0,40}",
        hashes in vec(prop_oneof![
            "[A-Za-z0-9+/=]{0,140}",
            vec(any::<u8>(), 0..70).prop_map(|b| {
                use base64::Engine;
                base64::engine::general_purpose::STANDARD.encode(b)
            }),
            ".{0,20}",
        ], 0..6),
        hash_oid in option::of(oid_text()),
        sign_algo in oid_text(),
        params in option::of(".{0,40}"),
        max in 1usize..5,
    ) {
        let body = serde_json::json!({
            "credentialID": credential, "SAD": "x", "hashes": hashes,
            "hashAlgorithmOID": hash_oid, "signAlgo": sign_algo, "signAlgoParams": params,
        });
        let request: SignHashRequest = match serde_json::from_value(body) {
            Ok(r) => r,
            Err(_) => return Ok(()),
        };
        if let Err(e) = hash_alg("hashAlgorithmOID", request.hash_algorithm_oid.as_deref()) {
            prop_assert!(is_client_error(e));
        }
        match sign_algo_params(request.sign_algo_params.as_deref()) {
            Ok(params) => {
                match SignAlgo::resolve(
                    &request.sign_algo,
                    request.hash_algorithm_oid.as_deref(),
                    params.as_deref(),
                ) {
                    Ok(algo) => match decode_hashes("hashes", &request.hashes, Some(algo.hash()), max) {
                        Ok((decoded, _)) => {
                            prop_assert!(decoded.len() <= max);
                            prop_assert!(decoded.iter().all(|h| h.len() == algo.hash().digest_len()));
                        }
                        Err(e) => prop_assert!(is_client_error(e)),
                    },
                    Err(e) => prop_assert!(is_client_error(e)),
                }
            }
            Err(e) => prop_assert!(is_client_error(e)),
        }
    }

    #[test]
    fn arbitrary_json_never_panics_the_wire_types(text in ".{0,200}") {
        let _ = serde_json::from_str::<SignHashRequest>(&text);
        let _ = serde_json::from_str::<crate::csc::v1_wire::SignHashRequest>(&text);
        let _ = serde_json::from_str::<crate::csc::v2_wire::AuthorizeRequest>(&text);
    }
}
