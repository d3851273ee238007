"""Domain errors: each names what was wrong, and entry points map them to a status code."""

from __future__ import annotations


class LRSError(Exception):
    status = 400


class BadRequest(LRSError):
    status = 400


class Conflict(LRSError):
    """A statement id is already stored with different content (Communication 2.1.2)."""

    status = 409


class Unauthorized(LRSError):
    status = 401


class Forbidden(LRSError):
    status = 403


class NotFound(LRSError):
    status = 404


class PayloadTooLarge(LRSError):
    status = 413


class UnsupportedMediaType(LRSError):
    status = 415


class PreconditionFailed(LRSError):
    status = 412


class StoreRefused(LRSError):
    """The event store would not write a batch that passed validation; nothing of it is stored."""

    status = 500
