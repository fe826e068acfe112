# -*- coding: utf-8 -*-
# Copyright: (c) 2026, KeyBuzz (@keybuzz)
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""keybuzz.redis_ha.port_problems and ipv4_rejects: the rules for listeners that the preflight play
and the roles share."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible.errors import AnsibleFilterError
from ansible_collections.keybuzz.redis_ha.plugins.filter.ipv4_rejects import ipv4_rejects
from ansible_collections.keybuzz.redis_ha.plugins.filter.port_problems import port_problems


def test_distinct_valid_ports_have_no_problem():
    assert port_problems({'a_port': 6379, 'b_port': '8405', 'c_port': 65535, 'd_port': 1}) == []


def test_invalid_ports_first_in_order_then_each_shared_port_once_naming_every_user():
    problems = port_problems({'front': 6379, 'health': '6379', 'stats': 'metrics', 'metrics': 0, 'watcher': 6379,
                              'extra': 8404, 'other': 8404, 'flag': True, 'big': 65536, 'spaced': ' 8405'},
                             host='haproxy-01', fix='give each HAProxy listener its own port')
    assert problems == [
        'stats: metrics (haproxy-01) is not a TCP port. Fix: a number from 1 to 65535.',
        'metrics: 0 (haproxy-01) is not a TCP port. Fix: a number from 1 to 65535.',
        'flag: True (haproxy-01) is not a TCP port. Fix: a number from 1 to 65535.',
        'big: 65536 (haproxy-01) is not a TCP port. Fix: a number from 1 to 65535.',
        'spaced:  8405 (haproxy-01) is not a TCP port. Fix: a number from 1 to 65535.',
        'watcher: 6379 (haproxy-01) is also the port of front, health. Fix: give each HAProxy listener its own port.',
        'other: 8404 (haproxy-01) is also the port of extra. Fix: give each HAProxy listener its own port.',
    ]


def test_without_a_host_the_default_fix():
    assert port_problems({'a': 1, 'b': 1}) == ['b: 1 is also the port of a. Fix: give each its own port.']


def test_a_list_is_refused():
    with pytest.raises(AnsibleFilterError, match='expects a mapping'):
        port_problems([6379])


@pytest.mark.parametrize('value', ['10.0.0.123', '0.0.0.0', '255.255.255.255', '127.0.0.1'])
def test_addresses(value):
    assert ipv4_rejects([value]) == []


@pytest.mark.parametrize('value', ['10.0.0.0/16', {'a': '10.0.0.1'}, None, 6379])
def test_anything_but_a_list_is_returned_whole(value):
    """A bare string is no list of networks (a role would join its characters), so it is refused whole."""
    assert ipv4_rejects(value, networks=True) == [str(value)]


@pytest.mark.parametrize('value', ['10.0.0.256', '10.0.0', '010.0.0.1', '10.0.0.1 ', 'redis-01', '::1', '', None,
                                   '10.0.0.0/16'])
def test_not_addresses(value):
    assert ipv4_rejects([value]) == ['None' if value is None else value]


def test_networks_take_a_prefix_up_to_32():
    assert ipv4_rejects(['10.0.0.0/16', '10.0.0.5', '10.1.2.3/32', '10.0.0.0/33', '10.0.0.0/', '10.0.0.0/8/8'],
                        networks=True) == ['10.0.0.0/33', '10.0.0.0/', '10.0.0.0/8/8']
