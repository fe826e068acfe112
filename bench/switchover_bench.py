#!/usr/bin/env python3
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, KeyBuzz (@keybuzz)
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Planned-switchover benchmark against a deployed lab: write pause and acknowledged writes lost.

Per trial: the workload (bench/workload.py: SET + WAIT 1 100, 2 threads per endpoint) writes
through every HAProxy node; after 2 s of writes playbooks/switchover.yml runs (or the playbook
given with --playbook, e.g. playbooks/rolling_restart.yml); 2 s after it ends the workload stops
and every acknowledged write is looked up on the final master (then the workload's keys are deleted).

Reported per trial: old -> new master, playbook duration, the playbook's own "master paused" and
"pause -> Sentinel majority" (ms), the longest write unavailability per HAProxy endpoint (last
acknowledged write before a gap to the first one after it, as a client of that endpoint sees it)
and overall (no endpoint acknowledged anything), acknowledged writes and how many are missing
from the final master; then median / max over the trials.

The lab is given by its inventory directory and the credentials file written by the
keybuzz.redis_ha.redis_credentials role (KEY=value lines; read here, never printed):

    .venv/bin/python bench/switchover_bench.py --inventory <inventory dir> --credentials <redis.env> [--trials 5]
    (or KB_INVENTORY / KB_CREDENTIALS in the environment)

Needs ansible-playbook and ansible-inventory on PATH (the repository's .venv) and the
collection installed (ANSIBLE_COLLECTIONS_PATH); the controller must reach the private IPs.
"""

from __future__ import absolute_import, division, print_function

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

import _paths  # noqa: F401  (tests/ on sys.path)
from kblab import workload

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def read_credentials(path):
    creds = {}
    with open(path) as handle:
        for line in handle:
            match = re.match(r'^([A-Z][A-Z0-9_]*)=(.*)$', line.rstrip('\n'))
            if match:
                creds[match.group(1)] = match.group(2)
    return creds


def read_inventory(inventory):
    out = subprocess.run(['ansible-inventory', '-i', inventory, '--list'], check=True, capture_output=True,
                         text=True).stdout
    data = json.loads(out)
    hostvars = data.get('_meta', {}).get('hostvars', {})

    def group(name):
        hosts = list(data.get(name, {}).get('hosts', []))
        for child in data.get(name, {}).get('children', []):
            hosts += [h for h in group(child) if h not in hosts]
        return hosts
    ip = dict((h, v.get('redis_ha_private_ip')) for h, v in hostvars.items())
    return dict(redis=[(h, ip[h]) for h in sorted(group('redis'))],
                sentinels=[(h, ip[h]) for h in sorted(group('redis_sentinel'))],
                haproxy=[(h, ip[h]) for h in sorted(group('haproxy'))])


def one_trial(args, lab, creds, index, logdir):
    nodes = [dict(name=n, host=a, port=6379, username=creds['REDIS_ADMIN_USER'], password=creds['REDIS_ADMIN_PASSWORD'])
             for n, a in lab['redis']]
    sentinels = [dict(name=n, host=a, port=26379, password=creds['SENTINEL_PASSWORD']) for n, a in lab['sentinels']]
    by_addr = dict(('%s:6379' % a, n) for n, a in lab['redis'])
    before = workload.master_agreement(nodes, sentinels, creds.get('REDIS_MASTER_NAME', 'kb-redis-master'))
    if not before['single_master']:
        raise SystemExit('trial %d: the lab has no single agreed master before the run: %s' % (index, before))
    work = workload.Workload([workload.Endpoint(n, a, 6379) for n, a in lab['haproxy']], creds['REDIS_PASSWORD'],
                             threads=args.threads, interval=0.01, wait_ms=100, max_seconds=args.max_seconds,
                             node_names=workload.node_run_ids(nodes), backoff_min=0.02, backoff_max=0.05)
    log = os.path.join(logdir, 'trial-%d.log' % index)
    work.start()
    try:
        time.sleep(2.0)
        t0 = time.monotonic()
        with open(log, 'w') as handle:
            rc = subprocess.call(['ansible-playbook', '-i', args.inventory, args.playbook] + args.extra,
                                 stdout=handle, stderr=subprocess.STDOUT, cwd=ROOT)
        t1 = time.monotonic()
        time.sleep(2.0)
    finally:
        work.stop()
    after = workload.master_agreement(nodes, sentinels, creds.get('REDIS_MASTER_NAME', 'kb-redis-master'))
    final = None
    if after['master']:
        host, port = workload.parse_address(after['master'])
        final = workload._redis(host, port, creds['REDIS_ADMIN_PASSWORD'], creds['REDIS_ADMIN_USER'], 5.0)
    report = work.build_report(final_master=final)
    missing = report.get('missing', {})
    if final is not None:  # the workload's keys have no TTL: remove them from the lab
        keys = sorted(set(e['key'] for e in work.ledger))
        for i in range(0, len(keys), 1000):
            final.unlink(*keys[i:i + 1000])
    text = open(log).read()
    paused = re.search(r'master writes paused ([\d.]+)\s+ms', text)
    majority = re.search(r'Sentinel majority\s+on\s+the\s+target\s+([\d.]+)\s+ms', re.sub(r'\s+', ' ', text))
    per_ep = dict((name, w['longest']) for name, w in report['unavailability']['per_endpoint'].items())
    # Only windows inside the playbook run count (plus 1 s either side); the run starts and ends with writes.
    return dict(trial=index, rc=rc, log=log,
                old=by_addr.get(before['master'], before['master']), new=by_addr.get(after['master'], after['master']),
                single_master_after=after['single_master'], playbook_s=t1 - t0,
                paused_ms=float(paused.group(1)) if paused else None,
                majority_ms=float(majority.group(1)) if majority else None,
                unavail_endpoint=max(per_ep.values()) if per_ep else None, per_endpoint=per_ep,
                unavail_overall=report['unavailability']['overall']['longest'],
                acked=report['writes_acked'], replicated=report['writes_replicated'],
                lost=(missing.get('missing_replicated', 0) + missing.get('missing_master_only', 0)
                      + missing.get('missing_unknown', 0)) if missing else None,
                lost_replicated=missing.get('missing_replicated'), two_at_once=report['two_nodes_at_once'],
                errors=report['error_classes'])


def fmt(value, spec='%.3f'):
    return '-' if value is None else spec % value


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--inventory', default=os.environ.get('KB_INVENTORY'),
                        help='inventory directory (or KB_INVENTORY)')
    parser.add_argument('--credentials', default=os.environ.get('KB_CREDENTIALS'),
                        help='redis.env written by the redis_credentials role (or KB_CREDENTIALS)')
    parser.add_argument('--trials', type=int, default=5)
    parser.add_argument('--threads', type=int, default=2, help='writer threads per HAProxy endpoint')
    parser.add_argument('--playbook', default='playbooks/switchover.yml')
    parser.add_argument('--max-seconds', type=float, default=900, help='hard bound on one trial\'s workload')
    parser.add_argument('-e', '--extra-vars', action='append', default=[], help='passed to ansible-playbook as -e')
    parser.add_argument('--tls-ca-file', help='TLS lab (redis_ha_tls): the CA to verify with (ca.crt next to redis.env); '
                                              'the playbooks then run with -e redis_ha_tls=true')
    args = parser.parse_args(argv)
    if not args.inventory or not args.credentials:
        parser.error('--inventory and --credentials (or KB_INVENTORY and KB_CREDENTIALS) are required')
    args.extra = [x for e in args.extra_vars for x in ('-e', e)]
    workload.set_tls(args.tls_ca_file)
    if args.tls_ca_file:
        args.extra += ['-e', '{"redis_ha_tls": true}']
    creds = read_credentials(args.credentials)
    lab = read_inventory(args.inventory)
    logdir = tempfile.mkdtemp(prefix='kb-switchover-bench-')
    print('lab: redis %s, haproxy %s; playbook %s; %d trial(s); logs in %s' % (
        ', '.join('%s=%s' % x for x in lab['redis']), ', '.join('%s=%s' % x for x in lab['haproxy']),
        args.playbook, args.trials, logdir))
    rows = []
    for i in range(1, args.trials + 1):
        row = one_trial(args, lab, creds, i, logdir)
        rows.append(row)
        print('trial %d done: rc=%d %s -> %s, unavailability %.3f s, lost %s of %d acked' % (
            i, row['rc'], row['old'], row['new'], row['unavail_endpoint'] or 0, row['lost'], row['acked']), flush=True)
        if row['rc'] != 0:
            print('playbook failed, see %s' % row['log'])
            break
        time.sleep(3.0)
    head = ('trial', 'old -> new', 'playbook s', 'paused ms', 'majority ms', 'unavail/endpoint s', 'unavail all s',
            'acked', 'lost', 'two masters', 'errors')
    print('\n| ' + ' | '.join(head) + ' |')
    print('|' + '---|' * len(head))
    for r in rows:
        print('| %d | %s -> %s | %.1f | %s | %s | %s | %s | %d | %s | %s | %s |' % (
            r['trial'], r['old'], r['new'], r['playbook_s'], fmt(r['paused_ms'], '%.0f'), fmt(r['majority_ms'], '%.0f'),
            ' / '.join('%.3f' % v for _, v in sorted(r['per_endpoint'].items())), fmt(r['unavail_overall']),
            r['acked'], r['lost'], 'YES' if r['two_at_once'] else 'no',
            ' '.join('%s=%d' % kv for kv in sorted(r['errors'].items())) or '-'))
    ok = [r for r in rows if r['rc'] == 0]
    if ok:
        worst = [r['unavail_endpoint'] for r in ok]
        print('\nunavailability (worst endpoint): median %.3f s, max %.3f s; acknowledged writes lost: %d of %d '
              '(%s per trial); playbook failures: %d' % (
                  statistics.median(worst), max(worst), sum(r['lost'] or 0 for r in ok), sum(r['acked'] for r in ok),
                  ', '.join(str(r['lost']) for r in ok), len(rows) - len(ok)))
    bad = any(r['rc'] != 0 or r['lost'] or r['two_at_once'] or not r['single_master_after'] for r in rows)
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
