# -*- coding: utf-8 -*-
# Copyright: (c) 2026, KeyBuzz (@keybuzz)
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""playbooks/files/redis_switchover.py refuses a plan whose master is no longer the one a Sentinel
majority names (a failover since the play read it), before it changes anything. Real master, two
replicas and three Sentinels on loopback (the shared, undisturbed cluster)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os
import subprocess
import sys

from conftest import ADMIN_PASSWORD, ADMIN_USER, MASTER_NAME, REPO_ROOT, SENTINEL_PASSWORD, admin

HELPER = os.path.join(REPO_ROOT, 'playbooks', 'files', 'redis_switchover.py')
RULES = os.path.join(REPO_ROOT, 'plugins', 'module_utils', 'ha_rules.py')


def test_a_stale_master_is_refused_before_anything_changes(cluster):
    stale, target = cluster.replicas  # the play "read" replica0 as the master
    before = [admin(r).config_get('replica-priority') for r in cluster.replicas]
    with open(RULES) as handle:
        rules = handle.read()
    cfg = dict(master_name=MASTER_NAME, rules_source=rules, admin_user=ADMIN_USER, admin_password=ADMIN_PASSWORD,
               sentinel_password=SENTINEL_PASSWORD, master=['127.0.0.1', stale.port], target=['127.0.0.1', target.port],
               replicas=[['127.0.0.1', cluster.master.port]],
               sentinels=[['127.0.0.1', s.port] for s in cluster.sentinels])
    proc = subprocess.run([sys.executable, HELPER], input=json.dumps(cfg), stdout=subprocess.PIPE,
                          universal_newlines=True, timeout=60)
    result = json.loads(proc.stdout)
    assert proc.returncode == 1 and result['failed'] and result['changed'] is False
    assert ('the master changed since the run started (planned 127.0.0.1:%d, a Sentinel majority now names '
            '127.0.0.1:%d): nothing was switched over' % (stale.port, cluster.master.port)) in result['msg']
    assert result['priorities_changed'] == {}
    assert [admin(r).config_get('replica-priority') for r in cluster.replicas] == before
    assert admin(cluster.master).execute_command('ROLE')[0] == 'master'
