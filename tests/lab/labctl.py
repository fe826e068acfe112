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
injected with ``docker exec`` / ``docker network``; every fault has an undo in ``restore()``.
Passwords are read from the credentials file and only ever handed to redis-py or to stdin.
"""

from __future__ import absolute_import, division, print_function

import glob
import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, 'bench'))

import redis  # noqa: E402
import workload as wl  # noqa: E402

REDIS_PORT, SENTINEL_PORT, HAPROXY_PORT, HEALTH_PORT = 6379, 26379, 6379, 8405
NETWORK = 'kb-lab'
# Drop-ins the tests add under /run (gone at the next boot, removed by restore()).
DROPIN = 'kb-fault.conf'
UNITS = {'redis': ['redis-server', 'redis-sentinel'], 'haproxy': ['haproxy', 'haproxy-redis-watcher']}


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

    def role(self, name):
        """ROLE of a node: ('master', None) / ('replica', master name) / (None, error class)."""
        client = self.node(name)
        try:
            reply = client.execute_command('ROLE')
            if reply[0] == 'master':
                return 'master', None
            return 'replica', '%s %s' % (self.name_of(reply[1]), reply[3])
        except Exception as exc:
            return None, wl.error_class(exc)
        finally:
            client.close()

    def sentinel_master(self, name):
        client = self.sentinel(name)
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

    def restore(self, timeout=120):
        """Undo every fault the tests know how to make, then wait for the steady state."""
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
    def playbook(self, playbook, *args, **kwargs):
        """Run a playbook of the repo against the lab; returns the CompletedProcess (output captured)."""
        cmd = ['ansible-playbook', '-i', self.inventory, os.path.join(REPO, 'playbooks', playbook)]
        if self.tls:  # also where the inventory does not set it (KB_LAB_TLS)
            cmd += ['-e', json.dumps({'redis_ha_tls': True})]
        cmd += list(args)
        result = subprocess.run(cmd, cwd=REPO, env=ansible_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                universal_newlines=True, timeout=kwargs.get('timeout', 900))
        result.stdout = re.sub(r'\x1b\[[0-9;]*m', '', result.stdout)
        return result


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
    assert not changed, 'changed, unreachable, failed per host: %s' % changed


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
