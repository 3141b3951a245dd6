"""The options every Stackwright OpenStack module takes."""


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  auth:
    description: Password authentication of an admin, as openstacksdk takes it.
    type: dict
    required: true
    suboptions:
      auth_url: {type: str, required: true, description: Keystone URL.}
      username: {type: str, required: true, description: Admin user.}
      password: {type: str, required: true, no_log: true, description: Its password.}
      project_name: {type: str, required: true, description: Project to log in to.}
      user_domain_name: {type: str, default: Default, description: Domain of the user.}
      project_domain_name: {type: str, default: Default, description: Domain of the project.}
  interface:
    description: Which endpoint of the service the module talks to.
    type: str
    default: internal
"""
