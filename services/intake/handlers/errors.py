"""One error shape for the HTTP API (`Problem`), the codes each status uses, and the
handlers that answer every failure with it: only documented statuses, never the input echoed
(it may be customer text).
"""

from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.intake.core.tickets import RejectCode


class InvalidField(BaseModel):
    field: str = Field(description="Where: `body.<field>`, a header name, or `body`.")
    message: str


# The machine-readable codes, per status: the error shape is the same everywhere.
ERROR_CODES = {
    401: ["unauthenticated"],
    403: ["forbidden"],
    404: [RejectCode.UNKNOWN_TICKET.value],
    409: [
        code.value
        for code in RejectCode
        if code not in (RejectCode.MALFORMED, RejectCode.REUSED_KEY, RejectCode.UNKNOWN_TICKET)
    ],
    413: ["too_large"],
    422: ["invalid_request", RejectCode.REUSED_KEY.value],
    429: ["rate_limited"],
    500: ["internal_error"],
    503: ["unavailable", "overloaded"],
}
_MEANING = {
    401: "No valid API key (`Authorization: Bearer <key>`).",
    403: "The API key may not take this action.",
    404: "No such ticket for this client: it does not exist, or another client created it and this key is not "
    "granted every ticket (the two are indistinguishable on purpose).",
    409: "The command does not fit the ticket's state (e.g. ticket_resolved).",
    413: "The body is larger than the server accepts.",
    422: "Invalid body or headers (every field named in `fields`), or an Idempotency-Key already used "
    "for another request (idempotency_key_reused).",
    429: "The client is over its rate limit (a token bucket per client: INTAKE_RATE_PER_SECOND and INTAKE_BURST, "
    "or its key's rate_per_second and burst); nothing was applied. Retry after `Retry-After` seconds.",
    500: "The command could not be stored because of a fault of ours; it was not applied.",
    503: "Storage is unavailable (unavailable), or too many commands are queued (overloaded, INTAKE_HTTP_QUEUE); "
    "nothing was applied: retry after `Retry-After` seconds with the same Idempotency-Key.",
}


class Problem(BaseModel):
    error: Literal[tuple(sorted({code for codes in ERROR_CODES.values() for code in codes}))] = Field(  # type: ignore[valid-type]
        description="Machine-readable code; the codes each status uses are listed with it."
    )
    detail: str = Field(description="One line for people; never echoes customer text.")
    fields: list[InvalidField] = Field(default_factory=list, description="Invalid fields (422 only).")


RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before retrying.", "schema": {"type": "integer"}}}
ERRORS: dict[int | str, dict[str, Any]] = {
    status: {
        "model": Problem,
        "description": f"{_MEANING[status]} Codes: {', '.join(codes)}.",
        **({"headers": RETRY_AFTER} if status in (429, 503) else {}),
    }
    for status, codes in ERROR_CODES.items()
}


def problem(
    status: int,
    error: str,
    detail: str,
    fields: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse({"error": error, "detail": detail, "fields": fields or []}, status_code=status, headers=headers)


class Refused(Exception):
    def __init__(self, response: JSONResponse) -> None:
        self.response = response


def install_error_handlers(app: FastAPI) -> None:
    """One error shape everywhere (`Problem`), and only documented statuses."""

    @app.exception_handler(Refused)
    async def refused(_: Request, error: Refused) -> JSONResponse:
        return error.response

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, error: StarletteHTTPException) -> JSONResponse:
        if error.status_code == 400:  # FastAPI's answer to a body it cannot even decode
            return problem(
                422,
                "invalid_request",
                "body: not a JSON document (UTF-8)",
                [{"field": "body", "message": "not a JSON document (UTF-8)"}],
            )
        names = {404: "not_found", 405: "method_not_allowed"}
        return problem(
            error.status_code,
            names.get(error.status_code, "http_error"),
            str(error.detail),
            headers=getattr(error, "headers", None),
        )

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, error: RequestValidationError) -> JSONResponse:
        # Name every invalid field; never echo the input (it may be customer text).
        fields = [
            {"field": ".".join(str(part) for part in item["loc"]), "message": item["msg"]} for item in error.errors()
        ]
        return problem(422, "invalid_request", "; ".join(f"{f['field']}: {f['message']}" for f in fields), fields)
