"""``POST /model/parse`` returns learned entities in Rasa's shape (a model trained on a small
Vietnamese set with annotated districts, cities with roles, product models and a synonym)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from nlu import ModelStore
from nlu.training_data import read_training_yaml
from tests.conftest import CareDeskClient, start_client
from tests.nlu.components.test_crf import SHOP_YAML

RASA_ENTITY_KEYS = {"entity", "start", "end", "value", "confidence_entity", "extractor"}


@pytest.fixture(scope="module")
def shop_models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model store whose active model learned the shop's entities."""
    root = tmp_path_factory.mktemp("shop-models")
    store = ModelStore(root)
    store.activate(store.train_and_add(read_training_yaml(SHOP_YAML, "shop.yml")))
    return root


@pytest.fixture
async def shop_app(make_settings, shop_models_dir: Path) -> AsyncIterator[CareDeskClient]:
    async for client in start_client(make_settings(nlu={"models_dir": shop_models_dir})):
        yield client


async def parse(client: CareDeskClient, text: str) -> dict:
    response = await client.post("/model/parse", json={"text": text})
    assert response.status_code == 200, response.text
    return response.json()


async def test_parse_returns_learned_entities_with_roles_in_rasas_shape(shop_app):
    text = "gửi từ Cần Thơ về Huế mất mấy ngày"
    entities = (await parse(shop_app, text))["entities"]
    assert entities == [
        {
            "entity": "city",
            "start": 7,
            "end": 14,
            "value": "Cần Thơ",
            "confidence_entity": entities[0]["confidence_entity"],
            "extractor": "CRFEntityExtractor",
            "role": "from",
        },
        {
            "entity": "city",
            "start": 18,
            "end": 21,
            "value": "Huế",
            "confidence_entity": entities[1]["confidence_entity"],
            "extractor": "CRFEntityExtractor",
            "role": "to",
        },
    ]
    assert all(0.5 < e["confidence_entity"] <= 1.0 for e in entities)


async def test_parse_names_the_synonym_mapper_when_it_changed_the_value(shop_app):
    entity = (await parse(shop_app, "giao ve cau giay mat may ngay"))["entities"][0]
    assert set(entity) == RASA_ENTITY_KEYS | {"processors"}
    assert (entity["entity"], entity["value"], entity["processors"]) == (
        "district",
        "Cầu Giấy",
        ["EntitySynonymMapper"],
    )


async def test_parse_keeps_the_rule_extractors_entity_where_it_matches(shop_app):
    entities = (await parse(shop_app, "giá của SHD9990 là bao nhiêu, gọi 0987 654 321 nhé"))["entities"]
    assert [(e["entity"], e["value"], e["extractor"]) for e in entities] == [
        ("product_model", "SHD9990", "CRFEntityExtractor"),
        ("phone", "0987654321", "RegexEntityExtractor"),
    ]
    assert all(set(e) == RASA_ENTITY_KEYS for e in entities)
