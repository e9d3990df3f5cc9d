"""The issue desk: IssueTracker, the workflow, SLA clocks, likely duplicates, statistics.

Other domains use the desk through the names below; its modules are its own business.
"""

from app.services.issues.issue_tracker import IssueTracker
from app.services.issues.sla import ResolutionTargets
from app.services.issues.statistics import IssueStatisticsQuery
from app.services.issues.workflow import allowed_moves

__all__ = ["IssueStatisticsQuery", "IssueTracker", "ResolutionTargets", "allowed_moves"]
