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
short_description: Check that a user and password log in to a Redis server or Sentinel (AUTH, PING)
version_added: 1.1.0
author: KeyBuzz (@keybuzz)
description:
  - Connects, logs in with O(login_user) and O(login_password) and sends C(PING), which every user of the collection
    may run. Nothing else is read or changed.
  - Does not fail when the login is refused or nothing answers; it reports RV(ok) C(false) and a RV(reason), so that
    it can be used in C(until) loops and to check a password on every node before it is used.
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
reason:
  description: Why RV(ok) is false (the address and the cause); empty when it is true.
  returned: always
  type: str
  sample: "authentication failed on 10.0.0.123:6379: invalid username or password"
'''

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.keybuzz.redis_ha.plugins.module_utils.redis_connection import (
    check_redis_lib,
    connection_argument_spec,
    error_message,
    redis_client,
)

REFUSED = ('authentication failed', 'authentication required', 'permission denied')


def main():
    module = AnsibleModule(argument_spec=connection_argument_spec(), supports_check_mode=True)
    check_redis_lib(module)
    params = module.params
    client = redis_client(params)
    try:
        client.ping()
        result = dict(ok=True, refused=False, reason='')
    except Exception as exc:
        reason = error_message(exc, params['login_host'], params['login_port'], params['login_password'])
        result = dict(ok=False, refused=reason.startswith(REFUSED), reason=reason)
    finally:
        client.close()
    module.exit_json(changed=False, **result)


if __name__ == '__main__':
    main()
