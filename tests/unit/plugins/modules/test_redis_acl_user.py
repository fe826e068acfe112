# -*- coding: utf-8 -*-
# Copyright: (c) 2026, KeyBuzz (@keybuzz)
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""keybuzz.redis_ha.redis_acl_user against a real redis-server and a real redis-sentinel on loopback:
created, left alone when equal (whatever order Redis lists the rules in), replaced atomically when a
rule or a password differs, deleted; check mode and diff change nothing and show no secret; on a
Sentinel, FLUSHCONFIG writes the user to its configuration file, so it survives a restart."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import hashlib
import re

import pytest

from conftest import ADMIN_PASSWORD, ADMIN_USER, SENTINEL_PASSWORD, start_server, wait_for
from ansible_collections.keybuzz.redis_ha.plugins.modules import redis_acl_user as module

PASSWORD = 'exporter-Pw-0123456789'
OLD_PASSWORD = 'old-exporter-Pw-0123456'
COMMANDS = ['-@all', '+ping', '+info', '+client|setname', '+config|get']
SENTINEL_COMMANDS = ['-@all', '+ping', '+info', '+client|setname', '+sentinel|masters', '+sentinel|ckquorum']


@pytest.fixture
def server(tmp_path):
    proc = start_server(tmp_path, 'server')
    yield proc
    proc.stop()


def on_server(proc, **extra):
    args = dict(login_port=proc.port, login_user=ADMIN_USER, login_password=ADMIN_PASSWORD, connect_timeout=2,
                name='kb-exporter', passwords=[PASSWORD], commands=COMMANDS)
    args.update(extra)
    return args


def on_sentinel(proc, **extra):
    args = dict(login_port=proc.port, login_password=SENTINEL_PASSWORD, connect_timeout=2, name='kb-exporter',
                passwords=[PASSWORD], commands=SENTINEL_COMMANDS, flush_config=True)
    args.update(extra)
    return args


def login(proc, password=PASSWORD):
    client = proc.client(username='kb-exporter', password=password)
    try:
        return client.ping()
    finally:
        client.close()


def test_created_then_equal_whatever_the_order_then_replaced(server, run_module):
    res = run_module(module, on_server(server))
    assert res['changed'] is True and res['changed_rules'] == ['created']
    assert login(server)
    client = server.client(username='kb-exporter', password=PASSWORD)
    with pytest.raises(Exception, match='no permissions'):
        client.get('any-key')
    client.close()
    again = run_module(module, on_server(server, commands=list(reversed(COMMANDS))))
    assert again['changed'] is False and again['changed_rules'] == []
    # A second password (a rotation) and one command less: one SETUSER, both passwords work.
    changed = run_module(module, on_server(server, passwords=[PASSWORD, OLD_PASSWORD], commands=COMMANDS[:-1]))
    assert changed['changed_rules'] == ['commands', 'passwords']
    assert login(server) and login(server, OLD_PASSWORD)
    client = server.client(username='kb-exporter', password=PASSWORD)
    with pytest.raises(Exception, match='no permissions'):
        client.config_get('maxmemory')
    client.close()


def test_hashes_count_like_passwords_and_absent_deletes(server, run_module):
    digest = hashlib.sha256(PASSWORD.encode()).hexdigest()
    run_module(module, on_server(server))
    same = run_module(module, on_server(server, passwords=[], password_hashes=[digest.upper()]))
    assert same['changed'] is False
    gone = run_module(module, on_server(server, state='absent'))
    assert gone['changed_rules'] == ['deleted']
    with pytest.raises(Exception):
        login(server)
    assert run_module(module, on_server(server, state='absent'))['changed'] is False


def test_check_mode_and_diff_change_nothing_and_show_no_secret(server, run_module):
    res = run_module(module, on_server(server, _ansible_check_mode=True, _ansible_diff=True))
    assert res['changed'] is True and res['changed_rules'] == ['created']
    assert res['diff']['before'] == ''
    assert res['diff']['after'] == 'on 1 password hash(es) resetkeys resetchannels %s\n' % ' '.join(sorted(COMMANDS))
    text = repr(res)
    assert PASSWORD not in text and hashlib.sha256(PASSWORD.encode()).hexdigest() not in text
    with pytest.raises(Exception):
        login(server)


def test_on_a_sentinel_the_user_is_written_to_its_configuration(sentinel, run_module):
    res = run_module(module, on_sentinel(sentinel))
    assert res['changed_rules'] == ['created']
    assert login(sentinel)
    with open(sentinel.conf) as handle:
        conf = handle.read()
    assert re.search(r'(?m)^user kb-exporter on .*#%s .*\+sentinel\|ckquorum' % hashlib.sha256(PASSWORD.encode()).hexdigest(), conf)
    assert run_module(module, on_sentinel(sentinel))['changed'] is False
    sentinel.stop()
    sentinel.start()
    wait_for(lambda: login(sentinel), what='the Sentinel back with the user from its configuration file')


def test_bad_input_and_errors_fail_naming_the_cause_and_no_secret(server, run_module):
    res = run_module(module, on_server(server, passwords=[]), expect_fail=True)
    assert res['msg'] == 'passwords: give at least one password (or password_hashes) for a user that must exist'
    res = run_module(module, on_server(server, password_hashes=['abc']), expect_fail=True)
    assert res['msg'] == 'password_hashes: 1 value(s) are not SHA-256 hashes (64 hexadecimal digits)'
    res = run_module(module, on_server(server, commands=['-@all +ping']), expect_fail=True)
    assert res['msg'] == "commands: '-@all +ping' is empty or holds a space; give one rule per item"
    res = run_module(module, on_server(server, commands=['~*']), expect_fail=True)
    assert res['msg'].startswith("commands: '~*' does not start with + or -")
    res = run_module(module, on_server(server, commands=['+nosuchcommand']), expect_fail=True)
    assert res['msg'].startswith('ACL SETUSER kb-exporter on 127.0.0.1:%d failed: ' % server.port)
    assert PASSWORD not in res['msg']
    res = run_module(module, on_server(server, login_password='wrong-Pw-0'), expect_fail=True)
    assert res['msg'].startswith('ACL GETUSER kb-exporter on 127.0.0.1:%d failed: authentication' % server.port)
    assert 'wrong-Pw-0' not in res['msg']
