#!/usr/bin/env python3
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, KeyBuzz (@keybuzz)
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Where the time of a hard-kill failover goes, in the container lab (issue 14).

Per trial: SIGKILL of the master's redis-server (systemd restart off) under a write workload
through both HAProxy nodes (SET + WAIT 1 100, retry every 20 ms), and a timeline relative to the
kill, every point seen from this machine:

  sdown / odown          first +sdown / +odown of the master (any Sentinel, Pub/Sub)
  elected                +elected-leader (the leader's own event)
  selected               +selected-slave
  noone_sent             +failover-state-send-slaveof-noone (REPLICAOF NO ONE sent)
  role_master            the chosen replica answers ROLE master (polled every 10 ms)
  promoted               +promoted-slave (the leader saw it in INFO)
  attached               the new master reports a replica online (INFO replication, polled)
  switch / majority      first +switch-master, and a majority of the Sentinels' first ones
  routed                 the last HAProxy watcher whose /metrics names the new master (polled)
  first_write            the first write acknowledged by the new master, through any HAProxy node
  all_writing            the same, through every HAProxy node
  noreplicas             NOREPLICAS errors the clients got (the new master refusing writes until a
                         replica is attached), and the window from the first to the last

The kill falls at a random moment of the Sentinels' INFO period (SENTINEL DEBUG info-period):
when a Sentinel last asked the replicas for INFO decides when it sees the promotion.

The lab is found as in tests/kblab/labctl.py (KB_LAB_INVENTORY / KB_LAB_CREDENTIALS).
Usage: .venv/bin/python bench/failover_timeline.py [--trials 5] [--down-after 5000] [--info-period MS]
"""

from __future__ import absolute_import, division, print_function

import argparse
import os
import re
import statistics
import sys
import threading
import time
import urllib.request


import _paths  # noqa: F401  (tests/ on sys.path)
import lab_bench
from kblab import labctl

POINTS = ('sdown', 'odown', 'elected', 'selected', 'noone_sent', 'role_master', 'promoted', 'attached', 'switch',
          'majority', 'routed', 'first_write', 'all_writing')
EVENTS = {'+sdown': 'sdown', '+odown': 'odown', '+elected-leader': 'elected', '+selected-slave': 'selected',
          '+failover-state-send-slaveof-noone': 'noone_sent', '+promoted-slave': 'promoted', '+switch-master': 'switch'}


class Recorder(object):
    """Threads that record, with this machine's monotonic clock: every Sentinel event (PSUBSCRIBE *),
    each node's ROLE and replicas online, and each watcher's routed master."""

    def __init__(self, lab, sentinels, nodes, interval=0.01):
        self.lab, self.interval = lab, interval
        self.events, self.roles, self.attached, self.routed = [], {}, {}, {}
        self._stop, self._threads, self._ready = threading.Event(), [], []
        for name in sentinels:
            self._spawn(self._sentinel, name)
        for name in nodes:
            self._spawn(self._node, name)
        for proxy in lab.haproxies:
            self._spawn(self._watcher, proxy)
        lab.wait_for('Sentinel subscriptions', lambda: len(self._ready) == len(sentinels), 5)

    def _spawn(self, target, name):
        thread = threading.Thread(target=target, args=(name,), daemon=True)
        self._threads.append(thread)
        thread.start()

    def _sentinel(self, name):
        pubsub = self.lab.sentinel(name, timeout=5).pubsub(ignore_subscribe_messages=True)
        pubsub.psubscribe('*')
        self._ready.append(name)
        while not self._stop.is_set():
            try:
                message = pubsub.get_message(timeout=0.02)
            except Exception:
                break
            if message and message['type'] == 'pmessage':
                self.events.append((time.monotonic(), name, message['channel'], message['data']))
        pubsub.close()

    def _node(self, name):
        client = None
        while not self._stop.is_set():
            try:
                if client is None:
                    client = self.lab.node(name, timeout=0.5)
                role = client.execute_command('ROLE')[0]
                now = time.monotonic()
                if role == 'master':
                    self.roles.setdefault(name, now)
                    info = client.info('replication')
                    if any(isinstance(v, dict) and v.get('state') == 'online' for k, v in info.items() if k.startswith('slave')):
                        self.attached.setdefault(name, time.monotonic())
            except Exception:
                client = None
            self._stop.wait(self.interval)

    def _watcher(self, proxy):
        url = 'http://%s:8406/metrics' % self.lab.ip[proxy]
        while not self._stop.is_set():
            try:
                with urllib.request.urlopen(url, timeout=0.5) as answer:
                    page = answer.read().decode()
                found = re.findall(r'(?m)^keybuzz_watcher_routed_master\{node="([^"]+)"[^}]*\} 1$', page)
                if found:
                    self.routed.setdefault(proxy, {}).setdefault(found[0], time.monotonic())
            except Exception:
                pass
            self._stop.wait(0.02)

    def stop(self):
        self._stop.set()
        for thread in self._threads:
            thread.join(2)


def one_trial(lab):
    old = lab.restore()
    candidates = [n for n in lab.nodes if n != old]
    lab.no_restart(old)
    # Every Sentinel (the one on the killed node's host runs on: only redis-server dies).
    recorder = Recorder(lab, lab.sentinels, candidates)
    work = lab.workload(backoff_min=0.02, backoff_max=0.02, max_seconds=120)
    try:
        work.start()
        lab.wait_for('writes on the master', lambda: work.successes_since(0, node=old), 10)
        t_kill = lab_bench.kill_at_random(lab, old)
        lab.wait_for('writes acknowledged by the new master through every HAProxy node', lambda: all(
            [e for e in work.successes_since(t_kill, endpoint=p) if e['node'] != old] for p in lab.haproxies), 60, 0.02)
        time.sleep(0.5)
    finally:
        work.stop()
        recorder.stop()
    row = dict(old=old)
    for t, sentinel, channel, data in sorted(recorder.events):
        point = EVENTS.get(channel)
        if t >= t_kill and point and point not in row:
            row[point] = t - t_kill
    firsts = {}
    for t, sentinel, channel, data in sorted(recorder.events):
        if channel == '+switch-master' and t >= t_kill:
            firsts.setdefault(sentinel, t)
            row['new'] = lab.name_of('%s:%s' % tuple(data.split()[3:5]))
    need = len(lab.sentinels) // 2 + 1
    if len(firsts) >= need:
        row['majority'] = sorted(firsts.values())[need - 1] - t_kill
    new = row.get('new')
    if new in recorder.roles:
        row['role_master'] = recorder.roles[new] - t_kill
    if new in recorder.attached:
        row['attached'] = recorder.attached[new] - t_kill
    routed = [r[new] for r in recorder.routed.values() if new in r]
    if len(routed) == len(lab.haproxies):
        row['routed'] = max(routed) - t_kill
    per_proxy = [min(e['t'] for e in work.successes_since(t_kill, endpoint=p) if e['node'] != old) for p in lab.haproxies]
    row['first_write'], row['all_writing'] = min(per_proxy) - t_kill, max(per_proxy) - t_kill
    refused = sorted(t for t, _, _, ok, what in work.events if not ok and t >= t_kill and 'NOREPLICAS' in str(what))
    row['noreplicas'] = len(refused)
    row['noreplicas_window'] = (refused[-1] - refused[0]) if refused else 0.0
    lab.restore()  # the old master back (as a replica) before the report reads the final master
    report = lab.report(work)
    row['lost'] = '%d/%d' % (report['missing']['missing_replicated'], report['missing']['missing_master_only'])
    row['two_at_once'] = report['two_nodes_at_once']
    return row


def fmt(value):
    return '-' if value is None else '%.2f' % value


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--trials', type=int, default=5)
    parser.add_argument('--down-after', type=int, default=lab_bench.SHIPPED_DOWN_AFTER)
    parser.add_argument('--info-period', type=int,
                        help='set the Sentinels\' INFO period (ms, SENTINEL DEBUG info-period) for the run, then put back')
    args = parser.parse_args(argv)
    if args.trials < 1:
        parser.error('--trials must be at least 1')
    lab = labctl.Lab()
    print('load average %s' % ' / '.join('%.2f' % v for v in os.getloadavg()), flush=True)
    rows = []
    shipped_period = lab_bench.info_period(lab)
    try:
        lab_bench.set_down_after(lab, args.down_after)
        if args.info_period:
            lab_bench.set_info_period(lab, args.info_period)
        print('Sentinel INFO period %.1f s (the kill falls at a random moment of it)' % lab_bench.info_period(lab),
              flush=True)
        for i in range(args.trials):
            rows.append(one_trial(lab))
            print('  trial %d: %s' % (i + 1, ', '.join('%s %s' % (k, fmt(v) if isinstance(v, float) else v)
                                                      for k, v in rows[-1].items())), flush=True)
    finally:
        lab_bench.set_down_after(lab, lab_bench.SHIPPED_DOWN_AFTER)
        lab_bench.set_info_period(lab, int(shipped_period * 1000))
    print('\n### Hard kill, down-after %d: seconds after the kill (median / min / max of %d)' % (args.down_after, len(rows)))
    print('| point | median | min | max |')
    print('|---|---|---|---|')
    for point in POINTS + ('noreplicas_window',):
        values = [r[point] for r in rows if r.get(point) is not None]
        if values:
            print('| %s | %s | %s | %s |' % (point, fmt(statistics.median(values)), fmt(min(values)), fmt(max(values))))
    print('| NOREPLICAS errors per trial | %s | | |' % ' / '.join(str(r['noreplicas']) for r in rows))
    print('| acknowledged writes lost | %s | | |' % ' / '.join(str(r['lost']) for r in rows))
    print('| two nodes taking writes at once | %s | | |' % ' / '.join('yes' if r['two_at_once'] else 'no' for r in rows))
    print('load average %s' % ' / '.join('%.2f' % v for v in os.getloadavg()))
    return 0


if __name__ == '__main__':
    sys.exit(main())
