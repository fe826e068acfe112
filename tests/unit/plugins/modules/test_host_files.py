# -*- coding: utf-8 -*-
# Copyright: (c) 2026, KeyBuzz (@keybuzz)
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""host_files: directories and files in one call, on a temporary directory (as root: owners change)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import grp
import hashlib
import json
import os
import stat
import subprocess
import sys

import pytest

import kblab  # noqa: F401  (makes the collection importable)
from ansible_collections.keybuzz.redis_ha.plugins.modules import host_files as module

SECRET = 'requirepass Sup3r-Secret-Value-42'
OTHER_GROUP = 'nogroup' if 'nogroup' in [g.gr_name for g in grp.getgrall()] else 'daemon'


def sha1(text):
    return hashlib.sha1(text.encode()).hexdigest()


def attrs(path):
    st = os.stat(path)
    return grp.getgrgid(st.st_gid).gr_name, oct(stat.S_IMODE(st.st_mode))


def args(tmp, **kw):
    base = dict(
        directories=[dict(path=str(tmp / 'conf'), owner='root', group=OTHER_GROUP, mode='0750')],
        files=[dict(dest=str(tmp / 'conf' / 'plain.conf'), content='port 6379\n', mode='0644')],
        secret_files=[dict(dest=str(tmp / 'conf' / 'secret.conf'), content=SECRET + '\n', group=OTHER_GROUP, mode='0440')],
    )
    base.update(kw)
    return base


def test_creates_everything_then_changes_nothing(tmp_path, run_module):
    first = run_module(module, args(tmp_path))
    conf = tmp_path / 'conf'
    assert first['changed'] is True
    assert first['changed_paths'] == [str(conf), str(conf / 'plain.conf'), str(conf / 'secret.conf')]
    assert first['content_changed'] == [str(conf / 'plain.conf'), str(conf / 'secret.conf')]
    assert attrs(conf) == (OTHER_GROUP, '0o750')
    assert attrs(conf / 'secret.conf') == (OTHER_GROUP, '0o440')
    assert (conf / 'secret.conf').read_text() == SECRET + '\n'
    # The checksum is stat's (SHA-1 of the content), for the restart decision.
    assert first['checksums'][str(conf / 'plain.conf')] == sha1('port 6379\n')

    again = run_module(module, args(tmp_path))
    assert again['changed'] is False and again['changed_paths'] == [] and again['content_changed'] == []
    assert again['checksums'] == first['checksums']


def test_changed_content_replaces_the_file_atomically(tmp_path, run_module):
    run_module(module, args(tmp_path))
    plain = tmp_path / 'conf' / 'plain.conf'
    inode = os.stat(plain).st_ino
    changed = run_module(module, args(tmp_path, files=[dict(dest=str(plain), content='port 6380\n', mode='0644')]))
    assert changed['content_changed'] == [str(plain)]
    assert plain.read_text() == 'port 6380\n'
    assert os.stat(plain).st_ino != inode, 'written in place instead of renamed over'
    assert [p for p in os.listdir(plain.parent) if p.startswith('.')] == [], 'a temporary file was left'


def test_attributes_alone_change_without_rewriting(tmp_path, run_module):
    run_module(module, args(tmp_path))
    plain = tmp_path / 'conf' / 'plain.conf'
    os.chmod(plain, 0o600)
    inode = os.stat(plain).st_ino
    result = run_module(module, args(tmp_path))
    assert result['changed_paths'] == [str(plain)] and result['content_changed'] == []
    assert attrs(plain)[1] == '0o644' and os.stat(plain).st_ino == inode


def test_force_false_only_creates(tmp_path, run_module):
    state = tmp_path / 'state'
    keep = dict(dest=str(state), content='', force=False, mode='0640')
    assert run_module(module, dict(files=[keep]))['content_changed'] == [str(state)]
    state.write_text('filled by the service\n')
    result = run_module(module, dict(files=[keep]))
    assert result['changed'] is False and state.read_text() == 'filled by the service\n'


def test_check_mode_reports_and_touches_nothing(tmp_path, run_module):
    run_module(module, args(tmp_path))
    plain = tmp_path / 'conf' / 'plain.conf'
    new = dict(dest=str(plain), content='port 6380\n', mode='0644')
    result = run_module(module, args(tmp_path, files=[new], _ansible_check_mode=True, _ansible_diff=True))
    assert result['content_changed'] == [str(plain)]
    assert plain.read_text() == 'port 6379\n'
    # In check mode the checksum is that of the file on the host (as stat would say).
    assert result['checksums'][str(plain)] == sha1('port 6379\n')
    assert result['diff'] == [dict(before_header=str(plain), after_header=str(plain), before='port 6379\n', after='port 6380\n')]


def test_check_mode_with_an_owner_not_created_yet(tmp_path, run_module):
    entry = dict(dest=str(tmp_path / 'f'), content='x\n', owner='kb-no-such-user', mode='0644')
    result = run_module(module, dict(files=[entry], _ansible_check_mode=True))
    assert result['content_changed'] == [str(tmp_path / 'f')]
    failed = run_module(module, dict(files=[entry]), expect_fail=True)
    assert failed['msg'] == 'file %s: user kb-no-such-user does not exist' % (tmp_path / 'f')


def test_secret_content_never_leaves_the_module(tmp_path):
    """Through Ansible's own output path (no_log masking, diff, invocation), as a real run."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(module.__file__))))
    payload = dict(ANSIBLE_MODULE_ARGS=dict(args(tmp_path), _ansible_diff=True))
    args_file = tmp_path / 'args.json'
    args_file.write_text(json.dumps(payload))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    out = subprocess.run([sys.executable, module.__file__, str(args_file)], capture_output=True, text=True,
                         env=env, cwd=root, check=False)
    result = json.loads(out.stdout)
    assert result['changed'] is True, out.stdout
    assert 'Sup3r-Secret' not in out.stdout + out.stderr
    secret_diff = [d for d in result['diff'] if d['after_header'].endswith('secret.conf')]
    assert secret_diff == [dict(before_header=str(tmp_path / 'conf' / 'secret.conf'),
                                after_header=str(tmp_path / 'conf' / 'secret.conf'),
                                before='', after='(secret content, not shown: created)\n')]
    # The plain file's diff is shown.
    assert any(d['after'] == 'port 6379\n' for d in result['diff'])


@pytest.mark.parametrize('failure, expected', [
    ('missing_dir', 'file {tmp}/absent/secret.conf: No such file or directory'),
    ('not_a_dir', 'directory {tmp}/plainfile: {tmp}/plainfile exists and is not a directory'),
    ('bad_mode', 'file {tmp}/m: mode \'rw\' is not an octal number such as 0640'),
])
def test_failures_name_the_path_and_never_the_content(tmp_path, run_module, failure, expected):
    (tmp_path / 'plainfile').write_text('x')
    params = {
        'missing_dir': dict(secret_files=[dict(dest=str(tmp_path / 'absent' / 'secret.conf'), content=SECRET)]),
        'not_a_dir': dict(directories=[dict(path=str(tmp_path / 'plainfile'))]),
        'bad_mode': dict(files=[dict(dest=str(tmp_path / 'm'), content=SECRET, mode='rw')]),
    }[failure]
    failed = run_module(module, params, expect_fail=True)
    assert failed['msg'] == expected.format(tmp=tmp_path)
    assert 'Sup3r' not in json.dumps(failed)


def test_unspecified_attributes_are_kept_or_follow_the_umask(tmp_path, run_module):
    kept = tmp_path / 'kept.conf'
    kept.write_text('old\n')
    os.chown(kept, 0, grp.getgrnam(OTHER_GROUP).gr_gid)
    os.chmod(kept, 0o640)
    new = tmp_path / 'new.conf'
    old_umask = os.umask(0o022)
    try:
        run_module(module, dict(files=[dict(dest=str(kept), content='new\n'), dict(dest=str(new), content='x\n')]))
    finally:
        os.umask(old_umask)
    assert kept.read_text() == 'new\n' and attrs(kept) == (OTHER_GROUP, '0o640')
    assert attrs(new)[1] == '0o644'


def test_read_returns_what_was_there_before_the_writes(tmp_path, run_module):
    note = tmp_path / 'note.json'
    absent = tmp_path / 'absent.json'
    note.write_text('["reload"]')
    result = run_module(module, dict(read=[str(note), str(absent)], files=[dict(dest=str(note), content='[]')]))
    assert result['contents'] == {str(note): '["reload"]', str(absent): None}
    assert note.read_text() == '[]' and result['changed_paths'] == [str(note)]


def test_read_refuses_a_large_file(tmp_path, run_module):
    big = tmp_path / 'big'
    big.write_bytes(b'x' * (module.READ_LIMIT + 1))
    failed = run_module(module, dict(read=[str(big)]), expect_fail=True)
    assert failed['msg'] == 'read %s: larger than %d bytes' % (big, module.READ_LIMIT)
