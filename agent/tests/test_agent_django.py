"""The Django integration in a real Django project (settings and URLs in this module),
through Django's test clients, under WSGI and ASGI."""

from __future__ import annotations

from collections.abc import Iterator

import django
import pytest
import watchkeeper_agent.django
from conftest import TOKEN, Receiver
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.test import AsyncClient, Client, override_settings
from django.urls import include, path, re_path
from watchkeeper_agent import UNMATCHED_ROUTE, Agent

Key = tuple[str, str, str]


def read_item(request: HttpRequest, pk: int) -> JsonResponse:
    return JsonResponse({"pk": pk})


def report(request: HttpRequest, year: str) -> HttpResponse:
    return HttpResponse(year)


def boom(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("broken on purpose")


async def slow_search(request: HttpRequest) -> HttpResponse:
    return HttpResponse("found")


urlpatterns = [
    path("items/<int:pk>/", read_item),
    path("api/", include([path("v1/items/<int:pk>/", read_item)])),
    re_path(r"^reports/(?P<year>[0-9]{4})/$", report),
    path("boom/", boom),
    path("search/", slow_search),
]

if not settings.configured:
    settings.configure(
        DEBUG=False,
        ALLOWED_HOSTS=["testserver"],
        ROOT_URLCONF=__name__,
        MIDDLEWARE=["watchkeeper_agent.django.WatchkeeperMiddleware"],
        INSTALLED_APPS=[],
        WATCHKEEPER={"service": "django-shop"},
        LOGGING_CONFIG=None,
    )
    django.setup()


@pytest.fixture
def agent(monkeypatch: pytest.MonkeyPatch) -> Iterator[Agent]:
    """A fresh process agent for each test, built by the middleware from the settings."""
    monkeypatch.setattr(watchkeeper_agent.django, "_agent", None)
    yield watchkeeper_agent.django.get_agent()


def counts(agent: Agent) -> dict[Key, int]:
    return {(b.route, b.method, b.status_class): b.count for b in agent.recorder.drain(final=True)}


class TestDjango:
    def test_requests_are_named_by_the_matched_pattern(self, agent: Agent) -> None:
        client = Client(raise_request_exception=False)
        for pk in (1, 2):
            assert client.get(f"/items/{pk}/").status_code == 200
        client.get("/api/v1/items/7/", headers={"X-Request-ID": "req-7"})
        client.get("/reports/2024/")
        client.get("/nope/")
        assert client.get("/boom/").status_code == 500
        assert counts(agent) == {
            ("/items/<int:pk>/", "GET", "2xx"): 2,
            ("/api/v1/items/<int:pk>/", "GET", "2xx"): 1,
            ("^reports/(?P<year>[0-9]{4})/$", "GET", "2xx"): 1,
            (UNMATCHED_ROUTE, "GET", "4xx"): 1,
            ("/boom/", "GET", "5xx"): 1,
        }

    def test_every_handler_of_the_process_shares_one_agent(self, agent: Agent) -> None:
        Client().get("/items/1/")
        Client().get("/items/2/")  # a second client builds a second handler
        assert counts(agent) == {("/items/<int:pk>/", "GET", "2xx"): 2}
        assert agent.recorder.service == "django-shop"

    async def test_under_asgi_the_middleware_runs_async(self, agent: Agent) -> None:
        await AsyncClient().get("/search/")
        await AsyncClient().get("/items/3/")
        assert counts(agent) == {
            ("/search/", "GET", "2xx"): 1,
            ("/items/<int:pk>/", "GET", "2xx"): 1,
        }

    def test_configured_from_settings_it_ships_to_watchkeeper(
        self, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(watchkeeper_agent.django, "_agent", None)
        options = {"url": receiver.url, "token": TOKEN, "service": "django-shop"}
        with override_settings(WATCHKEEPER={**options, "interval_s": 3600}):
            for pk in range(4):
                Client().get(f"/items/{pk}/")
            watchkeeper_agent.django.get_agent().close()
        assert receiver.requests() == 4
        assert {b["route"] for b in receiver.buckets()} == {"/items/<int:pk>/"}
