#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, KeyBuzz (@keybuzz)
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: host_files
short_description: Put a role's directories and files in place in one call
version_added: 1.0.0
author: KeyBuzz (@keybuzz)
description:
  - Ensures directories exist and files have the given content, owner, group and mode, all in one
    module call (one round trip to the host instead of one or two per file and directory).
  - Content is given as text, typically rendered on the controller with
    C(lookup('ansible.builtin.template', ...)) or read with C(lookup('ansible.builtin.file', ..., rstrip=false)).
  - A file is replaced atomically (a temporary file in the same directory, then a rename), so a
    reader never sees a half-written file.
  - Files whose content holds secrets go in O(secret_files); their content is never returned or
    shown, not even in a diff or at the highest verbosity.
options:
  directories:
    description: Directories to create (parents included) and whose owner, group and mode are enforced.
    type: list
    elements: dict
    default: []
    suboptions:
      path:
        description: The directory.
        type: path
        required: true
      owner:
        description: Owner (name). Unchanged when omitted.
        type: str
      group:
        description: Group (name). Unchanged when omitted.
        type: str
      mode:
        description: Mode, as an octal string such as V('0750').
        type: str
  files:
    description: Files whose content may be shown in a diff.
    type: list
    elements: dict
    default: []
    suboptions: &file_suboptions
      dest:
        description: The file.
        type: path
        required: true
      content:
        description: The whole content of the file.
        type: str
        required: true
      owner:
        description: Owner (name). When omitted, the replaced file's, or for a new file the user the module runs as.
        type: str
      group:
        description: Group (name). Unchanged when omitted.
        type: str
      mode:
        description:
          - Mode, as an octal string such as V('0644').
          - When omitted, the replaced file's, or for a new file 0666 less the umask.
        type: str
      force:
        description: Replace the content of an existing file. With V(false) the file is only created when it is absent.
        type: bool
        default: true
  secret_files:
    description:
      - Files whose content holds secrets (passwords, hashes). As O(files), but their content is
        never returned; a diff only says that the file changed.
    type: list
    elements: dict
    default: []
    suboptions: *file_suboptions
  read:
    description:
      - Small text files (state notes, at most 64 KiB) to read and return in RV(contents), read before
        anything is written. Saves a separate round trip when a role needs both.
    type: list
    elements: path
    default: []
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  platform:
    platforms: posix
'''

EXAMPLES = r'''
- name: Put the configuration in place
  keybuzz.redis_ha.host_files:
    directories:
      - {path: /etc/redis, owner: root, group: redis, mode: "0750"}
    files:
      - dest: /etc/systemd/system/redis-server.service
        content: "{{ lookup('ansible.builtin.template', 'redis-server.service.j2') }}"
        mode: "0644"
    secret_files:
      - dest: /etc/redis/users.acl
        content: "{{ lookup('ansible.builtin.template', 'users.acl.j2') }}"
        owner: redis
        group: redis
        mode: "0440"
  register: written

- name: Restart when the unit changed
  ansible.builtin.systemd_service:
    name: redis-server.service
    state: restarted
    daemon_reload: true
  when: "'/etc/systemd/system/redis-server.service' in written.changed_paths"
'''

RETURN = r'''
changed_paths:
  description: The directories and files that were (or, in check mode, would be) created or changed, content or attributes.
  returned: always
  type: list
  elements: str
  sample: [/etc/redis/redis.conf]
content_changed:
  description: The files whose content was (or would be) written.
  returned: always
  type: list
  elements: str
  sample: [/etc/redis/redis.conf]
checksums:
  description:
    - SHA-1 of each file's content on the host after the call (the same value as C(ansible.builtin.stat)'s
      checksum); in check mode, of the content already there. V(null) for a file that does not exist.
  returned: always
  type: dict
  sample: {/etc/redis/redis.conf: 5f2b1d0c4a3e2d1f0a9b8c7d6e5f4a3b2c1d0e9f}
contents:
  description: The text of each file of O(read), V(null) for a file that does not exist.
  returned: always
  type: dict
  sample: {/run/keybuzz-haproxy-redis-pending.json: '["reload"]'}
'''

import errno
import grp
import hashlib
import os
import pwd
import stat
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_bytes, to_native, to_text

READ_LIMIT = 64 * 1024

_ENTRY = dict(
    owner=dict(type='str'),
    group=dict(type='str'),
    mode=dict(type='str'),
)
_FILE = dict(
    dest=dict(type='path', required=True),
    force=dict(type='bool', default=True),
    **_ENTRY
)


class Problem(Exception):
    """A path that cannot be put in place: the message names it and why."""


# The owner or group of a path in check mode when it does not exist yet (no real uid/gid is -2).
UNKNOWN = -2


class UnknownOwner(Problem):
    """The owner or group does not exist (yet: in check mode, the package that creates it is not installed)."""


def _uid(name):
    try:
        return pwd.getpwnam(name).pw_uid
    except KeyError:
        raise UnknownOwner('user %s does not exist' % name)


def _gid(name):
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        raise UnknownOwner('group %s does not exist' % name)


def _mode(text):
    try:
        return int(text, 8)
    except (TypeError, ValueError):
        raise Problem('mode %r is not an octal number such as 0640' % (text,))


def wanted_attributes(entry, check_mode):
    """(uid or None, gid or None, mode or None) from an entry's owner, group and mode.

    In check mode an owner or group that does not exist yet (its package is not installed) is
    UNKNOWN: the attributes count as different, as they would be once it exists."""
    try:
        uid = _uid(entry['owner']) if entry.get('owner') else None
        gid = _gid(entry['group']) if entry.get('group') else None
    except UnknownOwner:
        if not check_mode:
            raise
        uid = gid = UNKNOWN
    return uid, gid, _mode(entry['mode']) if entry.get('mode') else None


def attributes_differ(st, wanted):
    uid, gid, mode = wanted
    return ((uid is not None and st.st_uid != uid) or (gid is not None and st.st_gid != gid)
            or (mode is not None and stat.S_IMODE(st.st_mode) != mode))


def apply_attributes(path, wanted, fd=None):
    uid, gid, mode = wanted
    if uid is not None or gid is not None:
        if fd is None:
            os.lchown(path, -1 if uid is None else uid, -1 if gid is None else gid)
        else:
            os.fchown(fd, -1 if uid is None else uid, -1 if gid is None else gid)
    if mode is not None:
        if fd is None:
            os.chmod(path, mode)
        else:
            os.fchmod(fd, mode)


def sha1(data):
    return hashlib.sha1(data).hexdigest()


def ensure_directory(entry, check_mode):
    """Returns True when the directory was (or would be) created or its attributes changed."""
    path = entry['path']
    wanted = wanted_attributes(entry, check_mode)
    try:
        st = os.lstat(path)
    except OSError:
        st = None
    if st is not None and not stat.S_ISDIR(st.st_mode):
        raise Problem('%s exists and is not a directory' % path)
    if st is not None and not attributes_differ(st, wanted):
        return False
    if not check_mode:
        if st is None:
            os.makedirs(path)
        apply_attributes(path, wanted)
    return True


def read_existing(dest):
    """The bytes of an existing regular file, or None when it does not exist."""
    try:
        st = os.lstat(dest)
    except OSError:
        return None, None
    if not stat.S_ISREG(st.st_mode):
        raise Problem('%s exists and is not a regular file' % dest)
    with open(dest, 'rb') as fh:
        return fh.read(), st


def effective_attributes(wanted, st):
    """What a new copy of a file gets: the wanted owner, group and mode; where one is not given,
    the replaced file's (a new file: this user's, and 0666 less the umask)."""
    uid, gid, mode = wanted
    if st is not None:
        return (st.st_uid if uid is None else uid, st.st_gid if gid is None else gid,
                stat.S_IMODE(st.st_mode) if mode is None else mode)
    if mode is None:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    return uid, gid, mode


def write_atomically(dest, data, wanted):
    """Write data next to dest with its attributes, then rename it over dest."""
    directory = os.path.dirname(dest) or '.'
    fd, tmp = tempfile.mkstemp(prefix='.%s.' % os.path.basename(dest), dir=directory)
    try:
        with os.fdopen(fd, 'wb') as fh:
            fh.write(data)
            fh.flush()
            apply_attributes(tmp, wanted, fd=fh.fileno())
            os.fsync(fh.fileno())
        os.rename(tmp, dest)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def ensure_file(entry, secret, check_mode, want_diff):
    """Returns (content_changed, attributes_changed, checksum after, diff or None)."""
    dest = entry['dest']
    data = to_bytes(entry['content'], errors='surrogate_or_strict')
    wanted = wanted_attributes(entry, check_mode)
    existing, st = read_existing(dest)
    write = existing is None or (entry['force'] and existing != data)
    attributes = not write and attributes_differ(st, wanted)
    diff = None
    if write and want_diff:
        if secret:
            diff = dict(before_header=dest, after_header=dest,
                        before='' if existing is None else '(secret content, not shown)\n',
                        after='(secret content, not shown: %s)\n' % ('created' if existing is None else 'changed'))
        else:
            diff = dict(before_header=dest, after_header=dest,
                        before='' if existing is None else to_text(existing, errors='surrogate_or_replace'),
                        after=entry['content'])
    if check_mode:
        return write, attributes, (None if existing is None else sha1(existing)), diff
    if write:
        write_atomically(dest, data, effective_attributes(wanted, st))
    elif attributes:
        apply_attributes(dest, wanted)
    return write, attributes, sha1(data if write else existing), diff


def run(params, check_mode, want_diff):
    """The whole call; returns the module's result (raises Problem for a path that cannot be put in place)."""
    result = dict(changed=False, changed_paths=[], content_changed=[], checksums={}, contents={})
    for path in params['read']:
        try:
            with open(path, 'rb') as handle:
                data = handle.read(READ_LIMIT + 1)
        except (OSError, IOError) as exc:
            if getattr(exc, 'errno', None) != errno.ENOENT:
                raise Problem('read %s: %s' % (path, to_native(getattr(exc, 'strerror', None) or exc)))
            data = None
        if data is not None and len(data) > READ_LIMIT:
            raise Problem('read %s: larger than %d bytes' % (path, READ_LIMIT))
        result['contents'][path] = None if data is None else to_text(data, errors='surrogate_or_replace')
    diffs = []
    for entry in params['directories']:
        try:
            if ensure_directory(entry, check_mode):
                result['changed_paths'].append(entry['path'])
        except (OSError, Problem) as exc:
            raise Problem('directory %s: %s' % (entry['path'], to_native(exc)))
    for secret, entries in ((False, params['files']), (True, params['secret_files'])):
        for entry in entries:
            try:
                written, attributes, checksum, diff = ensure_file(entry, secret, check_mode, want_diff)
            except (OSError, IOError, Problem) as exc:
                # Never the content: the path and the system's reason only.
                raise Problem('file %s: %s' % (entry['dest'], to_native(getattr(exc, 'strerror', None) or exc)))
            result['checksums'][entry['dest']] = checksum
            if written or attributes:
                result['changed_paths'].append(entry['dest'])
            if written:
                result['content_changed'].append(entry['dest'])
            if diff:
                diffs.append(diff)
    result['changed'] = bool(result['changed_paths'])
    if want_diff:
        result['diff'] = diffs
    return result


def main():
    secret_file = dict(_FILE, content=dict(type='str', required=True, no_log=True))
    argument_spec = dict(
        directories=dict(type='list', elements='dict', default=[],
                         options=dict(path=dict(type='path', required=True), **_ENTRY)),
        files=dict(type='list', elements='dict', default=[],
                   options=dict(_FILE, content=dict(type='str', required=True))),
        # The list itself is no secret (paths, owners, modes); its items' content is (no_log above).
        secret_files=dict(type='list', elements='dict', default=[], options=secret_file, no_log=False),
        read=dict(type='list', elements='path', default=[]),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    try:
        result = run(module.params, module.check_mode, module._diff)
    except Problem as exc:
        module.fail_json(msg=to_native(exc))
    module.exit_json(**result)


if __name__ == '__main__':
    main()
