# -*- coding: utf-8 -*-
# Copyright: (c) 2026, KeyBuzz (@keybuzz)
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The collection's rule for the listening ports of one host (TCP ports, each used once), used by the
preflight play and by the roles' own preflight, so that both refuse the same settings with the same words."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
name: port_problems
short_description: What is wrong with the listening ports of one host (not a TCP port, a port used twice)
version_added: 1.1.0
description:
  - Checks a mapping of variable names to port numbers, the listeners of one host.
  - "Returns one sentence per problem, naming the variable: C(<name>: <value> is not a TCP port. Fix: a number from 1
    to 65535.) and, for a port given to several variables, C(<last name>: <port> is also the port of <other names>.
    Fix: <fix>.); an empty list when all is well."
author: KeyBuzz (@keybuzz)
options:
  _input:
    description: The ports, keyed by the variable that sets each one, in the order they should be named.
    type: dict
    required: true
  host:
    description: The host the ports are for, named after each value, as in C(6379 (redis-01)).
    type: str
  fix:
    description: What to do about a port used twice.
    type: str
    default: give each its own port
'''

EXAMPLES = r'''
- name: Stop on a bad HAProxy listener port, naming the variable
  ansible.builtin.fail:
    msg: "{{ _problems | join(' ') }}"
  when: _problems | length > 0
  vars:
    _problems: >-
      {{ {'haproxy_redis_frontend_port': haproxy_redis_frontend_port, 'haproxy_redis_health_port': haproxy_redis_health_port}
         | keybuzz.redis_ha.port_problems(host=inventory_hostname, fix='give each HAProxy listener its own port') }}
'''

RETURN = r'''
_value:
  description: The problems, the invalid ports first (in the order of O(_input)), then the ports used twice (by port).
  type: list
  elements: str
'''

import re
from collections.abc import Mapping

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.text.converters import to_text


def port_number(value):
    """The port as an int, or None when the value is not a TCP port (1-65535; a bool is not a port)."""
    if isinstance(value, bool):
        return None
    text = to_text(value)
    if not re.match(r'^[0-9]+$', text) or not 1 <= int(text) <= 65535:
        return None
    return int(text)


def port_problems(ports, host=None, fix='give each its own port'):
    if not isinstance(ports, Mapping):
        raise AnsibleFilterError('port_problems: expects a mapping of variable names to ports, not %s'
                                 % type(ports).__name__)
    where = ' (%s)' % host if host else ''
    problems, users = [], {}
    for name, value in ports.items():
        number = port_number(value)
        if number is None:
            problems.append('%s: %s%s is not a TCP port. Fix: a number from 1 to 65535.' % (name, to_text(value), where))
        else:
            users.setdefault(number, []).append(to_text(name))
    for number in sorted(users):
        names = users[number]
        if len(names) > 1:
            problems.append('%s: %d%s is also the port of %s. Fix: %s.'
                            % (names[-1], number, where, ', '.join(names[:-1]), fix))
    return problems


class FilterModule(object):
    def filters(self):
        return {'port_problems': port_problems}
