#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, KeyBuzz (@keybuzz)
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: redis_replication_info
short_description: Report and check the replication state of a Redis server
version_added: 1.0.0
author: KeyBuzz (@keybuzz)
description:
  - Reads C(INFO replication) from one Redis server and reports its role, its link to the master
    or its replicas, offsets and lag.
  - Optionally checks expectations (role, master followed, number of replicas in sync) and sums
    them up in RV(healthy) and RV(reason).
  - Never changes anything on the server.
options:
  expected_role:
    description:
      - Role the server must have. V(any) accepts both roles.
    type: str
    choices: [master, replica, any]
    default: any
  expected_master_host:
    description:
      - For a replica, the master host it must follow (compared with C(master_host) of C(INFO replication)).
      - Ignored when the server is a master.
    type: str
  expected_master_port:
    description:
      - For a replica, the master port it must follow. Only checked when O(expected_master_host) is set.
    type: int
    default: 6379
  min_replicas:
    description:
      - On a master, the minimum number of replicas in sync (see RV(in_sync_replicas)).
      - Ignored when the server is a replica.
    type: int
    default: 0
  max_lag:
    description:
      - Maximum C(lag) in seconds (time since the last acknowledgement) for a replica to count as in sync.
    type: int
    default: 10
  max_offset_lag:
    description:
      - Maximum difference in bytes between the master replication offset and the replica offset for a
        replica to count as in sync. Not checked when omitted.
    type: int
  read_run_id:
    description:
      - Also read the server's C(run_id) (C(INFO server)), which tells one process from another, for example to check
        that a proxy routes to a given node. The login user then needs C(INFO server) too.
    type: bool
    default: false
    version_added: 1.1.0
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
  - Connection, authentication, permission and timeout problems do not fail the task. The module
    returns RV(reachable=false), RV(healthy=false) and the cause in RV(reason), so it can be retried
    with C(until) on C(result.healthy).
  - Supports check mode; the result is the same as in normal mode and C(changed) is always V(false).
  - The user needs the C(info) command (for example C(+info)).
requirements:
  - redis (Python library)
seealso:
  - module: keybuzz.redis_ha.sentinel_master_status
'''

EXAMPLES = r'''
- name: Wait until the master has two replicas in sync
  keybuzz.redis_ha.redis_replication_info:
    login_host: 10.1.2.3
    login_user: monitor
    login_password: "{{ redis_monitor_password }}"
    expected_role: master
    min_replicas: 2
    max_lag: 5
  register: repl
  until: repl.healthy
  retries: 30
  delay: 2

- name: Check that a replica follows the expected master
  keybuzz.redis_ha.redis_replication_info:
    login_password: "{{ redis_password }}"
    expected_role: replica
    expected_master_host: 10.1.2.3
    expected_master_port: 6379
  register: replica_state

- name: Fail with the reason when unhealthy
  ansible.builtin.assert:
    that: replica_state.healthy
    fail_msg: "{{ replica_state.reason }}"
'''

RETURN = r'''
reachable:
  description: Whether the server was reached, authenticated and answered C(INFO replication).
  returned: always
  type: bool
  sample: true
role:
  description: Role of the server, V(master) or V(replica). V(null) when not reachable.
  returned: always
  type: str
  sample: master
master_host:
  description: Master host followed by a replica. V(null) on a master or when not reachable.
  returned: always
  type: str
  sample: 10.1.2.3
master_port:
  description: Master port followed by a replica. V(null) on a master or when not reachable.
  returned: always
  type: int
  sample: 6379
master_link_status:
  description: Replica link to its master, V(up) or V(down). V(null) on a master.
  returned: always
  type: str
  sample: up
master_sync_in_progress:
  description: Whether a replica is currently doing a full synchronisation. V(null) on a master.
  returned: always
  type: bool
  sample: false
master_last_io_seconds_ago:
  description: Seconds since the replica last heard from its master (V(-1) while the link is down). V(null) on a master.
  returned: always
  type: int
  sample: 1
replicas:
  description: Replicas connected to a master, as listed by C(INFO replication). Empty on a replica.
  returned: always
  type: list
  elements: dict
  contains:
    ip:
      description: Address the replica announced.
      type: str
      sample: 10.1.2.4
    port:
      description: Port the replica announced.
      type: int
      sample: 6379
    state:
      description: Replication state, V(online) once synchronised.
      type: str
      sample: online
    offset:
      description: Replication offset acknowledged by the replica.
      type: int
      sample: 123456
    lag:
      description: Seconds since the last acknowledgement from the replica.
      type: int
      sample: 0
    offset_lag:
      description: RV(master_repl_offset) minus the replica offset, in bytes.
      type: int
      sample: 0
connected_replicas:
  description: Number of replicas connected to a master (C(connected_slaves)). V(0) on a replica.
  returned: always
  type: int
  sample: 2
in_sync_replicas:
  description:
    - Number of replicas in state V(online) whose lag is at most O(max_lag) and, when set,
      whose offset lag is at most O(max_offset_lag).
  returned: always
  type: int
  sample: 2
master_repl_offset:
  description: Replication offset of the server (C(master_repl_offset)).
  returned: always
  type: int
  sample: 123456
replica_repl_offset:
  description: Offset processed by a replica (C(slave_repl_offset)). V(null) on a master.
  returned: always
  type: int
  sample: 123456
master_replid:
  description: Replication ID of the server.
  returned: always
  type: str
  sample: 8e3b63c5a9b8bd1b0d9d6f9a0a2ac1e8b5e1c0de
replica_priority:
  description: The replica's C(replica-priority) (C(slave_priority)); V(0) means Sentinel never promotes it. V(null) on a master.
  returned: always
  type: int
  sample: 100
  version_added: 1.1.0
run_id:
  description: The server's C(run_id) with O(read_run_id), else V(null).
  returned: always
  type: str
  sample: 5b1f0d3c7e9a4d2b8c6f1e0a9d8c7b6a5f4e3d2c
  version_added: 1.1.0
healthy:
  description:
    - V(true) when the server is reachable and every expectation is met.
    - A replica additionally needs its link up and no synchronisation in progress.
  returned: always
  type: bool
  sample: true
reason:
  description: V(ok) when healthy, otherwise one sentence naming every failed expectation.
  returned: always
  type: str
  sample: role is replica, expected master
'''

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.keybuzz.redis_ha.plugins.module_utils.redis_connection import (
    check_redis_lib,
    connection_argument_spec,
    error_message,
    format_address,
    info_replication,
    info_server,
    redis_client,
    replicas_from_info,
    to_int,
)


def empty_result():
    return dict(
        changed=False, reachable=False, role=None, master_host=None, master_port=None,
        master_link_status=None, master_sync_in_progress=None, master_last_io_seconds_ago=None,
        replicas=[], connected_replicas=0, in_sync_replicas=0, master_repl_offset=None,
        replica_repl_offset=None, master_replid=None, replica_priority=None, run_id=None, healthy=False, reason='',
    )


def describe(info, params):
    """Fill the result from a parsed INFO replication."""
    res = empty_result()
    res['reachable'] = True
    res['role'] = 'master' if info.get('role') == 'master' else 'replica'
    res['master_repl_offset'] = to_int(info.get('master_repl_offset'))
    res['master_replid'] = info.get('master_replid')
    res['connected_replicas'] = to_int(info.get('connected_slaves'), 0)
    if res['role'] == 'replica':
        res['master_host'] = info.get('master_host')
        res['master_port'] = to_int(info.get('master_port'))
        res['master_link_status'] = info.get('master_link_status')
        res['master_sync_in_progress'] = info.get('master_sync_in_progress') == '1'
        res['master_last_io_seconds_ago'] = to_int(info.get('master_last_io_seconds_ago'))
        res['replica_repl_offset'] = to_int(info.get('slave_repl_offset'))
        res['replica_priority'] = to_int(info.get('slave_priority'))
    max_offset_lag = params['max_offset_lag']
    for rep in replicas_from_info(info):
        rep = dict(rep)
        offset = to_int(rep.get('offset'))
        if offset is not None and res['master_repl_offset'] is not None:
            rep['offset_lag'] = max(res['master_repl_offset'] - offset, 0)
        else:
            rep['offset_lag'] = None
        lag = to_int(rep.get('lag'))
        if (rep.get('state') == 'online' and lag is not None and lag <= params['max_lag']
                and (max_offset_lag is None or (rep['offset_lag'] is not None and rep['offset_lag'] <= max_offset_lag))):
            res['in_sync_replicas'] += 1
        res['replicas'].append(rep)
    return res


def failed_expectations(res, params):
    problems = []
    expected_role = params['expected_role']
    if expected_role != 'any' and res['role'] != expected_role:
        problems.append('role is %s, expected %s' % (res['role'], expected_role))
    if res['role'] == 'master':
        if res['in_sync_replicas'] < params['min_replicas']:
            problems.append('%d of %d required replicas in sync' % (res['in_sync_replicas'], params['min_replicas']))
        return problems
    master = format_address(res['master_host'], res['master_port'])
    if params['expected_master_host'] is not None:
        expected = (params['expected_master_host'], params['expected_master_port'])
        if (res['master_host'], res['master_port']) != expected:
            problems.append('replica follows %s, expected %s' % (master, format_address(*expected)))
    if res['master_link_status'] != 'up':
        problems.append('link to master %s is %s' % (master, res['master_link_status'] or 'unknown'))
    if res['master_sync_in_progress']:
        problems.append('full sync from master %s in progress' % master)
    return problems


def main():
    argument_spec = connection_argument_spec()
    argument_spec.update(
        expected_role=dict(type='str', default='any', choices=['master', 'replica', 'any']),
        expected_master_host=dict(type='str'),
        expected_master_port=dict(type='int', default=6379),
        min_replicas=dict(type='int', default=0),
        max_lag=dict(type='int', default=10),
        max_offset_lag=dict(type='int'),
        read_run_id=dict(type='bool', default=False),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    check_redis_lib(module)
    params = module.params

    client = None
    try:
        client = redis_client(params)
        info = info_replication(client)
        run_id = info_server(client).get('run_id') if params['read_run_id'] else None
    except Exception as exc:  # report every connection/auth/permission problem, never crash
        result = empty_result()
        result['reason'] = error_message(exc, params['login_host'], params['login_port'], params['login_password'])
        module.exit_json(**result)
    finally:
        if client is not None:
            try:
                client.close()
            except Exception:
                pass

    result = describe(info, params)
    result['run_id'] = run_id
    problems = failed_expectations(result, params)
    result['healthy'] = not problems
    result['reason'] = '; '.join(problems) if problems else 'ok'
    module.exit_json(**result)


if __name__ == '__main__':
    main()
