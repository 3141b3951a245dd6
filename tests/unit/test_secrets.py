from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from stackwright import secrets
from stackwright.problems import InventoryError


def test_generate_is_complete_and_random():
    a, b = secrets.generate(), secrets.generate()
    assert set(a) == set(secrets.PASSWORDS) | set(secrets.UUIDS)
    assert all(len(a[k]) == 32 and a[k].isalnum() for k in secrets.PASSWORDS)
    assert all(a[k] != b[k] for k in a)


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
