# -*- coding: utf-8 -*-
# Copyright: (c) 2026, KeyBuzz (@keybuzz)
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Password rotation without restarts (playbooks/rotate_credentials.yml), on loopback.

1. Redis: a users.acl rendered from the role's template with two hashes per user, applied as the
   role does it (redis_acl_user per user of the file), accepts both passwords; the file without
   the old hashes refuses the old ones, keeps the clients already connected (the replication link
   included: it is never cut), and a replica whose masterauth was changed with redis_config (as the
   role does it) resyncs with the new password.
2. Sentinel 7.0 (which has no CONFIG SET requirepass): ACL SETUSER default with two hashes, then
   SENTINEL CONFIG SET sentinel-pass, keeps three Sentinels linked and the quorum reachable while
   their links are cut and re-made with the new password; a restarted Sentinel accepts only the
   new password although sentinel.conf still says requirepass <old>.
3. playbooks/rotate_credentials.yml itself (no HAProxy host; a stand-in systemctl) rotates every
   password of 3 Redis nodes and 3 Sentinels (127.X.Y.11-13, configured from the role templates)
   with no restart; the credentials part of site.yml between the phases changes nothing; finish
   refuses the old passwords; no password is printed.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time

import jinja2
import pytest
import redis
import yaml
from redis.backoff import NoBackoff
from redis.retry import Retry

from ansible_collections.keybuzz.redis_ha.plugins.filter.acl_file_users import acl_file_users
from ansible_collections.keybuzz.redis_ha.plugins.modules import redis_acl_user, redis_config

from kblab.processes import REDIS_SENTINEL, REDIS_SERVER, free_port, stop_process, wait_for

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ROLES = os.path.join(REPO_ROOT, 'roles')
MASTER_NAME = 'kb-redis-master'
USERS = {'REDIS_ADMIN_USER': 'kb-admin', 'REDIS_REPLICATION_USER': 'kb-replication',
         'REDIS_SENTINEL_USER': 'kb-sentinel', 'REDIS_HEALTHCHECK_USER': 'kb-healthcheck',
         'REDIS_EXPORTER_USER': 'kb-exporter'}
# Which user each password belongs to on the Redis nodes.
REDIS_KEYS = {'REDIS_PASSWORD': 'default', 'REDIS_ADMIN_PASSWORD': 'kb-admin',
              'REDIS_REPLICATION_PASSWORD': 'kb-replication', 'REDIS_SENTINEL_PASSWORD': 'kb-sentinel',
              'REDIS_HEALTHCHECK_PASSWORD': 'kb-healthcheck', 'REDIS_EXPORTER_PASSWORD': 'kb-exporter'}
PASSWORD_KEYS = sorted(REDIS_KEYS) + ['SENTINEL_PASSWORD']


# --- helpers -----------------------------------------------------------------------------------

class OffUndefined(jinja2.StrictUndefined):
    """A variable the test does not set: false in a condition (optional features such as TLS stay
    off), an error anywhere else."""

    def __bool__(self):
        return False


def render(role, template, **variables):
    """Render a role template the way Ansible's template module does (trim_blocks, hash filter)."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(os.path.join(ROLES, role, 'templates')),
                             undefined=OffUndefined, trim_blocks=True, keep_trailing_newline=True)
    env.filters['hash'] = lambda value, algo='sha1': hashlib.new(algo, value.encode()).hexdigest()
    env.filters['bool'] = lambda value: False if isinstance(value, jinja2.Undefined) else (
        value.lower() in ('1', 'true', 'yes', 'on') if isinstance(value, str) else bool(value))
    variables.setdefault('ansible_managed', 'Rendered by tests/unit/test_rotation_loopback.py')
    return env.get_template(template).render(**variables)


def node_acl_vars(current, previous=None):
    """Variables of users.acl.j2 from credential dicts keyed like redis.env."""
    previous = previous or {}
    names = {'REDIS_PASSWORD': 'app', 'REDIS_ADMIN_PASSWORD': 'admin', 'REDIS_REPLICATION_PASSWORD': 'replication',
             'REDIS_SENTINEL_PASSWORD': 'sentinel', 'REDIS_HEALTHCHECK_PASSWORD': 'healthcheck',
             'REDIS_EXPORTER_PASSWORD': 'exporter'}
    with open(os.path.join(ROLES, 'redis_node', 'defaults', 'main.yml')) as handle:
        defaults = yaml.safe_load(handle)
    variables = {'redis_node_app_acl': defaults['redis_node_app_acl'], 'redis_node_exporter_acl': defaults['redis_node_exporter_acl'],
                 'redis_node_admin_user': 'kb-admin', 'redis_node_replication_user': 'kb-replication',
                 'redis_node_sentinel_user': 'kb-sentinel', 'redis_node_healthcheck_user': 'kb-healthcheck',
                 'redis_node_exporter_user': 'kb-exporter'}
    for key, name in names.items():
        variables['redis_node_%s_password' % name] = current[key]
        variables['redis_node_%s_password_previous' % name] = previous.get(key, '')
    return variables


def quote(value):
    """How the roles quote a value on a redis-cli stdin command line (vars/main.yml)."""
    return '"' + value.replace('\\', '\\\\').replace('"', '\\"') + '"'


def cli(host, port, stdin, *args):
    """redis-cli with everything secret on standard input, as the roles run it."""
    out = subprocess.run(['redis-cli', '-h', host, '-p', str(port), '--no-auth-warning'] + list(args),
                         input=stdin + '\n', capture_output=True, text=True, timeout=10)
    return out.stdout.splitlines()


def client(host, port, username=None, password=None, **kwargs):
    kwargs.setdefault('socket_timeout', 3)
    # No retry: recent redis-py retries a refused AUTH (a ConnectionError) with back-off.
    kwargs.setdefault('retry', Retry(NoBackoff(), 0))
    return redis.Redis(host=host, port=port, username=username, password=password, decode_responses=True,
                       socket_connect_timeout=3, **kwargs)


def accepts(host, port, username, password):
    try:
        return client(host, port, username, password).ping()
    except redis.AuthenticationError:
        return False
    except redis.ResponseError as exc:  # WRONGPASS on older redis-py
        if 'WRONGPASS' in str(exc) or 'NOAUTH' in str(exc):
            return False
        raise


def random_password(tag):
    return '%s-%s' % (tag, hashlib.sha1(os.urandom(16)).hexdigest()[:24])


class Process(object):
    """redis-server or redis-sentinel with a configuration file written by the caller."""

    def __init__(self, binary, conf, host, port, log):
        self.binary, self.conf, self.host, self.port, self.log = binary, conf, host, port, log
        self.popen = None
        self.start()

    def start(self):
        with open(self.log, 'ab') as out:
            self.popen = subprocess.Popen([self.binary, self.conf], stdout=out, stderr=subprocess.STDOUT,
                                          cwd=os.path.dirname(self.conf))

    @property
    def pid(self):
        return self.popen.pid if self.popen.poll() is None else None

    def stop(self):
        stop_process(self.popen)


def replication(host, port, password, user='kb-admin'):
    info = client(host, port, user, password).info('replication')
    return info


def sentinel_state(host, port, password):
    """(other Sentinels seen healthy, CKQUORUM answer) of one Sentinel."""
    c = client(host, port, password=password)
    sentinels = c.execute_command('SENTINEL', 'SENTINELS', MASTER_NAME)
    healthy = 0
    for entry in sentinels:
        if isinstance(entry, dict):
            flags = entry.get('flags', '')
        else:
            flags = dict(zip(entry[0::2], entry[1::2])).get('flags', '')
        if not set(flags.split(',')) & {'s_down', 'o_down', 'disconnected'}:
            healthy += 1
    return healthy, c.execute_command('SENTINEL', 'CKQUORUM', MASTER_NAME)


def cut_sentinel_links(sentinels, password):
    """Close every client connection of every Sentinel: links between Sentinels are re-made (and
    re-authenticated) at once, which proves the password each one sends now."""
    for s in sentinels:
        client(s.host, s.port, password=password).execute_command('CLIENT', 'KILL', 'TYPE', 'normal', 'SKIPME', 'yes')
        client(s.host, s.port, password=password).execute_command('CLIENT', 'KILL', 'TYPE', 'pubsub')


def wait_quorum(sentinels, password, timeout=20):
    """Every Sentinel sees the others answer its PINGs (within 1.5 s: a refused AUTH would make
    that age grow) and CKQUORUM passes."""
    def ok():
        for s in sentinels:
            healthy, ckquorum = sentinel_state(s.host, s.port, password)
            if healthy != len(sentinels) - 1 or not str(ckquorum).startswith('OK 3 usable'):
                return False
        return True
    wait_for(ok, timeout=timeout, interval=0.2, what='every Sentinel to see the other two healthy and CKQUORUM OK')


def wait_links_authenticated(sentinels, password, with_redis=False, timeout=20):
    """After links were cut: wait until every link answered PING again, i.e. re-authenticated."""
    time.sleep(2)

    def fresh():
        for s in sentinels:
            c = client(s.host, s.port, password=password)
            entries = list(c.execute_command('SENTINEL', 'SENTINELS', MASTER_NAME))
            if with_redis:
                entries.append(c.execute_command('SENTINEL', 'MASTER', MASTER_NAME))
                entries.extend(c.execute_command('SENTINEL', 'REPLICAS', MASTER_NAME))
            for entry in entries:
                fields = entry if isinstance(entry, dict) else dict(zip(entry[0::2], entry[1::2]))
                if int(fields['last-ok-ping-reply']) > 1500:
                    return False
        return True
    wait_for(fresh, timeout=timeout, interval=0.2, what='every Sentinel link to answer PING with the new password')
    wait_quorum(sentinels, password, timeout=timeout)


# --- 1. Redis: two hashes, ACL SETUSER, CONFIG SET masterauth -----------------------------------

def write_node(workdir, name, host, port, creds, previous=None, master=None, managed='Ansible managed'):
    """A Redis node using users.acl and redis-auth.conf rendered from the role's templates."""
    conf_dir = os.path.join(str(workdir), name)
    os.makedirs(conf_dir, exist_ok=True)
    with open(os.path.join(conf_dir, 'users.acl'), 'w') as fh:
        fh.write(render('redis_node', 'users.acl.j2', **node_acl_vars(creds, previous)))
    with open(os.path.join(conf_dir, 'redis-auth.conf'), 'w') as fh:
        fh.write(render('redis_node', 'redis-auth.conf.j2', redis_node_replication_user='kb-replication',
                        redis_node_replication_password=creds['REDIS_REPLICATION_PASSWORD'], ansible_managed=managed))
    conf = os.path.join(conf_dir, 'redis.conf')
    with open(conf, 'w') as fh:
        fh.write('bind {host}\nport {port}\ndir {dir}\nsave ""\nappendonly no\nlogfile ""\n'
                 'repl-diskless-sync yes\nrepl-diskless-sync-delay 0\nreplica-announce-ip {host}\n'
                 'aclfile {dir}/users.acl\ninclude {dir}/redis-auth.conf\n'.format(host=host, port=port, dir=conf_dir))
        if master is not None:
            fh.write('replicaof %s %d\n' % master)
    return conf_dir, conf


def admin_login(host, port, admin_password):
    return dict(login_host=host, login_port=port, login_user='kb-admin', login_password=admin_password, connect_timeout=3)


def apply_acl_file(run_module, host, port, admin_password, acl_text):
    """What the role's "Reload redis ACL users" handler does for a users.acl: keybuzz.redis_ha.redis_acl_user
    for each user of the file (keybuzz.redis_ha.acl_file_users)."""
    users = acl_file_users(acl_text)
    assert len(users) == len(REDIS_KEYS)
    for user in users:
        res = run_module(redis_acl_user, dict(admin_login(host, port, admin_password), name=user['name'],
                                              password_hashes=user['password_hashes'], rules=user['rules']))
        assert res['changed_rules'] == ['passwords'], (user['name'], res)


def replica_link_ids(host, port, admin_password):
    """Client ids of the replicas' connections on a master (the same ids: the links were never cut)."""
    return sorted(re.findall(r'id=(\d+)', '\n'.join(cli(host, port, admin_password + '\nCLIENT LIST TYPE replica',
                                                         '--user', 'kb-admin', '--askpass'))))


def test_acl_file_with_two_hashes_then_one(tmp_path, run_module):
    old = dict((k, random_password('old')) for k in REDIS_KEYS)
    # The new replication password needs quoting in redis-auth.conf.
    new = dict((k, random_password('new')) for k in REDIS_KEYS)
    new['REDIS_REPLICATION_PASSWORD'] = 'new"repl\\pass' + random_password('q')
    host = '127.0.0.1'
    mport, rport = free_port(), free_port()
    mdir, mconf = write_node(tmp_path, 'master', host, mport, old)
    rdir, rconf = write_node(tmp_path, 'replica', host, rport, old, master=(host, mport))
    master = Process(REDIS_SERVER, mconf, host, mport, os.path.join(mdir, 'out.log'))
    replica = Process(REDIS_SERVER, rconf, host, rport, os.path.join(rdir, 'out.log'))
    try:
        wait_for(lambda: replication(host, rport, old['REDIS_ADMIN_PASSWORD'])['master_link_status'] == 'up',
                 what='the replica to sync with the old password')
        pids = (master.pid, replica.pid)
        app_old = client(host, mport, password=old['REDIS_PASSWORD'])
        app_old.set('k', 'v0')

        links = replica_link_ids(host, mport, old['REDIS_ADMIN_PASSWORD'])
        assert len(links) == 1

        # Phase start: both hashes in the file, applied with ACL SETUSER, then CONFIG SET masterauth on every node.
        for d, port in ((mdir, mport), (rdir, rport)):
            with open(os.path.join(d, 'users.acl'), 'w') as fh:
                fh.write(render('redis_node', 'users.acl.j2', **node_acl_vars(new, old)))
            with open(os.path.join(d, 'users.acl')) as fh:
                apply_acl_file(run_module, host, port, old['REDIS_ADMIN_PASSWORD'], fh.read())
        for key, user in REDIS_KEYS.items():
            for port in (mport, rport):
                assert accepts(host, port, user, old[key]) and accepts(host, port, user, new[key]), (key, port)
        for d, port in ((mdir, mport), (rdir, rport)):
            with open(os.path.join(d, 'redis-auth.conf'), 'w') as fh:
                fh.write(render('redis_node', 'redis-auth.conf.j2', redis_node_replication_user='kb-replication',
                                redis_node_replication_password=new['REDIS_REPLICATION_PASSWORD']))
            # As the role's auth_apply.yml: keybuzz.redis_ha.redis_config, masterauth a secret setting.
            res = run_module(redis_config, dict(admin_login(host, port, old['REDIS_ADMIN_PASSWORD']),
                                                settings={'masteruser': 'kb-replication'},
                                                secret_settings={'masterauth': new['REDIS_REPLICATION_PASSWORD']}))
            assert res['changed_settings'] == ['masterauth'] and new['REDIS_REPLICATION_PASSWORD'] not in repr(res)
            assert cli(host, port, new['REDIS_ADMIN_PASSWORD'] + '\nCONFIG GET masterauth', '--user', 'kb-admin',
                       '--askpass') == ['masterauth', new['REDIS_REPLICATION_PASSWORD']]
        assert app_old.get('k') == 'v0'

        # Phase finish: one hash per user, ACL SETUSER: old passwords refused, connected clients kept.
        for d, port in ((mdir, mport), (rdir, rport)):
            with open(os.path.join(d, 'users.acl'), 'w') as fh:
                fh.write(render('redis_node', 'users.acl.j2', **node_acl_vars(new)))
            with open(os.path.join(d, 'users.acl')) as fh:
                apply_acl_file(run_module, host, port, new['REDIS_ADMIN_PASSWORD'], fh.read())
        for key, user in REDIS_KEYS.items():
            for port in (mport, rport):
                assert accepts(host, port, user, new[key]) and not accepts(host, port, user, old[key]), (key, port)
        app_old.set('k', 'v1')  # authenticated before the change: still served
        # The replication link (a kb-replication connection) was never cut by the ACL changes (same client id).
        assert replica_link_ids(host, mport, new['REDIS_ADMIN_PASSWORD']) == links
        assert replication(host, rport, new['REDIS_ADMIN_PASSWORD'])['master_link_status'] == 'up'
        # Cut it: the replica reconnects with the masterauth set at run time (the old password is refused now).
        assert cli(host, mport, new['REDIS_ADMIN_PASSWORD'] + '\nCLIENT KILL TYPE replica', '--user', 'kb-admin',
                   '--askpass') == ['1']
        wait_for(lambda: replica_link_ids(host, mport, new['REDIS_ADMIN_PASSWORD']) not in ([], links),
                 what='the replica to reconnect with the new password')
        wait_for(lambda: client(host, rport, 'kb-admin', new['REDIS_ADMIN_PASSWORD']).get('k') == 'v1',
                 what='the write to reach the replica')
        # A restart reads the same files: the new password from redis-auth.conf (quoting intact).
        replica.stop()
        replica.start()
        wait_for(lambda: replication(host, rport, new['REDIS_ADMIN_PASSWORD'])['master_link_status'] == 'up',
                 what='the restarted replica to sync with redis-auth.conf')
        assert master.pid == pids[0]
    finally:
        replica.stop()
        master.stop()


# --- 2. Sentinel 7.0: ACL SETUSER default, sentinel-pass ----------------------------------------

def sentinel_conf(conf_dir, host, port, master, password, auth_password, down_after_ms=2000):
    """sentinel.conf as roles/redis_sentinel/templates/sentinel.conf.j2 writes it."""
    text = render('redis_sentinel', 'sentinel.conf.j2',
                  redis_sentinel_port=port, redis_sentinel_bind_addresses=[host], redis_sentinel_log_dir=conf_dir,
                  redis_sentinel_conf_dir=conf_dir, redis_sentinel_password=password, redis_sentinel_address=host,
                  redis_sentinel_master_name=MASTER_NAME, hostvars={'m': {'redis_ha_private_ip': master[0]}},
                  _redis_sentinel_masters=['m'], redis_sentinel_redis_port=master[1], redis_sentinel_quorum=2,
                  redis_sentinel_auth_user='kb-sentinel', redis_sentinel_auth_password=auth_password,
                  redis_sentinel_down_after_ms=down_after_ms, redis_sentinel_failover_timeout_ms=30000,
                  redis_sentinel_parallel_syncs=1)
    conf = os.path.join(conf_dir, 'sentinel.conf')
    with open(conf, 'w') as fh:
        fh.write(text.replace('supervised systemd\n', ''))
    return conf


def test_sentinels_keep_their_quorum_while_their_password_changes(tmp_path):
    host = '127.0.0.1'
    creds = dict((k, random_password('c')) for k in REDIS_KEYS)
    old, new = random_password('old-sentinel'), random_password('new-sentinel')
    mport = free_port()
    mdir, mconf = write_node(tmp_path, 'master', host, mport, creds)
    master = Process(REDIS_SERVER, mconf, host, mport, os.path.join(mdir, 'out.log'))
    sentinels = []
    try:
        wait_for(lambda: accepts(host, mport, 'kb-admin', creds['REDIS_ADMIN_PASSWORD']), what='the master')
        for i in range(3):
            conf_dir = str(tmp_path / ('sentinel%d' % i))
            os.makedirs(conf_dir)
            port = free_port()
            conf = sentinel_conf(conf_dir, host, port, (host, mport), old, creds['REDIS_SENTINEL_PASSWORD'])
            sentinels.append(Process(REDIS_SENTINEL, conf, host, port, os.path.join(conf_dir, 'out.log')))
        wait_quorum(sentinels, old, timeout=30)
        pids = [s.pid for s in sentinels]
        new_hash, old_hash = (hashlib.sha256(p.encode()).hexdigest() for p in (new, old))

        # Start, step 1 on every Sentinel (roles/redis_sentinel/tasks/auth_apply.yml): both hashes.
        for s in sentinels:
            assert cli(s.host, s.port, old + '\nACL SETUSER default on resetpass #%s #%s\nSENTINEL FLUSHCONFIG'
                       % (new_hash, old_hash), '--askpass') == ['OK', 'OK']
        for s in sentinels:
            assert accepts(s.host, s.port, None, old) and accepts(s.host, s.port, None, new)
        # Step 2, once every Sentinel accepts the new password: send it to the other Sentinels.
        for s in sentinels:
            assert cli(s.host, s.port, old + '\nSENTINEL CONFIG SET sentinel-pass %s' % quote(new), '--askpass') == ['OK']
        cut_sentinel_links(sentinels, new)
        wait_links_authenticated(sentinels, new)

        # Finish: only the new hash; the links are re-made with the new password.
        for s in sentinels:
            assert cli(s.host, s.port, new + '\nACL SETUSER default on resetpass #%s\nSENTINEL FLUSHCONFIG' % new_hash,
                       '--askpass') == ['OK', 'OK']
        for s in sentinels:
            assert accepts(s.host, s.port, None, new) and not accepts(s.host, s.port, None, old)
        cut_sentinel_links(sentinels, new)
        wait_links_authenticated(sentinels, new)
        assert [s.pid for s in sentinels] == pids

        # sentinel.conf still holds requirepass <old> (Sentinel 7.0 cannot change it at run time), but the
        # "user default" line it wrote wins at the next start, and sentinel-pass is what it sends.
        with open(sentinels[0].conf) as fh:
            text = fh.read()
        assert 'requirepass "%s"' % old in text
        assert re.search(r'(?m)^user default on #%s ' % new_hash, text)
        assert re.search(r'(?m)^sentinel sentinel-pass %s$' % re.escape(new), text)
        sentinels[0].stop()
        sentinels[0].start()
        wait_for(lambda: accepts(host, sentinels[0].port, None, new), what='the restarted Sentinel')
        assert not accepts(host, sentinels[0].port, None, old)
        wait_quorum(sentinels, new)
    finally:
        for s in sentinels:
            s.stop()
        master.stop()


# --- 3. The roles themselves, through ansible-playbook ------------------------------------------

HOSTS = ['redis-01', 'redis-02', 'redis-03']


def free_addresses():
    """Three loopback addresses (127.X.Y.11-13) with ports 6379 and 26379 free on each: the roles
    use one port for every node (and the health gate expects 6379), so the nodes differ by address."""
    import random
    for _ in range(50):
        prefix = '127.%d.%d.' % (random.randint(1, 254), random.randint(1, 254))
        addresses = [prefix + str(i) for i in (11, 12, 13)]
        socks = []
        try:
            for address in addresses:
                for port in (6379, 26379):
                    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                    socks.append(sock)
                    sock.bind((address, port))
            return addresses
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()
    raise RuntimeError('no free loopback addresses')


# The credentials part of playbooks/site.yml: the role task files that hold the credential logic,
# in the order the roles run them (discover, files, ACL SETUSER + CONFIG SET, health gates).
SITE_CREDENTIALS = '''
- name: Redis nodes
  hosts: redis
  gather_facts: false
  tasks:
    - {name: Discover, ansible.builtin.import_role: {name: keybuzz.redis_ha.redis_node, tasks_from: discover}}
    - {name: Files, ansible.builtin.import_role: {name: keybuzz.redis_ha.redis_node, tasks_from: auth_files}}
    - {name: Apply, ansible.builtin.import_role: {name: keybuzz.redis_ha.redis_node, tasks_from: auth_apply}}
    - {name: Health, ansible.builtin.import_role: {name: keybuzz.redis_ha.redis_node, tasks_from: health}}

- name: Sentinels
  hosts: redis_sentinel
  gather_facts: false
  tasks:
    - {name: Login, ansible.builtin.import_role: {name: keybuzz.redis_ha.redis_sentinel, tasks_from: login}}
    - {name: Apply, ansible.builtin.import_role: {name: keybuzz.redis_ha.redis_sentinel, tasks_from: auth_apply}}
    - {name: Health, ansible.builtin.import_role: {name: keybuzz.redis_ha.redis_sentinel, tasks_from: health}}
'''

# No systemd on the test host: every unit reads as loaded and active (the test checks the real PIDs).
FAKE_SYSTEMCTL = '''#!/bin/sh
if [ "$1" = show ]; then
  printf 'Id=%s\\nLoadState=loaded\\nActiveState=active\\nSubState=running\\nMainPID=4242\\nUnitFileState=enabled\\n' "$2"
fi
exit 0
'''


class RoleLab(object):
    """3 Redis nodes and 3 Sentinels on 127.X.Y.11-13, configured by the roles' files."""

    def __init__(self, workdir):
        self.dir = str(workdir)
        self.addresses = free_addresses()
        self.port, self.sentinel_port = 6379, 26379
        self.creds_dir = os.path.join(self.dir, 'creds')
        self.nodes, self.sentinels, self.outputs = [], [], []
        os.makedirs(os.path.join(self.dir, 'inventory'))
        os.makedirs(os.path.join(self.dir, 'collections', 'ansible_collections', 'keybuzz'))
        os.symlink(REPO_ROOT, os.path.join(self.dir, 'collections', 'ansible_collections', 'keybuzz', 'redis_ha'))
        self.creds = dict((k, random_password(k.lower()[:8])) for k in PASSWORD_KEYS)
        os.makedirs(self.creds_dir, mode=0o700)
        with open(os.path.join(self.creds_dir, 'redis.env'), 'w') as fh:
            for key, value in sorted(dict(self.creds, REDIS_MASTER_NAME=MASTER_NAME, **USERS).items()):
                fh.write('%s=%s\n' % (key, value))
        self.write_inventory()
        with open(os.path.join(self.dir, 'site_credentials.yml'), 'w') as fh:
            fh.write(SITE_CREDENTIALS)
        os.makedirs(os.path.join(self.dir, 'bin'))
        with open(os.path.join(self.dir, 'bin', 'systemctl'), 'w') as fh:
            fh.write(FAKE_SYSTEMCTL)
        os.chmod(os.path.join(self.dir, 'bin', 'systemctl'), 0o755)
        try:
            self.start()
        except Exception:
            self.stop()
            raise

    def conf_dir(self, kind, i):
        return os.path.join(self.dir, '%s%d' % (kind, i + 1))

    def write_inventory(self):
        hosts = {}
        for i, name in enumerate(HOSTS):
            hosts[name] = {'redis_ha_private_ip': self.addresses[i], 'redis_node_conf_dir': self.conf_dir('node', i),
                           'redis_sentinel_conf_dir': self.conf_dir('sentinel', i)}
        hosts[HOSTS[0]]['redis_node_initial_role'] = 'master'
        inventory = {'all': {
            'vars': {'ansible_connection': 'local', 'ansible_python_interpreter': sys.executable,
                     'ansible_become': False, 'redis_ha_credentials_dir': self.creds_dir,
                     'redis_ha_master_name': MASTER_NAME, 'redis_ha_sentinel_port': self.sentinel_port,
                     'redis_node_port': self.port, 'redis_sentinel_redis_port': self.port,
                     'redis_node_health_retries': 30, 'redis_node_health_delay': 1,
                     'redis_sentinel_health_retries': 30, 'redis_sentinel_health_delay': 1,
                     # The exporters are Debian packages and units: the lab's test_rotation.py covers them.
                     'redis_exporter_enabled': False},
            'children': {'redis': {'hosts': hosts}, 'redis_sentinel': {'children': {'redis': {}}}}}}
        with open(os.path.join(self.dir, 'inventory', 'hosts.yml'), 'w') as fh:
            yaml.safe_dump(inventory, fh)

    def start(self):
        master = (self.addresses[0], self.port)
        for i, address in enumerate(self.addresses):
            conf_dir, conf = write_node(self.dir, 'node%d' % (i + 1), address, self.port, self.creds,
                                        master=None if i == 0 else master)
            self.nodes.append(Process(REDIS_SERVER, conf, address, self.port, os.path.join(conf_dir, 'out.log')))
        wait_for(lambda: replication(self.addresses[0], self.port, self.creds['REDIS_ADMIN_PASSWORD'])
                 .get('connected_slaves') == 2, what='two replicas')
        for i, address in enumerate(self.addresses):
            conf_dir = self.conf_dir('sentinel', i)
            os.makedirs(conf_dir)
            conf = sentinel_conf(conf_dir, address, self.sentinel_port, master, self.creds['SENTINEL_PASSWORD'],
                                 self.creds['REDIS_SENTINEL_PASSWORD'], down_after_ms=5000)
            self.sentinels.append(Process(REDIS_SENTINEL, conf, address, self.sentinel_port,
                                          os.path.join(conf_dir, 'out.log')))
        wait_quorum(self.sentinels, self.creds['SENTINEL_PASSWORD'], timeout=30)

    def pids(self):
        return [p.pid for p in self.nodes + self.sentinels]

    def read_env(self):
        with open(os.path.join(self.creds_dir, 'redis.env')) as fh:
            return dict(re.findall(r'(?m)^([A-Z][A-Z0-9_]*)=(.*)$', fh.read()))

    def play(self, playbook, **extra_vars):
        """Run a playbook; returns {host: changed count}. Fails the test on a failed run."""
        env = dict(os.environ)
        env.update(ANSIBLE_CONFIG=os.path.join(REPO_ROOT, 'ansible.cfg'),
                   ANSIBLE_COLLECTIONS_PATH=os.path.join(self.dir, 'collections'),
                   ANSIBLE_LOCAL_TEMP=os.path.join(self.dir, 'tmp'), ANSIBLE_REMOTE_TMP=os.path.join(self.dir, 'tmp'),
                   ANSIBLE_NOCOLOR='1', ANSIBLE_FORCE_COLOR='0', ANSIBLE_STDOUT_CALLBACK='default',
                   PATH=os.pathsep.join([os.path.join(self.dir, 'bin'), os.path.dirname(sys.executable),
                                         env.get('PATH', '')]))
        # The preflight checks that each node's address is one of the host's (lo has only 127.0.0.1).
        extra_vars.setdefault('ansible_facts', {'distribution': 'Debian', 'distribution_major_version': '12',
                                                'distribution_version': '12', 'all_ipv4_addresses': self.addresses})
        cmd = [os.path.join(os.path.dirname(sys.executable), 'ansible-playbook'),
               '-i', os.path.join(self.dir, 'inventory', 'hosts.yml'), playbook, '-e', json.dumps(extra_vars)]
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
        text = out.stdout + out.stderr
        self.outputs.append(text)
        assert out.returncode == 0, text[-8000:]
        return dict((host, int(changed)) for host, changed in re.findall(r'(?m)^(\S+)\s+: ok=\d+\s+changed=(\d+)', text))

    def rotate(self, **extra_vars):
        return self.play(os.path.join(REPO_ROOT, 'playbooks', 'rotate_credentials.yml'), **extra_vars)

    def site_credentials(self):
        return self.play(os.path.join(self.dir, 'site_credentials.yml'))

    def stop(self):
        for proc in self.sentinels + self.nodes:
            proc.stop()


def redis_user_accepts(lab, key, password):
    return [accepts(a, lab.port, REDIS_KEYS[key], password) for a in lab.addresses]


def sentinel_accepts(lab, password):
    return [accepts(a, lab.sentinel_port, None, password) for a in lab.addresses]


@pytest.mark.skipif(os.geteuid() != 0, reason='the roles write files owned by the redis user')
@pytest.mark.skipif(shutil.which('redis-cli') is None, reason='redis-cli is missing')
def test_the_roles_rotate_every_password_without_a_restart(tmp_path):
    lab = RoleLab(tmp_path)
    try:
        pids = lab.pids()
        app_old = client(lab.addresses[0], lab.port, password=lab.creds['REDIS_PASSWORD'])
        app_old.set('before', '1')
        # Phase start (playbooks/rotate_credentials.yml, all users): new passwords, the old ones kept as
        # <KEY>_PREVIOUS and accepted everywhere; masterauth, sentinel-pass and auth-pass are the new ones.
        lab.rotate()
        env = lab.read_env()
        old = lab.creds
        for key in PASSWORD_KEYS:
            assert env[key + '_PREVIOUS'] == old[key] and env[key] != old[key]
        for key in REDIS_KEYS:
            assert redis_user_accepts(lab, key, old[key]) == [True] * 3, key
            assert redis_user_accepts(lab, key, env[key]) == [True] * 3, key
        assert sentinel_accepts(lab, old['SENTINEL_PASSWORD']) == [True] * 3
        assert sentinel_accepts(lab, env['SENTINEL_PASSWORD']) == [True] * 3
        for address in lab.addresses:
            assert cli(address, lab.port, env['REDIS_ADMIN_PASSWORD'] + '\nCONFIG GET masterauth',
                       '--user', 'kb-admin', '--askpass') == ['masterauth', env['REDIS_REPLICATION_PASSWORD']]
            assert cli(address, lab.sentinel_port, env['SENTINEL_PASSWORD'] + '\nSENTINEL CONFIG GET sentinel-pass',
                       '--askpass') == ['sentinel-pass', env['SENTINEL_PASSWORD']]
        for s in lab.sentinels:
            with open(s.conf) as fh:
                assert 'sentinel auth-pass %s %s\n' % (MASTER_NAME, env['REDIS_SENTINEL_PASSWORD']) in fh.read()
        app_old.set('during', '1')

        # What site.yml does with credentials, between the phases: nothing to change, both still valid.
        assert set(lab.site_credentials().values()) == {0}
        assert redis_user_accepts(lab, 'REDIS_PASSWORD', old['REDIS_PASSWORD']) == [True] * 3

        # Phase finish: the old passwords are refused, nothing restarted, the stack is healthy.
        lab.rotate(rotate_credentials_phase='finish')
        env = lab.read_env()
        assert not [k for k in env if k.endswith('_PREVIOUS')]
        for key in REDIS_KEYS:
            assert redis_user_accepts(lab, key, old[key]) == [False] * 3, key
            assert redis_user_accepts(lab, key, env[key]) == [True] * 3, key
        assert sentinel_accepts(lab, old['SENTINEL_PASSWORD']) == [False] * 3
        assert sentinel_accepts(lab, env['SENTINEL_PASSWORD']) == [True] * 3
        assert app_old.get('before') == '1'  # authenticated with the old password before the rotation
        cut_sentinel_links(lab.sentinels, env['SENTINEL_PASSWORD'])
        wait_links_authenticated(lab.sentinels, env['SENTINEL_PASSWORD'], with_redis=True)
        wait_for(lambda: replication(lab.addresses[0], lab.port, env['REDIS_ADMIN_PASSWORD'])['connected_slaves'] == 2,
                 what='both replicas linked with the new replication password')
        assert lab.pids() == pids

        # No password, old or new, was printed.
        text = '\n'.join(lab.outputs)
        leaked = [k for k in PASSWORD_KEYS if old[k] in text or env[k] in text]
        assert not leaked, leaked
    finally:
        lab.stop()
