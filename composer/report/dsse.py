"""Signed attestations: a DSSE envelope (https://github.com/secure-systems-lab/dsse, v1) around an in-toto
statement, signed with an ed25519 build key (pure: bytes and keys in, an envelope out).

The signature covers DSSE's pre-authentication encoding (PAE) of the payload type and the payload; ed25519
signatures are deterministic, so a signed provenance stays bit-for-bit reproducible. The key id is the key's
TUF key id (composer.trust.keys), which securesystemslib and in-toto tooling compute the same way.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidSignature

from composer.errors import VerificationError
from composer.trust.keys import PublicKey, SigningKey

PAYLOAD_TYPE = "application/vnd.in-toto+json"


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %b %d %b" % (len(kind), kind, len(payload), payload)


def sign(payload: bytes, key: SigningKey, *, payload_type: str = PAYLOAD_TYPE) -> dict[str, Any]:
    """The envelope of ``payload`` with one signature by ``key``."""
    signature = key.private.sign(pae(payload_type, payload))
    return {"payloadType": payload_type, "payload": base64.b64encode(payload).decode(),
            "signatures": [{"keyid": key.keyid, "sig": base64.b64encode(signature).decode()}]}


def _b64(text: object, where: str) -> bytes:
    if not isinstance(text, str):
        raise VerificationError(f"{where}: not a base64 string", hint="pass a DSSE envelope written by vcomp build")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise VerificationError(f"{where}: not valid base64", hint="the envelope is corrupt; rebuild it") from None


def verify(envelope: Mapping[str, Any], key: PublicKey, *, where: str) -> dict[str, Any]:
    """The statement of ``envelope`` once a signature by ``key`` verifies; else VerificationError naming the
    file (``where``) and why."""
    if envelope.get("payloadType") != PAYLOAD_TYPE or not isinstance(envelope.get("signatures"), list):
        raise VerificationError(f"{where}: not a DSSE envelope of an in-toto statement",
                                hint="pass the provenance.intoto.dsse.json written by vcomp build --sign-key")
    payload = _b64(envelope.get("payload"), f"{where}: payload")
    message = pae(PAYLOAD_TYPE, payload)
    for i, s in enumerate(envelope["signatures"]):
        if not isinstance(s, dict) or s.get("keyid", key.keyid) != key.keyid:
            continue
        try:
            key.crypto.verify(_b64(s.get("sig"), f"{where}: signatures[{i}].sig"), message)
        except InvalidSignature:
            raise VerificationError(f"{where}: the signature by key {key.keyid[:16]} does not verify",
                                    hint="the attestation was modified after signing") from None
        try:
            statement: dict[str, Any] = json.loads(payload)
        except ValueError:
            raise VerificationError(f"{where}: the signed payload is not JSON", hint="rebuild it") from None
        return statement
    raise VerificationError(f"{where}: no signature by key {key.keyid[:16]}",
                            hint="pass the public key of the build key that signed it (vcomp build --sign-key)")
