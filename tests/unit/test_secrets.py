from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from stackwright import secrets
from stackwright.problems import InventoryError


def test_generate_is_complete_and_random():
    a, b = secrets.generate(), secrets.generate()
    assert set(a) == set(secrets.PASSWORDS) | set(secrets.UUIDS) | set(secrets.CA) == set(secrets.NAMES)
    assert all(len(a[k]) == secrets.LENGTHS.get(k, 32) and a[k].isalnum() for k in secrets.PASSWORDS)
    assert len(a["corosync_authkey"]) >= 128  # corosync-keygen(8): 128 bytes at least
    assert all(a[k] != b[k] for k in a)


def test_the_cloud_ca_signs_end_entities_only():
    """The CA in the secrets file: a CA certificate of its own key, allowed
    to sign certificates (not other CAs), for ten years."""
    from cryptography import x509

    values = secrets.generate()
    cert = x509.load_pem_x509_certificate(values["cloud_ca_certificate"].encode())
    constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca and constraints.value.path_length == 0
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign and usage.crl_sign and not usage.digital_signature
    assert 3649 <= (cert.not_valid_after_utc - cert.not_valid_before_utc).days <= 3651
    assert cert.subject == cert.issuer
    assert values["cloud_ca_key"].startswith("-----BEGIN PRIVATE KEY-----\n")


def test_a_ca_certificate_of_another_key_is_refused(tmp_path):
    path = secrets.write(tmp_path / "s.yml")
    text = path.read_text()
    other = secrets.generate(("cloud_ca_certificate",))["cloud_ca_certificate"]
    start = text.index("cloud_ca_certificate: |")
    end = text.index("\n", text.index("-----END CERTIFICATE-----", start))
    path.write_text(text[:start] + "cloud_ca_certificate: |\n" + "".join(f"  {line}\n" for line in other.splitlines())
                    + text[end + 1:])
    with pytest.raises(InventoryError) as exc:
        secrets.read(path)
    assert [(p.path, p.message) for p in exc.value.problems] == [
        (("cloud_ca_certificate",), "is not the certificate of cloud_ca_key")]


def test_read_back_and_missing_keys(tmp_path):
    path = secrets.write(tmp_path / "s.yml")
    assert secrets.read(path)["keystone_admin_password"]
    path.write_text("keystone_admin_password: x\n")
    with pytest.raises(InventoryError) as exc:
        secrets.read(path)
    assert any(p.path == ("keystone_db_password",) for p in exc.value.problems)


def test_vault_encrypted_file(tmp_path):
    path = secrets.write(tmp_path / "s.yml")
    plain = secrets.read(path)
    password = tmp_path / "vault-pass"
    password.write_text("correct horse\n")
    vault = Path(sys.executable).with_name("ansible-vault")
    subprocess.run([str(vault), "encrypt", "--vault-password-file", str(password), str(path)], check=True,
                   capture_output=True)
    assert path.read_bytes().startswith(b"$ANSIBLE_VAULT;")
    with pytest.raises(InventoryError, match="problem"):
        secrets.read(path)
    assert secrets.read(path, password) == plain


def test_lab_fence_passwords_are_added_once_and_kept(tmp_path):
    path = tmp_path / "lab.secrets.yml"
    first = secrets.lab_fence_passwords(path, ["cmp1", "cmp2"])  # creates the file, then adds them
    assert set(first) == {"cmp1", "cmp2"} and all(len(p) == 16 for p in first.values())
    assert path.stat().st_mode & 0o777 == 0o600
    assert secrets.lab_fence_passwords(path, ["cmp1", "cmp2"]) == first
    data = secrets.read(path)
    assert data["fence_password_cmp1"] == first["cmp1"]


@pytest.mark.parametrize("value", ["", "has space", "x" * 21, "line\\nbreak"])
def test_a_fence_password_a_bmc_cannot_take_is_refused(tmp_path, value):
    path = secrets.write(tmp_path / "s.yml")
    path.write_text(path.read_text() + f'fence_password_cmp1: "{value}"\n')
    with pytest.raises(InventoryError) as exc:
        secrets.read(path)
    [problem] = exc.value.problems
    assert problem.path == ("fence_password_cmp1",) and "1 to 20 printable characters" in problem.message
    assert value not in problem.message or value == ""
