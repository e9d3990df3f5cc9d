"""The issue desk: IssueTracker, the workflow, SLA clocks, likely duplicates, statistics."""
