"""The service's objectives: the spec's four success criteria, with the numbers an
operator may change. ``/slo``, the error-budget burn alerts and the bottleneck detectors
all read these, so a target is stated once.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Objectives(BaseModel):
    """``[objectives]`` in the TOML, or ``WATCHKEEPER_OBJECTIVES`` as JSON."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    availability_percent: float = Field(
        default=99.9, gt=0, lt=100, description="Uptime a component must keep."
    )
    latency_ms: float = Field(
        default=2000.0, gt=0, description="Requests must answer within this..."
    )
    latency_share: float = Field(
        default=0.95, gt=0, lt=1, description="...this share of them (0.95: the p95)."
    )
    resolution_hours: float = Field(
        default=48.0, gt=0, description="The median issue must be resolved within this."
    )
    quarterly_improvement_percent: float = Field(
        default=10.0, ge=0, description="How much better the p95 must get each quarter."
    )

    @property
    def latency_quantile_label(self) -> str:
        """``p95`` for a share of 0.95, ``p99.9`` for 0.999."""
        return f"p{self.latency_share * 100:g}"
