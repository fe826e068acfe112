# -*- coding: utf-8 -*-
# Copyright: (c) 2026, KeyBuzz (@keybuzz)
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fault-injection suite: the five-container lab, a write workload through both HAProxy nodes, one
fault per test. Every test asserts the common invariants (no write acknowledged by a replica is
lost, never two nodes taking writes at once, one master agreed by every node and Sentinel at the
end) plus its own expectation, and leaves the lab steady (restore() in the fixture)."""

from __future__ import absolute_import, division, print_function

import json
import os
import subprocess
import tempfile
import time

from kblab import labctl
from kblab import workload as wl
from kblab.labctl import Prometheus, assert_invariants, assert_no_secret, assert_nothing_changed, new_master, recap, show

DOWN_AFTER = 5.0       # redis_sentinel_down_after_ms (shipped default)
MAX_LAG = 2.0          # redis_node_min_replicas_max_lag (shipped default)
SIDE_GAP = 0.5         # the partition test's side writer: longest gap between writes (WAIT 100 ms + 20 ms, busy host)


def writes_on(lab, work, node, since, timeout=30):
    return lab.wait_for('an acknowledged write on %s through HAProxy' % node,
                        lambda: work.successes_since(since, node=node), timeout)


def refresh_names(lab, work):
    """A restarted node has a new run_id: name it for the connections opened from now on."""
    work.node_names.update(wl.node_run_ids(lab.node_specs()))


def test_controlled_failover(steady_lab, tmp_path):
    lab = steady_lab
    old = lab.steady()
    # A real Prometheus scrapes the HAProxy exporters and the watchers and evaluates the shipped alert rules.
    prom = Prometheus(lab, tmp_path)
    try:
        lab.wait_for('the watchers routing to %s in the scraped series' % old,
                     lambda: sorted(m['node'] for m, v in prom.query('keybuzz_watcher_routed_master == 1')) == [old, old])
        before = dict((m['instance'], v) for m, v in prom.query('keybuzz_watcher_route_changes_total'))
        assert prom.firing() == set(), 'alerts firing on the steady lab: %s' % prom.firing()
        work = lab.workload().start()
        time.sleep(2)
        t0 = time.monotonic()
        client = lab.sentinel(lab.sentinels[0])
        assert client.execute_command('SENTINEL', 'FAILOVER', lab.master_name) in (True, 'OK', b'OK')
        client.close()
        new = new_master(lab, old)
        writes_on(lab, work, new, t0)
        assert lab.steady(60) == new
        time.sleep(1)
        report = lab.finish(work, 'controlled failover')
        assert_invariants(report)
        assert lab.role(old) == ('replica', '%s connected' % new)
        # On the scraped data: each watcher's switch counter moved, both route to the new master, and
        # the "failover happened" alert fires for each watcher, nothing else.
        watchers = set(before)
        lab.wait_for('KeybuzzRedisFailover firing for both watchers',
                     lambda: set(i for a, i in prom.firing() if a == 'KeybuzzRedisFailover') == watchers, timeout=30)
        after = dict((m['instance'], v) for m, v in prom.query('keybuzz_watcher_route_changes_total'))
        assert all(after[i] == before[i] + 1 for i in watchers), (before, after)
        assert sorted(m['node'] for m, v in prom.query('keybuzz_watcher_routed_master == 1')) == [new, new]
        # The Redis and Sentinel exporters' series show the same move.
        new_address = '%s:%d' % (lab.ip[new], labctl.REDIS_PORT)
        lab.wait_for('the exporters showing %s as the master' % new, lambda: (
            [m['instance'] for m, v in prom.query('redis_instance_info{job="keybuzz-redis",role="master"} == 1')]
            == ['%s:9121' % lab.ip[new]]
            and set(m['master_address'] for m, v in prom.query('redis_sentinel_master_status == 1')) == {new_address}
            and len(prom.query('redis_sentinel_master_status == 1')) == len(lab.sentinels)), timeout=30)
        assert set(a for a, i in prom.firing()) == {'KeybuzzRedisFailover'}, prom.firing()
    finally:
        prom.stop()


def test_graceful_master_stop(steady_lab):
    lab = steady_lab
    old = lab.steady()
    work = lab.workload().start()
    time.sleep(2)
    t0 = lab.systemctl(old, 'stop', 'redis-server')
    new = new_master(lab, old)
    writes_on(lab, work, new, t0)
    lab.systemctl(old, 'start', 'redis-server')
    assert lab.steady(90) == new, 'the stopped master came back as master'
    report = lab.finish(work, 'graceful master stop')
    assert_invariants(report)
    assert not [e for e in work.ledger if e['t'] > t0 and e['node'] == old]


def test_hard_master_kill(steady_lab):
    lab = steady_lab
    old = lab.steady()
    lab.no_restart(old)
    work = lab.workload().start()
    time.sleep(2)
    t0 = lab.kill(old)
    new = new_master(lab, old)
    writes_on(lab, work, new, t0)
    lab.systemctl(old, 'start', 'redis-server')
    assert lab.steady(90) == new
    refresh_names(lab, work)
    time.sleep(1)
    report = lab.finish(work, 'hard master kill')
    assert_invariants(report)
    guard = lab.sh(old, 'journalctl -b -u redis-server.service --no-pager -o cat | grep "redis-start-role" | tail -n 1')
    assert 'starting as replica of %s' % lab.ip[new] in guard, guard


def test_frozen_master_comes_back_as_replica(steady_lab):
    lab = steady_lab
    old = lab.steady()
    work = lab.workload().start()
    time.sleep(2)
    t0 = lab.kill(old, signal='SIGSTOP')
    new = new_master(lab, old)
    writes_on(lab, work, new, t0)
    time.sleep(1)
    t_cont = lab.kill(old, signal='SIGCONT')
    lab.wait_for('%s to become a replica of %s' % (old, new),
                 lambda: lab.role(old) == ('replica', '%s connected' % new), 60, 0.2)
    assert lab.steady(60) == new
    time.sleep(1)
    report = lab.finish(work, 'frozen master (SIGSTOP > down-after, then SIGCONT)')
    assert_invariants(report)
    late = [e for e in work.ledger if e['t'] >= t_cont and e['node'] == old]
    assert not late, 'the resumed old master acknowledged writes: %s' % late[:3]


# Stalls shorter than down-after (5 s): a fork for an AOF rewrite or a full sync, a slow command, an
# fsync on a slow disk. Clients must wait them out, not be dropped.
STALLS = (1.5, 3.0)
STALL_SLACK = 0.2


def test_short_stalls_keep_clients(steady_lab):
    """A master that pauses for less than down-after (SIGSTOP, then SIGCONT) is not a failure: no
    failover, HAProxy closes no client connection (haproxy_redis_master_check_fall), and writes stop
    no longer than the stall plus 0.2 s. (A stall longer than down-after still fails over:
    test_frozen_master_comes_back_as_replica.)"""
    lab = steady_lab
    master = lab.steady()
    for stall in STALLS:
        # The clients wait up to stall + 2 s for an answer (else they would give up themselves).
        work = lab.workload(timeout=stall + 2).start()
        time.sleep(2)
        t_stop = lab.kill(master, signal='SIGSTOP')
        time.sleep(stall)
        t_cont = lab.kill(master, signal='SIGCONT')
        time.sleep(2)
        report = lab.finish(work, 'master stalled %.1f s (SIGSTOP, then SIGCONT)' % stall)
        frozen = t_cont - t_stop
        longest = report['unavailability']['overall']['longest']
        assert report['failures'] == 0, 'clients dropped during a %.1f s stall: %s' % (frozen, report['error_classes'])
        assert longest <= frozen + STALL_SLACK, 'writes stopped %.2f s for a %.2f s stall' % (longest, frozen)
        assert lab.steady(30) == master, 'a %.1f s stall caused a failover' % frozen
        assert_invariants(report)


SIDE_WRITER = r'''
import json, sys, time, redis
password = sys.stdin.readline().strip()
stop = time.time() + float(sys.argv[1])
c = None
seq = 0
while time.time() < stop:
    try:
        if c is None:
            tls = dict(ssl=True, ssl_ca_certs=sys.argv[2]) if len(sys.argv) > 2 else {}
            c = redis.Redis(host="127.0.0.1", port=6379, password=password, socket_timeout=1,
                            socket_connect_timeout=1, **tls)
        key = "kb:side:%d" % seq
        c.set(key, seq)
        t = time.time()
        replicas = int(c.execute_command("WAIT", 1, 100))
        print(json.dumps(dict(t=t, key=key, ok=True, replicas=replicas)), flush=True)
        seq += 1
    except Exception as exc:
        print(json.dumps(dict(t=time.time(), ok=False, error=str(exc).split(" ")[0][:40])), flush=True)
        c = None
        time.sleep(0.1)
    time.sleep(0.02)
'''


def test_partitioned_master_refuses_writes_then_rejoins(steady_lab):
    lab = steady_lab
    old = lab.steady()
    work = lab.workload().start()
    # A client on the old master's side of the cut keeps writing to it (loopback inside its host).
    side = subprocess.Popen(['docker', 'exec', '-i', lab.container[old], 'python3', '-c', SIDE_WRITER, str(MAX_LAG + 10)]
                            + ([lab.ca_file_on_hosts] if lab.tls else []),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, universal_newlines=True)
    side.stdin.write(lab.creds['REDIS_PASSWORD'] + '\n')
    side.stdin.flush()
    time.sleep(2)
    # The cut happens somewhere inside `docker network disconnect` (a noticeable time on a busy host):
    # writes before its start may still reach a replica, none after its end can.
    t_cut_wall, t0 = time.time(), lab.disconnect(old)
    t_cut_done_wall = time.time()
    new = new_master(lab, old, timeout=60)
    writes_on(lab, work, new, t0)
    side.stdin.close()
    out = side.stdout.read()
    side.wait(timeout=MAX_LAG + 30)
    lab.connect(old)
    lab.wait_for('%s to become a replica of %s after the heal' % (old, new),
                 lambda: lab.role(old) == ('replica', '%s connected' % new), 90, 0.5)
    assert lab.steady(90) == new
    work.stop()
    report = lab.report(work)
    entries = [json.loads(line) for line in out.splitlines() if line.startswith('{')]
    acked_after_cut = [e for e in entries if e['ok'] and e['t'] > t_cut_wall]
    refusals = [e for e in entries if not e['ok'] and e['t'] > t_cut_wall and 'NOREPLICAS' in e['error']]
    assert refusals, 'the cut-off master never refused a write: %s' % entries[-3:]
    refused_after = refusals[0]['t'] - t_cut_done_wall
    # Redis counts a replica as good while its last ACK is at most max-lag whole seconds old
    # (server.unixtime), and re-counts good replicas once a second (replicationCron): the last ACK
    # arrives before the cut ends, so refusals start less than max-lag + 2 s after that; the side
    # writer sees it at its next write (SIDE_GAP).
    assert refused_after <= MAX_LAG + 2 + SIDE_GAP, \
        'refused writes %.2f s after the cut (max-lag %d s + 2 s + %.1f s)' % (refused_after, MAX_LAG, SIDE_GAP)
    assert not [e for e in entries if e['ok'] and e['t'] > refusals[0]['t']], 'accepted writes after refusing'
    # The side client's acknowledged writes: those a replica acknowledged must be on the new master.
    final = lab.node(new, timeout=5.0)
    side_missing = [e for e in entries if e['ok'] and not final.exists(e['key'])]
    final.close()
    lost_replicated = [e for e in side_missing if e['replicas'] >= 1]
    show('master partitioned (clients on its side)', report, dict(
        side_acked=len([e for e in entries if e['ok']]), side_acked_after_cut=len(acked_after_cut),
        side_lost_master_only=len(side_missing) - len(lost_replicated), side_lost_replicated=len(lost_replicated),
        cut_took_s=round(t_cut_done_wall - t_cut_wall, 2), refused_after_s=round(refused_after, 2)))
    assert not lost_replicated, 'side writes acknowledged by a replica were lost: %s' % lost_replicated[:3]
    assert all(e['replicas'] == 0 for e in acked_after_cut if e['t'] > t_cut_done_wall + 0.5)
    assert_invariants(report)


def test_old_master_restarted_as_master_gets_no_writes(steady_lab):
    lab = steady_lab
    old = lab.steady()
    lab.no_restart(old)
    work = lab.workload().start()
    time.sleep(2)
    t0 = lab.kill(old)
    new = new_master(lab, old)
    writes_on(lab, work, new, t0)
    # Start it with a configuration that says "master": the start-up guard is switched off.
    lab.sh(old, 'printf "[Service]\\nExecStartPre=\\nEnvironmentFile=\\n" > '
                '/run/systemd/system/redis-server.service.d/%s && systemctl daemon-reload' % labctl.DROPIN)
    lab.systemctl(old, 'start', 'redis-server')
    assert lab.role(old)[0] == 'master', 'the guard-less restart did not come up as master'
    refresh_names(lab, work)
    lab.wait_for('Sentinel to turn %s back into a replica' % old,
                 lambda: lab.role(old) == ('replica', '%s connected' % new), 60, 0.2)
    assert lab.steady(60) == new
    time.sleep(1)
    report = lab.finish(work, 'old master restarted as master')
    assert_invariants(report)
    reached = [e for e in work.ledger if e['t'] > t0 and e['node'] != new]
    assert not reached, 'writes reached a node other than the elected master: %s' % reached[:3]


def test_one_sentinel_down_then_master_killed(steady_lab):
    lab = steady_lab
    old = lab.steady()
    down = [s for s in lab.sentinels if s != old][0]
    lab.systemctl(down, 'stop', 'redis-sentinel')
    lab.no_restart(old)
    work = lab.workload().start()
    time.sleep(2)
    t0 = lab.kill(old)
    survivors = [s for s in lab.sentinels if s != down]
    new = lab.wait_for('the two remaining Sentinels naming a new master',
                       lambda: all(lab.sentinel_master(s) not in (None, old) for s in survivors)
                       and lab.sentinel_master(survivors[0]), 60)
    writes_on(lab, work, new, t0)
    work.stop()
    lab.restore()
    report = lab.report(work)
    show('one Sentinel down, then master killed', report)
    assert_invariants(report)
    assert new != old


def sentinel_gate(lab):
    """Run the sentinel_master_status module the way Ansible does (arguments in a 0600 file)."""
    args = dict(ANSIBLE_MODULE_ARGS=dict(
        sentinels=['%s:%d' % (lab.ip[s], labctl.SENTINEL_PORT) for s in lab.sentinels],
        login_password=lab.creds['SENTINEL_PASSWORD'], master_name=lab.master_name, tls=lab.tls,
        ca_certs=lab.ca_file if lab.tls else None,
        expected_sentinels=3, expected_replicas=2))
    with tempfile.NamedTemporaryFile('w', suffix='.json') as handle:
        os.chmod(handle.name, 0o600)
        json.dump(args, handle)
        handle.flush()
        env = labctl.ansible_env()
        env['PYTHONPATH'] = os.path.join(labctl.REPO, '.cache', 'collections')
        out = subprocess.check_output([os.path.join(labctl.REPO, '.venv', 'bin', 'python'), '-m',
                                       'ansible_collections.keybuzz.redis_ha.plugins.modules.sentinel_master_status',
                                       handle.name], env=env, universal_newlines=True)
    return json.loads(out)


def test_two_sentinels_down_no_failover_writes_continue(steady_lab):
    lab = steady_lab
    master = lab.steady()
    assert sentinel_gate(lab)['healthy'] is True
    down = [s for s in lab.sentinels if s != master]
    work = lab.workload().start()
    time.sleep(2)
    t0 = time.monotonic()
    for s in down:
        lab.systemctl(s, 'stop', 'redis-sentinel')
    time.sleep(DOWN_AFTER * 2 + 2)
    gate = sentinel_gate(lab)
    assert lab.role(master) == ('master', None), 'a failover happened without a Sentinel majority'
    for p in lab.haproxies:
        assert lab.health(p) == 200, '%s health endpoint is not 200' % p
        assert work.successes_since(time.monotonic() - 1, endpoint=p), 'no recent write through %s' % p
    report = lab.finish(work, 'two Sentinels down', dict(gate_reason=gate['reason']), master=master)
    assert gate['healthy'] is False
    assert 'no strict majority' in gate['reason'] or 'CKQUORUM failed' in gate['reason'], gate['reason']
    assert report['missing']['missing_replicated'] == 0 and not report['two_nodes_at_once']
    assert not report['agreement']['single_master']  # two Sentinels cannot answer: no agreed master
    after = wl.unavailability([e for e in work.events if e[0] >= t0], t0, work.stopped)
    assert after['overall']['longest'] < 1.0, 'writes stopped for %.2f s' % after['overall']['longest']
    assert set(e['node'] for e in work.ledger) == {master}


def test_one_haproxy_down_other_keeps_serving(steady_lab):
    lab = steady_lab
    master = lab.steady()
    down, up = lab.haproxies
    work = lab.workload().start()
    time.sleep(2)
    t0 = lab.systemctl(down, 'stop', 'haproxy')
    codes = []
    for _ in range(10):
        codes.append(lab.health(up))
        time.sleep(0.5)
    assert lab.health(down) is None
    report = lab.finish(work, 'one HAProxy node down', dict(health_codes=sorted(set(codes))))
    assert codes == [200] * 10, 'health of %s: %s' % (up, codes)
    ok_up = wl.unavailability([e for e in work.events if e[1] == up and e[0] >= t0], t0, work.stopped)
    assert ok_up['overall']['longest'] < 1.0
    assert not [e for e in work.events if e[1] == up and not e[3]], 'writes through %s failed' % up
    assert work.successes_since(t0, endpoint=up, node=master)
    assert_invariants(report)


def test_site_rerun_after_failover_changes_nothing(steady_lab):
    lab = steady_lab
    old = lab.steady()
    client = lab.sentinel(lab.sentinels[0])
    client.execute_command('SENTINEL', 'FAILOVER', lab.master_name)
    client.close()
    new = new_master(lab, old)
    assert lab.steady(60) == new
    pids = lab.pids()
    work = lab.workload().start()
    result = lab.playbook('site.yml', '-vvv')  # the most verbose output must not hold a password either
    report = lab.finish(work, 'site.yml re-run after a failover', dict(recap=recap(result)))
    assert_nothing_changed(lab, result)
    assert lab.steady(30) == new, 'the re-run flipped the master back'
    assert lab.pids() == pids, 'the re-run restarted a service'
    assert report['failures'] == 0, report['error_classes']
    assert_invariants(report)
    assert_no_secret(lab, result.stdout)
