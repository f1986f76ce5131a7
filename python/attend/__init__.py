"""attend: a C++ Transformer engine, from Python.

    import attend
    with attend.Translator("runs/multi30k") as t:
        for r in t.translate_batch(["A man is riding a bike."]):
            print(r.hypotheses[0], r.scores[0])

The classes load a model directory that `attend train` (or `attend.train`) wrote -- a run
directory (its best/ model, else its last checkpoint) or one checkpoint -- and run the same C++
code as the `attend` command line, with the GIL released: what they return equals what the
command prints. Argument names follow CTranslate2 where the meaning is the same; docs/python.md
maps both CTranslate2 and transformers onto them.

Errors: a missing model directory raises FileNotFoundError; a bad value, input or file raises
ValueError with attend's message; an unknown argument name raises TypeError (as any Python
function); Ctrl-C raises KeyboardInterrupt within one decoding step.
"""
from __future__ import annotations

import dataclasses
import errno
import json
import os
from typing import Any, Callable, Iterable, Iterator, Mapping, Optional, Sequence, Union

import numpy as np

from . import _attend

__version__ = "0.1.0"
__all__ = ["info", "threads", "set_threads", "Tokenizer", "Translator", "TranslationResult",
           "Generator", "GenerationResult", "Encoder", "Model", "train"]

_PRECISIONS = ("auto", "fp32", "bf16", "int8")


def info() -> str:
    """What `attend info` prints: version, threads, CPU features and the precisions they make
    native, the GEMM library and kernels chosen, CUDA, MPI. (`python -m attend` prints it.)"""
    return _attend.info()


def threads() -> int:
    """The number of worker threads attend computes with (one count for the whole process)."""
    return _attend.threads()


def set_threads(n: int) -> None:
    """Sets the worker thread count for the whole process (1..1024), as `--threads` does."""
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 1024:
        raise ValueError(f"threads: expected an integer in 1..1024, got {n!r}")
    _attend.set_threads(n)


def _model_path(model_dir: Union[str, os.PathLike]) -> str:
    path = os.fspath(model_dir)
    if not os.path.exists(path):
        raise FileNotFoundError(errno.ENOENT, "no such model directory", path)
    return path


def _precision(precision: str) -> str:
    if precision not in _PRECISIONS:
        raise ValueError(f"precision: expected one of {', '.join(_PRECISIONS)}, got {precision!r}")
    return "" if precision == "auto" else precision


def _bad_utf8(value: str) -> bool:
    if value not in ("error", "replace"):
        raise ValueError(f"bad_utf8: expected 'error' or 'replace', got {value!r}")
    return value == "replace"


def _int(name: str, value: Any, lo: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < lo:
        raise ValueError(f"{name}: expected an integer >= {lo}, got {value!r}")
    return value


def _texts(name: str, values: Any) -> list:
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise TypeError(f"{name}: expected a list of str, got {type(values).__name__}")
    for i, v in enumerate(values):
        if not isinstance(v, str):
            raise TypeError(f"{name}[{i}]: expected str, got {type(v).__name__}")
    return list(values)


def _utf8(texts: list) -> list:
    """str -> UTF-8 bytes; lone surrogates (a file read with errors="surrogateescape") become
    the bytes they stand for, which attend refuses or repairs as bad_utf8 says."""
    return [t.encode("utf-8", "surrogateescape") for t in texts]


def _renamed(e: ValueError, names: Mapping[str, str]) -> ValueError:
    """attend's message with its option names replaced by this API's argument names."""
    message = str(e).replace("--bad-utf8 replace", 'bad_utf8="replace"').replace(
        "--truncate left", 'truncate="left"')
    for ours, theirs in names.items():
        for prefix in ("search: ", "generate: ", "translate: "):
            message = message.replace(prefix + ours + " ", theirs + ": ", 1)
    return ValueError(message)


class _Closable:
    """Owns a C++ object; close() (or leaving a `with` block) lets it go once no call uses it."""

    _impl: Any = None
    _kind = "object"

    def _get(self):
        impl = self._impl
        if impl is None:
            raise RuntimeError(f"this {self._kind} is closed")
        return impl

    def close(self) -> None:
        """Releases the model. Calls running in other threads finish first (they hold it)."""
        self._impl = None

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _Loaded(_Closable):
    """A model directory loaded into one of the engine's classes (_engine)."""

    _engine: Any = None

    def __init__(self, model_dir: Union[str, os.PathLike], threads: int = 0,
                 precision: str = "auto"):
        path = _model_path(model_dir)
        if threads:
            set_threads(threads)
        self._impl = self._engine(path, _precision(precision))

    @property
    def model_dir(self) -> str:
        """The directory the model was read from (a run directory's best/ or last checkpoint)."""
        return self._get().dir


class Tokenizer:
    """A model directory's tokenizer (its tokenizer.model): what the model's ids mean."""

    def __init__(self, model_dir: Union[str, os.PathLike]):
        self._tok = _attend.Tokenizer.load(_attend.resolve_model_dir(_model_path(model_dir)))

    @classmethod
    def _of(cls, loaded) -> "Tokenizer":
        """The tokenizer a loaded model already holds (read once, with the model)."""
        tokenizer = cls.__new__(cls)
        tokenizer._tok = loaded.tokenizer
        return tokenizer

    def encode(self, text: str, target: bool = False) -> list[int]:
        """The ids of `text` (subwords, or characters for a character model); with `target`,
        as a translation's target side (which only a MarianMT vocabulary segments otherwise:
        with its target.spm)."""
        return self._tok.encode_target(text) if target else self._tok.encode(text)

    def decode(self, ids: Sequence[int]) -> str:
        """The text of `ids` (padding, beginning and end ids are dropped)."""
        return self._tok.decode(list(ids))

    def pieces(self, text: str) -> list[str]:
        """The pieces `text` is cut into, as the vocabulary spells them ("▁the")."""
        return self._tok.pieces(text)

    def piece(self, id: int) -> str:
        """The piece of one id."""
        return self._tok.piece(id)

    @property
    def vocab_size(self) -> int:
        return self._tok.vocab_size

    @property
    def special_ids(self) -> dict:
        """pad, unk, bos, eos and mask ids (mask: -1 when the vocabulary has none)."""
        t = self._tok
        return {"pad": t.pad_id, "unk": t.unk_id, "bos": t.bos_id, "eos": t.eos_id,
                "mask": t.mask_id}


@dataclasses.dataclass
class TranslationResult:
    """The n-best translations of one input, best first.

    hypotheses: the texts; tokens: their pieces; token_ids: their ids (no BOS/EOS);
    scores: log-probability / length penalty (what ranks them; None unless return_scores);
    log_probs: total log-probabilities (None unless return_scores); attention: for the best
    hypothesis, float32 [layers, heads, target tokens + 1, source tokens] (row t: the position
    that predicts target token t, the last row the end token; each row sums to 1), or None.
    """
    hypotheses: list
    tokens: list
    token_ids: list
    scores: Optional[list] = None
    log_probs: Optional[list] = None
    attention: Optional[np.ndarray] = dataclasses.field(default=None, repr=False)


_SEARCH_NAMES = {"beam": "beam_size", "n_best": "num_hypotheses", "alpha": "length_penalty",
                 "max_extra": "max_extra", "max_length": "max_decoding_length",
                 "min_length": "min_decoding_length",
                 "temperature": "sampling_temperature", "top_k": "sampling_topk",
                 "top_p": "sampling_topp", "batch_tokens": "max_batch_tokens",
                 "max_input_tokens": "max_input_tokens"}


class Translator(_Loaded):
    """Translates with an encoder-decoder model (`attend translate`).

    model_dir: a run directory (its best/ model, else its last checkpoint) or a checkpoint.
    threads: worker threads for the whole process (0: leave as it is; default all cores, or
    ATTEND_NUM_THREADS). precision: "auto" (as stored: fp32, or int8 for an `attend quantize`
    model), "fp32", "bf16" (bf16 weights, needs AVX-512) or "int8" (linear layers quantized at
    load). One Translator may be used from several threads at once.
    """

    _kind = "Translator"
    _engine = _attend.Translator

    @property
    def tokenizer(self) -> Tokenizer:
        """The model's tokenizer (the one loaded with it)."""
        return Tokenizer._of(self._get())

    def translate_batch(self, source: Sequence[str], *, beam_size: int = 4,
                        num_hypotheses: int = 1, length_penalty: float = 0.6,
                        max_extra: int = 50, max_decoding_length: int = 0,
                        min_decoding_length: int = 0,
                        target_prefix: Optional[Sequence[Optional[str]]] = None,
                        sampling_topk: int = 1, sampling_topp: float = 1.0,
                        sampling_temperature: float = 1.0, seed: int = 0,
                        return_scores: bool = True, return_attention: bool = False,
                        max_batch_tokens: int = 2000, max_input_tokens: int = 0,
                        bad_utf8: str = "error") -> list[TranslationResult]:
        """Translates every text of `source`; one TranslationResult per text, in order.

        beam_size: hypotheses kept per sentence (1: greedy). num_hypotheses: how many to return
        (<= beam_size). length_penalty: exponent A of the GNMT penalty ((5 + length) / 6)^A that
        ranks finished hypotheses. max_extra: an output has at most source length + max_extra
        subwords, and at most max_decoding_length (0: no such limit). min_decoding_length: no end
        of sentence before that many subwords.
        target_prefix: one text (or None) per input that its translations start with (forced,
        then searched on). sampling_topk: 1 searches; any other value draws each token from
        the sampling_topk most likely (0: all), within nucleus mass sampling_topp, at
        sampling_temperature, with beam_size 1; draws are fixed by `seed` and the input's
        position. max_batch_tokens: source subwords per decoding batch. max_input_tokens:
        longer inputs are cut, with a warning (0: the model's max_positions). bad_utf8:
        "error", or "replace" to substitute U+FFFD. return_attention: each result's attention.
        """
        lines = _texts("source", source)
        prefixes = []
        if target_prefix is not None:
            if len(target_prefix) != len(lines):
                raise ValueError(f"target_prefix: {len(target_prefix)} prefixes for "
                                 f"{len(lines)} inputs")
            prefixes = _texts("target_prefix", ["" if p is None else p for p in target_prefix])
        sample = sampling_topk != 1
        if sample and beam_size != 1:
            raise ValueError(f"beam_size: sampling (sampling_topk != 1) draws one hypothesis: "
                             f"beam_size must be 1, got {beam_size}")
        search = {"beam": beam_size, "n_best": num_hypotheses, "alpha": float(length_penalty),
                  "max_extra": max_extra, "max_length": max_decoding_length,
                  "min_length": min_decoding_length, "sample": sample,
                  "temperature": float(sampling_temperature),
                  "top_k": sampling_topk if sample else 0, "top_p": float(sampling_topp),
                  "seed": seed}
        impl = self._get()
        replace = _bad_utf8(bad_utf8)
        try:
            found, warned = impl.translate(_utf8(lines), _utf8(prefixes), search, max_batch_tokens,
                                           max_input_tokens, replace)
        except ValueError as e:
            raise _renamed(e, _SEARCH_NAMES) from None
        if warned:
            import warnings
            for w in warned:
                warnings.warn(w, stacklevel=2)
        tok = self.tokenizer
        results = []
        for i, nbest in enumerate(found):
            r = TranslationResult(
                hypotheses=[h[0] for h in nbest],
                tokens=[[tok.piece(t) for t in h[1]] for h in nbest],
                token_ids=[h[1] for h in nbest],
                scores=[h[2] for h in nbest] if return_scores else None,
                log_probs=[h[3] for h in nbest] if return_scores else None)
            if return_attention and lines[i]:
                r.attention = impl.attention(_utf8([lines[i]])[0], nbest[0][1], max_input_tokens,
                                             replace)
            results.append(r)
        return results

    def score_batch(self, source: Sequence[str], target: Sequence[str], *,
                    max_batch_tokens: int = 2000, max_input_tokens: int = 0,
                    bad_utf8: str = "error") -> list[list[float]]:
        """The log-probability (natural log) of each subword of each target given its source
        and the subwords before it, and last of the end token: len(target subwords) + 1 values
        per pair (their sum is what beam search calls the translation's log_prob)."""
        src, tgt = _texts("source", source), _texts("target", target)
        if len(src) != len(tgt):
            raise ValueError(f"target: {len(tgt)} targets for {len(src)} sources")
        try:
            return self._get().score(_utf8(src), _utf8(tgt),
                                     _int("max_batch_tokens", max_batch_tokens, 1),
                                     _int("max_input_tokens", max_input_tokens, 0),
                                     _bad_utf8(bad_utf8))
        except ValueError as e:
            raise _renamed(e, _SEARCH_NAMES) from None

    def translate_iterable(self, source: Iterable[str], *, batch_size: int = 256,
                           **options) -> Iterator[TranslationResult]:
        """Translates a stream of texts (a file, a generator) batch_size texts at a time,
        yielding results in order: memory stays bounded by one batch. Options as
        translate_batch (sampling draws restart from the seed in every batch)."""
        batch_size = _int("batch_size", batch_size, 1)
        batch = []
        for text in source:
            batch.append(text)
            if len(batch) == batch_size:
                yield from self.translate_batch(batch, **options)
                batch = []
        if batch:
            yield from self.translate_batch(batch, **options)


@dataclasses.dataclass
class GenerationResult:
    """One prompt's continuation: its text and ids (no prompt, no end token), the ids the prompt
    became (prompt_tokens) and how many of them were cut from its left (cut), whether the end
    token stopped it (ended), and its log-probability (beam search only; else 0)."""
    text: str
    token_ids: list
    prompt_tokens: int
    cut: int
    ended: bool
    log_prob: float


_GENERATE_NAMES = {"--max-new": "max_new_tokens", "--temperature": "sampling_temperature",
                   "--top-k": "sampling_topk", "--top-p": "sampling_topp", "--beam": "beam_size",
                   "--alpha": "length_penalty"}


class Generator(_Loaded):
    """Continues prompts with a decoder-only language model (`attend generate`).

    model_dir, threads, precision: as Translator's. One Generator may be used from several
    threads at once.
    """

    _kind = "Generator"
    _engine = _attend.Generator

    @property
    def context(self) -> int:
        """The most tokens the model reads."""
        return self._get().context

    def _options(self, max_new_tokens, sampling_topk, sampling_topp, sampling_temperature, seed,
                 beam_size, length_penalty, end_token, truncate):
        if truncate not in ("error", "left"):
            raise ValueError(f"truncate: expected 'error' or 'left', got {truncate!r}")
        return {"max_new": max_new_tokens, "temperature": 0.0 if sampling_topk == 1 else
                float(sampling_temperature), "top_k": 0 if sampling_topk == 1 else sampling_topk,
                "top_p": float(sampling_topp), "seed": seed, "beam": beam_size,
                "alpha": float(length_penalty), "stop_at_eos": bool(end_token),
                "truncate_left": truncate == "left"}

    def _prompt(self, impl, prompt: str, where: str, bad_utf8: str) -> list:
        return impl.prompt_ids(_utf8([prompt])[0], where, _bad_utf8(bad_utf8))

    def generate_batch(self, prompts: Sequence[str], max_new_tokens: int = 256, *,
                       sampling_topk: int = 0, sampling_topp: float = 1.0,
                       sampling_temperature: float = 1.0, seed: int = 1, beam_size: int = 1,
                       length_penalty: float = 0.6, end_token: bool = True,
                       truncate: str = "error", bad_utf8: str = "error"
                       ) -> list[GenerationResult]:
        """Continues every prompt, all in one batch; results in prompt order.

        max_new_tokens: tokens generated per prompt at most (fewer where the context ends).
        sampling_topk: draw each token from the k most likely (0: all; 1: greedy), within
        nucleus mass sampling_topp, at sampling_temperature; prompt i draws from random stream
        (seed, i), whatever else is in the batch. beam_size > 1: beam search instead (the
        sampling arguments unused), ranked with length_penalty as translation's. end_token:
        stop at the end-of-text token. truncate: "error" for a prompt longer than the context,
        or "left" to keep its last tokens. An empty prompt starts from the beginning of text.
        """
        impl = self._get()
        texts = _texts("prompts", prompts)
        ids = [self._prompt(impl, p, f"prompts[{i}]", bad_utf8) for i, p in enumerate(texts)]
        options = self._options(max_new_tokens, sampling_topk, sampling_topp,
                                sampling_temperature, seed, beam_size, length_penalty, end_token,
                                truncate)
        try:
            found = impl.generate(ids, options)
        except ValueError as e:
            raise _renamed(e, _GENERATE_NAMES) from None
        return [GenerationResult(*g) for g in found]

    def generate_tokens(self, prompt: str, max_new_tokens: int = 256, *,
                        sampling_topk: int = 0, sampling_topp: float = 1.0,
                        sampling_temperature: float = 1.0, seed: int = 1, beam_size: int = 1,
                        length_penalty: float = 0.6, end_token: bool = True,
                        truncate: str = "error", bad_utf8: str = "error") -> Iterator[str]:
        """Yields the text of one prompt's continuation as it is drawn: each piece whole UTF-8
        characters, joined equal to generate_batch's text for the same arguments. Arguments as
        generate_batch. Leaving the loop early stops the generation at its next step."""
        impl = self._get()
        if not isinstance(prompt, str):
            raise TypeError(f"prompt: expected str, got {type(prompt).__name__}")
        ids = self._prompt(impl, prompt, "prompt", bad_utf8)
        options = self._options(max_new_tokens, sampling_topk, sampling_topp,
                                sampling_temperature, seed, beam_size, length_penalty, end_token,
                                truncate)
        try:
            stream = impl.stream(ids, options)
        except ValueError as e:
            raise _renamed(e, _GENERATE_NAMES) from None
        return _tokens(stream)


def _tokens(stream) -> Iterator[str]:
    try:
        while (piece := stream.next()) is not None:
            yield piece
    finally:
        stream.close()


class Encoder(_Loaded):
    """Embeddings and hidden states from an encoder-only (masked-LM) model.

    A text is read as the model was trained to read a sentence: beginning id, its tokens, end
    id, cut to the model's positions. model_dir, threads, precision: as Translator's. One
    Encoder may be used from several threads at once.
    """

    _kind = "Encoder"
    _engine = _attend.Encoder

    @property
    def dim(self) -> int:
        """The embedding size (the model's d_model)."""
        return self._get().dim

    def embed(self, texts: Sequence[str], pooling: str = "mean", normalize: bool = True, *,
              max_batch_tokens: int = 8192) -> np.ndarray:
        """One embedding per text: float32 [len(texts), dim]. pooling: "mean" (the average of the
        last hidden states over all the text's positions, beginning and end included) or "cls"
        (the beginning position's). normalize: unit L2 length (cosine similarity is then a dot
        product). max_batch_tokens: padded positions per encoder batch."""
        try:
            return self._get().embed(_utf8(_texts("texts", texts)), pooling, bool(normalize),
                                     _int("max_batch_tokens", max_batch_tokens, 1))
        except ValueError as e:
            raise _renamed(e, {}) from None

    def fill_mask(self, text: str, top_k: int = 5) -> list[dict]:
        """The top_k most likely tokens for the one "[MASK]" in `text` (`attend fill-mask`),
        most likely first: dicts of id, piece, probability and the filled-in text."""
        if not isinstance(text, str):
            raise TypeError(f"text: expected str, got {type(text).__name__}")
        try:
            found = self._get().fill_mask(_utf8([text])[0], top_k)
        except ValueError as e:
            raise _renamed(e, {}) from None
        return [{"id": i, "piece": p, "probability": q, "text": t} for i, p, q, t in found]

    def forward_batch(self, texts: Sequence[str], *, max_batch_tokens: int = 8192
                      ) -> list[tuple[list[int], np.ndarray]]:
        """Per text, the ids the model read and its last hidden states, float32 [ids, dim]."""
        return self._get().forward(_utf8(_texts("texts", texts)),
                                   _int("max_batch_tokens", max_batch_tokens, 1))


class Model(_Loaded):
    """The low level, for any model family: its configuration, its weights as read-only numpy
    views of the engine's own memory (no copy), its logits for one input. Model.load(dir)."""

    _kind = "Model"
    _engine = _attend.Model

    @classmethod
    def load(cls, model_dir: Union[str, os.PathLike], threads: int = 0,
             precision: str = "auto") -> "Model":
        """Loads a model directory (a run directory: its best/ model, else its last checkpoint)."""
        return cls(model_dir, threads, precision)

    @property
    def config(self) -> dict:
        """The configuration the model was built with: the model.* keys (without "model."),
        typed, as resolved from its preset and config.json, with the vocabulary sizes and
        special ids of its tokenizer."""
        return self._get().config()

    @property
    def arch(self) -> str:
        """"encoder_decoder", "decoder_only" or "encoder_only"."""
        return self.config["arch"]

    @property
    def tokenizer(self) -> Tokenizer:
        return Tokenizer._of(self._get())

    def weight_names(self) -> list[str]:
        """The parameter names, as model.safetensors holds them."""
        return self._get().weight_names()

    def weight(self, name: str) -> np.ndarray:
        """One parameter as a read-only array over the model's memory (float32; int8 for an
        int8 model's linear weights). It keeps the model alive while it exists."""
        try:
            return self._get().weight(name)
        except ValueError as e:
            raise KeyError(str(e)) from None

    def weights(self) -> dict[str, np.ndarray]:
        """Every parameter by name (weight())."""
        impl = self._get()
        return {n: impl.weight(n) for n in impl.weight_names()}

    def logits(self, text: str, target: Optional[str] = None) -> np.ndarray:
        """Logits float32 [positions, vocabulary] of one teacher-forced pass: an encoder-decoder
        reads `text` as source and the beginning id + `target` (row t predicts target token t,
        the last row the end token); a decoder-only model reads `text` as a prompt (row t
        predicts token t + 1); an encoder-only model reads `text` as one sentence."""
        if (target is not None) != (self.arch == "encoder_decoder"):
            raise ValueError("target: an encoder-decoder model needs one; other models take none")
        try:
            return self._get().logits(_utf8([text])[0], _utf8([target or ""])[0])
        except ValueError as e:
            raise _renamed(e, {}) from None


def _keys(values: Mapping, where: str, prefix: str = "") -> list:
    """Nested or dotted keys as (section.key, text) pairs, as the command line gives them."""
    if not isinstance(values, Mapping):
        raise TypeError(f"{where}: expected a dict, got {type(values).__name__}")
    out = []
    for k, v in values.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out += _keys(v, where, key + ".")
        elif isinstance(v, bool):
            out.append((key, "true" if v else "false"))
        elif isinstance(v, (int, float, str, os.PathLike)):
            out.append((key, os.fspath(v) if isinstance(v, os.PathLike) else str(v)))
        else:
            raise TypeError(f"{where}: {key}: expected a str, number or bool, got "
                            f"{type(v).__name__}")
    return out


def train(config: Union[str, os.PathLike, Mapping], overrides: Optional[Mapping] = None, *,
          on_step: Optional[Callable[[dict], Optional[bool]]] = None,
          on_validation: Optional[Callable[[dict], Optional[bool]]] = None,
          resume: bool = False) -> str:
    """Trains as `attend train` does, with the same keys; returns the run directory (train.out).

    config: a YAML file (as `attend train CONFIG.yaml`), or a dict of keys, nested
    ({"train": {"lr": 0.002}}) or dotted ({"train.lr": 0.002}). overrides: more keys, applied
    last (as --section.key VALUE). on_step(record) gets each progress record train.jsonl gets
    (every train.log_every steps); on_validation(record) each validation's. A callback that
    returns False stops training with a checkpoint (None or True continues); one that raises
    stops it too, and its exception comes out of train(). resume: continue train.out's last
    checkpoint. Ctrl-C saves a checkpoint and raises KeyboardInterrupt.
    """
    if isinstance(config, Mapping):
        yaml, keys = "", _keys(config, "config")
    else:
        yaml, keys = os.fspath(config), []
        if not os.path.isfile(yaml):
            raise FileNotFoundError(errno.ENOENT, "no such config file", yaml)
    if overrides is not None:
        keys += _keys(overrides, "overrides")

    def on_record(line: str) -> bool:
        record = json.loads(line)
        hook = on_validation if "valid_loss" in record else on_step
        return hook is None or hook(record) is not False

    hooked = on_step is not None or on_validation is not None
    out, steps, interrupted, _ = _attend.train(yaml, keys, bool(resume),
                                               on_record if hooked else None)
    if interrupted:
        raise KeyboardInterrupt(f"training interrupted at step {steps}: checkpoint saved in "
                                f"{out}; continue with attend.train(..., resume=True)")
    return out
