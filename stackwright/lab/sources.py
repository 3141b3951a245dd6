"""The Debian archives the lab nodes use: this machine's own (read from its
apt configuration, never written into the repository)."""

from __future__ import annotations

import re
from pathlib import Path

from .host import LabError


def deb822_entries(text: str) -> list[dict[str, str]]:
    """The stanzas of a deb822 .sources file that name URIs."""
    entries = []
    for stanza in text.split("\n\n"):
        fields = dict((k.strip(), v.strip()) for k, v in
                      (line.split(":", 1) for line in stanza.splitlines() if not line.startswith("#") and ":" in line))
        if fields.get("URIs"):
            entries.append(fields)
    return entries


def one_line_entries(text: str) -> list[dict[str, str]]:
    """The `deb` lines of a sources.list file (options in brackets dropped)."""
    entries = []
    for line in text.splitlines():
        # options may hold spaces: [arch=amd64 signed-by=/usr/share/keyrings/x.gpg]
        parts = re.sub(r"\[[^\]]*\]", " ", line.split("#")[0]).split()
        if len(parts) >= 3 and parts[0] == "deb":
            entries.append({"URIs": parts[1], "Suites": parts[2], "Components": " ".join(parts[3:])})
    return entries


def host_sources() -> list[dict[str, str]]:
    """The host's Debian apt sources (deb822 and one-line formats)."""
    entries = [e for f in sorted(Path("/etc/apt/sources.list.d").glob("*.sources"))
               for e in deb822_entries(f.read_text())]
    lists = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*.list"))]
    entries += [e for f in lists if f.exists() for e in one_line_entries(f.read_text())]
    return [e for e in entries if "bookworm" in e.get("Suites", "") and "/debian" in e["URIs"]]


def debian_archive_uri() -> str:
    """The main Debian archive this host uses (read from its apt config)."""
    for e in host_sources():
        uri = e["URIs"].split()[0]
        if not uri.rstrip("/").endswith("-security"):
            return uri.rstrip("/") + "/"
    raise LabError("cannot find the Debian archive in this host's apt sources (/etc/apt/sources.list*)")


def node_sources() -> str:
    """apt sources for lab nodes: the host's Debian archives, over plain HTTP
    so the caching proxy can serve them."""
    stanzas = []
    for e in host_sources():
        uris = " ".join(u.replace("https://", "http://") for u in e["URIs"].split())
        stanzas.append(
            f"Types: deb\nURIs: {uris}\nSuites: {e['Suites']}\nComponents: {e.get('Components', 'main')}\n"
            "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
        )
    return "\n".join(stanzas)
