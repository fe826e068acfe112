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
  - The password the Sentinel logs in to the master and its replicas with (O(secret_settings), C(auth-pass)) is not
    reported by C(SENTINEL MASTER), so it is compared with the C(sentinel auth-pass) line of O(config_file), which Sentinel
    rewrites on every change.
  - The Sentinel's own settings (O(config_settings), O(secret_config_settings), such as C(sentinel-pass), the password
    it sends to the other Sentinels) are compared with C(SENTINEL CONFIG GET) and set with C(SENTINEL CONFIG SET).
  - When Sentinel refuses a value the task fails naming it; the settings set before it stay set
    (listed in C(applied_settings) of the failure).
  - Only settings that can be compared are accepted.
options:
  master_name:
    description:
      - Name of the master as configured in C(sentinel monitor).
      - Required with O(settings) or O(secret_settings).
    type: str
  settings:
    description:
      - Settings of the master to apply, as a mapping of name to integer value.
      - Accepted names are C(quorum), C(down-after-milliseconds), C(failover-timeout) and C(parallel-syncs).
      - At least one of O(settings), O(secret_settings), O(config_settings) and O(secret_config_settings) is needed.
    type: dict
    default: {}
  secret_settings:
    description:
      - Secret settings of the master (C(SENTINEL SET)); the only one accepted is C(auth-pass).
      - Their values are never returned, logged or shown in the diff (C(********), or an empty string when unset).
    type: dict
    default: {}
    version_added: 1.1.0
  config_file:
    description:
      - The Sentinel's configuration file on the host the module runs on, read to compare O(secret_settings).
      - Required with O(secret_settings).
    type: path
    version_added: 1.1.0
  config_settings:
    description:
      - The Sentinel's own settings (C(SENTINEL CONFIG SET)), for example C(resolve-hostnames), compared verbatim with
        C(SENTINEL CONFIG GET).
    type: dict
    default: {}
    version_added: 1.1.0
  secret_config_settings:
    description:
      - Like O(config_settings), for secret values such as C(sentinel-pass); never returned, logged or shown.
    type: dict
    default: {}
    version_added: 1.1.0
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

- name: Log in to the Redis nodes with a new password, and send a new one to the other Sentinels
  keybuzz.redis_ha.sentinel_config:
    login_host: 10.0.0.123
    login_password: "{{ sentinel_password }}"
    master_name: kb-redis-master
    secret_settings:
      auth-pass: "{{ sentinel_user_password }}"
    config_file: /etc/redis/sentinel/sentinel.conf
    secret_config_settings:
      sentinel-pass: "{{ sentinel_password }}"
'''

RETURN = r'''
changed_settings:
  description: Names of the settings that differed (and were set, outside check mode), sorted.
  returned: success
  type: list
  elements: str
  sample: [quorum]
before:
  description: Value the Sentinel reported for each setting before the change (C(********) for a secret that is set,
    an empty string for one that is not).
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
    scrub,
    settings_result,
)

SETTINGS = ('quorum', 'down-after-milliseconds', 'failover-timeout', 'parallel-syncs')
SECRET_SETTINGS = ('auth-pass',)
_ESCAPES = {'n': '\n', 'r': '\r', 't': '\t', 'b': '\b', 'a': '\a'}


def normalize(value):
    return to_text(value).strip()


def split_config_line(line):
    """A configuration line split as Redis does (sdssplitargs): "..." with \\xHH and \\n escapes, '...' literal."""
    words, i, n = [], 0, len(line)
    while True:
        while i < n and line[i].isspace():
            i += 1
        if i >= n:
            return words
        word, quote = [], None
        if line[i] in '"\'':
            quote, i = line[i], i + 1
        while i < n:
            char = line[i]
            if quote == '"' and char == '\\' and i + 1 < n:
                nxt = line[i + 1]
                if nxt == 'x' and i + 3 < n and all(c in '0123456789abcdefABCDEF' for c in line[i + 2:i + 4]):
                    word.append(chr(int(line[i + 2:i + 4], 16)))
                    i += 4
                    continue
                word.append(_ESCAPES.get(nxt, nxt))
                i += 2
                continue
            if quote == "'" and char == '\\' and line[i + 1:i + 2] == "'":
                word.append("'")
                i += 2
                continue
            if quote and char == quote:
                i += 1
                break
            if not quote and char.isspace():
                break
            word.append(char)
            i += 1
        else:
            if quote:
                raise ValueError('unbalanced quotes')
        words.append(''.join(word))


def file_master_setting(path, master_name, name):
    """The value of ``sentinel <name> <master_name> <value>`` in the Sentinel's configuration file ('' when absent).
    Sentinel 7.0 writes the value as it is (spaces and quotes included); a value in double quotes is read the
    way Redis reads a quoted argument."""
    prefix = 'sentinel %s %s ' % (name, master_name)
    with open(path) as handle:
        for line in handle:
            if line.startswith(prefix):
                rest = line[len(prefix):].rstrip('\r\n')
                if rest.startswith('"'):
                    try:
                        words = split_config_line(rest)
                    except ValueError:
                        words = []
                    if len(words) == 1:
                        return words[0]
                return rest
    return ''


def check_input(module):
    params = module.params
    if not (params['settings'] or params['secret_settings'] or params['config_settings'] or params['secret_config_settings']):
        module.fail_json(msg='settings: give at least one of settings, secret_settings, config_settings, secret_config_settings')
    if (params['settings'] or params['secret_settings']) and not params['master_name']:
        module.fail_json(msg='master_name: needed with settings and secret_settings')
    unknown = sorted(set(params['settings']) - set(SETTINGS))
    if unknown:
        module.fail_json(msg='settings: %s cannot be compared (SENTINEL MASTER does not report them); use %s'
                         % (', '.join(unknown), ', '.join(SETTINGS)))
    for name, value in params['settings'].items():
        if not to_text(value).strip().isdigit():
            module.fail_json(msg='settings: %s is %r, not a whole number' % (name, value))
    unknown = sorted(set(params['secret_settings']) - set(SECRET_SETTINGS))
    if unknown:
        module.fail_json(msg='secret_settings: %s not accepted; use %s' % (', '.join(unknown), ', '.join(SECRET_SETTINGS)))
    if params['secret_settings'] and not params['config_file']:
        module.fail_json(msg='config_file: needed with secret_settings (the Sentinel does not report auth-pass)')
    both = sorted(set(params['config_settings']) & set(params['secret_config_settings']))
    if both:
        module.fail_json(msg='config_settings and secret_config_settings both name %s: give each setting once' % ', '.join(both))


def merge(first, second):
    out = dict(first)
    out.update(second)
    return out


def main():
    argument_spec = connection_argument_spec(default_port=26379)
    argument_spec.update(master_name=dict(type='str'), settings=dict(type='dict', default={}),
                         secret_settings=dict(type='dict', default={}, no_log=True), config_file=dict(type='path'),
                         config_settings=dict(type='dict', default={}),
                         secret_config_settings=dict(type='dict', default={}, no_log=True))
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    check_redis_lib(module)
    check_input(module)
    params = module.params
    # Secrets are compared and set verbatim.
    text = dict((kind, dict((to_text(k), to_text(v) if kind.startswith('secret') else normalize(v))
                            for k, v in params[kind].items()))
                for kind in ('settings', 'secret_settings', 'config_settings', 'secret_config_settings'))
    master_wanted = merge(text['settings'], text['secret_settings'])
    config_wanted = merge(text['config_settings'], text['secret_config_settings'])
    secret = set(text['secret_settings']) | set(text['secret_config_settings'])
    secrets = list(text['secret_settings'].values()) + list(text['secret_config_settings'].values())

    client = redis_client(params)
    applied, step = [], 'SENTINEL MASTER %s' % params['master_name']
    try:
        live = {}
        if master_wanted:
            master = pairs_to_dict(raw_command(client, 'SENTINEL', 'MASTER', params['master_name']))
            live.update((name, to_text(master.get(name, ''))) for name in text['settings'])
            for name in text['secret_settings']:
                step = 'reading sentinel %s from %s' % (name, params['config_file'])
                live[name] = file_master_setting(params['config_file'], params['master_name'], name)
        for name in sorted(config_wanted):
            step = 'SENTINEL CONFIG GET %s' % name
            reply = raw_command(client, 'SENTINEL', 'CONFIG', 'GET', name) or []
            if not reply:
                raise ValueError('unknown setting %s (SENTINEL CONFIG GET returned nothing)' % name)
            live[name] = to_text(reply[1])
        result = settings_result(merge(master_wanted, config_wanted), live, to_text, module._diff, secret=secret)
        # One SET per setting: Sentinel applies the pairs of one call in order and stops at the first it
        # refuses, so one per call tells exactly which were applied.
        for name in ([] if module.check_mode else result['changed_settings']):
            shown = '********' if name in secret else master_wanted.get(name, config_wanted.get(name))
            if name in master_wanted:
                step = 'SENTINEL SET %s %s %s' % (params['master_name'], name, shown)
                raw_command(client, 'SENTINEL', 'SET', params['master_name'], name, master_wanted[name])
            else:
                step = 'SENTINEL CONFIG SET %s %s' % (name, shown)
                raw_command(client, 'SENTINEL', 'CONFIG', 'SET', name, config_wanted[name])
            applied.append(name)
    except (IOError, OSError) as exc:
        module.fail_json(msg='%s failed: %s' % (step, scrub(exc, secrets)), applied_settings=applied)
    except ValueError as exc:
        module.fail_json(msg='%s on %s:%s: %s' % (step, params['login_host'], params['login_port'], scrub(exc, secrets)),
                         applied_settings=applied)
    except Exception as exc:
        why = scrub(error_message(exc, params['login_host'], params['login_port'], params['login_password']), secrets)
        if 'no such master' in to_text(exc).lower():
            why = 'the Sentinel does not monitor a master named %s' % params['master_name']
        module.fail_json(msg='%s on %s:%s failed: %s' % (step, params['login_host'], params['login_port'], why),
                         applied_settings=applied)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
