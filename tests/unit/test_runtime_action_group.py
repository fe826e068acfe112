# -*- coding: utf-8 -*-
# Copyright: (c) 2026, KeyBuzz (@keybuzz)
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""meta/runtime.yml's action group `redis` holds exactly the modules that take the shared connection
options (module_utils/redis_connection.connection_argument_spec): module_defaults set once reach them all."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_the_redis_group_is_every_module_with_the_connection_options():
    modules = os.path.join(ROOT, 'plugins', 'modules')
    connected = set()
    for name in os.listdir(modules):
        if name.endswith('.py') and name != '__init__.py':
            with open(os.path.join(modules, name)) as handle:
                if 'connection_argument_spec(' in handle.read():
                    connected.add(name[:-3])
    with open(os.path.join(ROOT, 'meta', 'runtime.yml')) as handle:
        group = yaml.safe_load(handle)['action_groups']['redis']
    assert len(connected) >= 8
    assert sorted(group) == sorted(connected)
