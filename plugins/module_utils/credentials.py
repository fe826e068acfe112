# -*- coding: utf-8 -*-
# Copyright: (c) 2026, KeyBuzz (@keybuzz)
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The credential rules of keybuzz.redis_ha, in one place: which passwords and user names the
roles accept, by redis.env key. Pure functions (no I/O, no Ansible, the standard library only);
playbooks and roles reach them through the filter ``keybuzz.redis_ha.credential_problems``.

Where the values end up, and so what they may hold:

* every password: ``users.acl`` and the Sentinels' ACL (as SHA-256 hashes), ``redis.env``
  (``KEY=value``, one line), redis-cli's standard input (one line), ``redis-auth.conf`` and the
  run-time ``CONFIG SET`` / ``SENTINEL SET`` commands (quoted and escaped): printable ASCII
  without spaces, at least ``MIN_LENGTH`` characters;
* the passwords of ``UNQUOTED`` and every user name: also written unquoted into ``haproxy.cfg``
  (the health checks' inline ``AUTH``) or ``sentinel.conf`` (``requirepass``, ``auth-user``,
  ``auth-pass``; Redis refuses to start on a quote there), and user names into ``users.acl``:
  ``SAFE_CHARACTERS`` only;
* a password being rotated out (``<KEY>_PREVIOUS``): it was in use, so it keeps its length (a
  weak one may be why it goes) but must still fit on one line.

Problems are sentences ``<source>.<KEY>: <what is wrong>. Fix: <what to do>.``; they name the key,
never its value.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re

# No password shorter than this, whatever a variable asks (a variable may ask for more).
MIN_LENGTH = 16
SAFE_CHARACTERS = '_.:,;=+/@%^~!*?-'
_PRINTABLE = re.compile(r'^[!-~]+$')
_SAFE = re.compile(r'^[A-Za-z0-9' + re.escape(SAFE_CHARACTERS) + r']+$')
# Passwords written unquoted into a configuration file, and where.
UNQUOTED = {
    'REDIS_HEALTHCHECK_PASSWORD': 'haproxy.cfg (the health checks\' inline AUTH)',
    'SENTINEL_PASSWORD': 'haproxy.cfg (the Sentinel checks\' inline AUTH) and sentinel.conf (requirepass)',
    'REDIS_SENTINEL_PASSWORD': 'sentinel.conf (auth-pass)',
}
USER_PLACES = 'users.acl, sentinel.conf (auth-user) and haproxy.cfg (inline AUTH)'
UNQUOTABLE = 'quotes, backtick, backslash, space, #, $, &, <, >, |, parentheses, brackets, braces'
# The two kinds of mapping a caller checks.
OVERRIDE = 'redis_credentials_override'   # operator-supplied values: a key may be left out
VALUES = 'redis_credentials_values'       # the credentials a role is about to use: all must be set
SOURCES = (OVERRIDE, VALUES)


def minimum_length(configured=None):
    """The minimum length of a password: ``configured``, but never below ``MIN_LENGTH``."""
    return max(MIN_LENGTH, int(configured or 0))


def kind(key):
    """``'password'``, ``'previous'`` (being rotated out), ``'user'`` or ``None`` (not checked)."""
    if key.endswith('PASSWORD'):
        return 'password'
    if key.endswith('PASSWORD_PREVIOUS'):
        return 'previous'
    if key.endswith('_USER'):
        return 'user'
    return None


def value_problem(key, value, minimum=MIN_LENGTH):
    """What is wrong with ``value`` for the redis.env key ``key`` (one phrase), or ``None``.

    ``value``: text, or ``None`` for a key that is not set. Only the first fault is given; the fix
    (``requirement()``) states the whole rule."""
    what = kind(key)
    if what is None:
        return None
    if value is None:
        return 'is not set'
    if value == '':
        return 'is empty'
    if what == 'password' and len(value) < minimum:
        return 'is shorter than %d characters' % minimum
    if not _PRINTABLE.match(value):
        return 'contains a space, a control or a non-ASCII character'
    if (what == 'user' or key in UNQUOTED) and not _SAFE.match(value):
        places = USER_PLACES if what == 'user' else UNQUOTED[key]
        return 'contains a character that %s cannot take unquoted (%s)' % (places, UNQUOTABLE)
    return None


def requirement(key, minimum=MIN_LENGTH):
    """What a good value of ``key`` is (a noun phrase)."""
    what = kind(key)
    if what == 'user':
        return 'letters, digits and %s only' % SAFE_CHARACTERS
    if what == 'previous':
        return 'the password being rotated out as it was (printable ASCII characters without spaces)'
    if key in UNQUOTED:
        return 'at least %d characters among letters, digits and %s' % (minimum, SAFE_CHARACTERS)
    return 'at least %d printable ASCII characters without spaces' % minimum


def fix(key, value, minimum=MIN_LENGTH, source=OVERRIDE):
    """What to do about ``key`` (a problem of ``value`` with ``minimum``) in the mapping ``source``."""
    what = kind(key)
    good = requirement(key, minimum)
    if source == VALUES:
        if value is None:
            return ('run the keybuzz.redis_ha.redis_credentials role first (playbooks/site.yml does): it reads'
                    ' redis.env and redis_credentials_override')
        where = 'redis_credentials_usernames or redis_credentials_override' if what == 'user' \
            else 'redis_credentials_override or redis.env'
        return 'set %s in %s to %s' % (key, where, good)
    if what == 'user':
        return 'use %s, or remove the key to keep the default name (redis_credentials_usernames)' % good
    if what == 'previous':
        return 'supply %s, or remove the key (no rotation of %s)' % (good, key[:-len('_PREVIOUS')])
    return 'supply %s (e.g. from Ansible Vault), or remove the key to have a password generated' % good


def problems(credentials, minimum=MIN_LENGTH, source=OVERRIDE):
    """Every problem of ``credentials`` (a dict of redis.env key -> text or ``None``), one sentence
    each, sorted by key; ``[]`` when all is well. ``minimum`` is used as it is (see
    ``minimum_length()``); ``source`` is ``OVERRIDE`` or ``VALUES`` and names the mapping."""
    if source not in SOURCES:
        raise ValueError('source must be one of %s, not %r' % (', '.join(SOURCES), source))
    if not isinstance(credentials, dict):
        todo = ('set it to a mapping of redis.env keys to values, e.g. REDIS_PASSWORD: <a vaulted value>'
                if source == OVERRIDE else
                'run the keybuzz.redis_ha.redis_credentials role first (playbooks/site.yml does)')
        return ['%s: is not a mapping. Fix: %s.' % (source, todo)]
    found = []
    for key in sorted(credentials):
        what = value_problem(key, credentials[key], minimum)
        if what is not None:
            found.append('%s.%s: %s. Fix: %s.' % (source, key, what, fix(key, credentials[key], minimum, source)))
    return found
