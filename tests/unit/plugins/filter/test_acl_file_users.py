# -*- coding: utf-8 -*-
# Copyright: (c) 2026, KeyBuzz (@keybuzz)
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""keybuzz.redis_ha.acl_file_users: the users of an ACL file as redis_acl_user arguments."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import hashlib

import pytest

from ansible.errors import AnsibleFilterError
from ansible_collections.keybuzz.redis_ha.plugins.filter.acl_file_users import acl_file_users

H1 = hashlib.sha256(b'first-password').hexdigest()
H2 = hashlib.sha256(b'second-password').hexdigest()


def test_each_user_line_gives_its_name_hashes_and_rules_in_order():
    text = ('\nuser default on #%s #%s ~* &* +@all -@dangerous +info +role\n'
            'user kb-replication on #%s resetchannels -@all +psync +replconf +ping\n' % (H1, H2.upper(), H2))
    assert acl_file_users(text) == [
        dict(name='default', password_hashes=[H1, H2], rules='~* &* +@all -@dangerous +info +role'),
        dict(name='kb-replication', password_hashes=[H2], rules='resetchannels -@all +psync +replconf +ping'),
    ]


@pytest.mark.parametrize('line, message', [
    ('users default on #%s' % H1, 'line 2 is not "user <name> <rules>"'),
    ('user lonely', 'line 2 is not "user <name> <rules>"'),
    ('user x off #%s +ping' % H1, 'user x (line 2) is not "on"'),
    ('user x #%s +ping' % H1, 'user x (line 2) is not "on"'),
    ('user x on >clear-text-password +ping', 'user x (line 2) has a clear-text password or nopass'),
    ('user x on nopass +ping', 'user x (line 2) has a clear-text password or nopass'),
    ('user x on #abc123 +ping', 'user x (line 2) has a clear-text password or nopass'),
])
def test_a_line_it_cannot_apply_is_refused_by_number_without_its_text(line, message):
    with pytest.raises(AnsibleFilterError) as err:
        acl_file_users('user ok on #%s +ping\n%s\n' % (H1, line))
    assert message in str(err.value)
    assert 'clear-text-password' not in str(err.value) and H1 not in str(err.value)
