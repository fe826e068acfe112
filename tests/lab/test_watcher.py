# -*- coding: utf-8 -*-
# Copyright: (c) 2026, KeyBuzz (@keybuzz)
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Metrics and the watcher's checks, scraped from the host on the private addresses: HAProxy's
exporter shows the routing state, the watcher's view equals the Sentinels', no password is in a
process's argv or environment; a watcher that is stopped or stuck (SIGSTOP) turns its HAProxy node's
health endpoint 503 ("watcher not running") while the other node stays 200 and clients keep
writing, and validate.yml names it in a FAIL line."""

from __future__ import absolute_import, division, print_function

import re
import ssl
import time
import urllib.error
import urllib.request

import pytest

from kblab.labctl import assert_invariants, assert_no_secret

from test_day2 import report_lines

WATCHER_PORT = 8406
EXPORTER_PORT = 8407


def metrics(lab, proxy, port=WATCHER_PORT):
    with urllib.request.urlopen('http://%s:%d/metrics' % (lab.ip[proxy], port), timeout=2) as answer:
        return answer.read().decode()


def test_haproxy_exporter_and_no_password_in_argv_or_environment(steady_lab):
    lab = steady_lab
    master = lab.steady()
    for proxy in lab.haproxies:
        page = metrics(lab, proxy, EXPORTER_PORT)
        assert 'haproxy_server_status{proxy="bk_redis",server="%s",state="UP"} 1\n' % master in page
        for node in lab.nodes:  # one server per Sentinel naming the node
            expected = len(lab.sentinels) if node == master else 0
            assert 'haproxy_backend_active_servers{proxy="chk_%s"} %d\n' % (node, expected) in page, node
        assert_no_secret(lab, page)
        seen = lab.sh(proxy, 'for p in $(pidof haproxy) $(systemctl show -p MainPID --value haproxy-redis-watcher.service); '
                             'do tr "\\0" "\\n" < /proc/$p/cmdline; tr "\\0" "\\n" < /proc/$p/environ; done')
        assert 'haproxy' in seen and 'haproxy-redis-watcher' in seen, seen[:300]
        assert_no_secret(lab, seen)


def health_body(lab, proxy):
    try:
        with urllib.request.urlopen('http://%s:8405/redis-master' % lab.ip[proxy], timeout=2) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_watcher_view_and_a_dead_or_stuck_watcher_drains_its_node(steady_lab):
    lab = steady_lab
    master = lab.steady()
    for proxy in lab.haproxies:
        page = metrics(lab, proxy)
        assert re.search(r'^keybuzz_watcher_fresh 1$', page, re.M), page
        assert re.search(r'^keybuzz_watcher_routed_master\{node="%s",[^}]*\} 1$' % master, page, re.M), page
        assert re.search(r'^keybuzz_watcher_majority_master\{node="%s",[^}]*\} 1$' % master, page, re.M), page
        assert re.search(r'^keybuzz_watcher_master_config_epoch\{node="%s",[^}]*\} [0-9]+$' % master, page, re.M), page
        assert_no_secret(lab, page)
    one, other = lab.haproxies
    work = lab.workload().start()
    timings = {}
    try:
        for fault, undo in (('stop', 'start'), ('SIGSTOP', 'SIGCONT')):
            start = time.monotonic()
            if fault == 'stop':
                lab.systemctl(one, 'stop', 'haproxy-redis-watcher')
            else:
                lab.kill(one, 'haproxy-redis-watcher', 'SIGSTOP')
            lab.wait_for('%s: health 503 on %s' % (fault, one),
                         lambda: health_body(lab, one) == (503, 'watcher not running'), timeout=15)
            timings[fault] = round(time.monotonic() - start, 2)
            assert lab.health(other) == 200
            # Routing itself is HAProxy's own checks: the node still takes clients that reach it.
            assert lab.served_by(one) == master
            if fault == 'stop':
                result = lab.playbook('validate.yml')
                lines = report_lines(result.stdout)
                print('\n'.join(lines))
                failed = [line for line in lines if line.startswith('FAIL')]
                assert result.returncode != 0
                assert any(line.startswith('FAIL  watcher %s' % one) and 'no answer' in line for line in failed), failed
                assert any(line.startswith('FAIL  health endpoint %s: HTTP 503 watcher not running' % one)
                           for line in failed), failed
                assert not any(other in line for line in failed), failed
                assert_no_secret(lab, result.stdout)
                lab.systemctl(one, 'start', 'haproxy-redis-watcher')
            else:
                lab.kill(one, 'haproxy-redis-watcher', 'SIGCONT')
            lab.wait_for('health 200 again on %s' % one, lambda: lab.health(one) == 200, timeout=15)
    finally:
        report = lab.finish(work, 'watcher stopped, then stuck, on one HAProxy node',
                            extra={'health_503_after_s': timings})
    assert_invariants(report)
    assert report['unavailability']['overall']['longest'] < 1.0, report['unavailability']


def test_tls_certificate_expiry_in_each_watchers_metrics(steady_lab):
    """TLS only: each watcher exports when every certificate of the cluster expires (each node's, each
    Sentinel's, its own HAProxy node's), as the files on the hosts say, and redis_ha_tls_renew_days."""
    lab = steady_lab
    if not lab.tls:
        pytest.skip('the lab runs without TLS (KB_LAB_TLS / redis_ha_tls)')
    lab.steady()
    files = dict([(('redis', n), (n, '/etc/redis/tls/redis.crt')) for n in lab.nodes]
                 + [(('sentinel', s), (s, '/etc/redis/tls/sentinel.crt')) for s in lab.sentinels])
    expected = {}
    for key, (host, path) in files.items():
        end = lab.sh(host, 'openssl x509 -noout -enddate -in %s' % path).strip().split('=', 1)[1]
        expected[key] = float(ssl.cert_time_to_seconds(end))
    for proxy in lab.haproxies:
        end = lab.sh(proxy, 'openssl x509 -noout -enddate -in /etc/haproxy/tls/haproxy.crt').strip().split('=', 1)[1]
        own = {('haproxy', lab.sh(proxy, 'hostname').strip()): float(ssl.cert_time_to_seconds(end))}
        page = metrics(lab, proxy)
        found = dict(((kind, name), float(value)) for kind, name, value in re.findall(
            r'(?m)^keybuzz_watcher_certificate_expiry_timestamp_seconds\{kind="([^"]+)",name="([^"]+)",[^}]*\} (\S+)$', page))
        wanted = dict(expected)
        wanted.update(own)
        assert found == wanted, (proxy, found, wanted)
        assert min(found.values()) > time.time() + 30 * 86400
        assert re.search(r'(?m)^keybuzz_watcher_certificate_renew_days 30(\.0)?$', page), page
