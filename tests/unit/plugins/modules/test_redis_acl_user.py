# -*- coding: utf-8 -*-
# Copyright: (c) 2026, KeyBuzz (@keybuzz)
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""keybuzz.redis_ha.redis_acl_user against a real redis-server and a real redis-sentinel on loopback:
created, left alone when equal (as Redis spells the rules), replaced atomically when a
rule or a password differs, deleted; check mode and diff change nothing and show no secret; on a
Sentinel, FLUSHCONFIG writes the user to its configuration file, so it survives a restart."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import hashlib
import re

import pytest

from kblab.processes import ADMIN_PASSWORD, ADMIN_USER, SENTINEL_PASSWORD, admin, start_server, wait_for
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


def test_created_then_equal_then_replaced_and_rule_order_counts(server, run_module):
    res = run_module(module, on_server(server))
    assert res['changed'] is True and res['changed_rules'] == ['created']
    assert login(server)
    client = server.client(username='kb-exporter', password=PASSWORD)
    with pytest.raises(Exception, match='no permissions'):
        client.get('any-key')
    client.close()
    again = run_module(module, on_server(server))
    assert again['changed'] is False and again['changed_rules'] == []
    # Order counts in ACL rules: -@all last takes every command away again.
    reordered = run_module(module, on_server(server, commands=list(reversed(COMMANDS)), _ansible_check_mode=True))
    assert reordered['changed_rules'] == ['commands']
    assert not [u for u in admin(server).acl_users() if u.startswith('kb-acl-probe-')]
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
    assert res['msg'].startswith('ACL SETUSER kb-exporter (its rules, on a temporary user) on 127.0.0.1:%d failed: '
                                 % server.port)
    assert PASSWORD not in res['msg']
    res = run_module(module, on_server(server, login_password='wrong-Pw-0'), expect_fail=True)
    assert res['msg'].startswith('ACL GETUSER kb-exporter on 127.0.0.1:%d failed: authentication' % server.port)
    assert 'wrong-Pw-0' not in res['msg']


@pytest.mark.parametrize('rules, parsed', [
    ('~* &* +@all -@dangerous +info +role', dict(keys=['*'], channels=['*'], commands=['+@all', '-@dangerous', '+info', '+role'])),
    ('allkeys allchannels allcommands', dict(keys=['*'], channels=['*'], commands=['+@all'])),
    ('~a:* resetkeys %R~cache:* resetchannels &news nocommands +get',
     dict(keys=['%R~cache:*'], channels=['news'], commands=['-@all', '+get'])),
])
def test_rules_read_left_to_right_as_redis_does(rules, parsed):
    assert module.parse_rules(rules) == parsed


@pytest.mark.parametrize('rule', ['on', 'nopass', '>secret-Pw', '#abc', 'nosuchrule', '(~x +get)', 'sanitize-payload'])
def test_rules_refuse_passwords_flags_and_unknown_words(rule):
    with pytest.raises(ValueError, match='is not a key'):
        module.parse_rules('+ping %s' % rule)


def role_users():
    """The ACL users of roles/redis_node/templates/users.acl.j2, as the role's handler applies them."""
    import jinja2
    import os
    import yaml
    from ansible_collections.keybuzz.redis_ha.plugins.filter.acl_file_users import acl_file_users
    role = os.path.join(os.path.dirname(module.__file__), '..', '..', 'roles', 'redis_node')
    with open(os.path.join(role, 'defaults', 'main.yml')) as handle:
        defaults = yaml.safe_load(handle)
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(os.path.join(role, 'templates')), trim_blocks=True)
    env.filters['hash'] = lambda value, algo: hashlib.new(algo, value.encode()).hexdigest()
    names = ('app', 'admin', 'replication', 'sentinel', 'healthcheck', 'exporter')
    variables = dict(('redis_node_%s_password' % name, 'Pw-of-%s-0123456789' % name) for name in names)
    variables.update(('redis_node_%s_user' % name, 'kb-%s' % name) for name in names)
    variables.update(redis_node_app_acl=defaults['redis_node_app_acl'], redis_node_exporter_acl=defaults['redis_node_exporter_acl'],
                     redis_node_app_password_previous='Previous-app-Pw-0123')
    return acl_file_users(env.get_template('users.acl.j2').render(**variables))


def test_every_user_of_the_role_is_created_then_equal(server, run_module):
    """The role's rules, as Redis lists them back: a second application changes nothing (Redis of this host)."""
    users = role_users()
    assert [user['name'] for user in users] == ['default', 'kb-admin', 'kb-replication', 'kb-sentinel', 'kb-healthcheck',
                                                 'kb-exporter']
    assert len(users[0]['password_hashes']) == 2
    for user in users:
        args = on_server(server, name=user['name'], passwords=[], password_hashes=user['password_hashes'],
                         rules=user['rules'])
        del args['commands']
        first = run_module(module, args)
        assert first['changed'] is True, user['name']
        again = run_module(module, args)
        assert again['changed'] is False, (user['name'], again['changed_rules'])
    replication = server.client(username='kb-replication', password='Pw-of-replication-0123456789')
    with pytest.raises(Exception, match='no permissions'):
        replication.get('any-key')
    assert replication.ping()
    replication.close()
    app = server.client(password='Previous-app-Pw-0123')
    assert app.set('k', 'v') and app.info('replication')['role'] == 'master'
    app.close()


def test_rules_exclude_commands_keys_and_channels(server, run_module):
    res = run_module(module, on_server(server, rules='+ping'), expect_fail=True)
    assert 'mutually exclusive' in res['msg'] and 'rules' in res['msg']
    res = run_module(module, dict((k, v) for k, v in on_server(server, rules='+ping nosuchrule').items() if k != 'commands'),
                     expect_fail=True)
    assert res['msg'].startswith("rules: 'nosuchrule' is not a key")
