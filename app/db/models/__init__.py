"""Every table, imported here so ``Base.metadata`` (and Alembic) sees them all."""

from app.db.models.alerts import Alert, AlertDelivery, MaintenanceWindow
from app.db.models.health import (
    ComponentState,
    HealthDay,
    HealthHour,
    HealthIncident,
    HealthResult,
    HealthSweep,
)
from app.db.models.ingest import IngestBatch, IngestStream
from app.db.models.issues import Issue, IssueComment, IssueEvent, IssueLabel
from app.db.models.performance import RequestDay, RequestHour, RequestMinute
from app.db.models.users import ApiToken, User

__all__ = [
    "Alert",
    "AlertDelivery",
    "ApiToken",
    "ComponentState",
    "HealthDay",
    "HealthHour",
    "HealthIncident",
    "HealthResult",
    "HealthSweep",
    "IngestBatch",
    "IngestStream",
    "Issue",
    "IssueComment",
    "IssueEvent",
    "IssueLabel",
    "MaintenanceWindow",
    "RequestDay",
    "RequestHour",
    "RequestMinute",
    "User",
]
