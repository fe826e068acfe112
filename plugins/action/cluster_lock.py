# -*- coding: utf-8 -*-
# Copyright: (c) 2026, KeyBuzz (@keybuzz)
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Controller side of keybuzz.redis_ha.cluster_lock: the run's identity, and the take-over of a
record left by a run of this controller that is over (a failed or interrupted playbook)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import getpass
import hashlib
import os
import socket

from ansible.errors import AnsibleConnectionFailure
from ansible.plugins.action import ActionBase
from ansible_collections.keybuzz.redis_ha.plugins.module_utils import ha_rules


def process_start(pid):
    """The start time of process ``pid`` (clock ticks since boot, /proc), '' when unknown."""
    try:
        with open('/proc/%d/stat' % int(pid)) as handle:
            # The command name (field 2) may hold spaces: count the fields after its ')'.
            return handle.read().rpartition(')')[2].split()[19]
    except (IOError, OSError, IndexError, ValueError):
        return ''


def process_alive(pid, start):
    """Whether the process ``pid`` that started at ``start`` (process_start's) still runs here."""
    try:
        pid = int(pid)
    except (TypeError, ValueError):
        return False
    if pid <= 0:
        return False
    now = process_start(pid)
    if now or os.path.isdir('/proc'):
        return bool(now) and (not start or now == str(start))
    try:
        os.kill(pid, 0)
    except OSError as exc:
        return exc.errno == 1  # EPERM: it runs, as another user
    return True


def run_identity():
    """This run: the ansible-playbook process (the parent of the worker running this plugin)."""
    pid = os.getppid()
    start = process_start(pid)
    controller = socket.gethostname()
    run_id = hashlib.sha1(('%s|%d|%s' % (controller, pid, start)).encode()).hexdigest()[:16]
    return dict(id=run_id, controller=controller, pid=pid, pid_start=start,
                holder='%s@%s' % (getpass.getuser(), controller))


class ActionModule(ActionBase):
    _supports_check_mode = True

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        args = dict(self._task.args)
        me = run_identity()
        for key, value in me.items():
            if key != 'holder' or not args.get('holder'):
                args[key] = value
        try:
            answer = self._execute_module(module_name='keybuzz.redis_ha.cluster_lock', module_args=args,
                                          task_vars=task_vars)
        except AnsibleConnectionFailure as exc:
            # A lock host that cannot be reached is one answer of the lock's majority, not the end
            # of the run (an unreachable delegated host would stop the whole run_once loop).
            result.update(failed=True, msg='unreachable: %s' % ' '.join(str(exc).split()), run_id=me['id'])
            return result
        record = answer.get('lock') or {}
        if (args.get('state', 'present') == 'present' and answer.get('action') == 'refuse'
                and ha_rules.lock_run_over(record, me['controller'],
                                           process_alive(record.get('pid'), record.get('pid_start')))):
            args.update(take_over=record.get('id'), reason='run_over')
            answer = self._execute_module(module_name='keybuzz.redis_ha.cluster_lock', module_args=args,
                                          task_vars=task_vars)
        result.update(answer)
        result['run_id'] = me['id']
        return result
