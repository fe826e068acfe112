# -*- coding: utf-8 -*-
# Copyright: (c) 2026, KeyBuzz (@keybuzz)
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Grow the running lab from 3 to 5 Redis nodes (each with its Sentinel) with site.yml, fail over to a
new node, refuse to remove the master, then shrink back to 3 with scale_in.yml while one of the two
hosts being removed is down: all under the write workload through both HAProxy nodes, no existing
service restarted, nothing acknowledged lost.

The two extra hosts are containers this test starts on the lab's network (as Molecule starts the
others) and removes at the end; their inventories sit beside the lab's (its credentials are shared)."""

from __future__ import absolute_import, division, print_function

import json
import os
import subprocess
import time

import pytest
import yaml

from kblab import labctl
from kblab.labctl import assert_invariants, assert_no_secret

EXTRA = {'redis-04': '172.29.40.126', 'redis-05': '172.29.40.127'}


def start_container(lab, name, address):
    image = subprocess.check_output(['docker', 'inspect', '-f', '{{.Config.Image}}', lab.container[lab.nodes[0]]],
                                    universal_newlines=True).strip()
    subprocess.run(['docker', 'rm', '-f', name], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    subprocess.check_call(['docker', 'run', '-d', '--name', name, '--hostname', name, '--cap-add', 'SYS_ADMIN',
                           '--cgroupns', 'host', '-v', '/sys/fs/cgroup:/sys/fs/cgroup:rw', '--tmpfs', '/run',
                           '--tmpfs', '/run/lock', '--sysctl', 'net.core.somaxconn=1024', '--network', lab.network,
                           '--ip', address, image, '/lib/systemd/systemd'], stdout=subprocess.DEVNULL)


def write_inventory(lab, name, redis_hosts, retired=(), quorum=2, to_write=1):
    """An inventory beside the lab's (same group_vars and credentials) with these Redis hosts."""
    lab_dir = os.path.dirname(lab.inventory.rstrip('/'))
    path = os.path.join(lab_dir, name)
    os.makedirs(path, exist_ok=True)
    if not os.path.exists(os.path.join(path, 'group_vars')):
        os.symlink(os.path.realpath(os.path.join(lab.inventory, 'group_vars')), os.path.join(path, 'group_vars'))
    docker = {'ansible_connection': 'community.docker.docker'}

    def host(h, master=False):
        out = dict(docker, redis_ha_private_ip=lab.ip.get(h) or EXTRA[h])
        if master:
            out['redis_node_initial_role'] = 'master'
        return out
    initial = [h for h in lab.nodes if lab.hostvars[h].get('redis_node_initial_role') == 'master']
    inventory = {'all': {'children': {
        'redis': {'hosts': dict((h, host(h, h in initial)) for h in redis_hosts),
                  'vars': {'redis_node_min_replicas_to_write': to_write}},
        'redis_sentinel': {'children': {'redis': {}}, 'vars': {'redis_sentinel_quorum': quorum}},
        'haproxy': {'hosts': dict((h, host(h)) for h in lab.haproxies)},
    }}}
    if retired:
        inventory['all']['children']['redis_retired'] = {'hosts': dict((h, host(h)) for h in retired)}
    with open(os.path.join(path, 'hosts.yml'), 'w') as handle:
        yaml.safe_dump(inventory, handle, default_flow_style=False)
    return path


def service_pids(lab, names):
    units = [('redis', n) for n in names] + [('haproxy', p) for p in lab.haproxies]
    return dict(('%s/%s' % (c, u), lab.main_pid(c, u)) for group, c in units
                for u in labctl.UNITS[group] if u != 'haproxy-redis-watcher')


def sentinel_settings(lab, names):
    out = {}
    for s in names:
        client = lab.sentinel(s)
        try:
            info = client.execute_command('SENTINEL', 'MASTER', lab.master_name)
            info = dict(zip(info[::2], info[1::2])) if isinstance(info, list) else info
            out[s] = (int(info['quorum']), int(info['num-slaves']), int(info['num-other-sentinels']))
        finally:
            client.close()
    return out


def config(lab, name, setting):
    client = lab.node(name)
    try:
        return client.config_get(setting)[setting]
    finally:
        client.close()


def set_config(lab, name, setting, value):
    client = lab.node(name)
    try:
        client.config_set(setting, value)
    finally:
        client.close()


def forget_extra_nodes(lab):
    """Undo a scale-out that the test could not undo itself: stop the extra containers, make each of
    the lab's Sentinels forget them (one at a time), put the 3-node settings back."""
    subprocess.run(['docker', 'rm', '-f'] + list(EXTRA), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for s in lab.sentinels:
        client = lab.sentinel(s)
        try:
            client.execute_command('SENTINEL', 'RESET', lab.master_name)
            client.execute_command('SENTINEL', 'SET', lab.master_name, 'quorum', '2')
        except Exception:  # noqa: BLE001 - best effort; restore() below says what is left
            pass
        finally:
            client.close()
        time.sleep(3)
    for n in lab.nodes:
        client = lab.node(n)
        try:
            client.config_set('min-replicas-to-write', '1')
            client.config_set('replica-priority', '100')
        except Exception:  # noqa: BLE001
            pass
        finally:
            client.close()
    lab.restore()


@pytest.mark.skipif(labctl.tls_wanted({}), reason='run in the default (plaintext) scenario only')
def test_scale_out_to_five_fail_over_to_a_new_node_and_scale_back_in(steady_lab):
    lab = steady_lab
    old_master = lab.steady()
    if old_master == lab.initial_master():
        # The new nodes must follow the live master, not the inventory's first one: move it first.
        client = lab.sentinel(old_master)
        client.execute_command('SENTINEL', 'FAILOVER', lab.master_name)
        client.close()
        labctl.new_master(lab, old_master)
        old_master = lab.steady(60)
    pids_before = service_pids(lab, lab.nodes)
    five = labctl.Lab(write_inventory(lab, 'inventory-5', lab.nodes + sorted(EXTRA), quorum=3, to_write=2), lab.credentials)
    three = labctl.Lab(write_inventory(lab, 'inventory-3', lab.nodes, retired=sorted(EXTRA)), lab.credentials)
    done = False
    try:
        for name, address in sorted(EXTRA.items()):
            start_container(lab, name, address)

        # --- scale out: site.yml with the 5-node inventory, under the workload
        work = five.workload().start()
        started = time.monotonic()
        result = five.playbook('site.yml')
        out_seconds = time.monotonic() - started
        assert result.returncode == 0, result.stdout[-4000:]
        assert five.steady(120) == old_master
        report = five.finish(work, 'scale out 3 -> 5 (site.yml)', extra={'seconds': round(out_seconds, 1)})
        assert_invariants(report)
        assert_no_secret(lab, result.stdout)
        # No Redis, Sentinel or HAProxy process of the three first nodes restarted (HAProxy reloads keep
        # its master process); the quorum and the fence follow the new size at run time.
        assert service_pids(lab, lab.nodes) == pids_before
        assert set(sentinel_settings(five, five.sentinels).values()) == {(3, 4, 4)}
        assert config(five, old_master, 'min-replicas-to-write') == '2'
        for proxy in lab.haproxies:
            assert sorted(k for k in five.haproxy_servers(proxy) if k.startswith('bk_redis/')) == \
                sorted('bk_redis/%s' % n for n in five.nodes), five.haproxy_servers(proxy)

        # site.yml's re-run time on 5 nodes (nothing to change), to compare with 3 below.
        started = time.monotonic()
        rerun = five.playbook('site.yml')
        rerun_five = time.monotonic() - started
        assert rerun.returncode == 0, rerun.stdout[-3000:]
        assert not labctl.changed_tasks(rerun), labctl.changed_tasks(rerun)

        # --- a failover that can only elect a new node: the old replicas get replica-priority 0
        work = five.workload().start()
        for n in lab.nodes:
            if n != old_master:
                set_config(five, n, 'replica-priority', '0')
        client = five.sentinel(lab.nodes[0])
        client.execute_command('SENTINEL', 'FAILOVER', lab.master_name)
        client.close()
        new = labctl.new_master(five, old_master)
        assert new in EXTRA
        assert five.steady(90) == new
        report = five.finish(work, 'failover to a new node (%s)' % new)
        assert_invariants(report)

        # --- scale in while a node being removed is the master: refused, nothing changed
        refused = three.playbook('scale_in.yml')
        assert refused.returncode != 0
        text = ' '.join(refused.stdout.split())
        assert '%s is the master (named by a majority of the Sentinels) and is not in the group redis' % EXTRA[new] in text
        assert 'switch over' in text
        assert five.steady(30) == new

        # Switch over to a node that stays (the inventory still lists all five); the test gives the old
        # replicas their replica-priority back (scale_in.yml's Redis play would too: redis_node_replica_priority).
        back = five.playbook('switchover.yml', '-e', 'redis_switchover_target=%s' % old_master)
        assert back.returncode == 0, back.stdout[-3000:]
        for n in lab.nodes:
            set_config(five, n, 'replica-priority', '100')
        assert five.steady(60) == old_master

        # --- scale in: scale_in.yml with redis-04/05 in redis_retired, under the workload. redis-05's
        # host dies first (its container stops): the run goes on without it and names it at the end.
        subprocess.check_call(['docker', 'stop', 'redis-05'], stdout=subprocess.DEVNULL)
        work = lab.workload().start()
        started = time.monotonic()
        result = three.playbook('scale_in.yml')
        in_seconds = time.monotonic() - started
        assert result.returncode == 0, result.stdout[-4000:]
        # steady(): one master, 2 replicas, every Sentinel knowing exactly 2 replicas and 2 other Sentinels.
        assert lab.steady(60) == old_master
        done = True
        report = lab.finish(work, 'scale in 5 -> 3 (scale_in.yml)', extra={'seconds': round(in_seconds, 1)})
        assert_invariants(report)
        assert_no_secret(lab, result.stdout)
        assert set(sentinel_settings(lab, lab.sentinels).values()) == {(2, 2, 2)}
        assert config(lab, old_master, 'min-replicas-to-write') == '1'
        assert service_pids(lab, lab.nodes) == pids_before
        state = lab.sh('redis-04', 'systemctl is-active redis-server redis-sentinel; systemctl is-enabled redis-server '
                                   'redis-sentinel', check=False).split()
        assert state == ['inactive', 'inactive', 'disabled', 'disabled'], state
        text = ' '.join(result.stdout.split())
        assert 'not reached: redis-05' in text
        assert 'Not stopped (down or unreachable), so as they were: redis-05; make sure they never start' in text
        for proxy in lab.haproxies:
            assert sorted(k for k in lab.haproxy_servers(proxy) if k.startswith('bk_redis/')) == \
                sorted('bk_redis/%s' % n for n in lab.nodes)
        validate = lab.playbook('validate.yml')
        assert validate.returncode == 0, validate.stdout[-3000:]

        started = time.monotonic()
        rerun = lab.playbook('site.yml')
        rerun_three = time.monotonic() - started
        assert rerun.returncode == 0, rerun.stdout[-3000:]
        assert not labctl.changed_tasks(rerun), labctl.changed_tasks(rerun)
        print('RESULT ' + json.dumps(dict(scenario='scaling', scale_out_seconds=round(out_seconds, 1),
                                          scale_in_seconds=round(in_seconds, 1), site_rerun_5_seconds=round(rerun_five, 1),
                                          site_rerun_3_seconds=round(rerun_three, 1)), sort_keys=True))
    finally:
        subprocess.run(['docker', 'rm', '-f'] + list(EXTRA), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not done:
            forget_extra_nodes(lab)
