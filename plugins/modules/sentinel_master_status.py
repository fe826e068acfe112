#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, KeyBuzz (@keybuzz)
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: sentinel_master_status
short_description: Ask one or several Redis Sentinels about a monitored master
version_added: 1.0.0
author: KeyBuzz (@keybuzz)
description:
  - Queries every Sentinel of O(sentinels) with C(SENTINEL MASTER), C(SENTINEL REPLICAS) and,
    optionally, C(SENTINEL CKQUORUM) for the master O(master_name).
  - Reports each Sentinel's view, the master address named by a strict majority of the configured
    Sentinels (the queried ones, or O(expected_sentinels) when that is more), and whether every
    expectation is met in RV(healthy) and RV(reason). The rule is the collection's
    C(ha_rules.sentinel_majority), shared with the start-up guard and the HAProxy watcher.
  - Never changes anything.
options:
  login_port:
    description:
      - Port of the Sentinel to query when O(sentinels) is not set, and default port of the
        O(sentinels) entries that do not give one.
    type: int
    default: 26379
  login_user:
    description:
      - ACL user name used to authenticate to the Sentinels.
    type: str
  login_password:
    description:
      - Password of the Sentinels (C(requirepass) or the password of O(login_user)), not the Redis one.
    type: str
  sentinels:
    description:
      - Sentinels to query, as C(host:port), C(host) (port O(login_port)) or C([ipv6]:port).
      - Defaults to the single Sentinel O(login_host):O(login_port).
    type: list
    elements: str
  master_name:
    description:
      - Name of the master as configured in C(sentinel monitor).
    type: str
    required: true
  expected_sentinels:
    description:
      - Number of Sentinels, including itself, that each Sentinel must know (C(num-other-sentinels) + 1).
      - The count must be exactly this value; more means stale Sentinel entries that need C(SENTINEL RESET).
      - Also the number of configured Sentinels a majority is counted against, when more are configured than queried.
    type: int
  expected_replicas:
    description:
      - Minimum number of replicas each Sentinel must know that are not flagged C(s_down), C(o_down)
        or C(disconnected).
    type: int
  expected_master_host:
    description:
      - Master host the majority of Sentinels must name.
    type: str
  expected_master_port:
    description:
      - Master port the majority of Sentinels must name.
    type: int
  check_quorum:
    description:
      - Run C(SENTINEL CKQUORUM) on each Sentinel; a failure makes the result unhealthy.
    type: bool
    default: true
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
  - A Sentinel that cannot be reached, rejects the credentials or does not know O(master_name) is
    reported in its RV(sentinels) entry and never fails the task.
  - RV(healthy) is V(false) as soon as one queried Sentinel is unreachable or answers with an error,
    even when a majority still agrees; the master address is still reported when a majority names it.
  - Usable with C(until) on C(result.healthy) to wait for Sentinels to converge, for example after a failover.
  - Supports check mode; the result is the same as in normal mode and C(changed) is always V(false).
requirements:
  - redis (Python library)
seealso:
  - module: keybuzz.redis_ha.redis_replication_info
'''

EXAMPLES = r'''
- name: Wait until the three Sentinels agree on a healthy master
  keybuzz.redis_ha.sentinel_master_status:
    sentinels:
      - 10.1.2.3:26379
      - 10.1.2.4:26379
      - 10.1.2.5:26379
    login_password: "{{ sentinel_password }}"
    master_name: mymaster
    expected_sentinels: 3
    expected_replicas: 2
  register: sentinel_state
  until: sentinel_state.healthy
  retries: 30
  delay: 2

- name: Check that the Sentinels name the expected master
  keybuzz.redis_ha.sentinel_master_status:
    login_host: 127.0.0.1
    login_password: "{{ sentinel_password }}"
    master_name: mymaster
    expected_master_host: 10.1.2.3
    expected_master_port: 6379
  register: sentinel_state

- name: Show the master address
  ansible.builtin.debug:
    msg: "master is {{ sentinel_state.master_host }}:{{ sentinel_state.master_port }} ({{ sentinel_state.reason }})"
'''

RETURN = r'''
sentinels:
  description: View of each queried Sentinel, in the order of O(sentinels).
  returned: always
  type: list
  elements: dict
  contains:
    address:
      description: Sentinel address as C(host:port).
      type: str
      sample: 10.1.2.3:26379
    reachable:
      description: Whether the Sentinel was reached and accepted the credentials.
      type: bool
      sample: true
    error:
      description: Why the Sentinel could not answer (never contains the password), else V(null).
      type: str
      sample: "cannot connect to 10.1.2.3:26379: connection refused"
    master_host:
      description: Master host according to this Sentinel.
      type: str
      sample: 10.1.2.3
    master_port:
      description: Master port according to this Sentinel.
      type: int
      sample: 6379
    flags:
      description: Flags of the master according to this Sentinel.
      type: list
      elements: str
      sample: [master]
    s_down:
      description: Whether this Sentinel considers the master subjectively down.
      type: bool
      sample: false
    o_down:
      description: Whether this Sentinel considers the master objectively down.
      type: bool
      sample: false
    failover_in_progress:
      description: Whether a failover is in progress (C(failover_in_progress) or C(promoted) flag).
      type: bool
      sample: false
    known_sentinels:
      description: Sentinels known by this Sentinel, including itself (C(num-other-sentinels) + 1).
      type: int
      sample: 3
    known_replicas:
      description: Replicas known by this Sentinel.
      type: int
      sample: 2
    healthy_replicas:
      description: Known replicas not flagged C(s_down), C(o_down) or C(disconnected).
      type: int
      sample: 2
    config_epoch:
      description: Configuration epoch of the master.
      type: int
      sample: 0
    quorum:
      description: Quorum configured for the master.
      type: int
      sample: 2
    ckquorum_ok:
      description: Result of C(SENTINEL CKQUORUM); V(null) when O(check_quorum=false) or not run.
      type: bool
      sample: true
    ckquorum_message:
      description: Text returned by C(SENTINEL CKQUORUM).
      type: str
      sample: OK 3 usable Sentinels. Quorum and failover authorization can be reached
master_host:
  description: Master host named by a strict majority of the configured Sentinels, else V(null).
  returned: always
  type: str
  sample: 10.1.2.3
master_port:
  description: Master port named by a strict majority of the configured Sentinels, else V(null).
  returned: always
  type: int
  sample: 6379
agree:
  description:
    - Whether every reachable Sentinel names the same master address.
    - A reachable Sentinel that does not know the master breaks the agreement.
  returned: always
  type: bool
  sample: true
majority:
  description: Whether a strict majority of the configured Sentinels names the same master address.
  returned: always
  type: bool
  sample: true
reachable_sentinels:
  description: Number of Sentinels reached and authenticated.
  returned: always
  type: int
  sample: 3
queried_sentinels:
  description: Number of Sentinels queried.
  returned: always
  type: int
  sample: 3
healthy:
  description:
    - V(true) when every queried Sentinel answered, they all agree on the master, no Sentinel flags it
      down or failing over, and every expectation (counts, address, CKQUORUM) is met.
  returned: always
  type: bool
  sample: true
reason:
  description: V(ok) when healthy, otherwise one sentence naming every failed expectation.
  returned: always
  type: str
  sample: "sentinel 10.1.2.5:26379 unreachable: cannot connect to 10.1.2.5:26379: connection refused"
'''

from collections import Counter

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.keybuzz.redis_ha.plugins.module_utils import ha_rules
from ansible_collections.keybuzz.redis_ha.plugins.module_utils.redis_connection import (
    check_redis_lib,
    connection_argument_spec,
    error_message,
    format_address,
    pairs_to_dict,
    parse_address,
    raw_command,
    redis_client,
    to_int,
)

BAD_REPLICA_FLAGS = frozenset(['s_down', 'o_down', 'disconnected'])


def split_flags(value):
    return [flag for flag in str(value or '').split(',') if flag]


def list_replicas(client, name):
    try:
        return raw_command(client, 'SENTINEL', 'REPLICAS', name)
    except Exception as exc:
        if 'unknown' not in str(exc).lower() or 'master' in str(exc).lower():
            raise
        return raw_command(client, 'SENTINEL', 'SLAVES', name)


def query_sentinel(params, host, port):
    """Return the view of one Sentinel; errors are reported, never raised."""
    entry = dict(
        address=format_address(host, port), reachable=False, error=None, master_host=None,
        master_port=None, flags=[], s_down=False, o_down=False, failover_in_progress=False,
        known_sentinels=None, known_replicas=None, healthy_replicas=None, config_epoch=None,
        quorum=None, ckquorum_ok=None, ckquorum_message=None,
    )
    client = None
    try:
        client = redis_client(params, host=host, port=port)
        raw_command(client, 'PING')
        entry['reachable'] = True
        master = pairs_to_dict(raw_command(client, 'SENTINEL', 'MASTER', params['master_name']))
        flags = split_flags(master.get('flags'))
        replicas = [pairs_to_dict(r) for r in list_replicas(client, params['master_name']) or []]
        others = to_int(master.get('num-other-sentinels'))
        entry.update(
            master_host=master.get('ip'),
            master_port=to_int(master.get('port')),
            flags=flags,
            s_down='s_down' in flags,
            o_down='o_down' in flags,
            failover_in_progress='failover_in_progress' in flags or 'promoted' in flags,
            known_sentinels=None if others is None else others + 1,
            known_replicas=len(replicas),
            healthy_replicas=len([r for r in replicas if not BAD_REPLICA_FLAGS & set(split_flags(r.get('flags')))]),
            config_epoch=to_int(master.get('config-epoch')),
            quorum=to_int(master.get('quorum')),
        )
        if params['check_quorum']:
            try:
                entry['ckquorum_message'] = str(raw_command(client, 'SENTINEL', 'CKQUORUM', params['master_name']))
                entry['ckquorum_ok'] = True
            except Exception as exc:
                if 'noquorum' not in str(exc).lower():
                    raise
                entry['ckquorum_ok'] = False
                entry['ckquorum_message'] = str(exc)
    except Exception as exc:  # report per Sentinel, never crash
        entry['error'] = error_message(exc, host, port, params['login_password'])
        if 'no such master' in str(exc).lower():
            entry['error'] = 'sentinel %s does not monitor a master named %s' % (entry['address'], params['master_name'])
    finally:
        if client is not None:
            try:
                client.close()
            except Exception:
                pass
    return entry


def summarize(entries, params):
    """Compute the top level keys and the list of failed expectations."""
    res = dict(changed=False, sentinels=entries, master_host=None, master_port=None, agree=False,
               majority=False, reachable_sentinels=len([e for e in entries if e['reachable']]),
               queried_sentinels=len(entries))
    problems = []
    named = Counter((e['master_host'], e['master_port']) for e in entries if e['master_host'] is not None)
    configured = max(len(entries), params['expected_sentinels'] or 0)
    winner = ha_rules.sentinel_majority([(e['master_host'], e['master_port']) if e['master_host'] is not None else None
                                         for e in entries], configured)
    if winner is not None:
        res.update(majority=True, master_host=winner[0], master_port=winner[1])
    if named:
        res['agree'] = len(named) == 1 and all(e['master_host'] is not None for e in entries if e['reachable'])

    for e in entries:
        if not e['reachable']:
            problems.append('sentinel unreachable: %s' % e['error'])
        elif e['error']:
            problems.append(e['error'])
    if len(named) > 1:
        views = ', '.join('%s named by %d' % (format_address(*addr), n) for addr, n in named.most_common())
        problems.append('sentinels disagree on the master (%s)' % views)
    if not res['majority']:
        problems.append('no strict majority of the %d configured sentinels names a master' % configured)
    if res['majority'] and params['expected_master_host'] is not None and res['master_host'] != params['expected_master_host']:
        problems.append('master host is %s, expected %s' % (res['master_host'], params['expected_master_host']))
    if res['majority'] and params['expected_master_port'] is not None and res['master_port'] != params['expected_master_port']:
        problems.append('master port is %s, expected %s' % (res['master_port'], params['expected_master_port']))

    for e in (e for e in entries if e['master_host'] is not None):
        states = [f for f in ('s_down', 'o_down') if e[f]] + (['failover in progress'] if e['failover_in_progress'] else [])
        if states:
            problems.append('sentinel %s sees the master %s' % (e['address'], ' and '.join(states)))
        if params['expected_sentinels'] is not None and e['known_sentinels'] != params['expected_sentinels']:
            stale = ' (it still remembers removed ones: remove nodes with playbooks/scale_in.yml, which runs SENTINEL RESET)' \
                if (e['known_sentinels'] or 0) > params['expected_sentinels'] else ''
            problems.append('sentinel %s knows %s sentinels, expected %d%s'
                            % (e['address'], e['known_sentinels'], params['expected_sentinels'], stale))
        if params['expected_replicas'] is not None and e['healthy_replicas'] < params['expected_replicas']:
            problems.append('sentinel %s sees %d healthy replicas, expected %d' % (e['address'], e['healthy_replicas'], params['expected_replicas']))
        if e['ckquorum_ok'] is False:
            problems.append('sentinel %s CKQUORUM failed: %s' % (e['address'], e['ckquorum_message']))
    res['healthy'] = not problems
    res['reason'] = '; '.join(problems) if problems else 'ok'
    return res


def main():
    argument_spec = connection_argument_spec(default_port=26379)
    argument_spec.update(
        sentinels=dict(type='list', elements='str'),
        master_name=dict(type='str', required=True),
        expected_sentinels=dict(type='int'),
        expected_replicas=dict(type='int'),
        expected_master_host=dict(type='str'),
        expected_master_port=dict(type='int'),
        check_quorum=dict(type='bool', default=True),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    check_redis_lib(module)
    params = module.params

    addresses = []
    for text in params['sentinels'] or [format_address(params['login_host'], params['login_port'])]:
        try:
            addresses.append(parse_address(text, params['login_port']))
        except ValueError as exc:
            module.fail_json(msg='invalid sentinels entry: %s' % exc)

    entries = [query_sentinel(params, host, port) for host, port in addresses]
    module.exit_json(**summarize(entries, params))


if __name__ == '__main__':
    main()
