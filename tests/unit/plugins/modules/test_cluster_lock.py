# -*- coding: utf-8 -*-
# Copyright: (c) 2026, KeyBuzz (@keybuzz)
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""cluster_lock: one lock host's record (module), on a temporary directory; and the whole lock
(role, action plugin, filter) through real ansible-playbook runs on three local "lock hosts"."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import multiprocessing
import os
import stat
import subprocess
import sys
import time

import kblab  # makes the collection importable
from ansible_collections.keybuzz.redis_ha.plugins.action import cluster_lock as action
from ansible_collections.keybuzz.redis_ha.plugins.modules import cluster_lock as module

REPO = kblab.REPO_ROOT


def args(tmp, run_id, **kw):
    base = dict(path=str(tmp / 'lock' / 'cluster.lock'), id=run_id, holder='alice@bastion', controller='bastion',
                pid=4242, purpose='site.yml', ttl=600)
    base.update(kw)
    return base


def record(tmp):
    with open(str(tmp / 'lock' / 'cluster.lock')) as handle:
        return json.load(handle)


def test_take_renew_give_back(tmp_path, run_module):
    first = run_module(module, args(tmp_path, 'run-a'))
    assert first['action'] == 'acquire' and first['previous'] is None
    on_disk = record(tmp_path)
    assert on_disk['id'] == 'run-a' and on_disk['purpose'] == 'site.yml' and on_disk['expires'] - on_disk['started'] == 600
    assert stat.S_IMODE(os.stat(str(tmp_path / 'lock' / 'cluster.lock')).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(str(tmp_path / 'lock')).st_mode) == 0o700

    again = run_module(module, args(tmp_path, 'run-a', ttl=900))
    assert again['action'] == 'renew'
    assert record(tmp_path)['started'] == on_disk['started'] and record(tmp_path)['ttl'] == 900

    gone = run_module(module, args(tmp_path, 'run-a', state='absent'))
    assert gone['action'] == 'release' and not os.path.exists(str(tmp_path / 'lock' / 'cluster.lock'))
    assert run_module(module, args(tmp_path, 'run-a', state='absent'))['action'] == 'none'


def test_another_run_is_refused_and_cannot_give_it_back(tmp_path, run_module):
    run_module(module, args(tmp_path, 'run-a'))
    refused = run_module(module, args(tmp_path, 'run-b', holder='bob@laptop'))
    assert refused['action'] == 'refuse' and refused['changed'] is False
    assert 'site.yml run by alice@bastion (pid 4242)' in refused['why'] and 'lock id run-a' in refused['why']
    assert run_module(module, args(tmp_path, 'run-b', state='absent'))['action'] == 'none'
    assert record(tmp_path)['id'] == 'run-a'


def test_break_replaces_only_the_named_lock(tmp_path, run_module):
    run_module(module, args(tmp_path, 'run-a'))
    assert run_module(module, args(tmp_path, 'run-b', take_over='run-x'))['action'] == 'refuse'
    broken = run_module(module, args(tmp_path, 'run-b', take_over='run-a'))
    assert broken['action'] == 'take_over' and 'broken on request' in broken['why']
    assert record(tmp_path)['id'] == 'run-b' and 'lock id run-a' in record(tmp_path)['took_over']


def test_run_over_takes_over_only_the_record_it_names(tmp_path, run_module):
    run_module(module, args(tmp_path, 'run-a'))
    assert run_module(module, args(tmp_path, 'run-b', take_over='run-x', reason='run_over'))['action'] == 'refuse'
    over = run_module(module, args(tmp_path, 'run-b', take_over='run-a', reason='run_over'))
    assert over['action'] == 'take_over' and 'is over' in over['why']


def test_an_expired_lock_is_taken_over(tmp_path, run_module):
    run_module(module, args(tmp_path, 'run-a'))
    data = record(tmp_path)
    data['expires'] = data['started'] - 1
    with open(str(tmp_path / 'lock' / 'cluster.lock'), 'w') as handle:
        json.dump(data, handle)
    taken = run_module(module, args(tmp_path, 'run-b'))
    assert taken['action'] == 'take_over' and 'expired' in taken['why']


def test_an_unreadable_record_is_taken_over_and_named(tmp_path, run_module):
    (tmp_path / 'lock').mkdir()
    (tmp_path / 'lock' / 'cluster.lock').write_text('{"id": "run-a", "expi')
    taken = run_module(module, args(tmp_path, 'run-b'))
    assert taken['action'] == 'take_over' and 'unreadable lock record' in taken['why']
    assert record(tmp_path)['id'] == 'run-b'


def test_check_mode_decides_without_writing(tmp_path, run_module):
    first = run_module(module, dict(args(tmp_path, 'run-a'), _ansible_check_mode=True))
    assert first['action'] == 'acquire' and not os.path.exists(str(tmp_path / 'lock'))
    run_module(module, args(tmp_path, 'run-a'))
    refused = run_module(module, dict(args(tmp_path, 'run-b'), _ansible_check_mode=True))
    assert refused['action'] == 'refuse'


def test_a_stuck_holder_of_the_guard_makes_this_host_fail_not_hang(tmp_path, run_module):
    (tmp_path / 'lock').mkdir()
    guard = str(tmp_path / 'lock' / 'cluster.lock.flock')
    holder = subprocess.Popen([sys.executable, '-c', 'import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_CREAT | os.O_RDWR); '
                               'fcntl.flock(fd, fcntl.LOCK_EX); time.sleep(60)', guard])
    try:
        time.sleep(0.3)
        started = time.monotonic()
        failed = run_module(module, args(tmp_path, 'run-a', wait=1), expect_fail=True)
        assert time.monotonic() - started < 5
        assert 'another process has held %s for more than 1.0 s' % guard in failed['msg']
    finally:
        holder.kill()
        holder.wait()
    assert run_module(module, args(tmp_path, 'run-a', wait=1))['action'] == 'acquire'


def test_a_bad_ttl_is_named(tmp_path, run_module):
    failed = run_module(module, args(tmp_path, 'run-a', ttl=0), expect_fail=True)
    assert 'ttl is 0' in failed['msg']


def _contender(path, run_id, barrier, out):
    barrier.wait()
    params = dict(path=path, state='present', id=run_id, holder='h', controller='c', pid=1, pid_start='',
                  purpose='race', ttl=600, take_over=None, reason='break', wait=10)
    out.put((run_id, module.run(params, False)['action']))


def test_runs_racing_for_one_host_get_it_once(tmp_path):
    # Twelve processes released together: the flock serialises read-decide-write, one acquires.
    path = str(tmp_path / 'lock' / 'cluster.lock')
    ctx = multiprocessing.get_context('fork')
    barrier, out = ctx.Barrier(12), ctx.Queue()
    procs = [ctx.Process(target=_contender, args=(path, 'run-%d' % i, barrier, out)) for i in range(12)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(30)
    actions = sorted(out.get(timeout=5) for _ in procs)
    winners = [run_id for run_id, act in actions if act == 'acquire']
    assert len(winners) == 1 and [act for _, act in actions].count('refuse') == 11, actions
    assert json.load(open(path))['id'] == winners[0]


def test_a_process_is_alive_only_with_its_start_time():
    me = os.getpid()
    start = action.process_start(me)
    assert start and action.process_alive(me, start)
    assert not action.process_alive(me, str(int(start) + 1))  # the pid was reused by another process
    done = subprocess.Popen([sys.executable, '-c', 'pass'])
    done.wait()
    assert not action.process_alive(done.pid, '')
    assert not action.process_alive(0, '') and not action.process_alive('x', '')
