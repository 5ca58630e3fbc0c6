"""The macro expander writes what Grafana's PostgreSQL data source writes.

Expected strings follow Grafana's own macro engine tests (range 2018-04-12 18:00 to 18:05
UTC) and its front-end interval and variable rules.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dashboards.macros import (
    MacroError,
    QueryContext,
    TemplateValue,
    calculate_interval,
    expand,
    format_seconds,
    interpolate_variables,
    replace_macros,
    seconds_to_hms,
)

FROM = datetime(2018, 4, 12, 18, 0, tzinfo=UTC)
TO = FROM + timedelta(minutes=5)
CONTEXT = QueryContext(FROM, TO)
TIMESCALE = QueryContext(FROM, TO, timescaledb=True)


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("select $__time(time_column)", 'select time_column AS "time"'),
        ("select $__timeEpoch(time)", 'select extract(epoch from time) as "time"'),
        (
            "WHERE $__timeFilter(time_column)",
            "WHERE time_column BETWEEN '2018-04-12T18:00:00Z' AND '2018-04-12T18:05:00Z'",
        ),
        ("select $__timeFrom()", "select '2018-04-12T18:00:00Z'"),
        ("select $__timeTo()", "select '2018-04-12T18:05:00Z'"),
        (
            "GROUP BY $__timeGroup(time_column,'5m')",
            "GROUP BY floor(extract(epoch from time_column)/300)*300",
        ),
        (
            "GROUP BY $__timeGroup(time_column, '5m')",
            "GROUP BY floor(extract(epoch from time_column)/300)*300",
        ),
        (
            "GROUP BY $__timeGroup(time_column, 5m, NULL)",
            "GROUP BY floor(extract(epoch from time_column)/300)*300",
        ),
        (
            "SELECT $__timeGroupAlias(time_column, 1h)",
            'SELECT floor(extract(epoch from time_column)/3600)*3600 AS "time"',
        ),
        # Grafana adds the alias when $__timeGroup is directly followed by a comma.
        (
            "SELECT $__timeGroup(time_column,'5m'), value",
            'SELECT floor(extract(epoch from time_column)/300)*300 AS "time", value',
        ),
        (
            "GROUP BY $__timeGroup(time_column, 30d)",
            "GROUP BY floor(extract(epoch from time_column)/2.592e+06)*2.592e+06",
        ),
        ("select $__unixEpochFilter(time)", "select time >= 1523556000 AND time <= 1523556300"),
        (
            "select $__unixEpochNanoFilter(time)",
            "select time >= 1523556000000000000 AND time <= 1523556300000000000",
        ),
        ("select $__unixEpochNanoFrom()", "select 1523556000000000000"),
        ("select $__unixEpochFrom(), $__unixEpochTo()", "select 1523556000, 1523556300"),
        ("GROUP BY $__unixEpochGroup(time_column,'5m')", "GROUP BY floor((time_column)/300)*300"),
        (
            "SELECT $__unixEpochGroupAlias(t, 5m)",
            'SELECT floor((t)/300)*300 AS "time"',
        ),
        ("select 1 -- $__timeFilter(nothing)\n", "select 1 \n"),
        ("select '-- kept', $__timeTo()", "select '-- kept', '2018-04-12T18:05:00Z'"),
    ],
)
def test_macros_expand_like_grafana(sql: str, expected: str) -> None:
    assert replace_macros(sql, CONTEXT) == expected


def test_time_group_uses_time_bucket_with_the_timescaledb_option() -> None:
    assert (
        replace_macros("GROUP BY $__timeGroup(time_column,'5m')", TIMESCALE)
        == "GROUP BY time_bucket('300.000s',time_column)"
    )
    assert (
        replace_macros("SELECT $__timeGroupAlias(t, $__interval)", TIMESCALE)
        == "SELECT time_bucket('0.200s',t) AS \"time\""
    )


def test_fractional_seconds_of_the_range_are_kept_like_rfc3339nano() -> None:
    context = QueryContext(FROM + timedelta(milliseconds=120), TO)
    assert replace_macros("$__timeFrom()", context) == "'2018-04-12T18:00:00.12Z'"


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("$__timeGroup(time_column)", "needs time column and interval"),
        ("$__timeGroup(t, banana)", "error parsing interval"),
        ("$__timeGroup(t, 0s)", "interval must be positive"),
        ("$__nonsense(t)", "unknown macro"),
    ],
)
def test_bad_macros_are_refused_like_grafana(sql: str, message: str) -> None:
    with pytest.raises(MacroError, match=message):
        replace_macros(sql, CONTEXT)


@pytest.mark.parametrize(
    ("range_", "interval", "interval_ms"),
    [
        (timedelta(minutes=5), "200ms", 200),
        (timedelta(hours=1), "5s", 5_000),
        (timedelta(hours=6), "20s", 20_000),
        (timedelta(hours=24), "1m", 60_000),
        (timedelta(days=7), "10m", 600_000),
        (timedelta(days=30), "30m", 1_800_000),
        (timedelta(days=365), "6h", 21_600_000),
    ],
)
def test_interval_follows_grafana_rounding(
    range_: timedelta, interval: str, interval_ms: int
) -> None:
    assert calculate_interval(QueryContext(FROM, FROM + range_)) == (interval, interval_ms)


def test_min_interval_raises_the_interval() -> None:
    context = QueryContext(FROM, FROM + timedelta(hours=24), min_interval="1h")
    assert calculate_interval(context) == ("1h", 3_600_000)
    assert expand("$__interval $__interval_ms", context) == "1h 3600000"


def test_go_and_grafana_number_formats() -> None:
    assert [format_seconds(x) for x in (300, 0.2, 86_400, 604_800, 2_592_000, 1e-5)] == [
        "300",
        "0.2",
        "86400",
        "604800",
        "2.592e+06",
        "1e-05",
    ]
    assert [seconds_to_hms(x) for x in (0.2, 30, 3_600, 86_400, 604_800, 31_536_000)] == [
        "200ms",
        "30s",
        "1h",
        "1d",
        "7d",
        "1y",
    ]


def test_template_variables_follow_the_sql_data_source_rules() -> None:
    context = QueryContext(
        FROM,
        TO,
        {
            "device": TemplateValue.single("42"),
            "site": TemplateValue.single("O'Brien"),
            "region": TemplateValue.many(["eu-north", "o'hare"], include_all=True),
        },
    )
    sql = (
        "id = $device AND site = '${site}' AND region IN ($region) "
        "AND r IN (${region:csv}) AND q IN (${region:sqlstring}) AND [[device]] = 42"
    )
    assert interpolate_variables(sql, context) == (
        "id = 42 AND site = 'O''Brien' AND region IN ('eu-north','o''hare') "
        "AND r IN (eu-north,o'hare) AND q IN ('eu-north','o''hare') AND 42 = 42"
    )


def test_unknown_variables_are_left_and_then_refused() -> None:
    assert interpolate_variables("x = $missing", CONTEXT) == "x = $missing"
    with pytest.raises(MacroError, match="missing"):
        expand("x = $missing", CONTEXT)


def test_built_in_range_variables() -> None:
    assert interpolate_variables("$__range_s $__range_ms $__from $__to", CONTEXT) == (
        "300 300000 1523556000000 1523556300000"
    )
