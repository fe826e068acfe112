# -*- coding: utf-8 -*-
# Copyright: (c) 2026, KeyBuzz (@keybuzz)
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""keybuzz.redis_ha.collection_version: the version of the copy of a collection that the import
system resolves (first on the path wins), from MANIFEST.json or galaxy.yml; '' when missing, '*'
when unknown. And the preflight's requirement for TLS is the one galaxy.yml declares."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import pathlib
import sys

import pytest
import yaml

from ansible.errors import AnsibleLookupError

from ansible_collections.keybuzz.redis_ha.plugins.lookup import collection_version as plugin

REPO = pathlib.Path(__file__).resolve().parents[4]


def make_collection(root, name, manifest=None, galaxy=None):
    path = root / 'ansible_collections' / name.replace('.', '/')
    path.mkdir(parents=True)
    if manifest is not None:
        (path / 'MANIFEST.json').write_text(json.dumps({'collection_info': {'version': manifest}}))
    if galaxy is not None:
        (path / 'galaxy.yml').write_text('namespace: x\nname: y\nversion: %s\n' % galaxy)
    return path


@pytest.fixture
def paths(tmp_path, monkeypatch):
    first, second = tmp_path / 'first', tmp_path / 'second'
    make_collection(first, 'kbtest.installed', manifest='2.9.1')
    make_collection(second, 'kbtest.installed', manifest='3.0.0')      # shadowed by the first
    make_collection(first, 'kbtest.checkout', galaxy='1.2.0')
    make_collection(first, 'kbtest.bare')
    (make_collection(first, 'kbtest.broken') / 'MANIFEST.json').write_text('{not json')
    monkeypatch.syspath_prepend(str(second))
    monkeypatch.syspath_prepend(str(first))
    for name in [m for m in sys.modules if m.startswith('ansible_collections.kbtest')]:
        monkeypatch.delitem(sys.modules, name)
    yield


def test_versions_from_manifest_and_galaxy_first_copy_wins(paths):
    assert plugin.installed_version('kbtest.installed') == '2.9.1'
    assert plugin.installed_version('kbtest.checkout') == '1.2.0'


def test_missing_is_empty_and_unknown_is_a_star(paths):
    assert plugin.installed_version('kbtest.absent') == ''
    assert plugin.installed_version('kbtest.bare') == '*'
    assert plugin.installed_version('kbtest.broken') == '*'


def test_lookup_returns_one_version_per_term(paths):
    lookup = plugin.LookupModule()
    assert lookup.run(['kbtest.installed', 'kbtest.absent']) == ['2.9.1', '']


@pytest.mark.parametrize('name', ['crypto', 'community.crypto.x', '../etc', 'Community.Crypto', 3])
def test_a_bad_name_is_refused_naming_it(name):
    with pytest.raises(AnsibleLookupError, match='is not a collection name'):
        plugin.installed_version(name)


def test_this_collection_from_its_galaxy_yml():
    """The checkout itself (linked into .cache/collections): its version comes from galaxy.yml. (The
    dependency as a real controller finds it: tests/preflight/test_preflight.py, *_community_crypto.)"""
    galaxy = yaml.safe_load((REPO / 'galaxy.yml').read_text())
    assert plugin.installed_version('keybuzz.redis_ha') == galaxy['version']


def test_the_preflight_requires_what_galaxy_yml_declares():
    """galaxy.yml's dependencies are exactly what the preflight checks (TLS's community.crypto)."""
    galaxy = yaml.safe_load((REPO / 'galaxy.yml').read_text())
    wanted = yaml.safe_load((REPO / 'roles/preflight/vars/main.yml').read_text())['_preflight_tls_collection']
    assert galaxy['dependencies'] == {wanted['name']: '>=' + wanted['minimum']}
