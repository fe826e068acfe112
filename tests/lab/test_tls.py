# -*- coding: utf-8 -*-
# Copyright: (c) 2026, KeyBuzz (@keybuzz)
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""TLS lab checks (molecule/tls; skipped on a plaintext lab): Redis, Sentinel and HAProxy refuse
plaintext and clients of another CA, the certificates name what clients connect to, and a forced
renewal (site.yml) is loaded with no Redis restart and no acknowledged write lost."""

from __future__ import absolute_import, division, print_function

import socket
import ssl
import time

import pytest
import redis

from kblab import labctl
from kblab.labctl import assert_invariants, assert_no_secret, recap


@pytest.fixture
def tls_lab(steady_lab):
    if not steady_lab.tls:
        pytest.skip('the lab runs without TLS (KB_LAB_TLS / redis_ha_tls)')
    return steady_lab


def endpoints(lab):
    """(what, address, port) of every TLS port of the lab."""
    return ([('redis %s' % n, lab.ip[n], labctl.REDIS_PORT) for n in lab.nodes]
            + [('sentinel %s' % s, lab.ip[s], labctl.SENTINEL_PORT) for s in lab.sentinels]
            + [('haproxy %s' % p, lab.ip[p], labctl.HAPROXY_PORT) for p in lab.haproxies])


def peer_certificate(lab, address, port):
    """The verified certificate (dict) a TLS server presents, checked against the lab's CA and its address."""
    context = ssl.create_default_context(cafile=lab.ca_file)
    with socket.create_connection((address, port), timeout=3) as raw:
        with context.wrap_socket(raw, server_hostname=address) as sock:
            return sock.getpeercert()


def test_plaintext_and_foreign_clients_are_refused(tls_lab):
    lab = tls_lab
    for what, address, port in endpoints(lab):
        plain = redis.Redis(host=address, port=port, password='x', socket_timeout=2, socket_connect_timeout=2)
        with pytest.raises(redis.ConnectionError):
            plain.ping()  # the TLS port drops a plaintext client before it can even authenticate
        plain.close()
        # A client that trusts only the system CAs cannot verify the servers' certificates.
        with pytest.raises(ssl.SSLError, match='certificate verify failed'):
            with socket.create_connection((address, port), timeout=3) as raw:
                ssl.create_default_context().wrap_socket(raw, server_hostname=address).close()
    # And the lab's own clients (TLS, the lab's CA) work everywhere.
    for name in lab.nodes:
        assert lab.node(name).ping()
        assert lab.sentinel(name).ping()
    for name in lab.haproxies:
        assert lab.proxy(name).ping()
    assert lab.node(lab.nodes[0]).config_get('port')['port'] == '0'


def test_certificates_name_the_addresses_clients_use(tls_lab):
    lab = tls_lab
    for what, address, port in endpoints(lab):
        cert = peer_certificate(lab, address, port)  # raises unless the address is in the certificate
        names = [value for kind, value in cert['subjectAltName']]
        host = what.split()[1]
        assert host in names and '127.0.0.1' in names, (what, names)
        expires = ssl.cert_time_to_seconds(cert['notAfter'])
        assert expires - time.time() > 30 * 86400, '%s: the certificate expires within 30 days' % what


def test_forced_renewal_is_loaded_without_restarting_redis(tls_lab):
    lab = tls_lab
    master = lab.steady()
    before = dict(((what, address, port), peer_certificate(lab, address, port)['serialNumber'])
                  for what, address, port in endpoints(lab))
    pids = lab.pids()
    work = lab.workload().start()
    # Which master each Sentinel names, every 0.2 s: HAProxy must keep a Sentinel majority.
    poller = lab.watch(interval=0.2, parts=('sentinels',))
    # Every certificate "expires within" 100000 days: each one is re-issued and loaded. The role's own
    # variable, not redis_ha_tls_renew_days: that one is also what the watchers report (and alert on).
    result = lab.playbook('site.yml', '-e', 'tls_certificates_renew_days=100000')
    time.sleep(1)
    poller.stop()
    report = lab.finish(work, 'forced TLS certificate renewal (site.yml)', dict(recap=recap(result)))
    assert result.returncode == 0, result.stdout[-3000:]
    after = dict(((what, address, port), peer_certificate(lab, address, port)['serialNumber'])
                 for what, address, port in endpoints(lab))
    unchanged = [key[0] for key in before if before[key] == after[key]]
    assert not unchanged, 'still serving the old certificate: %s' % unchanged
    now = lab.pids()
    restarted = [unit for unit in pids if unit.endswith('/redis-server') and pids[unit] != now[unit]]
    assert not restarted, 'redis-server restarted for a certificate: %s' % restarted
    # HAProxy reloads (its master process stays); the Sentinels restart one at a time, each back in
    # agreement before the next (keybuzz.redis_ha.rolling_restart): a majority always names the master.
    assert all(pids[u] == now[u] for u in pids if u.endswith('/haproxy')), (pids, now)
    sentinels = sorted(u for u in pids if u.endswith('/redis-sentinel'))
    assert [u for u in sentinels if pids[u] != now[u]] == sentinels, 'Sentinels not restarted: %s' % ((pids, now),)
    majority = len(lab.sentinels) // 2 + 1
    samples = poller.between(0)
    short = [(round(s['t0'] - samples[0]['t0'], 1), s['sentinels']) for s in samples
             if list(s['sentinels'].values()).count(master) < majority]
    assert len(samples) > 50 and not short, 'without a Sentinel majority naming %s: %s' % (master, short[:5])
    assert lab.steady(60) == master
    assert_invariants(report)
    assert_no_secret(lab, result.stdout)
