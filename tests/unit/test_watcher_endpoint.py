# -*- coding: utf-8 -*-
# Copyright: (c) 2026, KeyBuzz (@keybuzz)
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Metrics and the watcher's checks: the watcher's own endpoint (/metrics, /healthz), HAProxy's health
rule that requires it (haproxy_redis_health_requires_watcher) and HAProxy's Prometheus exporter
(allowed networks only), with real redis-server, redis-sentinel and haproxy on loopback and the
role's watcher file running in a thread."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import http.client
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from kblab.processes import wait_for
from kblab.loopback import Lab, load_watcher, sentinel_client, MASTER_NAME


def get(port, path):
    try:
        with urllib.request.urlopen('http://127.0.0.1:%d%s' % (port, path), timeout=2) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def samples(text):
    """{'name{labels}': value} of a Prometheus text page."""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith('#'):
            key, _, value = line.rpartition(' ')
            out[key] = float(value)
    return out


@pytest.fixture(scope='module')
def lab(tmp_path_factory):
    # The exporter answers 127.0.0.1 only: a scrape from 127.0.0.2 (loopback too) stands for another network.
    obj = Lab(tmp_path_factory.mktemp('watcher_endpoint'), haproxy_redis_health_requires_watcher=True,
              haproxy_redis_metrics_allowed_networks=['127.0.0.1/32'])
    try:
        yield obj
    finally:
        obj.stop()


def test_freshness_rule():
    mod = load_watcher()
    assert mod.reconcile_freshness(None, 15.0, 100.0)[0] is False
    assert mod.reconcile_freshness(90.0, 15.0, 100.0)[0] is True
    assert mod.reconcile_freshness(85.0, 15.0, 100.0)[0] is True      # exactly at the limit: still fresh
    fresh, why = mod.reconcile_freshness(84.0, 15.0, 100.0)
    assert fresh is False and '16.0 s ago' in why


def test_health_is_503_while_no_watcher_runs_then_200_with_it(lab):
    # No watcher yet: HAProxy's check of its /healthz fails (connection refused) and the health
    # endpoint says why, although a master is routable.
    wait_for(lambda: lab.health() == (503, 'watcher not running'), timeout=10, what='503 without a watcher')
    assert lab.routable() == [lab.majority_master()]
    watcher = lab.start_watcher()
    try:
        wait_for(lambda: lab.health_status() == 200, timeout=10, what='200 once the watcher runs')
        status, body = get(lab.watcher_port, '/healthz')
        assert status == 200 and body.startswith('fresh'), body
    finally:
        lab.stop_watcher()
    assert watcher.stop_event.is_set()
    wait_for(lambda: lab.health() == (503, 'watcher not running'), timeout=10, what='503 after the watcher stopped')


def test_metrics_name_the_routed_and_majority_master(lab):
    lab.start_watcher()
    try:
        master = lab.majority_master()
        wait_for(lambda: samples(get(lab.watcher_port, '/metrics')[1]).get('keybuzz_watcher_fresh') == 1.0,
                 timeout=10, what='a fresh watcher')
        status, text = get(lab.watcher_port, '/metrics')
        assert status == 200
        values = samples(text)
        routed = [k for k, v in values.items() if k.startswith('keybuzz_watcher_routed_master{') and v == 1.0]
        majority = [k for k, v in values.items() if k.startswith('keybuzz_watcher_majority_master{') and v == 1.0]
        assert len(routed) == 1 and 'node="%s"' % master in routed[0], routed
        assert len(majority) == 1 and 'node="%s"' % master in majority[0], majority
        assert values['keybuzz_watcher_reconciles_total'] >= 1
        assert all(values['keybuzz_watcher_sentinel_subscribed{sentinel="%s"}' % s] == 1.0 for s in lab.sentinels)
        assert abs(values['keybuzz_watcher_last_reconcile_timestamp_seconds'] - time.time()) < 10
        assert get(lab.watcher_port, '/other')[0] == 404
    finally:
        lab.stop_watcher()


def test_majority_epoch_rule():
    mod = load_watcher()
    a, b = ('10.0.0.1', 6379), ('10.0.0.2', 6379)
    assert mod.majority_epoch([(a, 3), (a, 4), (b, 5)], 3) == (a, 4)
    assert mod.majority_epoch([(a, 3), None, (b, 5)], 3) == (None, None)      # no majority: no epoch
    assert mod.majority_epoch([(a, 3), None, None], 3) == (None, None)
    assert mod.majority_epoch([], 3) == (None, None)


def test_a_failover_moves_the_counters_and_the_routed_master(lab):
    watcher = lab.start_watcher()
    try:
        old = lab.majority_master()
        wait_for(lambda: watcher.routed == old, timeout=10, what='the watcher routing to the master')
        before = dict(watcher.counters)
        wait_for(lambda: watcher.epoch is not None, timeout=15, what='the master configuration epoch read')
        old_epoch = watcher.epoch[1]
        assert samples(get(lab.watcher_port, '/metrics')[1])[
            'keybuzz_watcher_master_config_epoch{node="%s",address="127.0.0.1:%d"}' % (old, lab.nodes[old].port)] == old_epoch
        sentinel_client(next(iter(lab.sentinels.values()))).execute_command('SENTINEL', 'FAILOVER', MASTER_NAME)
        wait_for(lambda: watcher.routed not in (None, old), timeout=20, interval=0.1, what='the watcher to route elsewhere')
        values = samples(get(lab.watcher_port, '/metrics')[1])
        assert values['keybuzz_watcher_route_changes_total'] == before['route_changes'] + 1
        assert values['keybuzz_watcher_switch_events_total'] > before['switch_events']
        assert values['keybuzz_watcher_fences_total'] > before['fences']
        assert values['keybuzz_watcher_routed_master{node="%s",address="127.0.0.1:%d"}'
                      % (watcher.routed, lab.nodes[watcher.routed].port)] == 1.0
        # The new master's epoch is a newer one (one per failover), once the Sentinels agree on it.
        new = watcher.routed
        wait_for(lambda: watcher.epoch is not None and watcher.epoch[0] == ('127.0.0.1', lab.nodes[new].port),
                 timeout=15, what='the new master configuration epoch')
        values = samples(get(lab.watcher_port, '/metrics')[1])
        assert values['keybuzz_watcher_master_config_epoch{node="%s",address="127.0.0.1:%d"}'
                      % (new, lab.nodes[new].port)] > old_epoch
    finally:
        lab.stop_watcher()


def test_a_watcher_that_cannot_reach_haproxy_goes_stale_and_the_health_endpoint_503(lab):
    # A watcher that cannot read HAProxy's runtime API cannot fence a demoted master either: its
    # reconciles stop completing, /healthz turns 503 after stale_after, and so does the health endpoint.
    lab.start_watcher(stale_after=2.0, reconcile_interval=0.5)
    try:
        wait_for(lambda: lab.health_status() == 200, timeout=10, what='200 with a working watcher')
        lab.watcher.config['admin_socket'] = lab.admin_socket + '.gone'
        wait_for(lambda: get(lab.watcher_port, '/healthz')[0] == 503, timeout=10, what='/healthz 503 once stale')
        assert get(lab.watcher_port, '/healthz')[1].startswith('stale: last complete reconcile')
        wait_for(lambda: lab.health() == (503, 'watcher not running'), timeout=10, what='the health endpoint 503')
        lab.watcher.config['admin_socket'] = lab.admin_socket
        wait_for(lambda: lab.health_status() == 200, timeout=10, what='200 again once it reaches HAProxy')
    finally:
        lab.stop_watcher()


def scrape(port, source):
    conn = http.client.HTTPConnection('127.0.0.1', port, timeout=2, source_address=(source, 0))
    try:
        conn.request('GET', '/metrics')
        answer = conn.getresponse()
        return answer.status, answer.read().decode()
    finally:
        conn.close()


def test_haproxy_exporter_serves_the_routing_state_to_allowed_networks_only(lab):
    master = lab.majority_master()
    wait_for(lambda: lab.routable() == [master], timeout=10, what='a routable master')

    def up_in_bk_redis():
        status, text = scrape(lab.metrics_port, '127.0.0.1')
        assert status == 200
        values = samples(text)
        # bk_redis servers have weight 0 (the frontend picks the server): their check state is the signal.
        return sorted(k.split('server="')[1].split('"')[0] for k, v in values.items()
                      if k.startswith('haproxy_server_status{proxy="bk_redis",') and 'state="UP"' in k and v == 1)
    # A master demoted by the previous test may still pass its role:master check for a few seconds.
    wait_for(lambda: up_in_bk_redis() == [master], timeout=30, what='only the master UP in bk_redis')
    values = samples(scrape(lab.metrics_port, '127.0.0.1')[1])
    for node in lab.nodes:  # the Sentinel votes: chk_<node> has a server up per Sentinel naming that node
        assert values['haproxy_backend_active_servers{proxy="chk_%s"}' % node] == (3.0 if node == master else 0.0)
    status, text = scrape(lab.metrics_port, '127.0.0.2')
    assert status == 403 and 'haproxy_' not in text


def test_certificate_expiry_is_read_verified_and_exported(tls_server):
    """TLS only: the watcher reads the certificate each node, Sentinel and its HAProxy frontend serves
    (verified with the cluster's CA and the address) and exports its expiry; one it cannot read or
    verify counts as expired (0), so the alert on it fires."""
    mod = load_watcher()
    proc, ca, other_ca = tls_server
    with open(proc.conf) as handle:
        crt = [line.split(' ', 1)[1] for line in handle.read().splitlines() if line.startswith('tls-cert-file ')][0]
    end = subprocess.run(['openssl', 'x509', '-noout', '-enddate', '-in', crt], capture_output=True, text=True,
                         check=True).stdout.strip().split('=', 1)[1]
    expected = float(ssl.cert_time_to_seconds(end))
    assert mod.certificate_expiry('127.0.0.1', proc.port, ca, 2.0) == (expected, None)
    expiry, why = mod.certificate_expiry('127.0.0.1', proc.port, other_ca, 2.0)
    assert expiry == 0.0 and 'CERTIFICATE_VERIFY_FAILED' in why, why
    expiry, why = mod.certificate_expiry('127.0.0.1', 1, ca, 2.0)
    assert expiry == 0.0 and 'ConnectionRefused' in why, why
    config = dict(mod.DEFAULTS, master_name=MASTER_NAME, tls=True, tls_ca_file=ca, certificate_renew_days=21,
                  nodes=[{'name': 'n1', 'address': '127.0.0.1', 'port': proc.port}],
                  sentinels=[{'name': 's1', 'address': '127.0.0.1', 'port': 1}],
                  frontend_address='127.0.0.1', frontend_port=proc.port)
    watcher = mod.Watcher(config)
    try:
        watcher.read_certificates()
        page = samples(watcher.metrics_text())
    finally:
        watcher.stop()
    host = socket.gethostname()
    assert page['keybuzz_watcher_certificate_expiry_timestamp_seconds{kind="redis",name="n1",address="127.0.0.1:%d"}'
                % proc.port] == expected
    assert page['keybuzz_watcher_certificate_expiry_timestamp_seconds{kind="sentinel",name="s1",address="127.0.0.1:1"}'] == 0
    assert page['keybuzz_watcher_certificate_expiry_timestamp_seconds{kind="haproxy",name="%s",address="127.0.0.1:%d"}'
                % (host, proc.port)] == expected
    assert page['keybuzz_watcher_certificate_renew_days'] == 21
