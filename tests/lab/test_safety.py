# -*- coding: utf-8 -*-
# Copyright: (c) 2026, KeyBuzz (@keybuzz)
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Safety suite: network partitions, a whole-site power cycle and a re-run without credentials.

Same shape as test_faults.py: a write workload through both HAProxy nodes, one fault per test, the
lab steady before and after (restore() in the fixture, which also heals every partition). Every
test checks the common invariants (no write a replica acknowledged is lost, never two nodes taking
writes at once, one agreed master at the end) and that no node other than the final master
acknowledged a write after the new master's election.

The election time is the start of the first sample (taken every PROBE s) in which a Sentinel majority
(2 of 3, so both Sentinels of a two-node majority side) names the new master with
get-master-addr-by-name. The leader names the promoted replica before its own +switch-master (it
logs that one when the failover ends), so this is earlier than the leader's +switch-master; the
+try-failover / +elected-leader / +switch-master lines of the majority side's Sentinel logs are
reported beside it (RESULT "journal", seconds after the cut).
A test collects every rule it sees broken and fails once, listing them all, after printing its
figures (RESULT line), so that one run shows everything a fix still has to cover.
"""

from __future__ import absolute_import, division, print_function

import json
import os
import shutil
import tempfile
import textwrap
import time
import uuid

from kblab import labctl
from kblab import workload as wl
from kblab.labctl import assert_invariants, assert_no_secret, recap, show

DOWN_AFTER = 5.0       # redis_sentinel_down_after_ms, shipped default (the deployed value wins: settings())
MAX_LAG = 2.0          # redis_node_min_replicas_max_lag, shipped default (the deployed value wins: settings())
PROBE = 0.2            # seconds between two samples of roles, routes, health endpoints and Sentinels
ELECTION_TIMEOUT = 60  # a majority side elects within down-after + a failover; generous on a busy host
ABORTED_AFTER = 20.0   # a SENTINEL FAILOVER that has not moved the master by then was aborted: ask again
HOLD_EXTRA = 3.0       # keep a partition this long past max(max-lag + 2 s, 2 x down-after): hold_until()
HEAL_HEALTHY = 30.0    # after the heal, the cut-off HAProxy node answers 200 again within this
REJOIN_TIMEOUT = 90    # after the heal, the old master becomes a replica of the new one within this
BOOT_STEADY = 150      # after a site power cycle, the lab is steady again within this
NO_OUTAGE = 1.0        # a proxy that still reaches the master and a Sentinel: longest write gap allowed
SENTINEL_CUT_HOLD = 3 * DOWN_AFTER  # how long an HAProxy node stays cut from two Sentinels
MARKERS = 50           # keys written (WAIT 2) before the power cycle, checked after it


def settings(lab):
    """Deployed timings (seconds); the shipped defaults above when the lab cannot say."""
    live = lab.live_settings()
    live.setdefault('down_after', DOWN_AFTER)
    live.setdefault('max_lag', MAX_LAG)
    return live


class Rules(list):
    """Broken rules, collected; verify() fails once with all of them."""

    def check(self, ok, message):
        if not ok:
            self.append(message)
        return bool(ok)

    def invariants(self, report):
        try:
            assert_invariants(report)
        except AssertionError as exc:
            self.append('invariant: %s' % exc)

    def verify(self):
        assert not self, '%d rule(s) broken:\n- %s' % (len(self), '\n- '.join(self))


def stop(work, poller=None):
    if poller is not None:
        poller.stop()
    if work is not None and work.stopped is None:
        work.stop()


def settle_time(lab):
    """How long Sentinel may take to attach every replica to a new master: a replica it could not
    reconfigure during the failover is given up after the failover timeout, and Sentinel fixes a
    replica that follows another node (+fix-slave-config) only one more failover timeout after
    the failover ended; plus down-after and a margin for a busy host."""
    live = settings(lab)
    return 2 * live['failover_timeout'] + live['down_after'] + 20


def failover(lab, avoid=None, timeout=60):
    """SENTINEL FAILOVER, repeated when it landed on ``avoid``; returns the steady master.

    A failover that Sentinel aborts (e.g. it does not yet see a replica as good, right after a
    previous test restarted nodes) is asked again of the next Sentinel after ABORTED_AFTER s.
    Each failover is given settle_time() to reach the steady state."""
    master = lab.steady()
    settle = settle_time(lab)
    deadline = time.monotonic() + timeout + settle
    attempt = 0
    while attempt == 0 or master == avoid:
        assert time.monotonic() < deadline, 'no SENTINEL FAILOVER moved the master off %s in %d s' % (avoid, timeout)
        client = lab.sentinel(lab.sentinels[attempt % len(lab.sentinels)])
        attempt += 1
        try:
            client.execute_command('SENTINEL', 'FAILOVER', lab.master_name)
        except Exception as exc:  # INPROG / NOGOODSLAVE: ask again below
            print('SENTINEL FAILOVER refused: %s' % wl.error_class(exc))
        finally:
            client.close()
        old = master
        try:
            lab.wait_for('a Sentinel majority naming a master other than %s' % old,
                         lambda: lab.sentinel_majority_master() not in (None, old), ABORTED_AFTER)
        except AssertionError:
            print('SENTINEL FAILOVER (attempt %d) did not move the master off %s: asking again' % (attempt, old))
        master = lab.steady(settle)
    return master


def named_other(lab, sentinels, old):
    """Predicate: the node other than ``old`` a Sentinel majority (of all of them) names, asking only ``sentinels``."""
    def named():
        master = lab.sentinel_majority_master(sentinels)
        return master if master not in (None, old) else None
    return named


def election(poller, lab, old, after):
    """(node, first time any Sentinel names it, first time a Sentinel majority names it) for the first
    node other than ``old`` a Sentinel names after ``after``; (None, None, None) when none."""
    quorum = len(lab.sentinels) // 2 + 1
    first_any = poller.first(lambda s: any(v not in (None, old) for v in s['sentinels'].values()), after)
    if first_any is None:
        return None, None, None
    new = [v for v in first_any['sentinels'].values() if v not in (None, old)][0]
    first_major = poller.first(lambda s: list(s['sentinels'].values()).count(new) >= quorum, after)
    return new, first_any['t0'], first_major['t0'] if first_major else None


def switch_lines(lab, sentinels, since_wall, offset):
    """+try-failover / +elected-leader / +switch-master lines of the ``sentinels``' log files:
    [(monotonic time, host, text)]."""
    out = []
    for s in sentinels:
        for wall, text in lab.redis_log(s, labctl.SENTINEL_LOG, r'\+switch-master|\+elected-leader|\+try-failover',
                                        since_wall):
            out.append((wall - offset, s, text[:120]))
    return sorted(out)


def hold_until(t_cut, timing):
    """When to heal a partition: after the isolated master must refuse writes on its own (max-lag + 2 s)
    and after two down-after periods (the election and a while after it), plus HOLD_EXTRA."""
    return t_cut + max(timing['max_lag'] + 2, 2 * timing['down_after']) + HOLD_EXTRA


def rel(t, t0):
    return None if t is None else round(t - t0, 2)


def late_writes(work, node_ok, after):
    """Acknowledged writes after ``after`` served by a node for which node_ok(node) is false."""
    return [e for e in work.ledger if e['t'] > after and not node_ok(e['node'])]


def brief(entries, t0, n=3):
    return [dict(t=rel(e['t'], t0), node=e['node'], endpoint=e['endpoint'], replicas=e['replicas'])
            for e in entries[:n]]


def health_track(poller, proxy, t_cut, t_heal):
    """What ``proxy``'s health endpoint answered around a cut: figures and the raw samples."""
    # A sample is "during" only when it was answered before the heal began (heal() returns that time).
    during = [(s['t'], s['health'][proxy]) for s in poller.between(t_cut, t_heal)]
    after = [(s['t'], s['health'][proxy]) for s in poller.between(t_heal)]
    first_bad = next(((t, c) for t, c in during if c != 200), None)
    ok_after_bad = [t for t, c in during if first_bad and t > first_bad[0] and c == 200]
    first_ok_after = next((t for t, c in after if c == 200), None)
    return dict(first_bad_s=rel(first_bad[0], t_cut) if first_bad else None, first_bad_code=first_bad and first_bad[1],
                codes_during=sorted(set(str(c) for _, c in during)), samples_during=len(during),
                ok_during_after_bad=len(ok_after_bad), ok_during=sum(1 for _, c in during if c == 200),
                healthy_after_heal_s=rel(first_ok_after, t_heal))


def check_health_fenced(rules, proxy, track, down_after, t_heal_s):
    """The health endpoint of a proxy cut from the majority: 503 within down-after, never 200 again
    before the heal."""
    if track['first_bad_s'] is None:
        rules.append('%s health endpoint answered 200 during the whole partition (%d samples over %.1f s)'
                     % (proxy, track['samples_during'], t_heal_s))
        return
    rules.check(track['first_bad_code'] == 503 and track['first_bad_s'] <= down_after,
                '%s health endpoint: first non-200 answer was %s at %.2f s after the cut (want 503 within down-after '
                '%.1f s)' % (proxy, track['first_bad_code'], track['first_bad_s'], down_after))
    rules.check(track['ok_during_after_bad'] == 0,
                '%s health endpoint answered 200 again %d time(s) during the partition after it had gone down'
                % (proxy, track['ok_during_after_bad']))


def wait_rejoined(lab, old, new, rules, timeout=REJOIN_TIMEOUT):
    try:
        lab.wait_for('%s to become a replica of %s after the heal' % (old, new),
                     lambda: lab.role(old) == ('replica', '%s connected' % new), timeout, 0.5)
        return True
    except AssertionError as exc:
        rules.append('%s (its ROLE: %s)' % (exc, lab.role(old)))
        return False


def steady_on(lab, expected, rules, timeout=90, what='at the end'):
    try:
        master = lab.steady(timeout)
    except AssertionError as exc:
        rules.append('%s: %s' % (what, str(exc)[:1500]))
        return None
    rules.check(master == expected, '%s the steady master is %s, not %s' % (what, master, expected))
    return master


# -- 1. master + its Sentinel + one HAProxy node cut from the rest ------------------------------------

def test_minority_partition_with_haproxy(steady_lab):
    """The minority (master, its Sentinel, haproxy-01) must stop taking writes: haproxy-01 answers 503
    within down-after, the majority elects a new master that haproxy-02 routes to, and after the heal
    the old master is a replica of the new one. No node but the new master may acknowledge a write
    after the election."""
    lab = steady_lab
    timing = settings(lab)
    old = lab.steady()
    cut_proxy, far_proxy = lab.haproxies[0], lab.haproxies[-1]
    minority = [old, cut_proxy]
    majority = [n for n in lab.nodes if n != old] + [far_proxy]
    majority_sentinels = [s for s in lab.sentinels if s in majority]
    rules = Rules()
    work = lab.workload().start()
    poller = lab.watch(PROBE, names_into=work.node_names)
    try:
        time.sleep(2)
        offset = time.time() - time.monotonic()
        wall_cut = time.time()
        t_cut = lab.partition(minority, majority)
        new = lab.wait_for('a Sentinel majority (on the majority side) naming a master other than %s' % old,
                           named_other(lab, majority_sentinels, old), ELECTION_TIMEOUT, PROBE)
        resumed = lab.wait_for('a write acknowledged by %s through %s' % (new, far_proxy),
                               lambda: work.successes_since(t_cut, node=new, endpoint=far_proxy), 30)
        servers_mid = lab.haproxy_servers(cut_proxy)  # evidence: what the cut-off proxy believes
        hold = hold_until(t_cut, timing) - time.monotonic()
        if hold > 0:
            time.sleep(hold)
        t_heal = lab.heal()
        rejoined = wait_rejoined(lab, old, new, rules)
        try:  # the figure comes from the samples (health_track); this only waits for it
            lab.wait_for('%s health 200 after the heal' % cut_proxy, lambda: lab.health(cut_proxy) == 200,
                         HEAL_HEALTHY + 5, PROBE)
        except AssertionError:
            pass
        steady_on(lab, new, rules, 90)
        time.sleep(1)
    finally:
        stop(work, poller)
    report = lab.report(work, new)
    _, t_first_named, t_elected = election(poller, lab, old, t_cut)
    t_elected = t_elected or t_first_named
    switches = switch_lines(lab, majority_sentinels, wall_cut - 1, offset)
    track = health_track(poller, cut_proxy, t_cut, t_heal)
    late = late_writes(work, lambda node: node == new, t_elected)
    old_after_cut = [e for e in work.ledger if e['t'] > t_cut and e['node'] == old]
    refusals = [e for e in work.events if e[0] > t_cut and not e[3] and 'NOREPLICAS' in str(e[4])]
    routed_old = [s for s in poller.between(t_cut + timing['down_after'], t_heal)
                  if s['route_names'].get(cut_proxy) == old]
    show('minority partition: master + its Sentinel + %s' % cut_proxy, report, dict(
        old=old, new=new, down_after_s=timing['down_after'], max_lag_s=timing['max_lag'],
        first_named_s=rel(t_first_named, t_cut), elected_s=rel(t_elected, t_cut),
        journal=[(rel(t, t_cut), h, text) for t, h, text in switches][:6],
        resumed_on_new_s=rel(resumed[0]['t'], t_cut),
        held_s=rel(t_heal, t_cut), health=track, old_acked_after_cut=len(old_after_cut),
        old_last_ack_s=rel(old_after_cut[-1]['t'], t_cut) if old_after_cut else None,
        old_acked_after_election=len([e for e in late if e['node'] == old]), not_new_after_election=len(late),
        first_noreplicas_s=rel(refusals[0][0], t_cut) if refusals else None,
        routed_to_old_samples_after_down_after=len(routed_old), rejoined=rejoined,
        cut_proxy_servers_up_after_election=sorted(k for k, v in servers_mid.items() if v.startswith('UP'))))
    check_health_fenced(rules, cut_proxy, track, timing['down_after'], t_heal - t_cut)
    rules.check(track['healthy_after_heal_s'] is not None and track['healthy_after_heal_s'] <= HEAL_HEALTHY,
                '%s health endpoint not 200 within %.0f s after the heal (first 200 at %s s)'
                % (cut_proxy, HEAL_HEALTHY, track['healthy_after_heal_s']))
    rules.check(new in majority, 'the new master %s is not on the majority side %s' % (new, majority))
    rules.check(not late, '%d write(s) acknowledged by a node other than the new master %s after its election '
                          '(%.2f s after the cut): %s' % (len(late), new, t_elected - t_cut, brief(late, t_cut)))
    rules.check(not routed_old, '%s routed connections to the isolated old master %s in %d sample(s) later than '
                                'down-after (%.1f s) after the cut' % (cut_proxy, old, len(routed_old),
                                                                      timing['down_after']))
    rules.invariants(report)
    rules.verify()


# -- 2. site power cycle after a failover ---------------------------------------------------------

def write_markers(lab, master, prefix, count=MARKERS):
    """``count`` keys on the master, each acknowledged by both replicas (WAIT 2); returns the keys."""
    client = lab.node(master, timeout=5.0)
    keys = []
    try:
        for i in range(count):
            key = '%s:%d' % (prefix, i)
            client.set(key, i)
            acked = int(client.execute_command('WAIT', len(lab.nodes) - 1, 2000))
            assert acked >= 1, 'marker %s acknowledged by %d replicas' % (key, acked)
            keys.append(key)
    finally:
        client.close()
    return keys


def test_whole_lab_restart_after_failover(steady_lab):
    """After a Sentinel failover to a node that is not the inventory's initial master, power-cycle
    the whole site: the node the Sentinels elected is the only master after the boot, the data a
    replica acknowledged before is there, and no other node is ever routed to as a master."""
    lab = steady_lab
    initial = lab.initial_master()
    elected = failover(lab, avoid=initial)
    rules = Rules()
    work = lab.workload().start()
    poller = None
    try:
        time.sleep(2)
        markers = write_markers(lab, elected, 'kb:safety:boot:%s' % uuid.uuid4().hex[:8])
        poller = lab.watch(PROBE, names_into=work.node_names)
        time.sleep(1)
        wall_restart = time.time()
        boot = lab.restart_all()
        t0 = boot['issued']
        try:
            final = lab.steady(BOOT_STEADY)
        except AssertionError as exc:
            final = None
            rules.append('not steady %d s after the power cycle: %s' % (BOOT_STEADY, str(exc)[:1500]))
        t_steady = time.monotonic()
        time.sleep(1)
    finally:
        stop(work, poller)
    labctl.relabel(work, poller.names)
    final = final or lab.sentinel_majority_master()
    report = lab.report(work, final)
    samples = poller.between(t0)
    masters_per_sample = [sorted(n for n, (role, _) in s['roles'].items() if role == 'master') for s in samples]
    two_masters = [s for s, m in zip(samples, masters_per_sample) if len(m) >= 2]
    routed_two = [s for s, m in zip(samples, masters_per_sample)
                  if len(set(m) & set(s['route_names'].values())) >= 2]
    wrong_routes = [(round(s['t0'] - t0, 2), p, n) for s in samples for p, n in s['route_names'].items()
                    if n is not None and n != final]
    ever_master = sorted(set(n for m in masters_per_sample for n in m))
    wrong_writes = late_writes(work, lambda node: node == final, t0)
    check = lab.node(final, timeout=5.0) if final else None
    try:
        lost_markers = [k for k in markers if not check.exists(k)] if check else list(markers)
    finally:
        if check is not None:
            check.close()
    # What each node's start-up guard decided at the boot (its ExecStartPre lines in the journal).
    guard = dict((n, [text.split(': ', 1)[-1][:160] for _, text in
                      lab.journal(n, 'redis-server', 'redis-start-role', wall_restart - 1)][-4:]) for n in lab.nodes)
    print('GUARD ' + json.dumps(guard, sort_keys=True))
    show('site power cycle after a failover', report, dict(
        initial=initial, elected=elected, final=final, restart_s=rel(boot['restarted'], t0),
        systemd_up_s=rel(boot['booted'], t0), steady_s=rel(t_steady, t0), samples=len(samples),
        two_master_samples=len(two_masters), two_masters_routed_samples=len(routed_two),
        first_two_masters=[(rel(s['t0'], t0), m) for s, m in zip(samples, masters_per_sample) if len(m) >= 2][:3],
        ever_master=ever_master, wrong_routes=len(wrong_routes), wrong_routes_first=wrong_routes[:4],
        writes_not_on_final=len(wrong_writes), markers=len(markers), markers_lost=len(lost_markers)))
    rules.check(final == elected, 'after the power cycle the master is %s, not %s (the node the Sentinels elected; '
                                  'the inventory names %s)' % (final, elected, initial))
    rules.check(not lost_markers, '%d of %d keys acknowledged by the replicas before the power cycle are missing on '
                                  '%s' % (len(lost_markers), len(markers), final))
    rules.check(not routed_two, 'two nodes reported role:master and were routed to at once in %d sample(s), first '
                                '%.2f s after the restart' % (len(routed_two), routed_two[0]['t0'] - t0)
                if routed_two else '')
    rules.check(not wrong_routes, 'an HAProxy node routed to a node other than %s after the restart (%d samples): %s'
                % (final, len(wrong_routes), wrong_routes[:4]))
    rules.check(not wrong_writes, '%d write(s) acknowledged after the restart by a node other than %s: %s'
                % (len(wrong_writes), final, brief(wrong_writes, t0)))
    rules.invariants(report)
    rules.verify()


# -- 3. site.yml with a credentials directory that lost redis.env ---------------------------------

def first_failure(stdout):
    """(play name, failing task, message) of the first failed task of a playbook run (YAML or JSON
    result format)."""
    import yaml
    play = task = None
    lines = stdout.splitlines()
    for i, line in enumerate(lines):
        if line.startswith('PLAY ['):
            play = line[6:line.rfind(']')]
        elif line.startswith('TASK ['):
            task = line[6:line.rfind(']')]
        elif line.startswith('fatal:') or line.startswith('failed:'):
            head, _, rest = line.partition('=> ')
            if rest.strip().startswith('{'):
                try:
                    return play, task, json.loads(rest).get('msg', rest)
                except ValueError:
                    return play, task, rest
            block = []
            for follow in lines[i + 1:]:
                if follow and not follow[0].isspace():
                    break
                block.append(follow)
            try:
                parsed = yaml.safe_load(textwrap.dedent('\n'.join(block)))
            except yaml.YAMLError:
                parsed = None
            if isinstance(parsed, dict):
                return play, task, parsed.get('msg', parsed)
            return play, task, '\n'.join([line] + block)
    return None, None, None


def test_site_without_credentials_after_failover(steady_lab):
    """site.yml pointed at a credentials directory without redis.env (a new controller, a lost file)
    must stop in the preflight with changed=0 everywhere, saying which file is missing and how to
    get it back, and write no new credentials; the nodes' own state must then survive a restart of
    every redis-server."""
    lab = steady_lab
    initial = lab.initial_master()
    elected = failover(lab, avoid=initial)
    lab.save_state()
    empty = tempfile.mkdtemp(prefix='kb-no-credentials-')  # mode 0700
    rules = Rules()
    damaged, result, run_s, hosts, left, restarts = True, None, None, {}, [], []
    play = task = message = None
    work = lab.workload().start()
    poller = lab.watch(0.5, names_into=work.node_names)
    try:
        time.sleep(2)
        t_run = time.monotonic()
        result = lab.playbook('site.yml', '-e', json.dumps({'redis_ha_credentials_dir': empty}), timeout=600)
        run_s = time.monotonic() - t_run
        left = sorted(os.listdir(empty))
        try:
            hosts = recap(result)
        except AssertionError:
            hosts = {}
        play, task, message = first_failure(result.stdout)
        changed = dict((h, c) for h, c in hosts.items() if c[0])
        damaged = result.returncode == 0 or bool(changed) or bool(left)
        rules.check(result.returncode != 0, 'site.yml succeeded (rc 0) without redis.env')
        rules.check(play is not None and 'preflight' in play.lower(),
                    'the run did not fail in the preflight play (first failure: play %r, task %r)' % (play, task))
        text = str(message or '')
        rules.check(os.path.join(empty, 'redis.env') in text or (empty in text and 'redis.env' in text),
                    'the failure message does not name the missing file %s/redis.env: %r' % (empty, text[:600]))
        rules.check('redis_credentials_override' in text and ('copy' in text.lower() or 'controller' in text.lower()),
                    'the failure message does not say how to restore the file (copy redis.env from the controller '
                    'that deployed, or pass redis_credentials_override): %r' % text[:600])
        rules.check(hosts and not changed, 'hosts changed by the run (changed, unreachable, failed): %s; recap: %s'
                    % (changed, hosts))
        rules.check(not left, 'the run wrote %s into the empty credentials directory' % left)
        assert_no_secret(lab, result.stdout)
        # The nodes must not depend on the failed run: restart every redis-server, one at a time,
        # replicas first (a restart of the master itself does not outlast down-after).
        for node in sorted(lab.nodes, key=lambda n: n == elected):
            t = lab.systemctl(node, 'restart', 'redis-server')
            master = steady_on(lab, elected, rules, 60, 'after restarting redis-server on %s' % node)
            gap = wl.unavailability([e for e in work.events if e[0] >= t], t, time.monotonic())
            restarts.append((node, rel(time.monotonic(), t), round(gap['overall']['longest'], 2)))
            if master is None:
                break
        time.sleep(1)
    finally:
        stop(work, poller)
        shutil.rmtree(empty, ignore_errors=True)
        if damaged:  # the run may have rewritten the lab (new passwords, another master): put back the saved state
            print('REPAIR: the run changed the lab (or did not finish): restoring the configuration saved before it')
            print('REPAIR: steady again, master %s' % lab.restore_state(180))
    labctl.relabel(work, poller.names)
    masters = [sorted(n for n, (role, _) in s['roles'].items() if role == 'master') for s in poller.samples
               if 'roles' in s]
    final = lab.sentinel_majority_master()
    report = lab.report(work, final)
    show('site.yml with an empty credentials directory after a failover', report, dict(
        elected=elected, rc=result.returncode, run_s=round(run_s, 1), failed_play=play, failed_task=task,
        message=str(message or '')[:700], recap=hosts, files_written=left, restarts=restarts, repaired=damaged,
        two_master_samples=sum(1 for m in masters if len(m) >= 2), ever_master=sorted(set(sum(masters, []))),
        final=final))
    wrong = late_writes(work, lambda node: node == elected, t_run)
    rules.check(not wrong, '%d write(s) acknowledged by a node other than %s after the run started: %s'
                % (len(wrong), elected, brief(wrong, t_run)))
    rules.check(final == elected, 'the Sentinels name %s, not %s, at the end' % (final, elected))
    rules.invariants(report)
    rules.verify()


# -- 4. partitions that must not cost availability, or must fence both proxies --------------------

def test_haproxy_cut_from_two_sentinels_keeps_routing(steady_lab):
    """haproxy-01 loses two of the three Sentinels (it still reaches every Redis node, and the master's
    own Sentinel): no failover happens, so it must keep routing writes to the real master without an
    outage longer than NO_OUTAGE, and keep answering 200. (A fix for test 1 must not turn this into an
    outage: here the master's replicas answer and follow it.)"""
    lab = steady_lab
    master = lab.steady()
    proxy = lab.haproxies[0]
    cut_from = [s for s in lab.sentinels if s != master]
    rules = Rules()
    work = lab.workload().start()
    poller = lab.watch(PROBE, names_into=work.node_names)
    try:
        time.sleep(2)
        t_cut = lab.cut_port([proxy], cut_from, labctl.SENTINEL_PORT)
        # The cut is real: no Sentinel port of cut_from, every Redis port (checked from inside the proxy).
        reach = dict(('%s:%d' % (n, port), lab.reaches(proxy, n, port, 0.5))
                     for n in cut_from for port in (labctl.SENTINEL_PORT, labctl.REDIS_PORT))
        assert reach == dict(('%s:%d' % (n, port), port == labctl.REDIS_PORT)
                             for n in cut_from for port in (labctl.SENTINEL_PORT, labctl.REDIS_PORT)), \
            'the cut is not what the test meant (reachable from %s): %s' % (proxy, reach)
        time.sleep(max(0.0, t_cut + SENTINEL_CUT_HOLD / 2 - time.monotonic()))
        servers_mid = lab.haproxy_servers(proxy)
        time.sleep(max(0.0, t_cut + SENTINEL_CUT_HOLD - time.monotonic()))
        t_heal = lab.heal()
        time.sleep(2)
    finally:
        stop(work, poller)
    report = lab.report(work, master)
    gaps = wl.unavailability([e for e in work.events if e[1] == proxy and t_cut <= e[0] <= t_heal], t_cut, t_heal)
    samples = poller.between(t_cut, t_heal)
    not_ok = [(rel(s['t0'], t_cut), s['health'][proxy]) for s in samples if s['health'][proxy] != 200]
    routed = sorted(set(str(s['route_names'][proxy]) for s in samples))
    failures = [e for e in work.events if e[1] == proxy and t_cut <= e[0] <= t_heal and not e[3]]
    elsewhere = [e for e in work.ledger if e['node'] != master]
    show('%s cut from Sentinels %s' % (proxy, ', '.join(cut_from)), report, dict(
        master=master, held_s=rel(t_heal, t_cut), longest_gap_via_proxy=round(gaps['overall']['longest'], 3),
        failed_via_proxy=len(failures), health_not_200=len(not_ok), health_not_200_first=not_ok[:3],
        routed_to=routed, servers_up_mid_cut=sorted(k for k, v in servers_mid.items() if v.startswith('UP'))))
    rules.check(gaps['overall']['longest'] <= NO_OUTAGE,
                'writes through %s stopped for %.2f s (at most %.1f s allowed; %d failed attempts)'
                % (proxy, gaps['overall']['longest'], NO_OUTAGE, len(failures)))
    rules.check(not not_ok, '%s health endpoint answered non-200 in %d sample(s) (s after the cut, code): %s'
                % (proxy, len(not_ok), not_ok[:5]))
    rules.check(routed == [master], '%s routed to %s during the cut (want only %s)' % (proxy, routed, master))
    rules.check(not elsewhere, 'writes acknowledged by %s' % sorted(set(e['node'] for e in elsewhere)))
    rules.check(lab.steady(30) == master, 'the master changed')
    rules.invariants(report)
    rules.verify()


def test_master_isolated_with_both_haproxy(steady_lab):
    """The master (and its Sentinel) keeps both HAProxy nodes; the two replicas (and two Sentinels)
    are on the other side and elect a new master nobody can reach. Neither proxy may keep routing to
    the old master once it cannot show a replica (503 within down-after, like test 1), and no write
    the old master acknowledges after the election is allowed."""
    lab = steady_lab
    timing = settings(lab)
    old = lab.steady()
    minority = [old] + list(lab.haproxies)
    majority = [n for n in lab.nodes if n != old]
    majority_sentinels = [s for s in lab.sentinels if s in majority]
    rules = Rules()
    work = lab.workload().start()
    poller = lab.watch(PROBE, names_into=work.node_names)
    try:
        time.sleep(2)
        offset, wall_cut = time.time() - time.monotonic(), time.time()
        t_cut = lab.partition(minority, majority)
        new = lab.wait_for('a Sentinel majority (on the replicas\' side) naming a master other than %s' % old,
                           named_other(lab, majority_sentinels, old), ELECTION_TIMEOUT, PROBE)
        hold = hold_until(t_cut, timing) - time.monotonic()
        if hold > 0:
            time.sleep(hold)
        t_heal = lab.heal()
        wait_rejoined(lab, old, new, rules)
        steady_on(lab, new, rules, 90)
        time.sleep(1)
    finally:
        stop(work, poller)
    report = lab.report(work, new)
    _, t_first_named, t_elected = election(poller, lab, old, t_cut)
    t_elected = t_elected or t_first_named
    switches = switch_lines(lab, majority_sentinels, wall_cut - 1, offset)
    tracks = dict((p, health_track(poller, p, t_cut, t_heal)) for p in lab.haproxies)
    late = late_writes(work, lambda node: node == new, t_elected)
    old_after_cut = [e for e in work.ledger if e['t'] > t_cut and e['node'] == old]
    refusals = [e for e in work.events if e[0] > t_cut and not e[3] and 'NOREPLICAS' in str(e[4])]
    show('master isolated with both HAProxy nodes', report, dict(
        old=old, new=new, down_after_s=timing['down_after'], max_lag_s=timing['max_lag'],
        first_named_s=rel(t_first_named, t_cut), elected_s=rel(t_elected, t_cut),
        journal=[(rel(t, t_cut), h, text) for t, h, text in switches][:6], held_s=rel(t_heal, t_cut),
        health=tracks, old_acked_after_cut=len(old_after_cut),
        old_last_ack_s=rel(old_after_cut[-1]['t'], t_cut) if old_after_cut else None,
        old_acked_after_election=len(late), first_noreplicas_s=rel(refusals[0][0], t_cut) if refusals else None))
    for proxy in lab.haproxies:
        check_health_fenced(rules, proxy, tracks[proxy], timing['down_after'], t_heal - t_cut)
        healthy = tracks[proxy]['healthy_after_heal_s']
        rules.check(healthy is not None and healthy <= HEAL_HEALTHY,
                    '%s health endpoint not 200 within %.0f s after the heal (first 200 at %s s)'
                    % (proxy, HEAL_HEALTHY, healthy))
    rules.check(not late, '%d write(s) acknowledged by the old master %s after the election (%.2f s after the cut): '
                          '%s' % (len(late), old, t_elected - t_cut, brief(late, t_cut)))
    rules.invariants(report)
    rules.verify()


# -- 6. a configuration change that needs every node restarted, the master included --------------

SWITCHED_PAUSE = 3.0   # longest write pause allowed: a switchover's (< 1.5 s measured), never a restart's


def test_site_restarts_the_master_only_after_a_switchover(steady_lab):
    """site.yml must restart a node whose running configuration differs from the files (here: the
    checksum the start-up guard recorded is made stale on every node, as after a run interrupted
    between writing a template and restarting). Replicas restart one at a time; the master is never
    restarted in place: it is switched over first and restarted as a replica. Under the workload:
    nothing acknowledged by a replica is lost and writes pause no longer than a switchover."""
    lab = steady_lab
    old = lab.steady()
    before = lab.pids()
    for node in lab.nodes:
        lab.sh(node, "python3 -c \"import json; p='/run/redis/start-role.json'; s=json.load(open(p)); "
                     "s['config_checksum']='0'*40; json.dump(s, open(p, 'w'))\"")
    work = lab.workload().start()
    time.sleep(1)
    result = lab.playbook('site.yml')
    time.sleep(1)
    report = lab.finish(work, 'site.yml restarting every node (stale configuration checksum)',
                        dict(recap=labctl.recap(result)))
    after = lab.pids()
    assert result.returncode == 0, result.stdout[-3000:]
    new = lab.steady(60)
    restarted = sorted(k for k in before if before[k] != after[k])
    assert restarted == sorted('%s/redis-server' % n for n in lab.nodes), 'restarted: %s' % restarted
    assert 'Switching the master from %s to %s' % (old, new) in result.stdout, result.stdout[-3000:]
    assert new != old and lab.role(old) == ('replica', '%s connected' % new)
    longest = report['unavailability']['overall']['longest']
    assert longest < SWITCHED_PAUSE, 'writes paused %.2f s (a restart in place, not a switchover?)' % longest
    assert_invariants(report)
    # The guard recorded the checksum of the files it started with, the one site.yml compares to
    # decide on a restart (roles/redis_node/tasks/run.yml: sha1 of the files' sha1s): a re-run
    # restarts nothing. (A whole re-run, ~70 s, would prove the same; other tests re-run site.yml.)
    stale = {}
    for node in lab.nodes:
        files = lab.sh(node, "sha1sum /etc/redis/redis.conf /etc/systemd/system/redis-server.service "
                             "| cut -c1-40 | tr -d '\\n' | sha1sum | cut -c1-40").strip()
        recorded = lab.sh(node, "python3 -c \"import json; print(json.load(open('/run/redis/start-role.json'))"
                                "['config_checksum'])\"").strip()
        if files != recorded:
            stale[node] = (files, recorded)
    assert not stale, 'the start-up guard recorded another checksum than the files\' (a re-run would restart): %s' % stale
