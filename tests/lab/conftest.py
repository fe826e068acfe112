# -*- coding: utf-8 -*-
# Copyright: (c) 2026, KeyBuzz (@keybuzz)
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fixtures of the lab suite: one Lab for the session, and a steady lab before and after each test."""

from __future__ import absolute_import, division, print_function

import pytest

import labctl


@pytest.fixture(scope='session')
def lab():
    lab = labctl.Lab()
    lab.restore()
    return lab


@pytest.fixture
def steady_lab(lab):
    lab.restore()
    yield lab
    lab.restore()
