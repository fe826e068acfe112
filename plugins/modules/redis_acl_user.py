#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, KeyBuzz (@keybuzz)
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: redis_acl_user
short_description: Make one ACL user of a Redis server or Sentinel match a wanted state (ACL SETUSER), only when it differs
version_added: 1.1.0
author: KeyBuzz (@keybuzz)
description:
  - Reads the user with C(ACL GETUSER) and compares it with the wanted state (enabled, the set of password hashes,
    and the commands, key and channel patterns as Redis itself spells them). To get that spelling, the wanted rules
    are applied to a temporary user (disabled, without password, deleted at once), because Redis rewrites rules
    such as C(+@all -@dangerous +info) into its own list.
  - When it differs, replaces the user in one atomic C(ACL SETUSER <name> reset ...); connections already
    authenticated as that user stay open. With O(state=absent), C(ACL DELUSER).
  - With O(flush_config), a change is then persisted with C(SENTINEL FLUSHCONFIG) (a Sentinel keeps its users in
    its own configuration file). A Redis server of this collection reads its users from C(users.acl), which the
    role writes; nothing is persisted here.
options:
  name:
    description:
      - The ACL user name. C(default) is accepted.
    type: str
    required: true
  state:
    description:
      - V(present) - the user exists exactly as described.
      - V(absent) - the user does not exist.
    type: str
    choices: [present, absent]
    default: present
  passwords:
    description:
      - The passwords the user is accepted with (stored as SHA-256 hashes; two during a rotation).
      - At least one is needed with O(state=present) unless O(password_hashes) is given; both lists may be combined.
    type: list
    elements: str
    default: []
  password_hashes:
    description:
      - SHA-256 hashes (64 hexadecimal digits) of further passwords the user is accepted with.
    type: list
    elements: str
    default: []
  rules:
    description:
      - The user's permissions as one line of ACL rules, as written after the password in an ACL file
        (C(users.acl)), for example C(~* &* +@all -@dangerous +info). Read as Redis reads them, left to right,
        key patterns (C(~pattern), C(%R~pattern), C(%W~pattern), C(%RW~pattern), C(allkeys), C(resetkeys)),
        channel patterns (C(&pattern), C(allchannels), C(resetchannels)) and command rules (C(+...), C(-...),
        C(allcommands), C(nocommands)).
      - Passwords and flags (C(>), C(#), C(on), C(off), C(nopass), selectors) are refused here, as they have their own
        options or are not supported.
      - Mutually exclusive with O(commands), O(keys) and O(channels).
    type: str
    version_added: 1.1.0
  commands:
    description:
      - Command rules in ACL syntax, applied in order after C(reset), for example C(-@all), C(+info),
        C(+sentinel|masters).
    type: list
    elements: str
    default: []
  keys:
    description:
      - Key patterns (without the leading C(~)); none means no key can be read or written. A pattern with a
        permission prefix (C(%R~pattern), C(%W~pattern)) is given whole.
    type: list
    elements: str
    default: []
  channels:
    description:
      - Pub/Sub channel patterns (without the leading C(&)); none means no channel.
    type: list
    elements: str
    default: []
  flush_config:
    description:
      - After a change, run C(SENTINEL FLUSHCONFIG) so that a Sentinel writes the user to its configuration file.
    type: bool
    default: false
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
  - The login user needs the C(acl) command (an administrator, or a Sentinel's default user).
  - Neither the passwords nor their hashes are ever returned; the diff shows how many hashes there are.
  - In check mode the only change made is the temporary user, created disabled and deleted at once.
requirements:
  - redis (Python library)
seealso:
  - module: keybuzz.redis_ha.sentinel_config
  - module: keybuzz.redis_ha.redis_config
'''

EXAMPLES = r'''
- name: A read-only user for the metrics exporter on a Sentinel
  keybuzz.redis_ha.redis_acl_user:
    login_host: 10.0.0.123
    login_port: 26379
    login_password: "{{ sentinel_password }}"
    name: kb-exporter
    passwords: ["{{ exporter_password }}"]
    commands: [-@all, +ping, +info, +client|setname, +sentinel|masters, +sentinel|ckquorum]
    flush_config: true

- name: The application user of a Redis server, its rules as in users.acl (two passwords during a rotation)
  keybuzz.redis_ha.redis_acl_user:
    login_host: 10.0.0.123
    login_user: kb-admin
    login_password: "{{ admin_password }}"
    name: default
    passwords: ["{{ app_password }}", "{{ previous_app_password }}"]
    rules: "~* &* +@all -@dangerous +info +role"
'''

RETURN = r'''
changed_rules:
  description: What differed, sorted (C(created), C(deleted), C(enabled), C(passwords), C(commands), C(keys), C(channels)).
  returned: success
  type: list
  elements: str
  sample: [commands, passwords]
diff:
  description: The user before and after as ACL rules, each password hash shown as C(#<hash>) replaced by its position.
  returned: when diff mode is on
  type: dict
'''

import binascii
import hashlib
import os
import re

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_bytes, to_text
from ansible_collections.keybuzz.redis_ha.plugins.module_utils.redis_connection import (
    check_redis_lib,
    connection_argument_spec,
    error_message,
    pairs_to_dict,
    raw_command,
    redis_client,
    scrub,
)

HASH = re.compile(r'^[0-9a-f]{64}$')


def _patterns(value, prefix):
    """ACL GETUSER lists key/channel patterns as one string (7.x) or a list (6.2)."""
    items = value if isinstance(value, list) else to_text(value or '').split()
    return sorted(set(to_text(item)[len(prefix):] if to_text(item).startswith(prefix) else to_text(item) for item in items))


def parse_rules(text):
    """``rules`` (one line of ACL rules) as the module's keys, channels and commands, read left to right
    the way Redis applies them after ``reset``; ValueError names a rule this module does not take."""
    keys, channels, commands = [], [], []
    for rule in text.split():
        low = rule.lower()
        if rule.startswith('~'):
            keys.append(rule[1:])
        elif re.match(r'^%[RW]+~', rule, re.IGNORECASE):
            keys.append(rule)
        elif low == 'allkeys':
            keys.append('*')
        elif low == 'resetkeys':
            del keys[:]
        elif rule.startswith('&'):
            channels.append(rule[1:])
        elif low == 'allchannels':
            channels.append('*')
        elif low == 'resetchannels':
            del channels[:]
        elif low == 'allcommands':
            commands.append('+@all')
        elif low == 'nocommands':
            commands.append('-@all')
        elif rule[:1] in ('+', '-') and len(rule) > 1:
            commands.append(rule)
        else:
            raise ValueError('rules: %r is not a key (~, %%R~, allkeys), channel (&, allchannels) or command (+, -) rule; '
                             'passwords and flags have their own options' % rule)
    return dict(keys=keys, channels=channels, commands=commands)


def live_user(reply):
    """The comparable state of ``ACL GETUSER``'s raw reply, or None when the user does not exist."""
    if reply is None:
        return None
    user = pairs_to_dict(reply)
    flags = [to_text(flag) for flag in user.get('flags') or []]
    return dict(enabled='on' in flags,
                passwords=sorted(to_text(h) for h in user.get('passwords') or []),
                commands=sorted(set(to_text(user.get('commands') or '').split())),
                keys=_patterns(user.get('keys'), '~'),
                channels=_patterns(user.get('channels'), '&'))


def rule_args(params):
    """The user's key, channel and command rules as ACL SETUSER arguments (after reset)."""
    args = [k if k.startswith('%') else '~' + k for k in params['keys']]
    args += ['&' + c for c in params['channels']] or ['resetchannels']
    return args + list(params['commands'])


def wanted_user(client, params):
    """The wanted user as Redis lists it: the rules through a temporary disabled user, then deleted."""
    probe = 'kb-acl-probe-%s' % binascii.hexlify(os.urandom(6)).decode()
    raw_command(client, 'ACL', 'SETUSER', probe, 'reset', 'off', *rule_args(params))
    try:
        user = live_user(raw_command(client, 'ACL', 'GETUSER', probe))
    finally:
        raw_command(client, 'ACL', 'DELUSER', probe)
    hashes = set(hashlib.sha256(to_bytes(p)).hexdigest() for p in params['passwords'])
    hashes.update(h.lower() for h in params['password_hashes'])
    user.update(enabled=True, passwords=sorted(hashes))
    return user


def differences(live, wanted):
    if wanted is None:
        return [] if live is None else ['deleted']
    if live is None:
        return ['created']
    return sorted(k for k in ('enabled', 'passwords', 'commands', 'keys', 'channels') if live[k] != wanted[k])


def as_rules(user):
    """A user as ACL rules for the diff, the hashes replaced by their count."""
    if user is None:
        return ''
    parts = ['on' if user['enabled'] else 'off', '%d password hash(es)' % len(user['passwords'])]
    parts += ['~' + k for k in user['keys']] or ['resetkeys']
    parts += ['&' + c for c in user['channels']] or ['resetchannels']
    return ' '.join(parts + user['commands']) + '\n'


def setuser_args(params, wanted):
    return ['ACL', 'SETUSER', params['name'], 'reset', 'on'] + ['#' + h for h in wanted['passwords']] + rule_args(params)


def check_input(module):
    params = module.params
    if params['rules'] is not None:
        try:
            params.update(parse_rules(params['rules']))
        except ValueError as exc:
            module.fail_json(msg=str(exc))
    bad = [h for h in params['password_hashes'] if not HASH.match(h.lower())]
    if bad:
        module.fail_json(msg='password_hashes: %d value(s) are not SHA-256 hashes (64 hexadecimal digits)' % len(bad))
    if params['state'] == 'present' and not (params['passwords'] or params['password_hashes']):
        module.fail_json(msg='passwords: give at least one password (or password_hashes) for a user that must exist')
    for name, items in (('commands', params['commands']), ('keys', params['keys']), ('channels', params['channels'])):
        spaced = [item for item in items if not item or re.search(r'\s', item)]
        if spaced:
            module.fail_json(msg='%s: %r is empty or holds a space; give one rule per item' % (name, spaced[0]))
    odd = [c for c in params['commands'] if c[:1] not in ('+', '-')]
    if odd:
        module.fail_json(msg='commands: %r does not start with + or - (keys, channels and passwords have their own options)'
                         % odd[0])


def main():
    argument_spec = connection_argument_spec()
    argument_spec.update(
        name=dict(type='str', required=True),
        state=dict(type='str', choices=['present', 'absent'], default='present'),
        passwords=dict(type='list', elements='str', default=[], no_log=True),
        password_hashes=dict(type='list', elements='str', default=[], no_log=True),
        commands=dict(type='list', elements='str', default=[]),
        keys=dict(type='list', elements='str', default=[], no_log=False),
        channels=dict(type='list', elements='str', default=[]),
        rules=dict(type='str'),
        flush_config=dict(type='bool', default=False),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True,
                           mutually_exclusive=[('rules', 'commands'), ('rules', 'keys'), ('rules', 'channels')])
    check_redis_lib(module)
    check_input(module)
    params = module.params
    client = redis_client(params)
    step = 'ACL GETUSER %s' % params['name']
    try:
        live = live_user(raw_command(client, 'ACL', 'GETUSER', params['name']))
        step = 'ACL SETUSER %s (its rules, on a temporary user)' % params['name']
        wanted = wanted_user(client, params) if params['state'] == 'present' else None
        changed = differences(live, wanted)
        if changed and not module.check_mode:
            if wanted is None:
                step = 'ACL DELUSER %s' % params['name']
                raw_command(client, 'ACL', 'DELUSER', params['name'])
            else:
                step = 'ACL SETUSER %s' % params['name']
                raw_command(client, *setuser_args(params, wanted))
            if params['flush_config']:
                step = 'SENTINEL FLUSHCONFIG (after %s)' % step
                raw_command(client, 'SENTINEL', 'FLUSHCONFIG')
    except Exception as exc:
        why = scrub(error_message(exc, params['login_host'], params['login_port'], params['login_password']),
                    params['passwords'] + params['password_hashes'])
        module.fail_json(msg='%s on %s:%s failed: %s' % (step, params['login_host'], params['login_port'], why))
    result = dict(changed=bool(changed), changed_rules=changed)
    if module._diff:
        result['diff'] = dict(before=as_rules(live), after=as_rules(wanted))
    module.exit_json(**result)


if __name__ == '__main__':
    main()
