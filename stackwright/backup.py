"""A backup of a cloud as one archive, and the checks before it is restored.

The archive (tar.gz, mode 0600) holds what playbooks/backup.yml fetched from
the nodes (``mariadb.tar.gz``: every database, copied hot and consistent by
mariadb-backup; ``keystone-keys.tar.gz``; ``ceph-keys.tar.gz`` when the
cloud runs Ceph), the deploying machine's files (``secrets.yml``: the
secrets file as it is, encrypted or not; ``inventory.yml``; ``rendered/``:
the Ansible inventory the last deploy rendered) and ``manifest.json``: the
cloud it was taken from (name, nodes and their roles), when, and the SHA-256
and size of every other member.  A restore reads the manifest first and
refuses an archive of another cloud, or one whose members do not match it.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import time
from pathlib import Path
from typing import Any

from . import __version__
from .model import Inventory

FORMAT = 1
MANIFEST = "manifest.json"
# fetched from the nodes (backup.yml); ceph-keys only when the cloud runs Ceph
NODE_PARTS = ("mariadb.tar.gz", "keystone-keys.tar.gz")
CEPH_PART = "ceph-keys.tar.gz"


class ArchiveError(Exception):
    """The archive cannot be restored here: the message says why."""


def identity(inv: Inventory) -> dict[str, Any]:
    """What must be the same for a backup to be restored onto a cloud: its
    name and its nodes with their roles (a node added or removed since has
    rows in the databases, or lacks them)."""
    nodes = sorted(inv.nodes, key=lambda n: n.name)
    return {"cloud": inv.cloud.name, "nodes": {n.name: sorted(n.roles) for n in nodes}}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def write(target_dir: Path, inv: Inventory, staging: Path, seconds: dict[str, float]) -> Path:
    """The archive of everything in *staging* (the parts fetched from the
    nodes and the deploying machine's files), with its manifest; written
    0600 under a temporary name, then renamed.  Files are streamed, never
    held in memory whole (a database copy can be gigabytes)."""
    files = sorted(p for p in staging.rglob("*") if p.is_file())
    names = {p.relative_to(staging).as_posix(): p for p in files}
    wanted = NODE_PARTS + ((CEPH_PART,) if inv.cloud.services.ceph else ())
    missing = [p for p in wanted if p not in names]
    if missing:
        raise ArchiveError(f"the backup playbook brought no {', '.join(missing)}")
    now = time.gmtime()
    stamp = time.strftime("%Y%m%dT%H%M%SZ", now)
    manifest = {
        "format": FORMAT,
        "stackwright": __version__,
        "created": time.strftime("%Y-%m-%d %H:%M:%S UTC", now),
        **identity(inv),
        "seconds": {k: round(v, 1) for k, v in seconds.items()},
        "files": {name: {"sha256": _sha256(path), "bytes": path.stat().st_size} for name, path in names.items()},
    }
    target_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    target = target_dir / f"{inv.cloud.name}-{stamp}.tar.gz"
    tmp = target.with_name(f".{target.name}.partial")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)

    def private(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.mode, info.uid, info.gid, info.uname, info.gname = 0o600, 0, 0, "root", "root"
        return info

    with os.fdopen(fd, "wb") as out, tarfile.open(fileobj=out, mode="w:gz") as tar:
        data = json.dumps(manifest, indent=2).encode()
        info = private(tarfile.TarInfo(MANIFEST))
        info.size, info.mtime = len(data), int(time.time())
        tar.addfile(info, io.BytesIO(data))
        for name, path in names.items():
            tar.add(path, arcname=name, recursive=False, filter=private)
    tmp.replace(target)
    return target


def _unpack(path: Path, dest: Path) -> tuple[dict[str, Any] | None, dict[str, str]]:
    """The archive's manifest (None: it has none) and the SHA-256 of every
    other member, written into *dest*.  Only plain files with relative
    names inside *dest* are written (no links, no ``..``)."""
    got: dict[str, str] = {}
    manifest = None
    with tarfile.open(path, mode="r:gz") as tar:
        for info in tar:
            handle = tar.extractfile(info) if info.isfile() else None
            if handle is None:
                continue
            if info.name.startswith("/") or ".." in Path(info.name).parts:
                raise ArchiveError(f"{path}: member {info.name!r} points outside the archive: refused")
            if info.name == MANIFEST:
                try:
                    manifest = json.loads(handle.read())
                except ValueError as exc:
                    raise ArchiveError(f"{path}: {MANIFEST} is not JSON ({exc})") from None
                continue
            target = dest / info.name
            target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            digest = hashlib.sha256()
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as out:
                while chunk := handle.read(1 << 20):
                    digest.update(chunk)
                    out.write(chunk)
            got[info.name] = digest.hexdigest()
    return manifest, got


def read(path: Path, dest: Path) -> dict[str, Any]:
    """Unpack the archive into *dest* (an empty private folder) and return
    its manifest, every member checked against it."""
    try:
        manifest, got = _unpack(path, dest)
    except (OSError, tarfile.TarError, EOFError) as exc:
        raise ArchiveError(f"{path}: not a readable Stackwright backup archive ({exc})") from None
    if manifest is None:
        raise ArchiveError(f"{path}: not a Stackwright backup archive (it has no {MANIFEST})")
    if manifest.get("format") != FORMAT:
        raise ArchiveError(f"{path}: archive format {manifest.get('format')!r}; this Stackwright reads {FORMAT}")
    listed = manifest.get("files", {})
    for name in sorted(set(listed) | set(got)):
        if name not in got:
            raise ArchiveError(f"{path}: {name} is in the manifest but not in the archive: it is damaged")
        if name not in listed:
            raise ArchiveError(f"{path}: {name} is in the archive but not in its manifest: it was altered")
        if got[name] != listed[name]["sha256"]:
            raise ArchiveError(f"{path}: {name} does not match its checksum in the manifest: it is damaged")
    missing = [part for part in NODE_PARTS if part not in got]
    if missing:
        raise ArchiveError(f"{path}: it has no {', '.join(missing)}")
    return manifest


def check_cloud(path: Path, manifest: dict[str, Any], inv: Inventory, inventory: Path) -> None:
    """Refuse the archive of another cloud, naming what differs."""
    theirs, ours = {k: manifest.get(k) for k in ("cloud", "nodes")}, identity(inv)
    if theirs["cloud"] != ours["cloud"]:
        raise ArchiveError(f"{path} is a backup of cloud {theirs['cloud']!r}, {inventory} describes cloud "
                           f"{ours['cloud']!r}: a backup is restored only onto the cloud it was taken from")
    nodes_theirs, nodes_ours = theirs["nodes"] or {}, ours["nodes"]
    diffs = [f"{n} is not in the backup (added since)" for n in sorted(set(nodes_ours) - set(nodes_theirs))]
    diffs += [f"{n} is in the backup but not in {inventory} (removed since)"
              for n in sorted(set(nodes_theirs) - set(nodes_ours))]
    diffs += [f"{n} had roles {', '.join(nodes_theirs[n])}, now {', '.join(nodes_ours[n])}"
              for n in sorted(set(nodes_ours) & set(nodes_theirs)) if nodes_theirs[n] != nodes_ours[n]]
    if diffs:
        raise ArchiveError(f"{path} does not match cloud {ours['cloud']!r} as {inventory} describes it: "
                           + "; ".join(diffs) + ". Restore it onto the cloud as it was when it was taken")
