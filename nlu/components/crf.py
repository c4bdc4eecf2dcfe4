"""The learned entity extractor: a linear-chain CRF (python-crfsuite) over syllable tokens.

Vietnamese is written one syllable per space-separated token, so tokens are runs of word
characters and single punctuation marks, each keeping its character offsets. Every token is
described by its lower-cased and folded (diacritic-free) form, so a customer typing without accents
gets the same entities; by its shape, affixes and digits; by the syllables three either side; and
by the data's regex and lookup hits and by the predicted intent. Entities are tagged BIO
(``tagging: bilou`` for BILOU). Roles and groups, when the data has any, get a CRF each that sees
the entity tags and the context (not the value itself), as Rasa has separate role and group CRFs. Where a prediction overlaps an entity
an earlier (rule) extractor found, the exact extractors (order codes, phones, serials, emails) and
rules for types the data annotates too keep precedence; other rules yield to the data's own
annotation.

A CRF's cost grows with the square of its number of tags (four per entity type, plus O). Data with
many entity types (public benchmarks have 40-55) is therefore split by intent into groups of intents
sharing few enough entity types, each with its own CRF (which also learns its types from the other
intents' examples), and a message is tagged by its predicted intent's CRF; data with a shop's
handful of entity types keeps a single CRF.
"""

from __future__ import annotations

import ctypes
import json
import os
import tempfile
import threading
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pycrfsuite

from nlu.components.base import Component, register_component
from nlu.components.crf_features import (  # noqa: F401  (re-exported: the extractor's feature API)
    IDENTITY_PREFIXES,
    KINDS,
    OUTSIDE,
    TOKEN_PATTERN,
    FeatureTables,
    Token,
    bilou_tags,
    bio_tags,
    decode_bilou,
    relation_features,
    sentence_features,
    token_features,
    tokenize,
    word_shape,
)
from nlu.message import Message
from nlu.normalization import fold
from nlu.training_data import TrainingData, TrainingExample


def _c_library() -> Any:
    try:
        return ctypes.CDLL(None)
    except OSError:  # no C library to reach this way: training stays correct, only not repeatable
        return None


_LIBC = _c_library()
#: crfsuite shuffles the examples before each averaged-perceptron epoch with the C library's rand():
#: without a fixed seed the same data trained a different model depending on what ran before in the
#: process (HWU64 entity F1 varied by ±0.01 between identical runs)
CRF_SEED = 1
_train_lock = threading.Lock()


def _train_tagger(
    sequences: Sequence[Any], labels: Sequence[list[str]], params: dict[str, Any], seed_offset: int = 0
) -> bytes:
    """Train a CRF and return the model file's bytes (crfsuite writes to a file). The shuffling is
    seeded first, under a lock, so the same data always trains the same model. ``sequences`` are
    attribute lists or ``pycrfsuite.ItemSequence`` objects (built once, reused by several CRFs)."""
    with _train_lock:
        if _LIBC is not None:
            _LIBC.srand(CRF_SEED + seed_offset)
        return _train_seeded(sequences, labels, params)


def _train_seeded(
    sequences: Sequence[Any], labels: Sequence[list[str]], params: dict[str, Any]
) -> bytes:
    trainer = pycrfsuite.Trainer(verbose=False)
    trainer.select(params["algorithm"])
    trainer.set_params({k: v for k, v in params.items() if k != "algorithm"})
    for sequence, tags in zip(sequences, labels):
        trainer.append(sequence, tags)
    descriptor, path = tempfile.mkstemp(suffix=".crfsuite")
    os.close(descriptor)
    try:
        trainer.train(path)
        return Path(path).read_bytes()
    finally:
        os.unlink(path)


class _Featurised:
    """A training example as the CRFs see it: its tokens, attributes and crfsuite item sequence.

    Data split by intent trains a CRF per partition, and a partition borrows other intents'
    examples, so one example is seen by several CRFs: it is featurised and converted to crfsuite's
    item sequence once (on SNIPS this halved the CRF's preparation time)."""

    __slots__ = ("_entity_tags", "example", "items", "sequence", "tokens")

    def __init__(self, example: TrainingExample, tokens: list[Token], sequence: list[list[str]]) -> None:
        self.example, self.tokens, self.sequence = example, tokens, sequence
        self.items = pycrfsuite.ItemSequence(sequence)
        self._entity_tags: list[str] | None = None

    def unseen_copy(self, rare: bool, counts: dict[str, int], rare_outside: int) -> _Featurised:
        """Return a copy whose entity tokens lose the features naming them (the token, its folded
        form, affixes, pairs): the CRF then also learns to find an entity by its context and shape,
        as it must for a value it never saw ("email mahmoud")."""
        tags = self.entity_tags("bio")
        sequence = [
            [
                *(a for a in attributes if not a.startswith(IDENTITY_PREFIXES) and a != "rare"),
                *(["rare"] if rare else []),
            ]
            if tag != OUTSIDE or counts.get(fold(token), 0) <= rare_outside else attributes
            for attributes, tag, (token, _, _) in zip(self.sequence, tags, self.tokens)
        ]
        copy = _Featurised(self.example, self.tokens, sequence)
        copy._entity_tags = self._entity_tags
        return copy

    def entity_tags(self, tagging: str) -> list[str]:
        """Return the tags of all the example's entities (computed once)."""
        if self._entity_tags is None:
            self._entity_tags = _tags(self, "entity", None, tagging)
        return self._entity_tags


def _tags(row: _Featurised, kind: str, types: set[str] | None, tagging: str) -> list[str]:
    """Return the BIO or BILOU tags of ``row`` for its entities' ``kind`` (entity, role or group),
    counting only entities of ``types`` (None: all)."""
    spans = [
        (e.start, e.end, getattr(e, kind))
        for e in row.example.entities
        if getattr(e, kind) and (types is None or e.entity in types)
    ]
    tags = bilou_tags(row.tokens, spans)
    return bio_tags(tags) if tagging == "bio" else tags


def partition_intents(types_by_intent: dict[str, set[str]], max_types: int) -> list[set[str]]:
    """Group intents so that each group's intents share at most ``max_types`` entity types: one
    group when the whole data fits, otherwise greedily, each intent joining the group with which it
    shares the most entity types (intents without entities are left out)."""
    all_types = set().union(*types_by_intent.values()) if types_by_intent else set()
    if len(all_types) <= max_types:
        return [set(types_by_intent)]
    groups: list[tuple[set[str], set[str]]] = []
    for intent, types in sorted(types_by_intent.items(), key=lambda p: (-len(p[1]), p[0])):
        if not types:
            continue
        fitting = [g for g in groups if len(g[1] | types) <= max_types]
        if fitting:
            best = max(fitting, key=lambda g: (len(g[1] & types), -len(g[1])))
            best[0].add(intent)
            best[1].update(types)
        else:
            groups.append(({intent}, set(types)))
    return [intents for intents, _ in groups]


def _check_crfsuite_options(algorithm: str, params: Any) -> None:
    """Refuse, when the pipeline config is read rather than midway through training, an unknown
    algorithm or a ``crfsuite_params`` option that the algorithm(s) it may train with do not have
    (``auto`` may pick L-BFGS or the averaged perceptron)."""
    if not isinstance(params, dict):
        raise ValueError("crfsuite_params must map crfsuite option names to values")
    for name in ("lbfgs", "ap") if algorithm == "auto" else (algorithm,):
        trainer = pycrfsuite.Trainer(verbose=False)
        try:
            trainer.select(name)
        except ValueError:
            raise ValueError(
                f"unknown crfsuite algorithm {name!r} (use auto, lbfgs, l2sgd, ap, pa or arow)"
            ) from None
        unknown = set(params) - set(trainer.params())
        if unknown:
            raise ValueError(
                f"crfsuite_params: {min(unknown)!r} is not an option of crfsuite's {name} "
                f"(its options: {', '.join(trainer.params())})"
            )


def _vote(members: Sequence[pycrfsuite.Tagger], items: pycrfsuite.ItemSequence) -> list[str]:
    """Return, per token, the tag most of ``members`` (CRFs trained on differently shuffled
    examples) give it; on a tie, the tag with the highest summed marginal probability."""
    proposals = [member.tag(items) for member in members]
    tags = []
    for i, votes in enumerate(zip(*proposals)):
        counted = Counter(votes).most_common()
        best = [tag for tag, n in counted if n == counted[0][1]]
        if len(best) > 1:
            best.sort(key=lambda tag: -sum(member.marginal(tag, i) for member in members))
        tags.append(best[0])
    return tags


def _open_tagger(model: bytes) -> pycrfsuite.Tagger:
    tagger = pycrfsuite.Tagger()
    tagger.open_inmemory(model)
    return tagger


@register_component
class CRFEntityExtractor(Component):
    """Learns the training data's annotated entities (with roles and groups) with a CRF."""

    name = "CRFEntityExtractor"
    reads_processed_training_messages = False

    @classmethod
    def default_config(cls) -> dict[str, Any]:
        """Return the default configuration: crfsuite's training algorithm (``auto``: ``lbfgs`` with
        ``c1``/``c2`` regularisation up to ``lbfgs_max_tokens`` tokens of annotated examples, else
        ``ap``, the averaged perceptron) and its passes, whether the
        predicted intent is a feature, how many entity types one CRF may have, and how often an
        annotated value must occur to join its entity's "seen" lookup table, and whether annotated
        examples are also learned folded (no accents, lower case), and how many examples (as a
        multiple of its own) a partition's CRF borrows from other partitions having its types, and
        the rule extractors' entity types that always win over an overlapping learned entity, how
        many tokens either side a token sees (``window``: 3 measured best with seeded training on
        one trained intent model, HWU64 entity F1 0.765 -> 0.771, SNIPS 0.935 -> 0.937; 4 was no
        better than 2 in an unseeded run), and two features measured not to
        help on HWU64, off: 2/4-letter affixes (``affixes``) and the token paired with the
        predicted intent (``intent_word``); ``tagging``: ``bio`` (measured on the same trained intent
        model: HWU64 entity F1 0.771 -> 0.776, SNIPS 0.9365 -> 0.9364, CRF training 57 -> 30 s on
        HWU64) or ``bilou``.

        Off, for experiments (measured with one trained intent model; the seed of crfsuite's
        shuffling alone moves HWU64 entity F1 by about +-0.012: test 0.776 / 0.774 / 0.752 with
        seeds 1 / 2 / 3; dev split = 10% of HWU64 train, mean of seeds 1-3 0.761):
        ``wide_pairs`` (the pairs of the two syllables before and of the two after): HWU64 dev
        0.769 (better with every seed) but test 0.760 (seed 1), SNIPS dev 0.9420 -> 0.9406;
        ``hit_window`` (the regex/lookup hits of the tokens that far either side): 1 gave HWU64 dev
        0.761 (seed 1, baseline 0.763); ``crfsuite_params``, crfsuite options passed through, e.g.
        the passive-aggressive algorithm (``algorithm: pa``, ``{"type": 2, "c": 0.2}``): HWU64 dev
        0.776 (seed 1) but test 0.760, SNIPS test 0.9364 -> 0.9436. Also no better on HWU64 dev:
        affixes with or without wide_pairs (means 0.765, 0.765), 15 or 20 AP epochs,
        ``feature_minfreq`` 2 or 3 (0.754, 0.755), ``share_examples`` 1.5 (dev 0.765, test 0.7625).

        ``c2`` (L-BFGS, the shop-sized path) on a 5-fold split of data/nlu (626 annotated
        examples; the CRF alone, gold intents): 0.3 0.950, 0.1 0.952, 0.05 0.956, 0.01 0.959, 0.001
        0.962, 0 0.978; on tests/nlu/heldout.yml (79 entities) 0.05 and 0.01 0.968, 0 0.974. Not
        changed: 0.01 is within noise, and 0 (no regularisation; L-BFGS then stops early) no longer
        finds a learned district in unseen sentences of a tiny data set (test_crf).

        Aimed at recall, off (HWU64 F1, means of seeds 1-3 on two dev splits of train, shuffles 7
        and 11, and on test; baseline 0.7608 / 0.7528 / 0.7675). Most missed entities are names
        the CRF never saw ("email mahmoud"; 143 of test's 228 misses have no overlapping
        prediction; boundary 51, type 19). ``rare_count`` (N: a "rare" mark on tokens found in at
        most N training examples and their neighbours), 1: 0.7688 / 0.7612 / 0.7659 (2 and 4 no
        better; counting a training example's own token out, worse). ``unseen_copies`` (annotated
        examples learned a second time without their entity tokens' identity features):
        0.7706 / 0.7560 / 0.7590, recall up, precision down; with ``unseen_outside`` 1 (rare
        outside tokens stripped too) 0.7729 on dev, 0.7583 test. ``ensemble`` (N CRFs trained on
        differently shuffled examples, a token-wise vote), 5: 0.7696 / 0.7574 / 0.7708, and with
        rare_count 1: 0.7706 / 0.7596 / 0.7714, but 4x the training time and taggers, and seed 1
        alone on test 0.7762 -> 0.7692 (the default seed is a lucky one); ensemble 3 with
        rare_count 1, the best candidate: 0.7694 / 0.7590 / 0.7726 (seeds 0.7737, 0.7729, 0.7714),
        SNIPS test 0.9364 -> 0.9395, CRF training 5 -> 13 s; not the default, as HWU64 test with
        seed 1 goes 0.7762 -> 0.7737 and the target (0.78) is missed either way. Also no better on dev:
        L-BFGS (c2 0.05/0.2/0.5, 100 iterations: 0.7646 / 0.7621 / 0.7599, 36 s), arow 0.7094,
        pa type 1 c 1 0.7646, ``feature.possible_transitions``/``possible_states`` (unchanged
        F1), keeping only the entity types annotated in the predicted intent (0.7615). Tagging with
        the gold intent instead of the predicted one: test seed 1 0.7762 -> 0.7852."""
        return {
            "algorithm": "auto",
            "lbfgs_max_tokens": 30_000,
            "lbfgs_iterations": 50,
            "ap_epochs": 10,
            "c1": 0.0,
            "c2": 0.05,
            "feature_minfreq": 1,
            "intent_feature": True,
            "max_entity_types_per_model": 12,
            "min_seen": 2,
            "folded_copies": True,
            "share_examples": 3.0,
            "rule_precedence": ["order_id", "phone", "serial", "email"],
            "window": 3,
            "affixes": False,
            "intent_word": False,
            "tagging": "bio",
            "hit_window": 0,
            "wide_pairs": False,
            "crfsuite_params": {},
            "rare_count": 0,
            "unseen_copies": False,
            "unseen_outside": 0,
            "ensemble": 1,
        }

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        super().__init__(config)
        _check_crfsuite_options(self.config["algorithm"], self.config["crfsuite_params"])
        self.models: dict[str, bytes] = {}  # "<kind>.<partition>" -> crfsuite model file
        self.taggers: dict[str, pycrfsuite.Tagger] = {}
        self.tables = FeatureTables({}, {})
        self.routes: dict[str, int] = {}  # intent -> partition, when the data was split by intent
        self.default_partition: int | None = None  # the partition of every message when not split
        self._algorithm = "lbfgs"
        self.entity_types: list[str] = []  # the annotated entity types the CRF learned

    def _params(self) -> dict[str, Any]:
        """Return crfsuite's parameters for this data's CRFs (the algorithm chosen in ``train``)."""
        params: dict[str, Any] = {"algorithm": self._algorithm, "feature.minfreq": self.config["feature_minfreq"]}
        if self._algorithm == "lbfgs":
            params.update(c1=self.config["c1"], c2=self.config["c2"], max_iterations=self.config["lbfgs_iterations"])
        else:
            params["max_iterations"] = self.config["ap_epochs"]
        params.update(self.config["crfsuite_params"])
        return params

    def _features(self, text: str, tokens: Sequence[Token], intent: str | None) -> list[list[str]]:
        extra = [f"intent={intent}"] if intent and self.config["intent_feature"] else []
        conjoin = intent if intent and self.config["intent_word"] else None
        hits = self.tables.hits(text, tokens)
        if self.config["rare_count"] > 0:
            self.tables.rare_marks(tokens, hits, self.config["rare_count"])
        return sentence_features(tokens, hits, extra, self.config["window"],
                                 self.config["affixes"], conjoin, self.config["hit_window"],
                                 self.config["wide_pairs"])

    def train(self, examples: Sequence[Message], data: TrainingData | None = None) -> None:
        """Train the entity CRF(s) (and role/group CRFs) when the data annotates any entity;
        otherwise do nothing, so data without entities trains and parses as fast as before."""
        self.models, self.taggers, self.routes, self.default_partition = {}, {}, {}, None
        if data is None or not any(example.entities for example in data.examples):
            return
        if self.config["tagging"] not in ("bio", "bilou"):
            raise ValueError(f"CRFEntityExtractor: tagging must be 'bio' or 'bilou', not {self.config['tagging']!r}")
        self.tables = FeatureTables.from_data(data, self.config["min_seen"])
        self.entity_types = data.entity_types
        self._algorithm = self.config["algorithm"]
        if self._algorithm == "auto":
            # L-BFGS (regularised) learns best from a shop's few hundred examples; its many passes
            # cost too much on thousands, where the averaged perceptron needs only a few.
            tokens = sum(len(TOKEN_PATTERN.findall(e.text)) for e in data.examples if e.entities)
            self._algorithm = "lbfgs" if tokens <= self.config["lbfgs_max_tokens"] else "ap"
        types_by_intent: dict[str, set[str]] = {intent: set() for intent in data.intents}
        for example in data.examples:
            types_by_intent[example.intent].update(e.entity for e in example.entities)
        partitions = partition_intents(types_by_intent, self.config["max_entity_types_per_model"])
        if len(partitions) == 1:
            self.default_partition = 0
        else:
            self.routes = {intent: index for index, intents in enumerate(partitions) for intent in intents}
        featurised: dict[int, list[_Featurised]] = {}
        for index, intents in enumerate(partitions):
            types = set().union(*(types_by_intent[intent] for intent in intents))
            # A partition also learns its entity types from the other intents' examples that have
            # them (a date is a date whatever was asked), tagging only its own types.
            own = [e for e in data.examples if e.intent in intents]
            shared = [
                e for e in data.examples if e.intent not in intents and any(a.entity in types for a in e.entities)
            ]
            # at most share_examples times as many borrowed examples as own ones, spread evenly
            limit = int(self.config["share_examples"] * len(own))
            if len(shared) > limit:
                shared = [shared[i * len(shared) // limit] for i in range(limit)] if limit else []
            self._train_partition(index, [self._featurised(e, featurised) for e in own + shared], types)
        self.taggers = {key: _open_tagger(model) for key, model in self.models.items()}

    def _featurised(self, example: TrainingExample, cache: dict[int, list[_Featurised]]) -> list[_Featurised]:
        """Return the example featurised, and its folded copy when ``folded_copies`` (customers
        type without accents or capitals; fold keeps offsets, so the spans stay right), each
        featurised once however many partitions use it."""
        found = cache.get(id(example))
        if found is None:
            texts = [example.text]
            if self.config["folded_copies"] and example.entities and fold(example.text) != example.text:
                texts.append(fold(example.text))
            found = []
            for text in texts:
                tokens = tokenize(text)
                if tokens:
                    copy = example
                    if text != example.text:
                        copy = TrainingExample(text, example.intent, example.entities)
                    found.append(_Featurised(copy, tokens, self._features(text, tokens, example.intent)))
            cache[id(example)] = found
        return found

    def _train_partition(self, index: int, featurised: Sequence[list[_Featurised]], types: set[str]) -> None:
        # the examples first, then their folded copies (the order the seeded training saw before)
        rows = [variants[0] for variants in featurised if variants]
        rows += [variants[1] for variants in featurised if len(variants) > 1]
        if not rows:
            return
        if self.config["unseen_copies"]:
            rare = self.config["rare_count"] > 0
            outside = self.config["unseen_outside"]
            rows += [
                variants[0].unseen_copy(rare, self.tables.counts, outside)
                for variants in featurised
                if variants and variants[0].example.entities
            ]
        labels: dict[str, list[list[str]]] = {kind: [] for kind in KINDS}
        entities = [e for row in rows for e in row.example.entities]
        kinds = [kind for kind in KINDS if any(getattr(e, kind) for e in entities)]
        for row in rows:
            for kind in KINDS:
                if kind not in kinds:
                    labels[kind].append([OUTSIDE] * len(row.tokens))
                    continue
                if kind == "entity" and all(e.entity in types for e in row.example.entities):
                    tags = row.entity_tags(self.config["tagging"])  # the same in every partition
                else:
                    tags = _tags(row, kind, types, self.config["tagging"])
                # roles and groups are tagged inside/outside: the entity CRF already drew the
                # boundaries, and the few role examples are not split over four tags each
                labels[kind].append(tags if kind == "entity" else [t.partition("-")[2] or OUTSIDE for t in tags])
        entity_tags = labels["entity"]
        items = [row.items for row in rows]
        self.models[f"entity.{index}"] = _train_tagger(items, entity_tags, self._params())
        for member in range(1, self.config["ensemble"]):
            model = _train_tagger(items, entity_tags, self._params(), member)
            self.models[f"entity.{index}.{member}"] = model
        for kind in ("role", "group"):
            if any(tag != OUTSIDE for sequence in labels[kind] for tag in sequence):
                relation_rows = [relation_features(r.sequence, tags) for r, tags in zip(rows, entity_tags)]
                self.models[f"{kind}.{index}"] = _train_tagger(relation_rows, labels[kind], self._params())

    def extract(self, text: str, intent: str | None = None) -> list[dict[str, Any]]:
        """Return the entities the CRF finds in ``text`` (``intent``: the predicted intent)."""
        partition = self.routes.get(intent or "", self.default_partition)
        tagger = self.taggers.get(f"entity.{partition}")
        tokens = tokenize(text) if tagger is not None else []
        if not tokens:
            return []
        sequence = self._features(text, tokens, intent)
        members = [tagger]
        member = 1
        while (extra := self.taggers.get(f"entity.{partition}.{member}")) is not None:
            members.append(extra)
            member += 1
        if len(members) == 1:
            tags = tagger.tag(sequence)
        else:
            tags = _vote(members, pycrfsuite.ItemSequence(sequence))
        found = decode_bilou(tags)
        if not found:
            return []
        extra_tags: dict[str, list[str]] = {}
        for kind in ("role", "group"):
            if f"{kind}.{partition}" in self.taggers:
                extra_tags[kind] = self.taggers[f"{kind}.{partition}"].tag(relation_features(sequence, tags))
        entities = []
        for first, last, label in found:
            confidence = min(
                sum(m.marginal(tags[i], i) for m in members) / len(members) for i in range(first, last + 1)
            )
            start, end = tokens[first][1], tokens[last][2]
            entity: dict[str, Any] = {
                "entity": label,
                "value": text[start:end],
                "start": start,
                "end": end,
                "confidence": round(float(confidence), 6),
                "extractor": self.name,
            }
            for kind, kind_tags in extra_tags.items():
                votes = Counter(kind_tags[i] for i in range(first, last + 1))
                votes.pop(OUTSIDE, None)
                if votes:
                    entity[kind] = votes.most_common(1)[0][0]
            entities.append(entity)
        return entities

    def process(self, message: Message) -> None:
        """Add the CRF's entities. Where one overlaps an entity found before, the rule keeps it when
        it is an exact code (``rule_precedence``) or a type the training data annotates too;
        otherwise the data's own annotation wins ("5 sao" learned as a hotel class, not a rating)."""
        if not self.taggers:
            return
        intent = (message.data.get("intent") or {}).get("name")
        known = message.data.setdefault("entities", [])
        protected = set(self.config["rule_precedence"]) | set(self.entity_types)
        changed = False
        for entity in self.extract(message.text, intent):
            overlapping = [k for k in known if entity["start"] < k["end"] and k["start"] < entity["end"]]
            if any(k["entity"] in protected or k.get("extractor") == self.name for k in overlapping):
                continue
            known[:] = [k for k in known if k not in overlapping]
            known.append(entity)
            changed = True
        if changed:
            known.sort(key=lambda e: e["start"])

    def process_batch(self, messages: Sequence[Message]) -> None:
        """Annotate parsed messages; training messages (carrying entity labels) are left alone, as
        no later component learns from predicted entities."""
        for message in messages:
            if "entity_labels" not in message.data:
                self.process(message)

    def persist(self, path: Path) -> None:
        """Save each CRF's model file next to the routing and the regex and lookup tables."""
        for key, model in self.models.items():
            (path / f"{key}.crfsuite").write_bytes(model)
        state = {
            "regexes": self.tables.regexes,
            "lookups": self.tables.lookups,
            "routes": self.routes,
            "default_partition": self.default_partition,
            "entity_types": self.entity_types,
            "counts": self.tables.counts if self.config["rare_count"] > 0 else {},
        }
        (path / "crf.json").write_text(json.dumps(state, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, path: Path, config: dict[str, Any]) -> CRFEntityExtractor:
        """Rebuild from the saved CRF model files (none when the data had no entities)."""
        extractor = cls(config)
        state = json.loads((path / "crf.json").read_text(encoding="utf-8"))
        extractor.tables = FeatureTables(state["regexes"], state["lookups"], state.get("counts"))
        extractor.routes = state["routes"]
        extractor.default_partition = state["default_partition"]
        extractor.entity_types = state.get("entity_types", [])
        for model_file in sorted(path.glob("*.crfsuite")):
            extractor.models[model_file.stem] = model_file.read_bytes()
        extractor.taggers = {key: _open_tagger(model) for key, model in extractor.models.items()}
        return extractor
