"""`POST /api/forms/<form_key>`: web-form submissions, as JSON or as a plain HTML form's urlencoded body.

Answers, checked in this order, each error as {"error": message, "field": the form's field or null}:
413 body over 64 KiB · 404 no active form with that key · 401 token missing or wrong (the X-Form-Token header,
or a `form_token` field) · 429 over the form's rate limit, with Retry-After · 400 a body that is not a JSON object
or not UTF-8 form data · 415 another content type · 422 a field's value refused. 200 {"ok": true} when taken,
alike for a new and a known contact (the answer does not reveal which emails the CRM holds).

Nothing is written before the token is checked and the rate counted, and the submission itself is one
transaction (crm.webforms.intake.submit_form): any refusal writes nothing. The handler runs the database work in
a worker thread, so the event loop serving the pages' websockets never waits for it.
"""
import json
from typing import Any
from urllib.parse import parse_qsl

from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from crm.db import read_scope, session_scope
from crm.errors import AuthenticationFailed, CRMError, NotFound, ValidationFailed
from crm.ratelimit import RateLimiter
from crm.webforms.fields import TOKEN_FIELD
from crm.webforms.forms import authenticate_form
from crm.webforms.intake import submit_form

PATH = "/api/forms/{form_key}"
TOKEN_HEADER = "x-form-token"
MAX_BODY = 64 * 1024
MAX_FIELDS = 1000
# No cookies or sessions are involved (the token is the credential), so any site may post a form here.
_CORS = {"Access-Control-Allow-Origin": "*"}
_PREFLIGHT = {**_CORS, "Access-Control-Allow-Methods": "POST", "Access-Control-Max-Age": "600",
              "Access-Control-Allow-Headers": f"Content-Type, {TOKEN_HEADER}"}


def routes(*, engine: Engine | None = None, limiter: RateLimiter | None = None) -> list[Route]:
    """The API's routes for st.App(routes=...); tests pass their own database and limiter (the app's by default)."""
    limiter = limiter or RateLimiter()

    async def forms_endpoint(request: Request) -> Response:
        if request.method == "OPTIONS":
            return Response(status_code=204, headers=_PREFLIGHT)
        try:
            body = await _body(request)
        except ClientDisconnect:
            return _answer(400, "the request ended before its body did")
        if body is None:
            return _answer(413, f"the body is larger than {MAX_BODY // 1024} KiB")
        return await run_in_threadpool(_handle, engine, limiter, request.path_params["form_key"], request.headers, body)

    return [Route(PATH, forms_endpoint, methods=["POST", "OPTIONS"])]


async def _body(request: Request) -> bytes | None:
    """The body, read no further than MAX_BODY bytes; None when it is larger (or says it is)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        return None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _handle(engine: Engine | None, limiter: RateLimiter, form_key: str, headers, body: bytes) -> Response:
    """Token, rate and body checks in the documented order, then the submission (in a worker thread)."""
    fields, problem = _parse(headers.get("content-type", ""), body)
    token = headers.get(TOKEN_HEADER) or fields.get(TOKEN_FIELD)
    try:
        with read_scope(engine) as session:  # a flood of bad tokens never takes SQLite's write lock
            form = authenticate_form(session=session, form_key=form_key, token=token)
            limit_key, limit = form.token_hash, form.rate_limit_per_minute
    except NotFound as exc:
        return _answer(404, exc.message)
    except AuthenticationFailed as exc:
        return _answer(401, exc.message)
    if wait := limiter.hit(limit_key, limit):
        return _answer(429, f"this form takes at most {limit} submissions a minute; try again in {wait} s",
                       headers={"Retry-After": str(wait)})
    if problem:
        return _answer(*problem)
    return _submit(engine, form_key, token, fields, headers.get("referer"))


def _submit(engine: Engine | None, form_key: str, token: str, fields: dict[str, Any], page_url: str | None) -> Response:
    try:
        with session_scope(engine) as session:
            submit_form(session=session, form_key=form_key, token=token, fields=fields, page_url=page_url)
    except ValidationFailed as exc:
        return _answer(422, exc.reason, field=exc.field)
    except NotFound as exc:  # deactivated, or its token rotated, since the check above
        return _answer(404, exc.message)
    except AuthenticationFailed as exc:
        return _answer(401, exc.message)
    except CRMError as exc:  # any other refusal by a use case, e.g. a right an admin took away meanwhile
        return _answer(422, exc.message)
    return _answer(200, None)


def _parse(content_type: str, body: bytes) -> tuple[dict[str, Any], tuple[int, str] | None]:
    """The submitted {field: value}, or ({}, (status, reason)) when the body cannot be read."""
    kind = content_type.split(";")[0].strip().lower()
    if kind == "application/json":
        try:
            data = json.loads(body)
        except (ValueError, RecursionError):  # bad JSON, bad UTF-8, absurd nesting
            return {}, (400, "the body is not valid JSON")
        if not isinstance(data, dict):
            return {}, (400, "the body must be a JSON object of field names and values")
        return data, None
    if kind == "application/x-www-form-urlencoded":
        try:
            pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, errors="strict", max_num_fields=MAX_FIELDS)
        except ValueError:  # bad UTF-8, or too many fields
            return {}, (400, "the body is not UTF-8 form data")
        fields: dict[str, list[str]] = {}
        for name, value in pairs:
            fields.setdefault(name, []).append(value)
        return {name: values[0] if len(values) == 1 else values for name, values in fields.items()}, None
    return {}, (415, "send the form as application/json or application/x-www-form-urlencoded")


def _answer(status: int, error: str | None, *, field: str | None = None, headers: dict | None = None) -> Response:
    """JSON with every non-ASCII character escaped, so any text a caller sent can be echoed back safely."""
    payload = {"ok": True} if error is None else {"error": error, "field": field}
    return Response(json.dumps(payload), status_code=status, media_type="application/json",
                    headers={**_CORS, **(headers or {})})
