"""One app's agent: the recorder its integration feeds and, when configured, its shipper.

The integrations call :meth:`Agent.record` once per request. It never raises into the app
and starts the shipping thread on the first request, in the process that serves it: a
gunicorn or uvicorn worker forked from a master that built the app (``--preload``) starts
its own thread, and ships only its own requests, because at the fork the child's recorder
is emptied (see ``recorder.py``) and its agent gets a fresh shipper with no thread yet.
``close()`` (also run at exit) delivers what is left.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from typing import Final, Unpack

from watchkeeper_agent.config import AgentConfig, AgentOptions
from watchkeeper_agent.recorder import RequestRecorder
from watchkeeper_agent.shipper import Shipper
from watchkeeper_agent.vocabulary import RequestSource

logger = logging.getLogger("watchkeeper_agent")


class Agent:
    """Counts an app's requests into a recorder and ships them when a URL is configured."""

    def __init__(self, recorder: RequestRecorder, shipper: Shipper | None = None) -> None:
        self.recorder = recorder
        self.shipper = shipper
        self._started = shipper is None
        self._start_lock = threading.Lock()
        self._refused = 0
        _LIVE_AGENTS.add(self)

    @classmethod
    def configure(
        cls,
        *,
        environ: Mapping[str, str] | None = None,
        wall_clock: Callable[[], float] = time.time,
        **options: Unpack[AgentOptions],
    ) -> Agent:
        """An agent set up from ``options``, completed from the environment."""
        config = AgentConfig.resolve(environ, **options)
        recorder = RequestRecorder(
            service=config.service,
            source=RequestSource.AGENT,
            exemplars=config.exemplars,
            max_buckets=config.max_buckets,
            wall_clock=wall_clock,
        )
        return cls(recorder, Shipper(recorder, config) if config.endpoint else None)

    @property
    def refused_requests(self) -> int:
        """Requests the recorder refused (a duration that is no duration), since start."""
        return self._refused

    def record(
        self,
        route: str,
        method: str,
        status_code: int,
        duration_ms: float,
        request_id: str | None = None,
    ) -> None:
        """Count one request that just ended; never raises."""
        try:
            self.recorder.record(route, method, status_code, duration_ms, request_id)
        except Exception:
            self._refused += 1
            if self._refused == 1:
                logger.exception("watchkeeper-agent could not count a request")
        if not self._started:
            self._start()

    def flush(self) -> bool:
        """Ship now what is recorded; True when everything is delivered (or nothing ships)."""
        return self.shipper.flush() if self.shipper is not None else True

    def close(self) -> None:
        """Stop shipping and deliver what is left; safe to call more than once."""
        if self.shipper is not None:
            try:
                self.shipper.close()
            except Exception:
                logger.exception("watchkeeper-agent failed to deliver at close")

    def _start(self) -> None:
        with self._start_lock:
            if self._started or self.shipper is None:
                return
            self._started = True
            try:
                self.shipper.start()
            except Exception:  # e.g. no thread can be started: record, never break the app
                logger.exception("watchkeeper-agent could not start shipping")
                return
            _close_at_exit(self)

    def _after_fork(self) -> None:
        """In a forked child: a new lock, and a shipper of its own that has not started."""
        self._start_lock = threading.Lock()
        if self.shipper is not None:
            self.shipper = Shipper(self.recorder, self.shipper.config)
            self._started = False


_LIVE_AGENTS: Final[weakref.WeakSet[Agent]] = weakref.WeakSet()
_CLOSED_AT_EXIT: Final[weakref.WeakSet[Agent]] = weakref.WeakSet()


def _close_at_exit(agent: Agent) -> None:
    """Register ``agent`` to be closed when the interpreter exits, once per agent."""
    if agent not in _CLOSED_AT_EXIT:
        _CLOSED_AT_EXIT.add(agent)
        atexit.register(_close_if_alive, weakref.ref(agent))


def _close_if_alive(reference: weakref.ref[Agent]) -> None:
    agent = reference()
    if agent is not None:
        agent.close()


def _reset_after_fork() -> None:
    for agent in list(_LIVE_AGENTS):
        agent._after_fork()


if hasattr(os, "register_at_fork"):  # not on Windows, which never forks
    os.register_at_fork(after_in_child=_reset_after_fork)
