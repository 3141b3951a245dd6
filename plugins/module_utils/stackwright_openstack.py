"""What Stackwright's OpenStack modules share: the admin login they take
and the openstacksdk connection made from it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# only the password is secret: a whole no_log dict would mask its user name
# ("admin") wherever it appears in the output
AUTH_SPEC: dict[str, Any] = {"type": "dict", "required": True, "options": {
    "auth_url": {"type": "str", "required": True},
    "username": {"type": "str", "required": True},
    "password": {"type": "str", "required": True, "no_log": True},
    "project_name": {"type": "str", "required": True},
    "user_domain_name": {"type": "str", "default": "Default"},
    "project_domain_name": {"type": "str", "default": "Default"},
}}


def run(module: Any, service: str, actions: Callable[[Any], list[str]]) -> None:
    """Connect with *module*'s auth, interface and region, call *actions*
    with the connection and end the module with what it did (changed when
    anything); an API error fails the module, named after *service*."""
    try:
        import openstack
        from openstack import exceptions
    except ImportError:
        module.fail_json(msg="openstacksdk is not installed for the Python that runs this module")
    p = module.params
    conn = openstack.connect(auth_type="password", auth=p["auth"], region_name=p["region"],
                             interface=p["interface"], load_yaml_config=False, load_envvars=False)
    try:
        done = actions(conn)
    except exceptions.SDKException as exc:
        module.fail_json(msg=f"{service}: {exc}")
    module.exit_json(changed=bool(done), actions=done)
