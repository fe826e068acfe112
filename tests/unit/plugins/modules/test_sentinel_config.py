# -*- coding: utf-8 -*-
# Copyright: (c) 2026, KeyBuzz (@keybuzz)
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""keybuzz.redis_ha.sentinel_config against a real redis-sentinel (and its master) on loopback."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from kblab.processes import MASTER_NAME, SENTINEL_PASSWORD
from ansible_collections.keybuzz.redis_ha.plugins.modules import sentinel_config as module


def args_for(proc, settings, **extra):
    args = dict(login_port=proc.port, login_password=SENTINEL_PASSWORD, connect_timeout=2, master_name=MASTER_NAME,
                settings=settings)
    args.update(extra)
    return args


def live(proc):
    client = proc.client(password=SENTINEL_PASSWORD)
    try:
        reply = client.execute_command('SENTINEL', 'MASTER', MASTER_NAME)
        return dict(zip(reply[::2], reply[1::2])) if isinstance(reply, list) else reply
    finally:
        client.close()


def test_only_differing_settings_are_set_and_a_second_run_changes_nothing(sentinel, run_module):
    settings = {'quorum': 1, 'down-after-milliseconds': 5000, 'parallel-syncs': 2, 'failover-timeout': '30000'}
    res = run_module(module, args_for(sentinel, settings))
    # The fixture's Sentinel monitors with quorum 2, parallel-syncs 1, failover-timeout 60000.
    assert res['changed'] is True
    assert res['changed_settings'] == ['failover-timeout', 'parallel-syncs', 'quorum']
    assert res['before'] == {'quorum': '2', 'down-after-milliseconds': '5000', 'parallel-syncs': '1', 'failover-timeout': '60000'}
    now = live(sentinel)
    assert (now['quorum'], now['parallel-syncs'], now['failover-timeout']) == ('1', '2', '30000')
    again = run_module(module, args_for(sentinel, settings))
    assert again['changed'] is False and again['changed_settings'] == []


def test_check_mode_reports_without_setting_and_diff_shows_both_values(sentinel, run_module):
    res = run_module(module, args_for(sentinel, {'quorum': 1}, _ansible_check_mode=True, _ansible_diff=True))
    assert res['changed'] is True and res['changed_settings'] == ['quorum']
    assert res['diff'] == {'before': 'quorum 2\n', 'after': 'quorum 1\n'}
    assert live(sentinel)['quorum'] == '2'


def test_bad_input_and_errors_fail_with_a_reason_and_no_secret(sentinel, run_module):
    res = run_module(module, args_for(sentinel, {'auth-pass': 'x'}), expect_fail=True)
    assert res['msg'] == ('settings: auth-pass cannot be compared (SENTINEL MASTER does not report them); '
                          'use quorum, down-after-milliseconds, failover-timeout, parallel-syncs')
    res = run_module(module, args_for(sentinel, {'quorum': 'two'}), expect_fail=True)
    assert res['msg'] == "settings: quorum is 'two', not a whole number"
    res = run_module(module, args_for(sentinel, {'quorum': 2}, master_name='other'), expect_fail=True)
    assert res['msg'] == ('SENTINEL MASTER other on 127.0.0.1:%d failed: the Sentinel does not monitor a master named other'
                          % sentinel.port)
    res = run_module(module, args_for(sentinel, {'quorum': 2}, login_password='wrong-Pw-0'), expect_fail=True)
    assert 'wrong-Pw-0' not in res['msg'] and SENTINEL_PASSWORD not in res['msg'] and 'failed' in res['msg']
    # SENTINEL SET refuses a quorum of 0: the failure names it and what was set before it.
    res = run_module(module, args_for(sentinel, {'quorum': 0, 'parallel-syncs': 3}), expect_fail=True)
    assert res['msg'].startswith('SENTINEL SET %s quorum 0 on 127.0.0.1:%d failed: ' % (MASTER_NAME, sentinel.port))
    assert res['applied_settings'] == ['parallel-syncs']
    assert (live(sentinel)['parallel-syncs'], live(sentinel)['quorum']) == ('3', '2')


def test_split_config_line_reads_quotes_and_escapes_as_redis_does():
    assert module.split_config_line('sentinel auth-pass m plain\n') == ['sentinel', 'auth-pass', 'm', 'plain']
    assert module.split_config_line(r'sentinel auth-pass m "a \"b\" c\\d\x41"') == ['sentinel', 'auth-pass', 'm', 'a "b" c\\dA']
    assert module.split_config_line("sentinel auth-pass m 'it''s'") == ['sentinel', 'auth-pass', 'm', 'it', 's']
    with pytest.raises(ValueError):
        module.split_config_line('sentinel auth-pass m "open')


@pytest.mark.parametrize('password', ['Plain-Password-0123456789', 'With"quote\\and#hash-0123', 'With spaces and # 0123'])
def test_auth_pass_compared_with_the_file_sentinel_rewrites(sentinel, run_module, password):
    args = dict(login_port=sentinel.port, login_password=SENTINEL_PASSWORD, connect_timeout=2, master_name=MASTER_NAME,
                secret_settings={'auth-pass': password}, config_file=sentinel.conf, _ansible_diff=True)
    res = run_module(module, args)
    assert res['changed_settings'] == ['auth-pass'] and res['before'] == {'auth-pass': '********'}
    assert res['diff'] == {'before': 'auth-pass ********\n', 'after': 'auth-pass ********\n'}
    assert password not in repr(res)
    # Sentinel wrote the new value to its file (7.0: as it is): read back, it is equal.
    assert module.file_master_setting(sentinel.conf, MASTER_NAME, 'auth-pass') == password
    assert run_module(module, args)['changed'] is False


def test_sentinel_pass_through_sentinel_config_set(sentinel, run_module):
    args = dict(login_port=sentinel.port, login_password=SENTINEL_PASSWORD, connect_timeout=2,
                secret_config_settings={'sentinel-pass': 'Other-Sentinels-Pw-0123'})
    checked = run_module(module, dict(args, _ansible_check_mode=True))
    # Unset so far: shown empty (that it is set is not a secret, its value is).
    assert checked['changed_settings'] == ['sentinel-pass'] and checked['before'] == {'sentinel-pass': ''}
    res = run_module(module, args)
    assert res['changed'] is True and 'Other-Sentinels-Pw-0123' not in repr(res)
    client = sentinel.client(password=SENTINEL_PASSWORD)
    assert client.execute_command('SENTINEL', 'CONFIG', 'GET', 'sentinel-pass')[1] == 'Other-Sentinels-Pw-0123'
    client.close()
    again = run_module(module, args)
    assert again['changed'] is False and again['before'] == {'sentinel-pass': '********'}


def test_secret_and_config_input_errors(sentinel, run_module):
    base = dict(login_port=sentinel.port, login_password=SENTINEL_PASSWORD, connect_timeout=2)
    res = run_module(module, base, expect_fail=True)
    assert res['msg'] == 'settings: give at least one of settings, secret_settings, config_settings, secret_config_settings'
    res = run_module(module, dict(base, settings={'quorum': 2}), expect_fail=True)
    assert res['msg'] == 'master_name: needed with settings and secret_settings'
    res = run_module(module, dict(base, master_name=MASTER_NAME, secret_settings={'auth-pass': 'x'}), expect_fail=True)
    assert res['msg'] == 'config_file: needed with secret_settings (the Sentinel does not report auth-pass)'
    res = run_module(module, dict(base, master_name=MASTER_NAME, secret_settings={'auth-user': 'x'}), expect_fail=True)
    assert res['msg'] == 'secret_settings: auth-user not accepted; use auth-pass'
    res = run_module(module, dict(base, config_settings={'no-such-thing': 'x'}), expect_fail=True)
    assert res['msg'] == ('SENTINEL CONFIG GET no-such-thing on 127.0.0.1:%d: unknown setting no-such-thing '
                          '(SENTINEL CONFIG GET returned nothing)' % sentinel.port)
    res = run_module(module, dict(base, master_name=MASTER_NAME, secret_settings={'auth-pass': 'Secret-Pw-0123'},
                                  config_file=str(sentinel.conf) + '.missing'), expect_fail=True)
    assert res['msg'].startswith('reading sentinel auth-pass from %s.missing failed: ' % sentinel.conf)
    assert 'Secret-Pw-0123' not in res['msg']


def test_a_quoted_value_in_the_file_is_read_as_redis_reads_it(tmp_path):
    conf = tmp_path / 'sentinel.conf'
    conf.write_text('sentinel monitor m 127.0.0.1 6379 2\nsentinel auth-pass m "a\\"b c"\nsentinel auth-pass other x\n')
    assert module.file_master_setting(str(conf), 'm', 'auth-pass') == 'a"b c'
    assert module.file_master_setting(str(conf), 'none', 'auth-pass') == ''
