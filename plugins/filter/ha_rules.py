# -*- coding: utf-8 -*-
# Copyright: (c) 2026, KeyBuzz (@keybuzz)
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The collection's decision rules (plugins/module_utils/ha_rules.py) as Jinja filters, so that
playbooks and roles decide exactly as the modules, the start-up guard and the watcher do."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
name: ha_rules
short_description: The keybuzz.redis_ha decision rules as filters
description:
  - C(choose_master), C(fence_problems), C(split_brain_problems), C(max_lag_for), C(view_changed), C(reset_problems) and C(lock_outcome) call the
    functions of the same name in C(plugins/module_utils/ha_rules.py); see that file for the rules.
  - C(reset_problems) takes the result of C(keybuzz.redis_ha.sentinel_master_status) as its input.
  - C(lock_outcome) takes the C(results) of a loop of the C(keybuzz.redis_ha.cluster_lock) module over the lock hosts.
author: KeyBuzz (@keybuzz)
'''

from ansible_collections.keybuzz.redis_ha.plugins.module_utils import ha_rules


def choose_master(sentinel_master, live_masters, initial_master, deployed):
    """[node or '', why]: the master for a playbook run ('' = cannot tell, stop)."""
    master, why = ha_rules.choose_master(sentinel_master or None, list(live_masters or []), initial_master,
                                         bool(deployed))
    return [master or '', why]


def fence_problems(down_after_ms, min_replicas_to_write, max_lag):
    return ha_rules.fence_problems(down_after_ms, min_replicas_to_write, max_lag)


def split_brain_problems(redis_hosts, sentinel_hosts, min_replicas_to_write):
    return ha_rules.split_brain_problems(redis_hosts, sentinel_hosts, min_replicas_to_write)


def max_lag_for(down_after_ms):
    return ha_rules.max_lag_for(down_after_ms)


def view_changed(planned_master, current_master):
    """'' when the command may be sent, else why not."""
    return ha_rules.view_changed(planned_master, current_master or None) or ''


def reset_problems(status, index, sentinels, replicas):
    """[] once the Sentinel status['sentinels'][index] knows exactly the cluster that stays."""
    return ha_rules.reset_problems((status or {}).get('sentinels') or [], index, sentinels, replicas)


def lock_outcome(results, lock_hosts):
    """Does the run hold the cluster lock: the results of a cluster_lock loop (item = lock host)."""
    answers = []
    for res in results or []:
        answer = dict(host=res.get('item'))
        if res.get('unreachable') or res.get('failed') or not res.get('action'):
            answer['error'] = ' '.join(str(res.get('msg') or 'no answer').split())
        else:
            answer.update(action=res['action'], why=res.get('why'), lock=res.get('lock'))
        answers.append(answer)
    return ha_rules.lock_outcome(answers, list(lock_hosts or []))


class FilterModule(object):
    def filters(self):
        return {
            'choose_master': choose_master,
            'fence_problems': fence_problems,
            'lock_outcome': lock_outcome,
            'max_lag_for': max_lag_for,
            'reset_problems': reset_problems,
            'split_brain_problems': split_brain_problems,
            'view_changed': view_changed,
        }
