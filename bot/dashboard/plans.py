"""The safety plan editor (Stanley-Brown sections); the client gets the plan by texting PLAN."""

from __future__ import annotations
