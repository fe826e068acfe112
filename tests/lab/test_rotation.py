# -*- coding: utf-8 -*-
# Copyright: (c) 2026, KeyBuzz (@keybuzz)
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Password rotation in the lab (playbooks/rotate_credentials.yml, both phases).

While phase start runs, clients that only know the OLD application password keep writing through
both HAProxy nodes: the write workload (long-lived connections) and a prober that opens a new
connection every 100 ms. Neither may fail. Between the phases every old and new password is
accepted by every Redis user, Sentinel and HAProxy frontend, and site.yml changes nothing. After
phase finish the old passwords are refused on new connections, a connection opened before stays
usable, redis.env holds no _PREVIOUS entry. redis-server, redis-sentinel and HAProxy's master
process are never restarted, and no password (old or new) appears in any output.
"""

from __future__ import absolute_import, division, print_function

import os
import re
import stat
import threading
import time

import redis

from kblab import labctl
from kblab.labctl import assert_invariants, assert_nothing_changed
from kblab import workload as wl
from test_exporters import exporters_up

ROTATED = ['REDIS_ADMIN_PASSWORD', 'REDIS_EXPORTER_PASSWORD', 'REDIS_HEALTHCHECK_PASSWORD', 'REDIS_PASSWORD',
           'REDIS_REPLICATION_PASSWORD', 'REDIS_SENTINEL_PASSWORD', 'SENTINEL_PASSWORD']
# The Redis user each password of redis.env belongs to (a key of redis.env, or the literal name).
REDIS_USERS = [('default', 'REDIS_PASSWORD'), ('REDIS_ADMIN_USER', 'REDIS_ADMIN_PASSWORD'),
               ('REDIS_REPLICATION_USER', 'REDIS_REPLICATION_PASSWORD'),
               ('REDIS_SENTINEL_USER', 'REDIS_SENTINEL_PASSWORD'),
               ('REDIS_HEALTHCHECK_USER', 'REDIS_HEALTHCHECK_PASSWORD'), ('REDIS_EXPORTER_USER', 'REDIS_EXPORTER_PASSWORD')]


class FreshConnections(object):
    """Opens a new connection through every HAProxy node every ``interval`` s with ``password``
    and writes one key; counts successes and keeps every failure."""

    def __init__(self, lab, password, interval=0.1):
        self.lab, self.password, self.interval = lab, password, interval
        self.ok, self.failures = 0, []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            for proxy in self.lab.haproxies:
                client = wl._redis(self.lab.ip[proxy], labctl.HAPROXY_PORT, self.password, None, 2.0)
                try:
                    client.set('kb:rotation:probe:%s' % proxy, time.time(), ex=60)
                    self.ok += 1
                except Exception as exc:
                    self.failures.append((round(time.time(), 3), proxy, wl.error_class(exc), str(exc)[:80]))
                finally:
                    client.close()
            self._stop.wait(self.interval)

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        self._thread.join(10)
        return self


def logins(lab, creds):
    """[(endpoint, accepted)] for every password of ``creds``: each Redis user on each node, each
    Sentinel, the application password through each HAProxy node (one new connection each)."""
    checks = []
    for name in lab.nodes:
        for user, key in REDIS_USERS:
            checks.append(('%s@%s' % (key, name), lab.ip[name], labctl.REDIS_PORT, creds.get(user, user), creds[key]))
    for name in lab.sentinels:
        checks.append(('SENTINEL_PASSWORD@%s' % name, lab.ip[name], labctl.SENTINEL_PORT, None, creds['SENTINEL_PASSWORD']))
        checks.append(('REDIS_EXPORTER_PASSWORD@%s' % name, lab.ip[name], labctl.SENTINEL_PORT, creds['REDIS_EXPORTER_USER'],
                       creds['REDIS_EXPORTER_PASSWORD']))
    for name in lab.haproxies:
        checks.append(('REDIS_PASSWORD@%s' % name, lab.ip[name], labctl.HAPROXY_PORT, None, creds['REDIS_PASSWORD']))
    out = []
    for what, host, port, user, password in checks:
        client = wl._redis(host, port, password, user, 2.0)
        try:
            out.append((what, bool(client.ping())))
        except redis.AuthenticationError:
            out.append((what, False))
        except redis.ResponseError as exc:  # WRONGPASS / NOAUTH from the proxied node
            out.append((what, False if re.search('WRONGPASS|NOAUTH|invalid', str(exc)) else str(exc)))
        finally:
            client.close()
    return out


def assert_no_password(text, *cred_sets):
    leaked = sorted(set(k for creds in cred_sets for k, v in creds.items() if 'PASSWORD' in k and v and v in text))
    assert not leaked, 'the output holds the value of %s' % leaked


def assert_site_changes_nothing(lab, outputs):
    result = lab.playbook('site.yml')
    outputs.append(result.stdout)
    assert_nothing_changed(lab, result)


def test_rotation_with_old_clients_writing_then_finish(steady_lab):
    lab = steady_lab
    old = dict(lab.creds)
    master = lab.steady()
    pids = lab.pids()
    outputs = []
    try:
        # Phase start with clients that know only the old application password.
        work = lab.workload().start()
        prober = FreshConnections(lab, old['REDIS_PASSWORD']).start()
        try:
            start = lab.playbook('rotate_credentials.yml')
            outputs.append(start.stdout)
            time.sleep(1)
        finally:
            prober.stop()
            work.stop()
        report = lab.report(work)
        labctl.show('credential rotation, phase start (old-password clients through HAProxy)', report,
             dict(fresh_connections_ok=prober.ok, fresh_connections_failed=len(prober.failures)))
        assert start.returncode == 0, start.stdout[-4000:]
        assert_invariants(report)
        assert report['failures'] == 0, 'old-password workload failed: %s' % report['error_classes']
        assert prober.ok > 50 and not prober.failures, 'old-password new connections failed: %s' % prober.failures[:5]
        assert 'Rotation started for' in start.stdout

        # redis.env: new values, the old ones kept as _PREVIOUS, still 0600.
        assert stat.S_IMODE(os.stat(lab.credentials).st_mode) == 0o600
        new = labctl.read_env(lab.credentials)
        previous = dict((k[:-len('_PREVIOUS')], v) for k, v in new.items() if k.endswith('_PREVIOUS'))
        assert sorted(previous) == ROTATED
        # (Booleans only: pytest would print the compared values, i.e. passwords.)
        kept_as_previous = [key for key in ROTATED if previous[key] == old[key]]
        renewed = [key for key in ROTATED if new[key] != old[key]]
        assert kept_as_previous == ROTATED and renewed == ROTATED, (kept_as_previous, renewed)

        # Old and new are both accepted everywhere; nothing restarted (the watcher may restart).
        both = logins(lab, old) + logins(lab, new)
        assert all(ok is True for _, ok in both), [what for what, ok in both if ok is not True]
        now = lab.pids()
        restarted = [unit for unit in pids if not unit.endswith('haproxy-redis-watcher') and pids[unit] != now[unit]]
        assert not restarted, 'restarted during phase start: %s' % restarted
        assert lab.steady(60) == master
        # The exporters use the new password (restarted with it; both are accepted until finish).
        assert set(exporters_up(lab).values()) == {'1'}, exporters_up(lab)

        # A re-run of site.yml between the phases changes nothing and keeps both passwords valid.
        lab.creds = new
        assert_site_changes_nothing(lab, outputs)
        assert all(ok is True for _, ok in logins(lab, old)), 'site.yml dropped an old password between the phases'

        # Phase finish: a connection opened with the old password before stays usable.
        kept = wl._redis(lab.ip[lab.haproxies[0]], labctl.HAPROXY_PORT, old['REDIS_PASSWORD'], None, 2.0)
        assert kept.ping()
        pids = lab.pids()
        finish = lab.playbook('rotate_credentials.yml', '-e', 'rotate_credentials_phase=finish')
        outputs.append(finish.stdout)
        assert finish.returncode == 0, finish.stdout[-4000:]
        assert 'Rotation finished for' in finish.stdout
        assert kept.set('kb:rotation:kept', 1, ex=60) and kept.ping()
        kept.close()
        final = labctl.read_env(lab.credentials)
        assert not [k for k in final if k.endswith('_PREVIOUS')]
        unchanged_by_finish = [key for key in ROTATED if final.get(key) == new[key]]
        assert unchanged_by_finish == ROTATED, unchanged_by_finish
        refused_old = logins(lab, old)
        assert all(ok is False for _, ok in refused_old), 'old password still accepted: %s' % [
            what for what, ok in refused_old if ok is not False]
        accepted_new = logins(lab, new)
        assert all(ok is True for _, ok in accepted_new), [what for what, ok in accepted_new if ok is not True]
        assert lab.pids() == pids, 'finish restarted something'
        assert lab.steady(60) == master
        assert set(exporters_up(lab).values()) == {'1'}, 'an exporter still uses the old password: %s' % exporters_up(lab)
        assert_site_changes_nothing(lab, outputs)
    finally:
        lab.creds = labctl.read_env(lab.credentials)
    for text in outputs:
        assert_no_password(text, old, lab.creds)
