"""The ``event`` fixture: each event type in turn."""

from __future__ import annotations

import pytest
from event_samples import samples

from routr.events import Event


@pytest.fixture(params=samples(), ids=lambda e: e.name)
def event(request: pytest.FixtureRequest) -> Event:
    """Each event type in turn."""
    assert isinstance(request.param, Event)
    return request.param
