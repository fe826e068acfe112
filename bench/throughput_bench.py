#!/usr/bin/env python3
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, KeyBuzz (@keybuzz)
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Throughput through HAProxy vs directly to the master, on the loopback lab, same run.

redis-benchmark SET/GET, -c 50, without and with -P 16. Runs alternate (direct, HAProxy, direct,
HAProxy, ...) over --rounds rounds and the median requests/s of each is printed with the ratio.

Usage: .venv/bin/python bench/throughput_bench.py [--rounds 3] [--requests 100000]
       [--pipelined-requests 400000]
"""

from __future__ import absolute_import, division, print_function

import argparse
import csv
import io
import shutil
import subprocess
import sys
import tempfile
import time

import _paths  # noqa: F401  (tests/ on sys.path)
from kblab import loopback as lb

REDIS_BENCHMARK = shutil.which('redis-benchmark') or '/usr/bin/redis-benchmark'


def benchmark(port, requests, pipeline, clients=50, timeout=120, host='127.0.0.1', password=None, user=None):
    """{test: requests/s} from redis-benchmark --csv."""
    # The password given with -a is a throwaway: the loopback lab's test password
    # (tests/kblab/processes.py), or a temporary user bench/lab_bench.py creates and deletes.
    # Never pass a real password on a command line (other users can read it in the process list).
    cmd = [REDIS_BENCHMARK, '-h', host, '-p', str(port), '-a', password or lb.DEFAULT_PASSWORD,
           '-c', str(clients), '-n', str(requests), '-P', str(pipeline), '-t', 'set,get', '-r', '100000', '--csv']
    if user:
        cmd[5:5] = ['--user', user]
    out = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=timeout)
    if out.returncode != 0:  # report without the command line (it holds the password)
        raise RuntimeError('redis-benchmark exit %d: %s %s' % (out.returncode, out.stdout[-300:], out.stderr[-300:]))
    rows = list(csv.reader(io.StringIO(out.stdout)))
    result = {}
    for row in rows[1:]:
        if len(row) >= 2:
            result[row[0]] = float(row[1])
    if not result:
        raise RuntimeError('redis-benchmark gave no result (exit %d)' % out.returncode)
    return result


def run_rounds(targets, rounds, requests, pipelined_requests, clients, **bench_kwargs):
    """Alternating rounds over ``targets`` [(name, (host, port))]: {(pipeline, name, test): [rps]}."""
    results = {}
    for rnd in range(rounds):
        for pipeline, n in ((1, requests), (16, pipelined_requests)):
            for target, (host, port) in (targets if rnd % 2 == 0 else targets[::-1]):
                for test, rps in benchmark(port, n, pipeline, clients, host=host, **bench_kwargs).items():
                    results.setdefault((pipeline, target, test), []).append(rps)
                print('  round %d -P %-2d %-7s %s' % (rnd + 1, pipeline, target, ', '.join(
                    '%s %.0f' % (t, results[(pipeline, target, t)][-1]) for t in ('SET', 'GET'))), flush=True)
    return results


def print_table(title, results):
    print('\n### %s (requests/s)' % title)
    print('| test | pipeline | direct to master | through HAProxy | HAProxy / direct |')
    print('|---|---|---|---|---|')
    for pipeline in (1, 16):
        for test in ('SET', 'GET'):
            direct = lb.median(results.get((pipeline, 'direct', test), []))
            proxied = lb.median(results.get((pipeline, 'haproxy', test), []))
            print('| %s | %s | %.0f | %.0f | %.2f |' % (test, '-P 16' if pipeline == 16 else 'none', direct, proxied,
                                                       proxied / direct if direct else float('nan')))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--requests', type=int, default=100000, help='-n without pipelining')
    parser.add_argument('--pipelined-requests', type=int, default=400000, help='-n with -P 16')
    parser.add_argument('--clients', type=int, default=50)
    args = parser.parse_args(argv)
    started = time.monotonic()
    workdir = tempfile.mkdtemp(prefix='kb-throughput-bench-')
    lab = None
    results = {}  # (pipeline, target, test) -> [rps]
    try:
        lab = lb.Lab(workdir, down_after_ms=5000, failover_timeout_ms=10000)
        lb.wait_for(lambda: lab.health_status() == 200, timeout=15, what='a routable master')
        master = lb.wait_settled(lab)
        targets = [('direct', ('127.0.0.1', lab.nodes[master].port)), ('haproxy', ('127.0.0.1', lab.frontend_port))]
        print('machine: %s' % lb.machine())
        print('master %s, HAProxy frontend 127.0.0.1:%d (checks running, watcher not running)' % (
            master, lab.frontend_port))
        results = run_rounds(targets, args.rounds, args.requests, args.pipelined_requests, args.clients)
    finally:
        if lab is not None:
            lab.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    print_table('redis-benchmark -c %d, median of %d rounds' % (args.clients, args.rounds), results)
    print('\ntotal run time: %.0f s' % (time.monotonic() - started))
    return 0


if __name__ == '__main__':
    sys.exit(main())
