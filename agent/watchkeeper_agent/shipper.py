"""Ships a recorder's buckets to Watchkeeper from a daemon thread, with the standard library.

Every ``interval_s`` the thread takes what the recorder gathered since the last shipment
(:meth:`RequestRecorder.drain_partial`: complete minutes and the unfinished minute's share
so far) and posts it as JSON batches of at most ``max_batch_buckets`` buckets to
``POST {url}/api/v1/ingest/requests`` with the ingest token as a bearer token. The batch
format is documented in the agent's README; it is the contract the server implements.

Delivery is at least once, stored once: a batch gets its id (and its bytes) when it is
made and keeps both across retries, so the server stores it once however often it is
sent. While a batch is undelivered no new one is made; the recorder keeps gathering, its
``max_buckets`` bound drops the oldest minutes when Watchkeeper stays away, and the
requests lost are reported in the ``dropped_requests`` of the next batch made. The oldest
batches are kept rather than dropped because the server may already have stored them.

Answers: 2xx means stored (or stored before). 400, 413 and 422 mean the server refuses
this batch's content: it is dropped, logged and counted as dropped, since sending it again
would be refused again. Anything else (no answer, 401, 403, 404, 429, 5xx) is retried
with exponential backoff up to ``max_backoff_s``: a token can be fixed, a server upgraded.

Nothing here runs on a request's path and nothing raises into the app: failures are
logged once per outage, and the thread survives them.
"""

from __future__ import annotations

import base64
import enum
import json
import logging
import os
import random
import re
import threading
import uuid
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from http.client import HTTPException
from typing import Any, Final
from urllib.error import HTTPError
from urllib.request import Request, urlopen

from watchkeeper_agent._version import VERSION
from watchkeeper_agent.config import AgentConfig
from watchkeeper_agent.recorder import MinuteBucket, RequestRecorder

logger = logging.getLogger("watchkeeper_agent")

# Statuses meaning "this batch's content is refused": sending it again cannot help.
REFUSED_STATUSES: Final = frozenset({400, 413, 422})
# Request ids the server accepts as exemplar evidence; others are sent as null.
_SAFE_REQUEST_ID: Final = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_USER_AGENT: Final = f"watchkeeper-agent/{VERSION}"


class Outcome(enum.Enum):
    STORED = "stored"
    RETRY = "retry"
    REFUSED = "refused"


@dataclass(frozen=True, slots=True)
class Batch:
    """One POST body, fixed when made so that every retry sends the same id and bytes."""

    id: str
    body: bytes
    requests: int  # requests counted in its buckets
    dropped: int  # the dropped_requests it reports


def encode_batch(
    batch_id: str, service: str, buckets: Sequence[MinuteBucket], dropped: int
) -> bytes:
    """The JSON body of one batch (see the README for every field)."""
    document = {
        "batch_id": batch_id,
        "service": service,
        "agent": {"version": VERSION, "pid": os.getpid()},
        "dropped_requests": dropped,
        "buckets": [_encode_bucket(bucket) for bucket in buckets],
    }
    return json.dumps(document, separators=(",", ":"), allow_nan=False).encode()


def _encode_bucket(bucket: MinuteBucket) -> dict[str, Any]:
    return {
        "minute": bucket.minute.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "route": bucket.route,
        "method": bucket.method,
        "status_class": bucket.status_class.value,
        "count": bucket.count,
        "sum_ms": bucket.sum_ms,
        "max_ms": bucket.max_ms,
        "sketch": base64.b64encode(bucket.sketch.to_bytes()).decode("ascii"),
        "exemplars": [
            {
                "duration_ms": exemplar.duration_ms,
                "request_id": _safe_request_id(exemplar.request_id),
                "at": _utc(exemplar.at),
            }
            for exemplar in bucket.exemplars
        ],
    }


def _safe_request_id(request_id: str | None) -> str | None:
    return request_id if request_id and _SAFE_REQUEST_ID.match(request_id) else None


def _utc(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Shipper:
    """Posts a recorder's buckets to Watchkeeper every few seconds from a daemon thread."""

    def __init__(self, recorder: RequestRecorder, config: AgentConfig) -> None:
        if config.endpoint is None or config.token is None:
            raise ValueError("a shipper needs an endpoint and a token")
        self.config = config
        self._recorder = recorder
        self._endpoint = config.endpoint
        self._headers = {
            "Authorization": f"Bearer {config.token}",
            "Content-Type": "application/json",
            "User-Agent": _USER_AGENT,
        }
        self._pending: deque[Batch] = deque()
        # Requests lost (dropped by the recorder's bound, or in a refused batch) that no
        # batch reports yet; the recorder's own counter as last read.
        self._unreported = 0
        self._seen_dropped = 0
        self._outage = False
        self._flush_lock = threading.Lock()
        self._start_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def pending_batches(self) -> int:
        """Batches made and not yet delivered."""
        return len(self._pending)

    @property
    def undelivered_requests(self) -> int:
        """Requests inside the batches not yet delivered."""
        return sum(batch.requests for batch in self._pending)

    def start(self) -> None:
        """Start the shipping thread, once; later calls do nothing."""
        with self._start_lock:
            if self._thread is None and not self._stop.is_set():
                self._thread = threading.Thread(
                    target=self._run, name="watchkeeper-agent", daemon=True
                )
                self._thread.start()

    def flush(self) -> bool:
        """Make a batch of what the recorder holds (when none waits) and post every waiting
        batch, oldest first; True when nothing is left undelivered."""
        with self._flush_lock:
            if not self._pending:
                self._batch_up()
            while self._pending:
                batch = self._pending[0]
                outcome = self._post(batch)
                if outcome is Outcome.RETRY:
                    return False
                self._pending.popleft()
                if outcome is Outcome.REFUSED:
                    self._unreported += batch.requests + batch.dropped
            return True

    def close(self) -> None:
        """Stop the thread and deliver what is left, once each, within a few timeouts."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(self.config.timeout_s + 1.0)
        # A first flush may only deliver the batch that was waiting; a second takes the rest.
        if self.flush() and self._recorder.pending_buckets:
            self.flush()
        if self._pending or self._recorder.pending_buckets:
            logger.warning(
                "watchkeeper-agent stopped with %d requests in undelivered batches and %d"
                " buckets not shipped",
                self.undelivered_requests,
                self._recorder.pending_buckets,
            )

    def _run(self) -> None:
        failures = 0
        while not self._stop.wait(self._delay(failures)):
            try:
                failures = 0 if self.flush() else failures + 1
            except Exception:  # a bug here must not end shipping for the process's life
                logger.exception("watchkeeper-agent failed to ship; will try again")
                failures += 1

    def _delay(self, failures: int) -> float:
        """The wait before the next shipment: the interval, or a jittered backoff."""
        if not failures:
            return self.config.interval_s
        backoff = min(self.config.interval_s * 2.0 ** min(failures, 16), self.config.max_backoff_s)
        return backoff * random.uniform(0.5, 1.0)

    def _batch_up(self) -> None:
        """Turn everything the recorder gathered into batches, one service each."""
        dropped_so_far = self._recorder.dropped_requests
        self._unreported += dropped_so_far - self._seen_dropped
        self._seen_dropped = dropped_so_far
        by_service: dict[str, list[MinuteBucket]] = {}
        for bucket in self._recorder.drain_partial():
            by_service.setdefault(bucket.service, []).append(bucket)
        if not by_service and self._unreported:
            by_service[self._recorder.service] = []
        size = self.config.max_batch_buckets
        for service, buckets in by_service.items():
            for start in range(0, max(len(buckets), 1), size):
                chunk = buckets[start : start + size]
                dropped, self._unreported = self._unreported, 0
                batch_id = uuid.uuid4().hex
                self._pending.append(
                    Batch(
                        id=batch_id,
                        body=encode_batch(batch_id, service, chunk, dropped),
                        requests=sum(bucket.count for bucket in chunk),
                        dropped=dropped,
                    )
                )

    def _post(self, batch: Batch) -> Outcome:
        request = Request(self._endpoint, data=batch.body, headers=self._headers, method="POST")
        try:
            with urlopen(request, timeout=self.config.timeout_s) as response:
                status = response.status
        except HTTPError as error:
            status = error.code
            detail = error.read(300).decode("utf-8", "replace")
            error.close()
        except (OSError, HTTPException) as error:  # refused, reset, timed out, garbled
            return self._retry(f"{type(error).__name__}: {error}")
        else:
            detail = ""
        if 200 <= status < 300:
            if self._outage:
                logger.info("watchkeeper-agent reaches Watchkeeper again")
                self._outage = False
            return Outcome.STORED
        if status in REFUSED_STATUSES:
            logger.warning(
                "Watchkeeper refused a batch of %d requests (%d): %s",
                batch.requests,
                status,
                detail,
            )
            return Outcome.REFUSED
        return self._retry(f"HTTP {status} {detail}".strip())

    def _retry(self, reason: str) -> Outcome:
        if not self._outage:
            logger.warning("watchkeeper-agent cannot ship (%s); keeping requests, retrying", reason)
            self._outage = True
        return Outcome.RETRY
