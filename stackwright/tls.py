"""TLS on the public endpoints: the operator's certificate files, checked
before any host is touched, and the CA clients are told to trust.

HAProxy terminates TLS on the public VIP with either the operator's
certificate (`tls_certificate`, `tls_key`, optional `tls_ca`) or, without
them, one that the cloud's own CA (the secrets file) signs on every
controller for the public endpoint's name and address.
"""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from .model import Inventory
from .problems import Problem

FILES = ("tls_certificate", "tls_key", "tls_ca")


def problems(inv: Inventory) -> Iterator[Problem]:
    c = inv.cloud
    combination = list(_combination(inv))
    yield from combination
    if not combination and c.tls and c.tls_certificate is not None and c.tls_key is not None:
        yield from _operator_files(inv, c.tls_certificate, c.tls_key)


def _combination(inv: Inventory) -> Iterator[Problem]:
    """Which of the files go together, and with `tls: true`."""
    c = inv.cloud
    if not c.tls:
        for name in FILES:
            if getattr(c, name) is not None:
                yield Problem(("cloud", name), "is set but `tls:` is not true, so nothing would use it",
                              "set `tls: true`, or remove the line")
    elif (c.tls_certificate is None) != (c.tls_key is None):
        missing = "tls_key" if c.tls_key is None else "tls_certificate"
        yield Problem(("cloud", missing), "the certificate and its key go together: one is given without the other",
                      f"set `{missing}:` too, or remove both (the cloud's own CA then signs one)")
    elif c.tls_certificate is None and c.tls_ca is not None:
        yield Problem(("cloud", "tls_ca"), "names the CA of an operator's certificate, and none is given "
                      "(the cloud's own CA signs the endpoints' certificate; clients get that one)",
                      "set `tls_certificate:` and `tls_key:`, or remove `tls_ca:`")


def _operator_files(inv: Inventory, cert_path: Path, key_path: Path) -> Iterator[Problem]:
    """The operator's certificate: readable, its key's, valid now, for the
    name clients use, issued by tls_ca when that is given."""
    chain = _certificates("tls_certificate", cert_path)
    key = _key(key_path)
    for loaded in (chain, key):
        if isinstance(loaded, Problem):
            yield loaded
    if isinstance(chain, Problem) or isinstance(key, Problem):
        return
    leaf = chain[0]
    if _public(key.public_key()) != _public(leaf.public_key()):
        yield Problem(("cloud", "tls_key"), f"{key_path} is not the key of the certificate in {cert_path}",
                      "name the key the certificate was issued for")
    if leaf.not_valid_after_utc < datetime.datetime.now(datetime.UTC):
        yield Problem(("cloud", "tls_certificate"), f"{cert_path} expired on {leaf.not_valid_after_utc:%Y-%m-%d}",
                      "renew the certificate")
    host = inv.public_endpoint_host()
    if not names(leaf, host):
        yield Problem(("cloud", "tls_certificate"), f"{cert_path} does not name {host}, where clients reach the "
                      f"public endpoints (it names {', '.join(_san(leaf)) or 'nothing'})",
                      "issue it for that name (subjectAltName), or set `public_fqdn:` to a name it has")
    ca_path = inv.cloud.tls_ca
    if ca_path is not None:
        cas = _certificates("tls_ca", ca_path)
        if isinstance(cas, Problem):
            yield cas
        elif not any(ca.subject == cert.issuer for ca in cas for cert in chain):
            yield Problem(("cloud", "tls_ca"), f"none of the certificates in {ca_path} issued the certificate in "
                          f"{cert_path} or its chain (issuer {leaf.issuer.rfc4514_string()})",
                          "name the CA that signed it")


def _public(key: Any) -> bytes:
    return bytes(key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo))


def names(cert: x509.Certificate, host: str) -> bool:
    """Whether the certificate's subjectAltName covers host (a DNS name,
    with one leading wildcard label, or an IP address)."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        host = host.lower().rstrip(".")
        for dns in san.get_values_for_type(x509.DNSName):
            dns = dns.lower().rstrip(".")
            if dns == host or (dns.startswith("*.") and host.partition(".")[2] == dns[2:] and "." in dns[2:]):
                return True
        return False
    return address in san.get_values_for_type(x509.IPAddress)


def _san(cert: x509.Certificate) -> list[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [str(v) for v in san.get_values_for_type(x509.DNSName) + san.get_values_for_type(x509.IPAddress)]


def _read(name: str, path: Path) -> bytes | Problem:
    try:
        return path.read_bytes()
    except OSError as exc:
        return Problem(("cloud", name), f"{path} cannot be read: {exc.strerror}",
                       "name an existing file (a relative path starts at the inventory's folder)")


def _certificates(field: str, path: Path) -> list[x509.Certificate] | Problem:
    data = _read(field, path)
    if isinstance(data, Problem):
        return data
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError:
        return Problem(("cloud", field), f"{path} holds no PEM certificate", "give the certificate in PEM form")
    return certs


def _key(path: Path) -> PrivateKeyTypes | Problem:
    data = _read("tls_key", path)
    if isinstance(data, Problem):
        return data
    try:
        return serialization.load_pem_private_key(data, password=None)
    except TypeError:
        return Problem(("cloud", "tls_key"), f"{path} is encrypted: HAProxy would stop at boot to ask for its "
                       "passphrase", "decrypt it (openssl pkey -in KEY -out PLAIN) and keep it mode 0600")
    except ValueError:
        return Problem(("cloud", "tls_key"), f"{path} holds no PEM private key", "give the key in PEM form")
