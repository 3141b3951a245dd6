"""The test guest's old images are renamed and hidden, then deleted when
Glance lets them go; one still in use stays with its kernel and ramdisk
(a fake of the few image calls the module makes)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import SimpleNamespace as NS

import pytest

PLUGINS = Path(__file__).resolve().parents[2] / "plugins"
# the module imports its shared code as Ansible lays it out for a module run
_utils = importlib.util.spec_from_file_location("ansible.module_utils.stackwright_openstack",
                                                PLUGINS / "module_utils" / "stackwright_openstack.py")
sys.modules[_utils.name] = importlib.util.module_from_spec(_utils)  # type: ignore[arg-type]
_utils.loader.exec_module(sys.modules[_utils.name])  # type: ignore[union-attr]
sys.path.insert(0, str(PLUGINS / "modules"))

from stackwright_image_retire import retire  # noqa: E402

DISK, KERNEL, RAMDISK = "guest", "guest-kernel", "guest-ramdisk"


class InUse(Exception):
    status_code = 409


class FakeImages:
    def __init__(self, images: list[NS], in_use: set[str]):
        self.all = {i.id: i for i in images}
        self.in_use = in_use

    def images(self, name: str | None = None, is_hidden: bool = False) -> list[NS]:
        return [i for i in self.all.values() if i.is_hidden == is_hidden and (name is None or i.name == name)]

    def update_image(self, image: NS, name: str, is_hidden: bool) -> None:
        image.name, image.is_hidden = name, is_hidden

    def delete_image(self, image: NS) -> None:
        if image.id in self.in_use:
            raise InUse(f"image {image.id} is in use")
        del self.all[image.id]


def trio(prefix: str, build: str | None) -> list[NS]:
    tags = [f"stackwright-build-{build}"] if build else []
    kernel = NS(id=f"{prefix}-k-00000000", name=KERNEL, is_hidden=False, tags=tags, kernel_id=None, ramdisk_id=None)
    ramdisk = NS(id=f"{prefix}-r-00000000", name=RAMDISK, is_hidden=False, tags=tags, kernel_id=None, ramdisk_id=None)
    disk = NS(id=f"{prefix}-d-00000000", name=DISK, is_hidden=False, tags=tags, kernel_id=kernel.id,
              ramdisk_id=ramdisk.id)
    return [disk, kernel, ramdisk]


@pytest.mark.parametrize("in_use", [False, True])
def test_old_build_is_retired_and_deleted_unless_in_use(in_use):
    images = FakeImages(trio("old", "v1"), {"old-d-00000000"} if in_use else set())
    actions = retire(NS(image=images), DISK, [KERNEL, RAMDISK], "v2", check=False)
    assert "rename guest (old-d-00000000) to guest-superseded-old-d-00, hidden" in actions
    if in_use:
        # the disk is a clone's parent: it stays, hidden, with what it boots from
        assert "keep guest-superseded-old-d-00: in use" in actions
        assert {i.name for i in images.all.values()} == {
            "guest-superseded-old-d-00", "guest-kernel-superseded-old-k-00", "guest-ramdisk-superseded-old-r-00"}
        assert all(i.is_hidden for i in images.all.values())
    else:
        assert images.all == {}


def test_the_current_build_is_left_alone():
    images = FakeImages(trio("new", "v2"), set())
    assert retire(NS(image=images), DISK, [KERNEL, RAMDISK], "v2", check=False) == []
    assert {i.name for i in images.all.values()} == {DISK, KERNEL, RAMDISK}


def test_check_mode_changes_nothing():
    images = FakeImages(trio("old", None), set())
    actions = retire(NS(image=images), DISK, [KERNEL, RAMDISK], "v2", check=True)
    assert len(actions) == 3 and {i.name for i in images.all.values()} == {DISK, KERNEL, RAMDISK}


def test_other_errors_are_not_taken_for_in_use():
    images = FakeImages(trio("old", "v1"), set())

    def broken(image: NS) -> None:
        raise RuntimeError("Glance is down")

    images.delete_image = broken  # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match="Glance is down"):
        retire(NS(image=images), DISK, [KERNEL, RAMDISK], "v2", check=False)
