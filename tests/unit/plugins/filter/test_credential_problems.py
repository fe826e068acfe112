# -*- coding: utf-8 -*-
# Copyright: (c) 2026, KeyBuzz (@keybuzz)
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""keybuzz.redis_ha.credential_problems (plugins/module_utils/credentials.py): the one set of
credential rules of the preflight, the redis_credentials role and the roles that write the
credentials, rule by rule and at the boundaries. Every problem names the key and a fix, never the
value. The character rule for the passwords written unquoted is checked against redis-server's own
configuration parser (the one that reads sentinel.conf)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re
import subprocess

import pytest

from ansible.errors import AnsibleFilterError

from kblab.processes import REDIS_SERVER, Proc, wait_for
from ansible_collections.keybuzz.redis_ha.plugins.filter import credential_problems as plugin
from ansible_collections.keybuzz.redis_ha.plugins.module_utils import credentials as rules

check = plugin.credential_problems
OVERRIDE, VALUES = 'redis_credentials_override', 'redis_credentials_values'
GOOD = 'Good0Password1x!'                         # 16 characters, printable, not haproxy-safe ('!' is)
SAFE = 'Aa0' + rules.SAFE_CHARACTERS              # every character a quoted-nowhere value may hold
UNSAFE = list('"\'`\\#$&<>|()[]{}')
UNQUOTED_KEYS = ['REDIS_HEALTHCHECK_PASSWORD', 'SENTINEL_PASSWORD', 'REDIS_SENTINEL_PASSWORD']
QUOTED_KEYS = ['REDIS_PASSWORD', 'REDIS_ADMIN_PASSWORD', 'REDIS_REPLICATION_PASSWORD']
USER_KEYS = ['REDIS_ADMIN_USER', 'REDIS_REPLICATION_USER', 'REDIS_SENTINEL_USER', 'REDIS_HEALTHCHECK_USER']
SENTENCE = re.compile(r'^redis_credentials_(override|values)\.[A-Z][A-Z0-9_]*: .+?\. Fix: .+\.$')


def only(problems, key, value, source=OVERRIDE):
    """The single problem of ``problems``, checked for its form and for the secret; returned."""
    assert len(problems) == 1, problems
    line = problems[0]
    assert SENTENCE.match(line) and line.startswith('%s.%s: ' % (source, key)), line
    if value:
        assert value not in line, 'the value appears in the message'
    return line


# --- passwords: set, not empty, long enough, printable ASCII without spaces ---------------------

@pytest.mark.parametrize('key', QUOTED_KEYS + UNQUOTED_KEYS)
def test_a_good_password_passes(key):
    value = 'Aa0' + 'x' * 13 if key in UNQUOTED_KEYS else GOOD
    assert len(value) == rules.MIN_LENGTH
    assert check({key: value}) == []


def test_length_boundary_is_16_characters():
    line = only(check({'REDIS_PASSWORD': 'Fifteen0Chars!!'}), 'REDIS_PASSWORD', 'Fifteen0Chars!!')
    assert ': is shorter than 16 characters. Fix: supply at least 16 printable ASCII characters without spaces' in line
    assert line.endswith(', or remove the key to have a password generated.')
    assert check({'REDIS_PASSWORD': 'Sixteen0Chars!!!'}) == []


def test_a_longer_minimum_is_honoured_a_shorter_one_is_not():
    assert check({'REDIS_PASSWORD': 'x' * 23 + 'Y'}, min_length=24) == []
    line = only(check({'REDIS_PASSWORD': 'Twenty3CharsLongSecret!'}, min_length=24), 'REDIS_PASSWORD',
                'Twenty3CharsLongSecret!')
    assert 'is shorter than 24 characters' in line and 'at least 24 printable' in line
    # Below the collection's minimum: 16 still applies (the roles refused shorter ones anyway).
    for asked in (0, 8, '8', 15, None):
        assert 'is shorter than 16 characters' in only(check({'REDIS_PASSWORD': 'Only15CharsPw!!'}, min_length=asked),
                                                       'REDIS_PASSWORD', 'Only15CharsPw!!')
    assert check({'REDIS_PASSWORD': 'Only16CharsPw!!!'}, min_length='8') == []
    assert rules.minimum_length(None) == 16 and rules.minimum_length(15) == 16 and rules.minimum_length('17') == 17


def test_not_set_and_empty():
    assert only(check({'REDIS_ADMIN_PASSWORD': None}), 'REDIS_ADMIN_PASSWORD', None).startswith(
        'redis_credentials_override.REDIS_ADMIN_PASSWORD: is not set. Fix: supply at least 16 ')
    assert only(check({'REDIS_ADMIN_PASSWORD': ''}), 'REDIS_ADMIN_PASSWORD', None).startswith(
        'redis_credentials_override.REDIS_ADMIN_PASSWORD: is empty. Fix: supply at least 16 ')


@pytest.mark.parametrize('bad', [' ', '\t', '\n', '\r', '\x00', '\x7f', u'\u00e9', u'\u00a0'])
def test_space_control_and_non_ascii_characters_are_refused(bad):
    value = 'Printable0Secret' + bad + 'Tail'
    line = only(check({'REDIS_PASSWORD': value}), 'REDIS_PASSWORD', value)
    assert ': contains a space, a control or a non-ASCII character. Fix: ' in line


def test_printable_ascii_boundaries_pass_where_quoting_is_done():
    # '!' (0x21) and '~' (0x7e) are the ends of the range; quotes, $, # ... are fine where the value is
    # hashed, quoted and escaped (users.acl, redis-auth.conf, CONFIG SET).
    value = '!' + ''.join(UNSAFE) + '~'
    assert len(value) >= 16
    for key in QUOTED_KEYS:
        assert check({key: value}) == [], key


# --- passwords written unquoted into haproxy.cfg / sentinel.conf ---------------------------------

@pytest.mark.parametrize('key', UNQUOTED_KEYS)
@pytest.mark.parametrize('bad', UNSAFE)
def test_unquoted_passwords_refuse_what_needs_quoting(key, bad):
    value = 'Unquoted0Secret' + bad + 'Tail'
    line = only(check({key: value}), key, value)
    assert ': contains a character that ' in line and ' cannot take unquoted (' in line
    assert 'Fix: supply at least 16 characters among letters, digits and _.:,;=+/@%^~!*?-' in line


def test_unquoted_passwords_name_the_file_they_go_to():
    value = 'Unquoted0Secret"Tail'
    assert 'haproxy.cfg (the health checks' in check({'REDIS_HEALTHCHECK_PASSWORD': value})[0]
    assert 'sentinel.conf (requirepass)' in check({'SENTINEL_PASSWORD': value})[0]
    assert 'sentinel.conf (auth-pass)' in check({'REDIS_SENTINEL_PASSWORD': value})[0]


@pytest.mark.parametrize('key', UNQUOTED_KEYS)
def test_unquoted_passwords_take_every_safe_character(key):
    assert len(SAFE) >= 16
    assert check({key: SAFE}) == []
    # Length is checked first, and the fix states the whole rule (length and characters) at once.
    line = only(check({key: 'Short$Pw'}), key, 'Short$Pw')
    assert 'is shorter than 16 characters' in line and 'letters, digits and _.:,;=+/@%^~!*?-' in line


# --- passwords being rotated out (<KEY>_PREVIOUS) ------------------------------------------------

def test_a_previous_password_keeps_its_length_but_must_fit_on_one_line():
    assert check({'REDIS_PASSWORD_PREVIOUS': 'x'}) == []
    assert check({'SENTINEL_PASSWORD_PREVIOUS': 'Old$Weak"Pw'}) == []      # it was never unquoted-checked
    line = only(check({'REDIS_PASSWORD_PREVIOUS': 'Old Weak Pw'}), 'REDIS_PASSWORD_PREVIOUS', 'Old Weak Pw')
    assert ': contains a space, a control or a non-ASCII character.' in line
    assert line.endswith('or remove the key (no rotation of REDIS_PASSWORD).')
    assert ': is empty.' in only(check({'REDIS_PASSWORD_PREVIOUS': ''}), 'REDIS_PASSWORD_PREVIOUS', None)
    assert ': is not set.' in only(check({'REDIS_PASSWORD_PREVIOUS': None}), 'REDIS_PASSWORD_PREVIOUS', None)


# --- user names ----------------------------------------------------------------------------------

@pytest.mark.parametrize('key', USER_KEYS)
def test_user_names(key):
    for name in ('kb-admin', 'a', SAFE):
        assert check({key: name}) == [], name
    line = only(check({key: 'kb admin'}), key, 'kb admin')
    assert ': contains a space, a control or a non-ASCII character. Fix: use letters, digits and ' in line
    assert line.endswith('or remove the key to keep the default name (redis_credentials_usernames).')
    line = only(check({key: 'kb"admin'}), key, 'kb"admin')
    assert 'users.acl, sentinel.conf (auth-user) and haproxy.cfg' in line
    assert ': is empty.' in only(check({key: ''}), key, None)


# --- what is checked, in which order, and the mapping itself -------------------------------------

def test_other_keys_are_not_checked():
    assert check({'REDIS_MASTER_NAME': '', 'SOMETHING': 'a b', 'REDIS_PASSWORDS_FILE': None}) == []


def test_one_problem_per_key_sorted_by_key_and_the_values_never_shown():
    values = {'SENTINEL_PASSWORD': 'Sentinel0Secret$$', 'REDIS_PASSWORD': 'ShortSecret1',
              'REDIS_ADMIN_USER': 'bad user', 'REDIS_ADMIN_PASSWORD': GOOD, 'REDIS_MASTER_NAME': 'kb-redis-master'}
    problems = check(values)
    assert [line.split(':')[0] for line in problems] == [
        'redis_credentials_override.REDIS_ADMIN_USER', 'redis_credentials_override.REDIS_PASSWORD',
        'redis_credentials_override.SENTINEL_PASSWORD']
    for line in problems:
        assert SENTENCE.match(line), line
        for value in values.values():
            assert value not in line, 'a value appears in %r' % line.split(':')[0]


@pytest.mark.parametrize('value', [[], 'REDIS_PASSWORD=x', None, 42])
def test_anything_but_a_mapping_is_one_problem(value):
    assert check(value) == ['redis_credentials_override: is not a mapping. Fix: set it to a mapping of redis.env keys '
                            'to values, e.g. REDIS_PASSWORD: <a vaulted value>.']
    assert check(value, source=VALUES) == ['redis_credentials_values: is not a mapping. Fix: run the '
                                           'keybuzz.redis_ha.redis_credentials role first (playbooks/site.yml does).']


def test_values_are_read_as_text():
    assert check({'REDIS_PASSWORD': 1234567890123456}) == []
    assert 'is shorter than 16' in check({'REDIS_PASSWORD': 123456789012345})[0]


# --- the credentials a role is about to use (source redis_credentials_values) --------------------

def test_role_view_names_the_mapping_and_points_at_the_credentials_role():
    assert check({'REDIS_PASSWORD': None}, source=VALUES) == [
        'redis_credentials_values.REDIS_PASSWORD: is not set. Fix: run the keybuzz.redis_ha.redis_credentials role '
        'first (playbooks/site.yml does): it reads redis.env and redis_credentials_override.']
    line = only(check({'REDIS_HEALTHCHECK_PASSWORD': 'Health0Check"Secret'}, source=VALUES),
                'REDIS_HEALTHCHECK_PASSWORD', 'Health0Check"Secret', source=VALUES)
    assert line.endswith('Fix: set REDIS_HEALTHCHECK_PASSWORD in redis_credentials_override or redis.env to at least '
                         '16 characters among letters, digits and _.:,;=+/@%^~!*?-.')
    line = only(check({'REDIS_HEALTHCHECK_USER': 'kb health'}, source=VALUES), 'REDIS_HEALTHCHECK_USER', 'kb health',
                source=VALUES)
    assert 'Fix: set REDIS_HEALTHCHECK_USER in redis_credentials_usernames or redis_credentials_override' in line


def test_bad_options_are_errors():
    with pytest.raises(AnsibleFilterError, match='source must be one of'):
        check({}, source='redis.env')
    with pytest.raises(AnsibleFilterError, match='min_length must be a number'):
        check({}, min_length='sixteen')


def test_the_filter_is_registered():
    assert plugin.FilterModule().filters() == {'credential_problems': check}


# --- the unquoted rule against the parser that reads sentinel.conf -------------------------------

def test_redis_config_parser_takes_a_safe_password_unquoted(tmp_path):
    """Every character the rule accepts for an unquoted password survives redis.conf / sentinel.conf."""
    proc = Proc(REDIS_SERVER, tmp_path, 'unquoted', 'save ""\nrequirepass %s\n' % SAFE)
    try:
        assert wait_for(lambda: proc.client(password=SAFE).ping(), what='AUTH with the safe password')
    finally:
        proc.stop()


@pytest.mark.parametrize('quote', ['"', "'"])
def test_redis_config_parser_refuses_a_quote_in_an_unquoted_password(tmp_path, quote):
    """Why REDIS_SENTINEL_PASSWORD (auth-pass) and SENTINEL_PASSWORD (requirepass) are checked."""
    conf = tmp_path / 'quote.conf'
    conf.write_text('port 0\nsave ""\ndaemonize no\nrequirepass Unquoted0Secret%sTail\n' % quote)
    proc = subprocess.run([REDIS_SERVER, str(conf)], capture_output=True, text=True, timeout=20, cwd=str(tmp_path))
    assert proc.returncode != 0 and 'FATAL CONFIG FILE ERROR' in proc.stdout + proc.stderr
    assert check({'REDIS_SENTINEL_PASSWORD': 'Unquoted0Secret%sTail' % quote}) != []
