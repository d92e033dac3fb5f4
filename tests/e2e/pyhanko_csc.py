#!/usr/bin/env python3
"""End-to-end check of sigillo against pyHanko's own, unmodified CSC client.

Signs ``--count`` freshly made PDFs through sigillo with
``pyhanko.sign.signers.csc_signer.CSCSigner`` (the real third-party client from
PyPI, see requirements.txt), all of them in ONE ``signatures/signHash`` call,
then validates every result with pyHanko's own validator against the given
trust anchor, and prints one JSON line::

    {"signed": N, "valid": N, "signHash_calls": 1}

Exit status: 0 when every document is signed, intact, valid and trusted and the
batch went out as a single signHash call; 1 on any failure (the reason goes to
stderr, together with the body of any HTTP error sigillo answered); 2 on bad
arguments.

Flow:

1. ``POST {base}/csc/v2/auth/login`` with HTTP Basic user:password and ``{}``
   -> ``access_token``.
2. ``credentials/info`` through pyHanko's ``fetch_certs_in_csc_credential``
   (pyHanko formats the request and parses the answer).
3. N concurrent ``async_sign_pdf`` calls share one ``CSCSigner`` with
   ``batch_size=N``: each adds its hash to the open batch, the N-th one
   commits it.
4. The commit asks our ``CSCAuthorizationManager`` for a SAD bound to the N
   hashes: ``credentials/sendOTP`` (when the OTP comes from the SMS outbox),
   the OTP from ``--outbox`` or ``--otp-cmd``, then
   ``credentials/authorize`` with PIN, OTP and the hashes.
5. pyHanko calls ``signatures/signHash`` once with the N hashes.

Only the authorization manager is ours: pyHanko leaves obtaining the SAD to
the caller by design. Everything else is pyHanko's code path.

Run (from the repository root, with sigillo up and a user whose signing
credential is active)::

    python3 -m venv /tmp/pyh-venv
    /tmp/pyh-venv/bin/pip install -r tests/e2e/requirements.txt
    /tmp/pyh-venv/bin/python tests/e2e/pyhanko_csc.py \
        --base-url http://127.0.0.1:8080 --user mario --password '...' \
        --pin 12345678 --credential-id <id> \
        --outbox sms-outbox.jsonl \
        --root-cert root.pem --count 3 --out-dir target/e2e-pyhanko

``--outbox`` calls ``credentials/sendOTP`` and reads the code sigillo appends
to its SMS outbox; for a TOTP credential use ``--otp-cmd 'cmd printing the
code'`` instead (no sendOTP unless ``--send-otp``). ``-v`` prints every HTTP
call with its JSON body (PIN, OTP, SAD, tokens redacted).

Every option can also come from the environment (``SIGILLO_BASE_URL``,
``SIGILLO_USER``, ``SIGILLO_PASSWORD``, ``SIGILLO_PIN``,
``SIGILLO_CREDENTIAL_ID``, ``SIGILLO_OTP_CMD``, ``SIGILLO_OUTBOX``,
``SIGILLO_ROOT_CERT``, ``SIGILLO_COUNT``, ``SIGILLO_OUT_DIR``,
``SIGILLO_API_VERSION``).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import logging
import os
import re
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from io import BytesIO
from pathlib import Path

try:
    import aiohttp
    from asn1crypto import pem, x509
    from pyhanko.pdf_utils import generic
    from pyhanko.pdf_utils.generic import pdf_name
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.pdf_utils.writer import PageObject, PdfFileWriter
    from pyhanko.sign import fields, signers
    from pyhanko.sign.general import SigningError
    from pyhanko.sign.signers import csc_signer
    from pyhanko.sign.validation import async_validate_pdf_signature
    from pyhanko.sign.validation.status import SignatureCoverageLevel
    from pyhanko_certvalidator import ValidationContext
    from pyhanko_certvalidator.policy_decl import (
        NO_REVOCATION,
        CertRevTrustPolicy,
    )
except ImportError as e:  # pragma: no cover - environment problem
    sys.stderr.write(
        f"FAIL: missing dependency ({e}); install tests/e2e/requirements.txt "
        f"into a venv first\n"
    )
    sys.exit(1)

log = logging.getLogger("pyhanko_csc")

HASH_OIDS_BY_LEN = {
    32: "2.16.840.1.101.3.4.2.1",  # SHA-256
    48: "2.16.840.1.101.3.4.2.2",  # SHA-384
    64: "2.16.840.1.101.3.4.2.3",  # SHA-512
}
SECRET_KEYS = {"PIN", "OTP", "SAD", "access_token", "refresh_token", "value"}


class E2EFailure(Exception):
    """A check failed; the message says which."""


# --------------------------------------------------------------------------
# HTTP transcript: every request pyHanko or we make goes through this
# aiohttp client middleware, which counts calls per endpoint and keeps the
# body of error answers (pyHanko uses raise_for_status=True, which would
# otherwise swallow sigillo's {"error", "error_description"}).
# --------------------------------------------------------------------------


def _redact(obj):
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if k in SECRET_KEYS and isinstance(v, str):
                out[k] = "<redacted>"
            else:
                out[k] = _redact(v)
        return out
    if isinstance(obj, list):
        return [_redact(v) for v in obj]
    return obj


def _short_json(text: str, limit: int = 2000) -> str:
    try:
        text = json.dumps(_redact(json.loads(text)))
    except (ValueError, TypeError):
        pass
    return text if len(text) <= limit else text[:limit] + "...(truncated)"


@dataclass
class CallRecord:
    method: str
    path: str
    status: int
    request_json: object | None
    error_body: str | None = None


@dataclass
class Transcript:
    verbose: bool = False
    calls: list[CallRecord] = field(default_factory=list)

    def count(self, suffix: str) -> int:
        return sum(1 for c in self.calls if c.path.endswith(suffix))

    def find(self, suffix: str) -> list[CallRecord]:
        return [c for c in self.calls if c.path.endswith(suffix)]

    def last_error(self) -> CallRecord | None:
        errs = [c for c in self.calls if c.status >= 400]
        return errs[-1] if errs else None

    async def middleware(self, req, handler):
        body_text = None
        body = req.body
        if body:
            try:
                body_text = body.decode()
            except Exception:  # noqa: BLE001 - diagnostics only
                body_text = None
        request_json = None
        if body_text:
            try:
                request_json = json.loads(body_text)
            except ValueError:
                request_json = None
        resp = await handler(req)
        rec = CallRecord(
            method=req.method,
            path=req.url.path,
            status=resp.status,
            request_json=request_json,
        )
        if resp.status >= 400:
            # read() caches the body, so the caller can still consume it
            raw = await resp.read()
            rec.error_body = raw.decode("utf-8", "replace")
            log.error(
                "HTTP %s %s -> %d %s",
                req.method,
                req.url.path,
                resp.status,
                _short_json(rec.error_body),
            )
        self.calls.append(rec)
        if self.verbose:
            sys.stderr.write(
                f"[http] {req.method} {req.url.path} -> {resp.status} "
                f"request={_short_json(body_text or '')}\n"
            )
        return resp


# --------------------------------------------------------------------------
# OTP sources
# --------------------------------------------------------------------------

OTP_RE = re.compile(r"(?<!\d)(\d{6})(?!\d)")


def _outbox_lines(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    return [line for line in text.splitlines() if line.strip()]


def otp_from_outbox_line(line: str) -> str:
    try:
        msg = json.loads(line)
        text = msg["text"]
    except (ValueError, KeyError, TypeError) as e:
        raise E2EFailure(f"outbox line is not {{'text': ...}} JSON: {line!r}") from e
    m = OTP_RE.search(str(text))
    if not m:
        raise E2EFailure(f"no 6-digit code in the newest outbox message: {text!r}")
    return m.group(1)


async def wait_new_outbox_otp(path: Path, lines_before: int, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while True:
        lines = _outbox_lines(path)
        if len(lines) > lines_before:
            return otp_from_outbox_line(lines[-1])
        if time.monotonic() >= deadline:
            raise E2EFailure(
                f"no new message in the SMS outbox {path} within {timeout:.0f}s "
                f"after credentials/sendOTP"
            )
        await asyncio.sleep(0.1)


def otp_from_command(cmd: str) -> str:
    try:
        out = subprocess.run(
            cmd, shell=True, check=True, capture_output=True, text=True, timeout=30
        )
    except subprocess.CalledProcessError as e:
        raise E2EFailure(
            f"--otp-cmd failed with status {e.returncode}: {e.stderr.strip()}"
        ) from e
    except subprocess.TimeoutExpired as e:
        raise E2EFailure("--otp-cmd timed out") from e
    otp = out.stdout.strip()
    if not otp:
        raise E2EFailure("--otp-cmd printed nothing")
    return otp


# --------------------------------------------------------------------------
# The SAD: pyHanko's CSCSigner calls authorize_signature(hash_b64s) once per
# batch, right before signatures/signHash, and uses the returned
# CSCAuthorizationInfo.sad as "SAD" in that call.
# --------------------------------------------------------------------------


class SigilloAuthorizationManager(csc_signer.CSCAuthorizationManager):
    def __init__(
        self,
        csc_session_info: csc_signer.CSCServiceSessionInfo,
        credential_info: csc_signer.CSCCredentialInfo,
        session: aiohttp.ClientSession,
        *,
        api_version: str,
        pin: str | None,
        otp_cmd: str | None,
        outbox: Path | None,
        send_otp: bool,
        outbox_timeout: float = 10.0,
    ):
        super().__init__(csc_session_info, credential_info)
        self.session = session
        self.api_version = api_version
        self.pin = pin
        self.otp_cmd = otp_cmd
        self.outbox = outbox
        self.send_otp = send_otp
        self.outbox_timeout = outbox_timeout
        self.authorized_hashes: list[list[str]] = []
        self.failure: Exception | None = None

    def _url(self, endpoint: str) -> str:
        base = self.csc_session_info.service_url
        return f"{base}/csc/{self.api_version}/{endpoint}"

    def _post(self, endpoint: str, body: dict):
        return self.session.post(
            self._url(endpoint), headers=self.auth_headers, json=body
        )

    async def _obtain_otp(self) -> str | None:
        lines_before = len(_outbox_lines(self.outbox)) if self.outbox else 0
        if self.send_otp:
            async with self._post(
                "credentials/sendOTP",
                {"credentialID": self.csc_session_info.credential_id},
            ) as resp:
                if resp.status not in (200, 204):
                    raise SigningError(
                        f"credentials/sendOTP answered HTTP {resp.status}: "
                        f"{_short_json(await resp.text())}"
                    )
        if self.outbox is not None:
            try:
                return await wait_new_outbox_otp(
                    self.outbox, lines_before, self.outbox_timeout
                )
            except E2EFailure as e:
                raise SigningError(str(e)) from e
        if self.otp_cmd is not None:
            try:
                return otp_from_command(self.otp_cmd)
            except E2EFailure as e:
                raise SigningError(str(e)) from e
        return None

    def _v2_auth_request(self, hash_b64s: list[str], otp: str | None) -> dict:
        lengths = {len(base64.b64decode(h)) for h in hash_b64s}
        if len(lengths) != 1 or next(iter(lengths)) not in HASH_OIDS_BY_LEN:
            raise SigningError(f"unexpected hash lengths {sorted(lengths)}")
        auth_data = []
        if self.pin is not None:
            auth_data.append({"id": "PIN", "value": self.pin})
        if otp is not None:
            auth_data.append({"id": "OTP", "value": otp})
        body: dict = {
            "credentialID": self.csc_session_info.credential_id,
            "numSignatures": len(hash_b64s),
            "hashes": hash_b64s,
            "hashAlgorithmOID": HASH_OIDS_BY_LEN[lengths.pop()],
        }
        if auth_data:
            body["authData"] = auth_data
        return body

    async def authorize_signature(
        self, hash_b64s: list[str]
    ) -> csc_signer.CSCAuthorizationInfo:
        self.authorized_hashes.append(list(hash_b64s))
        try:
            return await self._authorize(hash_b64s)
        except Exception as e:
            # pyHanko only logs this and tells the waiting signers "No signing
            # results available"; keep it for the final message.
            self.failure = e
            raise

    async def _authorize(
        self, hash_b64s: list[str]
    ) -> csc_signer.CSCAuthorizationInfo:
        otp = await self._obtain_otp()
        if self.api_version == "v1":
            # pyHanko's own v1 formatter: {credentialID, hash, numSignatures,
            # PIN, OTP} with numSignatures forced to len(hash)
            body = self.format_csc_auth_request(
                pin=self.pin, otp=otp, hash_b64s=list(hash_b64s)
            )
        else:
            body = self._v2_auth_request(list(hash_b64s), otp)
        async with self._post("credentials/authorize", body) as resp:
            if resp.status != 200:
                raise SigningError(
                    f"credentials/authorize answered HTTP {resp.status}: "
                    f"{_short_json(await resp.text())}"
                )
            try:
                data = await resp.json(content_type=None)
            except (aiohttp.ContentTypeError, ValueError) as e:
                raise SigningError("credentials/authorize did not answer JSON") from e
        # pyHanko's own parser: str(SAD), expiresIn (default 3600) -> expiry
        return self.parse_csc_auth_response(data)


# --------------------------------------------------------------------------
# Inputs and outputs
# --------------------------------------------------------------------------


def make_pdf(index: int, total: int, nonce: str) -> bytes:
    """A one-page PDF with a line of text that differs per document."""
    w = PdfFileWriter(stream_xrefs=False)
    font = w.add_object(
        generic.DictionaryObject(
            {
                pdf_name("/Type"): pdf_name("/Font"),
                pdf_name("/Subtype"): pdf_name("/Type1"),
                pdf_name("/BaseFont"): pdf_name("/Helvetica"),
            }
        )
    )
    text = f"sigillo e2e: document {index + 1} of {total} ({nonce})"
    text = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
    content = generic.StreamObject(
        stream_data=f"BT /F1 14 Tf 72 720 Td ({text}) Tj ET".encode("latin-1")
    )
    resources = generic.DictionaryObject(
        {pdf_name("/Font"): generic.DictionaryObject({pdf_name("/F1"): font})}
    )
    w.insert_page(PageObject(w.add_object(content), (0, 0, 595, 842), resources))
    out = BytesIO()
    w.write(out)
    return out.getvalue()


def load_cert(path: Path) -> x509.Certificate:
    data = path.read_bytes()
    if pem.detect(data):
        _, _, data = pem.unarmor(data)
    return x509.Certificate.load(data)


async def login(
    session: aiohttp.ClientSession, base_url: str, user: str, password: str
) -> str:
    url = f"{base_url}/csc/v2/auth/login"
    basic = base64.b64encode(f"{user}:{password}".encode("utf-8")).decode("ascii")
    async with session.post(
        url, json={}, headers={"Authorization": f"Basic {basic}"}
    ) as resp:
        if resp.status != 200:
            raise E2EFailure(
                f"auth/login answered HTTP {resp.status}: "
                f"{_short_json(await resp.text())}"
            )
        try:
            data = await resp.json(content_type=None)
            token = data["access_token"]
        except (aiohttp.ContentTypeError, ValueError, KeyError, TypeError) as e:
            raise E2EFailure("auth/login: no access_token in a JSON answer") from e
    if not isinstance(token, str) or not token:
        raise E2EFailure("auth/login: access_token is not a non-empty string")
    return token


async def list_single_credential(
    session: aiohttp.ClientSession, base_url: str, api_version: str, token: str
) -> str:
    url = f"{base_url}/csc/{api_version}/credentials/list"
    async with session.post(
        url, json={}, headers={"Authorization": f"Bearer {token}"}
    ) as resp:
        if resp.status != 200:
            raise E2EFailure(
                f"credentials/list answered HTTP {resp.status}: "
                f"{_short_json(await resp.text())}"
            )
        data = await resp.json(content_type=None)
    ids = data.get("credentialIDs")
    if not isinstance(ids, list) or len(ids) != 1:
        raise E2EFailure(
            f"--credential-id not given and credentials/list returned {ids!r}; "
            f"pass the signing credential's ID explicitly"
        )
    return ids[0]


def validation_context(root: x509.Certificate) -> ValidationContext:
    # No CRL/OCSP yet at the gateway: revocation is not checked at all.
    return ValidationContext(
        trust_roots=[root],
        allow_fetching=False,
        revinfo_policy=CertRevTrustPolicy(NO_REVOCATION),
    )


@dataclass
class Outcome:
    path: Path
    intact: bool
    valid: bool
    trusted: bool
    ok: bool
    details: str


async def validate_file(
    path: Path, root: x509.Certificate, expected_cert: x509.Certificate
) -> Outcome:
    with path.open("rb") as f:
        reader = PdfFileReader(f)
        sigs = reader.embedded_signatures
        if len(sigs) != 1:
            return Outcome(path, False, False, False, False, f"{len(sigs)} signatures")
        status = await async_validate_pdf_signature(
            sigs[0], signer_validation_context=validation_context(root)
        )
    problems = []
    if not status.intact:
        problems.append("not intact (document digest mismatch)")
    if not status.valid:
        problems.append("signature value invalid")
    if not status.trusted:
        problems.append(
            "signer certificate not trusted w.r.t. --root-cert (no path to it, "
            "or the leaf lacks keyUsage nonRepudiation, which pyHanko requires)"
        )
    if status.coverage != SignatureCoverageLevel.ENTIRE_FILE:
        problems.append(f"coverage is {status.coverage}")
    if status.signing_cert.dump() != expected_cert.dump():
        problems.append("signed by another certificate than credentials/info's")
    if not status.bottom_line:
        problems.append("bottom line is negative")
    ok = not problems
    details = "; ".join(problems)
    if not ok:
        details += "\n" + status.pretty_print_details()
    return Outcome(path, status.intact, status.valid, status.trusted, ok, details)


# --------------------------------------------------------------------------
# Main flow
# --------------------------------------------------------------------------


async def run(args) -> dict:
    root = load_cert(Path(args.root_cert))
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    n = args.count
    transcript = Transcript(verbose=args.verbose)

    ssl_ctx: ssl.SSLContext | bool | None = None
    if args.tls_ca:
        ssl_ctx = ssl.create_default_context(cafile=args.tls_ca)
    connector = aiohttp.TCPConnector(ssl=ssl_ctx if ssl_ctx is not None else True)

    async with aiohttp.ClientSession(
        connector=connector, middlewares=(transcript.middleware,)
    ) as session:
        token = await login(session, args.base_url, args.user, args.password)
        credential_id = args.credential_id or await list_single_credential(
            session, args.base_url, args.api_version, token
        )
        session_info = csc_signer.CSCServiceSessionInfo(
            service_url=args.base_url,
            credential_id=credential_id,
            oauth_token=token,
            api_ver=args.api_version,
        )
        try:
            cred = await csc_signer.fetch_certs_in_csc_credential(
                session, session_info
            )
        except SigningError as e:
            raise E2EFailure(
                f"pyHanko could not use credentials/info: {e}"
                + (f" (cause: {e.__cause__})" if e.__cause__ else "")
            ) from e
        log.info(
            "credential %s: signer %s, %d chain cert(s), algos %s, "
            "multisign %d, SCAL %s",
            credential_id,
            cred.signing_cert.subject.human_friendly,
            len(cred.chain),
            sorted(cred.supported_mechanisms),
            cred.max_batch_size,
            "2" if cred.hash_pinning_required else "1",
        )
        if n > cred.max_batch_size:
            raise E2EFailure(
                f"--count {n} exceeds the credential's multisign "
                f"{cred.max_batch_size}: one signHash call cannot carry it"
            )

        auth = SigilloAuthorizationManager(
            session_info,
            cred,
            session,
            api_version=args.api_version,
            pin=args.pin,
            otp_cmd=args.otp_cmd,
            outbox=Path(args.outbox) if args.outbox else None,
            send_otp=args.send_otp,
        )
        signer = csc_signer.CSCSigner(
            session,
            auth,
            batch_size=n,
            batch_autocommit=True,
            prefer_pss=args.prefer_pss,
        )

        nonce = datetime.now().strftime("%Y%m%dT%H%M%S.%f")
        sources = [make_pdf(i, n, nonce) for i in range(n)]
        subfilter = (
            fields.SigSeedSubFilter.PADES
            if args.subfilter == "pades"
            else fields.SigSeedSubFilter.ADOBE_PKCS7_DETACHED
        )

        async def sign_one(i: int) -> bytes:
            meta = signers.PdfSignatureMetadata(
                field_name="Signature1",
                reason=f"sigillo e2e {i + 1}/{n}",
                subfilter=subfilter,
                md_algorithm=args.md,
            )
            writer = IncrementalPdfFileWriter(BytesIO(sources[i]))
            out = BytesIO()
            await signers.async_sign_pdf(writer, meta, signer=signer, output=out)
            return out.getvalue()

        try:
            signed = await asyncio.wait_for(
                asyncio.gather(*(sign_one(i) for i in range(n))),
                timeout=args.timeout,
            )
        except asyncio.TimeoutError as e:
            raise E2EFailure(
                f"signing did not finish within {args.timeout}s "
                f"(batch never committed?)"
            ) from e
        except SigningError as e:
            last = transcript.last_error()
            hint = (
                f"; last HTTP error: {last.method} {last.path} -> "
                f"{last.status} {_short_json(last.error_body or '')}"
                if last
                else ""
            )
            if auth.failure is not None:
                hint = f"; authorization failed: {auth.failure}" + hint
            raise E2EFailure(f"pyHanko signing failed: {e}{hint}") from e

    sign_calls = transcript.find("/signatures/signHash")
    if len(sign_calls) != 1:
        raise E2EFailure(
            f"expected ONE signatures/signHash call for {n} documents, "
            f"saw {len(sign_calls)}"
        )
    body = sign_calls[0].request_json or {}
    hashes = body.get("hash") or body.get("hashes") or []
    if len(hashes) != n:
        raise E2EFailure(f"the signHash call carried {len(hashes)} hashes, not {n}")
    if auth.authorized_hashes != [hashes]:
        raise E2EFailure("the SAD was not requested for exactly the signed hashes")

    for stale in out_dir.glob("signed-*.pdf"):
        stale.unlink()
    paths = []
    for i, data in enumerate(signed):
        p = out_dir / f"signed-{i + 1}.pdf"
        p.write_bytes(data)
        paths.append(p)

    outcomes = [await validate_file(p, root, cred.signing_cert) for p in paths]
    bad = [o for o in outcomes if not o.ok]
    for o in bad:
        sys.stderr.write(f"FAIL: {o.path}: {o.details}\n")
    summary = {
        "signed": len(signed),
        "valid": sum(1 for o in outcomes if o.ok),
        "signHash_calls": len(sign_calls),
    }
    if bad:
        print(json.dumps(summary), flush=True)
        raise E2EFailure(f"{len(bad)} of {n} signed PDFs did not validate")
    return summary


def parse_args(argv=None):
    env = os.environ.get
    p = argparse.ArgumentParser(
        description="Sign PDFs through sigillo with pyHanko's CSC client in one "
        "signHash batch, and validate them with pyHanko.",
    )
    p.add_argument("--base-url", default=env("SIGILLO_BASE_URL"),
                   help="gateway base URL, e.g. http://127.0.0.1:8080 "
                   "(the part before /csc/v1/...)")
    p.add_argument("--api-version", choices=("v1", "v2"),
                   default=env("SIGILLO_API_VERSION", "v1"),
                   help="URL prefix for pyHanko's calls and the version of our "
                   "sendOTP/authorize calls. NOTE: pyHanko implements CSC "
                   "1.0.4.0 only; 'v2' just changes its URLs, its signHash body "
                   "stays v1 ('hash', 'hashAlgo'), which a strict v2 server "
                   "rejects. Default v1.")
    p.add_argument("--user", default=env("SIGILLO_USER"))
    p.add_argument("--password", default=env("SIGILLO_PASSWORD"))
    p.add_argument("--pin", default=env("SIGILLO_PIN"))
    p.add_argument("--credential-id", default=env("SIGILLO_CREDENTIAL_ID"),
                   help="default: the only credential credentials/list returns")
    otp = p.add_mutually_exclusive_group()
    otp.add_argument("--otp-cmd", default=env("SIGILLO_OTP_CMD"),
                     help="shell command printing the OTP (e.g. a TOTP "
                     "generator); run once per authorize")
    otp.add_argument("--outbox", default=env("SIGILLO_OUTBOX"),
                     help="sigillo's SMS outbox (JSON lines); the OTP is the "
                     "6-digit code in the 'text' of the message that "
                     "credentials/sendOTP appends")
    p.add_argument("--send-otp", dest="send_otp", action="store_true",
                   default=None,
                   help="call credentials/sendOTP before authorize "
                   "(default: only with --outbox)")
    p.add_argument("--no-send-otp", dest="send_otp", action="store_false")
    p.add_argument("--root-cert", default=env("SIGILLO_ROOT_CERT"),
                   help="trust anchor (PEM or DER)")
    p.add_argument("--count", type=int, default=int(env("SIGILLO_COUNT", "3")),
                   help="number of PDFs, all signed in one signHash (default 3)")
    p.add_argument("--out-dir", default=env("SIGILLO_OUT_DIR", "target/e2e-pyhanko"))
    p.add_argument("--md", choices=("sha256", "sha384", "sha512"), default=None,
                   help="digest; default: pyHanko's choice for the key "
                   "(P-256/RSA-2048: sha256, P-384/RSA-3072: sha384)")
    p.add_argument("--subfilter", choices=("pades", "pkcs7"), default="pades",
                   help="ETSI.CAdES.detached (default) or adbe.pkcs7.detached")
    p.add_argument("--prefer-pss", action="store_true",
                   help="RSA keys: ask for RSASSA-PSS instead of PKCS#1 v1.5")
    p.add_argument("--tls-ca", default=env("SIGILLO_TLS_CA"),
                   help="CA bundle for an https base URL")
    p.add_argument("--timeout", type=float, default=120.0,
                   help="seconds allowed for the whole signing batch")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="log every HTTP call (secrets redacted) to stderr")
    args = p.parse_args(argv)

    missing = [
        name
        for name, val in (
            ("--base-url", args.base_url),
            ("--user", args.user),
            ("--password", args.password),
            ("--root-cert", args.root_cert),
        )
        if not val
    ]
    if missing:
        p.error("missing " + ", ".join(missing))
    if args.count < 1:
        p.error("--count must be at least 1")
    args.base_url = args.base_url.rstrip("/")
    if args.send_otp is None:
        args.send_otp = bool(args.outbox)
    if not Path(args.root_cert).is_file():
        p.error(f"--root-cert {args.root_cert}: no such file")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        stream=sys.stderr,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        summary = asyncio.run(run(args))
    except E2EFailure as e:
        sys.stderr.write(f"FAIL: {e}\n")
        return 1
    except aiohttp.ClientError as e:
        sys.stderr.write(f"FAIL: HTTP request to {args.base_url} failed: {e}\n")
        return 1
    except Exception as e:  # noqa: BLE001 - any surprise is a failure
        log.exception("unexpected error")
        sys.stderr.write(f"FAIL: unexpected {type(e).__name__}: {e}\n")
        return 1
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
