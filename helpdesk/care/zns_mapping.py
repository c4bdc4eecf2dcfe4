"""The ZNS template mapping an admin saves (care step -> template id, template parameter -> CareDesk value):
checked with Zalo when it is saved, so that a template that is not approved or whose parameters CareDesk
cannot fill is refused then, not at the first send to a customer. ``CAREDESK_ZNS__TEMPLATES`` and
``CAREDESK_ZNS__PARAMETERS`` stay the default until a mapping is saved.

The saved mapping is kept in the database (sealed like channel credentials), so every replica uses it:
each care run looks whether it changed."""

from __future__ import annotations

import logging
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy.engine import Engine

from connectors.zalo_zns import ZnsConfig
from helpdesk.channels.credentials import DatabaseCredentialStore
from helpdesk.care.zns import ZnsCare, check_mapping
from helpdesk.core.crypto import secret_box

log = logging.getLogger(__name__)

#: the key the mapping is kept under, next to the channels' credentials
STORE_KEY = "zns:templates"


class SavedZnsMapping(BaseModel):
    """What an admin saved."""

    templates: dict[str, str]
    parameters: dict[str, str] = {}


class MappingRefused(ValueError):
    """The mapping cannot work; ``problems`` names each reason."""

    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = problems


def mapping_store(engine: Engine, settings: Any) -> DatabaseCredentialStore:
    """Where the saved mapping is kept."""
    return DatabaseCredentialStore(engine, secret_box(settings), STORE_KEY, SavedZnsMapping)


async def save_mapping(zns: ZnsCare, store: DatabaseCredentialStore, templates: dict[str, Any],
                       parameters: dict[str, str]) -> SavedZnsMapping:
    """Check the mapping with Zalo and, if every step's template is approved and fillable, save it and
    use it from now on. MappingRefused with every problem otherwise (nothing saved); ZnsError when Zalo
    cannot be asked now (nothing saved: an unchecked mapping is what this refuses)."""
    try:
        config = ZnsConfig(templates=templates, parameters=parameters)
    except ValidationError as error:
        raise MappingRefused([e["msg"].removeprefix("Value error, ") for e in error.errors()]) from None
    found, problems = await check_mapping(zns.client, config.templates, config.parameters)
    if problems:
        raise MappingRefused(problems)
    saved = SavedZnsMapping(templates=config.templates, parameters=config.parameters)
    await store.save(saved)
    _use(zns, saved)
    zns.templates = found
    return saved


async def apply_saved_mapping(zns: ZnsCare, store: DatabaseCredentialStore) -> bool:
    """Use the saved mapping if there is one and it differs from the one in use; whether it changed."""
    saved = await store.load()
    if saved is None or (saved.templates == zns.mapping and saved.parameters == zns.parameters):
        return False
    _use(zns, saved)
    zns.templates = {}  # checked again at the next send (another replica checked it when it was saved)
    return True


def _use(zns: ZnsCare, saved: SavedZnsMapping) -> None:
    zns.mapping, zns.parameters = dict(saved.templates), dict(saved.parameters)
    log.info("ZNS template mapping in use: %s", zns.mapping)
