"""How fast the OTLP trace decoder turns exported spans into served requests, on one core.

Builds one batch the way an unmodified exporter would (the OpenTelemetry SDK's tracer and
its OTLP encoder): 512 SERVER spans of 20 attributes each, like the OpenTelemetry
Collector's own benchmark, over 20 routes and a mix of statuses. Then decodes it
repeatedly as protobuf, gzipped protobuf (inflate included) and OTLP/JSON, and reports the
median spans per second of CPU time (``time.process_time``: one thread, so one core, and
not skewed by other processes on a busy machine) and of wall time.

Run from the repository root::

    .venv/bin/python bench/otlp_decode.py [--runs 30]

Prints a table and writes ``bench/results/otlp_decode.json``. The target is 50,000 spans/s
for protobuf (the Collector publishes about 12,000 spans/s per core).
"""

from __future__ import annotations

import argparse
import base64
import gzip
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from google.protobuf import json_format
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.services.performance.otlp import decode_traces, inflate  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "otlp_decode.json"
BATCH = 512
ATTRIBUTES = 20
TARGET = 50_000
MAX_BODY = 64 * 1024 * 1024


def build_batch() -> ExportTraceServiceRequest:
    """One export of ``BATCH`` SERVER spans with ``ATTRIBUTES`` attributes each."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(
        resource=Resource.create({"service.name": "shop", "service.instance.id": "shop-1"})
    )
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("bench.otlp")
    start = time.time_ns()
    for number in range(BATCH):
        route = f"/api/v1/resource{number % 20}/{{item_id}}"
        attributes: dict[str, Any] = {
            "http.request.method": "GET" if number % 4 else "POST",
            "http.route": route,
            "http.response.status_code": 500 if number % 50 == 0 else 200,
            "url.path": route.replace("{item_id}", str(number)),
            "url.scheme": "https",
            "server.address": "shop.example",
            "server.port": 443,
            "client.address": f"10.0.{number % 256}.{number % 7}",
            "network.protocol.version": "1.1",
            "user_agent.original": "Mozilla/5.0 (X11; Linux x86_64) bench/1.0",
        }
        attributes.update({f"app.attribute{k}": f"value-{k}-{number}" for k in range(6)})
        attributes.update({f"app.counter{k}": number * k for k in range(4)})
        assert len(attributes) == ATTRIBUTES
        begin = start + number * 1_000_000
        span = tracer.start_span(
            "GET " + route, kind=SpanKind.SERVER, attributes=attributes, start_time=begin
        )
        span.end(end_time=begin + 1_000_000 + number * 10_000)
    message = encode_spans(exporter.get_finished_spans())
    provider.shutdown()
    return message


def otlp_json(message: ExportTraceServiceRequest) -> bytes:
    """The OTLP/JSON form of ``message``: enums as integers, ids in hex."""
    document = json_format.MessageToDict(message, use_integers_for_enums=True)
    for resource_spans in document["resourceSpans"]:
        for scope_spans in resource_spans["scopeSpans"]:
            for span in scope_spans["spans"]:
                for key in ("traceId", "spanId"):
                    span[key] = base64.b64decode(span[key]).hex()
    return json.dumps(document).encode()


def measure(decode: Callable[[], int], runs: int) -> dict[str, float]:
    """Median spans per second of CPU and of wall time over ``runs`` decodes."""
    assert decode() == BATCH  # also warms the caches
    cpu: list[float] = []
    wall: list[float] = []
    for _ in range(runs):
        cpu_start, wall_start = time.process_time(), time.perf_counter()
        decode()
        cpu.append(time.process_time() - cpu_start)
        wall.append(time.perf_counter() - wall_start)
    return {
        "cpu_spans_per_s": BATCH / statistics.median(cpu),
        "wall_spans_per_s": BATCH / statistics.median(wall),
        "best_cpu_spans_per_s": BATCH / min(cpu),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=30)
    arguments = parser.parse_args()
    message = build_batch()
    protobuf = message.SerializeToString()
    compressed = gzip.compress(protobuf)
    as_json = otlp_json(message)
    cases: dict[str, tuple[int, Callable[[], int]]] = {
        "protobuf": (
            len(protobuf),
            lambda: len(decode_traces(protobuf, "application/x-protobuf").requests),
        ),
        "protobuf+gzip": (
            len(compressed),
            lambda: len(
                decode_traces(
                    inflate(compressed, "gzip", MAX_BODY), "application/x-protobuf"
                ).requests
            ),
        ),
        "json": (len(as_json), lambda: len(decode_traces(as_json, "application/json").requests)),
    }
    results: dict[str, Any] = {
        "batch_spans": BATCH,
        "attributes_per_span": ATTRIBUTES,
        "runs": arguments.runs,
        "target_spans_per_s": TARGET,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "encodings": {},
    }
    print(f"{BATCH} spans x {ATTRIBUTES} attributes, median of {arguments.runs} decodes")
    print(f"{'encoding':<15}{'bytes':>10}{'CPU spans/s':>14}{'wall spans/s':>14}")
    for name, (size, decode) in cases.items():
        figures = measure(decode, arguments.runs)
        results["encodings"][name] = {"body_bytes": size, **figures}
        print(
            f"{name:<15}{size:>10,}{figures['cpu_spans_per_s']:>14,.0f}"
            f"{figures['wall_spans_per_s']:>14,.0f}"
        )
    met = results["encodings"]["protobuf"]["cpu_spans_per_s"] >= TARGET
    results["target_met"] = met
    print(f"target {TARGET:,} spans/s (protobuf, CPU): {'met' if met else 'NOT met'}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
