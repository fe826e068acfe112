#!/usr/bin/python3
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, KeyBuzz (@keybuzz)
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""haproxy-redis-watcher: move HAProxy to the new Redis master as soon as Sentinel switches.

HAProxy routes a client to a Redis node only while the node's own check says role:master
(backend bk_redis) AND a majority of the Sentinels name it (backend chk_<node>, one server per
Sentinel). Those checks run every second; this watcher only makes them converge faster:

* it subscribes to +switch-master on every Sentinel (one thread each, reconnecting with
  back-off), and on a switch of our master it polls every Sentinel at once;
* when (and only when) a Sentinel MAJORITY names a master, it forces through the runtime API
  the check state HAProxy would reach by itself a moment later: chk_<node>/<sentinel> servers
  up or down according to each Sentinel's answer, the old master's bk_redis server down (its
  client sessions are shut), the new master's bk_redis server up once the node itself answers
  ROLE = master;
* it reconciles the same way every few seconds;
* it fences the master when a failover starts: on +try-failover / +elected-leader for our master
  (any Sentinel), the master's bk_redis server goes to maintenance and its sessions are shut,
  BEFORE Sentinel promotes a replica. Without the fence, a planned SENTINEL FAILOVER lets the old
  master take writes (acknowledged by the replica that has not been moved yet) after the new one
  was promoted: those writes are then lost. The fence is lifted when a Sentinel majority names
  another node, when the failover was aborted and no Sentinel has one in progress any more, or
  after fence_timeout seconds; a watcher that starts lifts every maintenance it finds.

Apart from the fence it only uses "set server ... health up|down" and "shutdown sessions": the
next check overrides a forced health state, so a dead or wrong watcher cannot keep a server
routable or unroutable for longer than one check interval (or, fenced, until systemd restarts it).

With TLS (config "tls": true) every connection to a Sentinel or a node is TLS, verified with
"tls_ca_file" and the server's address.

Decision logic is in pure functions so that unit tests can call it directly: the rules shared with
the rest of the collection (who is master, may a proxy route) come from ha_rules.py, installed
beside this script (plugins/module_utils/ha_rules.py in the collection); plan_actions and the
fence rules are the watcher's own. Needs python3 and redis-py (4.3 or newer).
"""

from __future__ import absolute_import, division, print_function

import argparse
import csv
import inspect
import io
import json
import logging
import os
import socket
import ssl
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# In the repository the rules live in plugins/module_utils (the unit tests load this file from there).
sys.path.append(os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', '..', 'plugins', 'module_utils'))
import ha_rules  # noqa: E402  (installed beside this script by the haproxy_redis role)

try:
    import redis
except ImportError:  # reported by main(); the pure functions do not need it
    redis = None

LOG = logging.getLogger('haproxy-redis-watcher')

DEFAULTS = {
    'backend': 'bk_redis',
    'check_backend_prefix': 'chk_',
    'admin_socket': '/run/haproxy/admin.sock',
    'reconcile_interval': 5.0,
    'confirm_poll': 0.1,
    'confirm_window': 10.0,
    'timeout': 0.5,
    'backoff_min': 0.2,
    'backoff_max': 5.0,
    'ping_interval': 1.0,
    'healthcheck_user': None,
    'healthcheck_password': None,
    'fence_timeout': 35.0,
    # TLS (haproxy_redis_tls): Sentinels and nodes are verified with this CA and their address.
    'tls': False,
    'tls_ca_file': None,
    # Its own HTTP endpoint (/metrics for Prometheus, /healthz for HAProxy's health rule); off without a port.
    'metrics_address': None,
    'metrics_port': 0,
    # /healthz answers 503 when the last complete reconcile (Sentinels asked, HAProxy read) is older.
    'stale_after': 15.0,
    # TLS only: how often the certificates the nodes, the Sentinels and this HAProxy node serve are
    # read (their expiry in /metrics), and redis_ha_tls_renew_days (reported beside it for the alert).
    'certificate_interval': 300.0,
    'certificate_renew_days': 30,
    'frontend_address': None,
    'frontend_port': 0,
}

# Published by a Sentinel that starts (or leads) a failover: "master <name> <ip> <port>".
FENCE_EVENTS = ('+try-failover', '+elected-leader')
ABORT_EVENTS = ('-failover-abort-not-elected', '-failover-abort-no-good-slave', '-failover-abort-slave-timeout',
                '+failover-end-for-timeout')


# --- pure decision functions -------------------------------------------------------------------

def majority(total):
    """Smallest number of Sentinels that is a strict majority of ``total`` configured ones."""
    return ha_rules.majority(total)


def parse_switch_message(data):
    """Payload of +switch-master (``<name> <old-ip> <old-port> <new-ip> <new-port>``) -> dict or None."""
    if isinstance(data, bytes):
        data = data.decode('utf-8', 'replace')
    parts = str(data).split()
    if len(parts) != 5:
        return None
    try:
        return {'name': parts[0], 'old': (parts[1], int(parts[2])), 'new': (parts[3], int(parts[4]))}
    except ValueError:
        return None


def parse_master_event(data):
    """Payload ``master <name> <ip> <port>`` of a failover event -> {'name', 'address'} or None."""
    if isinstance(data, bytes):
        data = data.decode('utf-8', 'replace')
    parts = str(data).split()
    if len(parts) < 4 or parts[0] != 'master':
        return None
    try:
        return {'name': parts[1], 'address': (parts[2], int(parts[3]))}
    except ValueError:
        return None


def fence_release(fenced, majority_node, failover_running, aborted, now, deadline):
    """Why the fence of node ``fenced`` can be lifted (text), or None to keep it.

    ``majority_node``: the node a Sentinel majority names now (or None); ``failover_running``: a
    Sentinel reports a failover in progress for the master; ``aborted``: an abort event was seen.
    """
    if majority_node is not None and majority_node != fenced:
        return 'a Sentinel majority names %s' % majority_node
    if aborted and not failover_running:
        return 'the failover was aborted and none is in progress'
    if now >= deadline:
        return 'fence timeout'
    return None


def reconcile_freshness(last, stale_after, now):
    """(fresh, why) of a watcher whose last complete reconcile ended at ``last`` (None: never)."""
    if last is None:
        return False, 'stale: no complete reconcile yet'
    age = now - last
    if age > stale_after:
        return False, 'stale: last complete reconcile %.1f s ago (limit %.1f s)' % (age, stale_after)
    return True, 'fresh: last complete reconcile %.1f s ago' % max(0.0, age)


def prometheus_label(value):
    return str(value).replace('\\', '\\\\').replace('\n', '\\n').replace('"', '\\"')


def prometheus_number(value):
    return repr(float(value)) if isinstance(value, float) else str(int(value))


def majority_master(answers, total):
    """Master address (host, port) named by a majority of the ``total`` configured Sentinels
    (ha_rules.sentinel_majority: Sentinels that did not answer count against it), or None."""
    return ha_rules.sentinel_majority(list(answers), total)


def majority_epoch(views, total):
    """The configuration epoch of the master a Sentinel majority names: ``views`` holds one
    ((host, port), epoch) per Sentinel that answered SENTINEL MASTER (None for the others). Returns
    (address, highest epoch among the Sentinels naming it) or (None, None) without a majority."""
    views = list(views)
    named = majority_master([v[0] if v else None for v in views], total)
    if named is None:
        return None, None
    return named, max(v[1] for v in views if v and v[0] == named)


def confirms_switch(event, answers, total):
    """Whether the Sentinel majority confirms the new master of a +switch-master ``event``."""
    return event is not None and majority_master(answers, total) == tuple(event['new'])


def node_address(node):
    return (str(node['address']), int(node['port']))


def node_for_address(nodes, addr):
    for node in nodes:
        if addr is not None and node_address(node) == tuple(addr):
            return node
    return None


def parse_show_stat(text):
    """``show stat`` CSV -> {(proxy, server): {'status', 'up', 'scur'}} for server rows only."""
    text = text.lstrip()
    if text.startswith('# '):
        text = text[2:]
    result = {}
    for row in csv.DictReader(io.StringIO(text)):
        proxy, server = row.get('pxname'), row.get('svname')
        if not proxy or server in (None, 'FRONTEND', 'BACKEND'):
            continue
        status = row.get('status') or ''
        try:
            scur = int(row.get('scur') or 0)
        except ValueError:
            scur = 0
        # "UP", "UP 1/2" (going down), "DOWN", "DOWN 1/2" (going up), "MAINT", "DRAIN", "NOLB", "no check"
        result[(proxy, server)] = {'status': status, 'up': status.split(' ')[0] in ('UP', 'NOLB', 'DRAIN'),
                                   'scur': scur}
    return result


def routable_nodes(nodes, sentinels, stat, backend='bk_redis', prefix='chk_', sole_master=True,
                   followed_backend='fo_redis'):
    """Names of the nodes HAProxy would route to: ha_rules.routable_nodes() (which haproxy.cfg's
    use-server rules implement) on the check states of ``stat`` (parse_show_stat() output)."""
    needed = majority(len(sentinels))
    names = [node['name'] for node in nodes]
    held = [name for name in names
            if sum(1 for s in sentinels if stat.get((prefix + name, s['name']), {}).get('up')) >= needed]
    own_up = [name for name in names if stat.get((backend, name), {}).get('up')]
    followed = [name for name in names if stat.get((followed_backend, name), {}).get('up')]
    return ha_rules.routable_nodes(names, held, own_up, followed, sole_master)


def plan_actions(nodes, sentinels, answers, stat, master_verified=False, backend='bk_redis', prefix='chk_'):
    """What to change in HAProxy so that it routes to the master a Sentinel majority names.

    ``answers``: {sentinel name: (host, port) or None}; ``stat``: parse_show_stat() output;
    ``master_verified``: the node named by the majority answered ROLE = master itself.
    Returns (target node or None, [runtime API commands]). Without a majority, or when the
    majority names an address that is not one of ``nodes``, nothing is changed (HAProxy's own
    checks keep deciding). Commands that take traffic away come before the ones that give it.
    """
    target = node_for_address(nodes, majority_master(answers.values(), len(sentinels)))
    if target is None:
        return None, []
    routable = routable_nodes(nodes, sentinels, stat, backend, prefix)
    downs, ups = [], []
    for node in nodes:
        if node is target:
            continue
        own = stat.get((backend, node['name']))
        # Not the majority's master but still able to take (or holding) client sessions.
        if own and own['up'] and (node['name'] in routable or own['scur'] > 0):
            downs.append('set server %s/%s health down' % (backend, node['name']))
            downs.append('shutdown sessions server %s/%s' % (backend, node['name']))
    for node in nodes:
        for sentinel in sentinels:
            answer = answers.get(sentinel['name'])
            current = stat.get((prefix + node['name'], sentinel['name']))
            if answer is None or current is None:
                continue  # unknown opinion: leave it to the check
            wanted = tuple(answer) == node_address(node)
            if wanted != current['up']:
                (ups if wanted else downs).append('set server %s%s/%s health %s' % (
                    prefix, node['name'], sentinel['name'], 'up' if wanted else 'down'))
    own = stat.get((backend, target['name']))
    if own is not None and not own['up'] and master_verified:
        ups.append('set server %s/%s health up' % (backend, target['name']))
    return target, downs + ups


def load_config(path):
    with open(path) as fh:
        config = json.load(fh)
    for key, value in DEFAULTS.items():
        config.setdefault(key, value)
    missing = [k for k in ('master_name', 'sentinels', 'nodes', 'sentinel_password') if not config.get(k)]
    if missing:
        raise ValueError('%s: missing %s' % (path, ', '.join(missing)))
    return config


# --- I/O ---------------------------------------------------------------------------------------

def haproxy_command(path, command, timeout=1.0):
    """Send one command to the HAProxy runtime API (non-interactive) and return its answer."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(path)
        sock.sendall(command.encode() + b'\n')
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
        return b''.join(chunks).decode('utf-8', 'replace')
    finally:
        sock.close()


def _redis_client(host, port, timeout, **kwargs):
    if 'protocol' in inspect.signature(redis.Redis.__init__).parameters:
        kwargs.setdefault('protocol', 2)
    return redis.Redis(host=host, port=int(port), socket_timeout=timeout, socket_connect_timeout=timeout,
                       decode_responses=True, **kwargs)


def tls_options(config):
    """redis-py options for the Sentinels and nodes: none without TLS; with TLS, verify the server's
    certificate with the CA file and its address (the certificates name the private addresses)."""
    if not config.get('tls'):
        return {}
    return {'ssl': True, 'ssl_ca_certs': config.get('tls_ca_file'), 'ssl_cert_reqs': 'required',
            'ssl_check_hostname': True}


def certificate_expiry(address, port, ca_file, timeout):
    """(expiry, why): when the certificate that ``address:port`` serves expires (Unix time), verified
    with ``ca_file`` and the address, and None; or (0, why) when it cannot be read or verified (expired,
    another CA, no TLS, no answer), so that an alert on the expiry fires for those too."""
    context = ssl.create_default_context(cafile=ca_file)
    try:
        with socket.create_connection((address, int(port)), timeout=timeout) as raw:
            with context.wrap_socket(raw, server_hostname=address) as tls:
                cert = tls.getpeercert()
        return float(ssl.cert_time_to_seconds(cert['notAfter'])), None
    except (OSError, ValueError, KeyError, TypeError) as exc:  # ssl.SSLError is an OSError
        return 0.0, describe_error(exc)


def describe_error(exc):
    """Exception -> short text. redis-py messages never contain the password."""
    return '%s: %s' % (type(exc).__name__, str(exc).splitlines()[0] if str(exc) else '')


class Watcher(object):
    def __init__(self, config):
        self.config = config
        self.nodes = [dict(n, port=int(n['port'])) for n in config['nodes']]
        self.sentinels = [dict(s, port=int(s['port'])) for s in config['sentinels']]
        self.stop_event = threading.Event()
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._pending = None           # (switch event, deadline) awaiting majority confirmation
        self._sentinel_ok = {}         # last known reachability, to log changes only
        self.subscribed = {s['name']: False for s in self.sentinels}
        self.actions_done = []          # (time, command, reason), for tests and --once
        self.switch_events = []         # (time, sentinel name, event)
        self._fences = {}               # node name -> [deadline, abort seen]
        self._threads = []
        # What /metrics and /healthz report (see metrics_text and fresh).
        self.counters = {'reconciles': 0, 'reconcile_errors': 0, 'commands': 0, 'command_errors': 0,
                         'fences': 0, 'switch_events': 0, 'route_changes': 0}
        self.last_reconcile = None       # time.time() of the last complete reconcile (for /metrics)
        self._last_reconcile_mono = None  # time.monotonic() of it (for /healthz: immune to clock steps)
        self.majority_node = None        # node the Sentinel majority named then (None: no majority)
        self.routed = None               # node the watcher last routed to
        self.certificates = {}           # (kind, name, 'address:port') -> expiry (Unix time; 0: unreadable)
        self.epoch = None                # (address, config epoch) of the Sentinel majority's master, for /metrics
        self._pool = ThreadPoolExecutor(max_workers=max(1, len(self.sentinels)))

    # -- Sentinel queries
    def _sentinel_client(self, sentinel, timeout):
        return _redis_client(sentinel['address'], sentinel['port'], timeout, password=self.config['sentinel_password'],
                             **tls_options(self.config))

    def ask_sentinel(self, sentinel):
        try:
            client = self._sentinel_client(sentinel, self.config['timeout'])
            try:
                reply = client.execute_command('SENTINEL', 'get-master-addr-by-name', self.config['master_name'])
            finally:
                client.close()
            answer = (str(reply[0]), int(reply[1])) if reply else None
            self._note_sentinel(sentinel, True, None if answer else 'does not know master %s' % self.config['master_name'])
            return answer
        except Exception as exc:  # one bad Sentinel never stops the others
            self._note_sentinel(sentinel, False, describe_error(exc))
            return None

    def _note_sentinel(self, sentinel, ok, why):
        with self._lock:
            before = self._sentinel_ok.get(sentinel['name'])
            self._sentinel_ok[sentinel['name']] = ok and why is None
        if before != (ok and why is None):
            if ok and why is None:
                LOG.info('sentinel %s (%s:%d) answers', sentinel['name'], sentinel['address'], sentinel['port'])
            else:
                LOG.warning('sentinel %s (%s:%d) gives no master: %s', sentinel['name'], sentinel['address'],
                            sentinel['port'], why)

    def sentinel_master(self, sentinel):
        """SENTINEL MASTER of the master as a dict of text keys (raises when the Sentinel does not answer)."""
        client = self._sentinel_client(sentinel, self.config['timeout'])
        try:
            reply = client.execute_command('SENTINEL', 'MASTER', self.config['master_name'])
        finally:
            client.close()
        fields = dict(zip(reply[::2], reply[1::2])) if isinstance(reply, list) else reply
        return dict((str(k), v) for k, v in fields.items())

    def failover_running(self):
        """Whether any Sentinel reports a failover in progress for the master (unreachable: no)."""
        def ask(sentinel):
            try:
                return 'failover_in_progress' in str(self.sentinel_master(sentinel).get('flags', ''))
            except Exception:
                return False
        return any(self._pool.map(ask, self.sentinels))

    def poll_sentinels(self):
        futures = dict((s['name'], self._pool.submit(self.ask_sentinel, s)) for s in self.sentinels)
        return dict((name, future.result()) for name, future in futures.items())

    def verify_master(self, node):
        """The node itself says ROLE = master (health-check user); False when not configured."""
        if not self.config.get('healthcheck_user'):
            return False
        try:
            client = _redis_client(node['address'], node['port'], self.config['timeout'],
                                   username=self.config['healthcheck_user'],
                                   password=self.config['healthcheck_password'], **tls_options(self.config))
            try:
                role = client.execute_command('ROLE')
            finally:
                client.close()
            return bool(role) and str(role[0]) == 'master'
        except Exception as exc:
            LOG.warning('cannot verify the role of %s (%s:%d): %s', node['name'], node['address'], node['port'],
                        describe_error(exc))
            return False

    # -- HAProxy
    def haproxy(self, command):
        return haproxy_command(self.config['admin_socket'], command, timeout=max(1.0, self.config['timeout']))

    def haproxy_state(self):
        return parse_show_stat(self.haproxy('show stat'))

    # -- fence
    def _run_commands(self, commands, reason):
        for command in commands:
            try:
                answer = self.haproxy(command).strip()
            except Exception as exc:
                self.count('command_errors')
                LOG.warning('%s: %s failed: %s', reason, command, describe_error(exc))
                continue
            # "set server" and "shutdown sessions" answer nothing when they worked; text is HAProxy's refusal.
            self.count('command_errors' if answer else 'commands')
            self.actions_done.append((time.time(), command, reason))
            LOG.info('%s: %s%s', reason, command, (' -> %s' % answer) if answer else '')

    def fence(self, sentinel, channel, data):
        event = parse_master_event(data)
        if event is None or event['name'] != self.config['master_name']:
            return
        node = node_for_address(self.nodes, event['address'])
        if node is None:
            return
        with self._lock:
            new = node['name'] not in self._fences
            self._fences[node['name']] = [time.monotonic() + float(self.config['fence_timeout']), False]
        if new:
            self.count('fences')
            self._run_commands(['set server %s/%s state maint' % (self.config['backend'], node['name']),
                                'shutdown sessions server %s/%s' % (self.config['backend'], node['name'])],
                               'sentinel %s %s: fence %s' % (sentinel['name'], channel, node['name']))
        self._wake.set()

    def note_abort(self, sentinel, channel):
        with self._lock:
            for fence in self._fences.values():
                fence[1] = True
        LOG.info('sentinel %s: %s', sentinel['name'], channel)
        self._wake.set()

    def release_fences(self, answers):
        with self._lock:
            fences = dict((k, list(v)) for k, v in self._fences.items())
        if not fences:
            return
        target = node_for_address(self.nodes, majority_master(answers.values(), len(self.sentinels)))
        running = self.failover_running()
        for name, (deadline, aborted) in fences.items():
            why = fence_release(name, target['name'] if target else None, running, aborted, time.monotonic(), deadline)
            if why:
                with self._lock:
                    self._fences.pop(name, None)
                self._run_commands(['set server %s/%s state ready' % (self.config['backend'], name)],
                                   'release fence of %s (%s)' % (name, why))

    def release_stale_maintenance(self):
        """At start: no fence survives a watcher restart."""
        try:
            stat = self.haproxy_state()
        except Exception as exc:
            LOG.warning('cannot read HAProxy state from %s: %s', self.config['admin_socket'], describe_error(exc))
            return
        self._run_commands(['set server %s/%s state ready' % (proxy, server)
                            for (proxy, server), row in sorted(stat.items())
                            if proxy == self.config['backend'] and row['status'].startswith('MAINT')],
                           'start: lift a fence left by a previous run')

    # -- decisions
    def reconcile(self, reason='periodic'):
        """Poll the Sentinels and HAProxy, apply plan_actions(). Returns (target name, commands)."""
        answers = self.poll_sentinels()
        self.release_fences(answers)
        try:
            stat = self.haproxy_state()
        except Exception as exc:
            LOG.warning('cannot read HAProxy state from %s: %s', self.config['admin_socket'], describe_error(exc))
            return None, []
        cfg = self.config

        def plan(master_verified):
            return plan_actions(self.nodes, self.sentinels, answers, stat, master_verified,
                                cfg['backend'], cfg['check_backend_prefix'])

        target, commands = plan(False)
        if target is not None:
            # Forcing a node's health up needs its own word that it is master (verify_master).
            verified = plan(True)
            if 'set server %s/%s health up' % (cfg['backend'], target['name']) in verified[1] \
                    and self.verify_master(target):
                target, commands = verified
        with self._lock:
            fenced = ['set server %s/%s ' % (cfg['backend'], name) for name in self._fences]
        commands = [c for c in commands if not any(c.startswith(prefix) for prefix in fenced)]
        if not any(proxy == cfg['backend'] for proxy, _ in stat):
            # An error text instead of "show stat" (a refusal, another process on the socket): not complete.
            LOG.warning('HAProxy state from %s has no backend %s', cfg['admin_socket'], cfg['backend'])
            return None, []
        self.count('reconciles')
        self.last_reconcile, self._last_reconcile_mono = time.time(), time.monotonic()
        self.majority_node = target['name'] if target is not None else None
        if target is None:
            if reason != 'periodic':
                LOG.info('%s: no Sentinel majority names a known node (%s): HAProxy state left to its checks',
                         reason, ', '.join('%s=%s' % (k, '%s:%d' % v if v else '-') for k, v in sorted(answers.items())))
            return None, []
        self._run_commands(commands, '%s: master %s (%s:%d) per Sentinel majority' % (
            reason, target['name'], target['address'], target['port']))
        if self.routed != target['name']:
            if self.routed is not None:
                self.count('route_changes')
            self.routed = target['name']
        return target['name'], commands

    # -- pub/sub
    def on_switch(self, sentinel, data):
        event = parse_switch_message(data)
        if event is None:
            LOG.warning('sentinel %s: unreadable +switch-master message ignored', sentinel['name'])
            return
        if event['name'] != self.config['master_name']:
            LOG.info('sentinel %s: +switch-master of another master (%s) ignored', sentinel['name'], event['name'])
            return
        self.switch_events.append((time.time(), sentinel['name'], event))
        self.count('switch_events')
        LOG.info('sentinel %s: +switch-master %s %s:%d -> %s:%d; checking the Sentinel majority', sentinel['name'],
                 event['name'], event['old'][0], event['old'][1], event['new'][0], event['new'][1])
        with self._lock:
            self._pending = (event, time.monotonic() + float(self.config['confirm_window']))
        self._wake.set()

    def _subscribe_loop(self, sentinel):
        backoff = float(self.config['backoff_min'])
        while not self.stop_event.is_set():
            pubsub = None
            try:
                client = self._sentinel_client(sentinel, max(1.0, float(self.config['timeout'])))
                pubsub = client.pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe('+switch-master', *(FENCE_EVENTS + ABORT_EVENTS))
                self.subscribed[sentinel['name']] = True
                LOG.info('sentinel %s (%s:%d): subscribed to +switch-master and the failover events',
                         sentinel['name'], sentinel['address'], sentinel['port'])
                backoff = float(self.config['backoff_min'])
                self._wake.set()  # events may have been missed while disconnected: reconcile now
                last_ping = last_seen = time.monotonic()
                while not self.stop_event.is_set():
                    message = pubsub.get_message(timeout=0.2)
                    now = time.monotonic()
                    if message is not None:
                        last_seen = now
                        if message.get('type') == 'message':
                            channel = message.get('channel')
                            channel = channel.decode() if isinstance(channel, bytes) else str(channel)
                            if channel in FENCE_EVENTS:
                                self.fence(sentinel, channel, message.get('data'))
                            elif channel in ABORT_EVENTS:
                                self.note_abort(sentinel, channel)
                            else:
                                self.on_switch(sentinel, message.get('data'))
                    if now - last_ping >= float(self.config['ping_interval']):
                        pubsub.ping()
                        last_ping = now
                    if now - last_seen > 3 * float(self.config['ping_interval']):
                        raise IOError('no answer to PING for %.0f s' % (now - last_seen))
            except Exception as exc:
                if self.subscribed.get(sentinel['name']) or backoff == float(self.config['backoff_min']):
                    LOG.warning('sentinel %s (%s:%d): subscription lost or refused (%s); retrying in %.1f s',
                                sentinel['name'], sentinel['address'], sentinel['port'], describe_error(exc), backoff)
                self.subscribed[sentinel['name']] = False
                self.stop_event.wait(backoff)
                backoff = min(backoff * 2, float(self.config['backoff_max']))
            finally:
                if pubsub is not None:
                    try:
                        pubsub.close()
                    except Exception:
                        pass

    # -- the master's configuration epoch, for /metrics only (the routing never waits for it)
    def ask_epoch(self, sentinel):
        """((host, port), config epoch) from SENTINEL MASTER, or None."""
        try:
            fields = self.sentinel_master(sentinel)
            return (str(fields['ip']), int(fields['port'])), int(fields['config-epoch'])
        except Exception:
            return None

    def _epoch_loop(self):
        while not self.stop_event.is_set():
            try:
                address, epoch = majority_epoch(self._pool.map(self.ask_epoch, self.sentinels), len(self.sentinels))
                with self._lock:
                    self.epoch = (address, epoch) if address is not None else None
            except Exception as exc:  # never die on one bad round
                LOG.error('reading the configuration epoch failed: %s', describe_error(exc))
            self.stop_event.wait(float(self.config['reconcile_interval']))

    # -- TLS certificates: their expiry, for /metrics
    def certificate_endpoints(self):
        """[(kind, name, address, port)] of every TLS certificate this watcher reads."""
        out = [('redis', n['name'], n['address'], n['port']) for n in self.nodes]
        out += [('sentinel', s['name'], s['address'], s['port']) for s in self.sentinels]
        if self.config.get('frontend_address') and int(self.config.get('frontend_port') or 0):
            out.append(('haproxy', socket.gethostname(), self.config['frontend_address'], int(self.config['frontend_port'])))
        return out

    def read_certificates(self):
        def read(endpoint):
            kind, name, address, port = endpoint
            expiry, why = certificate_expiry(address, port, self.config['tls_ca_file'], float(self.config['timeout']) * 4)
            if why is not None:
                LOG.warning('certificate of %s %s (%s:%d) not read: %s', kind, name, address, port, why)
            return (kind, name, '%s:%d' % (address, port)), expiry
        results = dict(self._pool.map(read, self.certificate_endpoints()))
        with self._lock:
            self.certificates = results
        return results

    def _certificate_loop(self):
        interval = float(self.config['certificate_interval'])
        while not self.stop_event.is_set():
            try:
                all_read = all(self.read_certificates().values())
            except Exception as exc:  # never die on one bad round
                LOG.error('reading the certificates failed: %s', describe_error(exc))
                all_read = False
            # One not read (a node restarting, HAProxy not listening yet): again in 10 s, not in 5 min.
            self.stop_event.wait(interval if all_read else min(interval, 10.0))

    def start(self):
        thread = threading.Thread(target=self._epoch_loop, daemon=True, name='epoch')
        thread.start()
        self._threads.append(thread)
        if self.config.get('tls'):
            thread = threading.Thread(target=self._certificate_loop, daemon=True, name='certificates')
            thread.start()
            self._threads.append(thread)
        for sentinel in self.sentinels:
            thread = threading.Thread(target=self._subscribe_loop, args=(sentinel,), daemon=True,
                                      name='sentinel-%s' % sentinel['name'])
            thread.start()
            self._threads.append(thread)

    def run(self):
        """Main loop: reconcile on every +switch-master, every reconcile_interval, until stop()."""
        self.release_stale_maintenance()
        self.start()
        self.serve_http()
        interval = float(self.config['reconcile_interval'])
        next_full = 0.0
        while not self.stop_event.is_set():
            now = time.monotonic()
            with self._lock:
                pending, fenced = self._pending, bool(self._fences)
            woken = self._wake.is_set()
            if woken or pending or fenced or now >= next_full:
                self._wake.clear()
                reason = 'switch' if pending else ('event' if woken else 'periodic')
                try:
                    target, _ = self.reconcile(reason)
                except Exception as exc:  # never die on one bad round
                    self.count('reconcile_errors')
                    LOG.error('reconcile failed: %s', describe_error(exc))
                    target = None
                next_full = time.monotonic() + interval
                if pending:
                    event, deadline = pending
                    new = node_for_address(self.nodes, event['new'])
                    if target is not None and new is not None and target == new['name']:
                        LOG.info('switch to %s:%d confirmed by the Sentinel majority', *event['new'])
                        self._clear_pending(pending)
                    elif time.monotonic() > deadline:
                        LOG.warning('switch to %s:%d not confirmed by a Sentinel majority within %.1f s: ignored',
                                    event['new'][0], event['new'][1], float(self.config['confirm_window']))
                        self._clear_pending(pending)
            with self._lock:
                pending = self._pending or self._fences
            wait = float(self.config['confirm_poll']) if pending else max(0.0, next_full - time.monotonic())
            self._wake.wait(wait)

    def _clear_pending(self, pending):
        with self._lock:
            if self._pending is pending:
                self._pending = None

    def stop(self):
        self.stop_event.set()
        self._wake.set()
        for thread in self._threads:  # the HTTP thread closes its socket once it sees stop_event
            thread.join(5)
        self._pool.shutdown(wait=False)

    # -- its own endpoint: /metrics (Prometheus text format), /healthz (HAProxy's health rule)
    def count(self, key):
        with self._lock:
            self.counters[key] += 1

    def fresh(self):
        """(fresh, why): fresh while the last complete reconcile is younger than stale_after (monotonic clock)."""
        return reconcile_freshness(self._last_reconcile_mono, float(self.config['stale_after']), time.monotonic())

    def metrics_text(self):
        with self._lock:
            fenced = set(self._fences)
            counters = dict(self.counters)
            certificates = dict(self.certificates)
            epoch = self.epoch
        lines = []

        def metric(name, kind, doc, samples):
            lines.extend(['# HELP keybuzz_watcher_%s %s' % (name, doc), '# TYPE keybuzz_watcher_%s %s' % (name, kind)])
            for labels, value in samples:
                text = ','.join('%s="%s"' % (k, prometheus_label(v)) for k, v in labels)
                lines.append('keybuzz_watcher_%s%s %s' % (name, '{%s}' % text if text else '', prometheus_number(value)))

        nodes = [(('node', n['name']), ('address', '%s:%d' % node_address(n))) for n in self.nodes]
        metric('fresh', 'gauge', 'Whether the last complete reconcile is younger than stale_after (1) or not (0).',
               [((), 1 if self.fresh()[0] else 0)])
        metric('last_reconcile_timestamp_seconds', 'gauge', 'When the last complete reconcile ended (Unix time; 0: never).',
               [((), self.last_reconcile or 0)])
        metric('stale_after_seconds', 'gauge', 'Age of the last reconcile after which /healthz answers 503.',
               [((), float(self.config['stale_after']))])
        metric('majority_master', 'gauge', 'The node a Sentinel majority named at the last reconcile (1), the others (0).',
               [(labels, 1 if labels[0][1] == self.majority_node else 0) for labels in nodes])
        metric('routed_master', 'gauge', 'The node the watcher last routed HAProxy to (1), the others (0).',
               [(labels, 1 if labels[0][1] == self.routed else 0) for labels in nodes])
        metric('fenced', 'gauge', 'Nodes in maintenance because a failover started (1).',
               [(labels, 1 if labels[0][1] in fenced else 0) for labels in nodes])
        named = node_for_address(self.nodes, epoch[0]) if epoch else None
        metric('master_config_epoch', 'gauge', 'The configuration epoch of the master a Sentinel majority names (SENTINEL '
               'MASTER, every reconcile_interval; it grows by one per failover or switchover); none without a majority.',
               [((('node', named['name'] if named else '%s:%d' % epoch[0]), ('address', '%s:%d' % epoch[0])), epoch[1])]
               if epoch else [])
        metric('sentinel_subscribed', 'gauge', 'Whether the watcher holds its +switch-master subscription on that Sentinel.',
               [((('sentinel', s['name']),), 1 if self.subscribed.get(s['name']) else 0) for s in self.sentinels])
        if self.config.get('tls'):
            metric('certificate_expiry_timestamp_seconds', 'gauge',
                   'When the TLS certificate that endpoint serves expires (Unix time; 0: not read or not verified).',
                   [((('kind', kind), ('name', name), ('address', address)), expiry)
                    for (kind, name, address), expiry in sorted(certificates.items())])
            metric('certificate_renew_days', 'gauge', 'redis_ha_tls_renew_days: site.yml renews a certificate this close '
                   'to its expiry.', [((), float(self.config['certificate_renew_days']))])
        for key, doc in (('reconciles', 'Complete reconciles (Sentinels asked, HAProxy read).'),
                         ('reconcile_errors', 'Reconciles that failed with an error.'),
                         ('commands', 'HAProxy runtime commands applied.'),
                         ('command_errors', 'HAProxy runtime commands that failed.'),
                         ('fences', 'Masters fenced at the start of a failover.'),
                         ('switch_events', '+switch-master messages of this master received (one per Sentinel).'),
                         ('route_changes', 'Times the routed master changed.')):
            metric('%s_total' % key, 'counter', doc, [((), counters[key])])
        return '\n'.join(lines) + '\n'

    def serve_http(self):
        """Serve /metrics and /healthz on metrics_address:metrics_port (a thread); nothing without a port."""
        port = int(self.config.get('metrics_port') or 0)
        if not port:
            return None
        watcher = self

        class Handler(BaseHTTPRequestHandler):
            timeout = 5  # an idle or slow client gives its thread back

            def do_GET(self):
                if self.path == '/metrics':
                    status, body, kind = 200, watcher.metrics_text(), 'text/plain; version=0.0.4'
                elif self.path == '/healthz':
                    ok, why = watcher.fresh()
                    status, body, kind = (200 if ok else 503), why + '\n', 'text/plain'
                else:
                    status, body, kind = 404, 'not found\n', 'text/plain'
                data = body.encode('utf-8')
                self.send_response(status)
                self.send_header('Content-Type', kind)
                self.send_header('Content-Length', str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):  # HAProxy checks it every second: no access log
                pass

        address = (self.config.get('metrics_address') or '127.0.0.1', port)

        def serve():
            # A port still held (a previous process closing) must not end the watcher: its routing work
            # goes on, /healthz answers once the bind succeeds (until then HAProxy's check fails: 503).
            backoff = float(self.config['backoff_min'])
            while not self.stop_event.is_set():
                try:
                    server = ThreadingHTTPServer(address, Handler)
                except OSError as exc:
                    LOG.warning('cannot listen on %s:%d (%s); retrying in %.1f s', address[0], address[1],
                                describe_error(exc), backoff)
                    self.stop_event.wait(backoff)
                    backoff = min(backoff * 2, float(self.config['backoff_max']))
                    continue
                server.daemon_threads = True
                server.timeout = 0.5  # handle_request() returns at least this often: stop_event is seen
                LOG.info('metrics and health on http://%s:%d (/metrics, /healthz)', *server.server_address[:2])
                try:
                    while not self.stop_event.is_set():
                        server.handle_request()
                finally:
                    server.server_close()
                return

        thread = threading.Thread(target=serve, name='http', daemon=True)
        thread.start()
        self._threads.append(thread)
        return address

    def status(self):
        """One-shot view for the Ansible health gate."""
        answers = self.poll_sentinels()
        master = node_for_address(self.nodes, majority_master(answers.values(), len(self.sentinels)))
        stat = self.haproxy_state()
        routable = routable_nodes(self.nodes, self.sentinels, stat, self.config['backend'],
                                  self.config['check_backend_prefix'],
                                  self.config.get('route_without_sentinel_majority', True))
        return {
            'majority_master': master['name'] if master else None,
            'routable': routable,
            'ok': master is not None and routable == [master['name']],
            'sentinels_answering': sorted(k for k, v in answers.items() if v is not None),
        }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--config', default='/etc/haproxy/redis-watcher.json')
    parser.add_argument('--status', action='store_true',
                        help='print the routing state as JSON (majority master, routable nodes) and exit')
    parser.add_argument('--once', action='store_true', help='reconcile once and exit')
    args = parser.parse_args(argv)
    # The service logs to stdout (the journal); --status keeps stdout for its JSON and logs to stderr.
    logging.basicConfig(stream=sys.stderr if args.status else sys.stdout, level=logging.INFO,
                        format='%(levelname)s %(threadName)s %(message)s')
    if redis is None:
        LOG.error('the redis Python library is missing (apt install python3-redis)')
        return 2
    try:
        config = load_config(args.config)
    except (OSError, ValueError) as exc:
        LOG.error('cannot read the configuration: %s', describe_error(exc))
        return 2
    watcher = Watcher(config)
    if args.status:
        try:
            print(json.dumps(watcher.status(), sort_keys=True))
        except Exception as exc:
            print(json.dumps({'ok': False, 'error': describe_error(exc)}))
        return 0
    if args.once:
        watcher.reconcile('once')
        return 0
    LOG.info('watching master %s on %d Sentinels (majority %d), HAProxy %s', config['master_name'],
             len(watcher.sentinels), majority(len(watcher.sentinels)), config['admin_socket'])
    try:
        watcher.run()
    except KeyboardInterrupt:
        pass
    finally:
        watcher.stop()
    return 0


if __name__ == '__main__':
    sys.exit(main())
