# -*- coding: utf-8 -*-
# Copyright: (c) 2026, KeyBuzz (@keybuzz)
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Which version of a collection this controller would load: the preflight asks it before any host
is changed, so that a missing dependency is reported with the fix instead of failing mid-run."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
name: collection_version
short_description: The version of a collection as this controller would load it
description:
  - For each collection name, the version of the copy that this run of Ansible would load (the first one found on
    the collections path, as for any task using it), read from its C(MANIFEST.json) (installed collection) or
    C(galaxy.yml) (a source checkout).
  - An empty string when the collection is not installed; C(*) when it is installed without any version information.
  - Runs on the controller only and changes nothing.
author: KeyBuzz (@keybuzz)
options:
  _terms:
    description: Collection names, C(namespace.name).
    type: list
    elements: str
    required: true
'''

EXAMPLES = r'''
- name: Stop early when community.crypto is missing or too old
  ansible.builtin.assert:
    that:
      - _crypto | length > 0
      - _crypto == '*' or _crypto is version('2.10.0', '>=')
    fail_msg: "community.crypto >= 2.10.0 is needed. Fix: ansible-galaxy collection install 'community.crypto:>=2.10.0'"
  vars:
    _crypto: "{{ lookup('keybuzz.redis_ha.collection_version', 'community.crypto') }}"
'''

RETURN = r'''
_raw:
  description: One version per name given, in order (C('') when not installed, C(*) when its version is unknown).
  type: list
  elements: str
'''

import importlib.util
import json
import os
import re

from ansible.errors import AnsibleLookupError
from ansible.module_utils.six import string_types
from ansible.plugins.lookup import LookupBase

try:
    import yaml
except ImportError:  # pragma: no cover - PyYAML is a requirement of ansible-core
    yaml = None

NAME = re.compile(r'^[a-z0-9_]+\.[a-z0-9_]+$')


def installed_version(name):
    """The version of collection `name` that the collection loader resolves, '' or '*'."""
    if not isinstance(name, string_types) or not NAME.match(name):
        raise AnsibleLookupError('collection_version: %r is not a collection name (namespace.name)' % (name,))
    try:
        spec = importlib.util.find_spec('ansible_collections.' + name)
    except (ImportError, ValueError):
        spec = None
    if spec is None:
        return ''
    for path in spec.submodule_search_locations or []:
        version = _version_in(path)
        if version:
            return version
    return '*'


def _version_in(path):
    manifest = os.path.join(path, 'MANIFEST.json')
    if os.path.isfile(manifest):
        try:
            with open(manifest) as handle:
                return str(json.load(handle)['collection_info']['version'] or '')
        except (OSError, ValueError, KeyError, TypeError):
            return ''
    galaxy = os.path.join(path, 'galaxy.yml')
    if yaml is not None and os.path.isfile(galaxy):
        try:
            with open(galaxy) as handle:
                return str((yaml.safe_load(handle) or {}).get('version') or '')
        except (OSError, yaml.YAMLError, AttributeError):
            return ''
    return ''


class LookupModule(LookupBase):

    def run(self, terms, variables=None, **kwargs):
        return [installed_version(term) for term in terms]
