# -*- coding: utf-8 -*-
# Copyright: (c) 2026, KeyBuzz (@keybuzz)
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""keybuzz.redis_ha.redis_config against a real redis-server on loopback."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from kblab.processes import ADMIN_PASSWORD, ADMIN_USER, admin, start_server
from ansible_collections.keybuzz.redis_ha.plugins.modules import redis_config as module


@pytest.fixture
def server(tmp_path):
    proc = start_server(tmp_path, 'config')
    yield proc
    proc.stop()


def args_for(proc, settings, **extra):
    args = dict(login_port=proc.port, login_user=ADMIN_USER, login_password=ADMIN_PASSWORD, connect_timeout=2,
                settings=settings)
    args.update(extra)
    return args


def live(proc, name):
    return admin(proc).config_get(name)[name]


@pytest.mark.parametrize('value, reported', [
    ('64mb', str(64 * 1024 ** 2)), ('1gb', str(1024 ** 3)), ('2m', '2000000'), ('10k', '10000'), (4096, '4096'),
    ('EVERYSEC', 'everysec'), (True, 'yes'), ('no', 'no'),
])
def test_normalize_reads_values_the_way_redis_reports_them(value, reported):
    assert module.normalize(value) == reported


def test_only_differing_settings_are_set_and_a_second_run_changes_nothing(server, run_module):
    admin(server).config_set('maxmemory', str(100 * 1024 ** 2))
    settings = {'min-replicas-to-write': 2, 'min-replicas-max-lag': 3, 'maxmemory': '100mb',
                'maxmemory-policy': 'noeviction', 'appendfsync': 'everysec'}
    res = run_module(module, args_for(server, settings))
    assert res['changed'] is True
    # maxmemory is already 100mb in bytes; policy and fsync are Redis's defaults.
    assert res['changed_settings'] == ['min-replicas-max-lag', 'min-replicas-to-write']
    assert res['before']['min-replicas-to-write'] == '0'
    assert live(server, 'min-replicas-to-write') == '2' and live(server, 'min-replicas-max-lag') == '3'
    again = run_module(module, args_for(server, settings))
    assert again['changed'] is False and again['changed_settings'] == []


def test_check_mode_reports_without_setting_and_diff_shows_both_values(server, run_module):
    res = run_module(module, args_for(server, {'repl-backlog-size': '64mb'}, _ansible_check_mode=True, _ansible_diff=True))
    assert res['changed'] is True and res['changed_settings'] == ['repl-backlog-size']
    assert res['diff'] == {'before': 'repl-backlog-size %s\n' % res['before']['repl-backlog-size'],
                           'after': 'repl-backlog-size %d\n' % (64 * 1024 ** 2)}
    assert live(server, 'repl-backlog-size') == res['before']['repl-backlog-size'] != str(64 * 1024 ** 2)


def test_a_rejected_value_sets_nothing_and_names_the_settings(server, run_module):
    res = run_module(module, args_for(server, {'min-replicas-to-write': 2, 'maxmemory-policy': 'no-such-policy'}),
                     expect_fail=True)
    assert 'CONFIG GET/SET of maxmemory-policy, min-replicas-to-write failed' in res['msg']
    assert 'no-such-policy' in res['msg'] or 'argument' in res['msg'].lower()
    assert live(server, 'min-replicas-to-write') == '0'  # CONFIG SET applies all or none


def test_unknown_setting_and_wrong_password_fail_with_a_reason_and_no_secret(server, run_module):
    res = run_module(module, args_for(server, {'no-such-setting': 1}), expect_fail=True)
    assert res['msg'] == 'unknown setting no-such-setting (CONFIG GET returned nothing) on 127.0.0.1:%d' % server.port
    res = run_module(module, args_for(server, {'maxmemory': 0}, login_password='wrong-Pw-0'), expect_fail=True)
    assert 'wrong-Pw-0' not in res['msg'] and ADMIN_PASSWORD not in res['msg']
    assert 'failed' in res['msg']


def test_secret_settings_are_set_verbatim_and_never_shown(server, run_module):
    # Letters and dashes only: a keyword to normalize(), but a password is set and compared as given.
    secret = 'Repl-Secret-Password-Only-Letters'
    res = run_module(module, args_for(server, {'masteruser': 'KB-Replication'}, secret_settings={'masterauth': secret},
                                      _ansible_diff=True))
    assert res['changed_settings'] == ['masterauth', 'masteruser']
    assert live(server, 'masterauth') == secret and live(server, 'masteruser') == 'KB-Replication'
    assert secret not in repr(res) and res['diff']['after'] == 'masterauth ********\nmasteruser KB-Replication\n'
    again = run_module(module, args_for(server, {'masteruser': 'KB-Replication'}, secret_settings={'masterauth': secret},
                                        _ansible_diff=True, _ansible_check_mode=True))
    assert again['changed'] is False and again['before']['masterauth'] == '********'
    # Another case of the same letters is another password.
    other = run_module(module, args_for(server, {}, secret_settings={'masterauth': secret.lower()}, _ansible_diff=True,
                                        _ansible_check_mode=True))
    assert other['changed_settings'] == ['masterauth'] and secret.lower() not in repr(other) and secret not in repr(other)
    assert live(server, 'masterauth') == secret


def test_secret_setting_refused_says_why_without_the_secret(server, run_module):
    previous = live(server, 'masterauth')
    res = run_module(module, args_for(server, {'maxmemory-policy': 'no-such-policy'},
                                      secret_settings={'masterauth': 'Refused-Secret-0123'}), expect_fail=True)
    assert 'CONFIG GET/SET of masterauth, maxmemory-policy failed' in res['msg']
    assert 'Refused-Secret-0123' not in repr(res)
    assert live(server, 'masterauth') == previous  # CONFIG SET applies all or none


def test_bad_settings_input_fails_before_connecting(run_module):
    args = dict(login_port=1, login_password=ADMIN_PASSWORD, connect_timeout=1)
    res = run_module(module, dict(args, settings={}), expect_fail=True)
    assert res['msg'] == 'settings: give at least one setting (in settings or secret_settings)'
    res = run_module(module, dict(args, settings={'masterauth': 'a'}, secret_settings={'masterauth': 'b'}), expect_fail=True)
    assert res['msg'] == 'settings and secret_settings both name masterauth: give each setting once'


def test_force_sets_equal_settings_and_reports_them(server, run_module):
    settings = {'appendfsync': 'everysec', 'min-replicas-max-lag': 10}
    assert run_module(module, args_for(server, settings))['changed'] is False
    checked = run_module(module, args_for(server, settings, force=True, _ansible_check_mode=True))
    assert checked['changed'] is True and checked['changed_settings'] == ['appendfsync', 'min-replicas-max-lag']
    # Set for real: a CONFIG SET of both reaches the server (its counter of config commands grows).
    before = admin(server).info('commandstats').get('cmdstat_config|set', {}).get('calls', 0)
    forced = run_module(module, args_for(server, settings, force=True))
    assert forced['changed'] is True
    assert admin(server).info('commandstats')['cmdstat_config|set']['calls'] == before + 1
