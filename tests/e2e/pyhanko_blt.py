#!/usr/bin/env python3
"""PAdES baseline signatures through sigillo, validated the way a relying party does.

A sibling of pyhanko_csc.py (whose login, credential and SAD helpers it imports): pyHanko's
own CSC signer signs ONE PDF through sigillo, and pyHanko's validator checks it against the
gateway root, fetching certificate status from sigillo's OCSP responder and CRL with
revocation checking hard-fail. Two actions:

``sign --level b-lt|b-lta|b-b --out FILE``
    B-LT: a signature timestamp from sigillo's TSA (``HTTPTimeStamper`` at ``{base}/tsa``)
    and the validation info (certificates, OCSP responses, CRLs, fetched from sigillo while
    signing, hard-fail) embedded in the document security store; B-LTA adds a document
    timestamp. B-B: neither. Prints ``{"signed": FILE, "level": ...}``. With
    ``--expect-refused`` the signing must fail: prints ``{"refused": {"path", "status",
    "error", "error_description"}}`` from the HTTP error sigillo answered.

``validate --in FILE --expect valid|revoked [--embedded-only]``
    pyHanko's ``async_validate_pdf_signature``, hard-fail. By default it fetches status from
    sigillo at the present time. ``--embedded-only`` validates with the document's own DSS
    (no fetching at all) at the time of the signature timestamp: that is the long-term
    promise of B-LT, the status proven when the document was signed, still checkable after
    the certificate is revoked (or sigillo is gone). ``retroactive_revinfo`` is set there
    because pyHanko fetches the embedded OCSP response right after the timestamp, so its
    producedAt/thisUpdate is a moment later than the time being validated.
    ``valid``: intact, valid, trusted, not revoked (and timestamped when the document has a
    signature timestamp). ``revoked``: intact and valid but the signer reported revoked.
    ``--status-from both|crl``: the signer's status must be established from sigillo's CRL
    and its OCSP responder, or from the CRL alone (by default pyHanko stops at the first
    that answers, OCSP).
    ``--ades-lta ANCHOR`` also runs pyHanko's PAdES long-term validation (ETSI EN 319 102-1
    § 5.6.3: current time with fetched status, then the past from the DSS with the
    timestamps as proofs of existence), which must PASS; a signature whose certificate was
    revoked after its signature timestamp passes it.
    Prints ``{"intact", "valid", "trusted", "revoked", "timestamped", "dss", "ok", ...}``.

Exit status 0 when the expectation holds, 1 otherwise (reason on stderr), 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from datetime import datetime
from io import BytesIO
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pyhanko_csc as csc  # noqa: E402  (the helpers of the batch test)

try:
    import aiohttp
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign import fields, signers
    from pyhanko.sign.general import SigningError
    from pyhanko.sign.signers import csc_signer
    from pyhanko.sign.timestamps import HTTPTimeStamper
    from pyhanko.sign.validation import async_validate_pdf_signature, generic_cms
    from pyhanko.sign.validation.dss import DocumentSecurityStore
    from pyhanko.sign.validation.errors import NoDSSFoundError
    from pyhanko.sign.validation.status import SignatureCoverageLevel
    from pyhanko.sign.ades.report import AdESStatus
    from pyhanko.sign.validation.ades import ades_lta_validation
    from pyhanko.sign.validation.policy_decl import (
        PdfSignatureValidationSpec,
        RevocationInfoGatheringSpec,
        SignatureValidationSpec,
    )
    from pyhanko_certvalidator import ValidationContext
    from pyhanko_certvalidator.context import CertValidationPolicySpec
    from pyhanko_certvalidator.policy_decl import (
        CertRevTrustPolicy,
        RevocationCheckingPolicy,
        RevocationCheckingRule,
    )
    from pyhanko_certvalidator.registry import SimpleTrustManager
    from pyhanko_certvalidator.fetchers.aiohttp_fetchers import AIOHttpFetcherBackend
except ImportError as e:  # pragma: no cover - environment problem
    sys.stderr.write(f"FAIL: missing dependency ({e}); install tests/e2e/requirements.txt\n")
    sys.exit(1)

log = logging.getLogger("pyhanko_blt")
E2EFailure = csc.E2EFailure

# Revocation checking hard-fail: a certificate naming an OCSP responder or a CRL must have
# its status established from them (pyhanko_certvalidator's legacy "hard-fail" policy,
# RevocationCheckingRule.CHECK_IF_DECLARED for end entities and CAs alike).
REVOCATION_MODE = "hard-fail"


# --status-from: where the signer's status must come from. "any": what the certificate
# declares, the first that answers (OCSP for pyHanko); "both": the CRL and OCSP, each fetched
# and accepted; "crl": the CRL alone.
STATUS_RULES = {
    "both": RevocationCheckingRule.CRL_AND_OCSP_REQUIRED,
    "crl": RevocationCheckingRule.CRL_REQUIRED,
}


def fetching_context(
    root, session: aiohttp.ClientSession, status_from: str = "any"
) -> ValidationContext:
    """Hard-fail, fetching OCSP/CRL (and caIssuers) through `session` (the transcript)."""
    policy = RevocationCheckingPolicy.from_legacy(REVOCATION_MODE)
    if status_from in STATUS_RULES:
        policy = RevocationCheckingPolicy(
            ee_certificate_rule=STATUS_RULES[status_from],
            intermediate_ca_cert_rule=policy.intermediate_ca_cert_rule,
        )
    return ValidationContext(
        trust_roots=[root],
        allow_fetching=True,
        revinfo_policy=CertRevTrustPolicy(policy),
        fetcher_backend=AIOHttpFetcherBackend(session=session),
    )


def fetched(transcript: csc.Transcript) -> dict:
    return {
        "ocsp": sum(1 for c in transcript.calls if c.path.startswith("/pki/ocsp")),
        "crl": sum(1 for c in transcript.calls if c.path.endswith(".crl")),
    }


async def sign(args) -> dict:
    root = csc.load_cert(Path(args.root_cert))
    transcript = csc.Transcript(verbose=args.verbose)
    async with aiohttp.ClientSession(middlewares=(transcript.middleware,)) as session:
        token = await csc.login(session, args.base_url, args.user, args.password)
        info = csc_signer.CSCServiceSessionInfo(
            service_url=args.base_url,
            credential_id=args.credential_id,
            oauth_token=token,
            api_ver="v1",
        )
        try:
            cred = await csc_signer.fetch_certs_in_csc_credential(session, info)
        except SigningError as e:
            return refused_or_fail(args, transcript, f"credentials/info: {e}")
        auth = csc.SigilloAuthorizationManager(
            info,
            cred,
            session,
            api_version="v1",
            pin=args.pin,
            otp_cmd=None,
            outbox=Path(args.outbox),
            send_otp=True,
        )
        signer = csc_signer.CSCSigner(session, auth, batch_size=1)
        lt = args.level in ("b-lt", "b-lta")
        meta = signers.PdfSignatureMetadata(
            field_name="Signature1",
            reason=f"sigillo e2e {args.level}",
            subfilter=fields.SigSeedSubFilter.PADES,
            embed_validation_info=lt,
            use_pades_lta=args.level == "b-lta",
            validation_context=fetching_context(root, session) if lt else None,
        )
        timestamper = (
            HTTPTimeStamper(f"{args.base_url}/tsa", session=session) if lt else None
        )
        pdf_signer = signers.PdfSigner(meta, signer=signer, timestamper=timestamper)
        nonce = datetime.now().strftime("%Y%m%dT%H%M%S.%f")
        writer = IncrementalPdfFileWriter(BytesIO(csc.make_pdf(0, 1, nonce)))
        out = BytesIO()
        try:
            await asyncio.wait_for(
                pdf_signer.async_sign_pdf(writer, output=out), timeout=args.timeout
            )
        except (SigningError, asyncio.TimeoutError) as e:
            cause = f" (authorization: {auth.failure})" if auth.failure else ""
            return refused_or_fail(args, transcript, f"signing failed: {e!r}{cause}")
    if args.expect_refused:
        raise E2EFailure("signing succeeded, but it should have been refused")
    if transcript.count("/signatures/signHash") != 1:
        raise E2EFailure("expected one signatures/signHash call")
    tsa_calls = transcript.count("/tsa")
    want_tsa = {"b-b": 0, "b-lt": 1, "b-lta": 2}[args.level]
    # pyHanko also asks for one token up front to size the signature's placeholder.
    if tsa_calls < want_tsa or (want_tsa == 0 and tsa_calls):
        raise E2EFailure(f"{tsa_calls} calls to /tsa, expected {want_tsa} or more")
    Path(args.out).write_bytes(out.getvalue())
    return {
        "signed": args.out,
        "level": args.level,
        "tsa_calls": tsa_calls,
        "fetched": fetched(transcript),
    }


def refused_or_fail(args, transcript: csc.Transcript, why: str) -> dict:
    last = transcript.last_error()
    if not args.expect_refused:
        hint = ""
        if last is not None:
            hint = f"; last HTTP error: {last.method} {last.path} -> {last.status} "
            hint += csc._short_json(last.error_body or "")
        raise E2EFailure(why + hint)
    if last is None:
        raise E2EFailure(f"refused without an HTTP error from sigillo: {why}")
    try:
        body = json.loads(last.error_body or "")
    except ValueError:
        body = {}
    return {
        "refused": {
            "path": last.path,
            "status": last.status,
            "error": body.get("error"),
            "error_description": body.get("error_description"),
        }
    }


async def ades_lta(sig, root, session: aiohttp.ClientSession) -> dict:
    """pyHanko's PAdES long-term validation (ETSI EN 319 102-1 § 5.6.3), hard-fail.

    The present is validated with status fetched from sigillo; the past from the DSS, with
    the signature and document timestamps as proofs of existence: a certificate revoked
    after the signature timestamp leaves the signature PASSED.
    """
    policy = CertValidationPolicySpec(
        trust_manager=SimpleTrustManager.build(trust_roots=[root]),
        revinfo_policy=CertRevTrustPolicy(
            RevocationCheckingPolicy.from_legacy(REVOCATION_MODE)
        ),
    )
    spec = PdfSignatureValidationSpec(
        SignatureValidationSpec(
            cert_validation_policy=policy,
            revinfo_gathering_policy=RevocationInfoGatheringSpec(
                fetcher_backend=AIOHttpFetcherBackend(session=session)
            ),
        )
    )
    result = await ades_lta_validation(sig, spec)
    return {
        "status": result.ades_subindic.status.name,
        "subindication": result.ades_subindic.name,
        "best_signature_time": result.best_signature_time.isoformat()
        if result.best_signature_time
        else None,
        "failure": result.failure_msg,
    }


def signature_timestamp_time(sig) -> datetime | None:
    """genTime of the signature timestamp token (an unsigned attribute), if any."""
    for signed_data in generic_cms.extract_tst_data_iter(sig.signer_info, signed=False):
        return signed_data["encap_content_info"]["content"].parsed["gen_time"].native
    return None


async def validate(args) -> dict:
    root = csc.load_cert(Path(args.root_cert))
    transcript = csc.Transcript(verbose=args.verbose)
    with open(args.input, "rb") as f:
        reader = PdfFileReader(f)
        sigs = reader.embedded_regular_signatures
        if len(sigs) != 1:
            raise E2EFailure(f"{len(sigs)} signatures in {args.input}")
        sig = sigs[0]
        try:
            dss = DocumentSecurityStore.read_dss(reader)
        except NoDSSFoundError:
            dss = None
        doc_ts = [s for s in reader.embedded_timestamp_signatures]
        if args.embedded_only:
            if dss is None:
                raise E2EFailure("--embedded-only, but the document has no DSS")
            moment = signature_timestamp_time(sig)
            if moment is None:
                raise E2EFailure("--embedded-only, but no signature timestamp")
            vc = dss.as_validation_context(
                {
                    "trust_roots": [root],
                    "allow_fetching": False,
                    "revocation_mode": REVOCATION_MODE,
                    "moment": moment,
                    "retroactive_revinfo": True,
                }
            )
            status = await async_validate_pdf_signature(
                sig, signer_validation_context=vc, ts_validation_context=vc
            )
            lta = None
        else:
            moment = None
            async with aiohttp.ClientSession(
                middlewares=(transcript.middleware,)
            ) as session:
                vc = fetching_context(root, session, args.status_from)
                status = await async_validate_pdf_signature(
                    sig, signer_validation_context=vc, ts_validation_context=vc
                )
                lta = None
                if args.ades_lta:
                    anchor = csc.load_cert(Path(args.ades_lta))
                    lta = await ades_lta(sig, anchor, session)
    ts = status.timestamp_validity
    result = {
        "intact": status.intact,
        "valid": status.valid,
        "trusted": status.trusted,
        "revoked": status.revoked,
        "timestamped": ts is not None and ts.intact and ts.valid and ts.trusted,
        "timestamp_time": ts.timestamp.isoformat() if ts is not None else None,
        "dss": None
        if dss is None
        else {"certs": len(dss.certs), "ocsps": len(dss.ocsps), "crls": len(dss.crls)},
        "document_timestamps": len(doc_ts),
        "validated_at": moment.isoformat() if moment else "now",
        "fetched": fetched(transcript),
        "coverage": status.coverage.name,
        "summary": status.summary(),
        "ades_lta": lta,
    }
    problems = []
    if not status.intact or not status.valid:
        problems.append("not intact and valid")
    # B-LT/B-LTA: the DSS (and the document timestamp) are later incremental updates, so the
    # signature covers its revision; bottom_line checks what those updates changed.
    if status.coverage < SignatureCoverageLevel.ENTIRE_REVISION:
        problems.append(f"coverage {status.coverage}")
    if args.expect == "valid":
        if not status.trusted or status.revoked or not status.bottom_line:
            problems.append("not trusted (or revoked)")
        if signature_timestamp_time(sig) is not None and not result["timestamped"]:
            problems.append("its signature timestamp does not validate")
    elif not status.revoked:
        problems.append("not reported revoked")
    if lta is not None and lta["status"] != AdESStatus.PASSED.name:
        problems.append(f"PAdES LTA validation: {lta}")
    result["ok"] = not problems
    if problems:
        print(json.dumps(result), flush=True)
        raise E2EFailure(
            f"{args.input}: {'; '.join(problems)}\n{status.pretty_print_details()}"
        )
    return result


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="action", required=True)
    s = sub.add_parser("sign")
    s.add_argument("--base-url", required=True)
    s.add_argument("--user", required=True)
    s.add_argument("--password", required=True)
    s.add_argument("--pin", required=True)
    s.add_argument("--credential-id", required=True)
    s.add_argument("--outbox", required=True, help="sigillo's SMS outbox (JSON lines)")
    s.add_argument("--level", choices=("b-b", "b-lt", "b-lta"), required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--expect-refused", action="store_true")
    s.add_argument("--timeout", type=float, default=60.0)
    v = sub.add_parser("validate")
    v.add_argument("--in", dest="input", required=True)
    v.add_argument("--expect", choices=("valid", "revoked"), required=True)
    v.add_argument("--embedded-only", action="store_true")
    v.add_argument("--status-from", choices=("any", "both", "crl"), default="any",
                   help="where the signer's status must come from (see STATUS_RULES)")
    v.add_argument("--ades-lta", metavar="ANCHOR_PEM",
                   help="also run pyHanko's PAdES LTA validation with this trust anchor; "
                   "it must pass. pyHanko's past validation wants revocation info for every "
                   "CA below the anchor: sigillo's issuing CA certificate names the root's "
                   "CRL, so the root can be the anchor")
    for q in (s, v):
        q.add_argument("--root-cert", required=True)
        q.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args(argv)
    if args.action == "sign":
        args.base_url = args.base_url.rstrip("/")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        stream=sys.stderr,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        result = asyncio.run(sign(args) if args.action == "sign" else validate(args))
    except E2EFailure as e:
        sys.stderr.write(f"FAIL: {e}\n")
        return 1
    except Exception as e:  # noqa: BLE001 - any surprise is a failure
        log.exception("unexpected error")
        sys.stderr.write(f"FAIL: unexpected {type(e).__name__}: {e}\n")
        return 1
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
