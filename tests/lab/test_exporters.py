# -*- coding: utf-8 -*-
# Copyright: (c) 2026, KeyBuzz (@keybuzz)
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The Redis and Sentinel exporters (role keybuzz.redis_ha.redis_exporter), scraped from the host on
the private addresses: every node reports redis_up 1 and its role, every Sentinel names the master
the lab has, with CKQUORUM OK; they listen on the private address only (Debian's own unit masked);
their user kb-exporter reads no key and changes nothing on a Sentinel; no password is in an
exporter's argv or environment."""

from __future__ import absolute_import, division, print_function

import re
import urllib.request

import pytest
import redis

from kblab import workload as wl
from kblab.labctl import SENTINEL_PORT, REDIS_PORT, assert_no_secret

REDIS_EXPORTER_PORT = 9121
SENTINEL_EXPORTER_PORT = 9122
UNITS = ('keybuzz-redis-exporter', 'keybuzz-sentinel-exporter')


def scrape(lab, name, port):
    with urllib.request.urlopen('http://%s:%d/metrics' % (lab.ip[name], port), timeout=5) as answer:
        return answer.read().decode()


def exporters_up(lab):
    """{"<host>:<port>": the exporter's redis_up value (or what went wrong)} for every exporter."""
    out = {}
    for name, port in [(n, REDIS_EXPORTER_PORT) for n in lab.nodes] + [(s, SENTINEL_EXPORTER_PORT) for s in lab.sentinels]:
        try:
            found = re.findall(r'(?m)^redis_up (\S+)$', scrape(lab, name, port))
            out['%s:%d' % (name, port)] = found[0] if found else 'no redis_up'
        except OSError as exc:
            out['%s:%d' % (name, port)] = 'no answer (%s)' % exc.__class__.__name__
    return out


def test_every_node_and_sentinel_is_exported_as_the_lab_is(steady_lab):
    lab = steady_lab
    master = lab.steady()
    assert set(exporters_up(lab).values()) == {'1'}, exporters_up(lab)
    for name in lab.nodes:
        page = scrape(lab, name, REDIS_EXPORTER_PORT)
        role = 'master' if name == master else 'slave'
        assert re.search(r'(?m)^redis_instance_info\{[^}]*role="%s"[^}]*\} 1$' % role, page), (name, role)
        if name == master:
            assert re.search(r'(?m)^redis_connected_slaves %d$' % (len(lab.nodes) - 1), page), page[:2000]
        assert_no_secret(lab, page)
    for name in lab.sentinels:
        page = scrape(lab, name, SENTINEL_EXPORTER_PORT)
        assert re.search(r'(?m)^redis_sentinel_master_status\{master_address="%s:%d",master_name="%s",master_status="ok"\} 1$'
                         % (re.escape(lab.ip[master]), REDIS_PORT, lab.master_name), page), page[:3000]
        assert re.search(r'(?m)^redis_sentinel_master_ckquorum_status\{master_name="%s",[^}]*\} 1$' % lab.master_name, page)
        assert re.search(r'(?m)^redis_sentinel_master_sentinels\{[^}]*\} %d$' % len(lab.sentinels), page)
        assert_no_secret(lab, page)


def test_private_address_only_read_only_user_no_password_in_argv_or_environment(steady_lab):
    lab = steady_lab
    for name in sorted(set(lab.nodes) | set(lab.sentinels)):
        listening = lab.sh(name, "ss -Hltn | awk '{print $4}'")
        ports = [line for line in listening.split() if line.endswith((':%d' % REDIS_EXPORTER_PORT, ':%d' % SENTINEL_EXPORTER_PORT))]
        assert sorted(ports) == sorted('%s:%d' % (lab.ip[name], p) for p in (REDIS_EXPORTER_PORT, SENTINEL_EXPORTER_PORT)), ports
        assert lab.sh(name, 'systemctl is-enabled prometheus-redis-exporter.service || true').strip() == 'masked'
        seen = lab.sh(name, 'for u in %s; do p=$(systemctl show -p MainPID --value $u.service); '
                            'tr "\\0" "\\n" < /proc/$p/cmdline; tr "\\0" "\\n" < /proc/$p/environ; done' % ' '.join(UNITS))
        assert seen.count('prometheus-redis-exporter') == 2 and '-redis.password-file' in seen, seen[:300]
        assert_no_secret(lab, seen)
        modes = lab.sh(name, 'stat -c "%a %U %G" /etc/redis-exporter/redis.json /etc/redis-exporter/sentinel.json').split('\n')
        assert [m for m in modes if m] == ['640 root prometheus'] * 2, modes
    user, password = lab.creds['REDIS_EXPORTER_USER'], lab.creds['REDIS_EXPORTER_PASSWORD']
    node = wl._redis(lab.ip[lab.nodes[0]], REDIS_PORT, password, user, 2.0)
    sentinel = wl._redis(lab.ip[lab.sentinels[0]], SENTINEL_PORT, password, user, 2.0)
    try:
        assert node.ping() and 'redis_version' in node.info('server')
        for command in (('GET', 'kb:any'), ('SET', 'kb:exporter', '1'), ('KEYS', '*'), ('CONFIG', 'SET', 'maxmemory', '0'),
                        ('SUBSCRIBE', 'x')):
            with pytest.raises(redis.exceptions.NoPermissionError):
                node.execute_command(*command)
        assert sentinel.execute_command('SENTINEL', 'CKQUORUM', lab.master_name).startswith('OK')
        for command in (('SENTINEL', 'FAILOVER', lab.master_name), ('SENTINEL', 'SET', lab.master_name, 'quorum', '1'),
                        ('SENTINEL', 'RESET', '*'), ('ACL', 'LIST')):
            with pytest.raises(redis.exceptions.NoPermissionError):
                sentinel.execute_command(*command)
    finally:
        node.close()
        sentinel.close()
