"""Keys and tokens for the JWT integration tests.

Everything here is minted at test time with libraries independent of the
module: Debian's python3-jwt (PyJWT) and python3-cryptography.  The keys
are made fresh once per test run (RSA 2048, EC P-256 and P-384, Ed25519,
an HMAC secret) and written into a test's temp dir as a JWKS (with kids)
and as PEM.

Tokens the attacks need and PyJWT refuses to make (HS256 keyed with a
PEM, a DER ECDSA signature, alg "none" spellings, broken encodings) are
built by hand from the same pieces: base64url of the header and payload
JSON, then a signature from cryptography or hmac.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import string
import time
from typing import Dict, Optional

import jwt  # PyJWT (python3-jwt)
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

# alg -> the name of the key (in KeySet.priv) that signs it, and its kid
ALG_KEY = {
    "RS256": "rsa", "RS384": "rsa", "RS512": "rsa",
    "PS256": "rsa", "PS384": "rsa", "PS512": "rsa",
    "ES256": "ec256", "ES384": "ec384",
    "EdDSA": "ed",
    "HS256": "hmac", "HS384": "hmac", "HS512": "hmac",
}

ALL_ALGS = tuple(ALG_KEY)

KIDS = {"rsa": "rsa-1", "ec256": "ec-p256", "ec384": "ec-p384",
        "ed": "ed-1"}


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64u_json(obj) -> str:
    if isinstance(obj, (bytes, bytearray)):
        return b64u(bytes(obj))
    if isinstance(obj, str):
        return b64u(obj.encode())
    return b64u(json.dumps(obj, separators=(",", ":")).encode())


def _int_bytes(n: int, size: Optional[int] = None) -> bytes:
    size = size or max(1, (n.bit_length() + 7) // 8)
    return n.to_bytes(size, "big")


def jwk_of(pub, kid: Optional[str]) -> Dict[str, str]:
    """A public JWK (RFC 7517/7518/8037) of a cryptography public key."""
    if isinstance(pub, rsa.RSAPublicKey):
        nums = pub.public_numbers()
        d = {"kty": "RSA", "n": b64u(_int_bytes(nums.n)),
             "e": b64u(_int_bytes(nums.e))}
    elif isinstance(pub, ec.EllipticCurvePublicKey):
        nums = pub.public_numbers()
        size = (pub.curve.key_size + 7) // 8
        crv = {"secp256r1": "P-256", "secp384r1": "P-384"}[pub.curve.name]
        d = {"kty": "EC", "crv": crv, "x": b64u(_int_bytes(nums.x, size)),
             "y": b64u(_int_bytes(nums.y, size))}
    elif isinstance(pub, ed25519.Ed25519PublicKey):
        raw = pub.public_bytes(serialization.Encoding.Raw,
                               serialization.PublicFormat.Raw)
        d = {"kty": "OKP", "crv": "Ed25519", "x": b64u(raw)}
    else:
        raise TypeError(pub)
    if kid is not None:
        d["kid"] = kid
    d["use"] = "sig"
    return d


def pem_of(pub) -> bytes:
    return pub.public_bytes(serialization.Encoding.PEM,
                            serialization.PublicFormat.SubjectPublicKeyInfo)


class KeySet:
    """One run's keys.  priv[name] is a private key (bytes for "hmac")."""

    _shared: Optional["KeySet"] = None

    def __init__(self):
        self.priv = {
            "rsa": rsa.generate_private_key(65537, 2048),
            # the attacker's key, published nowhere, given the kid "rsa-1"
            "rsa_other": rsa.generate_private_key(65537, 2048),
            "ec256": ec.generate_private_key(ec.SECP256R1()),
            "ec384": ec.generate_private_key(ec.SECP384R1()),
            "ed": ed25519.Ed25519PrivateKey.generate(),
            # 64 printable bytes: long enough for HS256, HS384 and HS512
            "hmac": "".join(secrets.choice(string.ascii_letters
                                           + string.digits)
                            for _ in range(64)).encode(),
        }

    @classmethod
    def shared(cls) -> "KeySet":
        """The keys of this test run (made on first use)."""
        if cls._shared is None:
            cls._shared = cls()
        return cls._shared

    def pub(self, name: str):
        return self.priv[name].public_key()

    def jwks(self) -> Dict[str, list]:
        return {"keys": [jwk_of(self.pub(n), kid)
                         for n, kid in KIDS.items()]}

    def write(self, d: str) -> Dict[str, str]:
        """Writes the key files into d; returns {name: path}:
        jwks (every public key, with kids), rsa_pem (the RSA public key
        alone), rsa_jwks (the RSA key alone, kid rsa-1), secret (the HMAC
        secret plus the newline an editor adds)."""
        paths = {}

        def put(name, fname, data: bytes):
            p = os.path.join(d, fname)
            with open(p, "wb") as f:
                f.write(data)
            paths[name] = p

        put("jwks", "jwks.json", json.dumps(self.jwks(), indent=2).encode())
        put("rsa_pem", "rsa.pem", pem_of(self.pub("rsa")))
        put("rsa_jwks", "rsa-jwks.json", json.dumps(
            {"keys": [jwk_of(self.pub("rsa"), KIDS["rsa"])]}).encode())
        put("secret", "hs.secret", self.priv["hmac"] + b"\n")
        return paths

    # -- tokens

    def mint(self, alg: str, claims: dict, kid: Optional[str] = "auto",
             key: Optional[str] = None, headers: Optional[dict] = None,
             ttl: Optional[int] = 300) -> str:
        """A token signed by PyJWT with the key for alg (or key=name).
        kid "auto" puts the key's kid in the header (none for HS*).  exp is
        now + ttl unless claims has exp or ttl is None."""
        name = key or ALG_KEY[alg]
        c = dict(claims)
        if ttl is not None and "exp" not in c:
            c["exp"] = int(time.time()) + ttl
        h = dict(headers or {})
        if kid == "auto":
            kid = KIDS.get(name.replace("_other", ""))
        if kid is not None:
            h["kid"] = kid
        tok = jwt.encode(c, self.priv[name], algorithm=alg, headers=h or None)
        return tok if isinstance(tok, str) else tok.decode()


def hand(header, payload, sig: bytes = b"") -> str:
    """A compact token from a header and payload (objects, or raw
    bytes/str to encode as they are) and signature bytes."""
    return f"{b64u_json(header)}.{b64u_json(payload)}.{b64u(sig)}"


def hmac_token(secret: bytes, alg: str, header: dict, payload: dict) -> str:
    """HS* signed by hand: PyJWT refuses a PEM as an HMAC secret, which is
    exactly the key-confusion attack to be tried."""
    md = {"HS256": hashlib.sha256, "HS384": hashlib.sha384,
          "HS512": hashlib.sha512}[alg]
    h = dict(header, alg=alg)
    signing_input = f"{b64u_json(h)}.{b64u_json(payload)}"
    sig = hmac.new(secret, signing_input.encode(), md).digest()
    return f"{signing_input}.{b64u(sig)}"


def es256_der_token(key, header: dict, payload: dict) -> str:
    """ES256 signed by cryptography, left in its DER encoding instead of
    JOSE's raw r || s (RFC 7518 section 3.4)."""
    h = dict(header, alg="ES256")
    signing_input = f"{b64u_json(h)}.{b64u_json(payload)}"
    der = key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
    return f"{signing_input}.{b64u(der)}"


def split(token: str):
    """header, payload (decoded JSON objects), signature (str)."""
    h, p, s = token.split(".")

    def dec(x):
        return json.loads(base64.urlsafe_b64decode(x + "=" * (-len(x) % 4)))
    return dec(h), dec(p), s
