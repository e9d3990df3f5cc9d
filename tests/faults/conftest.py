"""The fault tests' proxy: in front of PostgreSQL, ready to freeze, cut or refuse the
service's connections."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.faults.proxy import StoreProxy


@pytest.fixture
async def proxy(store_url: str) -> AsyncIterator[StoreProxy]:
    """A flowing proxy in front of the test's PostgreSQL database."""
    between = StoreProxy.in_front_of(store_url)
    await between.start()
    yield between
    await between.close()
