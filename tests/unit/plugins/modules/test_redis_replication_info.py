# -*- coding: utf-8 -*-
# Copyright: (c) 2026, KeyBuzz (@keybuzz)
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import time
from unittest import mock

import pytest

from kblab.processes import (
    ADMIN_PASSWORD, ADMIN_USER, DEFAULT_PASSWORD, NOINFO_PASSWORD, NOINFO_USER, free_port, wait_for,
)
from ansible_collections.keybuzz.redis_ha.plugins.module_utils import redis_connection
from ansible_collections.keybuzz.redis_ha.plugins.modules import redis_replication_info as module

RESULT_KEYS = {
    'changed', 'reachable', 'role', 'master_host', 'master_port', 'master_link_status',
    'master_sync_in_progress', 'master_last_io_seconds_ago', 'replicas', 'connected_replicas',
    'in_sync_replicas', 'master_repl_offset', 'replica_repl_offset', 'master_replid', 'replica_priority', 'run_id',
    'healthy', 'reason',
}


def args_for(proc, **extra):
    args = dict(login_port=proc.port, login_user=ADMIN_USER, login_password=ADMIN_PASSWORD, connect_timeout=2)
    args.update(extra)
    return args


def test_master_healthy_with_two_replicas(cluster, run_module):
    res = run_module(module, args_for(cluster.master, expected_role='master', min_replicas=2))
    assert set(res) == RESULT_KEYS
    assert res['healthy'] is True, res['reason']
    assert res['reason'] == 'ok'
    assert res['changed'] is False
    assert res['reachable'] is True
    assert res['role'] == 'master'
    assert res['connected_replicas'] == 2
    assert res['in_sync_replicas'] == 2
    assert res['master_host'] is None and res['master_link_status'] is None
    assert isinstance(res['master_repl_offset'], int)
    assert len(res['master_replid']) == 40
    assert sorted(r['port'] for r in res['replicas']) == sorted(r.port for r in cluster.replicas)
    for rep in res['replicas']:
        assert rep['ip'] == '127.0.0.1'
        assert rep['state'] == 'online'
        assert isinstance(rep['offset'], int) and isinstance(rep['lag'], int)
        assert rep['offset_lag'] >= 0


def test_password_only_default_user(cluster, run_module):
    res = run_module(module, dict(login_port=cluster.master.port, login_password=DEFAULT_PASSWORD))
    assert res['healthy'] is True, res['reason']
    assert res['role'] == 'master'


def test_min_replicas_not_met(cluster, run_module):
    res = run_module(module, args_for(cluster.master, expected_role='master', min_replicas=3))
    assert res['reachable'] is True
    assert res['healthy'] is False
    assert res['reason'] == '2 of 3 required replicas in sync'
    assert 'failed' not in res


def test_replica_healthy(cluster, run_module):
    master, replica = cluster.master, cluster.replicas[0]
    res = run_module(module, args_for(replica, expected_role='replica', expected_master_host='127.0.0.1',
                                      expected_master_port=master.port, min_replicas=5))
    assert res['healthy'] is True, res['reason']
    assert res['role'] == 'replica'
    assert res['master_host'] == '127.0.0.1'
    assert res['master_port'] == master.port
    assert res['master_link_status'] == 'up'
    assert res['master_sync_in_progress'] is False
    assert isinstance(res['master_last_io_seconds_ago'], int)
    assert isinstance(res['replica_repl_offset'], int)
    assert res['replicas'] == [] and res['connected_replicas'] == 0
    assert res['replica_priority'] == 100 and res['run_id'] is None


def test_replica_priority_and_run_id_tell_the_nodes_apart(cluster, run_module):
    from kblab.processes import admin
    # The cluster is shared by the session: the priority is put back.
    admin(cluster.replicas[0]).config_set('replica-priority', 0)
    try:
        zero = run_module(module, args_for(cluster.replicas[0], read_run_id=True))
    finally:
        admin(cluster.replicas[0]).config_set('replica-priority', 100)
    master = run_module(module, args_for(cluster.master, read_run_id=True))
    assert zero['replica_priority'] == 0 and master['replica_priority'] is None
    assert zero['run_id'] == admin(cluster.replicas[0]).info('server')['run_id']
    assert master['run_id'] == admin(cluster.master).info('server')['run_id'] != zero['run_id']
    assert len(master['run_id']) == 40


def test_role_mismatch(cluster, run_module):
    res = run_module(module, args_for(cluster.replicas[0], expected_role='master'))
    assert res['healthy'] is False
    assert res['reason'] == 'role is replica, expected master'
    res = run_module(module, args_for(cluster.master, expected_role='replica'))
    assert res['healthy'] is False
    assert res['reason'] == 'role is master, expected replica'


def test_expected_master_mismatch(cluster, run_module):
    res = run_module(module, args_for(cluster.replicas[1], expected_role='master', expected_master_host='10.9.9.9'))
    assert res['healthy'] is False
    assert res['reason'] == ('role is replica, expected master; replica follows 127.0.0.1:%d, expected 10.9.9.9:6379'
                             % cluster.master.port)


def test_max_offset_lag_counts_in_sync(cluster, run_module):
    res = run_module(module, args_for(cluster.master, min_replicas=2, max_offset_lag=10 ** 9))
    assert res['in_sync_replicas'] == 2 and res['healthy'] is True


def test_replica_with_master_down(replication_pair, run_module):
    master, replica = replication_pair.master, replication_pair.replicas[0]
    assert run_module(module, args_for(replica, expected_role='replica'))['healthy'] is True
    master.stop()

    def link_down():
        res = run_module(module, args_for(replica, expected_role='replica'))
        return res if res['master_link_status'] == 'down' else None
    res = wait_for(link_down, timeout=10, what='replica link down')
    assert res['reachable'] is True
    assert res['healthy'] is False
    assert res['reason'] == 'link to master 127.0.0.1:%d is down' % master.port


def test_connection_refused_does_not_fail(run_module):
    port = free_port()
    res = run_module(module, dict(login_port=port, login_password='whatever-Pw'))
    assert set(res) == RESULT_KEYS
    assert res['reachable'] is False
    assert res['healthy'] is False
    assert res['changed'] is False
    assert 'failed' not in res
    assert res['reason'] == 'cannot connect to 127.0.0.1:%d: connection refused' % port


@pytest.mark.parametrize('user', [ADMIN_USER, None])
def test_wrong_password_is_clear_and_not_leaked(cluster, run_module, user):
    secret = 'Wr0ng-S3cret-Val'
    res = run_module(module, dict(login_port=cluster.master.port, login_user=user, login_password=secret))
    assert res['reachable'] is False and res['healthy'] is False
    assert res['reason'] == ('authentication failed on 127.0.0.1:%d: invalid username or password' % cluster.master.port)
    assert secret not in json.dumps(res)


def test_missing_password_needs_auth(cluster, run_module):
    res = run_module(module, dict(login_port=cluster.master.port))
    assert res['reachable'] is False
    assert res['reason'].startswith('authentication required by 127.0.0.1:%d' % cluster.master.port)


def test_acl_user_without_info_gets_noperm(cluster, run_module):
    res = run_module(module, dict(login_port=cluster.master.port, login_user=NOINFO_USER, login_password=NOINFO_PASSWORD))
    assert res['reachable'] is False and res['healthy'] is False
    assert 'NOPERM' in res['reason']
    assert "'info'" in res['reason']
    assert res['reason'].startswith('permission denied on 127.0.0.1:%d' % cluster.master.port)
    assert NOINFO_PASSWORD not in json.dumps(res)


def test_timeout_on_unresponsive_server(paused_server, run_module):
    start = time.monotonic()
    res = run_module(module, dict(login_port=paused_server.port, login_password=DEFAULT_PASSWORD, connect_timeout=0.5))
    elapsed = time.monotonic() - start
    assert res['reachable'] is False and res['healthy'] is False
    assert res['reason'] == ('timeout talking to 127.0.0.1:%d: no answer within the connect_timeout' % paused_server.port)
    assert elapsed < 3, 'retries must be disabled'


def test_check_mode_same_result(cluster, run_module):
    args = args_for(cluster.replicas[0], expected_role='replica')
    normal = run_module(module, args)
    checked = run_module(module, dict(args, _ansible_check_mode=True))
    assert checked['changed'] is False
    for key in ('reachable', 'role', 'master_host', 'master_port', 'master_link_status', 'healthy', 'reason'):
        assert checked[key] == normal[key]


def test_password_scrubbed_from_library_errors(run_module):
    secret = 'Leaky-Pw-123'

    def boom(params, host=None, port=None):
        raise redis_connection.redis.exceptions.ConnectionError('weird failure with password %s inside' % secret)
    with mock.patch.object(module, 'redis_client', boom):
        res = run_module(module, dict(login_password=secret))
    assert res['reachable'] is False
    assert secret not in json.dumps(res)
    assert redis_connection.SCRUBBED in res['reason']


def test_missing_library_fails(run_module):
    with mock.patch.object(redis_connection, 'HAS_REDIS', False), \
            mock.patch.object(redis_connection, 'REDIS_IMP_ERR', 'Traceback: no redis'):
        res = run_module(module, dict(), expect_fail=True)
    assert res['failed'] is True
    assert 'redis' in res['msg']
    assert res['exception'] == 'Traceback: no redis'


def test_parse_info_raw_text():
    text = ('# Replication\r\nrole:master\r\nconnected_slaves:2\r\n'
            'slave0:ip=10.1.2.4,port=6379,state=online,offset=100,lag=0\r\n'
            'slave1:ip=10.1.2.5,port=6380,state=wait_bgsave,offset=0,lag=7\r\n'
            'master_replid:0123456789012345678901234567890123456789\r\nmaster_repl_offset:120\r\n')
    info = redis_connection.parse_info(text)
    assert info['role'] == 'master'
    assert info['master_replid'] == '0123456789012345678901234567890123456789'
    reps = redis_connection.replicas_from_info(info)
    assert reps == [
        dict(ip='10.1.2.4', port=6379, state='online', offset=100, lag=0),
        dict(ip='10.1.2.5', port=6380, state='wait_bgsave', offset=0, lag=7),
    ]


@pytest.mark.parametrize('text,expected', [
    ('10.0.0.1', ('10.0.0.1', 26379)),
    ('10.0.0.1:26380', ('10.0.0.1', 26380)),
    ('sentinel-a', ('sentinel-a', 26379)),
    ('[::1]:26381', ('::1', 26381)),
    ('[::1]', ('::1', 26379)),
    ('fe80::1', ('fe80::1', 26379)),
])
def test_parse_address(text, expected):
    assert redis_connection.parse_address(text, 26379) == expected


@pytest.mark.parametrize('text', ['host:abc', 'host:0', ':26379', '[::1', 'host:99999'])
def test_parse_address_invalid(text):
    with pytest.raises(ValueError):
        redis_connection.parse_address(text, 26379)


def test_tls_with_ca(tls_server, run_module):
    proc, ca, dummy = tls_server
    res = run_module(module, args_for(proc, tls=True, ca_certs=ca, expected_role='master'))
    assert res['healthy'] is True, res['reason']


def test_tls_untrusted_certificate(tls_server, run_module):
    proc, dummy, other_ca = tls_server
    res = run_module(module, args_for(proc, tls=True, ca_certs=other_ca))
    assert res['reachable'] is False
    assert res['reason'].startswith('TLS error with 127.0.0.1:%d: ' % proc.port)
    assert 'certificate verify failed' in res['reason']
    assert ADMIN_PASSWORD not in json.dumps(res)
    res = run_module(module, args_for(proc, tls=True, ca_certs=other_ca, validate_certs=False))
    assert res['reachable'] is True, res['reason']
