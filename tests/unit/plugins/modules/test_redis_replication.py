# -*- coding: utf-8 -*-
# Copyright: (c) 2026, KeyBuzz (@keybuzz)
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""keybuzz.redis_ha.redis_replication against real redis-server and redis-sentinel processes on loopback."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from kblab.processes import (
    ADMIN_PASSWORD, ADMIN_USER, MASTER_NAME, SENTINEL_PASSWORD, admin, free_port, start_server, wait_for,
)
from ansible_collections.keybuzz.redis_ha.plugins.modules import redis_replication as module


@pytest.fixture
def node(tmp_path):
    proc = start_server(tmp_path, 'node')
    yield proc
    proc.stop()


def args_for(proc, master, sentinels=None, **extra):
    args = dict(login_port=proc.port, login_user=ADMIN_USER, login_password=ADMIN_PASSWORD, connect_timeout=2,
                master_host='127.0.0.1', master_port=master.port if hasattr(master, 'port') else master)
    if sentinels is not None:
        args.update(sentinels=['127.0.0.1:%d' % s.port if hasattr(s, 'port') else s for s in sentinels],
                    master_name=MASTER_NAME, sentinel_password=SENTINEL_PASSWORD)
    args.update(extra)
    return args


def role(proc):
    reply = admin(proc).execute_command('ROLE')
    return 'master' if reply[0] == 'master' else 'replica of %s:%s' % (reply[1], reply[2])


def test_a_master_follows_the_master_the_sentinels_name_then_nothing_changes(disposable_cluster, node, run_module):
    master = disposable_cluster.master
    res = run_module(module, args_for(node, master, disposable_cluster.sentinels, _ansible_diff=True))
    assert res['changed'] is True
    assert (res['before'], res['after']) == ('master', 'replica of 127.0.0.1:%d' % master.port)
    assert res['sentinels_named'] == '127.0.0.1:%d' % master.port
    assert res['diff'] == {'before': 'master\n', 'after': 'replica of 127.0.0.1:%d\n' % master.port}
    assert role(node) == 'replica of 127.0.0.1:%d' % master.port
    again = run_module(module, args_for(node, master, disposable_cluster.sentinels))
    assert again['changed'] is False and again['sentinels_named'] is None  # nothing to send: nobody asked


def test_check_mode_reports_and_sends_nothing(disposable_cluster, node, run_module):
    res = run_module(module, args_for(node, disposable_cluster.master, disposable_cluster.sentinels, _ansible_check_mode=True))
    assert res['changed'] is True and res['after'] == 'replica of 127.0.0.1:%d' % disposable_cluster.master.port
    assert role(node) == 'master'


def test_refused_when_a_sentinel_majority_names_another_master(disposable_cluster, node, run_module, tmp_path):
    other = start_server(tmp_path, 'other')
    try:
        res = run_module(module, args_for(node, other, disposable_cluster.sentinels), expect_fail=True)
        assert res['msg'] == ('the master changed since the run started (planned 127.0.0.1:%d, a Sentinel majority now '
                              'names 127.0.0.1:%d): REPLICAOF was not sent to 127.0.0.1:%d (it stays master)'
                              % (other.port, disposable_cluster.master.port, node.port))
        assert res['changed'] is False and res['after'] == res['before'] == 'master'
        assert role(node) == 'master'
    finally:
        other.stop()


def test_no_majority_answering_does_not_block(disposable_cluster, node, run_module):
    """One Sentinel of three answers: no majority names anything, so nothing contradicts the plan."""
    dead = ['127.0.0.1:%d' % free_port(), '127.0.0.1:%d' % free_port()]
    res = run_module(module, args_for(node, disposable_cluster.master, disposable_cluster.sentinels[:1] + dead))
    assert res['changed'] is True and res['sentinels_named'] is None
    wait_for(lambda: role(node) == 'replica of 127.0.0.1:%d' % disposable_cluster.master.port, what='REPLICAOF applied')


def test_errors_fail_with_a_reason_and_no_secret(node, run_module):
    res = run_module(module, args_for(node, node.port), expect_fail=True)
    assert res['msg'] == '127.0.0.1:%d is the master to follow itself: REPLICAOF is for the other nodes' % node.port
    res = run_module(module, args_for(node, 6390, login_password='wrong-Pw-0'), expect_fail=True)
    assert res['msg'].startswith('INFO replication on 127.0.0.1:%d failed: ' % node.port)
    assert 'wrong-Pw-0' not in res['msg'] and ADMIN_PASSWORD not in res['msg']
    res = run_module(module, dict(args_for(node, 6390), sentinels=['127.0.0.1:26379']), expect_fail=True)
    assert res['msg'] == "missing parameter(s) required by 'sentinels': master_name"
    res = run_module(module, dict(args_for(node, 6390), sentinels=['[::1'], master_name=MASTER_NAME), expect_fail=True)
    assert res['msg'].startswith('invalid sentinels entry')
