"""Response-time tracking: a mergeable quantile sketch and the per-minute request recorder."""
