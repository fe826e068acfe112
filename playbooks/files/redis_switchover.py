#!/usr/bin/python3
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, KeyBuzz (@keybuzz)
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Planned, loss-free master switchover driven by Sentinel (playbooks/tasks/switchover.yml).

Reads one JSON object on stdin (addresses, master name, credentials: never on the command line)
and prints one JSON object (timings in ms, what was done). Steps:

 1. force Sentinel's choice: every other replica gets replica-priority 0 (the target keeps its
    own, or 1 if it had 0) and we wait until the Sentinel we will ask reports those priorities;
 2. wait until ~450 ms after that Sentinel's last INFO reply from the target (see
    align_with_info: saves up to a second of Sentinel's INFO period), check that a Sentinel
    majority still names the master the play planned against (else stop: a failover happened
    since), then CLIENT PAUSE WRITE on the master (clients' writes wait, nothing is refused yet);
 3. wait until the target has processed the master's whole replication stream (equal offsets):
    every write the master acknowledged is now on the target;
 4. SENTINEL FAILOVER <master name> (forced failover, no election delay);
 5. as soon as the target reports role master, REPLICAOF <target> on the old master (what
    Sentinel would do itself a few seconds later) and CLIENT UNPAUSE it: writes still waiting
    there fail with READONLY and the clients reconnect through HAProxy;
 6. wait until a Sentinel majority names the target (HAProxy routes only then);
 7. restore every replica-priority changed in 1 (always, also on failure).

Needs python3 and redis-py 4.3 or newer (python3-redis on the Redis nodes).
"""

from __future__ import absolute_import, division, print_function

import json
import sys
import time
import types

import redis


# redis-py TLS options of every connection (input "tls": true, "tls_ca_file"); empty: plaintext.
TLS = {}


def client(addr, username=None, password=None, timeout=2.0):
    # retry_on_error: when Sentinel reconfigures a node it closes that node's normal clients (CLIENT
    # KILL TYPE normal), ours included; the next command then reconnects once instead of failing
    # (redis-py notices a closed plaintext connection by itself, not a closed TLS one).
    return redis.Redis(host=addr[0], port=int(addr[1]), username=username, password=password,
                       socket_timeout=timeout, socket_connect_timeout=timeout, decode_responses=True,
                       retry_on_error=[redis.ConnectionError], **TLS)


def ms(a, b):
    return round((b - a) * 1000.0, 1)


def info_repl(c):
    return c.info('replication')


def sentinel_views(sentinels, name):
    views = []
    for s in sentinels:
        try:
            reply = s.execute_command('SENTINEL', 'get-master-addr-by-name', name)
            views.append('%s:%s' % (reply[0], reply[1]) if reply else None)
        except redis.RedisError:
            views.append(None)
    return views


def sentinel_priorities(sentinel, name):
    out = {}
    for rep in sentinel.execute_command('SENTINEL', 'REPLICAS', name):
        if isinstance(rep, list):
            rep = dict(zip(rep[0::2], rep[1::2]))
        out['%s:%s' % (rep['ip'], rep['port'])] = int(rep.get('slave-priority', -1))
    return out


def info_refresh_ms(sentinel, name, key):
    """Milliseconds since this Sentinel last got an INFO reply from the replica ``key``."""
    for rep in sentinel.execute_command('SENTINEL', 'REPLICAS', name):
        if isinstance(rep, list):
            rep = dict(zip(rep[0::2], rep[1::2]))
        if '%s:%s' % (rep['ip'], rep['port']) == key:
            return int(rep['info-refresh'])
    return None


def align_with_info(sentinel, name, key, aim_ms, timeout):
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
            age = info_refresh_ms(sentinel, name, key)
        except (redis.RedisError, KeyError, ValueError):
            return None
        if age is not None and age < aim_ms - 60:
            time.sleep(max(0.0, asked_at + (aim_ms - age) / 1000.0 - time.monotonic()))
            return aim_ms
        time.sleep(0.05)
    return None


def main():
    cfg = json.load(sys.stdin)
    if cfg.get('tls') in (True, 'true', 'True'):
        TLS.update(ssl=True, ssl_ca_certs=cfg['tls_ca_file'], ssl_cert_reqs='required', ssl_check_hostname=True)
    name = cfg['master_name']
    admin = dict(username=cfg['admin_user'], password=cfg['admin_password'])
    master_addr, target_addr = tuple(cfg['master']), (cfg['target'][0], int(cfg['target'][1]))
    target_key = '%s:%s' % target_addr
    master = client(master_addr, **admin)
    target = client(target_addr, **admin)
    replicas = dict(('%s:%s' % tuple(a), client(a, **admin)) for a in cfg['replicas'])
    sentinels = [client(a, password=cfg['sentinel_password'], timeout=1.0) for a in cfg['sentinels']]
    # The collection's decision rules (plugins/module_utils/ha_rules.py), sent with the input.
    ha_rules = types.ModuleType('ha_rules')
    exec(compile(cfg['rules_source'], 'ha_rules.py', 'exec'), ha_rules.__dict__)
    result = dict(changed=False, target=target_key, old_master='%s:%s' % master_addr, priorities_changed={},
                  priorities_restored=False)
    original = {}
    paused = False

    def planned_master_named():
        """Stop unless a Sentinel majority still names the master the play planned against (a
        failover since the play read it: pause and promote nothing)."""
        named = ha_rules.sentinel_majority(sentinel_views(sentinels, name), len(sentinels))
        why = ha_rules.view_changed(ha_rules.text(master_addr), ha_rules.text(named))
        if why:
            raise RuntimeError(why + ': nothing was switched over')

    try:
        planned_master_named()  # before any replica-priority changes
        # 1. force the target through replica-priority, and wait for the asked Sentinel to see it
        t_start = time.monotonic()
        for key, c in replicas.items():
            prio = int(c.config_get('replica-priority')['replica-priority'])
            want = (prio or 1) if key == target_key else 0
            if prio != want:
                original[key] = prio
                c.config_set('replica-priority', want)
                result['priorities_changed'][key] = [prio, want]
        wanted = dict((key, (int(c.config_get('replica-priority')['replica-priority']))) for key, c in replicas.items())
        asked, deadline = None, time.monotonic() + float(cfg.get('priority_timeout', 25))
        while asked is None:
            for s in sentinels:
                try:
                    seen = sentinel_priorities(s, name)
                except redis.RedisError:
                    continue
                if all(seen.get(k) == v for k, v in wanted.items()):
                    asked = s
                    break
            if asked is None:
                if time.monotonic() > deadline:
                    raise RuntimeError('no Sentinel reported the new replica priorities within %ss'
                                       % cfg.get('priority_timeout', 25))
                time.sleep(0.2)
        result['sentinel'] = '%s:%s' % (asked.connection_pool.connection_kwargs['host'],
                                        asked.connection_pool.connection_kwargs['port'])
        t_prio = time.monotonic()
        result['info_age_at_failover_ms'] = align_with_info(asked, name, target_key, int(cfg.get('info_aim_ms', 450)),
                                                            float(cfg.get('align_timeout', 12)))
        t_aligned = time.monotonic()

        planned_master_named()  # again right before the pause: the decisive check

        # 2. pause the writes on the master
        master.execute_command('CLIENT', 'PAUSE', int(cfg.get('pause_ms', 10000)), 'WRITE')
        paused, t_pause = True, time.monotonic()
        result['changed'] = True

        # 3. the target has everything the master acknowledged
        deadline = t_pause + float(cfg.get('catchup_timeout', 2))
        while True:
            m_off = int(info_repl(master)['master_repl_offset'])
            t_info = info_repl(target)
            if t_info.get('master_link_status') == 'up' and int(t_info.get('slave_repl_offset', -1)) >= m_off:
                break
            if time.monotonic() > deadline:
                raise RuntimeError('the target did not catch up with the master within %ss (master offset %d, '
                                   'target %s)' % (cfg.get('catchup_timeout', 2), m_off,
                                                   t_info.get('slave_repl_offset')))
            time.sleep(0.002)
        t_caught = time.monotonic()
        result['offset'] = m_off

        # 4. Sentinel promotes the target
        asked.execute_command('SENTINEL', 'FAILOVER', name)
        t_failover = time.monotonic()

        # 5. promoted: demote the old master at once, then let its paused clients go (READONLY)
        deadline = t_failover + float(cfg.get('switch_timeout', 10))
        while True:
            try:
                if target.execute_command('ROLE')[0] == 'master':
                    break
            except redis.RedisError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError('Sentinel did not promote the target within %ss' % cfg.get('switch_timeout', 10))
            time.sleep(0.005)
        t_promoted = time.monotonic()
        master.execute_command('REPLICAOF', target_addr[0], int(target_addr[1]))
        master.execute_command('CLIENT', 'UNPAUSE')
        paused, t_unpaused = False, time.monotonic()

        # 6. a Sentinel majority names the target
        while ha_rules.sentinel_majority(sentinel_views(sentinels, name), len(sentinels)) != target_addr:
            if time.monotonic() > deadline:
                raise RuntimeError('no Sentinel majority named the target within %ss' % cfg.get('switch_timeout', 10))
            time.sleep(0.01)
        t_majority = time.monotonic()
        result['timings_ms'] = dict(priority_wait=ms(t_start, t_prio), align_wait=ms(t_prio, t_aligned),
                                    pause_to_caught_up=ms(t_pause, t_caught),
                                    caught_up_to_failover_sent=ms(t_caught, t_failover),
                                    failover_to_promoted=ms(t_failover, t_promoted),
                                    promoted_to_unpaused=ms(t_promoted, t_unpaused),
                                    pause_to_majority=ms(t_pause, t_majority),
                                    master_paused=ms(t_pause, t_unpaused))
    except Exception as exc:  # report, never leave the master paused while it is still the master
        result['failed'] = True
        result['msg'] = '%s: %s' % (type(exc).__name__, exc)
        if paused:
            try:
                role = target.execute_command('ROLE')[0]
            except redis.RedisError:
                role = 'unknown'
            if role == 'master':  # promoted anyway: the old master must not take writes again
                try:
                    master.execute_command('REPLICAOF', target_addr[0], int(target_addr[1]))
                except redis.RedisError as err:
                    result['msg'] += '; REPLICAOF on the old master failed: %s' % err
            try:
                master.execute_command('CLIENT', 'UNPAUSE')
            except redis.RedisError as err:
                result['msg'] += '; CLIENT UNPAUSE failed: %s' % err
    finally:
        # 7. restore the priorities
        errors = []
        for key, prio in original.items():
            try:
                replicas[key].config_set('replica-priority', prio)
            except redis.RedisError as err:
                errors.append('%s: %s' % (key, err))
        result['priorities_restored'] = not errors
        if errors:
            result['failed'] = True
            result['msg'] = (result.get('msg', '') + '; could not restore replica-priority on '
                             + ', '.join(errors)).lstrip('; ')
    print(json.dumps(result, sort_keys=True))
    return 1 if result.get('failed') else 0


if __name__ == '__main__':
    sys.exit(main())
