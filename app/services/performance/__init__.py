"""Request performance: the middleware, recorder and flusher, stored minutes and hours,
figures, detectors, advice and PerformanceAnalyzer.

Other domains use it through the names below; its modules are its own business.
"""

from app.services.performance.figures import RouteFigures, WindowFigures, window_figures

__all__ = ["RouteFigures", "WindowFigures", "window_figures"]
