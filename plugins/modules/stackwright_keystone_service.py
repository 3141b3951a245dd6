#!/usr/bin/python
"""Register one OpenStack service in Keystone in a single call: its service
user (and password), the user's roles in the service project, the catalog
entry and its public, internal and admin endpoints.

The openstack.cloud collection does the same in one module run per object
(user, each role, each assignment, the service, each endpoint), and each run
starts Python, imports openstacksdk and logs in again: about 15 s per
service on the lab's two cores against about 3 s here.  This module uses the
same library (openstacksdk) over one connection."""

from __future__ import annotations

DOCUMENTATION = r"""
module: stackwright_keystone_service
short_description: Service user, roles, catalog entry and endpoints of one OpenStack service
description:
  - Creates what is missing and corrects what differs; never deletes.
  - Supports check mode.
extends_documentation_fragment: [stackwright_openstack]
options:
  region:
    description: Region of the endpoints (it must exist; Keystone's bootstrap creates it).
    type: str
    required: true
  domain:
    description: Domain (name or ID) of the service user.
    type: str
    default: default
  name:
    description: Catalog name of the service (nova).
    type: str
    required: true
  type:
    description: Catalog type of the service (compute).
    type: str
    required: true
  description:
    description: Catalog description of the service.
    type: str
    default: ""
  user:
    description: Name of the service user.
    type: str
    required: true
  password:
    description: Password of the service user.
    type: str
    required: true
    no_log: true
  update_password:
    description: Set the password of an existing user (when it cannot log in with it).
    type: bool
    default: false
  project:
    description: Project the service user gets its roles in (it must exist).
    type: str
    required: true
  roles:
    description: Roles of the service user in the project (created when missing).
    type: list
    elements: str
    default: []
  endpoints:
    description: URL per interface (public, internal, admin).
    type: dict
    default: {}
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


def ensure(conn: Any, p: dict[str, Any], check: bool) -> list[str]:
    """Bring Keystone in line with ``p``; return the actions taken (in check
    mode: the actions that would be taken)."""
    ident = conn.identity
    actions: list[str] = []
    domain = ident.find_domain(p["domain"], ignore_missing=False)
    project = ident.find_project(p["project"], domain_id=domain.id, ignore_missing=False)
    user = _user(ident, p, domain, project, check, actions)
    _roles(ident, p, project, user, check, actions)
    service = _service(ident, p, check, actions)
    _endpoints(ident, p, service, check, actions)
    return actions


def _user(ident: Any, p: dict[str, Any], domain: Any, project: Any, check: bool, actions: list[str]) -> Any:
    user = ident.find_user(p["user"], domain_id=domain.id)
    if user is None:
        actions.append(f"create user {p['user']}")
        if not check:
            user = ident.create_user(name=p["user"], password=p["password"], domain_id=domain.id,
                                     default_project_id=project.id, is_enabled=True)
    elif p["update_password"]:
        actions.append(f"set the password of user {p['user']}")
        if not check:
            ident.update_user(user, password=p["password"])
    return user


def _roles(ident: Any, p: dict[str, Any], project: Any, user: Any, check: bool, actions: list[str]) -> None:
    for name in p["roles"]:
        role = ident.find_role(name)
        if role is None:
            actions.append(f"create role {name}")
            if not check:
                role = ident.create_role(name=name)
        if user is None or role is None or not ident.validate_user_has_project_role(project, user, role):
            actions.append(f"give user {p['user']} role {name} in project {p['project']}")
            if not check:
                ident.assign_project_role_to_user(project, user, role)


def _service(ident: Any, p: dict[str, Any], check: bool, actions: list[str]) -> Any:
    service = next((s for s in ident.services(type=p["type"]) if s.name == p["name"]), None)
    if service is None:
        actions.append(f"add service {p['name']} ({p['type']}) to the catalog")
        if not check:
            service = ident.create_service(name=p["name"], type=p["type"], description=p["description"],
                                           is_enabled=True)
    elif (service.description or "") != p["description"]:
        actions.append(f"set the description of service {p['name']}")
        if not check:
            service = ident.update_service(service, description=p["description"])
    return service


def _endpoints(ident: Any, p: dict[str, Any], service: Any, check: bool, actions: list[str]) -> None:
    existing = [] if service is None else list(ident.endpoints(service_id=service.id, region_id=p["region"]))
    for interface, url in p["endpoints"].items():
        endpoint = next((e for e in existing if e.interface == interface), None)
        if endpoint is None:
            actions.append(f"create the {interface} endpoint {url}")
            if not check and service is not None:  # created above when not in check mode
                ident.create_endpoint(service_id=service.id, interface=interface, url=url,
                                      region_id=p["region"], is_enabled=True)
        elif endpoint.url != url:
            actions.append(f"move the {interface} endpoint to {url}")
            if not check:
                ident.update_endpoint(endpoint, url=url)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "auth": AUTH_SPEC,
            "region": {"type": "str", "required": True},
            "interface": {"type": "str", "default": "internal"},
            "domain": {"type": "str", "default": "default"},
            "name": {"type": "str", "required": True},
            "type": {"type": "str", "required": True},
            "description": {"type": "str", "default": ""},
            "user": {"type": "str", "required": True},
            "password": {"type": "str", "required": True, "no_log": True},
            "update_password": {"type": "bool", "default": False},
            "project": {"type": "str", "required": True},
            "roles": {"type": "list", "elements": "str", "default": []},
            "endpoints": {"type": "dict", "default": {}},
        },
        supports_check_mode=True,
    )
    p = module.params
    bad = sorted(set(p["endpoints"]) - {"public", "internal", "admin"})
    if bad:
        module.fail_json(msg=f"endpoints: unknown interface(s) {', '.join(bad)} (public, internal, admin)")
    run(module, "Keystone", lambda conn: ensure(conn, p, module.check_mode))


if __name__ == "__main__":
    main()
