# -*- coding: utf-8 -*-
# Copyright: (c) 2026, KeyBuzz (@keybuzz)
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Drive the five-container lab (Molecule scenario ``default``) for fault tests and benchmarks.

The lab is found through KB_LAB_INVENTORY (the inventory directory Molecule built, default: the
newest ~/.ansible/tmp/molecule.*.default/inventory) and KB_LAB_CREDENTIALS (default: the
``credentials/redis.env`` beside it). With TLS (KB_LAB_TLS=true, or redis_ha_tls: true in the
inventory: molecule/tls) every client talks TLS, verified with the lab's private CA (``ca.crt`` beside
redis.env), and playbooks run with redis_ha_tls=true. Containers are named after their inventory hosts. Faults are
injected with ``docker exec`` / ``docker network``, partitions with the host's iptables inside the containers'
network namespaces (``nsenter``: partition(), cut_port(), undone by heal()), a site power cycle with
``docker restart`` (restart_all()); every fault has an undo in ``restore()`` (which heals first).
Passwords are read from the credentials file and only ever handed to redis-py or to stdin.
"""

from __future__ import absolute_import, division, print_function

import calendar
import glob
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor


from kblab import REPO_ROOT as REPO
from kblab import workload as wl

REDIS_PORT, SENTINEL_PORT, HAPROXY_PORT, HEALTH_PORT = 6379, 26379, 6379, 8405
NETWORK = 'kb-lab'
# Drop-ins the tests add under /run (gone at the next boot, removed by restore()).
DROPIN = 'kb-fault.conf'
UNITS = {'redis': ['redis-server', 'redis-sentinel'], 'haproxy': ['haproxy', 'haproxy-redis-watcher']}
# iptables on the host, run inside a container's network namespace (nsenter): partitions.
IPTABLES = os.environ.get('KB_LAB_IPTABLES', 'iptables')
# What the playbooks write on the hosts (configuration, units, scripts; no data): save_state() keeps a
# copy inside each container so that a test whose playbook run may have damaged the lab can put it back.
STATE_PATHS = ['etc/redis', 'etc/haproxy', 'etc/systemd/system', 'etc/ssl/redis-ha', 'usr/local/lib/keybuzz-redis',
               'usr/local/lib/keybuzz-haproxy-redis', 'var/lib/keybuzz-haproxy-redis']
STATE_ARCHIVE = '/root/kb-lab-state.tgz'
# A line of a Redis or Sentinel log file: "1726:X 04 Dec 2026 19:16:38.628 # +switch-master ...".
REDIS_LOG_LINE = re.compile(r'^\d+:\w (\d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2})\.(\d+) \S (.*)$')
SENTINEL_LOG = '/var/log/redis/redis-sentinel.log'


def find_lab():
    inventory = os.environ.get('KB_LAB_INVENTORY')
    if not inventory:
        found = sorted(glob.glob(os.path.expanduser('~/.ansible/tmp/molecule.*.default/inventory')),
                       key=lambda p: os.path.getmtime(os.path.join(os.path.dirname(p), 'credentials', 'redis.env'))
                       if os.path.exists(os.path.join(os.path.dirname(p), 'credentials', 'redis.env')) else 0)
        inventory = found[-1] if found else None
    credentials = os.environ.get('KB_LAB_CREDENTIALS') or (
        inventory and os.path.join(os.path.dirname(inventory), 'credentials', 'redis.env'))
    if not inventory or not credentials or not os.path.exists(credentials):
        raise RuntimeError('no converged lab found: run "molecule converge -s default" (or "bash scripts/run.sh '
                           'deploy"), or set KB_LAB_INVENTORY and KB_LAB_CREDENTIALS')
    return inventory, credentials


def tls_wanted(hostvars):
    """KB_LAB_TLS when set, else a literal redis_ha_tls: true in the inventory."""
    env = os.environ.get('KB_LAB_TLS', '').strip().lower()
    if env:
        return env in ('1', 'true', 'yes', 'on')
    return any(str(v.get('redis_ha_tls', '')).lower() in ('true', 'yes', '1') for v in hostvars.values())


def read_env(path):
    values = {}
    with open(path) as handle:
        for line in handle:
            line = line.strip()
            if line and not line.startswith('#') and '=' in line:
                key, _, value = line.partition('=')
                values[key.strip()] = value.strip().strip('"').strip("'")
    return values


def ansible_env():
    env = dict(os.environ)
    # The repo's configuration and plain text, also when run from Molecule (which points
    # ANSIBLE_CONFIG at its own file and forces colours): the tests parse the output.
    env['ANSIBLE_CONFIG'] = os.path.join(REPO, 'ansible.cfg')
    env['ANSIBLE_FORCE_COLOR'] = '0'
    env['ANSIBLE_NOCOLOR'] = '1'
    env['ANSIBLE_PIPELINING'] = 'True'
    env['ANSIBLE_COLLECTIONS_PATH'] = os.path.join(REPO, '.cache', 'collections')
    env['PATH'] = os.path.join(REPO, '.venv', 'bin') + os.pathsep + env.get('PATH', '')
    return env


class Lab(object):
    """Addresses, clients, state and faults of the lab."""

    def __init__(self, inventory=None, credentials=None):
        if inventory is None or credentials is None:
            inventory, credentials = find_lab()
        self.inventory, self.credentials = inventory, credentials
        self.creds = read_env(credentials)
        self.master_name = self.creds.get('REDIS_MASTER_NAME', 'kb-redis-master')
        data = json.loads(subprocess.check_output(['ansible-inventory', '-i', inventory, '--list'],
                                                  env=ansible_env(), stderr=subprocess.DEVNULL))
        hostvars = data['_meta']['hostvars']
        self.hostvars = hostvars

        def members(group):
            entry = data.get(group, {})
            out = list(entry.get('hosts', []))
            for child in entry.get('children', []):
                out += [h for h in members(child) if h not in out]
            return sorted(out)

        self.ip = dict((h, hostvars[h]['redis_ha_private_ip']) for h in hostvars if 'redis_ha_private_ip' in hostvars[h])
        # Container of each host: its ansible_host when the inventory sets one (Molecule: the host name).
        self.container = dict((h, hostvars[h].get('ansible_host', h)) for h in self.ip)
        self.network = os.environ.get('KB_LAB_NETWORK', NETWORK)
        self.nodes, self.sentinels, self.haproxies = members('redis'), members('redis_sentinel'), members('haproxy')
        self._fault_log = []
        # TLS: every client of this module and of the workload verifies the servers with the lab's CA;
        # the same file is at ca_file_on_hosts on every host.
        self.tls = tls_wanted(hostvars)
        self.ca_file = os.environ.get('KB_LAB_TLS_CA') or os.path.join(os.path.dirname(credentials), 'ca.crt')
        self.ca_file_on_hosts = '/etc/ssl/redis-ha/ca.crt'
        wl.set_tls(self.ca_file if self.tls else None)

    # -- clients
    def node(self, name, timeout=1.0):
        return wl._redis(self.ip[name], REDIS_PORT, self.creds['REDIS_ADMIN_PASSWORD'], self.creds['REDIS_ADMIN_USER'], timeout)

    def sentinel(self, name, timeout=1.0):
        return wl._redis(self.ip[name], SENTINEL_PORT, self.creds['SENTINEL_PASSWORD'], None, timeout)

    def proxy(self, name, timeout=1.0):
        return wl._redis(self.ip[name], HAPROXY_PORT, self.creds['REDIS_PASSWORD'], None, timeout)

    def node_specs(self):
        return [dict(name=n, host=self.ip[n], port=REDIS_PORT, username=self.creds['REDIS_ADMIN_USER'],
                     password=self.creds['REDIS_ADMIN_PASSWORD']) for n in self.nodes]

    def sentinel_specs(self):
        return [dict(name=s, host=self.ip[s], port=SENTINEL_PORT, password=self.creds['SENTINEL_PASSWORD'])
                for s in self.sentinels]

    def name_of(self, address):
        host = address.rpartition(':')[0] if ':' in address else address
        return [n for n in self.nodes if self.ip[n] == host][0]

    # -- observation
    def health(self, proxy, timeout=1.0):
        url = 'http://%s:%d/redis-master' % (self.ip[proxy], HEALTH_PORT)
        try:
            return urllib.request.urlopen(url, timeout=timeout).status
        except urllib.error.HTTPError as exc:
            return exc.code
        except Exception:
            return None

    def role(self, name, timeout=1.0):
        """ROLE of a node: ('master', None) / ('replica', master name) / (None, error class)."""
        client = self.node(name, timeout)
        try:
            reply = client.execute_command('ROLE')
            if reply[0] == 'master':
                return 'master', None
            return 'replica', '%s %s' % (self.name_of(reply[1]), reply[3])
        except Exception as exc:
            return None, wl.error_class(exc)
        finally:
            client.close()

    def sentinel_master(self, name, timeout=1.0):
        client = self.sentinel(name, timeout)
        try:
            reply = client.execute_command('SENTINEL', 'get-master-addr-by-name', self.master_name)
            return self.name_of(reply[0]) if reply else None
        except Exception:
            return None
        finally:
            client.close()

    def sentinel_majority_master(self, sentinels=None):
        votes = [self.sentinel_master(s) for s in (sentinels or self.sentinels)]
        for name in set(v for v in votes if v):
            if votes.count(name) > len(self.sentinels) // 2:
                return name
        return None

    def served_by(self, proxy):
        """Name of the node a fresh connection through ``proxy`` lands on (None on error)."""
        client = self.proxy(proxy)
        try:
            run_id = client.info('server')['run_id']
            return wl.node_run_ids(self.node_specs()).get(run_id)
        except Exception:
            return None
        finally:
            client.close()

    def state(self):
        """Everything steady() looks at, as one dict (printed when a wait times out)."""
        out = dict(roles={}, sentinels={}, sentinel_counts={}, health={}, routes={})
        for n in self.nodes:
            out['roles'][n] = self.role(n)
        for s in self.sentinels:
            out['sentinels'][s] = self.sentinel_master(s)
            client = self.sentinel(s)
            try:
                info = client.execute_command('SENTINEL', 'MASTER', self.master_name)
                info = dict(zip(info[::2], info[1::2])) if isinstance(info, list) else info
                out['sentinel_counts'][s] = (info.get('flags'), int(info.get('num-slaves', -1)),
                                             int(info.get('num-other-sentinels', -1)))
                replicas = client.execute_command('SENTINEL', 'REPLICAS', self.master_name)
                flags = [dict(zip(r[::2], r[1::2])).get('flags', '') if isinstance(r, list) else r.get('flags', '')
                         for r in replicas]
                out['sentinel_counts'][s] += (sum(1 for f in flags if 'down' in f or 'disconnected' in f),)
            except Exception as exc:
                out['sentinel_counts'][s] = ('error', wl.error_class(exc))
            finally:
                client.close()
        for p in self.haproxies:
            out['health'][p] = self.health(p)
            out['routes'][p] = self.served_by(p)
        return out

    @staticmethod
    def steady_master(state, nodes, sentinels, haproxies):
        """The master when ``state`` is the healthy steady state, else None."""
        masters = [n for n, (role, _) in state['roles'].items() if role == 'master']
        if len(masters) != 1:
            return None
        master = masters[0]
        for n, (role, detail) in state['roles'].items():
            if n != master and (role != 'replica' or detail != '%s connected' % master):
                return None
        if any(state['sentinels'][s] != master for s in sentinels):
            return None
        for s in sentinels:
            counts = state['sentinel_counts'][s]
            if counts[0] != 'master' or counts[1] != len(nodes) - 1 or counts[2] != len(sentinels) - 1 or counts[3]:
                return None
        if any(state['health'][p] != 200 or state['routes'][p] != master for p in haproxies):
            return None
        return master

    def steady(self, timeout=90):
        """Wait for one master, two connected replicas, Sentinels agreeing (none of them or of the
        replicas flagged down), both HAProxy nodes healthy and routing to the master. Returns it."""
        deadline = time.monotonic() + timeout
        while True:
            state = self.state()
            master = self.steady_master(state, self.nodes, self.sentinels, self.haproxies)
            if master:
                return master
            if time.monotonic() > deadline:
                raise AssertionError('lab not steady after %d s: %s' % (timeout, json.dumps(state, sort_keys=True)))
            time.sleep(0.5)

    def wait_for(self, what, predicate, timeout=60, interval=0.1):
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError('timed out after %d s waiting for %s' % (timeout, what))
            time.sleep(interval)

    # -- settings of the deployed lab
    def setting(self, var, role, default=None):
        """``var`` as deployed: a literal value in the inventory, else the role's shipped default."""
        for host in sorted(self.hostvars):
            value = self.hostvars[host].get(var)
            if value is not None and '{{' not in str(value):
                return value
        import yaml  # noqa: E402  (PyYAML comes with ansible-core)
        path = os.path.join(REPO, 'roles', role, 'defaults', 'main.yml')
        with open(path) as handle:
            value = (yaml.safe_load(handle) or {}).get(var, default)
        return default if value is None or '{{' in str(value) else value

    def live_settings(self):
        """Timings as deployed: Sentinel down-after and failover-timeout (SENTINEL MASTER), the
        master's min-replicas-max-lag and repl-timeout (CONFIG GET); the inventory or the roles'
        defaults when the lab cannot say. Seconds."""
        out = dict(down_after=float(self.setting('redis_sentinel_down_after_ms', 'redis_sentinel', 5000)) / 1000,
                   failover_timeout=float(self.setting('redis_sentinel_failover_timeout_ms', 'redis_sentinel',
                                                       30000)) / 1000,
                   max_lag=float(self.setting('redis_node_min_replicas_max_lag', 'redis_node', 10)),
                   repl_timeout=60.0, source='inventory/defaults')
        for sentinel in self.sentinels:
            client = self.sentinel(sentinel)
            try:
                info = client.execute_command('SENTINEL', 'MASTER', self.master_name)
                info = dict(zip(info[::2], info[1::2])) if isinstance(info, list) else info
                out.update(down_after=int(info['down-after-milliseconds']) / 1000.0,
                           failover_timeout=int(info['failover-timeout']) / 1000.0, source='live')
                master = self.name_of(info['ip'])
                break
            except Exception:
                master = None
            finally:
                client.close()
        if master:
            client = self.node(master)
            try:
                config = client.config_get('min-replicas-max-lag')
                config.update(client.config_get('repl-timeout'))
                out.update(max_lag=float(config['min-replicas-max-lag']), repl_timeout=float(config['repl-timeout']))
            except Exception:
                pass
            finally:
                client.close()
        return out

    def initial_master(self):
        """The inventory's bootstrap master (redis_node_initial_role: master)."""
        named = [n for n in self.nodes if str(self.hostvars[n].get('redis_node_initial_role', '')) == 'master']
        return named[0] if named else self.nodes[0]

    # -- fast, parallel observation (boot and partition tests sample it every ~0.2 s)
    def _pool(self):
        if getattr(self, '_executor', None) is None:
            self._executor = ThreadPoolExecutor(max_workers=16, thread_name_prefix='lab-probe')
        return self._executor

    def probe_node(self, name, timeout=0.5):
        """(ROLE view as role() gives it, run_id or None) of one node, on one connection."""
        client = self.node(name, timeout)
        try:
            pipe = client.pipeline(transaction=False)
            pipe.execute_command('ROLE')
            pipe.info('server')
            reply, info = pipe.execute()
            if reply[0] == 'master':
                return ('master', None), info.get('run_id')
            try:
                upstream = self.name_of(reply[1])
            except IndexError:
                upstream = reply[1]
            return ('replica', '%s %s' % (upstream, reply[3])), info.get('run_id')
        except Exception as exc:
            return (None, wl.error_class(exc)), None
        finally:
            client.close()

    def probe_proxy(self, proxy, timeout=0.5):
        """run_id of the node a fresh connection through ``proxy`` lands on (None: refused or error)."""
        client = wl._redis(self.ip[proxy], HAPROXY_PORT, self.creds['REDIS_PASSWORD'], None, timeout)
        try:
            return client.info('server').get('run_id')
        except Exception:
            return None
        finally:
            client.close()

    def snapshot(self, timeout=0.5, parts=('roles', 'routes', 'health', 'sentinels')):
        """One parallel look at the lab: {'t0', 't' (monotonic, before/after), 'roles': {node: view},
        'run_ids': {node: run_id}, 'routes': {proxy: run_id or None}, 'health': {proxy: code},
        'sentinels': {sentinel: node it names}} (only the ``parts`` asked for)."""
        pool, t0 = self._pool(), time.monotonic()
        futures = {}
        if 'roles' in parts:
            futures.update((('node', n), pool.submit(self.probe_node, n, timeout)) for n in self.nodes)
        if 'routes' in parts:
            futures.update((('route', p), pool.submit(self.probe_proxy, p, timeout)) for p in self.haproxies)
        if 'health' in parts:
            futures.update((('health', p), pool.submit(self.health, p, timeout)) for p in self.haproxies)
        if 'sentinels' in parts:
            futures.update((('sentinel', s), pool.submit(self.sentinel_master, s, timeout))
                           for s in self.sentinels)
        out = dict(t0=t0, roles={}, run_ids={}, routes={}, health={}, sentinels={})
        for (kind, name), future in futures.items():
            value = future.result()
            if kind == 'node':
                out['roles'][name], run_id = value
                if run_id:
                    out['run_ids'][name] = run_id
            else:
                out[dict(route='routes', health='health', sentinel='sentinels')[kind]][name] = value
        out['t'] = time.monotonic()
        return out

    def watch(self, interval=0.2, names_into=None, **kwargs):
        """A started Poller taking snapshot(**kwargs) every ``interval`` s (see Poller)."""
        return Poller(self, interval, names_into, **kwargs).start()

    def journal(self, container, unit, pattern, since_wall):
        """[(wall-clock time, line)] of ``unit``'s journal on ``container`` since ``since_wall`` matching
        the extended regex ``pattern`` (the containers share the host's clock)."""
        out = self.sh(container, "journalctl -u %s.service -o short-unix --no-pager --since @%d | grep -E '%s' || true"
                      % (unit, int(since_wall), pattern), check=False)
        found = []
        for line in out.splitlines():
            stamp, _, text = line.partition(' ')
            try:
                found.append((float(stamp), text))
            except ValueError:
                pass
        return [(t, text) for t, text in found if t >= since_wall]

    def redis_log(self, container, path, pattern, since_wall):
        """[(wall-clock time, line)] of a Redis/Sentinel log file (``pid:role DD Mon YYYY HH:MM:SS.mmm``
        lines) on ``container`` since ``since_wall`` matching the extended regex ``pattern``."""
        out = self.sh(container, "date +%%z; grep -E '%s' %s || true" % (pattern, path), check=False)
        lines = out.splitlines()
        if not lines:
            return []
        zone = lines[0].strip()
        offset = (1 if zone[:1] != '-' else -1) * (int(zone[1:3] or 0) * 3600 + int(zone[3:5] or 0) * 60)
        found = []
        for line in lines[1:]:
            match = REDIS_LOG_LINE.match(line)
            if not match:
                continue
            stamp = calendar.timegm(time.strptime(match.group(1), '%d %b %Y %H:%M:%S')) - offset
            stamp += float('0.' + match.group(2))
            if stamp >= since_wall:
                found.append((stamp, match.group(3)))
        return found

    def haproxy_servers(self, proxy, socket='/run/haproxy/admin.sock'):
        """{'backend/server': status} from ``show stat`` on the runtime API of ``proxy`` (UP, DOWN, MAINT...)."""
        script = '\n'.join([
            'import csv, io, json, socket, sys',
            's = socket.socket(socket.AF_UNIX)', 's.settimeout(2)', 's.connect(%r)' % socket,
            's.sendall(b"show stat\\n")', 'out = b""',
            'while True:', '    d = s.recv(65536)', '    if not d: break', '    out += d',
            'rows = list(csv.DictReader(io.StringIO(out.decode().lstrip("# "))))',
            'print(json.dumps(dict(("%s/%s" % (r["pxname"], r["svname"]), r["status"]) for r in rows',
            '                      if r["svname"] not in ("FRONTEND", "BACKEND"))))', ''])
        return json.loads(self.sh(proxy, 'python3 -', stdin=script))

    def reaches(self, container, target, port, timeout=1.0):
        """Whether ``container`` can open a TCP connection to ``target``'s ``port`` (from inside it)."""
        script = ('import socket\ntry:\n    socket.create_connection((%r, %d), %r).close()\n    print("yes")\n'
                  'except Exception:\n    print("no")\n' % (self.ip[target], int(port), float(timeout)))
        return self.sh(container, 'python3 -', stdin=script, timeout=timeout + 10).strip() == 'yes'

    # -- faults (each recorded for restore())
    def sh(self, container, script, check=True, timeout=60, stdin=None):
        proc = subprocess.run(['docker', 'exec', '-i', self.container.get(container, container), 'sh', '-c', script],
                              input=stdin,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=timeout)
        if check and proc.returncode:
            raise RuntimeError('%s: %r failed (%d): %s' % (container, script, proc.returncode, proc.stderr.strip()))
        return proc.stdout

    def no_restart(self, container, unit='redis-server'):
        """systemd must not restart ``unit`` (as if the host were gone)."""
        self.sh(container, 'mkdir -p /run/systemd/system/%s.service.d && printf "[Service]\\nRestart=no\\n" > '
                           '/run/systemd/system/%s.service.d/%s && systemctl daemon-reload' % (unit, unit, DROPIN))

    def kill(self, container, unit='redis-server', signal='SIGKILL'):
        self.sh(container, 'systemctl kill --signal=%s --kill-whom=main %s.service' % (signal, unit))
        return time.monotonic()

    def systemctl(self, container, action, unit):
        self.sh(container, 'systemctl %s %s.service' % (action, unit))
        return time.monotonic()

    def main_pid(self, container, unit):
        return int(self.sh(container, 'systemctl show -p MainPID --value %s.service' % unit).strip() or 0)

    def pids(self):
        return dict(('%s/%s' % (c, u), self.main_pid(c, u))
                    for group, names in (('redis', self.nodes), ('haproxy', self.haproxies))
                    for c in names for u in UNITS[group])

    def disconnect(self, container):
        subprocess.check_call(['docker', 'network', 'disconnect', self.network, self.container[container]])
        return time.monotonic()

    def connect(self, container):
        attached = subprocess.check_output(['docker', 'inspect', '-f', '{{json .NetworkSettings.Networks}}',
                                            self.container[container]], universal_newlines=True)
        if self.network not in json.loads(attached):
            subprocess.check_call(['docker', 'network', 'connect', '--ip', self.ip[container], self.network,
                                   self.container[container]])

    # -- partitions (iptables inside the containers' network namespaces, run from the host)
    def pid(self, container):
        """PID (on the host) of the container's init process; 0 when it is not running."""
        out = subprocess.check_output(['docker', 'inspect', '-f', '{{.State.Pid}}',
                                       self.container.get(container, container)], universal_newlines=True)
        return int(out.strip() or 0)

    def netns(self, container, args, pid=None):
        """Run ``iptables args`` in the network namespace of ``container``."""
        pid = pid or self.pid(container)
        subprocess.check_call(['nsenter', '-t', str(pid), '-n', IPTABLES] + list(args))

    def _members(self, side):
        """Containers of a side (host names; a Redis node's Sentinel is the same container), deduplicated."""
        out = []
        for name in side:
            if name not in out:
                out.append(name)
        return out

    def partition(self, side_a, side_b):
        """Cut every container of ``side_a`` from every container of ``side_b``, both directions, in both
        containers' namespaces (established connections stop too). Only traffic between lab container
        addresses is dropped: the host (docker bridge gateway) still reaches both sides. Returns
        time.monotonic() after the last rule; heal() (and restore()) undo it."""
        side_a, side_b = self._members(side_a), self._members(side_b)
        assert not set(side_a) & set(side_b), 'a container on both sides: %s' % sorted(set(side_a) & set(side_b))
        pids = dict((c, self.pid(c)) for c in side_a + side_b)
        for here, there in [(a, b) for a in side_a for b in side_b] + [(b, a) for a in side_a for b in side_b]:
            self.netns(here, ['-I', 'INPUT', '-s', self.ip[there], '-j', 'DROP'], pids[here])
            self.netns(here, ['-I', 'OUTPUT', '-d', self.ip[there], '-j', 'DROP'], pids[here])
        self._fault_log.append(('partition', side_a, side_b))
        return time.monotonic()

    def cut_port(self, clients, servers, port):
        """Drop TCP traffic between ``clients`` and the service on ``port`` of ``servers`` (e.g. an
        HAProxy node cut from some Sentinels while it still reaches the Redis nodes on the same hosts).
        Returns time.monotonic() after the last rule; heal() undoes it."""
        port = str(port)
        for client in self._members(clients):
            for server in self._members(servers):
                cpid, spid = self.pid(client), self.pid(server)
                to_server = ['-p', 'tcp', '--dport', port, '-j', 'DROP']
                from_server = ['-p', 'tcp', '--sport', port, '-j', 'DROP']
                self.netns(client, ['-I', 'OUTPUT', '-d', self.ip[server]] + to_server, cpid)
                self.netns(client, ['-I', 'INPUT', '-s', self.ip[server]] + from_server, cpid)
                self.netns(server, ['-I', 'INPUT', '-s', self.ip[client]] + to_server, spid)
                self.netns(server, ['-I', 'OUTPUT', '-d', self.ip[client]] + from_server, spid)
        self._fault_log.append(('cut_port', clients, servers, port))
        return time.monotonic()

    def heal(self):
        """Flush INPUT and OUTPUT in every running lab container's namespace (undo partition()/cut_port()).

        Returns time.monotonic() BEFORE the first flush: the containers are healed one after the
        other, so what a container answers once the heal has begun is no longer "during the
        partition" (a proxy healed before the last container may already route again)."""
        began = time.monotonic()
        for container in self.nodes + self.haproxies:
            pid = self.pid(container)
            if pid:
                self.netns(container, ['-F', 'INPUT'], pid)
                self.netns(container, ['-F', 'OUTPUT'], pid)
        return began

    # -- power cycle
    def restart_all(self, timeout=180):
        """Site power cycle: ``docker restart -t 0`` of every lab container at once, then wait until
        systemd in each one has finished booting (running or degraded). Returns a dict of monotonic
        times: issued (before the restarts), restarted (docker restart returned), booted (systemd up)."""
        containers = [self.container[c] for c in self.nodes + self.haproxies]
        issued = time.monotonic()
        procs = [subprocess.Popen(['docker', 'restart', '-t', '0', c], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, universal_newlines=True) for c in containers]
        errors = [(c, p.communicate(timeout=timeout)[1].strip()) for c, p in zip(containers, procs) if p.wait()]
        assert not errors, 'docker restart failed: %s' % errors
        restarted = time.monotonic()
        deadline, pending, states = restarted + timeout, list(containers), {}
        while pending:
            for c in list(pending):
                proc = subprocess.run(['docker', 'exec', c, 'systemctl', 'is-system-running', '--wait'],
                                      stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, universal_newlines=True,
                                      timeout=max(1, deadline - time.monotonic()))
                states[c] = proc.stdout.strip()
                if states[c] in ('running', 'degraded'):
                    pending.remove(c)
            if pending:
                if time.monotonic() > deadline:
                    raise AssertionError('systemd not up after %d s: %s' % (timeout, states))
                time.sleep(0.5)
        self._fault_log.append(('restart_all', containers))
        return dict(issued=issued, restarted=restarted, booted=time.monotonic(), systemd=states)


    # -- configuration snapshots (for tests whose playbook run may rewrite the lab's configuration)
    def save_state(self):
        """Archive STATE_PATHS inside every lab container (STATE_ARCHIVE)."""
        for container in self.nodes + self.haproxies:
            self.sh(container, 'cd / && tar -czpf %s $(for p in %s; do [ -e "$p" ] && echo "$p"; done)'
                    % (STATE_ARCHIVE, ' '.join(STATE_PATHS)))

    def restore_state(self, timeout=120):
        """Put back what save_state() archived and restart every service (Sentinels, then Redis, then
        HAProxy), then wait for the steady state. Returns the master."""
        for group, names in (('haproxy', self.haproxies), ('redis', self.nodes)):
            for container in names:
                self.sh(container, 'systemctl stop %s' % ' '.join('%s.service' % u for u in reversed(UNITS[group])),
                        check=False)
        for container in self.nodes + self.haproxies:
            self.sh(container, 'cd / && tar -xzpf %s && systemctl daemon-reload' % STATE_ARCHIVE)
        for unit, names in (('redis-sentinel', self.nodes), ('redis-server', self.nodes), ('haproxy', self.haproxies),
                            ('haproxy-redis-watcher', self.haproxies)):
            for container in names:
                self.sh(container, 'systemctl reset-failed %s.service; systemctl start %s.service' % (unit, unit),
                        check=False)
        return self.restore(timeout)

    def restore(self, timeout=120):
        """Undo every fault the tests know how to make, then wait for the steady state."""
        self.heal()
        for container in self.nodes + self.haproxies:
            self.connect(container)
        for group, names in (('redis', self.nodes), ('haproxy', self.haproxies)):
            for container in names:
                script = ['rm -f /run/systemd/system/*.service.d/%s' % DROPIN, 'systemctl daemon-reload']
                for unit in UNITS[group]:
                    script.append('systemctl kill --signal=SIGCONT --kill-whom=main %s.service 2>/dev/null || true'
                                  % unit)
                    script.append('systemctl start %s.service' % unit)
                self.sh(container, '; '.join(script))
        return self.steady(timeout)

    # -- workload
    def workload(self, endpoints=None, threads=2, **kwargs):
        endpoints = endpoints or self.haproxies
        return wl.Workload(['%s=%s:%d' % (p, self.ip[p], HAPROXY_PORT) for p in endpoints], self.creds['REDIS_PASSWORD'],
                           threads=threads, node_names=wl.node_run_ids(self.node_specs()), **kwargs)

    def report(self, workload, master=None):
        """The workload's report, checked against the final master (default: the Sentinels' majority)."""
        master = master or self.sentinel_majority_master()
        final = self.node(master, timeout=5.0) if master else None
        try:
            return workload.build_report(final_master=final, nodes=self.node_specs(), sentinels=self.sentinel_specs(),
                                         master_name=self.master_name)
        finally:
            if final is not None:
                final.close()

    def finish(self, workload, name, extra=None, master=None):
        """Stop ``workload``, print its report under ``name`` (show()) and return it."""
        workload.stop()
        report = self.report(workload, master)
        show(name, report, extra)
        return report

    # -- ansible
    def playbook_command(self, playbook, *args):
        cmd = ['ansible-playbook', '-i', self.inventory, os.path.join(REPO, 'playbooks', playbook)]
        if self.tls:  # also where the inventory does not set it (KB_LAB_TLS)
            cmd += ['-e', json.dumps({'redis_ha_tls': True})]
        return cmd + list(args)

    def playbook(self, playbook, *args, **kwargs):
        """Run a playbook of the repo against the lab; returns the CompletedProcess (output captured)."""
        result = subprocess.run(self.playbook_command(playbook, *args), cwd=REPO, env=ansible_env(),
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
                                timeout=kwargs.get('timeout', 900))
        result.stdout = re.sub(r'\x1b\[[0-9;]*m', '', result.stdout)
        return result

    def start_playbook(self, playbook, *args):
        """Start a playbook of the repo against the lab in the background (RunningPlaybook)."""
        return RunningPlaybook(self.playbook_command(playbook, *args))


class RunningPlaybook(object):
    """A playbook run in the background: its output lines as they come, wait_for_line(), finish()."""

    def __init__(self, cmd):
        # Its own process group: pause()/resume() stop and continue ansible-playbook and its workers.
        self.proc = subprocess.Popen(cmd, cwd=REPO, env=ansible_env(), stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, universal_newlines=True, start_new_session=True)
        self.lines = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, name='playbook-output', daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.proc.stdout:
            with self._changed:
                self.lines.append(re.sub(r'\x1b\[[0-9;]*m', '', line))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_for_line(self, pattern, timeout=300):
        """Wait until an output line matches ``pattern`` (regex); returns it. Fails when the run ends first."""
        deadline = time.monotonic() + timeout
        seen = 0
        with self._changed:
            while True:
                for line in self.lines[seen:]:
                    if re.search(pattern, line):
                        return line
                seen = len(self.lines)
                if not self._reader.is_alive() or time.monotonic() > deadline:
                    raise AssertionError('no output line matched %r (run %s): %s' % (
                        pattern, 'ended' if not self._reader.is_alive() else 'timed out', ''.join(self.lines[-40:])))
                self._changed.wait(1.0)

    def pause(self):
        os.killpg(self.proc.pid, signal.SIGSTOP)

    def resume(self):
        os.killpg(self.proc.pid, signal.SIGCONT)

    def finish(self, timeout=900):
        """Wait for the end; returns a CompletedProcess like Lab.playbook()'s."""
        self.proc.wait(timeout)
        self._reader.join(30)
        return subprocess.CompletedProcess(self.proc.args, self.proc.returncode, ''.join(self.lines))


class Poller(object):
    """Background thread taking ``lab.snapshot(**kwargs)`` every ``interval`` s into ``samples``.

    ``names`` collects {run_id: node} from every snapshot (a restarted node has a new run_id); with
    ``names_into`` (e.g. a workload's node_names) the same names are handed on at once.
    """

    def __init__(self, lab, interval=0.2, names_into=None, **kwargs):
        self.lab, self.interval, self.kwargs = lab, interval, kwargs
        self.names = dict(wl.node_run_ids(lab.node_specs()))
        self.names_into = names_into
        self.samples = []
        self._stop = threading.Event()
        self._thread = None

    def start(self):
        self._thread = threading.Thread(target=self._loop, name='lab-poller', daemon=True)
        self._thread.start()
        return self

    def _loop(self):
        while not self._stop.is_set():
            begin = time.monotonic()
            try:
                sample = self.lab.snapshot(**self.kwargs)
            except Exception as exc:  # never die: a missing sample is visible as a gap
                sample = dict(t0=begin, t=time.monotonic(), error=wl.error_class(exc))
            for node, run_id in sample.get('run_ids', {}).items():
                self.names[run_id] = node
                if self.names_into is not None:
                    self.names_into[run_id] = node
            sample['route_names'] = dict((p, self.names.get(r, r and 'run_id %s' % r[:8]))
                                         for p, r in sample.get('routes', {}).items())
            self.samples.append(sample)
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - begin)))

    def stop(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        # Routes sampled before a node's new run_id was known: name them now.
        for sample in self.samples:
            sample['route_names'] = dict((p, self.names.get(r, r and 'run_id %s' % r[:8]))
                                         for p, r in sample.get('routes', {}).items())
        return self

    def first(self, predicate, after=None):
        """The first sample (taken at or after ``after``) for which ``predicate(sample)`` is true, or None."""
        for sample in self.samples:
            if (after is None or sample['t0'] >= after) and 'error' not in sample and predicate(sample):
                return sample
        return None

    def between(self, start, end=None):
        return [s for s in self.samples if 'error' not in s and s['t0'] >= start and (end is None or s['t'] <= end)]


class Prometheus(object):
    """A real Prometheus (Debian's package, unpacked by scripts/prometheus-tools.sh, never installed) on
    loopback, scraping the lab's HAProxy exporters and watchers every second and evaluating the
    collection's alert rules (playbooks/files/prometheus) every second."""

    def __init__(self, lab, workdir):
        tools = subprocess.run(['bash', os.path.join(REPO, 'scripts', 'prometheus-tools.sh')], check=True,
                               stdout=subprocess.PIPE, universal_newlines=True).stdout.strip()
        self.port = _free_port()
        rules = sorted(glob.glob(os.path.join(REPO, 'playbooks', 'files', 'prometheus', '*.rules.yml')))
        config = {
            'global': {'scrape_interval': '1s', 'evaluation_interval': '1s', 'scrape_timeout': '900ms'},
            'rule_files': rules,
            'scrape_configs': [
                {'job_name': 'keybuzz-redis-haproxy',
                 'static_configs': [{'targets': ['%s:8407' % lab.ip[p] for p in lab.haproxies]}]},
                {'job_name': 'keybuzz-redis-watcher',
                 'static_configs': [{'targets': ['%s:8406' % lab.ip[p] for p in lab.haproxies]}]},
                {'job_name': 'keybuzz-redis',
                 'static_configs': [{'targets': ['%s:9121' % lab.ip[n] for n in lab.nodes]}]},
                {'job_name': 'keybuzz-redis-sentinel',
                 'static_configs': [{'targets': ['%s:9122' % lab.ip[s] for s in lab.sentinels]}]},
            ],
        }
        targets = 2 * len(lab.haproxies) + len(lab.nodes) + len(lab.sentinels)
        path = os.path.join(str(workdir), 'prometheus.yml')
        with open(path, 'w') as fh:
            json.dump(config, fh)  # JSON is YAML
        self.log = open(os.path.join(str(workdir), 'prometheus.log'), 'w')
        self.proc = subprocess.Popen([os.path.join(tools, 'usr', 'bin', 'prometheus'), '--config.file=' + path,
                                      '--storage.tsdb.path=' + os.path.join(str(workdir), 'data'),
                                      '--web.listen-address=127.0.0.1:%d' % self.port],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        def scraping():
            try:
                return len([t for t in self.api('targets')['activeTargets'] if t['health'] == 'up']) == targets
            except (urllib.error.URLError, ConnectionError):  # not listening yet
                return False
        lab.wait_for('Prometheus scraping the %d targets' % targets, scraping, timeout=30)

    def api(self, path, **params):
        url = 'http://127.0.0.1:%d/api/v1/%s' % (self.port, path)
        if params:
            url += '?' + '&'.join('%s=%s' % (k, urllib.request.quote(str(v))) for k, v in params.items())
        with urllib.request.urlopen(url, timeout=5) as answer:
            return json.loads(answer.read().decode())['data']

    def query(self, expr):
        """Instant vector: [(labels, value)]."""
        return [(r['metric'], float(r['value'][1])) for r in self.api('query', query=expr)['result']]

    def firing(self):
        """{(alertname, instance)} of the alerts firing now."""
        return set((a['labels']['alertname'], a['labels'].get('instance', '')) for a in self.api('alerts')['alerts']
                   if a['state'] == 'firing')

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def _free_port():
    sock = socket.socket()
    sock.bind(('127.0.0.1', 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


def new_master(lab, old, timeout=60):
    """Wait until a Sentinel majority names a master other than ``old``; returns it."""
    def named():
        master = lab.sentinel_majority_master()
        return master if master and master != old else None
    return lab.wait_for('a Sentinel majority naming a master other than %s' % old, named, timeout)


def relabel(workload, names):
    """Name the nodes a workload recorded only as 'port P run_id XXXXXXXX' (it connected to a restarted
    node before its new run_id was known), with ``names`` = {run_id: node}."""
    prefixes = dict((run_id[:8], node) for run_id, node in names.items())

    def fix(label):
        if isinstance(label, str) and ' run_id ' in label:
            return prefixes.get(label.rpartition(' ')[2], label)
        return label
    with workload._lock:
        for entry in workload.ledger:
            entry['node'] = fix(entry['node'])
        workload.events[:] = [(t, ep, tid, ok, fix(node) if ok else node) for t, ep, tid, ok, node in workload.events]


# -- checks shared by the lab tests

RECAP = re.compile(r'^(\S+)\s+: ok=\d+\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)', re.M)


def recap(result):
    """{host: (changed, unreachable, failed)} from a playbook run's PLAY RECAP."""
    found = RECAP.findall(result.stdout)
    assert found, 'no PLAY RECAP in the output: %s' % result.stdout[-3000:]
    return dict((host, (int(changed), int(unreachable), int(failed))) for host, changed, unreachable, failed in found)


def assert_nothing_changed(lab, result):
    """The playbook run succeeded on every host of the lab with changed=0."""
    assert result.returncode == 0, result.stdout[-3000:]
    hosts = recap(result)
    assert sorted(hosts) == sorted(set(lab.nodes + lab.sentinels + lab.haproxies)), hosts
    changed = dict((host, counts) for host, counts in hosts.items() if counts != (0, 0, 0))
    assert not changed, 'changed, unreachable, failed per host: %s; changed tasks: %s' % (changed, changed_tasks(result))


def changed_tasks(result):
    """['TASK name: host', ...] for every "changed:" line of a playbook run's output."""
    found, task = [], None
    for line in result.stdout.splitlines():
        if line.startswith('TASK ['):
            task = line[6:].split(']')[0]
        elif line.startswith('changed: [') and task:
            found.append('%s: %s' % (task, line[len('changed: ['):].split(']')[0]))
    return found


def show(name, report, extra=None):
    """Print the workload report (pytest -rA shows it) and one JSON line for the record."""
    print(wl.format_report(report))
    line = dict(scenario=name, acked=report['writes_acked'], replicated=report['writes_replicated'],
                lost_replicated=report['missing']['missing_replicated'],
                lost_master_only=report['missing']['missing_master_only'],
                longest_unavailability=round(report['unavailability']['overall']['longest'], 3))
    line.update(extra or {})
    print('RESULT ' + json.dumps(line, sort_keys=True))


def assert_invariants(report):
    """No write a replica acknowledged is lost, never two nodes taking writes at once, one agreed master."""
    missing = report['missing']
    assert missing['missing_replicated'] == 0, 'writes acknowledged by a replica were lost: %s' % missing['examples']
    assert not report['two_nodes_at_once'], 'two nodes took writes at once: %s' % report['routing_conflicts'][:3]
    assert report['agreement']['single_master'], 'no single agreed master: %s' % report['agreement']
    assert report['writes_acked'] > 0


def assert_no_secret(lab, text):
    leaked = [k for k, v in lab.creds.items() if 'PASSWORD' in k and v in text]
    assert not leaked, 'the output holds the value of %s' % leaked
