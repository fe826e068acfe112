#!/usr/bin/env python3
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, KeyBuzz (@keybuzz)
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Write-workload checker for the Redis HA set: acknowledged writes, routing and unavailability.

N client threads write continuously through one or more endpoints (HAProxy frontends). Each
write is a unique key (SET) or an RPUSH to a per-thread list, followed by ``WAIT 1 <ms>``. The
ledger keeps every acknowledged write with the number of replicas WAIT reported and the node
that served it (each connection through HAProxy is pinned to one backend server: the node is
identified once per connection with ``INFO server`` run_id/tcp_port). A timeline keeps every
success and failure per endpoint (monotonic timestamps, error class).

The report (``build_report``) says:
  * acknowledged writes missing from the final master, split into "acked by >= 1 replica"
    (must be 0: Sentinel promotes the most up-to-date replica) and "acked by the master alone";
  * whether every node and every Sentinel agree on a single master;
  * whether two endpoints (or two connections) routed writes to different nodes at the same time;
  * the longest write-unavailability window, per endpoint and overall; counts.

Importable (tests, benchmarks, lab scenarios) and a CLI. Credentials are passed in (the CLI
reads them from environment variables, never from its arguments) and are never printed.

CLI example (loopback)::

    WORKLOAD_PASSWORD=... WORKLOAD_ADMIN_USER=admin WORKLOAD_ADMIN_PASSWORD=... \\
    WORKLOAD_SENTINEL_PASSWORD=... .venv/bin/python bench/workload.py \\
        --endpoint 127.0.0.1:6380 --threads 4 --duration 20 \\
        --node redis-01=127.0.0.1:7001 --sentinel s1=127.0.0.1:26379
"""

from __future__ import absolute_import, division, print_function

import argparse
import json
import os
import sys
import threading
import time
import uuid

import redis

# Unavailability windows shorter than this are normal latency, not an outage worth listing.
DEFAULT_WINDOW_THRESHOLD = 0.25

# redis-py TLS options of every connection this module opens (set_tls(); empty: plaintext).
TLS_OPTIONS = {}


def set_tls(ca_file):
    """Talk TLS to every endpoint, node and Sentinel, verifying their certificates (and addresses)
    with ``ca_file``; ``None`` goes back to plaintext."""
    TLS_OPTIONS.clear()
    if ca_file:
        TLS_OPTIONS.update(ssl=True, ssl_ca_certs=ca_file, ssl_cert_reqs='required', ssl_check_hostname=True)


def _redis(host, port, password=None, username=None, timeout=1.0):
    kwargs = dict(host=host, port=int(port), password=password, username=username, socket_timeout=timeout,
                  socket_connect_timeout=timeout, decode_responses=True, **TLS_OPTIONS)
    try:  # retry=None: no silent retries inside redis-py (its default retries 3 times), errors are data here
        return redis.Redis(protocol=2, retry=None, **kwargs)
    except TypeError:  # older redis-py without protocol/retry keywords
        return redis.Redis(**kwargs)


def parse_address(text):
    host, _, port = text.rpartition(':')
    return host or '127.0.0.1', int(port)


def error_class(exc):
    """Short, secret-free class of an error: the exception type, plus the Redis error code."""
    name = type(exc).__name__
    if isinstance(exc, redis.ResponseError):
        word = str(exc).split(' ', 1)[0]
        if word.isupper():
            return '%s:%s' % (name, word)
    return name


class Endpoint(object):
    def __init__(self, name, host, port):
        self.name, self.host, self.port = name, host, int(port)

    @classmethod
    def parse(cls, text, index=0):
        """``name=host:port`` or ``host:port`` (named ``ep<index>``)."""
        name, sep, addr = text.partition('=')
        if not sep:
            name, addr = 'ep%d' % index, text
        host, port = parse_address(addr)
        return cls(name, host, port)


class Workload(object):
    """Writer threads; ``start()``, ``stop()``, then ``ledger`` / ``events`` / ``build_report``.

    ``ledger``: one dict per acknowledged write: endpoint, thread, key, value, t (monotonic time of
    the write's reply), replicas (WAIT's answer, or None when WAIT itself failed), node.
    ``events``: (t, endpoint, thread, ok, node_or_error_class) for every attempt, in order per thread.
    """

    def __init__(self, endpoints, password, username=None, threads=2, interval=0.01, wait_ms=100,
                 mode='set', prefix=None, timeout=1.0, backoff_min=0.02, backoff_max=0.2, max_seconds=600,
                 node_names=None):
        if mode not in ('set', 'rpush'):
            raise ValueError('mode must be set or rpush')
        self.endpoints = [e if isinstance(e, Endpoint) else Endpoint.parse(e, i) for i, e in enumerate(endpoints)]
        self._password, self._username = password, username
        self.threads, self.interval, self.wait_ms, self.mode = int(threads), float(interval), int(wait_ms), mode
        self.prefix = prefix or 'kb:workload:%s' % uuid.uuid4().hex[:8]
        self.timeout = max(float(timeout), wait_ms / 1000.0 + 0.5)
        self.backoff_min, self.backoff_max = backoff_min, backoff_max
        self.max_seconds = float(max_seconds)  # hard bound on a run, whatever the caller does
        # {run_id: name} and/or {(host, port): name} to name the serving node (see node_run_ids()).
        self.node_names = dict(node_names or {})
        self.ledger, self.events = [], []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = []
        self.started = self.stopped = None

    # -- running
    def start(self):
        self.started = time.monotonic()
        for endpoint in self.endpoints:
            for i in range(self.threads):
                thread = threading.Thread(target=self._loop, args=(endpoint, i), daemon=True,
                                          name='writer-%s-%d' % (endpoint.name, i))
                self._threads.append(thread)
                thread.start()
        return self

    def stop(self):
        self._stop.set()
        for thread in self._threads:
            thread.join(self.timeout * 3 + 1)
        self.stopped = time.monotonic()
        return self

    def run_for(self, seconds):
        self.start()
        self._stop.wait(min(seconds, self.max_seconds))
        return self.stop()

    def _identify(self, client):
        info = client.info('server')
        port, run_id = int(info['tcp_port']), info.get('run_id', '')
        if run_id in self.node_names:
            return self.node_names[run_id]
        by_port = [name for key, name in self.node_names.items() if isinstance(key, tuple) and key[1] == port]
        if len(by_port) == 1:  # unique ports (loopback); on a real lab use run_ids (node_run_ids())
            return by_port[0]
        return 'port %d run_id %s' % (port, run_id[:8])

    def _key(self, endpoint, tid, seq):
        if self.mode == 'set':
            return '%s:%s:%d:%d' % (self.prefix, endpoint.name, tid, seq), None
        return '%s:%s:%d' % (self.prefix, endpoint.name, tid), '%d' % seq

    def _loop(self, endpoint, tid):
        client, node, seq, backoff = None, None, 0, self.backoff_min
        deadline = time.monotonic() + self.max_seconds
        while not self._stop.is_set() and time.monotonic() < deadline:
            try:
                if client is None:
                    client = _redis(endpoint.host, endpoint.port, self._password, self._username, self.timeout)
                    node = self._identify(client)
                key, value = self._key(endpoint, tid, seq)
                if self.mode == 'set':
                    client.set(key, seq)
                else:
                    client.rpush(key, value)
                t_ack = time.monotonic()
                try:
                    replicas = int(client.execute_command('WAIT', 1, self.wait_ms))
                except redis.RedisError:
                    replicas = None  # the write itself was acknowledged; durability unknown
                entry = dict(endpoint=endpoint.name, thread=tid, key=key, value=value, seq=seq, t=t_ack,
                             replicas=replicas, node=node)
                with self._lock:
                    self.ledger.append(entry)
                    self.events.append((t_ack, endpoint.name, tid, True, node))
                seq += 1
                backoff = self.backoff_min
                if replicas is None:
                    raise redis.ConnectionError('WAIT failed')
                if self.interval:
                    self._stop.wait(self.interval)
            except Exception as exc:  # never crash on one error: record, drop the connection, back off
                with self._lock:
                    self.events.append((time.monotonic(), endpoint.name, tid, False, error_class(exc)))
                if client is not None:
                    try:
                        client.close()
                    except Exception:
                        pass
                client, node = None, None
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self.backoff_max)
        if client is not None:
            try:
                client.close()
            except Exception:
                pass

    # -- observation while running
    def successes_since(self, t, node=None, endpoint=None):
        with self._lock:
            return [e for e in self.ledger if e['t'] >= t and (node is None or e['node'] == node)
                    and (endpoint is None or e['endpoint'] == endpoint)]

    def build_report(self, final_master=None, nodes=None, sentinels=None, **kwargs):
        with self._lock:
            ledger, events = list(self.ledger), list(self.events)
        return build_report(ledger, events, final_master=final_master, nodes=nodes, sentinels=sentinels,
                            started=self.started, stopped=self.stopped or time.monotonic(), mode=self.mode,
                            **kwargs)


# --- report pieces (pure functions where possible) -----------------------------------------------

def missing_writes(ledger, client, mode='set', chunk=500):
    """Acknowledged writes absent from ``client`` (a connection to the final master).

    Returns {'checked', 'missing_replicated', 'missing_master_only', 'missing_unknown', 'examples'}:
    replicated = WAIT said >= 1 replica had it (must be 0), master_only = WAIT said 0,
    unknown = WAIT itself failed.
    """
    missing = []
    if mode == 'set':
        for i in range(0, len(ledger), chunk):
            part = ledger[i:i + chunk]
            pipe = client.pipeline(transaction=False)
            for entry in part:
                pipe.exists(entry['key'])
            for entry, found in zip(part, pipe.execute()):
                if not found:
                    missing.append(entry)
    else:
        present = {}
        for key in sorted(set(e['key'] for e in ledger)):
            present[key] = set(client.lrange(key, 0, -1))
        missing = [e for e in ledger if e['value'] not in present[e['key']]]
    result = dict(checked=len(ledger), missing_replicated=0, missing_master_only=0, missing_unknown=0,
                  examples=[])
    for entry in missing:
        if entry['replicas'] is None:
            result['missing_unknown'] += 1
        elif entry['replicas'] >= 1:
            result['missing_replicated'] += 1
        else:
            result['missing_master_only'] += 1
    result['examples'] = [dict((k, e[k]) for k in ('key', 'endpoint', 'node', 'replicas', 't')) for e in missing[:5]]
    return result


def unavailability(events, started=None, stopped=None, threshold=DEFAULT_WINDOW_THRESHOLD):
    """Longest stretches without an acknowledged write, per endpoint and overall.

    A window runs from the last success before it (or the run's start) to the first success after
    it (or the run's end). Returns {'overall': {...}, 'per_endpoint': {name: {...}}} where each
    {...} = {'longest': seconds, 'start': t, 'end': t, 'windows': [(start, end), ...] over threshold,
    'failures': count}.
    """
    endpoints = sorted(set(e[1] for e in events))

    def windows_of(evts):
        ok = sorted(e[0] for e in evts if e[3])
        failures = sum(1 for e in evts if not e[3])
        points = ok
        if started is not None:
            points = [started] + points
        if stopped is not None:
            points = points + [stopped]
        best = dict(longest=0.0, start=None, end=None, windows=[], failures=failures, successes=len(ok))
        for a, b in zip(points, points[1:]):
            gap = b - a
            if gap > best['longest']:
                best.update(longest=gap, start=a, end=b)
            if gap >= threshold:
                best['windows'].append((a, b))
        return best
    result = dict(per_endpoint=dict((name, windows_of([e for e in events if e[1] == name])) for name in endpoints))
    result['overall'] = windows_of(events)
    return result


def window_containing(events, t, endpoint=None):
    """(last success before t, first success after t) for one endpoint or all; None when absent."""
    ok = sorted(e[0] for e in events if e[3] and (endpoint is None or e[1] == endpoint))
    before = [x for x in ok if x <= t]
    after = [x for x in ok if x > t]
    return (before[-1] if before else None, after[0] if after else None)


def routing_intervals(ledger):
    """Per (endpoint, thread): maximal runs of consecutive writes served by the same node.

    Returns [(endpoint, thread, node, first_t, last_t, count)]. A connection through HAProxy is
    pinned to one node, so a run is the time that node was accepting this client's writes.
    """
    streams = {}
    for entry in sorted(ledger, key=lambda e: e['t']):
        streams.setdefault((entry['endpoint'], entry['thread']), []).append(entry)
    out = []
    for (endpoint, thread), entries in sorted(streams.items()):
        run = None
        for entry in entries:
            if run is not None and run[2] == entry['node']:
                run[4], run[5] = entry['t'], run[5] + 1
            else:
                if run is not None:
                    out.append(tuple(run))
                run = [endpoint, thread, entry['node'], entry['t'], entry['t'], 1]
        if run is not None:
            out.append(tuple(run))
    return out


def routing_conflicts(ledger, slack=0.0):
    """Pairs of runs on different nodes whose time spans overlap (two masters taking writes).

    ``slack`` widens every run on both sides (seconds). Returns a list of dicts; 'cross_endpoint'
    tells whether the two runs came through different endpoints.
    """
    runs = routing_intervals(ledger)
    conflicts = []
    for i, a in enumerate(runs):
        for b in runs[i + 1:]:
            if a[2] == b[2]:
                continue
            start, end = max(a[3], b[3]) - slack, min(a[4], b[4]) + slack
            if start <= end:
                conflicts.append(dict(nodes=sorted([a[2], b[2]]), endpoints=sorted(set([a[0], b[0]])),
                                      cross_endpoint=a[0] != b[0], start=max(a[3], b[3]), end=min(a[4], b[4]),
                                      writes=(a[5], b[5])))
    return conflicts


def node_run_ids(nodes, timeout=1.0):
    """{run_id: name} of the reachable ``nodes`` (same shape as for master_agreement)."""
    out = {}
    for node in nodes or []:
        client = _redis(node['host'], node['port'], node.get('password'), node.get('username'), timeout)
        try:
            out[client.info('server')['run_id']] = node['name']
        except redis.RedisError:
            pass
        finally:
            client.close()
    return out


def master_agreement(nodes=None, sentinels=None, master_name=None, timeout=1.0):
    """Ask every node (ROLE) and every Sentinel who the master is.

    ``nodes``: [{'name', 'host', 'port', 'username', 'password'}]; ``sentinels``: same (no username
    needed); ``master_name`` for SENTINEL get-master-addr-by-name. Returns {'single_master': bool,
    'master': 'host:port' or None, 'nodes': {name: view}, 'sentinels': {name: view}} where a view is
    'master', 'replica of host:port' or 'error: <class>'.
    """
    named, views_n, views_s = [], {}, {}
    masters = []
    for node in nodes or []:
        client = _redis(node['host'], node['port'], node.get('password'), node.get('username'), timeout)
        try:
            role = client.execute_command('ROLE')
            if role[0] == 'master':
                views_n[node['name']] = 'master'
                masters.append('%s:%d' % (node['host'], int(node['port'])))
            else:
                addr = '%s:%d' % (role[1], int(role[2]))
                views_n[node['name']] = 'replica of %s (%s)' % (addr, role[3])
                named.append(addr)
        except Exception as exc:
            views_n[node['name']] = 'error: %s' % error_class(exc)
        finally:
            client.close()
    for sentinel in sentinels or []:
        client = _redis(sentinel['host'], sentinel['port'], sentinel.get('password'), sentinel.get('username'),
                        timeout)
        try:
            reply = client.execute_command('SENTINEL', 'get-master-addr-by-name', master_name)
            addr = '%s:%d' % (reply[0], int(reply[1])) if reply else None
            views_s[sentinel['name']] = addr or 'none'
            named.append(addr)
        except Exception as exc:
            views_s[sentinel['name']] = 'error: %s' % error_class(exc)
        finally:
            client.close()
    candidates = set(masters) | set(named)
    single = (len(masters) == 1 and candidates == set(masters)
              and not any(v.startswith('error') for v in list(views_n.values()) + list(views_s.values())))
    if not nodes:  # Sentinels only: agreement among them
        single = len(set(named)) == 1 and None not in named and len(named) == len(views_s)
    master = masters[0] if len(masters) == 1 else (named[0] if single and named else None)
    return dict(single_master=bool(single), master=master, nodes=views_n, sentinels=views_s)


def build_report(ledger, events, final_master=None, nodes=None, sentinels=None, master_name=None,
                 started=None, stopped=None, mode='set', threshold=DEFAULT_WINDOW_THRESHOLD, conflict_slack=0.0):
    """Everything in one dict (timestamps are time.monotonic() values; durations in seconds).

    ``final_master``: a redis client connected to the final master (checked for missing writes),
    or None to skip that check.
    """
    report = dict(writes_acked=len(ledger),
                  writes_replicated=sum(1 for e in ledger if (e['replicas'] or 0) >= 1),
                  writes_master_only=sum(1 for e in ledger if e['replicas'] == 0),
                  failures=sum(1 for e in events if not e[3]))
    errors = {}
    for e in events:
        if not e[3]:
            errors[e[4]] = errors.get(e[4], 0) + 1
    report['error_classes'] = errors
    report['nodes_served'] = sorted(set(e['node'] for e in ledger))
    report['duration'] = (stopped - started) if started is not None and stopped is not None else None
    report['unavailability'] = unavailability(events, started, stopped, threshold)
    conflicts = routing_conflicts(ledger, conflict_slack)
    report['routing_conflicts'] = conflicts
    report['two_nodes_at_once_cross_endpoint'] = any(c['cross_endpoint'] for c in conflicts)
    report['two_nodes_at_once'] = bool(conflicts)
    if final_master is not None:
        report['missing'] = missing_writes(ledger, final_master, mode)
    if nodes or sentinels:
        report['agreement'] = master_agreement(nodes, sentinels, master_name)
    return report


def format_report(report):
    """Human-readable table (no credentials are ever part of a report)."""
    lines = []
    add = lines.append
    add('%-44s %s' % ('acknowledged writes', report['writes_acked']))
    add('%-44s %s' % ('  acked by >= 1 replica (WAIT)', report['writes_replicated']))
    add('%-44s %s' % ('  acked by the master alone', report['writes_master_only']))
    add('%-44s %s %s' % ('failed attempts', report['failures'],
                          ' '.join('%s=%d' % kv for kv in sorted(report['error_classes'].items()))))
    add('%-44s %s' % ('nodes that served writes', ', '.join(report['nodes_served']) or '-'))
    if 'missing' in report:
        m = report['missing']
        add('%-44s %d' % ('missing on final master, acked by a replica', m['missing_replicated']))
        add('%-44s %d' % ('missing on final master, acked by master only', m['missing_master_only']))
        if m['missing_unknown']:
            add('%-44s %d' % ('missing on final master, WAIT failed', m['missing_unknown']))
    if 'agreement' in report:
        a = report['agreement']
        add('%-44s %s (%s)' % ('single master agreed by nodes + Sentinels', 'yes' if a['single_master'] else 'NO',
                               a['master']))
        for name, view in sorted(a['nodes'].items()):
            add('    node %-20s %s' % (name, view))
        for name, view in sorted(a['sentinels'].items()):
            add('    sentinel %-16s %s' % (name, view))
    add('%-44s %s' % ('two nodes took writes at the same time',
                      ('YES (%d overlaps, cross-endpoint: %s)' % (len(report['routing_conflicts']),
                                                                  report['two_nodes_at_once_cross_endpoint']))
                      if report['two_nodes_at_once'] else 'no'))
    u = report['unavailability']
    add('%-44s %.3f s' % ('longest write unavailability (all endpoints)', u['overall']['longest']))
    for name, w in sorted(u['per_endpoint'].items()):
        add('    endpoint %-16s longest %.3f s, %d windows >= threshold, %d ok / %d failed'
            % (name, w['longest'], len(w['windows']), w['successes'], w['failures']))
    return '\n'.join(lines)


# --- CLI ---------------------------------------------------------------------------------------

def _named_addresses(values, prefix):
    out = []
    for i, text in enumerate(values or []):
        name, sep, addr = text.partition('=')
        if not sep:
            name, addr = '%s%d' % (prefix, i + 1), text
        host, port = parse_address(addr)
        out.append(dict(name=name, host=host, port=port))
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0], epilog=(
        'Credentials come from the environment: WORKLOAD_USER/WORKLOAD_PASSWORD (app, through the endpoints), '
        'WORKLOAD_ADMIN_USER/WORKLOAD_ADMIN_PASSWORD (ROLE and key checks on the nodes; default: the app ones), '
        'WORKLOAD_SENTINEL_PASSWORD. With --tls-ca-file every connection is TLS, verified with that CA.'))
    parser.add_argument('--endpoint', action='append', required=True, help='[name=]host:port, repeatable')
    parser.add_argument('--node', action='append', help='[name=]host:port of a Redis node, repeatable')
    parser.add_argument('--sentinel', action='append', help='[name=]host:port of a Sentinel, repeatable')
    parser.add_argument('--master-name', default='kb-redis-master')
    parser.add_argument('--threads', type=int, default=2, help='writer threads per endpoint')
    parser.add_argument('--interval', type=float, default=0.01, help='pause between two writes of a thread (s)')
    parser.add_argument('--wait-ms', type=int, default=100, help='WAIT 1 <ms> after each write')
    parser.add_argument('--mode', choices=('set', 'rpush'), default='set')
    parser.add_argument('--duration', type=float, default=10.0, help='seconds (at most 3600)')
    parser.add_argument('--json', action='store_true', help='print the report as JSON too')
    parser.add_argument('--tls-ca-file', help='talk TLS (redis_ha_tls), verifying the servers with this CA certificate')
    args = parser.parse_args(argv)
    set_tls(args.tls_ca_file)
    env = os.environ
    password, user = env.get('WORKLOAD_PASSWORD'), env.get('WORKLOAD_USER')
    admin_user, admin_pw = env.get('WORKLOAD_ADMIN_USER', user), env.get('WORKLOAD_ADMIN_PASSWORD', password)
    nodes = _named_addresses(args.node, 'node')
    for node in nodes:
        node.update(username=admin_user, password=admin_pw)
    sentinels = _named_addresses(args.sentinel, 'sentinel')
    for sentinel in sentinels:
        sentinel.update(password=env.get('WORKLOAD_SENTINEL_PASSWORD'))
    workload = Workload(args.endpoint, password, user, threads=args.threads, interval=args.interval,
                        wait_ms=args.wait_ms, mode=args.mode, max_seconds=min(args.duration, 3600) + 5,
                        node_names=node_run_ids(nodes))
    print('writing through %s for %.0f s (%d threads each)...' % (
        ', '.join('%s=%s:%d' % (e.name, e.host, e.port) for e in workload.endpoints), args.duration, args.threads))
    workload.run_for(min(args.duration, 3600))
    agreement = master_agreement(nodes, sentinels, args.master_name) if (nodes or sentinels) else None
    final = None
    if agreement and agreement['master']:
        host, port = parse_address(agreement['master'])
        final = _redis(host, port, admin_pw, admin_user, 2.0)
    else:  # through the first endpoint: it routes to the master
        ep = workload.endpoints[0]
        final = _redis(ep.host, ep.port, password, user, 2.0)
    try:
        report = workload.build_report(final_master=final)
    except redis.RedisError as exc:
        print('cannot check the final master: %s' % error_class(exc))
        report = workload.build_report()
    if agreement:
        report['agreement'] = agreement
    print(format_report(report))
    if args.json:
        print(json.dumps(report, default=str, sort_keys=True))
    bad = (report.get('missing', {}).get('missing_replicated', 0) or report['two_nodes_at_once']
           or (agreement is not None and not agreement['single_master']))
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
