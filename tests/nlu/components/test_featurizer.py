"""The n-gram TF-IDF featuriser."""

from __future__ import annotations

import numpy as np

from nlu.components.featurizer import NgramFeaturizer, char_wb_ngrams, feature_matrix, word_ngrams
from nlu.components.normalizer import VietnameseNormalizer
from nlu.message import Message


def prepared(texts):
    messages = [Message(t) for t in texts]
    VietnameseNormalizer().process_batch(messages)
    return messages


def test_word_ngrams_cover_the_requested_range():
    assert word_ngrams("bảo hành sp", 1, 2) == ["bảo", "hành", "sp", "bảo hành", "hành sp"]


def test_char_wb_ngrams_pad_each_word():
    assert char_wb_ngrams("ab", 2, 3) == [" a", "ab", "b ", " ab", "ab "]


def test_char_wb_ngrams_made_word_by_word_with_a_cache_equal_the_whole_texts():
    block = NgramFeaturizer().blocks[1]
    assert block.analyzer == "char_wb"
    cache: dict[str, list[str]] = {}
    messages = prepared(["bảo hành bao lâu", "bảo hành ở đâu", "bao lâu"])
    for message in messages:
        text = message.data[block.view]
        assert block.grams(message, cache) == char_wb_ngrams(text, block.low, block.high)
    assert set(cache) == {"bao", "hanh", "lau", "o", "dau"}


def test_each_block_has_the_length_of_its_weight():
    featurizer = NgramFeaturizer()
    training = prepared(["bảo hành bao lâu", "đơn hàng ở đâu", "xin chào shop"])
    featurizer.train(training)
    indices, values = featurizer.features(training[0])
    offsets = [*featurizer._offsets, featurizer.dimension]
    for low, high, block_config in zip(offsets, offsets[1:], featurizer.config["blocks"]):
        block = values[(indices >= low) & (indices < high)]
        assert abs(float(block @ block) ** 0.5 - block_config.get("weight", 1.0)) < 1e-5


def test_accented_and_unaccented_spellings_share_folded_features():
    featurizer = NgramFeaturizer()
    training = prepared(["bảo hành bao lâu", "đơn hàng ở đâu"])
    featurizer.train(training)
    accented, plain = prepared(["bảo hành", "bao hanh"])
    shared = set(featurizer.features(accented)[0]) & set(featurizer.features(plain)[0])
    folded_block = range(featurizer._offsets[0], featurizer._offsets[2])
    assert any(i in folded_block for i in shared)


def test_unseen_text_gives_an_empty_vector():
    featurizer = NgramFeaturizer(
        {"blocks": [{"view": "normalized", "analyzer": "word", "ngram_range": [1, 1]}]}
    )
    featurizer.train(prepared(["xin chào"]))
    indices, values = featurizer.features(prepared(["qwerty"])[0])
    assert len(indices) == len(values) == 0


def test_features_survive_persist_and_load(tmp_path):
    featurizer = NgramFeaturizer()
    featurizer.train(prepared(["bảo hành bao lâu", "đơn hàng ở đâu", "hello there"]))
    featurizer.persist(tmp_path)
    loaded = NgramFeaturizer.load(tmp_path, featurizer.config)
    probe = prepared(["đơn bảo hành hello"])[0]
    for got, expected in zip(loaded.features(probe), featurizer.features(probe)):
        np.testing.assert_array_equal(got, expected)


def test_feature_matrix_stacks_messages():
    featurizer = NgramFeaturizer()
    messages = prepared(["bảo hành", "đơn hàng"])
    featurizer.train(messages)
    featurizer.process_batch(messages)
    matrix = feature_matrix(messages)
    assert matrix.shape == (2, featurizer.dimension)
    np.testing.assert_allclose(
        matrix[1].toarray()[0][messages[1].data["sparse_features"][0]],
        messages[1].data["sparse_features"][1],
        rtol=1e-6,
    )
