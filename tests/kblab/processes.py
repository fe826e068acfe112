# -*- coding: utf-8 -*-
# Copyright: (c) 2026, KeyBuzz (@keybuzz)
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Real redis-server and redis-sentinel processes on loopback for tests and benchmarks: the test
credentials, free listening ports, Proc (one process with its own directory and config file),
servers, Sentinels, a master with replicas and three Sentinels, a CA for TLS, and wait_for."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import contextlib
import inspect
import os
import random
import shutil
import signal
import socket
import subprocess
import time

import redis

REDIS_SERVER = shutil.which('redis-server') or '/usr/bin/redis-server'
REDIS_SENTINEL = shutil.which('redis-sentinel') or '/usr/bin/redis-sentinel'

# Credentials used by the fixtures (test data only).
DEFAULT_PASSWORD = 'default-Pw-1'
ADMIN_USER, ADMIN_PASSWORD = 'admin', 'admin-Pw-2'
NOINFO_USER, NOINFO_PASSWORD = 'noinfo', 'noinfo-Pw-3'
REPL_USER, REPL_PASSWORD = 'replicator', 'repl-Pw-4'
SENTINEL_USER, SENTINEL_USER_PASSWORD = 'sentinel', 'sentinel-user-Pw-5'
SENTINEL_PASSWORD = 'sentinel-Pw-6'
MASTER_NAME = 'mymaster'
READY_TIMEOUT = 20.0


# Listening ports are taken below the kernel's ephemeral range (net.ipv4.ip_local_port_range, by
# default 32768-60999): a port from that range, free when picked, can become the source port of any
# outgoing connection (a replica's, a check's, another lane's) before a restarted process binds it
# again, and the restart then fails with "address in use" (seen once in CI: HAProxy restarted by
# test_haproxy_reload never came back).
LISTEN_PORTS = (20000, 32000)
_RANDOM = random.Random()


def free_port():
    while True:
        port = _RANDOM.randrange(*LISTEN_PORTS)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.bind(('127.0.0.1', port))
            return port
        except OSError:
            continue
        finally:
            sock.close()


def wait_for(predicate, timeout=READY_TIMEOUT, interval=0.1, what='condition'):
    """Poll ``predicate`` until it returns a truthy value or raise after ``timeout``."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:  # keep polling, remember the last error
            last = exc
        time.sleep(interval)
    raise AssertionError('timed out waiting for %s (last error: %r)' % (what, last))


def stop_process(popen, sig=signal.SIGTERM, timeout=5):
    """Send ``sig`` to a running process, wait ``timeout`` s, then SIGKILL it."""
    if popen is None or popen.poll() is not None:
        return
    popen.send_signal(sig)
    try:
        popen.wait(timeout)
    except subprocess.TimeoutExpired:
        popen.kill()
        popen.wait(timeout)


class Proc(object):
    """A redis-server or redis-sentinel process with its own directory and config file."""

    def __init__(self, binary, workdir, name, config, tls=False):
        self.port = free_port()
        self.dir = os.path.join(str(workdir), '%s-%d' % (name, self.port))
        os.makedirs(self.dir)
        self.conf = os.path.join(self.dir, '%s.conf' % name)
        with open(self.conf, 'w') as fh:
            fh.write(('port 0\ntls-port %d\n' if tls else 'port %d\n') % self.port)
            fh.write('bind 127.0.0.1\ndaemonize no\ndir %s\nlogfile ""\n' % self.dir)
            fh.write(config)
        self.binary = binary
        self.log = os.path.join(self.dir, 'out.log')
        self.popen = None
        # redis-py options every client() of a TLS process gets (e.g. ssl, ssl_ca_certs).
        self.tls_options = {}
        self.start()

    def start(self):
        with open(self.log, 'ab') as out:
            self.popen = subprocess.Popen([self.binary, self.conf], stdout=out, stderr=subprocess.STDOUT, cwd=self.dir)

    def client(self, **kwargs):
        kwargs.setdefault('socket_timeout', 2)
        for key, value in self.tls_options.items():
            kwargs.setdefault(key, value)
        if 'protocol' in inspect.signature(redis.Redis.__init__).parameters:
            kwargs.setdefault('protocol', 2)
        return redis.Redis(host='127.0.0.1', port=self.port, decode_responses=True, **kwargs)

    def pause(self):
        self.popen.send_signal(signal.SIGSTOP)

    def resume(self):
        self.popen.send_signal(signal.SIGCONT)

    def stop(self):
        if self.popen is not None and self.popen.poll() is None:
            self.resume()
        stop_process(self.popen)


SERVER_CONFIG = '''save ""
appendonly no
protected-mode yes
repl-diskless-sync yes
repl-diskless-sync-delay 0
user default on >{default} ~* &* +@all
user {admin} on >{admin_pw} ~* &* +@all
user {noinfo} on >{noinfo_pw} ~* &* +@all -info
user {repl} on >{repl_pw} +psync +replconf +ping
user {sent} on >{sent_pw} allchannels +multi +slaveof +ping +exec +subscribe +config|rewrite +role +publish +info +client|setname +client|kill +script|kill
masteruser {repl}
masterauth {repl_pw}
'''.format(default=DEFAULT_PASSWORD, admin=ADMIN_USER, admin_pw=ADMIN_PASSWORD, noinfo=NOINFO_USER,
           noinfo_pw=NOINFO_PASSWORD, repl=REPL_USER, repl_pw=REPL_PASSWORD, sent=SENTINEL_USER,
           sent_pw=SENTINEL_USER_PASSWORD)


def admin(proc, **kwargs):
    return proc.client(username=ADMIN_USER, password=ADMIN_PASSWORD, **kwargs)


def start_server(workdir, name, master=None, extra_config='', tls_options=None):
    """A redis-server with the test users (SERVER_CONFIG) and ``extra_config``, a replica of ``master``
    if given; with ``tls_options`` (redis-py's ssl options) TLS-only, and its clients use them."""
    config = SERVER_CONFIG + extra_config
    if master is not None:
        config += 'replicaof 127.0.0.1 %d\n' % master.port
    proc = Proc(REDIS_SERVER, workdir, name, config, tls=bool(tls_options))
    proc.tls_options = dict(tls_options or {})
    wait_for(lambda: admin(proc).ping(), what='%s to answer PING' % name)
    return proc


def wait_replicas_online(master, count):
    def ready():
        client = admin(master)
        client.set_response_callback('INFO', lambda r, **kw: r)
        return client.execute_command('INFO', 'replication').count('state=online') >= count
    wait_for(ready, what='%d replicas online' % count)


def start_sentinel(workdir, name, master, down_after_ms, failover_timeout_ms=60000, parallel_syncs=1, extra_config='',
                   tls_options=None):
    """A redis-sentinel (quorum 2) monitoring ``master`` as MASTER_NAME, logging in to the nodes as the
    Sentinel user; ``extra_config`` and ``tls_options`` as for start_server()."""
    config = '''requirepass {pw}
sentinel announce-ip 127.0.0.1
sentinel monitor {mname} 127.0.0.1 {port} 2
sentinel auth-user {mname} {user}
sentinel auth-pass {mname} {user_pw}
sentinel down-after-milliseconds {mname} {down}
sentinel failover-timeout {mname} {fto}
sentinel parallel-syncs {mname} {syncs}
'''.format(pw=SENTINEL_PASSWORD, mname=MASTER_NAME, port=master.port, user=SENTINEL_USER,
           user_pw=SENTINEL_USER_PASSWORD, down=down_after_ms, fto=failover_timeout_ms, syncs=parallel_syncs) + extra_config
    proc = Proc(REDIS_SENTINEL, workdir, name, config, tls=bool(tls_options))
    proc.tls_options = dict(tls_options or {})
    wait_for(lambda: proc.client(password=SENTINEL_PASSWORD).ping(), what='%s to answer PING' % name)
    return proc


def sentinel_view(proc):
    client = proc.client(password=SENTINEL_PASSWORD)
    client.set_response_callback('SENTINEL', lambda r, **kw: r)
    master = client.execute_command('SENTINEL', 'MASTER', MASTER_NAME)
    master = dict(zip(master[0::2], master[1::2]))
    replicas = client.execute_command('SENTINEL', 'REPLICAS', MASTER_NAME)
    healthy = 0
    for rep in replicas:
        flags = dict(zip(rep[0::2], rep[1::2])).get('flags', '')
        if not set(flags.split(',')) & {'s_down', 'o_down', 'disconnected'}:
            healthy += 1
    return int(master['num-other-sentinels']), healthy


def start_sentinels(workdir, master, replicas, down_after_ms):
    sentinels = [start_sentinel(workdir, 'sentinel%d' % i, master, down_after_ms) for i in range(3)]

    def converged():
        return all(sentinel_view(s) == (2, replicas) for s in sentinels)
    wait_for(converged, timeout=30, interval=0.2, what='sentinels to discover each other and the replicas')
    return sentinels


class Cluster(object):
    def __init__(self, master, replicas, sentinels=()):
        self.master = master
        self.replicas = list(replicas)
        self.sentinels = list(sentinels)

    def procs(self):
        return self.sentinels + self.replicas + [self.master]

    def stop(self):
        for proc in self.procs():
            proc.stop()


@contextlib.contextmanager
def sentinel_cluster(workdir, replicas, down_after_ms):
    """A master with ``replicas`` replicas and three Sentinels, stopped on leaving the context."""
    master = start_server(workdir, 'master')
    obj = Cluster(master, [])
    try:
        obj.replicas = [start_server(workdir, 'replica%d' % i, master) for i in range(replicas)]
        if replicas:
            wait_replicas_online(master, replicas)
        obj.sentinels = start_sentinels(workdir, master, replicas, down_after_ms=down_after_ms)
        yield obj
    finally:
        obj.stop()


def make_ca_and_cert(workdir, name):
    """Self-signed CA and a server certificate for IP 127.0.0.1 (EC keys: fast)."""
    def path(suffix):
        return os.path.join(str(workdir), '%s-%s' % (name, suffix))
    ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']
    with open(path('ext.cnf'), 'w') as fh:
        fh.write('subjectAltName=IP:127.0.0.1\n')
    cmds = [
        ['openssl', 'req', '-x509'] + ec + ['-keyout', path('ca.key'), '-out', path('ca.crt'), '-days', '2',
                                            '-subj', '/CN=%s test CA' % name],
        ['openssl', 'req'] + ec + ['-keyout', path('server.key'), '-out', path('server.csr'), '-subj', '/CN=127.0.0.1'],
        ['openssl', 'x509', '-req', '-in', path('server.csr'), '-CA', path('ca.crt'), '-CAkey', path('ca.key'),
         '-CAcreateserial', '-out', path('server.crt'), '-days', '2', '-extfile', path('ext.cnf')],
    ]
    for cmd in cmds:
        subprocess.check_call(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return dict(ca=path('ca.crt'), cert=path('server.crt'), key=path('server.key'))
