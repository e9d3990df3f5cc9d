"""Every table, imported here so ``Base.metadata`` (and Alembic) sees them all."""

from app.db.models.issues import Issue, IssueComment, IssueEvent, IssueLabel
from app.db.models.users import ApiToken, User

__all__ = ["ApiToken", "Issue", "IssueComment", "IssueEvent", "IssueLabel", "User"]
