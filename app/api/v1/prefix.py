"""The path prefix of version 1 of the API, shared by its routers."""

API_V1 = "/api/v1"
