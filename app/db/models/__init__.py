"""Every table, imported here so ``Base.metadata`` (and Alembic) sees them all."""

from app.db.models.users import ApiToken, User

__all__ = ["ApiToken", "User"]
