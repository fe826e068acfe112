# -*- coding: utf-8 -*-
# Copyright: (c) 2026, KeyBuzz (@keybuzz)
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""plugins/module_utils/ha_rules.py: the one implementation of every decision (who is master, may
this node start as master, may this proxy route, is the fence fast enough), case by case."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import sys

import pytest

from kblab import REPO_ROOT

# The file itself, not the package: the roles also install it alone on the hosts.
sys.path.insert(0, os.path.join(REPO_ROOT, 'plugins', 'module_utils'))
import ha_rules as R  # noqa: E402

A, B, C = ('10.0.0.1', 6379), ('10.0.0.2', 6379), ('10.0.0.3', 6379)


def view(master, epoch=None, source='test'):
    return {'master': master, 'epoch': epoch, 'source': source}


# --- addresses and majorities -------------------------------------------------------------------

def test_address_forms():
    assert R.address('10.0.0.1:6379') == A
    assert R.address(['10.0.0.1', '6379']) == A
    assert R.address(None) is None and R.address('') is None and R.address(('', 1)) is None
    assert R.text(A) == '10.0.0.1:6379' and R.text(None) is None


def test_majority_counts_the_configured_sentinels_not_those_that_answered():
    assert [R.majority(n) for n in (1, 2, 3, 4, 5, 7)] == [1, 2, 2, 3, 3, 4]
    assert R.sentinel_majority([A, A, B], 3) == A
    assert R.sentinel_majority([A, B, C], 3) is None
    # One answer of three configured decides nothing, even if it is the only one that answered.
    assert R.sentinel_majority([A], 3) is None
    assert R.sentinel_majority([A, None, None], 3) is None
    assert R.sentinel_majority([A, A], 3) == A
    assert R.sentinel_majority([A, A, B, B, None], 5) is None
    assert R.sentinel_majority(['10.0.0.1:6379', ['10.0.0.1', '6379']], 3) == A
    # More answers than configured (a stale configured count): the answers count.
    assert R.sentinel_majority([A, B, B, C, C], 3) is None


def test_newest_view_prefers_the_highest_epoch_and_refuses_a_tie():
    assert R.newest_view([view('10.0.0.1:6379', 3), view('10.0.0.2:6379', 5)])['master'] == '10.0.0.2:6379'
    # A view without an epoch (a bootstrap record) loses against any epoch.
    assert R.newest_view([view('10.0.0.1:6379', None), view('10.0.0.2:6379', 0)])['master'] == '10.0.0.2:6379'
    assert R.newest_view([view('10.0.0.1:6379', 4), view('10.0.0.2:6379', 4)]) is None
    assert R.newest_view([view('10.0.0.1:6379', 4), view('10.0.0.1:6379', 4, 'other')])['master'] == '10.0.0.1:6379'
    assert R.newest_view([view(None), view(None, 3)]) is None
    assert R.newest_view([]) is None


# --- who is master (playbooks) ------------------------------------------------------------------

def test_choose_master_for_a_playbook_run():
    # The Sentinel majority wins over the inventory and over a node that claims master.
    assert R.choose_master('redis-02', ['redis-01'], 'redis-01', True) == ('redis-02', 'a Sentinel majority')
    assert R.choose_master(None, ['redis-03'], 'redis-01', True)[0] == 'redis-03'
    # Two nodes claim master and no majority: never guess.
    master, why = R.choose_master(None, ['redis-01', 'redis-02'], 'redis-01', True)
    assert master is None and 'redis-01, redis-02' in why
    # Nothing answers: the inventory only on a first deploy.
    assert R.choose_master(None, [], 'redis-01', False) == ('redis-01', 'the inventory (nothing deployed yet: first deploy)')
    master, why = R.choose_master(None, [], 'redis-01', True)
    assert master is None and 'deployed before' in why


# --- may this node start as master (start-up guard) ---------------------------------------------

def test_guard_follows_a_majority_of_the_configured_sentinels():
    answers = [view('10.0.0.2:6379', 7), view('10.0.0.2:6379', 7), view('10.0.0.1:6379', 6)]
    assert R.startup_role(A, 3, answers, [], True, A) == ('replica', B, 'named by 2 of 3 Sentinels')
    assert R.startup_role(B, 3, answers, [], True, A)[:2] == ('master', B)


def test_guard_uses_the_inventory_on_a_true_first_deploy_only():
    role, master, why = R.startup_role(B, 3, [], [], False, A)
    assert (role, master) == ('replica', A) and why.startswith('bootstrap master from the inventory')
    assert R.startup_role(A, 3, [], [], False, A)[:2] == ('master', A)
    # Deployed before, no Sentinel and nothing recorded: wait, never start as the inventory's master.
    role, master, why = R.startup_role(A, 3, [], [], True, A)
    assert (role, master) == ('wait', None) and 'waiting for a Sentinel majority' in why


def test_guard_never_reads_a_refused_password_as_nothing_running():
    # The case: new passwords minted by a controller without redis.env; every Sentinel refuses them.
    role, master, why = R.startup_role(A, 3, [], [], False, A, refused=3)
    assert role == 'wait' and '3 refused the password' in why
    # With a local record it follows that record instead of the inventory.
    role, master, _ = R.startup_role(A, 3, [], [view('10.0.0.2:6379', 4, 'this host\'s Sentinel')], True, A, refused=3)
    assert (role, master) == ('replica', B)


def test_guard_cold_start_after_a_failover_follows_the_newest_record():
    # Site power cycle after a failover to B: this node (A, the inventory's master) boots before
    # the Sentinels listen. Its Sentinel's file says B at epoch 5, its own last start said A at 4.
    local = [view('10.0.0.2:6379', 5, "this host's Sentinel configuration"), view('10.0.0.1:6379', 4, 'last start')]
    role, master, why = R.startup_role(A, 3, [], local, True, A)
    assert (role, master) == ('replica', B)
    assert 'no Sentinel majority (0 of 3 answered)' in why and 'epoch 5' in why
    # B itself boots first: the same records make it master.
    assert R.startup_role(B, 3, [], local, True, A)[:2] == ('master', B)


def test_guard_with_a_minority_answer_takes_the_newest_of_answers_and_records():
    # One Sentinel answers (a stale one, epoch 4, naming A); the local file knows epoch 5 (B).
    answers = [view('10.0.0.1:6379', 4, 'Sentinel s1')]
    local = [view('10.0.0.2:6379', 5, "this host's Sentinel configuration")]
    assert R.startup_role(C, 3, answers, local, True, A)[:2] == ('replica', B)
    # Two equally recent views that disagree: nothing can tell them apart, wait.
    tie = [view('10.0.0.1:6379', 5, 'Sentinel s1')]
    assert R.startup_role(C, 3, tie, local, True, A)[0] == 'wait'


def test_guard_on_a_first_deploy_where_a_sentinel_answers_without_a_majority():
    # Not deployed, but a Sentinel answers (a scale-out node, the set half down): no bootstrap, follow it.
    answers = [view('10.0.0.2:6379', 2, 'Sentinel s2')]
    assert R.startup_role(C, 3, answers, [], False, A)[:2] == ('replica', B)
    assert R.startup_role(C, 3, [view(None)], [], False, A)[0] == 'wait'


# --- may this proxy route -----------------------------------------------------------------------

NODES = ['redis-01', 'redis-02', 'redis-03']


def test_route_to_the_majority_master_only_when_its_own_check_passes():
    assert R.routable_nodes(NODES, ['redis-01'], ['redis-01'], ['redis-01']) == ['redis-01']
    assert R.routable_nodes(NODES, ['redis-01'], ['redis-01'], []) == ['redis-01']  # replicas down: still the master
    assert R.routable_nodes(NODES, ['redis-01'], ['redis-02'], ['redis-02']) == []
    # A rogue role:master node next to the majority's master gets nothing.
    assert R.routable_nodes(NODES, ['redis-01'], ['redis-01', 'redis-03'], ['redis-01']) == ['redis-01']
    # Two majorities (a stale check state right after a switch): nothing.
    assert R.routable_nodes(NODES, ['redis-01', 'redis-02'], ['redis-01', 'redis-02'], []) == []


def test_without_a_majority_route_only_to_a_sole_master_that_is_still_followed():
    # Two Sentinels down: the master still has its replicas, writes go on.
    assert R.routable_nodes(NODES, [], ['redis-01'], ['redis-01']) == ['redis-01']
    # The minority side of a partition: the master lost its replicas (fenced by Redis): stop routing.
    assert R.routable_nodes(NODES, [], ['redis-01'], []) == []
    # Two nodes say role:master: never one of them.
    assert R.routable_nodes(NODES, [], ['redis-01', 'redis-02'], ['redis-01', 'redis-02']) == []
    assert R.routable_nodes(NODES, [], ['redis-01'], ['redis-01'], sole_master=False) == []


# --- is the fence fast enough -------------------------------------------------------------------

def test_fence_arithmetic_of_the_shipped_defaults():
    # down-after 5000 ms, min-replicas-to-write 1, max-lag 2: refused at most 4 s after the cut.
    assert R.fence_seconds(2) == 4
    assert R.fence_problems(5000, 1, 2) == []
    assert R.max_lag_for(5000) == 2
    # The old default (max-lag 10) let the old master write for up to 12 s: after an election at 5 s.
    problems = R.fence_problems(5000, 1, 10)
    assert len(problems) == 1 and 'up to 12s after the cut' in problems[0] and '5.0s' in problems[0]
    assert R.fence_problems(5000, 1, 3) != []  # 3 + 2 + 0.5 > 5
    assert R.fence_problems(6000, 1, 3) == []
    assert R.max_lag_for(30000) == 27


@pytest.mark.parametrize('to_write,lag', [(0, 2), (1, 0)])
def test_fence_disabled_is_a_problem(to_write, lag):
    assert R.fence_problems(5000, to_write, lag)


def test_a_command_is_not_sent_on_a_view_older_than_the_sentinels():
    assert R.view_changed('redis-01', 'redis-01') is None
    assert R.view_changed('redis-01', None) is None  # nothing contradicts the plan
    why = R.view_changed('redis-01', 'redis-02')
    assert 'planned redis-01' in why and 'now names redis-02' in why


def test_a_partition_side_with_the_master_and_its_needed_replicas_holds_a_sentinel_majority():
    three = ['redis-01', 'redis-02', 'redis-03']
    assert R.split_brain_problems(three, three, 1) == []
    five = three + ['redis-04', 'redis-05']
    # 5 nodes: master + 1 replica = 2 of 5 Sentinels; the other 3 can elect while it still writes.
    problems = R.split_brain_problems(five, five, 1)
    assert len(problems) == 1 and 'needs at least 2' in problems[0]
    assert R.split_brain_problems(five, five, 2) == []
    # Sentinels elsewhere (e.g. on the HAProxy hosts): nothing ties them to the master's side.
    problems = R.split_brain_problems(three, ['redis-01', 'redis-02', 'haproxy-01'], 1)
    assert len(problems) == 1 and 'not exactly the Redis hosts' in problems[0]


# --- may this run change the cluster (the cluster lock) ------------------------------------------

def lock(run_id, expires, **kw):
    record = dict(id=run_id, expires=expires, purpose='site.yml', holder='alice@bastion', pid=42,
                  started_text='2026-12-05 21:00:00 UTC', controller='bastion')
    record.update(kw)
    return record


def test_a_free_lock_is_taken_and_the_holder_renews_it():
    assert R.lock_decision(None, 'run-a', 100)[0] == 'acquire'
    assert R.lock_decision({}, 'run-a', 100)[0] == 'acquire'
    assert R.lock_decision(lock('run-a', 50), 'run-a', 100)[0] == 'renew'  # even expired: still this run's


def test_a_lock_held_by_another_run_is_refused_with_its_holder():
    action, why = R.lock_decision(lock('run-a', 1000), 'run-b', 100)
    assert action == 'refuse'
    assert 'site.yml run by alice@bastion (pid 42)' in why and 'lock id run-a' in why and 'expires in 900 s' in why


def test_an_expired_lock_is_taken_over():
    action, why = R.lock_decision(lock('run-a', 100), 'run-b', 100)
    assert action == 'take_over' and 'expired 0 s ago' in why


def test_only_the_named_lock_is_broken():
    assert R.lock_decision(lock('run-a', 1000), 'run-b', 100, take_over='run-a')[0] == 'take_over'
    # A newer lock (someone else took it since the refusal was read) is still refused.
    assert R.lock_decision(lock('run-c', 1000), 'run-b', 100, take_over='run-a')[0] == 'refuse'


def test_a_lock_whose_run_is_over_is_taken_over_only_from_its_controller():
    record = lock('run-a', 1000)
    assert R.lock_run_over(record, 'bastion', alive=False)
    assert not R.lock_run_over(record, 'bastion', alive=True)
    assert not R.lock_run_over(record, 'laptop', alive=False)  # another controller cannot tell
    assert not R.lock_run_over(None, 'bastion', alive=False)
    assert R.lock_decision(record, 'run-b', 100, run_over=True)[0] == 'take_over'


def answer(host, action, run_id='run-b'):
    return dict(host=host, action=action, why='held by x' if action == 'refuse' else 'ok',
                lock=lock(run_id, 1000))


def test_the_lock_is_held_with_a_strict_majority_of_the_lock_hosts():
    hosts = ['r1', 'r2', 'r3']
    held = R.lock_outcome([answer('r1', 'acquire'), answer('r2', 'renew'), dict(host='r3', error='unreachable')], hosts)
    assert held['held'] and held['granted'] == ['r1', 'r2'] and held['message'] == ''
    one = R.lock_outcome([answer('r1', 'take_over'), answer('r2', 'refuse'), answer('r3', 'refuse')], hosts)
    assert not one['held'] and one['granted'] == ['r1'] and one['holders'] == ['held by x']
    assert 'held on 1 of 3 lock hosts (r1), 2 needed' in one['message'] and 'another run holds it: held by x' in one['message']
    down = R.lock_outcome([answer('r1', 'acquire'), dict(host='r2', error='unreachable'),
                           dict(host='r3', error='unreachable')], hosts)
    assert not down['held'] and 'not asked: r2: unreachable; r3: unreachable' in down['message']


def test_two_runs_can_never_both_hold_the_lock():
    # Whatever each lock host granted to whom (a host grants one run at a time), at most one run
    # gets a majority of 3 or 5 hosts.
    import itertools
    for count in (3, 5):
        hosts = ['h%d' % i for i in range(count)]
        for grants in itertools.product(['a', 'b', None], repeat=count):
            holders = [run for run in 'ab'
                       if R.lock_outcome([answer(h, 'acquire' if g == run else 'refuse') for h, g in zip(hosts, grants)],
                                         hosts)['held']]
            assert len(holders) <= 1, (grants, holders)


# --- reset_problems: has a Sentinel forgotten the nodes that left ------------------------------

def _view(master='10.0.0.1', sentinels=3, replicas=2, healthy=None, error=None):
    return dict(master_host=master, master_port=6379 if master else None, known_sentinels=sentinels,
                known_replicas=replicas, healthy_replicas=replicas if healthy is None else healthy, error=error)


def test_reset_done_when_the_sentinel_knows_exactly_the_nodes_that_stay():
    views = [_view(), _view(sentinels=5, replicas=4, healthy=2), _view(sentinels=5, replicas=4, healthy=2)]
    assert R.reset_problems(views, 0, 3, 2) == []
    # The others, not reset yet, still list the removed nodes: only the reset one is judged.
    assert R.reset_problems(views, 1, 3, 2) == ['it knows 5 sentinels, expected 3', 'it knows 4 replicas, expected 2']


def test_reset_not_done_while_the_sentinel_relearns_or_names_another_master():
    relearning = [_view(sentinels=1, replicas=0), _view(), _view()]
    assert R.reset_problems(relearning, 0, 3, 2) == [
        'it knows 1 sentinels, expected 3', 'it knows 0 replicas, expected 2', 'it knows 0 healthy replicas, expected 2']
    other = [_view(master='10.0.0.2'), _view(), _view()]
    assert R.reset_problems(other, 0, 3, 2) == ['it names 10.0.0.2:6379, the majority 10.0.0.1:6379']
    no_majority = [_view(master='10.0.0.2'), _view(master='10.0.0.3'), _view(error='sentinel unreachable')]
    assert R.reset_problems(no_majority, 0, 3, 2) == ['no strict majority of the 3 sentinels names a master']
    assert R.reset_problems(no_majority, 2, 3, 2) == ['sentinel unreachable']
    assert R.reset_problems([], 0, 3, 2) == ['no view of sentinel #0']


def test_reset_not_done_while_a_replica_it_knows_is_down():
    assert R.reset_problems([_view(healthy=1), _view(), _view()], 0, 3, 2) == ['it knows 1 healthy replicas, expected 2']
