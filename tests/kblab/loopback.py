# -*- coding: utf-8 -*-
# Copyright: (c) 2026, KeyBuzz (@keybuzz)
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Loopback lab for the haproxy_redis role: 3 redis-server, 3 redis-sentinel and a real haproxy
started with a configuration rendered from roles/haproxy_redis/templates/haproxy.cfg.j2, and the
benchmarks' helpers on it (settled lab, +switch-master listener, the watcher as its own process,
kill and restart as a replica).

Used by tests/unit (the watcher, HAProxy reloads, TLS, the workload) and bench/; builds on
kblab.processes. The credentials are throwaway test passwords, valid only for processes started on
127.0.0.1 for the duration of one run.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import atexit
import importlib.util
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import jinja2
import yaml

from kblab import REPO_ROOT, processes
from kblab.processes import (ADMIN_PASSWORD, ADMIN_USER, DEFAULT_PASSWORD, MASTER_NAME, REDIS_SERVER, SENTINEL_PASSWORD,
                             admin, free_port, sentinel_view, stop_process, wait_for)

ROLE_DIR = os.path.join(REPO_ROOT, 'roles', 'haproxy_redis')
WATCHER_FILE = os.path.join(ROLE_DIR, 'files', 'haproxy-redis-watcher.py')
HAPROXY = shutil.which('haproxy') or '/usr/sbin/haproxy'

HC_USER, HC_PASSWORD = 'kb-healthcheck', 'healthcheck-Pw-7'
# Same ACL as roles/redis_node/templates/users.acl.j2 gives the health-check user.
HC_ACL = 'user %s on >%s resetchannels -@all +ping +info|replication +role +quit\n' % (HC_USER, HC_PASSWORD)


def load_watcher():
    """Import roles/haproxy_redis/files/haproxy-redis-watcher.py as a module."""
    spec = importlib.util.spec_from_file_location('haproxy_redis_watcher', WATCHER_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- templates ---------------------------------------------------------------------------------

def role_defaults(role='haproxy_redis'):
    with open(os.path.join(REPO_ROOT, 'roles', role, 'defaults', 'main.yml')) as fh:
        return yaml.safe_load(fh)


def make_state_dir(path):
    """The empty server-state files haproxy.cfg reads, as the role creates them (a reload fills them)."""
    if not os.path.isdir(path):
        os.makedirs(path)
    for name in ('server-state', 'server-state.map'):
        open(os.path.join(path, name), 'a').close()
    return path


_STATE_DIR = []


def default_state_dir():
    """A shared empty server-state directory for configurations rendered without one."""
    if not _STATE_DIR:
        path = tempfile.mkdtemp(prefix='haproxy_state_')
        atexit.register(shutil.rmtree, path, True)
        _STATE_DIR.append(make_state_dir(path))
    return _STATE_DIR[0]


def render(template, role='haproxy_redis', **overrides):
    """Render a role template with the role defaults, ``overrides`` winning.

    Defaults that are Jinja expressions over the inventory (nodes, sentinels, credentials, bind
    address) must be given in ``overrides``; plain defaults are used as they are, and a default that
    is only another variable ("{{ haproxy_redis_bind_address }}") takes that variable's value.
    """
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(os.path.join(REPO_ROOT, 'roles', role, 'templates')),
                             undefined=jinja2.StrictUndefined, trim_blocks=True, keep_trailing_newline=True)
    env.filters['to_json'] = json.dumps
    env.filters['bool'] = lambda value: value if isinstance(value, bool) else str(value).lower() in ('1', 'true', 'yes', 'on')
    defaults = role_defaults(role)
    variables = dict((k, v) for k, v in defaults.items() if not (isinstance(v, str) and '{{' in v))
    variables['ansible_managed'] = 'Rendered by tests/kblab/loopback.py'
    if role == 'haproxy_redis':
        variables['haproxy_redis_tls'] = False  # its default reads redis_ha_tls (an inventory variable)
        variables['haproxy_redis_state_dir'] = default_state_dir()  # haproxy -c needs its files to exist
        variables['haproxy_redis_metrics_allowed_networks'] = ['127.0.0.0/8']  # its default reads the inventory
    variables.update(overrides)
    for key, value in defaults.items():
        alias = re.match(r'^\{\{ *([a-z_]+) *\}\}$', value) if isinstance(value, str) else None
        if key not in variables and alias and alias.group(1) in variables:
            variables[key] = variables[alias.group(1)]
    return env.get_template(template).render(**variables)


# --- processes ---------------------------------------------------------------------------------

def make_tls_files(workdir, names):
    """A CA, and one certificate + key naming 127.0.0.1 and ``names`` (the node and Sentinel names the
    haproxy.cfg checks verify), also copied to haproxy.crt / haproxy.key as the role lays them out."""
    tls_dir = os.path.join(str(workdir), 'tls')
    os.makedirs(tls_dir)

    def path(name):
        return os.path.join(tls_dir, name)
    ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']
    with open(path('ext.cnf'), 'w') as fh:
        fh.write('subjectAltName=IP:127.0.0.1,%s\n' % ','.join('DNS:%s' % n for n in names))
    for cmd in (['openssl', 'req', '-x509'] + ec + ['-keyout', path('ca.key'), '-out', path('ca.crt'), '-days', '2',
                                                  '-subj', '/CN=loopback test CA'],
                ['openssl', 'req'] + ec + ['-keyout', path('haproxy.key'), '-out', path('server.csr'), '-subj', '/CN=lab'],
                ['openssl', 'x509', '-req', '-in', path('server.csr'), '-CA', path('ca.crt'), '-CAkey', path('ca.key'),
                 '-CAcreateserial', '-out', path('haproxy.crt'), '-days', '2', '-extfile', path('ext.cnf')]):
        subprocess.check_call(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return dict(dir=tls_dir, ca=path('ca.crt'), cert=path('haproxy.crt'), key=path('haproxy.key'))


def tls_config(tls):
    """redis.conf / sentinel.conf lines of a TLS-only process, as the roles write them."""
    if not tls:
        return ''
    return ('tls-cert-file %s\ntls-key-file %s\ntls-ca-cert-file %s\ntls-auth-clients no\ntls-replication yes\n'
            % (tls['cert'], tls['key'], tls['ca']))


def tls_client_options(tls):
    return dict(ssl=True, ssl_ca_certs=tls['ca'], ssl_cert_reqs='required') if tls else {}


# As the role ships it: the fence that the "no Sentinel majority" rule reads (min_slaves_good_slaves).
FENCE_CONFIG = 'min-replicas-to-write 1\nmin-replicas-max-lag 2\n'


def start_node(workdir, name, master=None, tls=None):
    """A node as the roles configure it: the health-check user and the write fence on top of the test users."""
    return processes.start_server(workdir, name, master, extra_config=HC_ACL + FENCE_CONFIG + tls_config(tls),
                                  tls_options=tls_client_options(tls))


def start_sentinel(workdir, name, master, down_after_ms=1000, failover_timeout_ms=3000, tls=None):
    return processes.start_sentinel(workdir, name, master, down_after_ms, failover_timeout_ms=failover_timeout_ms,
                                    parallel_syncs=2, extra_config='sentinel resolve-hostnames no\n' + tls_config(tls),
                                    tls_options=tls_client_options(tls))


def sentinel_client(proc, **kwargs):
    return proc.client(password=SENTINEL_PASSWORD, **kwargs)


def sentinel_master(proc):
    reply = sentinel_client(proc).execute_command('SENTINEL', 'get-master-addr-by-name', MASTER_NAME)
    return (reply[0], int(reply[1])) if reply else None


class HAProxy(object):
    """haproxy in master-worker mode (-Ws, as Debian's haproxy.service starts it)."""

    def __init__(self, workdir, config_text):
        self.dir = str(workdir)
        self.conf = os.path.join(self.dir, 'haproxy.cfg')
        self.log = os.path.join(self.dir, 'haproxy.log')
        with open(self.conf, 'w') as fh:
            fh.write(config_text)
        subprocess.check_call([HAPROXY, '-c', '-q', '-f', self.conf])
        self.popen = None

    def start(self, admin_socket):
        with open(self.log, 'ab') as out:
            self.popen = subprocess.Popen([HAPROXY, '-Ws', '-f', self.conf], stdout=out, stderr=subprocess.STDOUT,
                                          cwd=self.dir)
        wait_for(lambda: os.path.exists(admin_socket) or self.popen.poll() is not None, timeout=10,
                 what='haproxy admin socket')
        assert self.popen.poll() is None, 'haproxy exited (%s): %s' % (self.popen.returncode, self.log_tail())

    def log_tail(self, lines=10):
        with open(self.log, 'rb') as fh:
            return ' | '.join(fh.read().decode('utf-8', 'replace').splitlines()[-lines:])

    def stop(self):
        stop_process(self.popen)


class Lab(object):
    """Three Redis nodes, three Sentinels and HAProxy on loopback (``tls``: everything TLS only, as
    with haproxy_redis_tls: make_tls_files() output)."""

    def __init__(self, workdir, down_after_ms=1000, failover_timeout_ms=3000, tls=None, **variables):
        self.workdir = str(workdir)
        self.tls = tls
        self.nodes = {}
        self.sentinels = {}
        self.haproxy = None
        self.watcher = None
        self.watcher_thread = None
        self.watcher_mod = load_watcher()
        self.admin_socket = os.path.join(self.workdir, 'admin.sock')
        self.state_dir = make_state_dir(os.path.join(self.workdir, 'state'))
        self.frontend_port = free_port()
        self.health_port = free_port()
        self.stats_port = free_port()
        self.watcher_port = free_port()
        self.metrics_port = free_port()
        try:
            master = start_node(self.workdir, 'redis-01', tls=tls)
            self.nodes['redis-01'] = master
            for name in ('redis-02', 'redis-03'):
                self.nodes[name] = start_node(self.workdir, name, master, tls=tls)
            self.wait_replicas(master, 2)
            for i in (1, 2, 3):
                name = 'sentinel-0%d' % i
                self.sentinels[name] = start_sentinel(self.workdir, name, master, down_after_ms, failover_timeout_ms,
                                                      tls=tls)
            wait_for(self._sentinels_converged, timeout=30, interval=0.2, what='Sentinels to know each other')
            self.variables = self.template_variables(**variables)
            self.haproxy = HAProxy(self.workdir, render('haproxy.cfg.j2', **self.variables))
            self.haproxy.start(self.admin_socket)
        except Exception:
            self.stop()
            raise

    # -- setup helpers
    @staticmethod
    def wait_replicas(master, count):
        def ready():
            info = admin(master).info('replication')
            return sum(1 for k, v in info.items() if k.startswith('slave') and isinstance(v, dict)
                       and v.get('state') == 'online') >= count
        wait_for(ready, what='%d replicas online' % count)

    def _sentinels_converged(self):
        for proc in self.sentinels.values():
            client = sentinel_client(proc)
            master = client.execute_command('SENTINEL', 'MASTER', MASTER_NAME)
            master = dict(zip(master[0::2], master[1::2]))
            if int(master['num-other-sentinels']) != len(self.sentinels) - 1 or int(master['num-slaves']) != 2:
                return False
        return True

    def template_variables(self, **extra):
        variables = dict(
            haproxy_redis_nodes=[{'name': n, 'address': '127.0.0.1', 'port': p.port} for n, p in self.nodes.items()],
            haproxy_redis_sentinels=[{'name': n, 'address': '127.0.0.1', 'port': p.port}
                                     for n, p in self.sentinels.items()],
            haproxy_redis_master_name=MASTER_NAME,
            haproxy_redis_sentinel_port=26379,
            haproxy_redis_bind_address='127.0.0.1',
            haproxy_redis_frontend_port=self.frontend_port,
            haproxy_redis_health_bind_address='127.0.0.1',
            haproxy_redis_health_port=self.health_port,
            haproxy_redis_stats_port=self.stats_port,
            haproxy_redis_admin_socket=self.admin_socket,
            haproxy_redis_state_dir=self.state_dir,
            haproxy_redis_healthcheck_user=HC_USER,
            haproxy_redis_healthcheck_password=HC_PASSWORD,
            haproxy_redis_sentinel_password=SENTINEL_PASSWORD,
            haproxy_redis_app_password=DEFAULT_PASSWORD,
            haproxy_redis_maxconn=1000,  # the sandbox's fd hard limit is below what 10000 needs
            haproxy_redis_tls=bool(self.tls),
            haproxy_redis_watcher_metrics_address='127.0.0.1',
            haproxy_redis_watcher_metrics_port=self.watcher_port,
            haproxy_redis_metrics_port=self.metrics_port,
            # Most tests run HAProxy alone or start and stop the watcher: the health endpoint follows the
            # routing rules only; tests/unit/test_watcher_endpoint.py turns the watcher requirement on.
            haproxy_redis_health_requires_watcher=False,
        )
        if self.tls:
            variables.update(haproxy_redis_tls_dir=self.tls['dir'], haproxy_redis_tls_ca_file=self.tls['ca'])
        if os.geteuid() != 0:  # cannot chroot or switch user: run as the test user
            variables.update(haproxy_redis_chroot='', haproxy_redis_process_user='', haproxy_redis_process_group='')
        variables.update(extra)
        return variables

    # -- watcher (in-process thread running the role's file)
    def watcher_config(self):
        text = render('redis-watcher.json.j2', **self.variables)
        config = json.loads(text)
        for key, value in self.watcher_mod.DEFAULTS.items():
            config.setdefault(key, value)
        return config

    def start_watcher(self, **overrides):
        config = self.watcher_config()
        config.update(overrides)
        self.watcher = self.watcher_mod.Watcher(config)
        self.watcher_thread = threading.Thread(target=self.watcher.run, name='watcher', daemon=True)
        self.watcher_thread.start()
        wait_for(lambda: all(self.watcher.subscribed.values()), timeout=10, what='watcher subscriptions')
        return self.watcher

    def stop_watcher(self):
        if self.watcher is not None:
            self.watcher.stop()
            self.watcher_thread.join(5)
            self.watcher = None

    # -- observation
    def show_stat(self):
        return self.watcher_mod.parse_show_stat(self.watcher_mod.haproxy_command(self.admin_socket, 'show stat'))

    def routable(self):
        mod = self.watcher_mod
        cfg = self.watcher_config()
        return mod.routable_nodes(cfg['nodes'], cfg['sentinels'], self.show_stat())

    def node_by_port(self, port):
        for name, proc in self.nodes.items():
            if proc.port == port:
                return name
        return None

    def majority_master(self):
        answers = []
        for proc in self.sentinels.values():
            try:
                answers.append(sentinel_master(proc))
            except Exception:
                answers.append(None)
        addr = self.watcher_mod.majority_master(answers, len(self.sentinels))
        return self.node_by_port(addr[1]) if addr else None

    def reached(self, timeout=0.5):
        """Name of the node a new client connection through HAProxy reaches, or None when refused."""
        import redis
        client = redis.Redis(host='127.0.0.1', port=self.frontend_port, password=DEFAULT_PASSWORD,
                             socket_timeout=timeout, socket_connect_timeout=timeout, decode_responses=True,
                             # retry=None: redis-py would otherwise retry a refused connection and
                             # report a success that took seconds instead of the refusal.
                             **dict(tls_client_options(self.tls),
                                    **({'protocol': 2, 'retry': None}
                                       if 'protocol' in redis.Redis.__init__.__code__.co_varnames else {})))
        try:
            return self.node_by_port(int(client.info('server')['tcp_port']))
        except redis.RedisError:
            return None
        finally:
            client.close()

    def health(self):
        """(status, body) of the health endpoint."""
        sock = socket.create_connection(('127.0.0.1', self.health_port), timeout=2)
        try:
            sock.sendall(b'GET /redis-master HTTP/1.0\r\nHost: lab\r\n\r\n')
            data = b''
            while True:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                data += chunk
            head, _, body = data.partition(b'\r\n\r\n')
            return int(head.split(b' ', 2)[1]), body.decode('utf-8', 'replace').strip()
        finally:
            sock.close()

    def health_status(self):
        return self.health()[0]

    def stop(self):
        self.stop_watcher()
        if self.haproxy is not None:
            self.haproxy.stop()
        for proc in list(self.sentinels.values()) + list(self.nodes.values()):
            proc.stop()


def monotonic_ms():
    return time.monotonic() * 1000.0


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
    if any(sentinel_view(p)[1] != len(lab.nodes) - 1 for p in lab.sentinels.values()):
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
        stop_process(self.popen, signal.SIGINT)


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
    return dict(nproc=cmd(['nproc']), cpu=model, redis=cmd([REDIS_SERVER, '--version']),
                haproxy=cmd(['haproxy', '-v']).splitlines()[0])
