"""Property-based tests of every operation in the OpenAPI spec: no server errors, ever.

schemathesis generates requests from the spec (valid and invalid ones) and runs them
in-process against the app, with a seeded database and an admin key. The admin's user and key
get ids far from the small numbers the generator likes, so a generated
``DELETE /users/{id}/keys/{key_id}`` does not revoke the key the run itself uses.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import psycopg
import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import HypothesisException, Unsatisfiable
from psycopg_pool import ConnectionPool
from schemathesis import GenerationMode
from schemathesis.checks import ignored_auth, positive_data_acceptance
from schemathesis.core.failures import FailureGroup

from backend.api.app import create_app
from backend.api.keys import new_key
from backend.settings import BackendSettings
from tests.api.conftest import TOPIC_ROOT
from tests.api.fleet import Fleet

pytestmark = [pytest.mark.services, pytest.mark.slow]

# Examples per operation and mode: bounds the run to about a minute for ~50 operations.
MAX_EXAMPLES = {GenerationMode.POSITIVE: 10, GenerationMode.NEGATIVE: 5}
RUN_ADMIN_ID = 1_000_000


@pytest.fixture(scope="module")
def run_admin_key(api_database_url: str, fleet: Fleet) -> str:
    plaintext, prefix, key_hash = new_key()
    with psycopg.connect(api_database_url) as conn:
        conn.execute(
            "INSERT INTO users (id, name, role) OVERRIDING SYSTEM VALUE"
            " VALUES (%s, 'schemathesis', 'admin')",
            (RUN_ADMIN_ID,),
        )
        conn.execute(
            "INSERT INTO api_keys (id, user_id, prefix, key_hash, label) OVERRIDING SYSTEM VALUE"
            " VALUES (%s, %s, %s, %s, 'schemathesis')",
            (RUN_ADMIN_ID, RUN_ADMIN_ID, prefix, key_hash),
        )
    return plaintext


@pytest.fixture(scope="module")
def api_app(api_database_url: str, pool: ConnectionPool[Any]) -> FastAPI:
    return create_app(
        BackendSettings(database_url=api_database_url, topic_root=TOPIC_ROOT), pool=pool
    )


@pytest.fixture(scope="module")
def api_schema(api_app: FastAPI) -> Any:
    return schemathesis.openapi.from_asgi("/openapi.json", api_app)


def _send(client: TestClient, case: schemathesis.Case, headers: dict[str, str]) -> Any:
    """Send a generated case through the app's test client (requests-style kwargs to httpx)."""
    kwargs = case.as_transport_kwargs(base_url="http://testserver", headers=headers)
    data = kwargs.pop("data", None)
    if isinstance(data, (bytes, str)):
        kwargs["content"] = data
    elif data is not None:
        kwargs["data"] = data
    kwargs.pop("cookies", None)
    return client.request(**kwargs)


def _run_operation(
    client: TestClient,
    operation: Any,
    mode: GenerationMode,
    headers: dict[str, str],
    statuses: Counter[int],
) -> None:
    @given(case=operation.as_strategy(mode, headers=headers))
    @settings(
        max_examples=MAX_EXAMPLES[mode],
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate],
    )
    def run(case: schemathesis.Case) -> None:
        response = _send(client, case, headers)
        statuses[response.status_code] += 1
        case.validate_response(
            response,
            headers=headers,
            excluded_checks=[positive_data_acceptance, ignored_auth],
        )

    run()


def test_no_server_errors_and_responses_match_the_spec(
    api_app: FastAPI, api_schema: Any, run_admin_key: str
) -> None:
    headers = {"Authorization": f"Bearer {run_admin_key}", "X-API-Key": run_admin_key}
    failures: list[str] = []
    statuses: dict[str, Counter[int]] = {}
    client = TestClient(api_app, raise_server_exceptions=False)
    for result in api_schema.get_all_operations():
        operation = result.ok()
        seen = statuses.setdefault(operation.label, Counter())
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                _run_operation(client, operation, mode, headers, seen)
            except Unsatisfiable:
                assert mode is GenerationMode.NEGATIVE, operation.label  # nothing to break
            except (FailureGroup, BaseExceptionGroup, HypothesisException) as exc:
                failures.append(f"{operation.label} ({mode.value}): {exc}")
    assert not failures, "\n\n".join(failures)
    assert len(statuses) >= 20
    # The run's admin key was never refused, and most operations succeeded at least once.
    assert all(401 not in seen for seen in statuses.values()), statuses
    succeeded = [label for label, seen in statuses.items() if any(200 <= s < 300 for s in seen)]
    assert len(succeeded) >= len(statuses) * 0.6, statuses
