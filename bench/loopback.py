# -*- coding: utf-8 -*-
# Copyright: (c) 2026, KeyBuzz (@keybuzz)
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Thin wrappers around tests/unit/lab_processes.py for the benchmarks (loopback only).

The lab's credentials are throwaway test passwords (tests/unit/conftest.py), valid only for
processes started on 127.0.0.1 for the duration of one run.
"""

from __future__ import absolute_import, division, print_function

import json
import os
import re
import signal
import statistics
import subprocess
import sys
import threading
import time

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(BENCH_DIR)
UNIT_DIR = os.path.join(REPO_ROOT, 'tests', 'unit')
for _path in (UNIT_DIR, BENCH_DIR):
    if _path not in sys.path:
        sys.path.insert(0, _path)

import conftest  # noqa: E402
from conftest import (ADMIN_PASSWORD, ADMIN_USER, DEFAULT_PASSWORD, MASTER_NAME, SENTINEL_PASSWORD,  # noqa: E402,F401
                      admin, wait_for)
from lab_processes import WATCHER_FILE, Lab, sentinel_client, sentinel_master  # noqa: E402,F401

import workload as wl  # noqa: E402


def node_specs(lab, names=None):
    return [dict(name=n, host='127.0.0.1', port=p.port, username=ADMIN_USER, password=ADMIN_PASSWORD)
            for n, p in lab.nodes.items() if names is None or n in names]


def sentinel_specs(lab):
    return [dict(name=n, host='127.0.0.1', port=p.port, password=SENTINEL_PASSWORD) for n, p in lab.sentinels.items()]


def alive(proc):
    return proc.popen is not None and proc.popen.poll() is None


def settled(lab):
    """Name of the master when: all Sentinels name it, HAProxy routes only to it, it has two online
    replicas, every Sentinel sees two healthy replicas. Else None."""
    master = lab.majority_master()
    if master is None or lab.routable() != [master]:
        return None
    answers = set(sentinel_master(p) for p in lab.sentinels.values())
    if answers != {('127.0.0.1', lab.nodes[master].port)}:
        return None
    info = admin(lab.nodes[master]).info('replication')
    online = sum(1 for k, v in info.items() if k.startswith('slave') and isinstance(v, dict)
                 and v.get('state') == 'online')
    if online < len(lab.nodes) - 1:
        return None
    if any(conftest.sentinel_view(p)[1] != len(lab.nodes) - 1 for p in lab.sentinels.values()):
        return None
    return master


def wait_settled(lab, timeout=40):
    return wait_for(lambda: settled(lab), timeout=timeout, interval=0.2, what='a settled lab')


class SwitchListener(object):
    """Subscribes to +switch-master on every Sentinel; records (monotonic time, sentinel, message).

    ``clients``: {sentinel name: function returning a redis client} (default: the Sentinels of the
    loopback ``lab``); the container lab passes its own (bench/lab_bench.py)."""

    def __init__(self, lab, clients=None):
        if clients is None:
            clients = dict((name, lambda proc=proc: sentinel_client(proc, socket_timeout=5))
                           for name, proc in lab.sentinels.items())
        self.seen, self._stop, self._threads = [], threading.Event(), []
        self._ready = []
        for name, connect in clients.items():
            thread = threading.Thread(target=self._listen, args=(name, connect), daemon=True)
            self._threads.append(thread)
            thread.start()
        wait_for(lambda: len(self._ready) == len(self._threads), timeout=5, what='+switch-master subscriptions')

    def _listen(self, name, connect):
        pubsub = connect().pubsub(ignore_subscribe_messages=True)
        pubsub.subscribe('+switch-master')
        self._ready.append(name)
        deadline = time.monotonic() + 300
        while not self._stop.is_set() and time.monotonic() < deadline:
            try:
                message = pubsub.get_message(timeout=0.02)
            except Exception:  # the Sentinel went away (a fault of the benchmark): stop listening to it
                break
            if message and message['type'] == 'message':
                self.seen.append((time.monotonic(), name, message['data']))
        pubsub.close()

    def first(self):
        return min(t for t, _, _ in self.seen) if self.seen else None

    def majority(self, total):
        """When a majority of the ``total`` Sentinels had published +switch-master (or None)."""
        firsts = {}
        for t, name, _ in self.seen:
            firsts.setdefault(name, t)
        times = sorted(firsts.values())
        need = total // 2 + 1
        return times[need - 1] if len(times) >= need else None

    def stop(self):
        self._stop.set()
        for thread in self._threads:
            thread.join(2)


class WatcherProcess(object):
    """The role's haproxy-redis-watcher.py as its own process (as the systemd unit runs it)."""

    def __init__(self, lab):
        self.conf = os.path.join(lab.workdir, 'redis-watcher.json')
        fd = os.open(self.conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, 'w') as fh:
            json.dump(lab.watcher_config(), fh)
        self.log = os.path.join(lab.workdir, 'watcher.log')
        with open(self.log, 'ab') as out:
            self.popen = subprocess.Popen([sys.executable, WATCHER_FILE, '--config', self.conf], stdout=out,
                                          stderr=subprocess.STDOUT)
        wait_for(lambda: self._subscribed(len(lab.sentinels)), timeout=10, what='watcher subscriptions')

    def _subscribed(self, count):
        if self.popen.poll() is not None:
            raise RuntimeError('watcher exited')
        with open(self.log) as fh:
            return fh.read().count('subscribed to +switch-master') >= count

    def stop(self):
        conftest.stop_process(self.popen, signal.SIGINT)


def kill(proc):
    """SIGKILL; the process stays dead (nothing restarts it) until restart_as_replica()."""
    proc.popen.kill()
    proc.popen.wait(5)


def restart_as_replica(proc, master_port):
    """What the collection's start-up guard does: start the old master as a replica of the new one."""
    with open(proc.conf) as fh:
        text = fh.read()
    text = re.sub(r'(?m)^(replicaof|slaveof) .*\n', '', text)
    with open(proc.conf, 'w') as fh:
        fh.write(text + 'replicaof 127.0.0.1 %d\n' % master_port)
    proc.start()
    wait_for(lambda: admin(proc).ping(), timeout=10, what='restarted node to answer PING')


def median(values):
    return statistics.median(values) if values else float('nan')


def machine():
    def cmd(args):
        try:
            return subprocess.check_output(args, stderr=subprocess.STDOUT, text=True).strip()
        except Exception as exc:
            return 'n/a (%s)' % type(exc).__name__
    model = 'n/a'
    try:
        with open('/proc/cpuinfo') as fh:
            for line in fh:
                if line.startswith('model name'):
                    model = line.split(':', 1)[1].strip()
                    break
    except OSError:
        pass
    return dict(nproc=cmd(['nproc']), cpu=model, redis=cmd([conftest.REDIS_SERVER, '--version']),
                haproxy=cmd(['haproxy', '-v']).splitlines()[0])
