# -*- coding: utf-8 -*-
# Copyright: (c) 2026, KeyBuzz (@keybuzz)
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Restarts that site.yml performs on a running group take one node at a time, and the next only
once the previous one is healthy from the outside (role keybuzz.redis_ha.rolling_restart).

Here: the HAProxy unit drop-in changes on both nodes (what a collection upgrade that changes it
does), first written by a run that fails before applying it. A restart of an HAProxy node turns its clients away for a couple of seconds (a started
HAProxy routes nothing until its checks ran); the other node must serve throughout, so that a
client behind the load balancer never sees both down."""

from __future__ import absolute_import, division, print_function

import time

from kblab.labctl import assert_invariants, assert_no_secret, recap

DROPIN = '/etc/systemd/system/haproxy.service.d/keybuzz-redis.conf'
FAIL_DIR = '/run/systemd/system/haproxy-redis-watcher.service.d'
PENDING = '/run/keybuzz-haproxy-redis-pending.json'  # roles/haproxy_redis/vars/main.yml
# Longest stretch in which NO HAProxy node acknowledged a write (both writers together). A restart
# of one node alone shows as ~2.5 s on that node's writer; both down together showed as 1.6 s.
NO_OUTAGE = 0.5


def test_haproxy_dropin_change_restarts_one_node_at_a_time(steady_lab):
    lab = steady_lab
    master = lab.steady()
    before = lab.pids()
    for proxy in lab.haproxies:
        lab.sh(proxy, "echo '# changed by test_rolling (a collection upgrade)' >> %s" % DROPIN)
    # A run that writes the files but fails before it restarts (here: the watcher cannot start, so
    # run.yml fails before the restarts; in real life any failure or a Ctrl-C in between) leaves a
    # note: the next run still restarts.
    for proxy in lab.haproxies:
        lab.sh(proxy, 'mkdir -p %s && printf "[Service]\\nExecStartPre=/bin/false\\n" > %s/zz-test.conf && '
                      'systemctl daemon-reload && systemctl stop haproxy-redis-watcher.service' % (FAIL_DIR, FAIL_DIR))
    try:
        failed = lab.playbook('site.yml')
    finally:
        for proxy in lab.haproxies:
            lab.sh(proxy, 'rm -rf %s && systemctl daemon-reload' % FAIL_DIR)
    assert failed.returncode != 0 and 'Enable and start the Sentinel watcher' in failed.stdout, failed.stdout[-3000:]
    haproxy_pids = dict((unit, pid) for unit, pid in before.items() if unit.endswith('/haproxy'))
    assert dict((unit, lab.pids()[unit]) for unit in haproxy_pids) == haproxy_pids, 'the failed run restarted HAProxy'
    for proxy in lab.haproxies:
        assert lab.sh(proxy, 'cat %s' % PENDING).strip() == '["restart"]'
    work = lab.workload().start()
    time.sleep(1)
    result = lab.playbook('site.yml')
    time.sleep(1)
    report = lab.finish(work, 'site.yml restarting both HAProxy nodes (changed unit drop-in)',
                        dict(recap=recap(result)))
    assert result.returncode == 0, result.stdout[-3000:]
    after = lab.pids()
    # (The watchers were stopped by the failed run's set-up, and started again by this one.)
    restarted = sorted(unit for unit in before if before[unit] != after[unit] and not unit.endswith('-watcher'))
    assert restarted == sorted('%s/haproxy' % p for p in lab.haproxies), 'restarted: %s' % restarted
    for proxy in lab.haproxies:
        assert 'changed by test_rolling' not in lab.sh(proxy, 'cat %s' % DROPIN), 'the drop-in was not put back'
        assert lab.sh(proxy, 'test -e %s && echo left || true' % PENDING).strip() == '', 'the note was not removed'
    unavailability = report['unavailability']
    # Each node did turn its clients away for a moment (else this test proves nothing)...
    for proxy in lab.haproxies:
        assert unavailability['per_endpoint'][proxy]['longest'] > NO_OUTAGE, (
            '%s never stopped serving: was it restarted? %s' % (proxy, unavailability['per_endpoint']))
    # ... but never both at once.
    longest = unavailability['overall']['longest']
    assert longest < NO_OUTAGE, ('no HAProxy node acknowledged a write for %.2f s: both were restarted together'
                                 % longest)
    assert lab.steady(60) == master
    assert_invariants(report)
    assert_no_secret(lab, result.stdout)


SENTINEL_UNIT = '/etc/systemd/system/redis-sentinel.service'
SENTINEL_NOTE = '/run/keybuzz-redis-sentinel-restart'  # roles/redis_sentinel/vars/main.yml
SENTINEL_FAIL_DIR = '/run/systemd/system/redis-sentinel.service.d'


def test_sentinel_restarts_wait_for_a_whole_group(steady_lab):
    """Sentinels whose unit changed restart one at a time, and not at all while another Sentinel is
    down (restarting one more would leave no majority): site.yml stops before any restart and says
    why; the restarts stay due (a note on each host) and the next run, with the group whole again,
    does them."""
    lab = steady_lab
    master = lab.steady()
    down, others = lab.sentinels[-1], lab.sentinels[:-1]
    before = lab.pids()
    for sentinel in lab.sentinels:
        lab.sh(sentinel, "echo '# changed by test_rolling' >> %s" % SENTINEL_UNIT)
    lab.sh(down, 'mkdir -p %s && printf "[Service]\\nExecStartPre=/bin/false\\n" > %s/zz-test.conf && '
                 'systemctl daemon-reload && systemctl stop redis-sentinel.service' % (SENTINEL_FAIL_DIR, SENTINEL_FAIL_DIR))
    try:
        refused = lab.playbook('site.yml', '-e', 'redis_sentinel_health_retries=3')
    finally:
        lab.sh(down, 'rm -rf %s && systemctl daemon-reload' % SENTINEL_FAIL_DIR)
    assert refused.returncode != 0, refused.stdout[-3000:]
    assert 'Before any restart (Sentinel), the Sentinels did not all answer and agree' in refused.stdout, refused.stdout[-3000:]
    now = lab.pids()
    for sentinel in others:
        unit = '%s/redis-sentinel' % sentinel
        assert now[unit] == before[unit], '%s restarted while %s was down' % (unit, down)
        assert lab.sh(sentinel, 'cat %s' % SENTINEL_NOTE).strip() == 'restart'
    result = lab.playbook('site.yml')
    assert result.returncode == 0, result.stdout[-3000:]
    after = lab.pids()
    for sentinel in others:
        unit = '%s/redis-sentinel' % sentinel
        assert after[unit] != before[unit], '%s was not restarted by the next run' % unit
        assert lab.sh(sentinel, 'test -e %s && echo left || true' % SENTINEL_NOTE).strip() == '', 'note left'
    assert after['%s/redis-sentinel' % down] > 0
    assert [u for u in before if not u.endswith('/redis-sentinel') and before[u] != after[u]] == []
    assert lab.steady(60) == master
    assert_no_secret(lab, refused.stdout + result.stdout)
