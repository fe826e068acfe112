# -*- coding: utf-8 -*-
# Copyright: (c) 2026, KeyBuzz (@keybuzz)
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""tests/kblab/workload.py: the write-workload checker's report, against a real loopback lab.

Pure report functions first, then a lab (tests/kblab/loopback.py: 3 Redis nodes, 3 Sentinels
with down-after 5000 ms, two HAProxy processes from the role template = two endpoints).
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import time

import pytest

from kblab.processes import ADMIN_PASSWORD, ADMIN_USER, DEFAULT_PASSWORD, MASTER_NAME, SENTINEL_PASSWORD, free_port, wait_for
from kblab import workload as wl
from kblab.loopback import HAProxy, Lab, admin, render

SECRETS = (DEFAULT_PASSWORD, ADMIN_PASSWORD, SENTINEL_PASSWORD)


def entry(endpoint, thread, node, t, replicas=1, key=None):
    return dict(endpoint=endpoint, thread=thread, node=node, t=t, replicas=replicas, key=key or 'k%s' % t,
                value=None, seq=0)


# --- pure functions ----------------------------------------------------------------------------

def test_routing_conflicts_need_overlapping_runs_on_different_nodes():
    # ep1 moves from n1 to n2 at t=5; ep2 follows at t=6: no overlap, no conflict.
    ledger = [entry('ep1', 0, 'n1', t) for t in (1, 2, 3, 4)] + [entry('ep1', 0, 'n2', t) for t in (5, 6, 7)]
    ledger += [entry('ep2', 0, 'n1', t) for t in (1.5, 2.5, 4.5)] + [entry('ep2', 0, 'n2', t) for t in (6.5, 7.5)]
    assert wl.routing_conflicts(ledger) == []
    # ep2 still writes to n1 at 5.5, after ep1 reached n2 at 5: two masters took writes at once.
    ledger.append(entry('ep2', 0, 'n1', 5.5))
    conflicts = wl.routing_conflicts(ledger)
    assert len(conflicts) == 1
    assert conflicts[0]['cross_endpoint'] and conflicts[0]['nodes'] == ['n1', 'n2']
    assert conflicts[0]['start'] == 5 and conflicts[0]['end'] == 5.5
    # Two connections of the same endpoint on different nodes count too (not cross-endpoint).
    same = [entry('ep1', 0, 'n1', t) for t in (1, 3)] + [entry('ep1', 1, 'n2', 2)]
    assert [c['cross_endpoint'] for c in wl.routing_conflicts(same)] == [False]


def test_unavailability_windows():
    events = [(t, 'a', 0, True, 'n1') for t in (0.1, 0.2, 0.3, 2.3, 2.4)]
    events += [(1.0, 'a', 0, False, 'ConnectionError'), (0.5, 'b', 0, True, 'n1'), (2.0, 'b', 0, True, 'n1')]
    result = wl.unavailability(events, started=0.0, stopped=2.5, threshold=0.25)
    assert result['per_endpoint']['a']['longest'] == pytest.approx(2.0)
    assert (result['per_endpoint']['a']['start'], result['per_endpoint']['a']['end']) == (0.3, 2.3)
    assert result['per_endpoint']['a']['failures'] == 1
    assert result['per_endpoint']['b']['longest'] == pytest.approx(1.5)
    # Overall: some endpoint wrote at 0.5 and 2.0, so the longest gap is 0.5 -> 2.0.
    assert result['overall']['longest'] == pytest.approx(1.5)
    assert wl.window_containing(events, 1.0) == (0.5, 2.0)
    assert wl.window_containing(events, 1.0, endpoint='a') == (0.3, 2.3)


# --- the loopback lab --------------------------------------------------------------------------

class TwoEndpointLab(object):
    def __init__(self, workdir):
        self.lab = Lab(workdir, down_after_ms=5000, failover_timeout_ms=10000)
        self.second = None
        try:
            second_dir = os.path.join(str(workdir), 'haproxy-2')
            os.makedirs(second_dir)
            self.port2 = free_port()
            variables = self.lab.template_variables(
                haproxy_redis_frontend_port=self.port2, haproxy_redis_health_port=free_port(),
                haproxy_redis_stats_port=free_port(), haproxy_redis_admin_socket=os.path.join(second_dir, 'admin.sock'))
            self.second = HAProxy(second_dir, render('haproxy.cfg.j2', **variables))
            self.second.start(variables['haproxy_redis_admin_socket'])
        except Exception:
            self.stop()
            raise

    def endpoints(self):
        return [wl.Endpoint('haproxy-1', '127.0.0.1', self.lab.frontend_port),
                wl.Endpoint('haproxy-2', '127.0.0.1', self.port2)]

    def names(self):
        return dict((('127.0.0.1', p.port), n) for n, p in self.lab.nodes.items())

    def node_specs(self):
        return [dict(name=n, host='127.0.0.1', port=p.port, username=ADMIN_USER, password=ADMIN_PASSWORD)
                for n, p in self.lab.nodes.items()]

    def sentinel_specs(self):
        return [dict(name=n, host='127.0.0.1', port=p.port, password=SENTINEL_PASSWORD)
                for n, p in self.lab.sentinels.items()]

    def master(self):
        return self.lab.majority_master()

    def stop(self):
        if self.second is not None:
            self.second.stop()
        self.lab.stop()


@pytest.fixture(scope='module')
def lab2(tmp_path_factory):
    obj = TwoEndpointLab(tmp_path_factory.mktemp('workload_lab'))
    try:
        # Both HAProxy route nothing during their start-up grace (2.5 s): wait for a write through each.
        for ep in obj.endpoints():
            wait_for(lambda: wl._redis(ep.host, ep.port, DEFAULT_PASSWORD, timeout=0.5).set('kb:ready', 1),
                     timeout=15, interval=0.2, what='a write through %s' % ep.name)
        yield obj
    finally:
        obj.stop()


@pytest.fixture(scope='module')
def steady_run(lab2):
    work = wl.Workload(lab2.endpoints(), DEFAULT_PASSWORD, threads=2, interval=0.005, wait_ms=100,
                       node_names=lab2.names(), max_seconds=10)
    work.run_for(1.5)
    return work


def test_steady_writes_through_two_endpoints(lab2, steady_run, capsys):
    master = lab2.master()
    report = steady_run.build_report(final_master=admin(lab2.lab.nodes[master]), nodes=lab2.node_specs(),
                                     sentinels=lab2.sentinel_specs(), master_name=MASTER_NAME)
    text = wl.format_report(report)
    print(text)
    assert report['writes_acked'] > 50
    # Both replicas are online: every write reached at least one replica within WAIT's 100 ms.
    assert report['writes_replicated'] == report['writes_acked']
    assert report['failures'] == 0
    assert report['nodes_served'] == [master]
    assert set(e['endpoint'] for e in steady_run.ledger) == {'haproxy-1', 'haproxy-2'}
    assert report['missing'] == dict(checked=report['writes_acked'], missing_replicated=0, missing_master_only=0,
                                     missing_unknown=0, examples=[])
    agreement = report['agreement']
    assert agreement['single_master'] and agreement['master'] == '127.0.0.1:%d' % lab2.lab.nodes[master].port
    assert set(agreement['sentinels'].values()) == {agreement['master']}
    assert not report['two_nodes_at_once'] and report['routing_conflicts'] == []
    assert report['unavailability']['overall']['longest'] < 0.5
    for name in ('haproxy-1', 'haproxy-2'):
        assert report['unavailability']['per_endpoint'][name]['successes'] > 20
    for secret in SECRETS:
        assert secret not in text and secret not in repr(report)


def test_lost_acknowledged_writes_are_counted_by_category(lab2, steady_run):
    master = admin(lab2.lab.nodes[lab2.master()])
    ledger = [dict(e) for e in steady_run.ledger]
    replicated = [e for e in ledger if e['replicas'] >= 1]
    # Simulate a write acknowledged by a replica that the final master lacks...
    lost = replicated[len(replicated) // 2]
    assert master.delete(lost['key']) == 1
    # ...and one the master alone acknowledged (WAIT answered 0): allowed by asynchronous replication.
    alone = replicated[-1]
    alone['replicas'] = 0
    assert master.delete(alone['key']) == 1
    report = wl.build_report(ledger, list(steady_run.events), final_master=master)
    missing = report['missing']
    assert (missing['missing_replicated'], missing['missing_master_only'], missing['missing_unknown']) == (1, 1, 0)
    assert [x['key'] for x in missing['examples']] == sorted([lost['key'], alone['key']],
                                                             key=lambda k: [e['key'] for e in ledger].index(k))
    assert 'acked by a replica' in wl.format_report(report)


def test_lost_list_element_is_reported_in_rpush_mode(lab2):
    work = wl.Workload(lab2.endpoints()[:1], DEFAULT_PASSWORD, threads=2, interval=0.005, mode='rpush',
                       node_names=lab2.names(), max_seconds=10)
    work.run_for(0.5)
    master = admin(lab2.lab.nodes[lab2.master()])
    assert work.build_report(final_master=master)['missing']['missing_replicated'] == 0
    victim = work.ledger[len(work.ledger) // 2]
    assert master.lrem(victim['key'], 1, victim['value']) == 1
    missing = work.build_report(final_master=master)['missing']
    assert missing['missing_replicated'] == 1 and missing['examples'][0]['key'] == victim['key']


def test_unavailability_of_a_paused_master(lab2):
    master = lab2.master()
    proc = lab2.lab.nodes[master]
    work = wl.Workload(lab2.endpoints(), DEFAULT_PASSWORD, threads=2, interval=0.01, wait_ms=100,
                       node_names=lab2.names(), max_seconds=15)
    work.start()
    try:
        wait_for(lambda: len(work.successes_since(0)) > 20, timeout=5, what='steady writes')
        t_pause = time.monotonic()
        proc.pause()  # SIGSTOP: down-after is 5000 ms, no failover; writes hang
        time.sleep(1.5)
        proc.resume()
        # Bounded: HAProxy may have marked the node down (check timeout 1 s); rise 1 brings it back.
        wait_for(lambda: work.successes_since(time.monotonic() - 0.2), timeout=8, interval=0.05,
                 what='writes after the pause')
        time.sleep(0.3)
    finally:
        proc.resume()
        work.stop()
    report = work.build_report(final_master=admin(proc))
    longest = report['unavailability']['overall']
    print(wl.format_report(report))
    assert 1.0 <= longest['longest'] <= 5.0, longest
    assert longest['start'] <= t_pause + 0.1 and longest['end'] >= t_pause + 1.0
    for name in ('haproxy-1', 'haproxy-2'):
        assert 1.0 <= report['unavailability']['per_endpoint'][name]['longest'] <= 5.0
    before, after = wl.window_containing(work.events, t_pause + 0.05)
    assert after - before == pytest.approx(longest['longest'])
    assert report['nodes_served'] == [master] and lab2.master() == master
    assert not report['two_nodes_at_once']
    assert report['missing']['missing_replicated'] == 0
