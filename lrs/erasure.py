"""Forgetting a learner, and forgetting what is older than a day: the use cases behind
`lrs forget`, `lrs retention` and POST /admin/forget.

The event store's part happens in one transaction (lrs/store/erasure.py): the event, the keys,
the index rows, the documents. Then attachments only the forgotten statements carried leave the
attachment store, and the database is scrubbed so the deleted rows' bytes leave its files. The
views drop the learner when their runner reaches the event (projections/runner.py).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date

from lrs.application import LearningRecordStore
from lrs.credentials import learner_key
from lrs.errors import BadRequest
from lrs.store.attachments import AttachmentStore

_IFI_PREFIXES = ("mbox:mailto:", "mbox_sha1sum:", "openid:", "account:")
MAX_LEARNER_CHARS = 2048


@dataclass(frozen=True, slots=True)
class ErasureReport:
    learner: str  # the pseudonym: the report never repeats the identity it was given
    statements: int
    plaintext_statements: int  # written before sealing: their bytes stay in the log
    documents: int
    attachments: int
    keys: int
    scrub: str

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class RetentionReport:
    before: str
    statements: int
    learners: int
    keys: int
    attachments: int
    scrub: str
    dry_run: bool

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def learner_of(value: str) -> str:
    """A learner as the views key them, from an email or an IFI key; BadRequest otherwise."""
    text = value.strip()
    if not text or len(text) > MAX_LEARNER_CHARS or any(ord(ch) < 32 for ch in text):
        raise BadRequest("learner: give an email or an IFI key (mbox:mailto:…, mbox_sha1sum:…,"
                         " openid:…, account:HOMEPAGE|NAME)")
    if ":" not in text and "@" not in text:
        raise BadRequest(f"learner {text!r}: not an email or an IFI key")
    key = learner_key(text)
    if not key.startswith(_IFI_PREFIXES) or (key.startswith("account:") and "|" not in key):
        raise BadRequest(f"learner {text!r}: not an email or an IFI key (mbox:mailto:…,"
                         " mbox_sha1sum:…, openid:…, account:HOMEPAGE|NAME)")
    # As the index and the views write it: an email's domain and a SHA-1 sum in lower case.
    if key.startswith("mbox:"):
        local, _, domain = key.partition("@")
        key = f"{local}@{domain.lower()}"
    elif key.startswith("mbox_sha1sum:"):
        key = key.lower()
    return key


def forget(store: LearningRecordStore, attachments: AttachmentStore | None, learner: str,
           by: str) -> ErasureReport:
    pseudonym, erased = store.erase_learner(learner_of(learner), by)
    removed = attachments.forget(erased.attachments) if attachments is not None else 0
    return ErasureReport(pseudonym, erased.statements, erased.plaintext, erased.documents, removed,
                         erased.keys, store.scrub())


def retention(store: LearningRecordStore, attachments: AttachmentStore | None, before: date,
              by: str, dry_run: bool) -> RetentionReport:
    day = before.isoformat()
    statements, learners = store.retention_preview(day)
    if dry_run:
        return RetentionReport(day, statements, learners, 0, 0, "nothing changed", True)
    erased = store.apply_retention(day, by)
    removed = attachments.forget(erased.attachments) if attachments is not None else 0
    return RetentionReport(day, erased.statements, learners, erased.keys, removed, store.scrub(),
                           False)
