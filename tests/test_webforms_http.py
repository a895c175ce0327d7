"""POST /api/forms/<key> in process: the route app.py hands to st.App, called as ASGI (no server, no Streamlit).
Statuses, bodies and headers for each kind of request, rate limiting, and 1,000 random payloads that never get a
500 and never write anything unless accepted. On SQLite and PostgreSQL."""
import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import select
from starlette.applications import Starlette

from crm.db import read_scope, session_scope
from crm.http.forms_api import MAX_BODY, routes
from crm.models import BehaviorEvent, Contact
from crm.ratelimit import RateLimiter
from crm.webforms.forms import set_form_active
from tests.test_webforms import ANN, MAPPING, fired, new_form, table_counts  # noqa: F401 - fixture

JSON = {"content-type": "application/json"}
FORM = {"content-type": "application/x-www-form-urlencoded"}
ALLOWED = {200, 400, 401, 404, 413, 415, 422, 429}


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def call(app, path: str, body: bytes | list[bytes] = b"", headers: dict | None = None, method: str = "POST",
         hang_up: bool = False) -> tuple[int, dict[str, str], bytes]:
    """One ASGI request, the body in one piece or in chunks (the client hanging up after them if `hang_up`);
    returns status, headers (lower-case names), body."""
    chunks = body if isinstance(body, list) else [body]
    incoming = [{"type": "http.request", "body": c, "more_body": hang_up or i < len(chunks) - 1}
                for i, c in enumerate(chunks)]
    sent = []

    async def receive():
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()],
             "client": ("127.0.0.1", 5000), "server": ("testserver", 80)}
    # In a thread of its own: a browser test earlier in the run leaves Playwright's event loop on the main thread.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, app(scope, receive, send)).result()
    start = next(m for m in sent if m["type"] == "http.response.start")
    return (start["status"], {k.decode(): v.decode() for k, v in start["headers"]},
            b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body"))


@pytest.fixture
def api(engine, admin, fired):  # noqa: F811 - the fixture imported above
    """A form 'contact-us' (30 a minute) and the route on the test database, with a clock the test moves."""
    made = new_form(engine, admin)
    clock = Clock()
    app = Starlette(routes=routes(engine=engine, limiter=RateLimiter(clock=clock)))
    return app, made, clock


def post_json(app, made, fields, *, token: str | None = None, key: str = "contact-us", extra: dict | None = None):
    headers = {**JSON, "x-form-token": made.token if token is None else token, **(extra or {})}
    return call(app, f"/api/forms/{key}", json.dumps(fields).encode(), headers)


def test_a_json_submission_is_taken_and_a_known_email_gets_the_same_answer(engine, api):
    app, made, _ = api
    first = post_json(app, made, ANN, extra={"referer": "https://example.com/contact"})
    again = post_json(app, made, {**ANN, "town": "Bangkok"})
    assert first[0] == again[0] == 200
    assert json.loads(first[2]) == json.loads(again[2]) == {"ok": True}  # nothing tells created from updated
    assert first[1]["access-control-allow-origin"] == "*"
    with read_scope(engine) as s:
        c = s.exec(select(Contact)).one()
        urls = s.exec(select(BehaviorEvent.url).order_by(BehaviorEvent.id)).all()
    assert (c.email, c.city) == ("ann.archer@example.com", "Bangkok")
    assert urls == ["https://example.com/contact", None]


def test_a_plain_html_form_posts_urlencoded_with_the_token_in_a_hidden_field(engine, api):
    app, made, _ = api
    body = urlencode([("form_token", made.token), ("your-email", "bo@example.com"), ("name", "Bo"),
                      ("topics", "golf"), ("topics", "chess"), ("news", "on")]).encode()
    status, _, answer = call(app, "/api/forms/contact-us", body, FORM)
    assert (status, json.loads(answer)) == (200, {"ok": True})
    with read_scope(engine) as s:
        c = s.exec(select(Contact)).one()
        event = s.exec(select(BehaviorEvent)).one()
    assert (c.first_name, c.interests, c.email_opt_in) == ("Bo", ["chess", "golf"], True)
    assert "form_token" not in event.properties["values"]  # the token is never stored


@pytest.mark.parametrize(("status", "request_", "field"), [
    (401, {"token": "wrong"}, None),
    (401, {"token": ""}, None),  # no header and no form_token field
    (404, {"key": "nope"}, None),
    (404, {"key": "CONTACT-US"}, None),  # keys are lower case
    (422, {"fields": {**ANN, "tel": "12"}}, "tel"),
    (422, {"fields": {**ANN, "your-email": None}}, "your-email"),
    (400, {"body": b"{not json"}, None),
    (400, {"body": b"[1, 2]"}, None),  # JSON, but not an object
    (400, {"body": b"[" * 10_000 + b"]" * 10_000}, None),  # nesting deep enough to overflow the parser's stack
    (400, {"body": b"\xff\xfe{}"}, None),
    (400, {"body": "your-email=a%FF".encode(), "headers": FORM}, None),  # percent-encoded bytes that are not UTF-8
    (415, {"headers": {"content-type": "text/plain"}}, None),
    (415, {"headers": {}}, None),
])
def test_each_refusal_has_its_status_and_a_json_error_and_writes_nothing(engine, api, status, request_, field):
    app, made, _ = api
    before = table_counts(engine)
    headers = {**request_.get("headers", JSON), "x-form-token": request_.get("token", made.token)}
    body = request_.get("body", json.dumps(request_.get("fields", ANN)).encode())
    got, _, answer = call(app, f"/api/forms/{request_.get('key', 'contact-us')}", body, headers)
    payload = json.loads(answer)
    assert got == status and payload["field"] == field and payload["error"]
    assert table_counts(engine) == before


def test_an_inactive_form_answers_404(engine, admin, api):
    app, made, _ = api
    with session_scope(engine) as s:
        set_form_active(session=s, actor=admin, form_id=made.form.id, active=False, seen_version=1)
    assert post_json(app, made, ANN)[0] == 404


def test_an_oversized_body_is_refused_before_it_is_read_whole(engine, api):
    app, made, _ = api
    before = table_counts(engine)
    big = json.dumps({**ANN, "pad": "x" * MAX_BODY}).encode()
    declared = call(app, "/api/forms/contact-us", big, {**JSON, "x-form-token": made.token})
    # Sent in pieces without a length (chunked): counted as it arrives.
    streamed = call(app, "/api/forms/contact-us", [big[i:i + 8192] for i in range(0, len(big), 8192)],
                    {**JSON, "x-form-token": made.token, "transfer-encoding": "chunked"})
    assert declared[0] == streamed[0] == 413
    assert table_counts(engine) == before
    # Just under the limit is fine.
    fits = json.dumps({**ANN, "pad": "x" * (MAX_BODY - len(json.dumps(ANN)) - 20)}).encode()
    assert len(fits) <= MAX_BODY
    assert call(app, "/api/forms/contact-us", fits, {**JSON, "x-form-token": made.token})[0] == 200


def test_a_client_hanging_up_mid_body_is_answered_400_and_nothing_is_written(engine, api):
    app, made, _ = api
    before = table_counts(engine)
    status, _, answer = call(app, "/api/forms/contact-us", [b'{"your-email": "ann@exa'], hang_up=True,
                             headers={**JSON, "x-form-token": made.token})
    assert (status, json.loads(answer)["field"]) == (400, None)
    assert table_counts(engine) == before


def test_the_rate_limit_counts_per_token_and_says_when_to_come_back(engine, admin, fired):  # noqa: F811
    made = new_form(engine, admin, rate=2)
    clock = Clock()
    app = Starlette(routes=routes(engine=engine, limiter=RateLimiter(clock=clock)))
    assert post_json(app, made, ANN)[0] == 200
    clock.now = 20.0
    assert post_json(app, made, {**ANN, "tel": "12"})[0] == 422  # refused input still used up a submission
    clock.now = 30.0
    before = table_counts(engine)
    status, headers, answer = post_json(app, made, ANN)
    assert status == 429 and headers["retry-after"] == "30"  # the first submission leaves the window at t=60
    assert "2 submissions a minute" in json.loads(answer)["error"]
    assert table_counts(engine) == before
    assert post_json(app, made, ANN, token="wrong")[0] == 401  # a wrong token is not rate limited, but refused
    clock.now = 60.0
    assert post_json(app, made, ANN)[0] == 200


def test_a_browser_preflight_is_allowed_from_any_site(api):
    app, _, _ = api
    status, headers, _ = call(app, "/api/forms/contact-us", method="OPTIONS",
                              headers={"origin": "https://example.com", "access-control-request-method": "POST"})
    assert status == 204 and headers["access-control-allow-origin"] == "*"
    assert "x-form-token" in headers["access-control-allow-headers"].lower()


# --- random payloads ------------------------------------------------------------------------------------------------

SCALARS = (st.none() | st.booleans() | st.integers() | st.floats() | st.text()
           | st.tuples(st.text(min_size=1, max_size=3), st.integers(1, 30_000)).map(lambda t: t[0] * t[1])
           | st.emails() | st.sampled_from(["on", "yes", "0", "+66 81 234 5678", "th", "TH", "\x00", "\ud800"]))
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                            max_size=4), max_leaves=12)
NAMES = st.sampled_from([*MAPPING, "form_token", "submit"]) | st.text(max_size=12)
FIELDS = st.dictionaries(NAMES, VALUES, max_size=10)
VALID = st.fixed_dictionaries({"your-email": st.emails(), "name": st.text(min_size=1, max_size=20)})


@st.composite
def requests_(draw):
    """A body (JSON of any shape, form data, or raw bytes), a content type and a token, each sometimes wrong."""
    fields = draw(st.one_of(FIELDS, st.builds(lambda a, b: {**a, **b}, VALID, FIELDS), VALID))
    how = draw(st.sampled_from(["json", "json", "form", "raw", "not an object"]))
    if how == "json":
        body, kind = json.dumps(fields).encode(), "application/json"
    elif how == "form":
        pairs = [(k, v if isinstance(v, str) else json.dumps(v)) for k, v in fields.items()]
        body, kind = urlencode(pairs, encoding="utf-8", errors="surrogatepass").encode(), FORM["content-type"]
    elif how == "raw":
        body, kind = draw(st.binary(max_size=300)), draw(st.sampled_from(["application/json", FORM["content-type"],
                                                                          "text/plain", ""]))
    else:
        body, kind = json.dumps(draw(VALUES)).encode(), "application/json"
    token = draw(st.sampled_from(["good", "good", "good", "wrong", "none", "in body"]))
    return body, kind, token


@pytest.mark.slow
def test_a_thousand_random_payloads_never_get_a_500_and_refusals_write_nothing(engine, admin, fired):  # noqa: F811
    made = new_form(engine, admin, rate=10_000)
    app = Starlette(routes=routes(engine=engine))
    seen: dict[int, int] = {}

    @settings(max_examples=1000, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example])
    @given(requests_())
    def check(request):
        body, kind, token = request
        headers = {"content-type": kind} if kind else {}
        if token in ("good", "wrong"):
            headers["x-form-token"] = made.token if token == "good" else "wrong"
        elif token == "in body" and kind == "application/json" and body.startswith(b"{") and body != b"{}":
            body = b'{"form_token": ' + json.dumps(made.token).encode() + b", " + body[1:]
        status, _, answer = call(app, "/api/forms/contact-us", body, headers)
        seen[status] = seen.get(status, 0) + 1
        assert status in ALLOWED, answer
        payload = json.loads(answer)
        if status == 200:
            assert payload == {"ok": True}
            counts.update(table_counts(engine))
        else:
            assert set(payload) == {"error", "field"} and table_counts(engine) == counts

    counts = table_counts(engine)  # what the database holds after the last accepted submission
    check()
    # The payloads reached every answer that matters, including acceptance (hand-checked mixes of the strategy).
    assert {200, 400, 401, 415, 422} <= set(seen), seen
