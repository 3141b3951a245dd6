"""TLS on the public endpoints: what validate says of the operator's
certificate files, and what clients are given (https URLs, the CA)."""

from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from stackwright import credentials
from stackwright.loader import load, load_problems

REPO = Path(__file__).resolve().parents[2]
HA = (REPO / "inventories" / "ha.yml").read_text()
NOW = datetime.datetime.now(datetime.UTC)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _ca(cn: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(_name(cn)).public_key(key.public_key())
            .serial_number(1).not_valid_before(NOW - datetime.timedelta(days=1))
            .not_valid_after(NOW + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    return key, cert


def _leaf(ca: tuple[ec.EllipticCurvePrivateKey, x509.Certificate], names: list[str], days: int = 30
          ) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    san = [x509.DNSName(n) if not n[0].isdigit() else x509.IPAddress(ipaddress.ip_address(n)) for n in names]
    cert = (x509.CertificateBuilder().subject_name(_name(names[0])).issuer_name(ca[1].subject)
            .public_key(key.public_key()).serial_number(2)
            .not_valid_before(NOW - datetime.timedelta(days=60)).not_valid_after(NOW + datetime.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName(san), critical=False).sign(ca[0], hashes.SHA256()))
    return key, cert


def _pem(obj: object, password: bytes | None = None) -> bytes:
    if isinstance(obj, x509.Certificate):
        return obj.public_bytes(serialization.Encoding.PEM)
    assert isinstance(obj, ec.EllipticCurvePrivateKey)
    crypt = (serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption())
    return obj.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, crypt)


def _inventory(tmp_path: Path, extra: str) -> Path:
    path = tmp_path / "inv.yml"
    path.write_text(HA.replace("  tls: true\n", "  tls: true\n  public_fqdn: cloud.example.org\n" + extra))
    return path


@pytest.fixture
def files(tmp_path: Path) -> dict[str, object]:
    """An operator's CA, its certificate for cloud.example.org and the key,
    written under tmp_path/tls (relative paths start at the inventory)."""
    ca = _ca("Example CA")
    key, cert = _leaf(ca, ["cloud.example.org"])
    (tmp_path / "tls").mkdir()
    (tmp_path / "tls" / "ca.pem").write_bytes(_pem(ca[1]))
    (tmp_path / "tls" / "public.pem").write_bytes(_pem(cert) + _pem(ca[1]))
    (tmp_path / "tls" / "public.key").write_bytes(_pem(key))
    return {"ca": ca, "key": key}


OPERATOR = "  tls_certificate: tls/public.pem\n  tls_key: tls/public.key\n  tls_ca: tls/ca.pem\n"


def _errors(path: Path) -> list[str]:
    _, problems = load_problems(path)
    return [p.render("inv.yml") for p in problems if p.severity == "error"]


def test_an_operators_certificate_is_taken_and_clients_trust_its_ca(tmp_path, files):
    path = _inventory(tmp_path, OPERATOR)
    inv, problems = load_problems(path)
    assert inv is not None, [p.render("inv.yml") for p in problems]
    assert inv.cloud.tls_certificate == tmp_path / "tls" / "public.pem"  # beside the inventory
    cloud = credentials.admin_cloud(inv, "pw", path)
    assert cloud["auth"]["auth_url"] == "https://cloud.example.org:5000/v3"
    assert cloud["cacert"] == str(tmp_path / "tls" / "ca.pem")


@pytest.mark.parametrize(("change", "expected"), [
    (lambda t, f: (t / "tls" / "public.key").write_bytes(_pem(ec.generate_private_key(ec.SECP256R1()))),
     "cloud.tls_key: {t}/tls/public.key is not the key of the certificate in {t}/tls/public.pem"),
    (lambda t, f: (t / "tls" / "public.key").write_bytes(_pem(f["key"], b"secret")),
     "cloud.tls_key: {t}/tls/public.key is encrypted: HAProxy would stop at boot to ask for its passphrase"),
    (lambda t, f: (t / "tls" / "public.key").unlink(),
     "cloud.tls_key: {t}/tls/public.key cannot be read: No such file or directory"),
    (lambda t, f: (t / "tls" / "public.pem").write_text("not a certificate\n"),
     "cloud.tls_certificate: {t}/tls/public.pem holds no PEM certificate"),
    (lambda t, f: (t / "tls" / "ca.pem").write_bytes(_pem(_ca("Another CA")[1])),
     "cloud.tls_ca: none of the certificates in {t}/tls/ca.pem issued the certificate in {t}/tls/public.pem"),
], ids=["wrong key", "encrypted key", "missing key", "not PEM", "wrong CA"])
def test_bad_certificate_files_are_refused_with_the_file_and_reason(tmp_path, files, change, expected):
    change(tmp_path, files)
    errors = _errors(_inventory(tmp_path, OPERATOR))
    assert any(expected.format(t=tmp_path) in e for e in errors), errors


def test_a_certificate_for_another_name_or_expired_is_refused(tmp_path, files):
    key, cert = _leaf(files["ca"], ["other.example.org", "10.63.0.99"])
    (tmp_path / "tls" / "public.pem").write_bytes(_pem(cert))
    (tmp_path / "tls" / "public.key").write_bytes(_pem(key))
    errors = _errors(_inventory(tmp_path, OPERATOR))
    assert any(f"{tmp_path}/tls/public.pem does not name cloud.example.org, where clients reach the public "
               "endpoints (it names other.example.org, 10.63.0.99)" in e for e in errors), errors
    key, cert = _leaf(files["ca"], ["*.example.org"], days=-1)
    (tmp_path / "tls" / "public.pem").write_bytes(_pem(cert))
    (tmp_path / "tls" / "public.key").write_bytes(_pem(key))
    errors = _errors(_inventory(tmp_path, OPERATOR))
    assert len(errors) == 1 and "public.pem expired on" in errors[0], errors  # the wildcard names it


def test_the_clouds_own_ca_signs_when_no_certificate_is_given(tmp_path):
    path = tmp_path / "inv.yml"
    path.write_text(HA)
    inv, problems = load_problems(path)
    assert inv is not None, [p.render("inv.yml") for p in problems]
    clouds, rc = credentials.write(inv, path, "pw", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    ca = tmp_path / "ha-ca.pem"
    assert ca.read_text().startswith("-----BEGIN CERTIFICATE-----") and ca.stat().st_mode & 0o777 == 0o600
    entry = yaml.safe_load(clouds.read_text())["clouds"]["ha"]
    assert entry["cacert"] == str(ca) and entry["auth"]["auth_url"] == "https://10.63.0.10:5000/v3"
    assert f"export OS_CACERT={ca}" in rc.read_text()
    # without TLS: plain http, no CA
    path.write_text(HA.replace("  tls: true\n", ""))
    inv, _ = load_problems(path)
    assert inv is not None
    assert "cacert" not in credentials.admin_cloud(inv, "pw", path)
    assert credentials.admin_cloud(inv, "pw", path)["auth"]["auth_url"] == "http://10.63.0.10:5000/v3"


def test_the_deploy_names_the_dashboard_and_the_ca_its_certificate_comes_from():
    aio = REPO / "inventories" / "aio.yml"
    ca = REPO / "inventories" / "aio-ca.pem"
    assert credentials.dashboard(load(aio), aio) == (
        f"dashboard: https://10.43.0.11/ (user admin), its certificate from the CA in {ca}")
    multinode = REPO / "inventories" / "multinode.yml"
    assert credentials.dashboard(load(multinode), multinode) == "dashboard: http://10.53.0.11/ (user admin)"
