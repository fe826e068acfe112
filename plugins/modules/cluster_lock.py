#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, KeyBuzz (@keybuzz)
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: cluster_lock
short_description: Take, renew or give back the cluster lock's record on one lock host
version_added: 1.0.0
author: KeyBuzz (@keybuzz)
description:
  - One lock host's part of the cluster lock that keeps two playbook runs from changing the same
    cluster at once. Use it through the role C(keybuzz.redis_ha.cluster_lock), which asks every lock
    host in order and decides whether the run holds the lock (a strict majority of the lock hosts).
  - The record is a JSON file (mode 0600) naming the run, who started it, what for, when, and when it
    expires on this host's clock. It is replaced atomically, under an exclusive C(flock) held for the
    read, the decision and the write, so two runs asking at the same moment cannot both get it.
  - The decision is C(lock_decision) of C(plugins/module_utils/ha_rules.py). The action plugin of the
    same name fills the run's identity (O(id), O(holder), O(controller), O(pid)) on the controller and,
    when the record belongs to a run of this controller whose process is gone, asks again with
    O(take_over) and O(reason=run_over).
options:
  path:
    description: The lock record. Its directory is created (mode 0700) when missing.
    type: path
    default: /var/lib/keybuzz-redis-ha/cluster.lock
  state:
    description: V(present) takes or renews the record; V(absent) removes it when it is this run's.
    type: str
    choices: [present, absent]
    default: present
  id:
    description: The run's lock id (the action plugin derives it from the controller and the C(ansible-playbook) process).
    type: str
    required: true
  holder:
    description: Who runs it, shown to whoever is refused (default, from the action plugin, V(user@controller)).
    type: str
    default: ''
  controller:
    description: The controller's host name (the action plugin's).
    type: str
    default: ''
  pid:
    description: The C(ansible-playbook) process on the controller.
    type: int
    default: 0
  pid_start:
    description: That process's start time (clock ticks since boot, from C(/proc)), so a reused pid is not mistaken for it.
    type: str
    default: ''
  purpose:
    description: What the run does (the playbook's name), shown to whoever is refused.
    type: str
    default: ''
  ttl:
    description: Seconds the record stands after it is taken or renewed.
    type: int
    default: 1800
  take_over:
    description: The lock id of a record this run may replace although it has not expired (see O(reason)). Any other record is still refused.
    type: str
  wait:
    description:
      - Seconds to wait for the record's guard (C(flock) on O(path) + C(.flock)) when another process holds it.
        Taking it is a matter of milliseconds; a process holding it longer is stuck, and this host then answers
        with a failure (one lock host of the majority) instead of hanging the run.
    type: float
    default: 10
  reason:
    description:
      - Why O(take_over) may be replaced. V(break), the operator's request (C(cluster_lock_break));
        V(run_over), the run that wrote it is over (decided by the action plugin on its controller).
    type: str
    choices: [break, run_over]
    default: break
notes:
  - Check mode decides and reports without writing.
  - The role reports C(changed=false) for these tasks, as the record is bookkeeping of the run, not a change of the cluster.
'''

EXAMPLES = r'''
- name: Take the cluster lock's record on one host (normally done by the role keybuzz.redis_ha.cluster_lock)
  keybuzz.redis_ha.cluster_lock:
    purpose: site.yml
    ttl: 1800
  register: lock_record

- name: Give it back
  keybuzz.redis_ha.cluster_lock:
    state: absent
'''

RETURN = r'''
action:
  description: What was done (V(acquire), V(renew), V(take_over), V(refuse); with O(state=absent), V(release) or V(none)).
  returned: always
  type: str
  sample: refuse
why:
  description: Why, in one line (for V(refuse), the run that holds the lock).
  returned: always
  type: str
  sample: held by site.yml run by alice@bastion (pid 4242), started 2026-12-05 21:03:11 UTC, lock id 8c1d..., expires in 1711 s
lock:
  description: The record that stands on the host after the call (V(null) when there is none).
  returned: always
  type: dict
previous:
  description: The record that stood before the call (V(null) when there was none).
  returned: always
  type: dict
'''

import errno
import fcntl
import json
import os
import tempfile
import time

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_native
from ansible_collections.keybuzz.redis_ha.plugins.module_utils import ha_rules


def read_record(path):
    """The record at ``path``, ``None`` when there is none; an unreadable one is reported as an
    expired record (only something outside the collection writes a partial file: each write is a rename)."""
    try:
        with open(path) as handle:
            record = json.load(handle)
        if isinstance(record, dict) and record.get('id'):
            return record
        raise ValueError('no lock id')
    except (IOError, OSError):
        if not os.path.exists(path):
            return None
        raise
    except ValueError as exc:
        return dict(id='unreadable', expires=os.stat(path).st_mtime,
                    purpose='an unreadable lock record (%s)' % to_native(exc))


def write_record(path, record):
    directory = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(prefix='.cluster.lock.', dir=directory)
    try:
        with os.fdopen(fd, 'w') as handle:
            json.dump(record, handle, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o600)
        os.rename(tmp, path)
    except Exception:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


class GuardBusy(Exception):
    pass


def take_guard(fd, name, wait):
    """flock(LOCK_EX) on ``fd`` within ``wait`` seconds, else GuardBusy."""
    deadline = time.time() + wait
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except (IOError, OSError) as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                raise
        if time.time() >= deadline:
            raise GuardBusy('another process has held %s for more than %s s (a stuck run?): this lock host did not '
                            'answer; find it with "fuser %s"' % (name, wait, name))
        time.sleep(0.05)


def run(params, check_mode):
    path = params['path']
    directory = os.path.dirname(path)
    if not os.path.isdir(directory):
        if check_mode:
            return dict(changed=False, action='acquire' if params['state'] == 'present' else 'none',
                        why='no lock', lock=None, previous=None)
        try:
            os.makedirs(directory, 0o700)
        except OSError:  # another run made it meanwhile
            if not os.path.isdir(directory):
                raise
    guard = os.open(path + '.flock', os.O_CREAT | os.O_RDWR, 0o600)
    try:
        take_guard(guard, path + '.flock', params['wait'])
        now = time.time()
        previous = read_record(path)
        if params['state'] == 'absent':
            if previous and previous.get('id') == params['id']:
                if not check_mode:
                    os.unlink(path)
                return dict(changed=True, action='release', why='given back', lock=None, previous=previous)
            why = 'no lock' if not previous else 'not this run\'s: ' + ha_rules.lock_holder_text(previous)
            return dict(changed=False, action='none', why=why, lock=previous, previous=previous)

        take_over = params['take_over'] or None
        action, why = ha_rules.lock_decision(
            previous, params['id'], now, take_over=take_over if params['reason'] == 'break' else None,
            run_over=bool(previous) and params['reason'] == 'run_over' and previous.get('id') == take_over)
        if action == 'refuse':
            return dict(changed=False, action=action, why=why, lock=previous, previous=previous)
        record = dict(previous) if action == 'renew' else dict(
            id=params['id'], holder=params['holder'], controller=params['controller'], pid=params['pid'],
            pid_start=params['pid_start'], purpose=params['purpose'], started=now,
            started_text=time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(now)))
        if action == 'take_over':
            record['took_over'] = why
        record.update(renewed=now, ttl=params['ttl'], expires=now + params['ttl'])
        if not check_mode:
            write_record(path, record)
        return dict(changed=True, action=action, why=why, lock=record, previous=previous)
    finally:
        os.close(guard)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type='path', default='/var/lib/keybuzz-redis-ha/cluster.lock'),
            state=dict(type='str', choices=['present', 'absent'], default='present'),
            id=dict(type='str', required=True),
            holder=dict(type='str', default=''),
            controller=dict(type='str', default=''),
            pid=dict(type='int', default=0),
            pid_start=dict(type='str', default=''),
            purpose=dict(type='str', default=''),
            ttl=dict(type='int', default=1800),
            take_over=dict(type='str'),
            reason=dict(type='str', choices=['break', 'run_over'], default='break'),
            wait=dict(type='float', default=10),
        ),
        supports_check_mode=True,
    )
    if module.params['ttl'] < 1:
        module.fail_json(msg='ttl is %s: give the seconds the lock stands, at least 1' % module.params['ttl'])
    try:
        result = run(module.params, module.check_mode)
    except GuardBusy as exc:
        module.fail_json(msg=to_native(exc))
    except (IOError, OSError) as exc:
        module.fail_json(msg='the lock record %s cannot be used: %s' % (module.params['path'], to_native(exc)))
    module.exit_json(**result)


if __name__ == '__main__':
    main()
