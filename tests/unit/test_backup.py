"""The backup archive: what it holds, and every reason a restore refuses it."""

from __future__ import annotations

import io
import json
import stat
import tarfile
from pathlib import Path

import pytest

from stackwright import backup
from stackwright.loader import load

INVENTORIES = Path(__file__).resolve().parents[2] / "inventories"

AIO = load(INVENTORIES / "aio.yml")
MULTINODE = load(INVENTORIES / "multinode.yml")


def _staging(tmp_path: Path, ceph: bool) -> Path:
    staging = tmp_path / "staging"
    (staging / "rendered" / "host_vars").mkdir(parents=True)
    (staging / "mariadb.tar.gz").write_bytes(b"databases" * 1000)
    (staging / "keystone-keys.tar.gz").write_bytes(b"keys")
    if ceph:
        (staging / "ceph-keys.tar.gz").write_bytes(b"keyrings")
    (staging / "secrets.yml").write_text("keystone_admin_password: x\n")
    (staging / "rendered" / "host_vars" / "aio1.yml").write_text("a: 1\n")
    return staging


def test_archive_round_trip_is_private_and_complete(tmp_path: Path) -> None:
    archive = backup.write(tmp_path / "out", MULTINODE, _staging(tmp_path, ceph=True), {"nodes": 12.34})
    assert stat.S_IMODE(archive.stat().st_mode) == 0o600
    assert archive.name.startswith("multinode-") and archive.name.endswith(".tar.gz")
    assert not list((tmp_path / "out").glob(".*partial"))
    dest = tmp_path / "dest"
    dest.mkdir()
    manifest = backup.read(archive, dest)
    assert manifest["cloud"] == "multinode"
    assert manifest["nodes"]["cmp1"] == ["compute"]
    assert manifest["seconds"] == {"nodes": 12.3}
    assert set(manifest["files"]) == {"mariadb.tar.gz", "keystone-keys.tar.gz", "ceph-keys.tar.gz", "secrets.yml",
                                      "rendered/host_vars/aio1.yml"}
    assert (dest / "mariadb.tar.gz").read_bytes() == b"databases" * 1000
    assert stat.S_IMODE((dest / "secrets.yml").stat().st_mode) == 0o600
    with tarfile.open(archive) as tar:
        assert {m.mode for m in tar.getmembers()} == {0o600}


def test_a_part_the_nodes_did_not_bring_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(backup.ArchiveError, match=r"brought no ceph-keys\.tar\.gz"):
        backup.write(tmp_path / "out", MULTINODE, _staging(tmp_path, ceph=False), {})


def _rewrite(archive: Path, change) -> Path:
    """A copy of *archive* with its members passed through *change*."""
    with tarfile.open(archive) as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}
    change(members)
    out = archive.with_name("changed.tar.gz")
    with tarfile.open(out, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out


@pytest.mark.parametrize(("change", "message"), [
    (lambda m: m.update({"mariadb.tar.gz": b"other"}), "mariadb.tar.gz does not match its checksum"),
    (lambda m: m.pop("keystone-keys.tar.gz"), "keystone-keys.tar.gz is in the manifest but not in the archive"),
    (lambda m: m.update({"extra.sh": b"x"}), "extra.sh is in the archive but not in its manifest"),
    (lambda m: m.pop("manifest.json"), "it has no manifest.json"),
    (lambda m: m.update({"../escape": b"x"}), "points outside the archive"),
])
def test_a_damaged_or_altered_archive_is_refused(tmp_path: Path, change, message: str) -> None:
    archive = backup.write(tmp_path / "out", AIO, _staging(tmp_path, ceph=True), {})
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(backup.ArchiveError, match=message):
        backup.read(_rewrite(archive, change), dest)
    assert not (tmp_path / "escape").exists()


def test_not_an_archive_is_refused(tmp_path: Path) -> None:
    junk = tmp_path / "junk.tar.gz"
    junk.write_text("not gzip")
    with pytest.raises(backup.ArchiveError, match="not a readable Stackwright backup archive"):
        backup.read(junk, tmp_path)


def test_an_archive_of_another_cloud_is_refused() -> None:
    manifest = json.loads(json.dumps(backup.identity(MULTINODE)))
    with pytest.raises(backup.ArchiveError, match=r"backup of cloud 'multinode', aio.yml describes cloud 'aio'"):
        backup.check_cloud(Path("b.tar.gz"), manifest, AIO, Path("aio.yml"))


def test_an_archive_of_the_cloud_with_other_nodes_is_refused() -> None:
    manifest = backup.identity(MULTINODE)
    manifest["nodes"]["cmp3"] = ["compute"]
    manifest["nodes"]["sto1"] = ["storage", "compute"]
    del manifest["nodes"]["cmp2"]
    with pytest.raises(backup.ArchiveError) as err:
        backup.check_cloud(Path("b.tar.gz"), manifest, MULTINODE, Path("mn.yml"))
    assert ("cmp2 is not in the backup (added since); cmp3 is in the backup but not in mn.yml (removed since); "
            "sto1 had roles storage, compute, now storage") in str(err.value)


def test_the_same_cloud_is_accepted() -> None:
    backup.check_cloud(Path("b.tar.gz"), backup.identity(MULTINODE), MULTINODE, Path("mn.yml"))
