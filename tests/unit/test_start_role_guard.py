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

from kblab.processes import MASTER_NAME, SENTINEL_PASSWORD, free_port

GUARD = os.path.join(os.path.dirname(__file__), '..', '..', 'roles', 'redis_node', 'files', 'redis-start-role.py')
spec = importlib.util.spec_from_file_location('redis_start_role', GUARD)
guard = importlib.util.module_from_spec(spec)
spec.loader.exec_module(guard)


def run_guard(tmp_path, sentinels, me, bootstrap, port, password=SENTINEL_PASSWORD, expect_rc=0, **extra):
    conf = tmp_path / 'redis.conf'
    unit = tmp_path / 'redis-server.service'
    conf.write_text('port %d\n' % port)
    unit.write_text('[Service]\n')
    cfg = {'self': me, 'port': port, 'master_name': MASTER_NAME, 'sentinels': sentinels,
           'sentinel_password': password, 'timeout': 0.5, 'bootstrap_master': bootstrap,
           'config_files': [str(conf), str(unit)], 'state_file': str(tmp_path / 'start-role.json'),
           'data_dir': str(tmp_path / 'data'), 'record_file': str(tmp_path / 'last-master.json'),
           'deployed_marker': str(tmp_path / 'deployed'), 'sentinel_config': str(tmp_path / 'sentinel.conf'),
           'sentinel_wait': 0}
    cfg.update(extra)
    cfg_file = tmp_path / 'start-role.cfg.json'
    cfg_file.write_text(json.dumps(cfg))
    saved = sys.argv
    sys.argv = ['redis-start-role', str(cfg_file)]
    try:
        assert guard.main() == expect_rc
    finally:
        sys.argv = saved
    if expect_rc:
        return None, None, conf, unit
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
    assert state['why'].startswith('bootstrap master from the inventory (first deploy')


def test_wrong_sentinel_password_is_not_nothing_running(cluster, tmp_path, capsys):
    # Something answers with other credentials: never the inventory's master, whatever the marker says.
    run_guard(tmp_path, sentinel_addresses(cluster), '127.0.0.3', '127.0.0.3', cluster.master.port,
              password='not-the-password', expect_rc=1)
    err = capsys.readouterr().err
    assert 'refused the password' in err and 'not starting' in err and '3 refused the password' in err
    assert not (tmp_path / 'start-role.env').exists()


def test_the_decision_is_recorded_with_the_sentinels_epoch(cluster, tmp_path):
    run_guard(tmp_path, sentinel_addresses(cluster), '127.0.0.2', '127.0.0.9', cluster.master.port)
    record = json.loads((tmp_path / 'last-master.json').read_text())
    assert record['master'] == '127.0.0.1:%d' % cluster.master.port and isinstance(record['epoch'], int)


def test_the_sentinels_epoch_replaces_a_hand_written_record(cluster, tmp_path):
    # README: a record with a high epoch starts a set whose Sentinels are gone; once they answer,
    # the next start records their epoch, so that record cannot outrank them later.
    (tmp_path / 'last-master.json').write_text(json.dumps({'master': '127.0.0.1:%d' % cluster.master.port,
                                                           'epoch': 1000000}))
    run_guard(tmp_path, sentinel_addresses(cluster), '127.0.0.2', '127.0.0.9', cluster.master.port)
    assert json.loads((tmp_path / 'last-master.json').read_text())['epoch'] < 1000000


def test_deployed_node_without_sentinels_follows_its_sentinel_file(tmp_path):
    # Cold start after a failover: no Sentinel listens yet; this host's Sentinel recorded 127.0.0.5 at epoch 3.
    dead = ['127.0.0.1:%d' % free_port() for _ in range(3)]
    (tmp_path / 'deployed').write_text('deployed\n')
    (tmp_path / 'sentinel.conf').write_text('port 26379\nsentinel monitor %s 127.0.0.5 6399 2\n'
                                            'sentinel config-epoch %s 3\n' % (MASTER_NAME, MASTER_NAME))
    (tmp_path / 'last-master.json').write_text(json.dumps({'master': '127.0.0.3:6399', 'epoch': 1}))
    env, state, _, _ = run_guard(tmp_path, dead, '127.0.0.3', '127.0.0.3', 6399)
    assert env == 'REDIS_ROLE_ARGS=--replicaof 127.0.0.5 6399\n'
    assert state['role'] == 'replica' and 'epoch 3' in state['why'] and '0 of 3 answered' in state['why']
    assert json.loads((tmp_path / 'last-master.json').read_text())['epoch'] == 3


def test_deployed_node_with_nothing_known_waits(tmp_path, capsys):
    dead = ['127.0.0.1:%d' % free_port() for _ in range(3)]
    (tmp_path / 'deployed').write_text('deployed\n')
    run_guard(tmp_path, dead, '127.0.0.3', '127.0.0.3', 6399, expect_rc=1, sentinel_wait=1.5)
    err = capsys.readouterr().err
    assert 'asking again' in err and 'waiting for a Sentinel majority' in err


def test_an_rdb_file_alone_is_a_first_deploy(tmp_path):
    # Debian's own instance (appendonly no), stopped when the role replaces it, leaves dump.rdb.
    dead = ['127.0.0.1:%d' % free_port() for _ in range(3)]
    (tmp_path / 'data').mkdir()
    (tmp_path / 'data' / 'dump.rdb').write_text('REDIS0011')
    env, state, _, _ = run_guard(tmp_path, dead, '127.0.0.3', '127.0.0.3', 6399)
    assert env == 'REDIS_ROLE_ARGS=\n' and state['role'] == 'master'


def test_data_on_disk_counts_as_deployed(tmp_path):
    dead = ['127.0.0.1:%d' % free_port() for _ in range(3)]
    (tmp_path / 'data').mkdir()
    (tmp_path / 'data' / 'appendonlydir').mkdir()
    run_guard(tmp_path, dead, '127.0.0.3', '127.0.0.3', 6399, expect_rc=1)


def test_one_sentinel_down_still_a_majority(cluster, tmp_path):
    sentinels = sentinel_addresses(cluster)[:2] + ['127.0.0.1:%d' % free_port()]
    env, state, _, _ = run_guard(tmp_path, sentinels, '127.0.0.2', '127.0.0.3', cluster.master.port)
    assert state['why'] == 'named by 2 of 3 Sentinels'


def test_checksum_matches_what_ansible_computes(cluster, tmp_path):
    _, state, conf, unit = run_guard(tmp_path, sentinel_addresses(cluster), '127.0.0.2', '127.0.0.3', cluster.master.port)
    # Ansible: (stat(conf).checksum ~ stat(unit).checksum) | hash('sha1')
    joined = hashlib.sha1(conf.read_bytes()).hexdigest() + hashlib.sha1(unit.read_bytes()).hexdigest()
    assert state['config_checksum'] == hashlib.sha1(joined.encode()).hexdigest()
