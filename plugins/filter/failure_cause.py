# -*- coding: utf-8 -*-
# Copyright: (c) 2026, KeyBuzz (@keybuzz)
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Why a no_log task failed, in words that are safe to print.

A no_log task that can fail registers its result with ``failed_when: false``; the task after it,
without no_log, fails with a message that names the operation and the host and ends with
``{{ result | keybuzz.redis_ha.failure_cause(redis_credentials_values) }}``.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
name: failure_cause
short_description: The cause of a failed no_log task (command or module result), without any secret
description:
  - Returns one line saying why a registered result failed, safe to print outside no_log. It is built
    from the error lines only, never from data - a reply such as C(CONFIG GET masterauth) or
    C(ACL GETUSER) holds passwords or their hashes.
  - "The first non-empty line of C(stderr) (redis-cli writes C(AUTH failed: WRONGPASS ...) and
    C(Could not connect to Redis at ...) there), else the first error reply of C(stdout) (C(ERR ...),
    C(NOAUTH ...), C(WRONGPASS ...), also after an C(error) prefix in parentheses), else Ansible's C(msg);
    then the return code when it is not 0."
  - haproxy's C([ALERT]) and C([WARNING]) prefixes are cut and its C([NOTICE]) lines dropped; a file path
    under an Ansible temporary directory (the copy that C(validate) checks) is replaced by O(file).
  - "Masked: every secret given, its C(sha256) hash and its form with backslashes and double quotes escaped;
    the password rules that Redis quotes in an ACL error (C('>...'), C('<...'), C('#<hash>')); the arguments
    that Redis echoes after C(with args beginning with:); any 64-digit hex string; any run of 24 or more
    letters and digits (a generated password, even one no longer in redis.env)."
author: KeyBuzz (@keybuzz)
positional: secrets
options:
  _input:
    description: A registered result (a command, shell or module result; one item of a loop).
    type: dict
    required: true
  secrets:
    description:
      - Values never to print. A mapping (such as C(redis_credentials_values)) gives the values of its
        keys that contain C(PASSWORD) (the C(_PREVIOUS) ones too); a list gives its items (a mapping in
        the list, the values of its C(PASSWORD) keys).
    type: raw
    default: []
  lines:
    description: How many error lines to keep (haproxy -c gives one line per error), joined with C(; ).
    type: int
    default: 1
  file:
    description: Name shown instead of a path under an Ansible temporary directory.
    type: str
    default: the file
'''

EXAMPLES = r'''
- name: Report a failed ACL SETUSER (no secret)
  ansible.builtin.assert:
    that: _acl.rc == 0 and _acl.stdout_lines | reject('eq', 'OK') | list | length == 0
    fail_msg: >-
      ACL SETUSER failed on {{ inventory_hostname }}: {{ _acl | keybuzz.redis_ha.failure_cause(redis_credentials_values) }}
'''

RETURN = r'''
_value:
  description: "The cause, one line (at most 500 characters) without a final period, e.g. C(AUTH failed: WRONGPASS invalid
    username-password pair or user is disabled), C(Could not connect to Redis at 10.0.0.1:6379: Connection refused)
    or, when the result holds no error line, C(no error message) with the number of reply lines and the return code."
  type: str
'''

import hashlib
import re

from collections.abc import Mapping

from ansible.module_utils.common.text.converters import to_text

MASK = '********'
MAX_LENGTH = 500
# A Redis error reply as redis-cli prints it: an upper-case code, a space, the text.
_ERROR_REPLY = re.compile(r'^(?:\(error\) )?[A-Z][A-Z_]+ \S')
_HAPROXY_PREFIX = re.compile(r'^\[(?:ALERT|WARNING)\]\s*(?:\(\d+\)\s*)?:\s*(?:config\s*:\s*)?')
_HAPROXY_NOTICE = re.compile(r'^\[NOTICE\]')
_ANSIBLE_TMP_PATH = re.compile(r'/[^\s\]\[:;,\'"]*ansible-(?:tmp|local)[^\s\]\[:;,\'"]*')
# haproxy's closing summary, kept only when it is all there is.
_HAPROXY_SUMMARY = re.compile(r'^(?:Error\(s\) found in configuration file|Fatal errors found in configuration)')
# How Redis echoes an ACL rule it refuses: "Error in ACL SETUSER modifier '>password': ...".
_ACL_RULE = re.compile(r"'([<>#])[^']*'")
_ECHOED_ARGS = re.compile(r'(with args beginning with:).*$')
_HEX64 = re.compile(r'\b[0-9a-fA-F]{64}\b')
_LONG_TOKEN = re.compile(r'[A-Za-z0-9]{24,}')


def _secret_values(secrets):
    if secrets is None:
        return []
    values = []
    for item in ([secrets] if isinstance(secrets, (Mapping, str)) else list(secrets)):
        if isinstance(item, Mapping):
            values.extend(v for k, v in item.items() if 'PASSWORD' in to_text(k))
        else:
            values.append(item)
    found = set()
    for value in values:
        if value is None:
            continue
        value = to_text(value)
        if not value:
            continue
        found.add(value)
        found.add(value.replace('\\', '\\\\').replace('"', '\\"'))
        found.add(hashlib.sha256(value.encode('utf-8')).hexdigest())
    # Longest first: a secret that contains another is replaced whole.
    return sorted(found, key=len, reverse=True)


def _lines(value):
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [to_text(line) for line in value]
    return to_text(value).splitlines()


def redact(text, secrets=None, file='the file'):
    """``text`` with every secret and every password-like token masked."""
    text = to_text(text)
    for secret in _secret_values(secrets):
        text = text.replace(secret, MASK)
    text = _ANSIBLE_TMP_PATH.sub(file, text)
    text = _ECHOED_ARGS.sub(r'\1 (not shown)', text)
    text = _ACL_RULE.sub(lambda m: "'" + m.group(1) + MASK + "'", text)
    text = _HEX64.sub(MASK, text)
    text = _LONG_TOKEN.sub(MASK, text)
    return text


def failure_cause(result, secrets=None, lines=1, file='the file'):
    if not isinstance(result, Mapping):
        return 'no result (the task did not run)'
    if result.get('skipped'):
        return 'the task was skipped'
    found = []
    for line in _lines(result.get('stderr_lines', result.get('stderr'))):
        line = line.strip()
        if line and not _HAPROXY_NOTICE.match(line):
            found.append(_HAPROXY_PREFIX.sub('', line))
    found = [line for line in found if not _HAPROXY_SUMMARY.match(line)] or found
    if not found:
        found = [line.strip() for line in _lines(result.get('stdout_lines', result.get('stdout')))
                 if _ERROR_REPLY.match(line.strip())]
    msg = to_text(result.get('msg') or '').strip()
    if not found and msg and msg not in ('non-zero return code', 'All items completed'):
        found = [msg.splitlines()[0]]
    if result.get('unreachable'):
        found.insert(0, 'host unreachable')
    # redis-cli repeats "Could not connect" for each command; a final period is the message's to add.
    found = list(dict.fromkeys(line.rstrip('.') if not line.endswith('...') else line for line in found))
    lines = max(1, int(lines))
    rc = result.get('rc', result.get('exit_status'))
    if found:
        cause = '; '.join(found[:lines])
        if len(found) > lines:
            cause += '; (%d more)' % (len(found) - lines)
    else:
        cause = 'no error message (%d reply line(s))' % len(_lines(result.get('stdout_lines', result.get('stdout'))))
    if rc not in (None, 0, '0'):
        cause += ' (rc %s)' % rc
    cause = ' '.join(redact(cause, secrets, file).split())
    if len(cause) > MAX_LENGTH:
        cause = cause[:MAX_LENGTH - 3] + '...'
    return cause


class FilterModule(object):
    def filters(self):
        return {'failure_cause': failure_cause}
