# -*- coding: utf-8 -*-
# Copyright: (c) 2026, KeyBuzz (@keybuzz)
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The collection's credential rules (plugins/module_utils/credentials.py) as a Jinja filter, so that
the preflight, the redis_credentials role and the roles that write the credentials accept exactly
the same passwords and user names."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
name: credential_problems
short_description: What is wrong with a set of passwords and user names, without any secret
description:
  - Checks every password (a key ending in C(PASSWORD)), password being rotated out (C(PASSWORD_PREVIOUS)) and
    user name (C(_USER)) of a mapping keyed like C(redis.env); other keys are ignored. The rules are the functions
    of C(plugins/module_utils/credentials.py).
  - A password must be set, not empty, at least O(min_length) characters long and printable ASCII without spaces.
    C(REDIS_HEALTHCHECK_PASSWORD), C(SENTINEL_PASSWORD) and C(REDIS_SENTINEL_PASSWORD), written unquoted into
    C(haproxy.cfg) or C(sentinel.conf), and every user name may hold only letters, digits and C(_.:,;=+/@%^~!*?-).
    A password being rotated out keeps its length (it was in use) but must be printable ASCII without spaces.
  - "Returns one sentence per faulty key, C(<source>.<KEY>: <what is wrong>. Fix: <what to do>.), naming the key
    and never its value; an empty list when all is well."
author: KeyBuzz (@keybuzz)
options:
  _input:
    description:
      - The credentials, keyed like C(redis.env). A value that is C(none) counts as not set; other values are
        read as text.
      - Anything but a mapping gives a single problem naming O(source).
    type: raw
    required: true
  min_length:
    description:
      - Minimum length of a password. A value below 16 counts as 16, the collection's minimum.
    type: int
    default: 16
  source:
    description:
      - Which mapping O(_input) is, named at the start of every problem; it also decides the fix offered.
      - V(redis_credentials_override) - operator-supplied values; a key may be removed to have a password
        generated (or the default user name kept).
      - V(redis_credentials_values) - the credentials a role is about to use; every key given must be set
        (a variable that may be undefined is given through the C(default) filter with the value C(none)); the
        fix points at C(redis_credentials_override), C(redis.env) and the C(keybuzz.redis_ha.redis_credentials) role.
    type: str
    choices: [redis_credentials_override, redis_credentials_values]
    default: redis_credentials_override
'''

EXAMPLES = r'''
- name: Refuse weak operator-supplied passwords (names the keys, never a value)
  ansible.builtin.assert:
    that: _problems | length == 0
    fail_msg: "{{ _problems | join(' ') }}"
    quiet: true
  vars:
    _problems: "{{ redis_credentials_override | keybuzz.redis_ha.credential_problems(min_length=24) }}"

- name: Check the credentials a role writes into haproxy.cfg
  ansible.builtin.assert:
    that: _problems | length == 0
    fail_msg: "{{ _problems | join(' ') }}"
    quiet: true
  vars:
    _problems: >-
      {{ {'REDIS_HEALTHCHECK_PASSWORD': haproxy_redis_healthcheck_password | default(none)}
         | keybuzz.redis_ha.credential_problems(source='redis_credentials_values') }}
'''

RETURN = r'''
_value:
  description:
    - The problems, sorted by key, e.g. C(redis_credentials_override.REDIS_PASSWORD) followed by
      C(is shorter than 16 characters. Fix) and the rule; empty when all is well.
  type: list
  elements: str
'''

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.text.converters import to_text
from ansible_collections.keybuzz.redis_ha.plugins.module_utils import credentials as rules


def credential_problems(credentials, min_length=rules.MIN_LENGTH, source=rules.OVERRIDE):
    try:
        minimum = rules.minimum_length(min_length)
    except (TypeError, ValueError):
        raise AnsibleFilterError('credential_problems: min_length must be a number, not %r' % (min_length,))
    if source not in rules.SOURCES:
        raise AnsibleFilterError('credential_problems: source must be one of %s, not %r'
                                 % (', '.join(rules.SOURCES), source))
    if isinstance(credentials, Mapping):
        credentials = dict((to_text(key), None if value is None else to_text(value))
                           for key, value in credentials.items())
    return rules.problems(credentials, minimum, source)


class FilterModule(object):
    def filters(self):
        return {'credential_problems': credential_problems}
