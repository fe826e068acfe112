#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, KeyBuzz (@keybuzz)
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: redis_switchover
short_description: Planned, loss-free Redis master switchover driven by Sentinel
version_added: 1.0.0
author: KeyBuzz (@keybuzz)
description:
  - Moves the master role from O(master) to the replica O(target) without losing an acknowledged
    write, with C(SENTINEL FAILOVER) on one of O(sentinels), in one process so that the write pause
    stays short (docs/failover.md, section Planned switchover).
  - First asks the Sentinels which master they name. When a strict majority names another address than
    O(master) (a failover happened since the play read it), nothing is changed and the task fails
    saying so. This is the collection's C(ha_rules.view_changed) rule, asked again right before
    C(CLIENT PAUSE).
  - "Steps - 1. every other replica of O(replicas) gets C(replica-priority 0) (the target keeps its own,
    or 1 if it had 0), and the module waits until one Sentinel reports those priorities;
    2. it waits until about O(info_aim_ms) after that Sentinel's last C(INFO) reply from the target,
    checks the Sentinel majority again, then sends C(CLIENT PAUSE) O(pause_ms) C(WRITE) to the master;
    3. it waits until the target has processed the master's whole replication stream (equal offsets);
    4. C(SENTINEL FAILOVER) O(master_name) on that Sentinel;
    5. as soon as the target reports role master, C(REPLICAOF) the target on the old master, then
    C(CLIENT UNPAUSE) (writes still waiting there fail with C(READONLY));
    6. it waits until a Sentinel majority names the target;
    7. the priorities changed in 1 are restored, also when a step failed."
  - When a step fails after the pause, the old master is demoted first if the target was promoted
    anyway, then unpaused. The failure message names the step, the node and the state so far
    (priorities changed and restored, timings).
options:
  login_host:
    description:
      - Not used; the module connects to O(master), O(target), O(replicas) and O(sentinels).
        Accepted so that the defaults of the action group C(redis) apply.
    type: str
    default: 127.0.0.1
  login_port:
    description:
      - Port of the O(master), O(target) and O(replicas) entries that do not give one.
    type: int
    default: 6379
  login_user:
    description:
      - ACL user of the Redis nodes, allowed C(INFO), C(ROLE), C(CONFIG GET), C(CONFIG SET),
        C(CLIENT PAUSE), C(CLIENT UNPAUSE) and C(REPLICAOF).
    type: str
  login_password:
    description:
      - Password of O(login_user) on the Redis nodes (not the Sentinels' one).
    type: str
  master:
    description:
      - The current master, the one the play planned against, as C(host:port), C(host) or C([ipv6]:port).
    type: str
    required: true
  target:
    description:
      - The replica to promote, in the same form. It is added to O(replicas) when missing there.
    type: str
    required: true
  replicas:
    description:
      - Every replica of O(master) (the target included), in the same form. All but the target get
        C(replica-priority 0) during the switchover.
    type: list
    elements: str
    required: true
  sentinels:
    description:
      - Every configured Sentinel, as C(host:port), C(host) (port 26379) or C([ipv6]:port). A strict
        majority of this many counts.
    type: list
    elements: str
    required: true
  master_name:
    description:
      - Name of the master in the Sentinels' configuration.
    type: str
    required: true
  sentinel_password:
    description:
      - Password of the Sentinels. The TLS options are the nodes' ones.
    type: str
  sentinel_timeout:
    description:
      - Timeout in seconds for connecting to a Sentinel and for each of its replies (O(connect_timeout)
        is the nodes' one). A Sentinel that does not answer counts against the majority.
    type: float
    default: 1.0
  pause_ms:
    description:
      - Timeout of C(CLIENT PAUSE) on the master in milliseconds, a bound in case the module dies
        (the module unpauses the master itself).
    type: int
    default: 10000
  priority_timeout:
    description:
      - Seconds to wait for a Sentinel to report the new replica priorities.
    type: float
    default: 25
  info_aim_ms:
    description:
      - How long after the Sentinel's last C(INFO) reply from the target the failover starts, in
        milliseconds, so that the Sentinel's next C(INFO) (one second after the last) comes just after
        the promotion. Between 100 and 900.
      - The Sentinel sends C(REPLICAOF NO ONE) on the third tick of its timer after C(SENTINEL FAILOVER)
        (10 to 19 ticks a second) and, in the same tick, the C(INFO) that is due by then, after it.
        An C(INFO) due on one of the first two ticks goes out before the promotion and the next one a
        second later. At 700 ms (plus the few ms to pause the master) the first two ticks end before the
        C(INFO) is due even at 10 ticks a second, so the promotion is seen about 300 ms after the
        failover starts (450 ms, the earlier default, about 600 ms).
    type: int
    default: 700
  align_timeout:
    description:
      - Seconds to wait for such an C(INFO) reply; without one the failover starts anyway.
    type: float
    default: 12
  catchup_timeout:
    description:
      - Seconds the target may take to reach the master's replication offset once writes are paused.
    type: float
    default: 2
  switch_timeout:
    description:
      - Seconds after C(SENTINEL FAILOVER) within which the target must be promoted and a Sentinel
        majority must name it.
      - O(pause_ms) must cover O(catchup_timeout) plus this, so that the old master takes no write
        before the target is promoted.
    type: float
    default: 7
extends_documentation_fragment:
  - keybuzz.redis_ha.redis_connection
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    platforms: posix
notes:
  - In check mode the module validates the options, connects to the master, the replicas and the
    Sentinels, asks the Sentinels which master they name (a plan they contradict fails, as it would
    for real), reads the replica priorities and reports the plan in RV(priorities_changed); it
    changes nothing and reports C(changed=false).
  - Passwords never appear in results or error messages.
  - C(changed) is V(true) once the master's writes were paused (the switchover started).
requirements:
  - redis (Python library) 4.3 or later
seealso:
  - module: keybuzz.redis_ha.sentinel_master_status
  - module: keybuzz.redis_ha.redis_replication_info
'''

EXAMPLES = r'''
- name: Move the master from 10.0.0.123 to 10.0.0.124
  keybuzz.redis_ha.redis_switchover:
    master: 10.0.0.123:6379
    target: 10.0.0.124:6379
    replicas: [10.0.0.124:6379, 10.0.0.125:6379]
    sentinels: [10.0.0.123:26379, 10.0.0.124:26379, 10.0.0.125:26379]
    master_name: kb-redis-master
    login_user: admin
    login_password: "{{ admin_password }}"
    sentinel_password: "{{ sentinel_password }}"
  register: switchover

- name: Show how long the master's writes were paused
  ansible.builtin.debug:
    msg: "writes paused {{ switchover.timings_ms.master_paused }} ms"
'''

RETURN = r'''
old_master:
  description: The master before the switchover (O(master)), as C(host:port).
  returned: always
  type: str
  sample: 10.0.0.123:6379
target:
  description: The replica promoted (O(target)), as C(host:port).
  returned: always
  type: str
  sample: 10.0.0.124:6379
sentinels_named:
  description: The master a strict majority of O(sentinels) named at the last check before the pause, else V(null).
  returned: when the Sentinels were asked
  type: str
  sample: 10.0.0.123:6379
sentinel:
  description: The Sentinel that reported the new priorities first and ran C(SENTINEL FAILOVER).
  returned: when a Sentinel reported the new priorities
  type: str
  sample: 10.0.0.124:26379
priorities_changed:
  description:
    - The replica priorities changed in step 1, C(host:port) to C([before, during]).
    - In check mode, the changes the module would make.
  returned: always
  type: dict
  sample: {"10.0.0.125:6379": [100, 0]}
priorities_restored:
  description: Whether every priority changed was set back (V(true) when none was changed).
  returned: always
  type: bool
  sample: true
info_age_at_failover_ms:
  description:
    - Age of the Sentinel's last C(INFO) reply from the target when C(SENTINEL FAILOVER) was sent
      (O(info_aim_ms) plus the check and the pause in between), V(null) when no reply was seen within
      O(align_timeout).
  returned: when the module got that far
  type: int
  sample: 716
offset:
  description: The master's replication offset the target reached before the failover.
  returned: when the target caught up
  type: int
  sample: 123456
timings_ms:
  description:
    - Durations in milliseconds, those measured so far when a step failed.
    - Keys C(priority_wait), C(align_wait), C(aligned_to_paused), C(pause_to_caught_up), C(caught_up_to_failover_sent),
      C(failover_to_promoted), C(promoted_to_unpaused), C(pause_to_majority) and C(master_paused).
  returned: always
  type: dict
  sample: {"master_paused": 312.4, "pause_to_caught_up": 1.8, "failover_to_promoted": 205.1, "pause_to_majority": 611.0}
step:
  description: The step that failed.
  returned: when a step failed
  type: str
  sample: wait for the target to catch up with the master
error:
  description:
    - Why that step failed and what was done about it (the old master demoted, unpaused), without
      the state that C(msg) adds (priorities, timings). Never contains a password.
  returned: when a step failed
  type: str
  sample: the target did not catch up with the master within 2.0s (master offset 1234, target 1200); the old master was unpaused
'''

import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.keybuzz.redis_ha.plugins.module_utils import ha_rules
from ansible_collections.keybuzz.redis_ha.plugins.module_utils.redis_connection import (
    check_redis_lib,
    connection_argument_spec,
    error_message,
    format_address,
    info_replication,
    pairs_to_dict,
    parse_address,
    raw_command,
    redis_client,
    redis_exceptions,
    scrub,
    sentinel_master_address,
)

CHECK_BEFORE = 'ask the Sentinels which master they name (before any change)'
READ_PRIORITY = 'CONFIG GET replica-priority'
CONNECT = 'ROLE on the master (check mode)'
SET_PRIORITY = 'CONFIG SET replica-priority'
WAIT_PRIORITY = 'wait for a Sentinel to report the new replica priorities'
CHECK_PAUSE = 'ask the Sentinels which master they name (right before CLIENT PAUSE)'
PAUSE = 'CLIENT PAUSE WRITE on the master'
CATCH_UP = 'wait for the target to catch up with the master'
FAILOVER = 'SENTINEL FAILOVER'
PROMOTED = 'wait for Sentinel to promote the target'
DEMOTE = 'REPLICAOF the target on the old master'
UNPAUSE = 'CLIENT UNPAUSE on the old master'
MAJORITY = 'wait for a Sentinel majority to name the target'
RESTORE = 'restore replica-priority'

# timings_ms: name -> (from, to), moments recorded by Switchover.mark()
TIMINGS = (
    ('priority_wait', 'start', 'priorities_seen'),
    ('align_wait', 'priorities_seen', 'aligned'),
    ('aligned_to_paused', 'aligned', 'paused'),
    ('pause_to_caught_up', 'paused', 'caught_up'),
    ('caught_up_to_failover_sent', 'caught_up', 'failover_sent'),
    ('failover_to_promoted', 'failover_sent', 'promoted'),
    ('promoted_to_unpaused', 'promoted', 'unpaused'),
    ('pause_to_majority', 'paused', 'majority'),
    ('master_paused', 'paused', 'unpaused'),
)


class StepFailed(Exception):
    """A step's own failure (a refusal, a timeout): its text is the message."""


def sentinel_replicas(client, name):
    """``host:port`` -> the fields of each replica the Sentinel of ``client`` knows for ``name``."""
    replicas = {}
    for entry in raw_command(client, 'SENTINEL', 'REPLICAS', name) or []:
        entry = pairs_to_dict(entry)
        replicas['%s:%s' % (entry['ip'], entry['port'])] = entry
    return replicas


class Switchover(object):

    def __init__(self, params, master, target, replicas, sentinels):
        self.params = params
        self.name = params['master_name']
        self.master_addr, self.target_addr = master, target
        self.target_key = ha_rules.text(target)
        self.master = self.client(master)
        self.target = self.client(target)
        self.replicas = [(ha_rules.text(a), a, self.client(a)) for a in replicas]
        self.sentinel_params = dict(params, login_user=None, login_password=params['sentinel_password'],
                                    connect_timeout=params['sentinel_timeout'])
        self.sentinels = [(a, redis_client(self.sentinel_params, host=a[0], port=a[1], reconnect=True)) for a in sentinels]
        self.moments = {}
        self.original = {}
        self.paused = False
        self.step, self.where = None, None
        self.result = dict(changed=False, old_master=ha_rules.text(master), target=self.target_key,
                           priorities_changed={}, priorities_restored=False, timings_ms={})

    def client(self, addr):
        return redis_client(self.params, host=addr[0], port=addr[1], reconnect=True)

    def at(self, step, where=None):
        self.step, self.where = step, where

    def mark(self, moment):
        self.moments[moment] = time.monotonic()

    def timings(self):
        return dict((name, round((self.moments[b] - self.moments[a]) * 1000.0, 1))
                    for name, a, b in TIMINGS if a in self.moments and b in self.moments)

    def views(self):
        return [sentinel_master_address(client, self.name) for dummy, client in self.sentinels]

    def check_planned_master(self, step):
        """Stop unless a Sentinel majority still names the master the play planned against (a
        failover since the play read it: pause and promote nothing)."""
        self.at(step)
        named = ha_rules.text(ha_rules.sentinel_majority(self.views(), len(self.sentinels)))
        self.result['sentinels_named'] = named
        why = ha_rules.view_changed(ha_rules.text(self.master_addr), named)
        if why:
            raise StepFailed(why + ': nothing was switched over')

    def read_priorities(self):
        """Step 1's plan: ``{host:port: priority}`` of every replica during the switchover, and
        ``{host:port: [before, during]}`` of those to change."""
        wanted, plan = {}, {}
        for key, addr, client in self.replicas:
            self.at(READ_PRIORITY, addr)
            prio = int(pairs_to_dict(raw_command(client, 'CONFIG', 'GET', 'replica-priority'))['replica-priority'])
            wanted[key] = (prio or 1) if key == self.target_key else 0
            if prio != wanted[key]:
                plan[key] = [prio, wanted[key]]
        return wanted, plan

    def align_with_info(self, sentinel, aim_ms, timeout):
        """Sleep until ``aim_ms`` after the Sentinel's last INFO reply from the target (at most ``timeout`` s).

        During a failover the Sentinel sends INFO to the promoted replica when its last reply is older
        than 1 s, and sees the promotion only in such a reply. Starting the failover ``aim_ms`` after a
        reply makes that INFO go out ~(1000 - aim_ms) ms later, just after the promotion (~100-300 ms),
        instead of at once (before the promotion) and then a whole second later. Returns the age of
        the last reply when the failover starts, or None when no reply was seen in time.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            asked_at = time.monotonic()
            try:
                entry = sentinel_replicas(sentinel, self.name).get(self.target_key)
                age = None if entry is None else int(entry['info-refresh'])
            except (redis_exceptions.RedisError, KeyError, ValueError):
                return None
            if age is not None and age < aim_ms - 60:
                time.sleep(max(0.0, asked_at + (aim_ms - age) / 1000.0 - time.monotonic()))
                return aim_ms
            time.sleep(0.05)
        return None

    def plan(self):
        """Check mode: everything but the changes."""
        self.check_planned_master(CHECK_BEFORE)
        self.result['priorities_changed'] = self.read_priorities()[1]
        self.at(CONNECT, self.master_addr)
        raw_command(self.master, 'ROLE')

    def switch(self):
        params, result = self.params, self.result
        self.check_planned_master(CHECK_BEFORE)  # before any replica-priority changes
        # 1. force the target through replica-priority, and wait for a Sentinel to see it
        self.mark('start')
        wanted, plan = self.read_priorities()
        for key, addr, client in self.replicas:
            if key in plan:
                self.at(SET_PRIORITY, addr)
                self.original[key] = plan[key][0]
                raw_command(client, 'CONFIG', 'SET', 'replica-priority', str(plan[key][1]))
                result['priorities_changed'][key] = plan[key]
        self.at(WAIT_PRIORITY)
        asked, deadline = None, time.monotonic() + params['priority_timeout']
        while asked is None:
            for addr, sentinel in self.sentinels:
                try:
                    seen = sentinel_replicas(sentinel, self.name)
                except redis_exceptions.RedisError:
                    continue
                if all(to_priority(seen.get(k)) == v for k, v in wanted.items()):
                    asked = (addr, sentinel)
                    break
            if asked is None:
                if time.monotonic() > deadline:
                    raise StepFailed('no Sentinel reported the new replica priorities within %ss' % params['priority_timeout'])
                time.sleep(0.2)
        result['sentinel'] = format_address(*asked[0])
        self.mark('priorities_seen')
        info_age = self.align_with_info(asked[1], params['info_aim_ms'], params['align_timeout'])
        result['info_age_at_failover_ms'] = None  # set once SENTINEL FAILOVER is sent
        self.mark('aligned')

        self.check_planned_master(CHECK_PAUSE)  # again right before the pause: the decisive check

        # 2. pause the writes on the master
        self.at(PAUSE, self.master_addr)
        raw_command(self.master, 'CLIENT', 'PAUSE', str(params['pause_ms']), 'WRITE')
        self.paused = True
        self.mark('paused')
        result['changed'] = True

        # 3. the target has everything the master acknowledged
        self.at(CATCH_UP)
        deadline = self.moments['paused'] + params['catchup_timeout']
        while True:
            self.where = self.master_addr
            m_off = int(info_replication(self.master)['master_repl_offset'])
            self.where = self.target_addr
            t_info = info_replication(self.target)
            if t_info.get('master_link_status') == 'up' and int(t_info.get('slave_repl_offset', -1)) >= m_off:
                break
            if time.monotonic() > deadline:
                raise StepFailed('the target did not catch up with the master within %ss (master offset %d, target %s)'
                                 % (params['catchup_timeout'], m_off, t_info.get('slave_repl_offset')))
            time.sleep(0.002)
        self.mark('caught_up')
        result['offset'] = m_off

        # 4. Sentinel promotes the target
        self.at(FAILOVER, asked[0])
        # Sent once, on a connection that never resends: a resent FAILOVER answers INPROG, and a failover
        # started by the first one must not be mistaken for none (recover() waits for its outcome).
        once = redis_client(self.sentinel_params, host=asked[0][0], port=asked[0][1])
        try:
            self.moments['failover_asked'] = time.monotonic()
            raw_command(once, 'SENTINEL', 'FAILOVER', self.name)
        finally:
            once.close()
        self.mark('failover_sent')
        if info_age is not None:
            result['info_age_at_failover_ms'] = int(round(info_age + 1000 * (self.moments['failover_asked']
                                                                             - self.moments['aligned'])))

        # 5. promoted: demote the old master at once, then let its paused clients go (READONLY)
        self.at(PROMOTED, self.target_addr)
        deadline = self.moments['failover_sent'] + params['switch_timeout']
        while not self.target_is_master():
            if time.monotonic() > deadline:
                raise StepFailed('Sentinel did not promote the target within %ss' % params['switch_timeout'])
            time.sleep(0.005)
        self.mark('promoted')
        self.at(DEMOTE, self.master_addr)
        raw_command(self.master, 'REPLICAOF', self.target_addr[0], str(self.target_addr[1]))
        self.at(UNPAUSE, self.master_addr)
        raw_command(self.master, 'CLIENT', 'UNPAUSE')
        self.paused = False
        self.mark('unpaused')

        # 6. a Sentinel majority names the target
        self.at(MAJORITY)
        while ha_rules.sentinel_majority(self.views(), len(self.sentinels)) != self.target_addr:
            if time.monotonic() > deadline:
                raise StepFailed('no Sentinel majority named the target within %ss' % params['switch_timeout'])
            time.sleep(0.01)
        self.mark('majority')

    def target_is_master(self):
        try:
            return raw_command(self.target, 'ROLE')[0] == 'master'
        except redis_exceptions.RedisError:
            return False

    def describe(self, exc):
        """One line for ``exc``, raised in the current step, without a password."""
        if isinstance(exc, StepFailed) or self.where is None:
            text = str(exc) if isinstance(exc, StepFailed) else '%s: %s' % (type(exc).__name__, exc)
        else:
            text = error_message(exc, self.where[0], self.where[1])
        return self.scrub(text)

    def scrub(self, text):
        return scrub(text, [self.params['login_password'], self.params['sentinel_password']])

    def failover_running(self):
        """Whether a Sentinel reports a failover of this master in progress."""
        for dummy, client in self.sentinels:
            try:
                reply = raw_command(client, 'SENTINEL', 'MASTER', self.name)
            except Exception:
                continue
            fields = dict(zip(reply[0::2], reply[1::2]))
            flags = str(fields.get('flags', '')).split(',')
            if 'failover_in_progress' in flags or 'promoted' in flags:
                return True
        return False

    def await_failover_outcome(self, notes):
        """After SENTINEL FAILOVER was (perhaps) accepted: keep the master paused while a Sentinel still
        runs the failover and the target is not master yet, so that it takes no write that the promotion
        would then lose; for at most switch_timeout more seconds."""
        deadline = time.monotonic() + self.params['switch_timeout']
        while time.monotonic() < deadline and not self.target_is_master() and self.failover_running():
            try:  # extend the pause (the later end wins)
                raw_command(self.master, 'CLIENT', 'PAUSE', str(self.params['pause_ms']), 'WRITE')
            except Exception:
                pass
            time.sleep(0.05)
        if not self.target_is_master() and self.failover_running():
            notes.append('a Sentinel still runs the failover after %ss more' % self.params['switch_timeout'])

    def recover(self, notes):
        """After a failure while paused: never leave the master paused while it is still the master,
        never let it take writes again once the target was promoted."""
        if 'failover_asked' in self.moments:
            self.await_failover_outcome(notes)
        if self.target_is_master():
            try:
                raw_command(self.master, 'REPLICAOF', self.target_addr[0], str(self.target_addr[1]))
                notes.append('the target was promoted: the old master was made its replica')
            except Exception as err:
                notes.append('REPLICAOF on the old master failed: %s' % self.describe_at(err, self.master_addr))
        try:
            raw_command(self.master, 'CLIENT', 'UNPAUSE')
            self.paused = False
            self.mark('unpaused')
            notes.append('the old master was unpaused')
        except Exception as err:
            notes.append('CLIENT UNPAUSE failed: %s' % self.describe_at(err, self.master_addr))

    def restore(self, notes):
        """7. restore the priorities changed in 1 (always)."""
        errors = []
        for key, addr, client in self.replicas:
            if key in self.original:
                try:
                    raw_command(client, 'CONFIG', 'SET', 'replica-priority', str(self.original[key]))
                except Exception as err:
                    errors.append(self.describe_at(err, addr))
        self.result['priorities_restored'] = not errors
        if errors:
            notes.append('replica-priority could not be restored: %s' % '; '.join(errors))

    def describe_at(self, exc, addr):
        return self.scrub(error_message(exc, addr[0], addr[1]))

    def run(self, check_mode):
        """Run (or, in check mode, plan) the switchover; returns the message of a failure, else None."""
        failure, notes = None, []
        try:
            if check_mode:
                self.plan()
            else:
                self.switch()
        except Exception as exc:  # report, never leave the master paused while it is still the master
            failure = self.describe(exc)
            if self.paused:
                self.recover(notes)
        finally:
            self.restore(notes)  # nothing to restore in check mode
            self.result['timings_ms'] = self.timings()
            self.close()
        if failure is None and not notes:
            return None
        if failure is None:  # only the restore failed
            self.step, self.where, failure = RESTORE, None, 'the switchover is done, but ' + notes.pop(0)
        where = ' on %s' % format_address(*self.where) if self.where else ''
        self.result.update(step=self.step, error='%s%s' % (failure, ''.join('; ' + n for n in notes)))
        return ('switchover %s -> %s: step "%s" failed%s: %s (replica-priority changed %s, restored: %s; '
                'timings so far in ms %s)' % (self.result['old_master'], self.target_key, self.step, where,
                                              self.result['error'], self.result['priorities_changed'],
                                              'yes' if self.result['priorities_restored'] else 'NO',
                                              self.result['timings_ms']))

    def close(self):
        for client in [self.master, self.target] + [c for dummy, dummy, c in self.replicas] + [c for dummy, c in self.sentinels]:
            try:
                client.close()
            except Exception:
                pass


def to_priority(entry):
    try:
        return int(entry['slave-priority'])
    except (TypeError, KeyError, ValueError):
        return None


def main():
    argument_spec = connection_argument_spec()
    argument_spec.update(
        master=dict(type='str', required=True),
        target=dict(type='str', required=True),
        replicas=dict(type='list', elements='str', required=True),
        sentinels=dict(type='list', elements='str', required=True),
        master_name=dict(type='str', required=True),
        sentinel_password=dict(type='str', no_log=True),
        sentinel_timeout=dict(type='float', default=1.0),
        pause_ms=dict(type='int', default=10000),
        priority_timeout=dict(type='float', default=25),
        info_aim_ms=dict(type='int', default=700),
        align_timeout=dict(type='float', default=12),
        catchup_timeout=dict(type='float', default=2),
        switch_timeout=dict(type='float', default=7),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    check_redis_lib(module)
    params = module.params

    problems, addresses = [], {}
    master = target = None
    replicas = []
    for option, default_port in (('master', params['login_port']), ('target', params['login_port']),
                                 ('replicas', params['login_port']), ('sentinels', 26379)):
        values = params[option] if isinstance(params[option], list) else [params[option]]
        try:
            addresses[option] = [parse_address(value, default_port) for value in values]
        except ValueError as exc:
            problems.append('invalid %s entry: %s' % (option, exc))
    if not problems:
        master, target = addresses['master'][0], addresses['target'][0]
        replicas = [a for i, a in enumerate(addresses['replicas']) if a not in addresses['replicas'][:i]]
        if target == master:
            problems.append('target %s is the master itself' % ha_rules.text(target))
        if master in replicas:
            problems.append('master %s is among the replicas' % ha_rules.text(master))
        if target not in replicas:
            replicas.append(target)
        if not addresses['sentinels']:
            problems.append('sentinels is empty')
    for option in ('sentinel_timeout', 'connect_timeout', 'pause_ms', 'priority_timeout', 'align_timeout',
                   'catchup_timeout', 'switch_timeout'):
        if params[option] <= 0:
            problems.append('%s must be above 0 (got %s)' % (option, params[option]))
    needed = int(1000 * (params['catchup_timeout'] + params['switch_timeout']))
    if params['pause_ms'] < needed:
        problems.append('pause_ms (%s) must cover catchup_timeout + switch_timeout (%s ms): else the old master takes '
                        'writes again before the target is promoted' % (params['pause_ms'], needed))
    if not 100 <= params['info_aim_ms'] <= 900:
        problems.append('info_aim_ms must be between 100 and 900 (got %s)' % params['info_aim_ms'])
    if problems:
        module.fail_json(msg='; '.join(problems))

    switchover = Switchover(params, master, target, replicas, addresses['sentinels'])
    failure = switchover.run(module.check_mode)
    if failure:
        module.fail_json(msg=failure, **switchover.result)
    module.exit_json(**switchover.result)


if __name__ == '__main__':
    main()
