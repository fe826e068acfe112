#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, KeyBuzz (@keybuzz)
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: sentinel_reset
short_description: Make one Redis Sentinel forget the replicas and Sentinels it knows of a master (SENTINEL RESET)
version_added: 1.1.0
author: KeyBuzz (@keybuzz)
description:
  - Sends C(SENTINEL RESET <master_name>) to one Sentinel. It clears its lists of the master's replicas and of the other
    Sentinels, and relearns them within seconds from the master (C(INFO)) and from the other Sentinels' hello messages,
    so that nodes and Sentinels that were removed are forgotten.
  - Reset one Sentinel at a time and wait until it knows the cluster again (M(keybuzz.redis_ha.sentinel_master_status))
    before the next, so that a majority always knows every Sentinel.
  - Always reports a change. Fails, naming the Sentinel, when it does not monitor a master named O(master_name).
options:
  master_name:
    description:
      - Name of the master as configured in C(sentinel monitor); an exact name, not a pattern.
    type: str
    required: true
  login_port:
    description:
      - Port of the Sentinel.
    type: int
    default: 26379
extends_documentation_fragment:
  - keybuzz.redis_ha.redis_connection
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    platforms: posix
notes:
  - O(login_password) is the Sentinel's own password, not the Redis one.
  - In check mode nothing is sent; the module reports the change it would make.
requirements:
  - redis (Python library)
seealso:
  - module: keybuzz.redis_ha.sentinel_master_status
'''

EXAMPLES = r'''
- name: Forget the nodes that left
  keybuzz.redis_ha.sentinel_reset:
    login_host: 10.0.0.123
    login_password: "{{ sentinel_password }}"
    master_name: kb-redis-master
'''

RETURN = r'''
reset:
  description: The number of masters the Sentinel reset (1), or 0 in check mode.
  returned: success
  type: int
  sample: 1
'''

import re

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.keybuzz.redis_ha.plugins.module_utils.redis_connection import (
    check_redis_lib,
    connection_argument_spec,
    error_message,
    raw_command,
    redis_client,
    to_int,
)


def main():
    argument_spec = connection_argument_spec(default_port=26379)
    argument_spec.update(master_name=dict(type='str', required=True))
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    check_redis_lib(module)
    params = module.params
    where = '%s:%s' % (params['login_host'], params['login_port'])
    # SENTINEL RESET takes a glob pattern: a name holding *, ? or [ could reset other masters.
    if re.search(r'[*?\[\]\\]', params['master_name']):
        module.fail_json(msg='master_name: %r holds a glob character (*, ?, [, ], \\); give the exact name' % params['master_name'])
    if module.check_mode:
        module.exit_json(changed=True, reset=0)
    client = redis_client(params)
    try:
        count = to_int(raw_command(client, 'SENTINEL', 'RESET', params['master_name']), 0)
    except Exception as exc:
        why = error_message(exc, params['login_host'], params['login_port'], params['login_password'])
        module.fail_json(msg='SENTINEL RESET %s on %s failed: %s' % (params['master_name'], where, why))
    if count != 1:
        module.fail_json(msg='SENTINEL RESET %s on %s reset %d masters: the Sentinel does not monitor a master named %s'
                         % (params['master_name'], where, count, params['master_name']), reset=count)
    module.exit_json(changed=True, reset=count)


if __name__ == '__main__':
    main()
