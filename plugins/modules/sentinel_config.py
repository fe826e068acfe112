#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, KeyBuzz (@keybuzz)
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: sentinel_config
short_description: Apply the settings of a master monitored by a Redis Sentinel (SENTINEL SET), only those that differ
version_added: 1.0.0
author: KeyBuzz (@keybuzz)
description:
  - Reads the monitored master's settings with C(SENTINEL MASTER), compares them with O(settings) and
    sets the ones that differ, one C(SENTINEL SET) each. Sentinel persists them in its own
    configuration file.
  - When Sentinel refuses a value the task fails naming it; the settings set before it stay set
    (listed in C(applied_settings) of the failure).
  - Only settings that C(SENTINEL MASTER) reports can be compared, so only those are accepted.
options:
  master_name:
    description:
      - Name of the master as configured in C(sentinel monitor).
    type: str
    required: true
  settings:
    description:
      - Settings to apply, as a mapping of name to integer value.
      - Accepted names are C(quorum), C(down-after-milliseconds), C(failover-timeout) and C(parallel-syncs).
    type: dict
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
    support: full
  platform:
    platforms: posix
notes:
  - O(login_password) is the Sentinel's own password, not the Redis one.
  - In check mode the differing settings are reported (RV(changed_settings), diff) and none is set.
requirements:
  - redis (Python library)
seealso:
  - module: keybuzz.redis_ha.sentinel_master_status
  - module: keybuzz.redis_ha.redis_config
'''

EXAMPLES = r'''
- name: Quorum 3 once five Sentinels run
  keybuzz.redis_ha.sentinel_config:
    login_host: 10.0.0.123
    login_password: "{{ sentinel_password }}"
    master_name: kb-redis-master
    settings:
      quorum: 3
      down-after-milliseconds: 5000
'''

RETURN = r'''
changed_settings:
  description: Names of the settings that differed (and were set, outside check mode), sorted.
  returned: success
  type: list
  elements: str
  sample: [quorum]
before:
  description: Value the Sentinel reported for each setting of O(settings) before the change.
  returned: success
  type: dict
  sample: {quorum: "2", down-after-milliseconds: "5000"}
diff:
  description: Before and after values of the changed settings (with C(--diff)).
  returned: when diff mode is on
  type: dict
'''

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_text
from ansible_collections.keybuzz.redis_ha.plugins.module_utils.redis_connection import (
    check_redis_lib,
    connection_argument_spec,
    error_message,
    pairs_to_dict,
    raw_command,
    redis_client,
    settings_result,
)

SETTINGS = ('quorum', 'down-after-milliseconds', 'failover-timeout', 'parallel-syncs')


def normalize(value):
    return to_text(value).strip()


def main():
    argument_spec = connection_argument_spec(default_port=26379)
    argument_spec.update(master_name=dict(type='str', required=True), settings=dict(type='dict', required=True))
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    check_redis_lib(module)
    params = module.params
    wanted = dict((to_text(k), v) for k, v in params['settings'].items())
    unknown = sorted(set(wanted) - set(SETTINGS))
    if unknown:
        module.fail_json(msg='settings: %s cannot be compared (SENTINEL MASTER does not report them); use %s'
                         % (', '.join(unknown), ', '.join(SETTINGS)))
    for name, value in wanted.items():
        if not to_text(value).strip().isdigit():
            module.fail_json(msg='settings: %s is %r, not a whole number' % (name, value))

    client = redis_client(params)
    applied, step = [], 'SENTINEL MASTER %s' % params['master_name']
    try:
        master = pairs_to_dict(raw_command(client, 'SENTINEL', 'MASTER', params['master_name']))
        result = settings_result(wanted, dict((name, to_text(master.get(name, ''))) for name in sorted(wanted)),
                                 normalize, module._diff)
        # One SENTINEL SET per setting: Sentinel applies the pairs of one call in order and stops at the
        # first it refuses, so one per call tells exactly which were applied.
        for name in ([] if module.check_mode else result['changed_settings']):
            step = 'SENTINEL SET %s %s %s' % (params['master_name'], name, to_text(wanted[name]).strip())
            raw_command(client, 'SENTINEL', 'SET', params['master_name'], name, to_text(wanted[name]).strip())
            applied.append(name)
    except Exception as exc:
        why = error_message(exc, params['login_host'], params['login_port'], params['login_password'])
        if 'no such master' in to_text(exc).lower():
            why = 'the Sentinel does not monitor a master named %s' % params['master_name']
        module.fail_json(msg='%s on %s:%s failed: %s' % (step, params['login_host'], params['login_port'], why),
                         applied_settings=applied)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
