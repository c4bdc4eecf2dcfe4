"""Shared fixtures of the NLU tests: a tiny bilingual training set and a model trained on it."""

from __future__ import annotations

from pathlib import Path

import pytest

from nlu import TrainingData, load_model, train_model
from nlu.training_data import read_training_yaml

TINY_NLU_YAML = """\
version: "3.1"
nlu:
- intent: order_status
  examples: |
    - đơn hàng [DH123456](order_id) của mình đang ở đâu
    - kiểm tra giúp em đơn hàng với
    - đơn của mình giao tới đâu rồi shop
    - don hang cua minh dang o dau
    - tình trạng đơn hàng [DH100002](order_id) thế nào rồi
    - đơn hàng của em bao giờ tới
    - where is my order [DH555555](order_id)
    - track my order please
- intent: ask_warranty_policy
  examples: |
    - chính sách bảo hành thế nào
    - bảo hành bao lâu vậy shop
    - [nồi cơm điện](product) được bảo hành mấy tháng
    - sản phẩm này bảo hành ở đâu
    - bao hanh may thang vay
    - điều kiện bảo hành là gì
    - what is your warranty policy
    - how long is the warranty
- intent: talk_to_human
  examples: |
    - cho mình gặp nhân viên
    - mình muốn nói chuyện với người thật
    - gặp tư vấn viên được không
    - chuyển cho nhân viên hỗ trợ đi
    - cho gap nhan vien tu van
    - mình cần người hỗ trợ trực tiếp
    - let me talk to a human
    - connect me to an agent
- intent: greet
  examples: |
    - xin chào
    - chào shop
    - chào bạn
    - hello
    - hi there
    - alo shop ơi
    - chao ban
    - good morning
- synonym: nồi cơm điện
  examples: |
    - noi com dien
    - nồi cơm
- lookup: product
  examples: |
    - nồi cơm điện
    - máy lọc không khí
    - quạt điều hòa
"""


@pytest.fixture(scope="session")
def tiny_data() -> TrainingData:
    """The tiny training set."""
    return read_training_yaml(TINY_NLU_YAML, "tiny.yml")


@pytest.fixture(scope="session")
def tiny_data_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny training set written to a file."""
    path = tmp_path_factory.mktemp("data") / "nlu.yml"
    path.write_text(TINY_NLU_YAML, encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory, tiny_data: TrainingData) -> Path:
    """A model trained once on the tiny set with the default pipeline."""
    return train_model(tiny_data, tmp_path_factory.mktemp("models") / "tiny")


@pytest.fixture(scope="session")
def tiny_interpreter(tiny_model_dir: Path):
    """The tiny model, loaded."""
    return load_model(tiny_model_dir)
