"""The issue desk's pages: the list (a user's own issues), the report form, an issue with
its history and comments, and the forms that move, assign, label and comment on it.

Each calls the IssueTracker method its API route calls; who may see and do what is the
tracker's and the workflow's decision, so the buttons shown are exactly the moves the
workflow allows this person (``allowed_moves``), and a forged post is refused all the same.
"""

from __future__ import annotations

from typing import Annotated, Final

from fastapi import Form, Request, Response
from fastapi.responses import RedirectResponse

from app.api.deps import IssueId, SessionDep, TrackerDep
from app.schemas.issues import (
    CommentCreate,
    IssueCreate,
    IssueDetail,
    IssueQuery,
    IssueUpdate,
    StatusChange,
)
from app.services import accounts
from app.services.issues import allowed_moves
from app.vocabulary.issues import IssueStatus, IssueType, Priority, Resolution
from app.web.forms import from_fields, split_list, validated
from app.web.pages import page, page_router
from app.web.sessions import Sender, SignedIn, StaffSender, Visitor

router = page_router()
SORTS: Final = {
    "-created": "Newest first",
    "created": "Oldest first",
    "-updated": "Recently updated",
    "-priority": "Highest priority",
}
EARLY_CLOSE: Final = (Resolution.WONT_FIX, Resolution.DUPLICATE, Resolution.CANNOT_REPRODUCE)


@router.get("/issues")
async def issue_list(request: Request, visitor: Visitor, tracker: TrackerDep) -> Response:
    """Issues the visitor may see (a user: their own), filtered and paged."""
    query = from_fields(IssueQuery, request.query_params.multi_items())
    found = await tracker.search(query, visitor.user)
    pages = request.query_params.multi_items()
    kept = [(name, value) for name, value in pages if name != "offset" and value]
    return page(
        request,
        visitor,
        "issues/list.html",
        {
            "query": query,
            "found": found,
            "kept": kept,
            "statuses": list(IssueStatus),
            "types": list(IssueType),
            "priorities": list(Priority),
            "sorts": SORTS,
        },
    )


@router.get("/issues/new")
async def report_form(request: Request, visitor: Visitor) -> Response:
    """The form to report a bug, ask for a feature, open a ticket or an incident."""
    return page(
        request,
        visitor,
        "issues/new.html",
        {"types": list(IssueType), "priorities": list(Priority)},
    )


@router.post("/issues")
async def report(request: Request, sender: Sender, tracker: TrackerDep) -> Response:
    """Files the issue; the answer names it and its likely duplicates."""
    form = await request.form()
    created = await tracker.create(from_fields(IssueCreate, form.multi_items()), sender.user)
    return page(request, sender, "issues/reported.html", {"issue": created}, status_code=201)


async def _detail_page(
    request: Request, visitor: SignedIn, session: SessionDep, detail: IssueDetail
) -> Response:
    moves = allowed_moves(
        detail.status, role=visitor.user.role, is_reporter=detail.reporter.id == visitor.user.id
    )
    early = IssueStatus.CLOSED in moves and detail.status in (IssueStatus.OPEN, IssueStatus.TRIAGED)
    staff = (
        [u.username for u in await accounts.list_users(session) if u.role.is_staff and u.is_active]
        if visitor.is_staff
        else []
    )
    return page(
        request,
        visitor,
        "issues/detail.html",
        {
            "issue": detail,
            "moves": moves,
            "early_close": EARLY_CLOSE if early else (),
            "assignees": staff,
        },
    )


@router.get("/issues/{issue_id}")
async def issue_page(
    request: Request,
    issue_id: IssueId,
    visitor: Visitor,
    tracker: TrackerDep,
    session: SessionDep,
) -> Response:
    """One issue: its fields, history and comments, and what the visitor may do with it."""
    issue = await tracker.get(issue_id, visitor.user)
    return await _detail_page(request, visitor, session, await tracker.detail(issue, visitor.user))


def _back_to(issue_id: int) -> Response:
    return RedirectResponse(f"/issues/{issue_id}", status_code=303)


@router.post("/issues/{issue_id}/status")
async def move_issue(
    request: Request, issue_id: IssueId, sender: Sender, tracker: TrackerDep
) -> Response:
    """Moves the issue to the status of the button pressed."""
    issue = await tracker.get(issue_id, sender.user)
    form = await request.form()
    await tracker.change_status(issue, from_fields(StatusChange, form.multi_items()), sender.user)
    return _back_to(issue_id)


@router.post("/issues/{issue_id}/comments")
async def comment_on(
    request: Request, issue_id: IssueId, sender: Sender, tracker: TrackerDep
) -> Response:
    """Adds a comment (staff may mark it internal)."""
    issue = await tracker.get(issue_id, sender.user)
    form = await request.form()
    await tracker.comment(issue, from_fields(CommentCreate, form.multi_items()), sender.user)
    return _back_to(issue_id)


@router.post("/issues/{issue_id}/assignment")
async def assign(
    issue_id: IssueId,
    sender: StaffSender,
    tracker: TrackerDep,
    assignee: Annotated[str, Form(max_length=64)] = "",
    labels: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """Sets the assignee (none: unassigned) and the labels, as sent."""
    issue = await tracker.get(issue_id, sender.user)
    changes = validated(IssueUpdate, {"assignee": assignee or None, "labels": split_list(labels)})
    await tracker.update(issue, changes, sender.user)
    return _back_to(issue_id)
