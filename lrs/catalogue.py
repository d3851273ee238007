"""The catalogue of stores: which exist and which are archived, as events in `default`'s log."""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.utils import get_topic

from lrs.config import DEFAULT_STORE, check_store_name
from lrs.domain import Store, store_id
from lrs.errors import BadRequest, Conflict, NotFound


@dataclass(frozen=True, slots=True)
class StoreInfo:
    name: str
    archived: bool


class StoreCommands(Application[UUID]):
    """The store use cases of the LRS application; only the `default` store's log holds them."""

    def create_store(self, name: str) -> StoreInfo:
        try:
            check_store_name(name)
        except ValueError as exc:
            raise BadRequest(str(exc)) from None
        if name == DEFAULT_STORE or self.store_info(name) is not None:
            raise Conflict(f"store '{name}' exists already; a name is given once, even after"
                           " the store is archived")
        self.save(Store(id=store_id(name), name=name))
        return StoreInfo(name, archived=False)

    def archive_store(self, name: str) -> StoreInfo:
        """An archived store keeps its data for an administrator's export (`lrs export --store`);
        its credentials are refused (403) and nothing more is written to it."""
        if name == DEFAULT_STORE:
            raise BadRequest("store 'default' holds the catalogue of stores and credentials;"
                             " it cannot be archived")
        try:
            store = cast(Store, self.repository.get(store_id(name)))
        except AggregateNotFoundError:
            raise NotFound(f"no store named '{name}'") from None
        if not store.archived:
            store.archive()
            self.save(store)
        return StoreInfo(name, archived=True)

    def store_info(self, name: str) -> StoreInfo | None:
        """The store of that name (`default` always exists), or None."""
        if name == DEFAULT_STORE:
            return StoreInfo(DEFAULT_STORE, archived=False)
        try:
            store = cast(Store, self.repository.get(store_id(name)))
        except AggregateNotFoundError:
            return None
        return StoreInfo(store.name, store.archived)

    def stores(self) -> list[StoreInfo]:
        topic = get_topic(Store.Created)
        found = [StoreInfo(DEFAULT_STORE, archived=False)]
        start = 1
        while True:
            page = self.recorder.select_notifications(start, 500, topics=[topic])
            for notification in page:
                name = self.mapper.to_domain_event(notification).name  # type: ignore[attr-defined]
                info = self.store_info(name)
                if info is not None:
                    found.append(info)
            if len(page) < 500:
                return found
            start = page[-1].id + 1
