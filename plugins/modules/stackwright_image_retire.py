#!/usr/bin/python
"""Retire the images of an older build of a bootable image (a disk image and
the kernel and ramdisk it boots with) before a new build is uploaded under
the same names.  An image's build is its tag ``stackwright-build-BUILD``
(a tag, not a property: the collection's image module compares tags, but
takes any custom property for changed); one of another build (or none)
is older.  Decided from what Glance holds,
so a deploy interrupted between the build and the upload still retires
the old images when run again.

Deleting them is not always possible, nor right: with instance disks in Ceph
a server's disk is a clone of its image, and Glance refuses to delete an
image that has clones ("in use"); and a server booted from a kernel and
ramdisk needs both again to be rebuilt, evacuated or migrated.  So the old
images are renamed (``NAME-superseded-ID8``) and hidden from image lists;
then every superseded disk image is deleted when Glance allows it, and a
superseded kernel or ramdisk once no disk image refers to it any more.  The
openstack.cloud collection can rename an image but has no "delete unless in
use", so this is one module over one openstacksdk connection."""

from __future__ import annotations

DOCUMENTATION = r"""
module: stackwright_image_retire
short_description: Rename, hide and (when unused) delete the images of an older build
description:
  - Supports check mode.
extends_documentation_fragment: [stackwright_openstack]
options:
  region:
    description: Region of the image service.
    type: str
    required: true
  disk:
    description: Name of the disk image (it names its kernel and ramdisk by ID).
    type: str
    required: true
  helpers:
    description: Names of the kernel and ramdisk images.
    type: list
    elements: str
    default: []
  build:
    description: The build being uploaded (its images carry the tag stackwright-build-BUILD).
    type: str
    required: true
"""

RETURN = r"""
actions:
  description: What was done (or, in check mode, would be done).
  type: list
  elements: str
  returned: always
"""

from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.stackwright_openstack import AUTH_SPEC, run

SUFFIX = "-superseded-"


def retire(conn: Any, disk: str, helpers: list[str], build: str, check: bool) -> list[str]:
    actions: list[str] = []
    for name in [disk, *helpers]:
        for image in list(conn.image.images(name=name)):
            if f"stackwright-build-{build}" in (image.tags or []):
                continue
            new = f"{name}{SUFFIX}{image.id[:8]}"
            actions.append(f"rename {name} ({image.id}) to {new}, hidden")
            if not check:
                conn.image.update_image(image, name=new, is_hidden=True)
    if not check:
        actions += _delete_unused(conn, disk, helpers)
    return actions


def _delete_unused(conn: Any, disk: str, helpers: list[str]) -> list[str]:
    """Delete every superseded disk image Glance lets go; the ones still in
    use stay, and so do the kernels and ramdisks they boot with."""
    actions: list[str] = []
    everything = list(conn.image.images(is_hidden=True)) + list(conn.image.images())
    kept: set[str] = set()
    for image in everything:
        if image.name and image.name.startswith(f"{disk}{SUFFIX}"):
            try:
                conn.image.delete_image(image)
                actions.append(f"delete {image.name}")
            except Exception as exc:  # openstack's ConflictException: the SDK is imported in main() only
                if getattr(exc, "status_code", None) != 409:
                    raise
                actions.append(f"keep {image.name}: in use")
                kept |= {image.kernel_id, image.ramdisk_id}
        elif image.name == disk:
            kept |= {image.kernel_id, image.ramdisk_id}
    for image in everything:
        if image.name and any(image.name.startswith(f"{h}{SUFFIX}") for h in helpers) and image.id not in kept:
            conn.image.delete_image(image)
            actions.append(f"delete {image.name}")
    return actions


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "auth": AUTH_SPEC,
            "region": {"type": "str", "required": True},
            "interface": {"type": "str", "default": "internal"},
            "disk": {"type": "str", "required": True},
            "helpers": {"type": "list", "elements": "str", "default": []},
            "build": {"type": "str", "required": True},
        },
        supports_check_mode=True,
    )
    p = module.params
    run(module, "Glance", lambda conn: retire(conn, p["disk"], p["helpers"], p["build"], module.check_mode))


if __name__ == "__main__":
    main()
