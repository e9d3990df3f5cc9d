"""Targets as an operator writes them in watchkeeper.toml or WATCHKEEPER_TARGETS."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.core.config import ConfigurationError, Settings
from app.schemas.targets import mask_url
from app.services.health.checks.http import HttpTarget
from app.services.health.checks.registry import KINDS, parse_targets
from app.services.health.checks.sql import DatabaseTarget
from app.services.monitoring import check_configuration
from app.vocabulary.health import ComponentStatus, worst_status


class TestParseTargets:
    def test_a_valid_list_gives_one_model_per_kind(self) -> None:
        targets = parse_targets(
            [
                {"kind": "system"},
                {"name": "store", "kind": "database", "url": "postgresql://db/app"},
                {"name": "cache", "kind": "redis", "url": "redis://cache:6379/0"},
                {"name": "docs", "kind": "mongodb", "url": "mongodb://a:1,b:2/?replicaSet=rs"},
                {"name": "api", "kind": "http", "url": "https://api/health", "method": "head"},
                {"name": "pg", "kind": "tcp", "url": "tcp://db.internal:5432"},
            ]
        )
        assert [target.kind for target in targets] == [
            "system",
            "database",
            "redis",
            "mongodb",
            "http",
            "tcp",
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
            ({"name": "cache", "url": "redis://x"}, "kind: missing; must be one of"),
            ({"name": "api", "kind": "http"}, "url: Field required"),
            ({"name": "api", "kind": "http", "url": "http://x", "timeout_s": "soon"}, "timeout_s"),
            ({"name": "api", "kind": "http", "url": "ftp://x"}, "url: Value error, URL scheme"),
            ({"name": "api", "kind": "http", "url": "http://x", "expected_status": [99]}, "99"),
        ],
    )
    def test_a_mistake_is_one_line_naming_the_target_and_field(
        self, entry: dict[str, object], complaint: str
    ) -> None:
        with pytest.raises(ConfigurationError, match=f"target '{entry['name']}': .*{complaint}"):
            parse_targets([entry])

    def test_an_unknown_kind_is_answered_with_every_registered_one(self) -> None:
        with pytest.raises(ConfigurationError) as caught:
            parse_targets([{"name": "cache", "kind": "mysql"}])
        assert ", ".join(KINDS) in str(caught.value)

    def test_a_mistake_never_shows_the_password(self) -> None:
        entry = {"name": "cache", "kind": "redis", "url": "http://:s3cret@cache:6379/0"}
        with pytest.raises(ConfigurationError) as caught:
            parse_targets([entry])
        assert "target 'cache': url" in str(caught.value)
        assert "s3cret" not in str(caught.value)

    def test_two_targets_may_not_share_a_name(self) -> None:
        with pytest.raises(ConfigurationError, match="target 'a': name: used by more than one"):
            parse_targets([{"name": "a", "kind": "system"}, {"name": "a", "kind": "system"}])

    def test_thresholds_must_be_in_order(self) -> None:
        with pytest.raises(ConfigurationError, match="degraded_percent must not exceed"):
            parse_targets([{"kind": "system", "degraded_percent": 90, "unhealthy_percent": 80}])

    def test_a_target_model_built_in_code_is_taken_as_it_is(self) -> None:
        api = HttpTarget(kind="http", name="api", url="http://x")
        assert parse_targets([api]) == [api]


class TestSettings:
    @pytest.fixture(autouse=True)
    def no_config_file(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("WATCHKEEPER_CONFIG_FILE", str(tmp_path / "absent.toml"))

    def test_the_environment_gives_the_targets_as_json(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        targets = '[{"name": "cache", "kind": "redis", "url": "redis://h:6379/0"}]'
        monkeypatch.setenv("WATCHKEEPER_TARGETS", targets)
        (cache,) = parse_targets(Settings().targets)
        assert cache.name == "cache"

    def test_checking_the_configuration_names_the_target_of_a_bad_entry(self) -> None:
        settings = Settings(
            targets=[{"name": "cache", "kind": "redis", "url": "redis://x", "colour": 1}]
        )
        with pytest.raises(ConfigurationError) as caught:
            check_configuration(settings)
        (line,) = str(caught.value).splitlines()
        assert line == (
            "invalid configuration: targets: target 'cache': colour: Extra inputs are not permitted"
        )


class TestBodyCondition:
    def test_needs_exactly_one_of_json_path_and_text(self) -> None:
        with pytest.raises(ConfigurationError, match="either json_path or text_contains"):
            parse_targets([{"name": "api", "kind": "http", "url": "http://x", "body": {}}])

    def test_equals_and_contains_exclude_each_other(self) -> None:
        body = {"json_path": "status", "equals": "ok", "contains": "o"}
        with pytest.raises(ConfigurationError, match="at most one of equals and contains"):
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
