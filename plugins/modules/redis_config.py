#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, KeyBuzz (@keybuzz)
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: redis_config
short_description: Apply Redis settings at run time (CONFIG SET), only those that differ
version_added: 1.0.0
author: KeyBuzz (@keybuzz)
description:
  - Reads each setting of O(settings) with C(CONFIG GET), compares it with the wanted value the way
    Redis reads a configuration file (memory units such as C(64mb), C(yes)/C(no), case of enum values),
    and sets the ones that differ with a single C(CONFIG SET) (Redis applies them all or none).
  - Never writes the configuration file (no C(CONFIG REWRITE)). The file belongs to the role, which
    writes the same values there so that a restart keeps them.
  - Nothing is restarted, so the settings must be ones Redis accepts at run time.
options:
  settings:
    description:
      - Settings to apply, as a mapping of setting name to value (for example C(min-replicas-to-write=2)).
      - At least one of O(settings) and O(secret_settings) is needed.
    type: dict
    default: {}
  secret_settings:
    description:
      - Settings whose values are secrets (C(masterauth)), applied like O(settings) in the same C(CONFIG SET).
      - Their values are never returned, logged or shown in the diff; RV(before) and the diff show C(********) for a set
        value and an empty string for an unset one.
      - A name may not be in both O(settings) and O(secret_settings).
    type: dict
    default: {}
    version_added: 1.1.0
  force:
    description:
      - Set every setting, also those that already have the wanted value, and report a change.
      - Redis re-reads the certificate files on C(CONFIG SET tls-cert-file ...) even when the paths are unchanged;
        this loads renewed certificates without a restart.
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
    support: full
  platform:
    platforms: posix
notes:
  - In check mode the differing settings are reported (RV(changed_settings), diff) and none is set.
requirements:
  - redis (Python library)
seealso:
  - module: keybuzz.redis_ha.redis_replication_info
'''

EXAMPLES = r'''
- name: Fence the master with two replicas once five nodes run
  keybuzz.redis_ha.redis_config:
    login_host: 10.0.0.123
    login_user: admin
    login_password: "{{ admin_password }}"
    settings:
      min-replicas-to-write: 2
      min-replicas-max-lag: 2
      maxmemory: 1gb

- name: Point a replica at its master with new replication credentials (the password is never shown)
  keybuzz.redis_ha.redis_config:
    login_host: 10.0.0.124
    login_user: admin
    login_password: "{{ admin_password }}"
    settings:
      masteruser: replication
    secret_settings:
      masterauth: "{{ replication_password }}"

- name: Load renewed certificates without a restart
  keybuzz.redis_ha.redis_config:
    login_host: 10.0.0.123
    login_user: admin
    login_password: "{{ admin_password }}"
    tls: true
    ca_certs: /etc/redis/tls/ca.crt
    settings:
      tls-cert-file: /etc/redis/tls/redis.crt
      tls-key-file: /etc/redis/tls/redis.key
      tls-ca-cert-file: /etc/redis/tls/ca.crt
    force: true
'''

RETURN = r'''
changed_settings:
  description: Names of the settings that differed (all of them with O(force)), set outside check mode, sorted.
  returned: success
  type: list
  elements: str
  sample: [min-replicas-to-write]
before:
  description: Value Redis reported for each setting before the change (C(********) for a set O(secret_settings) value).
  returned: success
  type: dict
  sample: {min-replicas-to-write: "1", maxmemory: "1073741824"}
diff:
  description: Before and after values of the changed settings (with C(--diff)).
  returned: when diff mode is on
  type: dict
'''

import re

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_text
from ansible_collections.keybuzz.redis_ha.plugins.module_utils.redis_connection import (
    check_redis_lib,
    connection_argument_spec,
    error_message,
    raw_command,
    redis_client,
    scrub,
    settings_result,
)

# Redis's memory units (config.c memtoull): k/m/g are powers of 1000, kb/mb/gb of 1024.
_UNITS = {'': 1, 'b': 1, 'k': 1000, 'kb': 1024, 'm': 1000 ** 2, 'mb': 1024 ** 2, 'g': 1000 ** 3, 'gb': 1024 ** 3}
_MEMORY = re.compile(r'^\s*(-?\d+)\s*([kmg]?b?)\s*$', re.IGNORECASE)


# Text Redis keeps as given: user names and passwords are compared and set verbatim.
VERBATIM = frozenset(['masteruser', 'masterauth', 'requirepass', 'tls-key-file-pass', 'tls-client-key-file-pass'])


def normalize(value):
    """The value as Redis reports it after reading ``value`` (CONFIG GET's spelling)."""
    if isinstance(value, bool):
        return 'yes' if value else 'no'
    text = to_text(value).strip()
    match = _MEMORY.match(text)
    if match:
        return str(int(match.group(1)) * _UNITS[match.group(2).lower()])
    # Keywords (yes, no, everysec, allkeys-lru) are case-insensitive; paths and other text are not.
    return text.lower() if re.match(r'^[A-Za-z-]+$', text) else text


def read(client, names):
    live = {}
    for name in names:
        reply = raw_command(client, 'CONFIG', 'GET', name) or []
        if not reply:
            raise ValueError('unknown setting %s (CONFIG GET returned nothing)' % name)
        live[name] = to_text(reply[1])
    return live


def main():
    argument_spec = connection_argument_spec()
    argument_spec.update(settings=dict(type='dict', default={}),
                         secret_settings=dict(type='dict', default={}, no_log=True),
                         force=dict(type='bool', default=False))
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    check_redis_lib(module)
    params = module.params
    wanted = dict((to_text(k), v) for k, v in params['settings'].items())
    secret = dict((to_text(k), v) for k, v in params['secret_settings'].items())
    if not wanted and not secret:
        module.fail_json(msg='settings: give at least one setting (in settings or secret_settings)')
    both = sorted(set(wanted) & set(secret))
    if both:
        module.fail_json(msg='settings and secret_settings both name %s: give each setting once' % ', '.join(both))
    wanted.update(secret)
    secrets = [to_text(v) for v in secret.values()]
    where = '%s:%s' % (params['login_host'], params['login_port'])

    def spelled(name, value):
        return to_text(value) if name in VERBATIM or name in secret else normalize(value)

    wanted = dict((name, spelled(name, value)) for name, value in wanted.items())
    client = redis_client(params)
    try:
        live = dict((name, spelled(name, value)) for name, value in read(client, sorted(wanted)).items())
        result = settings_result(wanted, live, to_text, module._diff, secret=set(secret))
        if params['force']:
            result.update(changed=True, changed_settings=sorted(wanted))
        if result['changed'] and not module.check_mode:
            args = []
            for name in result['changed_settings']:
                args += [name, wanted[name]]
            raw_command(client, 'CONFIG', 'SET', *args)
    except ValueError as exc:
        module.fail_json(msg=scrub('%s on %s' % (exc, where), secrets))
    except Exception as exc:
        why = scrub(error_message(exc, params['login_host'], params['login_port'], params['login_password']), secrets)
        module.fail_json(msg='CONFIG GET/SET of %s failed: %s' % (', '.join(sorted(wanted)), why))
    module.exit_json(**result)


if __name__ == '__main__':
    main()
