"""Stackwright: declarative OpenStack deployment with Ansible."""

__version__ = "0.1.0"
