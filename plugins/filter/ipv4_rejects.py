# -*- coding: utf-8 -*-
# Copyright: (c) 2026, KeyBuzz (@keybuzz)
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The collection's rule for an IPv4 address or network, used by the preflight play and the roles."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
name: ipv4_rejects
short_description: The entries of a list that are not IPv4 addresses (or networks)
version_added: 1.1.0
description:
  - Returns the entries of O(_input), as text, that are not an IPv4 address in dotted decimal (C(10.0.0.123), no
    leading zeros), or with O(networks) also not such an address followed by C(/0) to C(/32).
  - An empty list when every entry is valid; so C([address] | keybuzz.redis_ha.ipv4_rejects | length == 0) tests one
    address.
author: KeyBuzz (@keybuzz)
options:
  _input:
    description:
      - The addresses or networks, a list. Anything else (a string, a mapping, V(null)) is no list of addresses and is
        returned whole, as the one invalid entry; a caller that takes a single address gives C([address]).
      - A V(null) entry is invalid.
    type: raw
    required: true
  networks:
    description: Also accept a prefix length (C(10.0.0.0/16)).
    type: bool
    default: false
'''

EXAMPLES = r'''
- name: Only IPv4 networks may scrape the metrics
  ansible.builtin.assert:
    that: haproxy_redis_metrics_allowed_networks | keybuzz.redis_ha.ipv4_rejects(networks=true) | length == 0
    fail_msg: "Not IPv4 networks: {{ haproxy_redis_metrics_allowed_networks | keybuzz.redis_ha.ipv4_rejects(networks=true) }}"
'''

RETURN = r'''
_value:
  description: The invalid entries, as text, in their order.
  type: list
  elements: str
'''

import re
from collections.abc import Mapping

from ansible.module_utils.common.text.converters import to_text

OCTET = r'(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])'
ADDRESS = r'%s(\.%s){3}' % (OCTET, OCTET)
PREFIX = r'/([0-9]|[12][0-9]|3[0-2])'


def ipv4_rejects(values, networks=False):
    if values is None or isinstance(values, (str, bytes, Mapping)) or not hasattr(values, '__iter__'):
        return [to_text(values)]
    pattern = re.compile(r'^%s(%s)?$' % (ADDRESS, PREFIX) if networks else r'^%s$' % ADDRESS)
    return [to_text(value) for value in values if value is None or not pattern.match(to_text(value))]


class FilterModule(object):
    def filters(self):
        return {'ipv4_rejects': ipv4_rejects}
