"""Request performance: the middleware, recorder and flusher, stored minutes and hours,
figures, detectors, advice and PerformanceAnalyzer.

Other domains use it through the names below; its modules are its own business.
"""

from app.services.performance.agent_ingest import AgentIngest
from app.services.performance.figures import RouteFigures, WindowFigures, window_figures
from app.services.performance.otlp import (
    IngestPaused,
    OtlpAnswer,
    OtlpReceiver,
    otlp_failure_answer,
)

__all__ = [
    "AgentIngest",
    "IngestPaused",
    "OtlpAnswer",
    "OtlpReceiver",
    "RouteFigures",
    "WindowFigures",
    "otlp_failure_answer",
    "window_figures",
]
