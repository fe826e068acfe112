# -*- coding: utf-8 -*-
# Copyright: (c) 2026, KeyBuzz (@keybuzz)
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""TLS (redis_ha_tls) on loopback: the roles' redis.conf, sentinel.conf and haproxy.cfg templates
rendered with TLS on run in the real binaries (TLS only, plaintext refused, replication and
Sentinel over TLS, certificates reloaded at run time), the templates are unchanged with TLS off,
and HAProxy + the watcher route to the master over TLS through a failover."""

from __future__ import absolute_import, division, print_function

import importlib.util
import json
import os
import shutil
import socket
import ssl
import subprocess
import time

import pytest
import redis

from kblab.processes import (ADMIN_PASSWORD, ADMIN_USER, DEFAULT_PASSWORD, MASTER_NAME, REDIS_SENTINEL, REDIS_SERVER,
                      SENTINEL_PASSWORD, free_port, stop_process, wait_for)
from kblab.loopback import HAPROXY, Lab, load_watcher, make_tls_files, render, sentinel_client, tls_client_options

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

pytestmark = pytest.mark.skipif(not shutil.which('openssl'), reason='openssl not available')


def render_role(role, template, **overrides):
    """Render a role template with its plain defaults (not the Jinja ones) and ``overrides``."""
    return render(template, role=role, **dict(dict(inventory_hostname='redis-01'), **overrides))


def redis_conf(workdir, tls, port, **extra):
    variables = dict(redis_node_bind_addresses=['127.0.0.1'], redis_node_port=port, redis_node_maxmemory='64mb',
                     redis_node_address='127.0.0.1', redis_node_conf_dir=str(workdir), redis_node_data_dir=str(workdir),
                     redis_node_log_dir=str(workdir), redis_node_tls=bool(tls),
                     redis_node_tls_dir=tls['dir'] if tls else '/unused', redis_node_tls_ca_file=tls['ca'] if tls else '/unused')
    variables.update(extra)
    return render_role('redis_node', 'redis.conf.j2', **variables)


def serial_of(port, ca):
    """Serial number of the certificate a TLS server on 127.0.0.1:``port`` presents."""
    context = ssl.create_default_context(cafile=ca)
    with socket.create_connection(('127.0.0.1', port), timeout=2) as raw:
        with context.wrap_socket(raw, server_hostname='127.0.0.1') as sock:
            return sock.getpeercert()['serialNumber']


def refuses_plaintext(port, password):
    client = redis.Redis(host='127.0.0.1', port=port, password=password, socket_timeout=2, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.ConnectionError:
        return True
    finally:
        client.close()
    return False


class Server(object):
    """redis-server or redis-sentinel started from a rendered configuration file (no daemon)."""

    def __init__(self, binary, workdir, name, text):
        self.conf = os.path.join(str(workdir), name + '.conf')
        with open(self.conf, 'w') as fh:
            fh.write(text)
        self.popen = subprocess.Popen([binary, self.conf], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                                      cwd=str(workdir))

    def stop(self):
        stop_process(self.popen)


# --- templates ---------------------------------------------------------------------------------

def test_templates_are_unchanged_with_tls_off(tmp_path):
    text = redis_conf(tmp_path, None, 6379)
    assert not [line for line in text.splitlines() if line.startswith('tls-')] and '\nport 6379\n' in text
    sentinel = render_role('redis_sentinel', 'sentinel.conf.j2', redis_sentinel_tls=False, redis_sentinel_port=26379,
                           redis_sentinel_bind_addresses=['127.0.0.1'], redis_sentinel_address='127.0.0.1',
                           redis_sentinel_password='x', redis_sentinel_master_name='m', _redis_sentinel_masters=['m'],
                           hostvars={'m': {'redis_ha_private_ip': '127.0.0.1'}}, redis_sentinel_auth_user='u',
                           redis_sentinel_auth_password='p')
    assert not [line for line in sentinel.splitlines() if 'tls' in line] and sentinel.splitlines()[3] == 'port 26379'


def test_haproxy_cfg_with_tls_passes_haproxy_check(tmp_path):
    tls = make_tls_files(tmp_path, ['redis-01', 'redis-02', 'redis-03', 'sentinel-01'])
    variables = dict(
        haproxy_redis_nodes=[{'name': 'redis-0%d' % i, 'address': '10.0.0.12%d' % (i + 2)} for i in (1, 2, 3)],
        haproxy_redis_sentinels=[{'name': 'sentinel-01', 'address': '10.0.1.1'}],
        haproxy_redis_master_name='kb-redis-master', haproxy_redis_sentinel_port=26379,
        haproxy_redis_bind_address='127.0.0.1', haproxy_redis_health_bind_address='127.0.0.1',
        haproxy_redis_healthcheck_user='kb-healthcheck', haproxy_redis_healthcheck_password='hc-Pw-1234567890',
        haproxy_redis_sentinel_password='sentinel-Pw-1234567890', haproxy_redis_maxconn=1000,
        haproxy_redis_chroot='', haproxy_redis_process_user='', haproxy_redis_process_group='',
        haproxy_redis_admin_socket=str(tmp_path / 'admin.sock'))
    from kblab.loopback import render
    plain = render('haproxy.cfg.j2', haproxy_redis_tls=False, **variables)
    assert ' ssl' not in plain and 'tcp-check connect\n' in plain
    text = render('haproxy.cfg.j2', haproxy_redis_tls=True, haproxy_redis_tls_dir=tls['dir'],
                  haproxy_redis_tls_ca_file=tls['ca'], **variables)
    conf = tmp_path / 'haproxy.cfg'
    conf.write_text(text)
    subprocess.check_call([HAPROXY, '-c', '-q', '-f', str(conf)])
    assert 'bind 127.0.0.1:6379 ssl crt %s/haproxy.crt\n' % tls['dir'] in text
    servers = [line.split() for line in text.splitlines() if line.strip().startswith('server ')]
    # The watcher's /healthz: plain HTTP to its own private address (no secret crosses it).
    watcher = [words for words in servers if words[1] == 'watcher']
    assert len(watcher) == 1 and 'ssl' not in ' '.join(watcher[0]), watcher
    servers = [words for words in servers if words[1] != 'watcher']
    assert len(servers) == 9  # 3 nodes in bk_redis and in fo_redis, and the Sentinel in each of the 3 chk_ backends
    for words in servers:  # every check over TLS, verifying the CA and the server's inventory name
        assert 'check-ssl' in words and words[words.index('verify') + 1] == 'required'
        assert words[words.index('ca-file') + 1] == tls['ca'] and words[words.index('verifyhost') + 1] == words[1]
    assert text.count('tcp-check connect ssl\n') == 5  # bk_redis, fo_redis and 3 chk_ backends


def test_workload_tls_switch():
    from kblab import workload as wl
    try:
        wl.set_tls('/ca.crt')
        client = wl._redis('127.0.0.1', 6379)
        assert client.connection_pool.connection_kwargs['ssl_ca_certs'] == '/ca.crt'
        wl.set_tls(None)
        assert 'ssl_ca_certs' not in wl._redis('127.0.0.1', 6379).connection_pool.connection_kwargs
    finally:
        wl.set_tls(None)


def test_watcher_and_guard_tls_options():
    watcher = load_watcher()
    assert watcher.tls_options({}) == {} and watcher.tls_options({'tls': False, 'tls_ca_file': '/x'}) == {}
    assert watcher.tls_options({'tls': True, 'tls_ca_file': '/ca.crt'}) == {
        'ssl': True, 'ssl_ca_certs': '/ca.crt', 'ssl_cert_reqs': 'required', 'ssl_check_hostname': True}
    config = json.loads(render_role('haproxy_redis', 'redis-watcher.json.j2', haproxy_redis_tls=True,
                                    haproxy_redis_tls_ca_file='/etc/ssl/redis-ha/ca.crt', haproxy_redis_nodes=[],
                                    haproxy_redis_sentinels=[], haproxy_redis_master_name='m',
                                    haproxy_redis_sentinel_password='s', haproxy_redis_healthcheck_user='u',
                                    haproxy_redis_healthcheck_password='p', haproxy_redis_sentinel_port=26379,
                                    haproxy_redis_bind_address='10.0.0.11'))
    assert config['tls'] is True and config['tls_ca_file'] == '/etc/ssl/redis-ha/ca.crt'
    # Its own endpoint listens on the private address (haproxy_redis_bind_address by default).
    assert (config['metrics_address'], config['metrics_port'], config['stale_after']) == ('10.0.0.11', 8406, 15.0)
    spec = importlib.util.spec_from_file_location(
        'redis_start_role_tls', os.path.join(REPO_ROOT, 'roles', 'redis_node', 'files', 'redis-start-role.py'))
    guard = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(guard)
    assert guard.tls_options({'sentinels': []}) == {}
    assert guard.tls_options({'tls': True, 'tls_ca_file': '/ca.crt'})['ssl_ca_certs'] == '/ca.crt'


# --- the rendered configurations in the real binaries ---------------------------------------------

@pytest.fixture
def tls_node(tmp_path):
    """A master and a replica from the role's redis.conf with TLS on, and a Sentinel from its sentinel.conf."""
    tls = make_tls_files(tmp_path, ['redis-01'])
    # The roles' files name the node's and the Sentinel's own certificates: use the test one for both.
    for ext in ('crt', 'key'):
        for name in ('redis', 'sentinel'):
            shutil.copy(os.path.join(tls['dir'], 'haproxy.%s' % ext), os.path.join(tls['dir'], '%s.%s' % (name, ext)))
    procs = []
    try:
        ports = {}
        for name in ('master', 'replica'):
            workdir = tmp_path / name
            workdir.mkdir()
            (workdir / 'users.acl').write_text('user default on >%s ~* &* +@all\nuser %s on >%s ~* &* +@all\n'
                                               % (DEFAULT_PASSWORD, ADMIN_USER, ADMIN_PASSWORD))
            (workdir / 'redis-auth.conf').write_text('masteruser %s\nmasterauth "%s"\n' % (ADMIN_USER, ADMIN_PASSWORD))
            # The settings the role applies at run time (its defaults; redis.conf includes the file).
            (workdir / 'redis-runtime.conf').write_text('min-replicas-to-write 1\nmin-replicas-max-lag 2\nmaxmemory 64mb\n')
            ports[name] = free_port()
            text = redis_conf(workdir, tls, ports[name], redis_node_extra_config=(
                {'replicaof': '127.0.0.1 %d' % ports['master']} if name == 'replica' else {}))
            procs.append(Server(REDIS_SERVER, workdir, name, text))
        sentinel_dir = tmp_path / 'sentinel'
        sentinel_dir.mkdir()
        ports['sentinel'] = free_port()
        sentinel_text = render_role(
            'redis_sentinel', 'sentinel.conf.j2', redis_sentinel_tls=True, redis_sentinel_port=ports['sentinel'],
            redis_sentinel_tls_dir=tls['dir'], redis_sentinel_tls_ca_file=tls['ca'],
            redis_sentinel_bind_addresses=['127.0.0.1'], redis_sentinel_address='127.0.0.1',
            redis_sentinel_conf_dir=str(sentinel_dir), redis_sentinel_log_dir=str(sentinel_dir),
            redis_sentinel_password=SENTINEL_PASSWORD, redis_sentinel_master_name=MASTER_NAME,
            _redis_sentinel_masters=['m'], hostvars={'m': {'redis_ha_private_ip': '127.0.0.1'}},
            redis_sentinel_redis_port=ports['master'], redis_sentinel_quorum=1,
            redis_sentinel_auth_user=ADMIN_USER, redis_sentinel_auth_password=ADMIN_PASSWORD)
        procs.append(Server(REDIS_SENTINEL, sentinel_dir, 'sentinel', sentinel_text))
        yield tls, ports
    finally:
        for proc in procs:
            proc.stop()


def node_client(port, tls, **kwargs):
    return redis.Redis(host='127.0.0.1', port=port, username=ADMIN_USER, password=ADMIN_PASSWORD, socket_timeout=2,
                       decode_responses=True, **dict(tls_client_options(tls), **kwargs))


def test_rendered_configurations_serve_tls_only_replicate_and_monitor_over_tls(tls_node):
    tls, ports = tls_node
    master = node_client(ports['master'], tls, ssl_check_hostname=True)
    wait_for(master.ping, what='the TLS master')
    assert master.config_get('port')['port'] == '0' and master.config_get('tls-port')['tls-port'] == str(ports['master'])
    replica = node_client(ports['replica'], tls)
    wait_for(lambda: replica.info('replication')['master_link_status'] == 'up', what='replication over TLS')
    master.set('kb:tls', 'ok')
    wait_for(lambda: replica.get('kb:tls') == 'ok', what='the key on the replica')
    sentinel = redis.Redis(host='127.0.0.1', port=ports['sentinel'], password=SENTINEL_PASSWORD, socket_timeout=2,
                           decode_responses=True, **tls_client_options(tls))
    wait_for(lambda: 'disconnected' not in str(sentinel.execute_command('SENTINEL', 'MASTER', MASTER_NAME)),
             what='the Sentinel connected to the master over TLS')
    assert sentinel.execute_command('SENTINEL', 'get-master-addr-by-name', MASTER_NAME) == ['127.0.0.1',
                                                                                           str(ports['master'])]
    wait_for(lambda: int(sentinel.sentinel_master(MASTER_NAME)['num-slaves']) == 1,
             what='the Sentinel to find the replica over TLS')
    for port, password in ((ports['master'], DEFAULT_PASSWORD), (ports['sentinel'], SENTINEL_PASSWORD)):
        assert refuses_plaintext(port, password), 'port %d answered in plaintext' % port


def test_renewed_certificate_is_loaded_at_run_time_without_restart(tls_node):
    tls, ports = tls_node
    master = node_client(ports['master'], tls)
    wait_for(master.ping, what='the TLS master')
    pid, before = master.info('server')['process_id'], serial_of(ports['master'], tls['ca'])
    replica = node_client(ports['replica'], tls)
    wait_for(lambda: replica.info('replication')['master_link_status'] == 'up', what='replication over TLS')
    # A new certificate (same CA, new key) in place of the old files, as tls_certificates renews it.
    workdir = os.path.dirname(tls['dir'])
    renewed = os.path.join(workdir, 'renewed')
    os.makedirs(renewed)
    subprocess.check_call(['openssl', 'req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
                           '-keyout', os.path.join(renewed, 'k'), '-out', os.path.join(renewed, 'csr'), '-subj', '/CN=r'],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    subprocess.check_call(['openssl', 'x509', '-req', '-in', os.path.join(renewed, 'csr'), '-CA', tls['ca'], '-CAkey',
                           os.path.join(tls['dir'], 'ca.key'), '-CAcreateserial', '-out', os.path.join(renewed, 'c'),
                           '-days', '2', '-extfile', os.path.join(tls['dir'], 'ext.cnf')],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    shutil.copy(os.path.join(renewed, 'c'), os.path.join(tls['dir'], 'redis.crt'))
    shutil.copy(os.path.join(renewed, 'k'), os.path.join(tls['dir'], 'redis.key'))
    assert serial_of(ports['master'], tls['ca']) == before  # files replaced, nothing loaded yet
    # What roles/redis_node/tasks/tls_apply.yml sends (the same paths: Redis re-reads them).
    master.execute_command('CONFIG', 'SET', 'tls-cert-file', os.path.join(tls['dir'], 'redis.crt'),
                           'tls-key-file', os.path.join(tls['dir'], 'redis.key'), 'tls-ca-cert-file', tls['ca'])
    after = serial_of(ports['master'], tls['ca'])
    assert after != before
    assert master.info('server')['process_id'] == pid
    time.sleep(0.2)
    assert replica.info('replication')['master_link_status'] == 'up'


# --- HAProxy and the watcher over TLS -----------------------------------------------------------

@pytest.fixture(scope='module')
def tls_lab(tmp_path_factory):
    workdir = tmp_path_factory.mktemp('tls_lab')
    names = ['redis-01', 'redis-02', 'redis-03', 'sentinel-01', 'sentinel-02', 'sentinel-03']
    obj = Lab(workdir, tls=make_tls_files(workdir, names))
    try:
        wait_for(lambda: obj.health_status() == 200, timeout=15, what='a routable master over TLS')
        yield obj
    finally:
        obj.stop()


def test_haproxy_routes_over_tls_and_refuses_plaintext(tls_lab):
    lab = tls_lab
    wait_for(lambda: lab.routable() == ['redis-01'], timeout=10, what='redis-01 routable')
    assert [lab.reached() for _ in range(5)] == ['redis-01'] * 5
    stat = lab.show_stat()
    assert all(row['up'] for (proxy, _), row in stat.items() if proxy == 'chk_redis-01')
    assert refuses_plaintext(lab.frontend_port, DEFAULT_PASSWORD)


def test_watcher_follows_a_failover_over_tls(tls_lab):
    lab = tls_lab
    watcher = lab.start_watcher()
    try:
        assert watcher.config['tls'] is True
        old = lab.majority_master()
        sentinel_client(lab.sentinels['sentinel-01']).execute_command('SENTINEL', 'FAILOVER', MASTER_NAME)
        new = wait_for(lambda: (lambda m: m if m not in (None, old) else None)(lab.majority_master()), timeout=20,
                       what='a new master')
        wait_for(lambda: lab.routable() == [new] and lab.reached() == new, timeout=10, what='routing to the new master')
        assert all(watcher.subscribed.values())
        assert watcher.status()['ok']
    finally:
        lab.stop_watcher()
