#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, KeyBuzz (@keybuzz)
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: redis_replication
short_description: Make a Redis node a replica of a given master (REPLICAOF), only when it follows another one
version_added: 1.0.0
author: KeyBuzz (@keybuzz)
description:
  - Reads the node's replication state (C(INFO replication)). When it is a master, or a replica of
    another address, sends C(REPLICAOF) O(master_host) O(master_port); otherwise changes nothing.
  - With O(sentinels), asks them right before C(REPLICAOF) which master they name. When a strict
    majority names another address (a failover happened since the master was chosen), nothing is
    sent and the task fails saying so. This is the collection's C(ha_rules.view_changed) rule; no
    majority answering does not block (nothing contradicts the plan).
options:
  master_host:
    description:
      - Address of the master the node must follow, as the Sentinels announce it.
    type: str
    required: true
  master_port:
    description:
      - Port of that master.
    type: int
    default: 6379
  sentinels:
    description:
      - Sentinels to ask right before C(REPLICAOF), as C(host:port), C(host) (port 26379) or C([ipv6]:port).
    type: list
    elements: str
  master_name:
    description:
      - Name of the master in the Sentinels' configuration. Required with O(sentinels).
    type: str
  sentinel_password:
    description:
      - Password of the Sentinels (not the Redis one). The TLS options are the node's.
    type: str
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
  - The login options are the node's (an ACL user allowed C(INFO) and C(REPLICAOF)).
  - In check mode the Sentinels are still asked, so that a change refused for real is refused in check mode too.
requirements:
  - redis (Python library)
seealso:
  - module: keybuzz.redis_ha.redis_replication_info
  - module: keybuzz.redis_ha.sentinel_master_status
'''

EXAMPLES = r'''
- name: Follow the master the Sentinels name, unless they name another one by now
  keybuzz.redis_ha.redis_replication:
    login_host: 10.0.0.124
    login_user: admin
    login_password: "{{ admin_password }}"
    master_host: 10.0.0.123
    sentinels: [10.0.0.123:26379, 10.0.0.124:26379, 10.0.0.125:26379]
    master_name: kb-redis-master
    sentinel_password: "{{ sentinel_password }}"
'''

RETURN = r'''
before:
  description: What the node followed before the task, C(master) when it was a master.
  returned: success
  type: str
  sample: master
after:
  description: What the node follows after the task (in check mode, what it would follow).
  returned: success
  type: str
  sample: replica of 10.0.0.123:6379
sentinels_named:
  description: The address a strict majority of O(sentinels) named right before C(REPLICAOF), else V(null).
  returned: success
  type: str
  sample: 10.0.0.123:6379
diff:
  description: RV(before) and RV(after) (with C(--diff)), when they differ.
  returned: when diff mode is on
  type: dict
'''

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.keybuzz.redis_ha.plugins.module_utils import ha_rules
from ansible_collections.keybuzz.redis_ha.plugins.module_utils.redis_connection import (
    check_redis_lib,
    connection_argument_spec,
    error_message,
    info_replication,
    parse_address,
    raw_command,
    redis_client,
    sentinel_master_addresses,
)


def following(info):
    """'master' or 'replica of host:port' from a parsed INFO replication."""
    if info.get('role') == 'master':
        return 'master'
    return 'replica of %s' % ha_rules.text((info.get('master_host'), int(info.get('master_port') or 0)))


def main():
    argument_spec = connection_argument_spec()
    argument_spec.update(
        master_host=dict(type='str', required=True),
        master_port=dict(type='int', default=6379),
        sentinels=dict(type='list', elements='str'),
        master_name=dict(type='str'),
        sentinel_password=dict(type='str', no_log=True),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True,
                           required_by=dict(sentinels=['master_name']))
    check_redis_lib(module)
    params = module.params
    planned = ha_rules.text((params['master_host'], params['master_port']))
    node = ha_rules.text((params['login_host'], params['login_port']))
    if planned == node:
        module.fail_json(msg='%s is the master to follow itself: REPLICAOF is for the other nodes' % node)
    try:
        sentinels = [parse_address(text, 26379) for text in params['sentinels'] or []]
    except ValueError as exc:
        module.fail_json(msg='invalid sentinels entry: %s' % exc)

    client = redis_client(params)
    step, error, refused = 'INFO replication', None, None
    try:
        before = following(info_replication(client))
        result = dict(changed=before != 'replica of %s' % planned, before=before, after='replica of %s' % planned,
                      sentinels_named=None)
        if result['changed'] and sentinels:
            views = sentinel_master_addresses(params, sentinels, params['master_name'], params['sentinel_password'])
            result['sentinels_named'] = ha_rules.text(ha_rules.sentinel_majority(views, len(sentinels)))
            refused = ha_rules.view_changed(planned, result['sentinels_named'])
        if result['changed'] and not refused and not module.check_mode:
            step = 'REPLICAOF %s %s' % (params['master_host'], params['master_port'])
            reply = raw_command(client, 'REPLICAOF', params['master_host'], str(params['master_port']))
            if not str(reply).startswith('OK'):
                raise ValueError('unexpected reply %r' % reply)
    except Exception as exc:
        error = error_message(exc, params['login_host'], params['login_port'], params['login_password'])
    finally:
        try:
            client.close()
        except Exception:
            pass
    if error:
        module.fail_json(msg='%s on %s failed: %s' % (step, node, error))
    if refused:
        result.update(changed=False, after=result['before'])
        module.fail_json(msg='%s: REPLICAOF was not sent to %s (it stays %s)' % (refused, node, result['before']), **result)
    if module._diff and result['changed']:
        result['diff'] = dict(before=before + '\n', after=result['after'] + '\n')
    module.exit_json(**result)


if __name__ == '__main__':
    main()
