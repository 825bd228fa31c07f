"""llama.cpp backend through llama-cpp-python's low-level API (``llama_batch``/``llama_decode``).

Several sequences are decoded together: one ``llama_decode`` call per step advances every sequence in
flight. Prompts are laid out as a prefix tree in one unified KV cache: a token that several prompts
share at the same position (the system prompt for all of them, a product's facts for its languages,
the whole prompt for a retry) is stored and computed once, tagged with every sequence that uses it.

Reproducibility: each sequence has its own sampler seeded by its request, and llama.cpp on CPU is
deterministic for a fixed thread count and a fixed batch. A product generated alone therefore always
gives the same text. In a batch with other products, the matrix shapes and the shared prefix change, so
floating-point sums can round differently and, rarely, a sampled token differs: the same seed does not
promise the same text across different batch compositions.
"""

from __future__ import annotations

import ctypes
import logging
import math
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import llama_cpp
import numpy as np

from workers.shared.generator import Generation, GenerationRequest
from workers.shared.generator.model_file import DEFAULT_MODEL, ModelFile, resolve_model_file
from workers.registry import register

logging.getLogger("llama-cpp-python").setLevel(logging.ERROR)
_TOKEN_DATA = np.dtype([("id", np.int32), ("logit", np.float32), ("p", np.float32)])  # llama_token_data
_GRAMMAR_INDEX = 2  # in a sequence's sampler chain: top-k, penalties, grammar, …
_RUNTIME_TYPES = {"q8_0": llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0, "q4_0": llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_0,
                  "f16": llama_cpp.LLAMA_FTYPE_MOSTLY_F16}


class GenerationError(RuntimeError):
    pass


@dataclass
class _Node:
    """One prompt token at one position, shared by the sequences whose prompts pass through it."""

    token: int
    position: int
    sequences: list[int] = field(default_factory=list)
    ends: list[int] = field(default_factory=list)  # sequences whose prompt ends here: sample from its logits
    children: dict[int, _Node] = field(default_factory=dict)


@dataclass
class _Sequence:
    request: GenerationRequest
    prompt_tokens: int
    sampler: ctypes.c_void_p
    position: int
    tokens: list[int] = field(default_factory=list)
    next_token: int | None = None
    finish: str | None = None


@dataclass
class DecodeStats:
    """Counters since the generator was created (for benchmarks and logs)."""

    prompt_tokens: int = 0  # prompt tokens as requested
    prompt_tokens_decoded: int = 0  # after sharing common prefixes
    generated_tokens: int = 0
    decode_calls: int = 0
    seconds: float = 0.0


class LlamaCppGenerator:
    def __init__(self, model: ModelFile, *, threads: int, context_tokens: int = 8192, max_sequences: int = 16,
                 batch_tokens: int = 512, temperature: float = 0.7, top_k: int = 40, top_p: float = 0.9,
                 repeat_penalty: float = 1.1, repeat_last_n: int = 64, runtime_type: str | None = None) -> None:
        self.model_file = model
        self.runtime_type = runtime_type or None
        self.name = model.model_name + (f"+{runtime_type}" if runtime_type else "")
        self.version = model.version
        self.sha256 = model.sha256
        self.threads = threads
        self.context_tokens = context_tokens
        self.max_sequences = max_sequences
        self.batch_tokens = max(batch_tokens, max_sequences)
        self.temperature, self.top_k, self.top_p = temperature, top_k, top_p
        self.repeat_penalty, self.repeat_last_n = repeat_penalty, repeat_last_n
        self.stats = DecodeStats()

        llama_cpp.llama_backend_init()
        self._model = self._load(model.path, runtime_type)
        self._vocab = llama_cpp.llama_model_get_vocab(self._model)
        self._n_vocab = llama_cpp.llama_vocab_n_tokens(self._vocab)
        self._token_ids = np.arange(self._n_vocab, dtype=np.int32)
        params = llama_cpp.llama_context_default_params()
        params.n_ctx = context_tokens
        params.n_batch = params.n_ubatch = self.batch_tokens
        params.n_seq_max = max_sequences
        params.n_threads = params.n_threads_batch = threads
        params.kv_unified = True  # one cache for all sequences, so a shared prefix is stored once
        params.no_perf = True
        self._context = llama_cpp.llama_init_from_model(self._model, params)
        if not self._context:
            raise GenerationError("llama.cpp could not create a context (context_tokens too large?)")
        self._memory = llama_cpp.llama_get_memory(self._context)
        self._batch = llama_cpp.llama_batch_init(self.batch_tokens, 0, max_sequences)
        self._chat_template = llama_cpp.llama_model_chat_template(self._model, None)

    def _load(self, path: Path, runtime_type: str | None) -> ctypes.c_void_p:
        """Load the verified file, or first convert it to ``runtime_type`` in a private temporary folder.

        Q4_1 has no fast matrix-matrix kernel in llama.cpp's CPU backend, so prompts and batches are
        slower than with Q8_0, which the verified Q4_1 weights convert to almost exactly (8-bit blocks hold
        every 4-bit value). The conversion is deterministic and takes about a second; the converted file is
        deleted once loaded (llama.cpp keeps its memory map), so nothing unverified stays on disk.
        """
        params = llama_cpp.llama_model_default_params()
        if not runtime_type:  # None or "" (SLIMLINE_GENERATOR__RUNTIME_TYPE=): the file as shipped
            loaded = llama_cpp.llama_model_load_from_file(str(path).encode(), params)
        else:
            if runtime_type not in _RUNTIME_TYPES:
                raise GenerationError(f"unknown runtime type {runtime_type!r}; known: {sorted(_RUNTIME_TYPES)}")
            with tempfile.TemporaryDirectory(prefix="slimline-gguf-") as folder:
                target = Path(folder) / f"{path.stem}.{runtime_type}.gguf"
                quantize = llama_cpp.llama_model_quantize_default_params()
                quantize.ftype, quantize.allow_requantize = _RUNTIME_TYPES[runtime_type], True
                quantize.nthread = self.threads
                source, converted = str(path).encode(), str(target).encode()
                if llama_cpp.llama_model_quantize(source, converted, ctypes.byref(quantize)) != 0:
                    raise GenerationError(f"llama.cpp could not convert {path.name} to {runtime_type}")
                loaded = llama_cpp.llama_model_load_from_file(str(target).encode(), params)
        if not loaded:
            raise GenerationError(f"llama.cpp could not load {path}")
        return loaded

    def close(self) -> None:
        """Free llama.cpp's memory (also after a failed start); safe to call twice."""
        if getattr(self, "_batch", None) is not None:
            llama_cpp.llama_batch_free(self._batch)
            self._batch = None
        if getattr(self, "_context", None):
            llama_cpp.llama_free(self._context)
            self._context = None
        if getattr(self, "_model", None):
            llama_cpp.llama_model_free(self._model)
            self._model = None

    def __del__(self) -> None:
        self.close()

    # --- public ------------------------------------------------------------------------------

    def generate(self, requests: list[GenerationRequest]) -> list[Generation]:
        prompts = [self._prompt_tokens(request) for request in requests]
        results: list[Generation | None] = [None] * len(requests)
        for wave in self._waves(requests, prompts):
            fitting = [i for i in wave if len(prompts[i]) + requests[i].max_tokens <= self.context_tokens]
            for i in set(wave) - set(fitting):
                results[i] = Generation(key=requests[i].key, text=requests[i].prefill, prompt_tokens=len(prompts[i]),
                                        tokens=0, finish="error", error="prompt and token budget exceed the context")
            try:
                for i, generation in zip(fitting, self._run_wave([requests[i] for i in fitting],
                                                                 [prompts[i] for i in fitting]), strict=True):
                    results[i] = generation
            except GenerationError as error:
                for i in fitting:
                    results[i] = Generation(key=requests[i].key, text=requests[i].prefill,
                                            prompt_tokens=len(prompts[i]), tokens=0, finish="error", error=str(error))
        return [result for result in results if result is not None]

    def count_tokens(self, text: str) -> int:
        return len(self._tokenize(text, add_special=False))

    # --- prompts -----------------------------------------------------------------------------

    def _prompt_tokens(self, request: GenerationRequest) -> list[int]:
        return self._tokenize(self._chat_prompt(request.messages) + request.prefill, add_special=True)

    def _chat_prompt(self, messages: tuple[tuple[str, str], ...]) -> str:
        chat = (llama_cpp.llama_chat_message * len(messages))()
        encoded = [(role.encode(), content.encode()) for role, content in messages]
        for slot, (role, content) in zip(chat, encoded, strict=True):
            slot.role, slot.content = role, content
        needed = llama_cpp.llama_chat_apply_template(self._chat_template, chat, len(messages), True, None, 0)
        if needed < 0:
            raise GenerationError("the model's chat template is not one llama.cpp knows")
        buffer = ctypes.create_string_buffer(needed + 1)
        llama_cpp.llama_chat_apply_template(self._chat_template, chat, len(messages), True, buffer, needed + 1)
        return buffer.raw[:needed].decode("utf-8")

    def _tokenize(self, text: str, add_special: bool) -> list[int]:
        data = text.encode("utf-8")
        capacity = len(data) + 16
        tokens = (llama_cpp.llama_token * capacity)()
        count = llama_cpp.llama_tokenize(self._vocab, data, len(data), tokens, capacity, add_special, True)
        if count < 0:
            capacity = -count
            tokens = (llama_cpp.llama_token * capacity)()
            count = llama_cpp.llama_tokenize(self._vocab, data, len(data), tokens, capacity, add_special, True)
        return list(tokens[:count])

    def _piece(self, token: int) -> bytes:
        buffer = ctypes.create_string_buffer(64)
        size = llama_cpp.llama_token_to_piece(self._vocab, token, buffer, 64, 0, False)
        if size < 0:
            buffer = ctypes.create_string_buffer(-size)
            size = llama_cpp.llama_token_to_piece(self._vocab, token, buffer, -size, 0, False)
        return buffer.raw[:size]

    def _detokenize(self, tokens: list[int]) -> str:
        return b"".join(self._piece(token) for token in tokens).decode("utf-8", "replace")

    def _waves(self, requests: list[GenerationRequest], prompts: list[list[int]]) -> Iterator[list[int]]:
        """Groups of requests that fit together: at most max_sequences, and their tokens within the context."""
        wave: list[int] = []
        used = 0
        for i, (request, prompt) in enumerate(zip(requests, prompts, strict=True)):
            cost = len(prompt) + request.max_tokens
            if wave and (len(wave) == self.max_sequences or used + cost > self.context_tokens):
                yield wave
                wave, used = [], 0
            wave.append(i)
            used += cost
        if wave:
            yield wave

    # --- decoding ----------------------------------------------------------------------------

    def _sampler(self, request: GenerationRequest) -> ctypes.c_void_p:
        chain = llama_cpp.llama_sampler_chain_init(llama_cpp.llama_sampler_chain_default_params())
        # Top-k first: penalties and the grammar then look at a few dozen candidates, not the whole vocabulary.
        llama_cpp.llama_sampler_chain_add(chain, llama_cpp.llama_sampler_init_top_k(self.top_k))
        llama_cpp.llama_sampler_chain_add(chain, llama_cpp.llama_sampler_init_penalties(
            self._n_vocab, self.repeat_last_n, self.repeat_penalty, 0.0, 0.0))
        if request.grammar:  # at _GRAMMAR_INDEX
            grammar = llama_cpp.llama_sampler_init_grammar(self._vocab, request.grammar.encode(), b"root")
            if not grammar:
                llama_cpp.llama_sampler_free(chain)
                raise GenerationError("llama.cpp rejected the grammar")
            llama_cpp.llama_sampler_chain_add(chain, grammar)
        if request.greedy:
            llama_cpp.llama_sampler_chain_add(chain, llama_cpp.llama_sampler_init_greedy())
        else:
            llama_cpp.llama_sampler_chain_add(chain, llama_cpp.llama_sampler_init_top_p(self.top_p, 1))
            llama_cpp.llama_sampler_chain_add(chain, llama_cpp.llama_sampler_init_temp(self.temperature))
            llama_cpp.llama_sampler_chain_add(chain, llama_cpp.llama_sampler_init_dist(request.seed & 0xFFFFFFFF))
        return chain

    def _run_wave(self, requests: list[GenerationRequest], prompts: list[list[int]]) -> list[Generation]:
        started = time.perf_counter()
        llama_cpp.llama_memory_clear(self._memory, True)
        sequences: list[_Sequence] = []
        try:
            for request, prompt in zip(requests, prompts, strict=True):
                sequences.append(_Sequence(request=request, prompt_tokens=len(prompt),
                                           sampler=self._sampler(request), position=len(prompt)))
            self._decode_prompts(prompts, sequences)
            self._decode_continuations(sequences)
            generations = [
                Generation(key=s.request.key, prompt_tokens=s.prompt_tokens, tokens=len(s.tokens),
                           finish=s.finish or "length", text=s.request.prefill + self._detokenize(s.tokens))
                for s in sequences
            ]
        finally:
            for sequence in sequences:
                llama_cpp.llama_sampler_free(sequence.sampler)
            self.stats.seconds += time.perf_counter() - started
        self.stats.prompt_tokens += sum(len(prompt) for prompt in prompts)
        self.stats.generated_tokens += sum(len(s.tokens) for s in sequences)
        return generations

    def _decode_prompts(self, prompts: list[list[int]], sequences: list[_Sequence]) -> None:
        """Decode every prompt token once per distinct prefix, parents before children, in batches."""
        root = _Node(token=-1, position=-1)
        for seq_id, prompt in enumerate(prompts):
            node = root
            for position, token in enumerate(prompt):
                node = node.children.setdefault(token, _Node(token=token, position=position))
                node.sequences.append(seq_id)
            node.ends.append(seq_id)
        nodes = list(_preorder(root))
        self.stats.prompt_tokens_decoded += len(nodes)
        for start in range(0, len(nodes), self.batch_tokens):
            chunk = nodes[start:start + self.batch_tokens]
            self._fill_batch([(n.token, n.position, n.sequences, bool(n.ends)) for n in chunk])
            self._decode()
            for index, node in enumerate(chunk):
                for seq_id in node.ends:
                    sequences[seq_id].next_token = self._sample(sequences[seq_id], index)

    def _decode_continuations(self, sequences: list[_Sequence]) -> None:
        is_end = llama_cpp.llama_vocab_is_eog
        while True:
            active = []
            for seq_id, sequence in enumerate(sequences):
                token = sequence.next_token
                if sequence.finish or token is None:
                    continue
                sequence.next_token = None
                if is_end(self._vocab, token):
                    sequence.finish = "stop"
                    continue
                sequence.tokens.append(token)
                if len(sequence.tokens) >= sequence.request.max_tokens:
                    sequence.finish = "length"
                    continue
                active.append(seq_id)
            if not active:
                return
            self._fill_batch([(sequences[s].tokens[-1], sequences[s].position, [s], True) for s in active])
            self._decode()
            for index, seq_id in enumerate(active):
                sequences[seq_id].position += 1
                sequences[seq_id].next_token = self._sample(sequences[seq_id], index)

    def _sample(self, sequence: _Sequence, batch_index: int) -> int:
        """Apply the sequence's chain to this position's logits and accept the chosen token.

        Done here rather than by ``llama_sampler_sample``: the chain applies top-k before the grammar (so the
        grammar looks at a few dozen candidates), and when the grammar rejects all of them, llama.cpp would pick
        a rejected token anyway and then throw a C++ exception on accepting it, which aborts the process (a
        worker died this way in the benchmark). Here that case applies the grammar to the whole vocabulary first
        and samples again; a grammar that allows no token at all ends the sequence."""
        logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(self._context, batch_index),
                                       shape=(self._n_vocab,))
        token = self._apply(sequence.sampler, logits, grammar_first=False)
        if token is None and sequence.request.grammar:
            token = self._apply(sequence.sampler, logits, grammar_first=True)
        if token is None:
            return llama_cpp.llama_vocab_eos(self._vocab)
        llama_cpp.llama_sampler_accept(sequence.sampler, token)
        return token

    def _apply(self, chain: ctypes.c_void_p, logits: np.ndarray, grammar_first: bool) -> int | None:
        """The token the chain selects from these logits, or None when every candidate was rejected."""
        candidates = np.empty(self._n_vocab, dtype=_TOKEN_DATA)
        candidates["id"], candidates["logit"], candidates["p"] = self._token_ids, logits, 0.0
        array = llama_cpp.llama_token_data_array(
            data=candidates.ctypes.data_as(ctypes.POINTER(llama_cpp.llama_token_data)), size=self._n_vocab,
            selected=-1, sorted=False)
        if grammar_first:  # the chain's grammar sampler (see _sampler) on every token, then the whole chain
            llama_cpp.llama_sampler_apply(llama_cpp.llama_sampler_chain_get(chain, _GRAMMAR_INDEX), ctypes.byref(array))
        llama_cpp.llama_sampler_apply(chain, ctypes.byref(array))
        if not 0 <= array.selected < array.size:
            return None
        chosen = array.data[array.selected]
        return None if math.isinf(chosen.logit) and chosen.logit < 0 else int(chosen.id)

    def _fill_batch(self, entries: list[tuple[int, int, list[int], bool]]) -> None:
        batch = self._batch
        for i, (token, position, seq_ids, logits) in enumerate(entries):
            batch.token[i] = token
            batch.pos[i] = position
            batch.n_seq_id[i] = len(seq_ids)
            for j, seq_id in enumerate(seq_ids):
                batch.seq_id[i][j] = seq_id
            batch.logits[i] = logits
        batch.n_tokens = len(entries)

    def _decode(self) -> None:
        status = llama_cpp.llama_decode(self._context, self._batch)
        self.stats.decode_calls += 1
        if status != 0:
            raise GenerationError(f"llama_decode returned {status}")


def _preorder(root: _Node) -> Iterator[_Node]:
    stack = list(reversed(root.children.values()))
    while stack:
        node = stack.pop()
        yield node
        stack.extend(reversed(node.children.values()))


@register("generator.llama_cpp")
def make_llama_cpp_generator(*, model_path: Path | None = None, model_name: str | None = None,
                             model_version: str | None = None, manifest_dir: Path | None = None,
                             model: str = DEFAULT_MODEL, cache_dir: Path | None = None,
                             threads: int = 1, **options: float | int) -> LlamaCppGenerator:
    """The GGUF at ``model_path``, or the catalogue model ``model`` (workers/shared/generator/catalogue.py),
    hash-checked before it is loaded."""
    file = resolve_model_file(model_path, model_name, model_version, manifest_dir, model, cache_dir)
    return LlamaCppGenerator(file, threads=threads, **options)  # type: ignore[arg-type]
