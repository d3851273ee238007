"""A running LRS as the commands see it (`lrs sql --url`, `lrs simulate --url`).

People paste whichever address they have: the xAPI endpoint `lrs serve` prints
(`http://host:8000/xAPI/`) or the server's root; both mean the same server. Whatever goes
wrong is said on one line naming the URL that was given and the request that was made, with
what to do about it; the secret of the credential is never printed.
"""

from __future__ import annotations

import argparse
import base64
import os
from types import TracebackType
from typing import Any

import httpx

from lrs.cli.common import CommandFailed, UsageError
from lrs.errors import BadRequest

XAPI_PATH = "/xapi"
EXAMPLE = "http://127.0.0.1:8000/xAPI/"
_REFUSED_REQUESTS = {400, 409, 413}  # the LRS read the request and said what was wrong with it


def server_root(url: str, option: str = "--url") -> str:
    """The server's root without a trailing slash, from its root or its xAPI endpoint (a path
    before /xAPI, as behind a proxy, is kept)."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise CommandFailed(f"{option} {url}: not a URL ({exc}); give the address `lrs serve`"
                            f" prints, e.g. {EXAMPLE}") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise CommandFailed(f"{option} {url}: not an http:// or https:// URL with a host; give the"
                            f" address `lrs serve` prints, e.g. {EXAMPLE}")
    path = parsed.path.rstrip("/")
    if path.lower().endswith(XAPI_PATH):
        path = path[: -len(XAPI_PATH)]
    return str(parsed.copy_with(path=path or "/", query=None, fragment=None)).rstrip("/")


class RemoteLRS:
    """An HTTP client for one LRS whose failures are one-line messages (CommandFailed, or
    BadRequest when the LRS refused the request itself, as the local path would)."""

    def __init__(self, url: str, credential: str, timeout: float, option: str = "--url") -> None:
        self.given = f"{option} {url}"
        self.root = server_root(url, option)
        key, colon, secret = credential.partition(":")
        if not (key and colon and secret):
            raise UsageError(f"{self.given} needs a credential as KEY:SECRET: pass --credential or set"
                             " LRS_CREDENTIAL (a development server's is the first line of"
                             " DATA_DIR/dev-credential)")
        self.key = key
        token = base64.b64encode(credential.encode()).decode()
        self.client = httpx.Client(base_url=self.root, timeout=timeout,
                                   headers={"Authorization": f"Basic {token}"})

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        """The 2xx answer to a POST; anything else raises with the URL and what to do."""
        url = f"{self.root}{path}"
        try:
            response = self.client.post(path, **kwargs)
        except httpx.TimeoutException:
            raise CommandFailed(f"the LRS at {self.given} did not answer POST {url} within"
                                f" {self.client.timeout.read} s; is it overloaded or stuck?") from None
        except httpx.TransportError as exc:
            reason = str(exc) or type(exc).__name__
            raise CommandFailed(f"cannot reach an LRS at {self.given} (POST {url}: {reason}); is"
                                " `lrs serve` running there? Give --url or LRS_URL the address it"
                                f" prints, e.g. {EXAMPLE}") from None
        if not response.is_success:
            raise self._refusal(response)
        return response

    def post_json(self, path: str, **kwargs: Any) -> Any:
        response = self.post(path, **kwargs)
        try:
            return response.json()
        except ValueError:
            raise CommandFailed(f"{self.given}: POST {response.request.url} answered"
                                f" {response.status_code} without JSON; is this an LRS? Give the"
                                f" address `lrs serve` prints, e.g. {EXAMPLE}") from None

    def _refusal(self, response: httpx.Response) -> Exception:
        status = response.status_code
        where = f"{self.given} (POST {response.request.url}: {status})"
        message = _error_message(response)
        if status == 401:
            return CommandFailed(f"the LRS at {where} did not accept the credential {self.key}: check"
                                 " --credential or LRS_CREDENTIAL (KEY:SECRET, e.g. from `lrs"
                                 " credentials add`)")
        if status == 403:
            return CommandFailed(f"the LRS at {where} refused the credential {self.key}:"
                                 f" {message or response.reason_phrase};"
                                 " use a credential with that scope")
        if status in _REFUSED_REQUESTS and message is not None:
            return BadRequest(f"{message} (answered {status} to POST {response.request.url},"
                              f" {self.given})")
        if status == 404 and message in (None, "Not Found"):
            return CommandFailed(f"no LRS answers at {where}; give the address `lrs serve` prints,"
                                 f" e.g. {EXAMPLE}")
        retry = response.headers.get("Retry-After")
        later = f"; try again in {retry} s" if retry else ""
        return CommandFailed(f"the LRS at {where} answered: {message or response.reason_phrase}{later}")

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> RemoteLRS:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def _error_message(response: httpx.Response) -> str | None:
    """The LRS's own `{"error": {"message": ...}}`, or None when the answer is not one."""
    try:
        body = response.json()
    except ValueError:
        return None
    error = body.get("error") if isinstance(body, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    return message if isinstance(message, str) else None


def remote_from(args: argparse.Namespace, timeout: float) -> RemoteLRS | None:
    """The LRS of --url (else LRS_URL) with --credential (else LRS_CREDENTIAL), or None when
    neither URL is given."""
    option, url = ("--url", args.url) if args.url else ("LRS_URL", os.environ.get("LRS_URL", ""))
    if not url:
        return None
    credential = args.credential or os.environ.get("LRS_CREDENTIAL", "")
    return RemoteLRS(url, credential, timeout, option)
