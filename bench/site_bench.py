#!/usr/bin/env python3
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, KeyBuzz (@keybuzz)
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""How long site.yml takes on the five-container lab, median of --trials runs.

rerun     an idempotent re-run of playbooks/site.yml on the converged lab (KB_LAB_INVENTORY, as in
          tests/kblab/labctl.py), the way the lab suite runs it (pipelining on); each run must end
          with changed=0, else the figure is refused.
converge  the first converge, container creation included: ``molecule destroy``, then the time of
          ``molecule create`` + ``molecule converge`` of the default scenario (the lab is left
          converged, with new credentials: export the new KB_LAB_* before other lab tools).

Prints one Markdown table (trial seconds, median, tasks executed per host in the last run).
Usage: .venv/bin/python bench/site_bench.py [rerun|converge|all] [--trials 3]
"""

from __future__ import absolute_import, division, print_function

import argparse
import glob
import os
import re
import statistics
import subprocess
import sys
import time


import _paths  # noqa: F401  (tests/ on sys.path)
from kblab import labctl

REPO = labctl.REPO

RECAP = re.compile(r'^(\S+)\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)', re.M)


def recap(text):
    return dict((m.group(1), tuple(int(x) for x in m.groups()[1:])) for m in RECAP.finditer(text))


def timed(cmd, env=None):
    start = time.monotonic()
    proc = subprocess.run(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True)
    seconds = time.monotonic() - start
    if proc.returncode != 0:
        sys.exit('%s failed (exit %d):\n%s' % (' '.join(cmd), proc.returncode, proc.stdout[-3000:]))
    return seconds, re.sub(r'\x1b\[[0-9;]*m', '', proc.stdout)


def rerun(trials):
    lab = labctl.Lab()
    lab.steady()
    out, last = [], {}
    for _ in range(trials):
        seconds, text = timed(['ansible-playbook', '-i', lab.inventory, os.path.join(REPO, 'playbooks', 'site.yml')],
                              env=labctl.ansible_env())
        last = recap(text)
        changed = dict((h, r[1]) for h, r in last.items() if r[1] or r[2] or r[3])
        if changed or not last:
            sys.exit('the re-run was not idempotent (host: changed): %s' % (changed or 'no recap'))
        out.append(seconds)
    return out, last


def converge(trials):
    env = dict(labctl.ansible_env())
    env.pop('ANSIBLE_CONFIG', None)  # Molecule sets its own
    out, last = [], {}
    for _ in range(trials):
        timed(['molecule', 'destroy', '-s', 'default'], env=env)
        create, _ = timed(['molecule', 'create', '-s', 'default'], env=env)
        run, text = timed(['molecule', 'converge', '-s', 'default'], env=env)
        last = recap(text)
        out.append(create + run)
    return out, last


def row(name, seconds, last):
    tasks = ', '.join('%s %d' % (h, r[0]) for h, r in sorted(last.items()))
    return '| %s | %s | **%.1f** | %s |' % (name, ' / '.join('%.1f' % s for s in seconds),
                                            statistics.median(seconds), tasks)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('what', nargs='?', default='all', choices=['rerun', 'converge', 'all'])
    parser.add_argument('--trials', type=int, default=3)
    args = parser.parse_args()
    load = os.getloadavg()
    rows = []
    if args.what in ('rerun', 'all'):
        rows.append(row('idempotent re-run of site.yml (changed=0)', *rerun(args.trials)))
    if args.what in ('converge', 'all'):
        rows.append(row('first converge (molecule create + converge)', *converge(args.trials)))
        fresh = sorted(glob.glob(os.path.expanduser('~/.ansible/tmp/molecule.*.default')), key=os.path.getmtime)
        print('The lab was re-created: its inventory and credentials are now under %s' % (fresh[-1:] or ['?'])[0])
    print('\nLoad average at the start %.2f / %.2f / %.2f, at the end %.2f / %.2f / %.2f; %d CPUs\n'
          % (load + os.getloadavg() + (os.cpu_count(),)))
    print('| run | seconds per trial | median | tasks ok per host (last trial) |')
    print('|---|---|---|---|')
    print('\n'.join(rows))


if __name__ == '__main__':
    main()
