"""watchkeeper-agent: exact per-minute request metrics from a Python web app, shipped to
Watchkeeper for a few microseconds a request.

ASGI (FastAPI, Starlette): ``app.add_middleware(watchkeeper_agent.WatchkeeperMiddleware)``.
Flask: ``watchkeeper_agent.flask.init_app(app)``. Django:
``"watchkeeper_agent.django.WatchkeeperMiddleware"`` in ``MIDDLEWARE``. Configuration from
arguments or ``WATCHKEEPER_URL``, ``WATCHKEEPER_TOKEN`` and ``WATCHKEEPER_SERVICE``.
"""

from watchkeeper_agent._version import VERSION as __version__
from watchkeeper_agent.agent import Agent
from watchkeeper_agent.config import AgentConfig, AgentOptions
from watchkeeper_agent.middleware import WatchkeeperMiddleware
from watchkeeper_agent.recorder import Exemplar, MinuteBucket, RequestRecorder
from watchkeeper_agent.sketch import QuantileSketch, SketchFormatError
from watchkeeper_agent.vocabulary import UNMATCHED_ROUTE, RequestSource, StatusClass

__all__ = [
    "UNMATCHED_ROUTE",
    "Agent",
    "AgentConfig",
    "AgentOptions",
    "Exemplar",
    "MinuteBucket",
    "QuantileSketch",
    "RequestRecorder",
    "RequestSource",
    "SketchFormatError",
    "StatusClass",
    "WatchkeeperMiddleware",
    "__version__",
]
