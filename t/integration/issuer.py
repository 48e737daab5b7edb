"""A loopback token issuer shaped like Clerk, for the tests of keys
fetched from a JWKS URL.

It serves its public keys at /.well-known/jwks.json (counting every
fetch), mints Clerk session tokens of both versions with PyJWT, rotates
its signing key, and can be stopped and started again on the same port
to play an issuer that is down.

    iss = Issuer().start()
    iss.jwks_url                        # http://127.0.0.1:PORT/.well-known/...
    iss.mint_v2("user_1", org="org_1", pla="o:pro")
    iss.mint_v1("user_1", org_id="org_1", plan="team")
    iss.rotate()                        # new key published and used
    iss.hits                            # JWKS fetches so far
    iss.stop(); iss.start()
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import secrets
import shutil
import ssl
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Dict, List, Optional

import jwt  # PyJWT (python3-jwt)
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from harness import free_port
from jwt_keys import jwk_of

ISSUER = "https://clerk.example.test"
AZP = "https://app.example.test"
JWKS_PATH = "/.well-known/jwks.json"


def new_rsa():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class Issuer:
    """A JWKS endpoint with one or more RSA keys; the newest signs."""

    def __init__(self, port: Optional[int] = None, tls: bool = False):
        self.port = port or free_port()
        self.tls = tls                        # a self-signed certificate
        self.keys: List[tuple] = []           # (kid, private key)
        self.lock = threading.Lock()
        self.hits = 0
        self.server: Optional[ThreadingHTTPServer] = None
        self.thread: Optional[threading.Thread] = None
        self.add_key()

    # -- keys

    def add_key(self) -> str:
        kid = "ins_" + secrets.token_hex(8)
        with self.lock:
            self.keys.append((kid, new_rsa()))
        return kid

    def rotate(self, keep_old: bool = True) -> str:
        """Publishes a new key that signs from now on; the old ones stay
        published unless keep_old is False."""
        kid = self.add_key()
        if not keep_old:
            with self.lock:
                self.keys = self.keys[-1:]
        return kid

    @property
    def kid(self) -> str:
        return self.keys[-1][0]

    def jwks(self) -> bytes:
        with self.lock:
            keys = [dict(jwk_of(k.public_key(), kid), alg="RS256", use="sig")
                    for kid, k in self.keys]
        return json.dumps({"keys": keys}).encode()

    @property
    def jwks_url(self) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self.port}{JWKS_PATH}"

    # -- tokens

    def sign(self, claims: dict, kid: Optional[str] = None,
             key=None) -> str:
        """claims with iat/nbf/exp around now, RS256 with the current key
        (or the given kid/key)."""
        now = int(time.time())
        c = {"iss": ISSUER, "azp": AZP, "iat": now, "nbf": now - 5,
             "exp": now + 300}
        c.update(claims)
        if key is None:
            kid = kid or self.kid
            key = dict(self.keys)[kid]
        return jwt.encode(c, key, algorithm="RS256", headers={"kid": kid})

    def mint_v2(self, sub: str, org: Optional[str] = None,
                pla: Optional[str] = None, **extra) -> str:
        """A Clerk v2 session token: v, o {id, rol, slg}, pla."""
        c: Dict[str, object] = {"sub": sub, "sid": "sess_" + sub, "v": 2,
                                "fva": [0, -1]}
        if org:
            c["o"] = {"id": org, "rol": "admin", "slg": org.lower()}
        if pla is not None:
            c["pla"] = pla
        c.update(extra)
        return self.sign(c)

    def mint_v1(self, sub: str, org_id: Optional[str] = None,
                plan: Optional[str] = None, **extra) -> str:
        """A Clerk v1 session token: org_id, org_role and the plan in
        public_metadata (a custom session-token claim)."""
        c: Dict[str, object] = {"sub": sub, "sid": "sess_" + sub}
        if org_id:
            c.update(org_id=org_id, org_role="org:admin", org_slug="acme")
        if plan is not None:
            c["public_metadata"] = {"plan": plan}
        c.update(extra)
        return self.sign(c)

    # -- serving

    def start(self) -> "Issuer":
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path != JWKS_PATH:
                    self.send_error(404)
                    return
                with issuer.lock:
                    issuer.hits += 1
                body = issuer.jwks()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        if self.tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            cert, key = self_signed()
            ctx.load_cert_chain(cert, key)
            shutil.rmtree(os.path.dirname(cert), ignore_errors=True)
            self.server.socket = ctx.wrap_socket(self.server.socket,
                                                 server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       daemon=True)
        self.thread.start()
        return self

    def stop(self):
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.thread.join(5)
        self.server = None


def self_signed():
    """(certificate file, key file) of a self-signed certificate for
    127.0.0.1, which no CA store trusts."""
    key = new_rsa()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
            .sign(key, hashes.SHA256()))
    d = tempfile.mkdtemp(prefix="ug-issuer-")
    cert_path = os.path.join(d, "cert.pem")
    key_path = os.path.join(d, "key.pem")
    with open(cert_path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(key_path, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    return cert_path, key_path
