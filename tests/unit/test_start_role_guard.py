# -*- coding: utf-8 -*-
# Copyright: (c) 2026, KeyBuzz (@keybuzz)
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The redis_node start-up guard decides, before redis-server starts, whether the node is
master or replica: against real Sentinels, and with no Sentinel at all (first deploy)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import hashlib
import importlib.util
import json
import os
import sys

from conftest import MASTER_NAME, SENTINEL_PASSWORD, free_port

GUARD = os.path.join(os.path.dirname(__file__), '..', '..', 'roles', 'redis_node', 'files', 'redis-start-role.py')
spec = importlib.util.spec_from_file_location('redis_start_role', GUARD)
guard = importlib.util.module_from_spec(spec)
spec.loader.exec_module(guard)


def run_guard(tmp_path, sentinels, me, bootstrap, port, password=SENTINEL_PASSWORD):
    conf = tmp_path / 'redis.conf'
    unit = tmp_path / 'redis-server.service'
    conf.write_text('port %d\n' % port)
    unit.write_text('[Service]\n')
    cfg = {'self': me, 'port': port, 'master_name': MASTER_NAME, 'sentinels': sentinels,
           'sentinel_password': password, 'timeout': 0.5, 'bootstrap_master': bootstrap,
           'config_files': [str(conf), str(unit)], 'state_file': str(tmp_path / 'start-role.json')}
    cfg_file = tmp_path / 'start-role.cfg.json'
    cfg_file.write_text(json.dumps(cfg))
    saved = sys.argv
    sys.argv = ['redis-start-role', str(cfg_file)]
    try:
        assert guard.main() == 0
    finally:
        sys.argv = saved
    env = (tmp_path / 'start-role.env').read_text()
    state = json.loads((tmp_path / 'start-role.json').read_text())
    return env, state, conf, unit


def sentinel_addresses(cluster):
    return ['127.0.0.1:%d' % s.port for s in cluster.sentinels]


def test_replica_follows_the_master_named_by_the_sentinels(cluster, tmp_path):
    # The node calls itself 127.0.0.2 so that it is not the master (127.0.0.1:<master port>).
    env, state, _, _ = run_guard(tmp_path, sentinel_addresses(cluster), '127.0.0.2', '127.0.0.9', cluster.master.port)
    assert env == 'REDIS_ROLE_ARGS=--replicaof 127.0.0.1 %d\n' % cluster.master.port
    assert state['why'] == 'named by 3 of 3 Sentinels'


def test_the_master_named_by_the_sentinels_starts_as_master(cluster, tmp_path):
    # The bootstrap master is another address: the Sentinels' answer wins over the inventory.
    env, state, _, _ = run_guard(tmp_path, sentinel_addresses(cluster), '127.0.0.1', '127.0.0.9', cluster.master.port)
    assert env == 'REDIS_ROLE_ARGS=\n'
    assert state['master'] == '127.0.0.1:%d' % cluster.master.port


def test_without_any_sentinel_the_inventory_bootstrap_master_is_used(tmp_path):
    dead = ['127.0.0.1:%d' % free_port() for _ in range(3)]
    env, state, _, _ = run_guard(tmp_path, dead, '127.0.0.2', '127.0.0.3', 6399)
    assert env == 'REDIS_ROLE_ARGS=--replicaof 127.0.0.3 6399\n'
    assert state['why'] == 'bootstrap master from the inventory'


def test_wrong_sentinel_password_counts_as_no_answer(cluster, tmp_path):
    env, state, _, _ = run_guard(tmp_path, sentinel_addresses(cluster), '127.0.0.2', '127.0.0.3', cluster.master.port,
                                 password='not-the-password')
    assert state['why'] == 'bootstrap master from the inventory'
    assert env == 'REDIS_ROLE_ARGS=--replicaof 127.0.0.3 %d\n' % cluster.master.port


def test_one_sentinel_down_still_a_majority(cluster, tmp_path):
    sentinels = sentinel_addresses(cluster)[:2] + ['127.0.0.1:%d' % free_port()]
    env, state, _, _ = run_guard(tmp_path, sentinels, '127.0.0.2', '127.0.0.3', cluster.master.port)
    assert state['why'] == 'named by 2 of 3 Sentinels'


def test_checksum_matches_what_ansible_computes(cluster, tmp_path):
    _, state, conf, unit = run_guard(tmp_path, sentinel_addresses(cluster), '127.0.0.2', '127.0.0.3', cluster.master.port)
    # Ansible: (stat(conf).checksum ~ stat(unit).checksum) | hash('sha1')
    joined = hashlib.sha1(conf.read_bytes()).hexdigest() + hashlib.sha1(unit.read_bytes()).hexdigest()
    assert state['config_checksum'] == hashlib.sha1(joined.encode()).hexdigest()


def test_decide_lone_answer_and_disagreement():
    cfg = {'sentinels': ['a:1', 'b:1', 'c:1'], 'bootstrap_master': '10.9.9.9', 'port': 6379}
    # Only one Sentinel answers (e.g. cold start): its persisted view beats the inventory.
    assert guard.decide(cfg, {'a:1': '10.0.0.2:6379', 'b:1': None, 'c:1': None}) == \
        ('10.0.0.2:6379', 'named by every Sentinel that answered (1 of 3)')
    # Two answers that disagree and no majority: fall back to the inventory.
    assert guard.decide(cfg, {'a:1': '10.0.0.2:6379', 'b:1': '10.0.0.3:6379', 'c:1': None})[1] == \
        'bootstrap master from the inventory'
    # A majority wins over a dissenting Sentinel.
    assert guard.decide(cfg, {'a:1': '10.0.0.2:6379', 'b:1': '10.0.0.2:6379', 'c:1': '10.0.0.3:6379'}) == \
        ('10.0.0.2:6379', 'named by 2 of 3 Sentinels')
