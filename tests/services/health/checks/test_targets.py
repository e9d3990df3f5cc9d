"""Targets as an operator writes them in watchkeeper.toml or WATCHKEEPER_TARGETS."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from app.schemas.targets import DatabaseTarget, HttpTarget, TargetList, mask_url, parse_targets
from app.vocabulary.health import ComponentStatus, worst_status


class Settings(BaseModel):
    targets: TargetList = []


class TestParseTargets:
    def test_a_valid_list_gives_one_model_per_kind(self) -> None:
        targets = parse_targets(
            [
                {"kind": "system"},
                {"name": "store", "kind": "database", "url": "postgresql://db/app"},
                {"name": "cache", "kind": "redis", "url": "redis://cache:6379/0"},
                {"name": "docs", "kind": "mongodb", "url": "mongodb://a:1,b:2/?replicaSet=rs"},
                {"name": "api", "kind": "http", "url": "https://api/health", "method": "head"},
            ]
        )
        assert [target.kind for target in targets] == [
            "system",
            "database",
            "redis",
            "mongodb",
            "http",
        ]
        assert targets[0].name == "system"
        assert targets[1].timeout_s == 5.0

    def test_sync_sql_urls_get_the_installed_async_driver(self) -> None:
        target = DatabaseTarget(kind="database", name="store", url="postgresql://db/app")
        assert target.url == "postgresql+asyncpg://db/app"

    @pytest.mark.parametrize(
        ("entry", "complaint"),
        [
            ({"name": "cache", "kind": "redis", "url": "redis://x", "colour": 1}, "colour"),
            ({"name": "cache", "kind": "mysql", "url": "mysql://x"}, "kind: must be one of"),
            ({"name": "api", "kind": "http"}, "url: Field required"),
            ({"name": "api", "kind": "http", "url": "http://x", "timeout_s": "soon"}, "timeout_s"),
            ({"name": "api", "kind": "http", "url": "ftp://x"}, "url: Value error, URL scheme"),
            ({"name": "api", "kind": "http", "url": "http://x", "expected_status": [99]}, "99"),
        ],
    )
    def test_a_mistake_is_reported_with_the_target_and_field(
        self, entry: dict[str, object], complaint: str
    ) -> None:
        with pytest.raises(ValueError, match=f"target '{entry['name']}': .*{complaint}"):
            parse_targets([entry])

    def test_two_targets_may_not_share_a_name(self) -> None:
        with pytest.raises(ValueError, match="target 'a': name: used by more than one"):
            parse_targets([{"name": "a", "kind": "system"}, {"name": "a", "kind": "system"}])

    def test_thresholds_must_be_in_order(self) -> None:
        with pytest.raises(ValueError, match="degraded_percent must not exceed"):
            parse_targets([{"kind": "system", "degraded_percent": 90, "unhealthy_percent": 80}])

    def test_a_settings_field_names_the_target_of_a_bad_entry(self) -> None:
        with pytest.raises(ValueError, match="target 'cache': colour") as caught:
            Settings.model_validate(
                {"targets": [{"name": "cache", "kind": "redis", "url": "redis://x", "colour": 1}]}
            )
        assert "Extra inputs are not permitted" in str(caught.value)

    def test_a_settings_field_takes_json_from_the_environment(self) -> None:
        settings = Settings.model_validate_json(
            '{"targets": [{"name": "cache", "kind": "redis", "url": "redis://h:6379/0"}]}'
        )
        assert settings.targets[0].name == "cache"


class TestBodyCondition:
    def test_needs_exactly_one_of_json_path_and_text(self) -> None:
        with pytest.raises(ValueError, match="either json_path or text_contains"):
            parse_targets([{"name": "api", "kind": "http", "url": "http://x", "body": {}}])

    def test_equals_and_contains_exclude_each_other(self) -> None:
        body = {"json_path": "status", "equals": "ok", "contains": "o"}
        with pytest.raises(ValueError, match="at most one of equals and contains"):
            parse_targets([{"name": "api", "kind": "http", "url": "http://x", "body": body}])


class TestExpectedStatus:
    def test_by_default_2xx_and_3xx_count_as_up(self) -> None:
        target = HttpTarget(kind="http", name="api", url="http://x")
        assert [target.expects(code) for code in (200, 204, 301, 404, 500)] == [
            True,
            True,
            True,
            False,
            False,
        ]

    def test_codes_and_classes_mix(self) -> None:
        target = HttpTarget(kind="http", name="api", url="http://x", expected_status=[401, "2xx"])
        assert target.expects(401) and target.expects(201) and not target.expects(403)


class TestMaskUrl:
    @pytest.mark.parametrize(
        ("url", "shown"),
        [
            ("redis://:s3cret@cache:6379/0", "redis://:***@cache:6379/0"),
            ("postgresql+asyncpg://app:s3cret@db/app", "postgresql+asyncpg://app:***@db/app"),
            (
                "mongodb://u:s3cret@a:1,b:2/db?authSource=admin",
                "mongodb://u:***@a:1,b:2/db?authSource=admin",
            ),
            ("https://api/health?token=s3cret&region=eu", "https://api/health?token=***&region=eu"),
            ("https://api/x?api_key=s3cret", "https://api/x?api_key=***"),
            ("sqlite+aiosqlite:////var/lib/wk.db", "sqlite+aiosqlite:////var/lib/wk.db"),
            ("postgresql://app@db/app", "postgresql://app@db/app"),
        ],
    )
    def test_hides_passwords_and_secret_parameters(self, url: str, shown: str) -> None:
        assert mask_url(url) == shown

    def test_a_target_printed_in_a_log_shows_the_masked_url(self) -> None:
        target = DatabaseTarget(kind="database", name="db", url="postgresql://app:s3cret@db/app")
        assert "s3cret" not in repr(target)
        assert "app:***@db" in repr(target)


class TestWorstStatus:
    def test_orders_healthy_unknown_degraded_unhealthy(self) -> None:
        s = ComponentStatus
        assert worst_status([s.HEALTHY, s.UNKNOWN]) is s.UNKNOWN
        assert worst_status([s.UNKNOWN, s.DEGRADED, s.HEALTHY]) is s.DEGRADED
        assert worst_status([s.DEGRADED, s.UNHEALTHY]) is s.UNHEALTHY

    def test_nothing_to_judge_is_unknown(self) -> None:
        assert worst_status([]) is ComponentStatus.UNKNOWN
