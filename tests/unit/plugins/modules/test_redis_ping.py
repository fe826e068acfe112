# -*- coding: utf-8 -*-
# Copyright: (c) 2026, KeyBuzz (@keybuzz)
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""keybuzz.redis_ha.redis_ping against a real redis-server and a real redis-sentinel on loopback: an
accepted login, a refused one and a dead port are told apart, never fail the module, show no secret."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from kblab.processes import ADMIN_PASSWORD, ADMIN_USER, SENTINEL_PASSWORD, admin, free_port, start_server
from ansible_collections.keybuzz.redis_ha.plugins.modules import redis_ping as module


@pytest.fixture
def server(tmp_path):
    proc = start_server(tmp_path, 'ping')
    yield proc
    proc.stop()


def test_accepted_refused_and_unreachable(server, run_module):
    args = dict(login_port=server.port, login_user=ADMIN_USER, connect_timeout=2)
    assert run_module(module, dict(args, login_password=ADMIN_PASSWORD)) == dict(changed=False, ok=True, refused=False,
                                                                                  written=False, replicas_acknowledged=None,
                                                                                  deleted=False, reason='')
    refused = run_module(module, dict(args, login_password='Wrong-Password-0123'))
    assert refused['ok'] is False and refused['refused'] is True and refused['changed'] is False
    assert refused['reason'] == 'authentication failed on 127.0.0.1:%d: invalid username or password' % server.port
    port = free_port()
    dead = run_module(module, dict(args, login_port=port, login_password='Wrong-Password-0123'))
    assert dead == dict(changed=False, ok=False, refused=False, written=False, replicas_acknowledged=None, deleted=False,
                        reason='cannot connect to 127.0.0.1:%d: connection refused' % port)


def test_a_sentinel_with_its_password(sentinel, run_module):
    res = run_module(module, dict(login_port=sentinel.port, login_password=SENTINEL_PASSWORD, connect_timeout=2,
                                  _ansible_check_mode=True))
    assert res['ok'] is True
    res = run_module(module, dict(login_port=sentinel.port, login_password='Not-The-Sentinel-Pw', connect_timeout=2))
    assert res['refused'] is True and 'Not-The-Sentinel-Pw' not in res['reason']


def test_a_write_is_acknowledged_by_a_master_and_refused_by_a_replica(tmp_path, server, run_module):
    args = dict(login_port=server.port, login_user=ADMIN_USER, login_password=ADMIN_PASSWORD, connect_timeout=2,
                write_key='kb:probe', write_ttl=30)
    assert run_module(module, dict(args, _ansible_check_mode=True))['written'] is False
    assert admin(server).exists('kb:probe') == 0
    res = run_module(module, args)
    assert res['ok'] is True and res['written'] is True
    assert admin(server).get('kb:probe') == 'ok' and 0 < admin(server).ttl('kb:probe') <= 30
    replica = start_server(tmp_path, 'replica', master=server)
    try:
        res = run_module(module, dict(args, login_port=replica.port))
    finally:
        replica.stop()
    assert res['ok'] is False and res['written'] is False and res['refused'] is False
    assert res['reason'] == "127.0.0.1:%d replied with an error: You can't write against a read only replica." % replica.port


def test_several_logins_each_stand_alone(server, run_module):
    from kblab.processes import DEFAULT_PASSWORD
    logins = [dict(name='REDIS_ADMIN_PASSWORD', user=ADMIN_USER, password=ADMIN_PASSWORD),
              dict(name='REDIS_PASSWORD', password=DEFAULT_PASSWORD),
              dict(name='REDIS_ADMIN_PASSWORD_PREVIOUS', user=ADMIN_USER, password='Old-Admin-Pw-0123456'),
              dict(name='REDIS_PASSWORD_PREVIOUS', password='Old-App-Pw-0123456789'),
              dict(name='after-the-refusals', user=ADMIN_USER, password=ADMIN_PASSWORD)]
    res = run_module(module, dict(login_port=server.port, connect_timeout=2, logins=logins))
    assert [(entry['name'], entry['ok'], entry['refused']) for entry in res['logins']] == [
        ('REDIS_ADMIN_PASSWORD', True, False), ('REDIS_PASSWORD', True, False),
        ('REDIS_ADMIN_PASSWORD_PREVIOUS', False, True), ('REDIS_PASSWORD_PREVIOUS', False, True),
        ('after-the-refusals', True, False)]
    assert res['ok'] is False and res['refused'] is True
    assert res['reason'].startswith('REDIS_ADMIN_PASSWORD_PREVIOUS: authentication failed on 127.0.0.1:%d' % server.port)
    assert 'Old-Admin-Pw' not in repr(res) and ADMIN_PASSWORD not in repr(res)
    port = free_port()
    dead = run_module(module, dict(login_port=port, connect_timeout=1, logins=logins[:1]))
    assert dead['ok'] is False and dead['refused'] is False
    assert dead['logins'][0]['reason'] == 'cannot connect to 127.0.0.1:%d: connection refused' % port


def test_a_write_waits_for_replicas_and_is_deleted(tmp_path, server, run_module):
    """write_replicas: WAIT counts the replicas that acknowledged; too few make ok false and say how many, and
    write_delete removes the key from the master and (through replication) from the replica either way."""
    from kblab.processes import wait_for, wait_replicas_online
    args = dict(login_port=server.port, login_user=ADMIN_USER, login_password=ADMIN_PASSWORD, connect_timeout=2,
                write_key='kb:probe:wait', write_replicas=1, write_delete=True)
    replica = start_server(tmp_path, 'replica', master=server)
    try:
        wait_replicas_online(server, 1)
        res = run_module(module, args)
        assert res == dict(changed=False, ok=True, refused=False, written=True, replicas_acknowledged=1, deleted=True,
                           reason='')
        assert admin(server).exists('kb:probe:wait') == 0
        short = run_module(module, dict(args, write_replicas=2, write_wait_timeout=200))
        assert short['ok'] is False and short['written'] is True and short['replicas_acknowledged'] == 1
        assert short['deleted'] is True and admin(server).exists('kb:probe:wait') == 0
        assert short['reason'] == ('127.0.0.1:%d: SET kb:probe:wait was acknowledged by 1 of 2 replicas within 200 ms'
                                   % server.port) and short['refused'] is False
        wait_for(lambda: admin(replica).exists('kb:probe:wait') == 0, what='the deletion to reach the replica')
        kept = run_module(module, dict(args, write_delete=False, write_replicas=0))
        assert kept['written'] is True and kept['deleted'] is False and kept['replicas_acknowledged'] is None
        assert admin(server).get('kb:probe:wait') == 'ok'
    finally:
        replica.stop()


def test_bad_write_numbers_name_the_option(server, run_module):
    res = run_module(module, dict(login_port=server.port, login_password=ADMIN_PASSWORD, write_key='k',
                                  write_replicas=-1), expect_fail=True)
    assert res['msg'] == 'write_replicas: -1 is below 0'


def test_a_wait_longer_than_the_connect_timeout_reports_the_count_not_a_timeout(tmp_path, server, run_module):
    """WAIT blocks on purpose: with write_wait_timeout above connect_timeout the socket waits for it, and a
    missing replica is reported as "acknowledged by 0 of 1", not as a server that stopped answering."""
    res = run_module(module, dict(login_port=server.port, login_user=ADMIN_USER, login_password=ADMIN_PASSWORD,
                                  connect_timeout=0.5, write_key='kb:probe:long', write_replicas=1,
                                  write_wait_timeout=1500, write_delete=True))
    assert res['ok'] is False and res['replicas_acknowledged'] == 0 and res['deleted'] is True
    assert res['reason'] == ('127.0.0.1:%d: SET kb:probe:long was acknowledged by 0 of 1 replicas within 1500 ms'
                             % server.port)
    assert admin(server).exists('kb:probe:long') == 0
