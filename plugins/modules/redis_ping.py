#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, KeyBuzz (@keybuzz)
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: redis_ping
short_description: Check that a user and password log in to a Redis server or Sentinel (AUTH, PING), and optionally write
version_added: 1.1.0
author: KeyBuzz (@keybuzz)
description:
  - Connects, logs in with O(login_user) and O(login_password) and sends C(PING), which every user of the collection
    may run. With O(write_key), it then writes that key with an expiry (C(SET key ok EX ttl)), which only a master
    accepts, for example to prove that a proxy routes writes, reads it back, and optionally waits for replicas to
    acknowledge it and deletes it. Nothing else is read or changed.
  - Does not fail when the login is refused or nothing answers; it reports RV(ok) C(false) and a RV(reason), so that
    it can be used in C(until) loops and to check a password on every node before it is used.
options:
  logins:
    description:
      - Check several users and passwords instead of O(login_user) and O(login_password), each with its own C(AUTH)
        (a refused one leaves the others unaffected). Each result is in RV(logins), in the same order;
        RV(ok) is true when every one is accepted.
      - For example the current and the previous password of every user during a password rotation.
    type: list
    elements: dict
    suboptions:
      name:
        description: A label for the result (such as the key of C(redis.env)); never a password.
        type: str
        required: true
      user:
        description: The ACL user; omitted for the C(default) user (a password-only C(AUTH)).
        type: str
      password:
        description: The password to try.
        type: str
        required: true
    version_added: 1.1.0
  write_key:
    description:
      - A key to write after C(PING), with the value C(ok) and an expiry of O(write_ttl) seconds. RV(ok) is then true
        only when the write is acknowledged.
      - Not written in check mode.
    type: str
  write_ttl:
    description:
      - Seconds before O(write_key) expires.
    type: int
    default: 60
  write_replicas:
    description:
      - After writing O(write_key), wait (C(WAIT)) until this many replicas acknowledge the write, for up to
        O(write_wait_timeout) milliseconds. RV(ok) is false when fewer do; RV(replicas_acknowledged) says how many did.
      - A server that stops answering is then given up after O(connect_timeout) plus O(write_wait_timeout).
      - V(0) does not wait.
    type: int
    default: 0
    version_added: 1.1.0
  write_wait_timeout:
    description:
      - Milliseconds to wait for O(write_replicas).
    type: int
    default: 5000
    version_added: 1.1.0
  write_delete:
    description:
      - Delete O(write_key) once it is written and read back, whether or not enough replicas acknowledged it,
        so that nothing is left behind (the deletion reaches the replicas like the write). RV(deleted) says whether
        it was; RV(ok) is false when it was not.
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
  - The reason never contains the password.
requirements:
  - redis (Python library)
seealso:
  - module: keybuzz.redis_ha.redis_replication_info
  - module: keybuzz.redis_ha.redis_acl_user
'''

EXAMPLES = r'''
- name: Every node accepts the new replication password before the replicas use it
  keybuzz.redis_ha.redis_ping:
    login_host: "{{ hostvars[item].redis_ha_private_ip }}"
    login_user: kb-replication
    login_password: "{{ replication_password }}"
  loop: "{{ groups['redis'] }}"
  register: _logins

- name: Say which refused it
  ansible.builtin.assert:
    that: _logins.results | rejectattr('ok') | list | length == 0
    fail_msg: "{{ _logins.results | rejectattr('ok') | map(attribute='reason') | join('; ') }}"

- name: A write through each HAProxy node reaches a master
  keybuzz.redis_ha.redis_ping:
    login_host: "{{ hostvars[item].redis_ha_private_ip }}"
    login_password: "{{ app_password }}"
    write_key: "kb:probe:{{ item }}"
  loop: "{{ groups['haproxy'] }}"
  register: _writes
  until: _writes.ok
  retries: 10
  delay: 1

- name: A write through the load balancer reaches the master and both replicas, and is deleted
  keybuzz.redis_ha.redis_ping:
    login_host: 10.0.0.10
    login_password: "{{ app_password }}"
    write_key: kb:validate:lb
    write_replicas: 2
    write_delete: true
  register: _lb

- name: Wait until the Sentinel answers with its password
  keybuzz.redis_ha.redis_ping:
    login_port: 26379
    login_password: "{{ sentinel_password }}"
  register: _sentinel
  until: _sentinel.ok or _sentinel.refused
  retries: 15
  delay: 1
'''

RETURN = r'''
ok:
  description: Whether the login was accepted and C(PING) answered C(PONG).
  returned: always
  type: bool
refused:
  description: Whether the server answered and refused the credentials (a wrong password or user), as opposed to not
    answering.
  returned: always
  type: bool
logins:
  description: With O(logins), one result per login, in order.
  returned: when O(logins) is given
  type: list
  elements: dict
  contains:
    name:
      description: The login's O(logins[].name).
      type: str
    user:
      description: The login's user (V(null) for the default user).
      type: str
    ok:
      description: Whether the login was accepted.
      type: bool
    refused:
      description: Whether the server answered and refused it.
      type: bool
    reason:
      description: Why it was not accepted; empty when it was.
      type: str
written:
  description: Whether O(write_key) was written, acknowledged and read back.
  returned: always
  type: bool
replicas_acknowledged:
  description: How many replicas acknowledged the write within O(write_wait_timeout); V(null) without O(write_replicas).
  returned: always
  type: int
deleted:
  description: Whether O(write_key) was deleted (O(write_delete)).
  returned: always
  type: bool
reason:
  description: Why RV(ok) is false (the address and the cause); empty when it is true.
  returned: always
  type: str
  sample: "authentication failed on 10.0.0.123:6379: invalid username or password"
'''

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_text
from ansible_collections.keybuzz.redis_ha.plugins.module_utils.redis_connection import (
    check_redis_lib,
    connection_argument_spec,
    error_kind,
    error_message,
    format_address,
    redis_client,
)


# The write results before any write (with logins, in check mode, or when the login fails).
NOTHING_WRITTEN = dict(written=False, replicas_acknowledged=None, deleted=False)


class WriteFellShort(Exception):
    """The server answered, but the write was not acknowledged, read back or replicated as asked."""


def failure(exc, params, password):
    if isinstance(exc, WriteFellShort):
        return dict(ok=False, refused=False, reason='%s: %s' % (format_address(params['login_host'], params['login_port']), exc))
    return dict(ok=False, refused=error_kind(exc) == 'refused',
                reason=error_message(exc, params['login_host'], params['login_port'], password))


def check_logins(params):
    """AUTH with each login on one connection (a refused AUTH leaves it as it was; a dropped one is re-made)."""
    client = redis_client(dict(params, login_user=None, login_password=None))
    results = []
    try:
        for login in params['logins']:
            entry = dict(name=login['name'], user=login['user'], ok=True, refused=False, reason='')
            try:
                args = ([login['user']] if login['user'] else []) + [login['password']]
                client.execute_command('AUTH', *args)
            except Exception as exc:
                entry.update(failure(exc, params, login['password']))
            results.append(entry)
    finally:
        client.close()
    failed = [entry for entry in results if not entry['ok']]
    return dict(NOTHING_WRITTEN, ok=not failed, refused=bool(failed) and all(entry['refused'] for entry in failed),
                reason='; '.join('%s: %s' % (entry['name'], entry['reason']) for entry in failed), logins=results)


def write(client, params, result):
    """SET the key, read it back, WAIT for the replicas; raise WriteFellShort naming the step that fell short."""
    key = params['write_key']
    if not client.set(key, 'ok', ex=params['write_ttl']):
        raise WriteFellShort('SET %s was not acknowledged' % key)
    value = to_text(client.get(key) or '')
    if value != 'ok':
        raise WriteFellShort('SET %s was acknowledged but GET read back %r' % (key, value))
    result['written'] = True
    if params['write_replicas']:
        count = int(client.execute_command('WAIT', params['write_replicas'], params['write_wait_timeout']))
        result['replicas_acknowledged'] = count
        if count < params['write_replicas']:
            raise WriteFellShort('SET %s was acknowledged by %d of %d replicas within %d ms'
                                 % (key, count, params['write_replicas'], params['write_wait_timeout']))


def write_and_delete(client, params, result):
    """write(), then with write_delete the DEL of a written key even when the write fell short; the first
    error is the one raised."""
    error = None
    try:
        write(client, params, result)
    except Exception as exc:
        error = exc
    if params['write_delete'] and result['written']:
        try:
            result['deleted'] = client.delete(params['write_key']) == 1
            if not result['deleted']:
                raise WriteFellShort('DEL %s deleted nothing' % params['write_key'])
        except Exception as exc:
            error = error or exc
    if error is not None:
        raise error


def main():
    argument_spec = connection_argument_spec()
    argument_spec.update(
        logins=dict(type='list', elements='dict', options=dict(
            name=dict(type='str', required=True), user=dict(type='str'),
            password=dict(type='str', required=True, no_log=True))),
        write_key=dict(type='str', no_log=False), write_ttl=dict(type='int', default=60),
        write_replicas=dict(type='int', default=0), write_wait_timeout=dict(type='int', default=5000),
        write_delete=dict(type='bool', default=False))
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True,
                           mutually_exclusive=[('logins', 'write_key'), ('logins', 'login_user'), ('logins', 'login_password')])
    check_redis_lib(module)
    params = module.params
    for name, low in (('write_ttl', 1), ('write_replicas', 0), ('write_wait_timeout', 1)):
        if params[name] < low:
            module.fail_json(msg='%s: %d is below %d' % (name, params[name], low))
    if params['logins'] is not None:
        module.exit_json(changed=False, **check_logins(params))
    # WAIT blocks on purpose: the socket may wait write_wait_timeout longer than connect_timeout.
    waiting = params['connect_timeout'] + params['write_wait_timeout'] / 1000.0 if params['write_replicas'] else None
    client = redis_client(params, socket_timeout=waiting)
    result = dict(NOTHING_WRITTEN, ok=False, refused=False, reason='')
    try:
        client.ping()
        if params['write_key'] and not module.check_mode:
            write_and_delete(client, params, result)
        result['ok'] = True
    except Exception as exc:
        result.update(failure(exc, params, params['login_password']))
    finally:
        client.close()
    module.exit_json(changed=False, **result)


if __name__ == '__main__':
    main()
