# -*- coding: utf-8 -*-
# Copyright: (c) 2026, KeyBuzz (@keybuzz)
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""keybuzz.redis_ha.sentinel_reset against a real redis-sentinel on loopback: it forgets what it knew of
the master's replicas, check mode sends nothing, a wrong name or a pattern fails naming the cause."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from kblab.processes import MASTER_NAME, SENTINEL_PASSWORD, start_server, wait_for
from ansible_collections.keybuzz.redis_ha.plugins.modules import sentinel_reset as module


def known_replicas(sentinel):
    client = sentinel.client(password=SENTINEL_PASSWORD)
    try:
        return len(client.execute_command('SENTINEL', 'REPLICAS', MASTER_NAME))
    finally:
        client.close()


def test_reset_forgets_a_replica_that_left(tmp_path, sentinel, run_module):
    args = dict(login_port=sentinel.port, login_password=SENTINEL_PASSWORD, connect_timeout=2, master_name=MASTER_NAME)
    # A replica of the fixture's master, learnt by the Sentinel, then stopped: the Sentinel keeps it.
    master_port = int(sentinel.client(password=SENTINEL_PASSWORD).execute_command(
        'SENTINEL', 'GET-MASTER-ADDR-BY-NAME', MASTER_NAME)[1])

    class Master(object):
        port = master_port
    replica = start_server(tmp_path, 'leaving', master=Master)
    try:
        wait_for(lambda: known_replicas(sentinel) == 1, timeout=30, what='the Sentinel to learn the replica')
    finally:
        replica.stop()
    assert run_module(module, dict(args, _ansible_check_mode=True)) == dict(changed=True, reset=0)
    assert known_replicas(sentinel) == 1
    assert run_module(module, args) == dict(changed=True, reset=1)
    assert known_replicas(sentinel) == 0


def test_wrong_name_pattern_and_password_fail_naming_the_cause(sentinel, run_module):
    args = dict(login_port=sentinel.port, login_password=SENTINEL_PASSWORD, connect_timeout=2)
    res = run_module(module, dict(args, master_name='other'), expect_fail=True)
    assert res['msg'] == ('SENTINEL RESET other on 127.0.0.1:%d reset 0 masters: the Sentinel does not monitor a master '
                          'named other' % sentinel.port)
    res = run_module(module, dict(args, master_name='*'), expect_fail=True)
    assert res['msg'].startswith("master_name: '*' holds a glob character")
    res = run_module(module, dict(args, master_name=MASTER_NAME, login_password='Wrong-Sentinel-Pw-01'), expect_fail=True)
    assert res['msg'].startswith('SENTINEL RESET %s on 127.0.0.1:%d failed: authentication' % (MASTER_NAME, sentinel.port))
    assert 'Wrong-Sentinel-Pw-01' not in res['msg']
