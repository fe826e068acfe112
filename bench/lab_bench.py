#!/usr/bin/env python3
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, KeyBuzz (@keybuzz)
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Benchmarks against the five-container lab (a converged Molecule ``default`` scenario).

failover    hard kill of the master (SIGKILL, systemd restart off) at a random moment of the
            Sentinels' INFO period (it decides when the leader sees the promotion), per trial: kill -> first
            +switch-master (Sentinel's share), +switch-master -> first write acknowledged by the
            new master through HAProxy (the proxy's share, watcher running), and the workload's
            write-unavailability window; at each --down-after (SENTINEL SET at run time, the
            shipped 5000 restored at the end).
throughput  redis-benchmark from this machine: directly to the master vs through haproxy-01,
            SET/GET -c 50 with and without -P 16, alternating rounds, ratio of medians. Uses a
            temporary ACL user (random password, deleted at the end): no lab password on a
            command line.

The lab is found as in tests/kblab/labctl.py (KB_LAB_INVENTORY / KB_LAB_CREDENTIALS).
Usage: .venv/bin/python bench/lab_bench.py [failover|throughput|all] [--trials 5]
       [--down-after 5000 --down-after 2000] [--rounds 3]
"""

from __future__ import absolute_import, division, print_function

import argparse
import os
import random
import secrets
import sys
import time


import _paths  # noqa: F401  (tests/ on sys.path)
import failover_bench as fb
import throughput_bench as tb
from kblab import labctl
from kblab import loopback as lb

SHIPPED_DOWN_AFTER = 5000


def set_down_after(lab, ms):
    for name in lab.sentinels:
        client = lab.sentinel(name)
        client.execute_command('SENTINEL', 'SET', lab.master_name, 'down-after-milliseconds', str(ms))
        client.close()


def info_period(lab):
    """The Sentinels' INFO period in seconds (SENTINEL DEBUG; each must report the same)."""
    periods = set()
    for name in lab.sentinels:
        reply = lab.sentinel(name).execute_command('SENTINEL', 'DEBUG')
        fields = dict(zip([str(k).upper() for k in reply[0::2]], reply[1::2]))
        periods.add(int(fields['INFO-PERIOD']))
    if len(periods) != 1:
        raise SystemExit('the Sentinels report different INFO periods: %s' % sorted(periods))
    return periods.pop() / 1000.0


def set_info_period(lab, ms):
    for name in lab.sentinels:
        lab.sentinel(name).execute_command('SENTINEL', 'DEBUG', 'info-period', str(ms))


def kill_at_random(lab, old):
    """SIGKILL ``old`` at a random moment of the Sentinels' INFO period (1 s at least after the
    workload's first write on it): a kill timed from the last trial's end would always fall at the
    same moment of that period. Returns the kill's monotonic time."""
    time.sleep(1.0 + random.uniform(0, info_period(lab)))
    return lab.kill(old)


def one_trial(lab):
    old = lab.restore()
    survivors = [s for s in lab.sentinels if s != old]
    lab.no_restart(old)
    listener = lb.SwitchListener(None, clients=dict((name, lambda name=name: lab.sentinel(name, timeout=5))
                                                  for name in survivors))
    # Retry every 20 ms while HAProxy refuses: the client's back-off adds at most 20 ms.
    work = lab.workload(backoff_min=0.02, backoff_max=0.02, max_seconds=120)
    try:
        work.start()
        lab.wait_for('writes on the master', lambda: work.successes_since(0, node=old), 10)
        t_kill = kill_at_random(lab, old)
        lab.wait_for('a write acknowledged by a new master',
                     lambda: [e for e in work.successes_since(t_kill) if e['node'] != old], 60, 0.02)
        time.sleep(0.5)
    finally:
        work.stop()
        listener.stop()
    t_switch, t_majority = listener.first(), listener.majority(len(lab.sentinels))
    lab.restore()  # the old master back (as a replica) before the agreement check
    return fb.trial_row(work, lab.report(work), old, t_kill, t_switch, t_majority)


def failover(lab, trials, down_afters):
    sets = []
    try:
        for down_after in down_afters:
            set_down_after(lab, down_after)
            rows = []
            for i in range(trials):
                rows.append(one_trial(lab))
                r = rows[-1]
                print('  down-after %d trial %d: %s -> %s, kill->switch %s, proxy share %s, unavailable %s' % (
                    down_after, i + 1, r['old'], r['new'], fb.fmt(r['kill_to_switch']), fb.fmt(r['proxy_share']),
                    fb.fmt(r['unavailable'])), flush=True)
            sets.append(('lab, watcher, down-after %d' % down_after, down_after, rows))
    finally:
        set_down_after(lab, SHIPPED_DOWN_AFTER)
    for label, _, rows in sets:
        fb.print_trials(label, rows)
    print('\n### Summary (seconds; median / max)')
    print('| set | trials | kill -> +switch-master | proxy share | write unavailability | target (down-after + 1.5) |'
          ' lost acked (replica / master-only) of acked | 2 nodes at once |')
    print('|---|---|---|---|---|---|---|---|')
    for label, down_after, rows in sets:
        s = fb.summarize(label, down_after, rows)
        print('| %s | %d | %s / %s | %s / %s | %s / %s | <= %.1f | %d / %d of %d | %d |' % (
            label, s['trials'], fb.fmt(s['kill_to_switch'][0], '%.2f'), fb.fmt(s['kill_to_switch'][1], '%.2f'),
            fb.fmt(s['proxy_share'][0]), fb.fmt(s['proxy_share'][1]), fb.fmt(s['unavailable'][0], '%.2f'),
            fb.fmt(s['unavailable'][1], '%.2f'), down_after / 1000.0 + 1.5, s['lost_replicated'],
            s['lost_master_only'], s['acked'], s['two_at_once']))


def throughput(lab, rounds, requests, pipelined_requests, clients):
    master = lab.restore()
    user, password = 'kb-bench-%s' % secrets.token_hex(3), secrets.token_urlsafe(24)
    admin = lab.node(master)
    admin.execute_command('ACL', 'SETUSER', user, 'on', '>' + password, '~kb:bench:*', '~key:*', '+@all', '-@dangerous')
    proxy = lab.haproxies[0]
    targets = [('direct', (lab.ip[master], 6379)), ('haproxy', (lab.ip[proxy], 6379))]
    try:
        print('master %s (%s), through %s (%s)' % (master, lab.ip[master], proxy, lab.ip[proxy]))
        results = tb.run_rounds(targets, rounds, requests, pipelined_requests, clients, password=password, user=user)
    finally:
        admin.execute_command('ACL', 'DELUSER', user)
        admin.close()
    tb.print_table('redis-benchmark -c %d from the host, median of %d rounds' % (clients, rounds), results)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('what', nargs='?', choices=('failover', 'throughput', 'all'), default='all')
    parser.add_argument('--trials', type=int, default=5)
    parser.add_argument('--down-after', type=int, action='append', help='repeatable (default: 5000 and 2000)')
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--requests', type=int, default=100000)
    parser.add_argument('--pipelined-requests', type=int, default=400000)
    parser.add_argument('--clients', type=int, default=50)
    args = parser.parse_args(argv)
    started = time.monotonic()
    lab = labctl.Lab()
    print('machine: %s' % lb.machine())
    print('load average at start: %.2f %.2f %.2f (other work on the machine skews the figures)' % os.getloadavg())
    if args.what in ('failover', 'all'):
        failover(lab, args.trials, args.down_after or [SHIPPED_DOWN_AFTER, 2000])
    if args.what in ('throughput', 'all'):
        throughput(lab, args.rounds, args.requests, args.pipelined_requests, args.clients)
    lab.restore()
    print('load average at the end: %.2f %.2f %.2f' % os.getloadavg())
    print('\ntotal run time: %.0f s' % (time.monotonic() - started))
    return 0


if __name__ == '__main__':
    sys.exit(main())
