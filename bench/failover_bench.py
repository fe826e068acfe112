#!/usr/bin/env python3
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, KeyBuzz (@keybuzz)
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Hard-kill failover benchmark on loopback: Sentinel time, HAProxy share, write unavailability.

Builds the loopback lab of tests/kblab/loopback.py (3 redis-server, 3 redis-sentinel, haproxy
from the role template) and runs the role's watcher as its own process. Per trial: a workload
writes through HAProxy (SET + WAIT 1 100), the master is SIGKILLed and stays dead until the new
master takes writes, then it is restarted as a replica of the new master (as the collection's
start-up guard does) and the lab settles before the next trial.

Measured per trial (monotonic clock, seconds):
  kill -> switch   kill to the first +switch-master published by any Sentinel
  proxy share      that +switch-master to the first write acknowledged by the new master through HAProxy
  unavailable      last write acknowledged before the kill to the first one after it (the workload's view)

Usage: .venv/bin/python bench/failover_bench.py [--trials 5] [--down-after 5000 --down-after 2000]
       [--checks-only-trials 3] [--failover-timeout 10000] [--max-seconds 300]
"""

from __future__ import absolute_import, division, print_function

import argparse
import shutil
import sys
import tempfile
import time

import _paths  # noqa: F401  (tests/ on sys.path)
from kblab import loopback as lb
from kblab import workload as wl


def one_trial(lab, deadline, threads=2, interval=0.01, wait_ms=100):
    old = lb.wait_settled(lab, timeout=max(5, min(40, deadline - time.monotonic())))
    listener = lb.SwitchListener(lab)
    names = dict((('127.0.0.1', p.port), n) for n, p in lab.nodes.items())
    work = wl.Workload([wl.Endpoint('haproxy', '127.0.0.1', lab.frontend_port)], lb.DEFAULT_PASSWORD,
                       threads=threads, interval=interval, wait_ms=wait_ms, max_seconds=90, node_names=names,
                       # Retry every 20 ms while HAProxy refuses: the client's back-off adds at most
                       # 20 ms to the measured proxy share (HAProxy rejects at once, so this is cheap).
                       backoff_min=0.02, backoff_max=0.02)
    new = None
    try:
        work.start()
        lb.wait_for(lambda: work.successes_since(0, node=old), timeout=5, what='writes on the master')
        time.sleep(1.0)
        t_kill = time.monotonic()
        lb.kill(lab.nodes[old])
        lb.wait_for(lambda: [e for e in work.successes_since(t_kill) if e['node'] != old], timeout=40,
                    interval=0.02, what='a write acknowledged by a new master')
        time.sleep(0.5)
    finally:
        work.stop()
        listener.stop()
    first_new, new = first_write_elsewhere(work, t_kill, old)
    live = [n for n in lab.nodes if n != old]
    report = work.build_report(final_master=lb.admin(lab.nodes[new]), nodes=lb.node_specs(lab, live),
                               sentinels=lb.sentinel_specs(lab), master_name=lb.MASTER_NAME)
    lb.restart_as_replica(lab.nodes[old], lab.nodes[new].port)
    return trial_row(work, report, old, t_kill, listener.first(), listener.majority(len(lab.sentinels)))


def first_write_elsewhere(work, t_kill, old):
    """(time, node) of the first write acknowledged after the kill by a node other than ``old``."""
    after = [e for e in work.successes_since(t_kill) if e['node'] != old]
    first = min(after, key=lambda e: e['t'])
    return first['t'], first['node']


def trial_row(work, report, old, t_kill, t_switch, t_majority):
    """One hard-kill trial: Sentinel's and the proxy's shares, the outage, the workload's verdict."""
    first_new, new = first_write_elsewhere(work, t_kill, old)
    # The longest gap between acknowledged writes that ends after the kill and no later than the
    # new master's first write (a reply already on its way when SIGKILL landed may follow t_kill).
    ok = sorted(e[0] for e in work.events if e[3] and e[0] <= first_new)
    gaps = [(b - a) for a, b in zip(ok, ok[1:]) if b >= t_kill]
    return dict(old=old, new=new,
                kill_to_switch=(t_switch - t_kill) if t_switch else None,
                proxy_share=(first_new - t_switch) if t_switch else None,
                switch_to_majority=(t_majority - t_switch) if t_majority and t_switch else None,
                majority_to_write=(first_new - t_majority) if t_majority else None,
                kill_to_first_write=first_new - t_kill,
                unavailable=max(gaps) if gaps else None,
                acked=report['writes_acked'], replicated=report['writes_replicated'],
                lost_replicated=report['missing']['missing_replicated'],
                lost_master_only=report['missing']['missing_master_only'] + report['missing']['missing_unknown'],
                single_master=report['agreement']['single_master'],
                two_at_once=report['two_nodes_at_once'], failures=report['failures'])


def fmt(value, spec='%.3f'):
    return '-' if value is None else spec % value


def print_trials(title, rows):
    print('\n### %s' % title)
    print('| # | old -> new | kill->switch | proxy share | of which: switch->majority / majority->write |'
          ' kill->1st write | unavailable | acked (>=1 replica) | lost acked (replica / master-only) | one master |'
          ' 2 nodes at once |')
    print('|---|---|---|---|---|---|---|---|---|---|---|')
    for i, r in enumerate(rows, 1):
        print('| %d | %s -> %s | %s | %s | %s / %s | %s | %s | %d (%d) | %d / %d | %s | %s |' % (
            i, r['old'], r['new'], fmt(r['kill_to_switch']), fmt(r['proxy_share']), fmt(r['switch_to_majority']),
            fmt(r['majority_to_write']), fmt(r['kill_to_first_write']),
            fmt(r['unavailable']), r['acked'], r['replicated'], r['lost_replicated'], r['lost_master_only'],
            'yes' if r['single_master'] else 'NO', 'YES' if r['two_at_once'] else 'no'))


def summarize(label, down_after, rows):
    def stats(key):
        values = [r[key] for r in rows if r[key] is not None]
        return (lb.median(values), max(values)) if values else (None, None)
    out = dict(label=label, down_after=down_after, trials=len(rows))
    for key in ('kill_to_switch', 'proxy_share', 'switch_to_majority', 'majority_to_write', 'unavailable'):
        out[key] = stats(key)
    out['lost_replicated'] = sum(r['lost_replicated'] for r in rows)
    out['lost_master_only'] = sum(r['lost_master_only'] for r in rows)
    out['acked'] = sum(r['acked'] for r in rows)
    out['two_at_once'] = sum(1 for r in rows if r['two_at_once'])
    return out


def run_set(lab, label, down_after, trials, deadline, rows_out):
    rows = []
    for i in range(trials):
        if time.monotonic() > deadline - 15:
            print('(time budget reached: %d of %d trials of "%s")' % (i, trials, label))
            break
        try:
            rows.append(one_trial(lab, deadline))
            r = rows[-1]
            print('  %s trial %d: kill->switch %s, proxy share %s, unavailable %s' % (
                label, i + 1, fmt(r['kill_to_switch']), fmt(r['proxy_share']), fmt(r['unavailable'])), flush=True)
        except AssertionError as exc:
            print('  %s trial %d FAILED: %s' % (label, i + 1, exc), flush=True)
            for name, proc in lab.nodes.items():  # bring a killed node back before going on
                if not lb.alive(proc):
                    master = lab.majority_master()
                    if master and master != name:
                        lb.restart_as_replica(proc, lab.nodes[master].port)
    rows_out.append((label, down_after, rows))
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--trials', type=int, default=5)
    parser.add_argument('--down-after', type=int, action='append',
                        help='down-after-milliseconds, repeatable (default: 5000 and 2000)')
    parser.add_argument('--checks-only-trials', type=int, default=3,
                        help='trials without the watcher (HAProxy checks only) at the last down-after; 0 = none')
    parser.add_argument('--failover-timeout', type=int, default=10000)
    parser.add_argument('--max-seconds', type=float, default=300, help='bound on the whole run')
    args = parser.parse_args(argv)
    down_afters = args.down_after or [5000, 2000]
    deadline = time.monotonic() + args.max_seconds
    started = time.monotonic()
    sets = []
    print('machine: %s' % lb.machine())
    for index, down_after in enumerate(down_afters):
        if time.monotonic() > deadline - 20:
            break
        workdir = tempfile.mkdtemp(prefix='kb-failover-bench-')
        lab = None
        try:
            lab = lb.Lab(workdir, down_after_ms=down_after, failover_timeout_ms=args.failover_timeout)
            lb.wait_for(lambda: lab.health_status() == 200, timeout=15, what='a routable master')
            watcher = lb.WatcherProcess(lab)
            try:
                run_set(lab, 'watcher, down-after %d' % down_after, down_after, args.trials, deadline, sets)
            finally:
                watcher.stop()
            if args.checks_only_trials and index == len(down_afters) - 1:
                run_set(lab, 'checks only, down-after %d' % down_after, down_after, args.checks_only_trials,
                        deadline, sets)
        finally:
            if lab is not None:
                lab.stop()
            shutil.rmtree(workdir, ignore_errors=True)
    for label, down_after, rows in sets:
        print_trials(label, rows)
    print('\n### Summary (seconds; median / max)')
    print('| set | trials | kill -> +switch-master | +switch-master -> 1st write (proxy share) |'
          ' 1st +switch-master -> Sentinel majority | majority -> 1st write |'
          ' write unavailability | target unavailability median | lost acked (replica / master-only) of acked |'
          ' 2 nodes at once |')
    print('|---|---|---|---|---|---|---|---|---|---|')
    for label, down_after, rows in sets:
        s = summarize(label, down_after, rows)
        print('| %s | %d | %s / %s | %s / %s | %s / %s | %s / %s | %s / %s | <= %.1f | %d / %d of %d | %d |' % (
            label, s['trials'], fmt(s['kill_to_switch'][0], '%.2f'), fmt(s['kill_to_switch'][1], '%.2f'),
            fmt(s['proxy_share'][0]), fmt(s['proxy_share'][1]), fmt(s['switch_to_majority'][0]),
            fmt(s['switch_to_majority'][1]), fmt(s['majority_to_write'][0]), fmt(s['majority_to_write'][1]),
            fmt(s['unavailable'][0], '%.2f'),
            fmt(s['unavailable'][1], '%.2f'), down_after / 1000.0 + 1.5, s['lost_replicated'],
            s['lost_master_only'], s['acked'], s['two_at_once']))
    print('\ntotal run time: %.0f s' % (time.monotonic() - started))
    return 0


if __name__ == '__main__':
    sys.exit(main())
