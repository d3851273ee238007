"""Agents and Groups (xAPI Data 2.4.2) and the IFI rule that identifies them."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Discriminator, Tag, model_validator

from schemas.base import AccountName, AgentName, IdIRI, MailtoIRI, Sha1Sum, XAPIModel

IFI_PROPERTIES = ("mbox", "mbox_sha1sum", "openid", "account")


class Account(XAPIModel):
    homePage: IdIRI
    name: AccountName


class _Identified(XAPIModel):
    name: AgentName | None = None
    mbox: MailtoIRI | None = None
    mbox_sha1sum: Sha1Sum | None = None
    openid: IdIRI | None = None
    account: Account | None = None

    def ifis(self) -> list[str]:
        return [p for p in IFI_PROPERTIES if getattr(self, p) is not None]


class Agent(_Identified):
    """An Agent has exactly one inverse functional identifier (2.4.2.1)."""

    objectType: Literal["Agent"] | None = None

    @model_validator(mode="after")
    def _exactly_one_ifi(self) -> Agent:
        found = self.ifis()
        if len(found) != 1:
            raise ValueError(
                "an Agent must have exactly one of mbox, mbox_sha1sum, openid, account"
                f" (found {len(found)}: {', '.join(found) or 'none'})"
            )
        return self


class Group(_Identified):
    """A Group is anonymous (members, no IFI) or identified (exactly one IFI)."""

    objectType: Literal["Group"]
    member: list[Agent] | None = None

    @model_validator(mode="after")
    def _anonymous_or_identified(self) -> Group:
        found = self.ifis()
        if len(found) > 1:
            raise ValueError(
                "an identified Group must have exactly one of mbox, mbox_sha1sum, openid,"
                f" account (found {len(found)}: {', '.join(found)})"
            )
        if not found and not self.member:
            raise ValueError("an anonymous Group (no IFI) must list at least one member")
        return self


def _actor_type(value: Any) -> str:
    if isinstance(value, dict) and value.get("objectType") == "Group":
        return "Group"
    return "Agent"


# Discriminated on objectType so an error names one shape, not both.
Actor = Annotated[
    Annotated[Agent, Tag("Agent")] | Annotated[Group, Tag("Group")],
    Discriminator(_actor_type),
]


def ifi_key(actor: Agent | Group) -> str | None:
    """The canonical string of an actor's IFI, used to compare and index actors."""
    if actor.mbox is not None:
        local, _, domain = actor.mbox.partition("@")
        return f"mbox:{local}@{domain.lower()}"
    if actor.mbox_sha1sum is not None:
        return f"mbox_sha1sum:{actor.mbox_sha1sum.lower()}"
    if actor.openid is not None:
        return f"openid:{actor.openid}"
    if actor.account is not None:
        return f"account:{actor.account.homePage}|{actor.account.name}"
    return None
