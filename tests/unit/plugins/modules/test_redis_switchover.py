# -*- coding: utf-8 -*-
# Copyright: (c) 2026, KeyBuzz (@keybuzz)
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""keybuzz.redis_ha.redis_switchover against real redis-server and redis-sentinel processes on loopback:
the shared, undisturbed cluster for what changes nothing, a cluster of this file's own for what does."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest
import redis

from kblab.processes import ADMIN_PASSWORD, ADMIN_USER, MASTER_NAME, SENTINEL_PASSWORD, admin, sentinel_cluster, wait_for
from ansible_collections.keybuzz.redis_ha.plugins.modules import redis_switchover as module


def addr(proc):
    return '127.0.0.1:%d' % proc.port


def args_for(cluster, master, target, **extra):
    args = dict(master=addr(master), target=addr(target), master_name=MASTER_NAME,
                replicas=[addr(p) for p in [cluster.master] + cluster.replicas if p is not master],
                sentinels=[addr(s) for s in cluster.sentinels], login_user=ADMIN_USER, login_password=ADMIN_PASSWORD,
                sentinel_password=SENTINEL_PASSWORD, connect_timeout=2)
    args.update(extra)
    return args


def priorities(procs):
    return [admin(p).config_get('replica-priority')['replica-priority'] for p in procs]


def role(proc):
    return admin(proc).execute_command('ROLE')[0]


def set_info_period(cluster, ms):
    for sentinel in cluster.sentinels:
        sentinel.client(password=SENTINEL_PASSWORD).execute_command('SENTINEL', 'DEBUG', 'info-period', str(ms))


@pytest.fixture(scope='module')
def own_cluster(tmp_path_factory):
    """Master, two replicas and three Sentinels that the tests of this file switch over."""
    with sentinel_cluster(tmp_path_factory.mktemp('switchover'), 2, down_after_ms=5000) as obj:
        yield obj


def test_a_stale_master_is_refused_before_anything_changes(cluster, run_module):
    """A plan whose master is no longer the one a Sentinel majority names (a failover since the play
    read it) is refused before anything changes."""
    stale, target = cluster.replicas  # the play "read" replica0 as the master
    before = priorities(cluster.replicas)
    res = run_module(module, args_for(cluster, stale, target), expect_fail=True)
    assert res['failed'] and res['changed'] is False
    assert ('the master changed since the run started (planned 127.0.0.1:%d, a Sentinel majority now names '
            '127.0.0.1:%d): nothing was switched over' % (stale.port, cluster.master.port)) in res['msg']
    assert res['priorities_changed'] == {}
    assert priorities(cluster.replicas) == before
    assert role(cluster.master) == 'master'
    # the same plan in check mode is refused the same way
    res = run_module(module, args_for(cluster, stale, target, _ansible_check_mode=True), expect_fail=True)
    assert 'nothing was switched over' in res['msg'] and res['changed'] is False


def test_check_mode_reports_the_plan_and_changes_nothing(cluster, run_module):
    target, other = cluster.replicas
    before = priorities(cluster.replicas)
    offset = int(admin(cluster.master).info('replication')['master_repl_offset'])
    res = run_module(module, args_for(cluster, cluster.master, target, _ansible_check_mode=True))
    assert res['changed'] is False
    assert res['sentinels_named'] == addr(cluster.master)
    assert res['priorities_changed'] == {addr(other): [int(before[1]), 0]}
    assert res['priorities_restored'] is True and res['timings_ms'] == {}
    assert 'sentinel' not in res and 'offset' not in res
    assert priorities(cluster.replicas) == before
    assert [role(p) for p in [cluster.master] + cluster.replicas] == ['master', 'slave', 'slave']
    assert int(admin(cluster.master).info('replication')['master_repl_offset']) >= offset
    assert admin(cluster.master).set('kb:switchover:check', 'written')  # not paused


def test_argument_errors(cluster, run_module):
    master, target = cluster.master, cluster.replicas[0]
    res = run_module(module, args_for(cluster, master, master), expect_fail=True)
    assert res['msg'] == 'target 127.0.0.1:%d is the master itself' % master.port
    res = run_module(module, args_for(cluster, master, target, replicas=[addr(master), addr(target)]), expect_fail=True)
    assert res['msg'] == 'master 127.0.0.1:%d is among the replicas' % master.port
    res = run_module(module, args_for(cluster, master, target, sentinels=['[::1']), expect_fail=True)
    assert res['msg'].startswith('invalid sentinels entry: ')
    res = run_module(module, args_for(cluster, master, target, info_aim_ms=1000, catchup_timeout=0), expect_fail=True)
    assert res['msg'] == ('catchup_timeout must be above 0 (got 0.0); '
                          'info_aim_ms must be between 100 and 900 (got 1000)')
    # The pause must outlast the catch-up and the promotion: else the old master takes writes again too early.
    res = run_module(module, args_for(cluster, master, target, pause_ms=5000), expect_fail=True)
    assert res['msg'] == ('pause_ms (5000) must cover catchup_timeout + switch_timeout (9000 ms): else the old '
                          'master takes writes again before the target is promoted')
    args = args_for(cluster, master, target)
    del args['master_name']
    res = run_module(module, args, expect_fail=True)
    assert res['msg'] == 'missing required arguments: master_name'


def test_a_failure_names_the_step_and_the_node_never_the_password(cluster, run_module):
    master, target = cluster.master, cluster.replicas[0]
    before = priorities(cluster.replicas)
    res = run_module(module, args_for(cluster, master, target, login_password='wrong-Pw-0'), expect_fail=True)
    assert res['msg'].startswith('switchover 127.0.0.1:%d -> 127.0.0.1:%d: step "CONFIG GET replica-priority" '
                                 'failed on 127.0.0.1:%d: authentication failed on 127.0.0.1:%d'
                                 % (master.port, target.port, target.port, target.port)), res['msg']
    assert res['msg'].endswith('(replica-priority changed {}, restored: yes; timings so far in ms {})')
    assert res['step'] == 'CONFIG GET replica-priority' and res['changed'] is False
    assert res['error'].startswith('authentication failed on 127.0.0.1:%d' % target.port)
    assert 'wrong-Pw-0' not in str(res) and ADMIN_PASSWORD not in str(res) and SENTINEL_PASSWORD not in str(res)
    assert priorities(cluster.replicas) == before and role(master) == 'master'


def test_priorities_are_restored_when_no_sentinel_reports_them_in_time(own_cluster, run_module):
    """Sentinel refreshes a replica's INFO every 10 s: within 1 ms none reports the new priorities."""
    master, (target, other) = own_cluster.master, own_cluster.replicas
    before = priorities(own_cluster.replicas)
    res = run_module(module, args_for(own_cluster, master, target, priority_timeout=0.001), expect_fail=True)
    assert res['step'] == 'wait for a Sentinel to report the new replica priorities'
    assert ('step "wait for a Sentinel to report the new replica priorities" failed: no Sentinel reported the new '
            'replica priorities within 0.001s (replica-priority changed {\'127.0.0.1:%d\': [%s, 0]}, restored: yes; '
            'timings so far in ms {})' % (other.port, before[1])) in res['msg'], res['msg']
    assert res['changed'] is False and res['priorities_restored'] is True
    assert priorities(own_cluster.replicas) == before
    assert role(master) == 'master'
    assert admin(master).set('kb:switchover:after-failure', 'written')  # never paused


def test_a_failure_after_the_pause_unpauses_the_master_and_restores_the_priorities(own_cluster, run_module, monkeypatch):
    """The target stops answering once the master is paused: the master is unpaused (still master, writes
    go through), the priorities are restored, and the failure names the step and the node."""
    master, (target, other) = own_cluster.master, own_cluster.replicas
    before = priorities(own_cluster.replicas)
    real = module.info_replication

    def target_times_out(client):
        if client.connection_pool.connection_kwargs['port'] == target.port:
            raise redis.exceptions.TimeoutError('Timeout reading from socket')
        return real(client)
    monkeypatch.setattr(module, 'info_replication', target_times_out)
    res = run_module(module, args_for(own_cluster, master, target, align_timeout=0.5), expect_fail=True)
    assert res['step'] == 'wait for the target to catch up with the master' and res['changed'] is True
    assert res['error'] == ('timeout talking to 127.0.0.1:%d: no answer within the connect_timeout; the old master '
                            'was unpaused' % target.port)
    assert res['msg'].startswith('switchover 127.0.0.1:%d -> 127.0.0.1:%d: step "wait for the target to catch up with '
                                 'the master" failed on 127.0.0.1:%d: ' % (master.port, target.port, target.port))
    assert 'master_paused' in res['timings_ms'] and 'pause_to_caught_up' not in res['timings_ms']
    assert res['priorities_changed'] == {addr(other): [int(before[1]), 0]} and res['priorities_restored'] is True
    assert priorities(own_cluster.replicas) == before
    assert role(master) == 'master' and role(target) == 'slave'
    assert admin(master, socket_timeout=1).set('kb:switchover:after-pause', 'written')  # unpaused


def test_switchover_promotes_the_target_without_losing_a_write(own_cluster, run_module):
    master, (target, other) = own_cluster.master, own_cluster.replicas
    before = priorities(own_cluster.replicas)
    admin(master).set('kb:switchover:acked', 'before')
    # The Sentinels ask for INFO every second for this test (10 s otherwise): the module finds a reply
    # to align with within align_timeout.
    set_info_period(own_cluster, 1000)
    try:
        res = run_module(module, args_for(own_cluster, master, target, align_timeout=3))
    finally:
        set_info_period(own_cluster, 10000)
    assert res['changed'] is True
    assert (res['old_master'], res['target']) == (addr(master), addr(target))
    assert res['priorities_changed'] == {addr(other): [int(before[1]), 0]} and res['priorities_restored'] is True
    assert res['sentinel'] in [addr(s) for s in own_cluster.sentinels]
    # aligned: SENTINEL FAILOVER sent the default aim (700 ms) after the Sentinel's last INFO from the target,
    # plus the check and the pause in between, before that INFO is a second old
    assert 700 <= res['info_age_at_failover_ms'] < 1000, res['info_age_at_failover_ms']
    assert res['offset'] >= 0 and res['sentinels_named'] == addr(master)
    assert set(res['timings_ms']) == set(name for name, a, b in module.TIMINGS)
    assert 0 < res['timings_ms']['master_paused'] < 10000
    assert role(target) == 'master' and role(master) == 'slave'
    assert admin(target).get('kb:switchover:acked') == 'before'
    assert priorities(own_cluster.replicas) == before
    wait_for(lambda: admin(target).info('replication').get('connected_slaves') == 2, timeout=30,
             what='both other nodes to follow the new master')
    assert admin(target).set('kb:switchover:acked', 'after')
