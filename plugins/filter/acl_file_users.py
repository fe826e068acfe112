# -*- coding: utf-8 -*-
# Copyright: (c) 2026, KeyBuzz (@keybuzz)
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The users of an ACL file (users.acl) as arguments of keybuzz.redis_ha.redis_acl_user, so that the
file a node loads at start-up and the users applied to the running node come from one template."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
name: acl_file_users
short_description: The users of a Redis ACL file, as the arguments of keybuzz.redis_ha.redis_acl_user
description:
  - Reads the text of an ACL file (C(aclfile), such as the redis_node role's C(users.acl)) line by line. Each
    C(user <name> on <hashes> <rules>) line gives the user's name, its password hashes (C(#) and 64 hexadecimal
    digits each) and its remaining key, channel and command rules, in the file's order. Empty lines and lines
    starting with C(#) are skipped.
  - Refuses, naming the line number (never the line, which holds hashes), a line that is not a user, a user that is
    not C(on), a clear-text password (C(>)), a malformed hash and a C(nopass) user.
author: KeyBuzz (@keybuzz)
options:
  _input:
    description: The ACL file's text.
    type: str
    required: true
'''

EXAMPLES = r'''
- name: Apply every user of users.acl to the running node, where it differs
  keybuzz.redis_ha.redis_acl_user:
    login_host: 10.0.0.123
    login_user: kb-admin
    login_password: "{{ admin_password }}"
    name: "{{ item.name }}"
    password_hashes: "{{ item.password_hashes }}"
    rules: "{{ item.rules }}"
  loop: "{{ lookup('ansible.builtin.template', 'users.acl.j2') | keybuzz.redis_ha.acl_file_users }}"
  loop_control:
    label: "{{ item.name }}"
  no_log: true
'''

RETURN = r'''
_value:
  description: One mapping per user, with C(name), C(password_hashes) (a list) and C(rules) (a string).
  type: list
  elements: dict
'''

import re

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.text.converters import to_text

HASH = re.compile(r'^#[0-9a-fA-F]{64}$')


def acl_file_users(text):
    users = []
    for number, line in enumerate(to_text(text).splitlines(), 1):
        words = line.split()
        if not words or words[0].startswith('#'):
            continue
        if words[0] != 'user' or len(words) < 3:
            raise AnsibleFilterError('acl_file_users: line %d is not "user <name> <rules>"' % number)
        rules = words[2:]
        if 'on' not in rules or 'off' in rules:
            raise AnsibleFilterError('acl_file_users: user %s (line %d) is not "on"' % (words[1], number))
        if 'nopass' in rules or any(rule.startswith(('>', '<', '!')) or (rule.startswith('#') and not HASH.match(rule))
                                    for rule in rules):
            raise AnsibleFilterError('acl_file_users: user %s (line %d) has a clear-text password or nopass; '
                                     'give SHA-256 hashes (# and 64 hexadecimal digits)' % (words[1], number))
        users.append(dict(name=words[1], password_hashes=[rule[1:].lower() for rule in rules if HASH.match(rule)],
                          rules=' '.join(rule for rule in rules if rule != 'on' and not HASH.match(rule))))
    return users


class FilterModule(object):
    def filters(self):
        return {'acl_file_users': acl_file_users}
