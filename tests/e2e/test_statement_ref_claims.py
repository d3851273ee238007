"""A StatementRef is no claim on what its target holds, and a 403 tells nothing of another's.

Found by an attacker of the read/mine fix; each test failed on SQLite and PostgreSQL before
its fix. A statement that targets another matches that one's filters (Communication 2.1.3),
but neither its attachments (Data 2.4.11: served to those who may read the statement that came
with the bytes) nor, once forgotten, a learner's files."""

from __future__ import annotations

import uuid
from typing import Any

from tests.attachments import declared, multipart, sha256
from tests.conftest import XAPIClient
from tests.e2e.test_attachments import send
from tests.integration.test_erasure import ADA, ADA_ATTACHMENT, ADA_NAME, forget, said
from tests.statements import statement, voiding, with_id

SECRET = b"Zed's private essay.\n" * 20


def _credential(xapi: XAPIClient, store_of: Any, scopes: list[str]) -> XAPIClient:
    return xapi.as_credential(*store_of.issue_credential("tool", scopes))


def _post_with_bytes(client: XAPIClient, doc: dict[str, Any], content: bytes) -> None:
    assert send(client, *multipart(doc, (content, "text/plain"))).status_code == 200


def _claiming_reference(xapi: XAPIClient, store_of: Any, target: str,
                        content: bytes) -> tuple[XAPIClient, dict[str, Any]]:
    """A read/mine credential's StatementRef to the target, declaring its file by a fileUrl."""
    thief = _credential(xapi, store_of, ["statements/write", "statements/read/mine"])
    claim = {**declared(content), "fileUrl": "https://example.org/not-mine"}
    ref = with_id(statement(object={"objectType": "StatementRef", "id": target},
                            attachments=[claim]))
    assert thief.post(ref).status_code == 200
    return thief, ref


def test_a_ref_does_not_lend_its_targets_attachment_to_a_mine_reader(xapi: XAPIClient,
                                                                     store_of: Any) -> None:
    """Declaring the target's hash with a fileUrl on a reference to it proves nothing."""
    owner = _credential(xapi, store_of, ["statements/write"])
    victim = with_id(statement(attachments=[declared(SECRET)]))
    _post_with_bytes(owner, victim, SECRET)
    thief, ref = _claiming_reference(xapi, store_of, victim["id"], SECRET)
    response = thief.get(statementId=ref["id"], attachments="true")
    assert response.status_code == 200
    assert SECRET not in response.content


def test_forgetting_the_sender_drops_an_attachment_a_ref_to_it_carries(xapi: XAPIClient,
                                                                       store_of: Any) -> None:
    """Another credential's reference to the forgotten learner's statement keeps no file."""
    essay = said(ADA, ADA_NAME, "essay", attachments=[declared(ADA_ATTACHMENT)])
    _post_with_bytes(xapi, essay, ADA_ATTACHMENT)
    anyone = _credential(xapi, store_of, ["statements/write"])
    ref = with_id(statement(object={"objectType": "StatementRef", "id": essay["id"]}))
    assert anyone.post(ref).status_code == 200
    assert forget(xapi)["attachments"] == 1
    store = xapi.http.app.state.services.attachments  # type: ignore[attr-defined]
    assert not store.has(sha256(ADA_ATTACHMENT))


def test_after_forgetting_a_reference_serves_nothing_of_the_forgotten_attachment(
        xapi: XAPIClient, store_of: Any) -> None:
    essay = said(ADA, ADA_NAME, "essay", attachments=[declared(ADA_ATTACHMENT)])
    _post_with_bytes(xapi, essay, ADA_ATTACHMENT)
    thief, ref = _claiming_reference(xapi, store_of, essay["id"], ADA_ATTACHMENT)
    forget(xapi)
    assert ADA_ATTACHMENT not in thief.get(statementId=ref["id"], attachments="true").content


def test_voiding_anothers_voiding_statement_answers_as_for_an_unknown_id(xapi: XAPIClient,
                                                                          store_of: Any) -> None:
    """Whose the target is, is checked before what it is: else a 400 for 'voids a voiding
    statement' told a credential that another's statement with that id exists (Data 2.3.2)."""
    target = with_id(statement())
    their_void = with_id(voiding(target["id"]))
    assert xapi.post([target]).status_code == 200
    assert xapi.post([their_void]).status_code == 200
    mallory = _credential(xapi, store_of, ["statements/write", "statements/read/mine"])
    known = mallory.post(with_id(voiding(their_void["id"])))
    unknown = mallory.post(with_id(voiding(str(uuid.uuid4()))))
    assert known.status_code == unknown.status_code == 403
