# -*- coding: utf-8 -*-
# Copyright: (c) 2026, KeyBuzz (@keybuzz)
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json

from kblab.processes import MASTER_NAME, SENTINEL_PASSWORD, free_port, wait_for
from ansible_collections.keybuzz.redis_ha.plugins.modules import sentinel_master_status as module

TOP_KEYS = {'changed', 'sentinels', 'master_host', 'master_port', 'agree', 'majority',
            'reachable_sentinels', 'queried_sentinels', 'healthy', 'reason'}
ENTRY_KEYS = {'address', 'reachable', 'error', 'master_host', 'master_port', 'flags', 's_down', 'o_down',
              'failover_in_progress', 'known_sentinels', 'known_replicas', 'healthy_replicas',
              'config_epoch', 'quorum', 'ckquorum_ok', 'ckquorum_message'}


def args_for(sentinels, **extra):
    args = dict(sentinels=['127.0.0.1:%d' % s.port for s in sentinels], login_password=SENTINEL_PASSWORD,
                master_name=MASTER_NAME, connect_timeout=1)
    args.update(extra)
    return args


def test_three_sentinels_agree(cluster, run_module):
    res = run_module(module, args_for(cluster.sentinels, expected_sentinels=3, expected_replicas=2,
                                      expected_master_host='127.0.0.1', expected_master_port=cluster.master.port))
    assert set(res) == TOP_KEYS
    assert res['healthy'] is True, res['reason']
    assert res['reason'] == 'ok'
    assert res['changed'] is False
    assert res['agree'] is True and res['majority'] is True
    assert (res['master_host'], res['master_port']) == ('127.0.0.1', cluster.master.port)
    assert res['queried_sentinels'] == 3 and res['reachable_sentinels'] == 3
    for entry, proc in zip(res['sentinels'], cluster.sentinels):
        assert set(entry) == ENTRY_KEYS
        assert entry['address'] == '127.0.0.1:%d' % proc.port
        assert entry['reachable'] is True and entry['error'] is None
        assert entry['flags'] == ['master']
        assert entry['s_down'] is False and entry['o_down'] is False and entry['failover_in_progress'] is False
        assert entry['known_sentinels'] == 3
        assert entry['known_replicas'] == 2 and entry['healthy_replicas'] == 2
        assert entry['quorum'] == 2 and entry['config_epoch'] == 0
        assert entry['ckquorum_ok'] is True
        assert entry['ckquorum_message'].startswith('OK 3 usable Sentinels')


def test_default_single_sentinel_and_port(cluster, run_module):
    sentinel = cluster.sentinels[0]
    res = run_module(module, dict(login_port=sentinel.port, login_password=SENTINEL_PASSWORD,
                                  master_name=MASTER_NAME, check_quorum=False))
    assert res['healthy'] is True, res['reason']
    assert res['queried_sentinels'] == 1
    assert res['sentinels'][0]['address'] == '127.0.0.1:%d' % sentinel.port
    assert res['sentinels'][0]['ckquorum_ok'] is None
    # a bare host takes login_port
    res = run_module(module, dict(sentinels=['127.0.0.1'], login_port=sentinel.port,
                                  login_password=SENTINEL_PASSWORD, master_name=MASTER_NAME))
    assert res['sentinels'][0]['address'] == '127.0.0.1:%d' % sentinel.port
    assert res['healthy'] is True, res['reason']


def test_wrong_sentinel_password(cluster, run_module):
    secret = 'Bad-Sentinel-S3cret'
    res = run_module(module, args_for(cluster.sentinels, login_password=secret))
    assert res['healthy'] is False and res['majority'] is False and res['agree'] is False
    assert res['reachable_sentinels'] == 0 and res['master_host'] is None
    for entry in res['sentinels']:
        assert entry['reachable'] is False
        assert entry['error'] == 'authentication failed on %s: invalid username or password' % entry['address']
    assert 'authentication failed' in res['reason']
    assert secret not in json.dumps(res)


def test_unknown_master_name(cluster, run_module):
    res = run_module(module, args_for(cluster.sentinels, master_name='nosuchmaster'))
    assert res['healthy'] is False and res['majority'] is False and res['agree'] is False
    assert res['reachable_sentinels'] == 3
    for entry in res['sentinels']:
        assert entry['reachable'] is True
        assert entry['error'] == 'sentinel %s does not monitor a master named nosuchmaster' % entry['address']
    assert 'no strict majority of the 3 configured sentinels names a master' in res['reason']


def test_expected_master_mismatch_and_counts(cluster, run_module):
    res = run_module(module, args_for(cluster.sentinels, expected_master_host='10.9.9.9', expected_master_port=6390,
                                      expected_sentinels=4, expected_replicas=3))
    assert res['healthy'] is False
    assert res['majority'] is True and res['agree'] is True
    assert 'master host is 127.0.0.1, expected 10.9.9.9' in res['reason']
    assert 'master port is %d, expected 6390' % cluster.master.port in res['reason']
    first = res['sentinels'][0]['address']
    assert 'sentinel %s knows 3 sentinels, expected 4' % first in res['reason']
    assert 'sentinel %s sees 2 healthy replicas, expected 3' % first in res['reason']
    assert 'scale_in' not in res['reason']


def test_more_sentinels_known_than_configured_points_to_scale_in(cluster, run_module):
    """Nodes removed from the inventory without playbooks/scale_in.yml: the Sentinels still know them."""
    res = run_module(module, args_for(cluster.sentinels[:2], expected_sentinels=2))
    assert res['healthy'] is False
    first = res['sentinels'][0]['address']
    assert ('sentinel %s knows 3 sentinels, expected 2 (it still remembers removed ones: remove nodes with '
            'playbooks/scale_in.yml, which runs SENTINEL RESET)' % first) in res['reason']


def test_unreachable_sentinel_in_list(cluster, run_module):
    port = free_port()
    args = args_for(cluster.sentinels)
    args['sentinels'].append('127.0.0.1:%d' % port)
    res = run_module(module, args)
    assert res['queried_sentinels'] == 4 and res['reachable_sentinels'] == 3
    assert res['majority'] is True and res['agree'] is True
    assert res['healthy'] is False
    dead = res['sentinels'][3]
    assert dead['reachable'] is False
    assert dead['error'] == 'cannot connect to 127.0.0.1:%d: connection refused' % port
    assert res['reason'] == 'sentinel unreachable: cannot connect to 127.0.0.1:%d: connection refused' % port


def test_check_mode(cluster, run_module):
    args = args_for(cluster.sentinels, expected_sentinels=3)
    normal = run_module(module, args)
    checked = run_module(module, dict(args, _ansible_check_mode=True))
    assert checked['changed'] is False
    for key in ('master_host', 'master_port', 'agree', 'majority', 'healthy', 'reason', 'reachable_sentinels'):
        assert checked[key] == normal[key]


def test_invalid_sentinel_entry_fails(run_module):
    res = run_module(module, dict(sentinels=['127.0.0.1:notaport'], master_name=MASTER_NAME), expect_fail=True)
    assert res['failed'] is True
    assert 'invalid sentinels entry' in res['msg']


def test_stopped_sentinels_and_ckquorum(disposable_cluster, run_module):
    sentinels = disposable_cluster.sentinels
    args = args_for(sentinels, expected_sentinels=3, expected_master_host='127.0.0.1',
                    expected_master_port=disposable_cluster.master.port)
    assert run_module(module, args)['healthy'] is True

    # one Sentinel down: still a majority, but unhealthy
    sentinels[2].stop()
    res = run_module(module, args)
    assert res['reachable_sentinels'] == 2 and res['queried_sentinels'] == 3
    assert res['majority'] is True and res['agree'] is True
    assert res['master_port'] == disposable_cluster.master.port
    assert res['sentinels'][2]['reachable'] is False
    assert res['sentinels'][2]['error'] == 'cannot connect to %s: connection refused' % res['sentinels'][2]['address']
    assert res['healthy'] is False
    assert res['reason'].startswith('sentinel unreachable: cannot connect to')
    assert res['sentinels'][0]['ckquorum_ok'] is True

    # two Sentinels down with quorum 2: CKQUORUM fails on the survivor once it flags the others down
    sentinels[1].stop()

    def noquorum():
        out = run_module(module, args)
        return out if out['sentinels'][0]['ckquorum_ok'] is False else None
    res = wait_for(noquorum, timeout=15, interval=0.3, what='CKQUORUM failure')
    survivor = res['sentinels'][0]
    assert survivor['reachable'] is True and survivor['known_sentinels'] == 3
    assert survivor['ckquorum_message'].startswith('NOQUORUM 1 usable Sentinels')
    assert res['majority'] is False and res['master_host'] is None
    assert res['healthy'] is False
    assert 'sentinel %s CKQUORUM failed: NOQUORUM' % survivor['address'] in res['reason']
