# -*- coding: utf-8 -*-
# Copyright: (c) 2026, KeyBuzz (@keybuzz)
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The decision rules of keybuzz.redis_ha, in one place: who is master, may this node start as
master, may this proxy route, is a fence fast enough. Pure functions (no I/O, no Ansible, the
standard library only), so that every caller decides the same way:

* the modules (``redis_switchover`` among them) and the filter plugin ``keybuzz.redis_ha.ha_rules``
  (playbooks, roles);
* the start-up guard ``redis-start-role`` and the HAProxy watcher, on the hosts: the roles install
  this very file beside them (``ha_rules.py``), never a copy.

Addresses are ``(host, port)`` tuples (port an int) or ``None``; an address given as the
text ``host:port`` is accepted everywhere and normalised by ``address()``.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

# Redis counts a replica's lag in whole seconds (server.unixtime) and re-counts the good replicas
# once a second (replicationCron): an isolated master refuses writes at most max-lag + this many
# seconds after the last replica acknowledgement it received (docs/failover.md).
FENCE_SLACK_S = 2
# Margin kept between that moment and the earliest moment a Sentinel majority can elect another
# master (down-after after the cut): Sentinel's and Redis's timers drift by tens of ms.
FENCE_MARGIN_S = 0.5


def address(value):
    """``'host:port'``, ``(host, port)`` or ``None`` -> ``(host, int(port))`` or ``None``."""
    if value is None or value == '':
        return None
    if isinstance(value, (list, tuple)):
        if len(value) != 2 or value[0] in (None, ''):
            return None
        return (str(value[0]), int(value[1]))
    host, sep, port = str(value).rpartition(':')
    if not sep or not host:
        return None
    return (host, int(port))


def text(addr):
    """``(host, port)`` -> ``'host:port'`` (``None`` -> ``None``)."""
    addr = address(addr)
    return None if addr is None else '%s:%d' % addr


def majority(configured):
    """Smallest strict majority of ``configured`` Sentinels."""
    return int(configured) // 2 + 1


# --- who is master ------------------------------------------------------------------------------

def sentinel_majority(answers, configured):
    """The master address a strict majority of the CONFIGURED Sentinels names, or ``None``.

    ``answers``: one address (or ``None``: unreachable, refused, unknown master) per Sentinel that
    was asked. A Sentinel that was not asked or did not answer counts against the majority: with
    3 configured, 2 must agree even when only 2 were reachable.
    """
    configured = max(int(configured), len(answers))
    counts = {}
    for answer in answers:
        addr = address(answer)
        if addr is not None:
            counts[addr] = counts.get(addr, 0) + 1
    for addr, count in sorted(counts.items()):
        if count >= majority(configured):
            return addr
    return None


def newest_view(views):
    """The most recent of several partial views: ``views`` holds dicts with ``master`` (address)
    and ``epoch`` (Sentinel's config epoch, ``None`` when unknown) and ``source`` (text).
    Returns the view with the highest epoch, or ``None`` when no view names a master or when two
    views of that epoch name different masters (nothing can tell them apart)."""
    known = [v for v in views if address(v.get('master')) is not None]
    if not known:
        return None
    top = max(int(v['epoch']) if v.get('epoch') is not None else -1 for v in known)
    best = [v for v in known if (int(v['epoch']) if v.get('epoch') is not None else -1) == top]
    if len(set(address(v['master']) for v in best)) != 1:
        return None
    return best[0]


def choose_master(sentinel_master, live_masters, initial_master, deployed):
    """Which node is master for a playbook run (site.yml's discovery, a new Sentinel's monitor).

    ``sentinel_master``: the node a Sentinel majority names (``sentinel_majority``), or ``None``;
    ``live_masters``: the nodes that answered ROLE/INFO with role master; ``initial_master``: the
    inventory's ``redis_node_initial_role: master`` host; ``deployed``: any node shows the
    collection ran there before (ACL file, data, a Sentinel configuration, a refused password).
    Returns ``(node or None, why)``; ``None`` means "cannot tell: stop, change nothing".
    """
    live = sorted(set(live_masters))
    if sentinel_master is not None:
        return sentinel_master, 'a Sentinel majority'
    if len(live) == 1:
        return live[0], 'the only node that reports role master'
    if len(live) > 1:
        return None, 'nodes %s all report role master and no Sentinel majority names one' % ', '.join(live)
    if not deployed:
        return initial_master, 'the inventory (nothing deployed yet: first deploy)'
    return None, ('no Sentinel majority answers and no node reports role master, on a cluster that was '
                  'deployed before: the inventory\'s initial master may be stale')


# --- may this node start as master --------------------------------------------------------------

def startup_role(me, configured, answers, local_views, deployed, bootstrap_master, refused=0):
    """The start-up guard's decision, before redis-server starts: ``(role, master, why)`` with
    ``role`` one of ``'master'``, ``'replica'`` (of ``master``) or ``'wait'`` (start nothing yet).

    ``me``: this node's address; ``configured``: number of configured Sentinels; ``answers``:
    the views of the Sentinels that answered, dicts ``{'master', 'epoch', 'source'}``;
    ``local_views``: what this host recorded itself (its Sentinel's configuration file, the
    guard's own record of its last decision), same shape; ``deployed``: the node ran before
    (marker, data, records); ``refused``: Sentinels that refused our password (something runs).

    1. A majority of the configured Sentinels names a master: follow it.
    2. First deploy only (never deployed, no Sentinel answers or refuses): the inventory's
       bootstrap master.
    3. Otherwise the newest view known (highest config epoch) among the answering Sentinels and
       the local records: follow it. A stale master started this way refuses writes
       (min-replicas-to-write) until a replica follows it, and HAProxy routes to no node that
       no Sentinel majority names.
    4. No view at all: wait (never start as master on a guess).
    """
    me = address(me)
    named = sentinel_majority([a.get('master') for a in answers], configured)
    if named is not None:
        votes = sum(1 for a in answers if address(a.get('master')) == named)
        return _role(me, named, 'named by %d of %d Sentinels' % (votes, configured))
    if not deployed and not answers and not refused:
        return _role(me, address(bootstrap_master), 'bootstrap master from the inventory (first deploy: never '
                                                    'deployed, no Sentinel answers)')
    view = newest_view(list(answers) + list(local_views))
    why = 'no Sentinel majority (%d of %d answered%s)' % (len(answers), configured,
                                                          ', %d refused the password' % refused if refused else '')
    if view is None:
        return 'wait', None, why + ' and no recorded master to follow: waiting for a Sentinel majority'
    epoch = '' if view.get('epoch') is None else ', epoch %s' % view['epoch']
    return _role(me, address(view['master']), '%s: the newest known view (%s%s)' % (why, view.get('source'), epoch))


def _role(me, master, why):
    if master == me:
        return 'master', master, why
    return 'replica', master, why


# --- may this proxy route -----------------------------------------------------------------------

def routable_nodes(nodes, held_majority, own_up, followed, sole_master=True):
    """Names of the nodes a proxy may route to. Mirrors haproxy.cfg's rules, which HAProxy itself
    applies; the watcher and its tests use this function.

    ``nodes``: node names; ``held_majority``: names that a majority of the configured Sentinels
    name (as the proxy sees them); ``own_up``: names whose own check says role:master;
    ``followed``: names that say role:master AND have at least one replica within
    min-replicas-max-lag (the node still accepts writes: it is not fenced by Redis).

    * Exactly one node holds a majority and its own check passes: that node.
    * No node holds a majority (Sentinels lost, or this proxy cut off from their majority) and
      ``sole_master``: the only node whose own check passes, and only while it is followed. A
      master cut off with this proxy stops being followed before a majority elsewhere can elect
      another master (``fence_problems``), so the proxy stops routing (and its health fails) in
      time.
    * Anything else: nothing (two majorities = a stale view; two role:master = no guess).
    """
    held = [n for n in nodes if n in held_majority]
    if len(held) == 1:
        return held if held[0] in own_up else []
    if held or not sole_master:
        return []
    up = [n for n in nodes if n in own_up]
    return up if len(up) == 1 and up[0] in followed else []


# --- is the fence fast enough -------------------------------------------------------------------

def fence_seconds(max_lag):
    """Latest moment (seconds after the last replica ACK) an isolated master refuses writes."""
    return int(max_lag) + FENCE_SLACK_S


def fence_problems(down_after_ms, min_replicas_to_write, max_lag, margin=FENCE_MARGIN_S):
    """Why a master cut off from its replicas could still accept writes after a Sentinel
    majority elects another master ([] when it cannot).

    The majority side can elect a new master ``down_after_ms`` after the cut at the earliest;
    the old master refuses writes at most ``fence_seconds(max_lag)`` after it (the last ACK
    arrives before the cut). The fence must come first, with ``margin`` seconds to spare.
    """
    if int(min_replicas_to_write) < 1:
        return ['min-replicas-to-write is %s: an isolated master never refuses writes, so writes it accepts '
                'after a failover are lost' % min_replicas_to_write]
    if int(max_lag) < 1:
        return ['min-replicas-max-lag is %s: Redis then never counts a replica as good (writes always '
                'refused)' % max_lag]
    latest = fence_seconds(max_lag) + margin
    if latest * 1000 > int(down_after_ms):
        return ['min-replicas-max-lag %ss lets an isolated master accept writes up to %ss after the cut '
                '(+ %ss margin), but Sentinel can elect another master %.1fs after it (down-after-milliseconds '
                '%s)' % (max_lag, fence_seconds(max_lag), margin, int(down_after_ms) / 1000.0, down_after_ms)]
    return []


def split_brain_problems(redis_hosts, sentinel_hosts, min_replicas_to_write):
    """Why a partition could leave an old master taking writes while the other side elects a new
    one, whatever the timing ([] when it cannot).

    The old master keeps accepting writes while ``min_replicas_to_write`` replicas follow it; the
    other side can elect only with a majority of the Sentinels. With one Sentinel on every Redis
    host and nowhere else, the master and the replicas it needs carry min-replicas-to-write + 1
    Sentinels: when that is a majority, the other side cannot have one.
    """
    redis_hosts, sentinel_hosts = sorted(set(redis_hosts)), sorted(set(sentinel_hosts))
    if redis_hosts != sentinel_hosts:
        return ['the Sentinel hosts (%s) are not exactly the Redis hosts (%s): a side holding the master and the '
                'replicas it needs may lack a Sentinel majority that the other side then has'
                % (', '.join(sentinel_hosts), ', '.join(redis_hosts))]
    needed = majority(len(sentinel_hosts)) - 1
    if int(min_replicas_to_write) < needed:
        return ['min-replicas-to-write is %s: a master followed by that many replicas carries only %s of the %d '
                'Sentinels, so the other side of a partition can elect another master while it still accepts writes '
                '(needs at least %d)' % (min_replicas_to_write, int(min_replicas_to_write) + 1, len(sentinel_hosts), needed)]
    return []


def max_lag_for(down_after_ms, margin=FENCE_MARGIN_S):
    """Largest min-replicas-max-lag that fences before the earliest election (0 when none does)."""
    return max(0, int((int(down_after_ms) / 1000.0 - margin) - FENCE_SLACK_S))


# --- is a command's view still current -----------------------------------------------------------

def view_changed(planned_master, current_sentinel_master):
    """Why a command planned against ``planned_master`` must not be sent now (text), or ``None``.

    ``current_sentinel_master``: what a Sentinel majority names right before the command (``None``
    when no majority answers: the planned view cannot be confirmed, but nothing contradicts it).
    """
    if current_sentinel_master is not None and current_sentinel_master != planned_master:
        return ('the master changed since the run started (planned %s, a Sentinel majority now names %s)'
                % (planned_master, current_sentinel_master))
    return None


# --- has a Sentinel forgotten the nodes that left ------------------------------------------------

def reset_problems(views, index, sentinels, replicas):
    """Why the Sentinel ``views[index]`` has not yet relearned exactly the cluster that stays after a
    SENTINEL RESET ([] once it has); the next Sentinel may be reset only then.

    ``views`` are sentinel_master_status entries of the Sentinels that stay (keys master_host,
    master_port, known_sentinels, known_replicas, healthy_replicas, error), ``sentinels`` and
    ``replicas`` their expected counts. The Sentinel must name the master a strict majority names
    and know exactly ``sentinels`` Sentinels (itself included) and ``replicas`` replicas, all healthy:
    a removed node still listed would stay in its lists for good, a missing one means it is still
    relearning.
    """
    views = list(views or [])
    names = [(v.get('master_host'), v.get('master_port')) if v.get('master_host') else None for v in views]
    agreed = sentinel_majority(names, len(views))
    if int(index) >= len(views):
        return ['no view of sentinel #%s' % index]
    view = views[int(index)]
    problems = []
    if view.get('error'):
        problems.append(view['error'])
    elif agreed is None:
        problems.append('no strict majority of the %d sentinels names a master' % len(views))
    elif names[int(index)] != agreed:
        problems.append('it names %s, the majority %s' % (text(names[int(index)]) if names[int(index)] else 'no master', text(agreed)))
    for key, want, what in (('known_sentinels', sentinels, 'sentinels'), ('known_replicas', replicas, 'replicas'),
                            ('healthy_replicas', replicas, 'healthy replicas')):
        if not view.get('error') and view.get(key) != int(want):
            problems.append('it knows %s %s, expected %d' % (view.get(key), what, int(want)))
    return problems


# --- may this run change the cluster (the cluster lock) ------------------------------------------
#
# Playbooks that change topology or restart services hold one lock for their whole run: a record
# on each lock host (the Redis hosts), taken in host order; the run holds the lock while a strict
# majority of the lock hosts carry its record (two runs cannot both hold a majority). A record
# names its run (``id``), who started it (``holder``, ``controller``, ``pid``), what for
# (``purpose``), when (``started``) and until when it stands (``expires``, the lock host's clock:
# every host compares with its own clock, so clock skew between hosts does not matter).

def lock_decision(existing, run_id, now, take_over=None, run_over=False):
    """What a run (``run_id``) may do with a lock host's record ``existing`` (``None``: no record)
    at ``now`` (the lock host's clock): ``(action, why)`` with ``action`` one of

    * ``'acquire'``: no record;
    * ``'renew'``: the record is this run's;
    * ``'take_over'``: the record is stale (expired, its run is over: ``run_over``, decided on the
      controller that started it) or it is the one the operator asked to break (``take_over``,
      its id: a newer lock by someone else is still refused);
    * ``'refuse'``: another run holds it (``why`` names it).
    """
    if not existing:
        return 'acquire', 'no lock'
    if existing.get('id') == run_id:
        return 'renew', 'this run holds the lock'
    expires = float(existing.get('expires') or 0)
    if expires <= now:
        return 'take_over', 'the lock of %s expired %d s ago' % (lock_holder_text(existing), now - expires)
    if run_over:
        return 'take_over', 'the run that held the lock (%s) is over' % lock_holder_text(existing)
    if take_over and existing.get('id') == take_over:
        return 'take_over', 'broken on request (cluster_lock_break=%s): %s' % (take_over, lock_holder_text(existing))
    return 'refuse', 'held by %s, expires in %d s' % (lock_holder_text(existing), expires - now)


def lock_holder_text(record):
    """One line naming the run that holds ``record``."""
    return '%s run by %s (pid %s), started %s, lock id %s' % (
        record.get('purpose') or 'a playbook', record.get('holder') or 'someone', record.get('pid') or '?',
        record.get('started_text') or '?', record.get('id') or '?')


def lock_run_over(record, controller, alive):
    """Whether the run that wrote ``record`` is known to be over: it ran on ``controller`` (this
    controller) and ``alive`` (whether its process still runs there) is false. From another
    controller nothing can tell: the record stands until it expires or is broken."""
    return bool(record) and record.get('controller') == controller and not alive


def lock_outcome(answers, lock_hosts):
    """Does the run hold the cluster lock? ``answers``: one dict per lock host asked, with ``host``
    and either ``action`` (lock_decision's, as the host applied it) and ``lock`` (the record that
    stands there now), or ``error`` (unreachable, failed). Returns a dict: ``held``; ``granted``
    (hosts that carry this run's record, to give back when not held); ``taken_over`` (why, for each
    stale lock replaced); ``holders`` (one line per other run that holds records); ``message`` (why
    not held, '' when held).
    """
    hosts = sorted(set(lock_hosts))
    need = majority(len(hosts)) if hosts else 1
    granted = [a['host'] for a in answers if a.get('action') in ('acquire', 'renew', 'take_over')]
    taken_over = []
    for a in answers:
        if a.get('action') == 'take_over' and a.get('why') not in taken_over:
            taken_over.append(a.get('why'))
    refused = [a for a in answers if a.get('action') == 'refuse']
    errors = ['%s: %s' % (a['host'], a['error']) for a in answers if a.get('error')]
    holders = []
    for a in refused:
        line = a.get('why') or lock_holder_text(a.get('lock') or {})
        if line not in holders:
            holders.append(line)
    held = len(granted) >= need
    message = ''
    if not held:
        parts = ['the cluster lock is held on %d of %d lock hosts (%s), %d needed'
                 % (len(granted), len(hosts), ', '.join(granted) or 'none', need)]
        if holders:
            parts.append('another run holds it: %s' % '; '.join(holders))
        if errors:
            parts.append('not asked: %s' % '; '.join(errors))
        message = '. '.join(parts)
    return dict(held=held, granted=granted, taken_over=taken_over, holders=holders, need=need, message=message)
