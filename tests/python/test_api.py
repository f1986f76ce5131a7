"""The Python API (python/attend) against the `attend` command line it wraps: training from
Python gives the records `attend train` writes for the same keys; translations, n-best scores,
prefixes, seeded samples and generations equal the CLI's output byte for byte; attention equals
the server's; threads, Ctrl-C, callbacks, closing and every bad argument behave as documented.
Models are trained here, on generated data, in a few seconds each."""
import json
import os
import pathlib
import random
import signal
import subprocess
import threading
import time

import numpy as np
import pytest

import attend

TIMING_KEYS = ("tgt_tokens_per_s", "src_tgt_tokens_per_s", "elapsed_s")

TRANSLATION = {
    "model": {"preset": "small", "d_model": 64, "ffn": 128, "heads": 4, "encoder_layers": 2,
              "decoder_layers": 2, "norm": "pre", "dropout": 0.1},
    "data": {"generate": "numbers-en", "generate_train": 3000, "generate_valid": 50,
             "generate_max": 9999},
    "vocab": {"size": 100, "split_digits": True},
    "train": {"schedule": "inverse_sqrt", "lr": 0.003, "warmup": 50, "max_tokens": 1024,
              "max_steps": 80, "log_every": 10, "valid_every": 40, "save_every": 40,
              "threads": 2},
}


def cli_keys(config, prefix=""):
    """A nested dict of keys as `attend train` arguments."""
    out = []
    for k, v in config.items():
        if isinstance(v, dict):
            out += cli_keys(v, f"{prefix}{k}.")
        else:
            out += [f"--{prefix}{k}", str(v).lower() if isinstance(v, bool) else str(v)]
    return out


def records(run):
    """train.jsonl without the timing fields (which differ between any two runs)."""
    out = []
    for line in (pathlib.Path(run) / "train.jsonl").read_text().splitlines():
        r = json.loads(line)
        for k in TIMING_KEYS:
            r.pop(k, None)
        out.append(r)
    return out


@pytest.fixture(scope="session")
def translation_model(tmp_path_factory):
    out = tmp_path_factory.mktemp("translation") / "run"
    steps, validations = [], []
    got = attend.train(TRANSLATION, {"train.out": str(out)}, on_step=steps.append,
                       on_validation=validations.append)
    assert got == str(out)
    return {"run": out, "steps": steps, "validations": validations}


@pytest.fixture(scope="session")
def numbers(translation_model):
    """Inputs to translate: the held-out numbers, an empty line and a long one."""
    lines = (translation_model["run"] / "valid.src").read_text().splitlines()[:40]
    return lines[:10] + [""] + lines[10:] + ["1234567"]


@pytest.fixture(scope="session")
def lm_model(tmp_path_factory):
    d = tmp_path_factory.mktemp("lm")
    rng = random.Random(3)
    text = "".join(f"the {rng.choice(['cat', 'dog', 'fox', 'owl'])} "
                   f"{rng.choice(['sat', 'ran', 'hid'])} on the "
                   f"{rng.choice(['mat', 'log', 'box'])}.\n" for _ in range(600))
    (d / "text.txt").write_text(text)
    config = {"model": {"preset": "gpt-tiny", "d_model": 64, "ffn": 128, "heads": 4,
                        "decoder_layers": 2, "max_positions": 64, "dropout": 0.1},
              "data": {"train_text": str(d / "text.txt"), "block": 48},
              "vocab": {"type": "char"},
              "train": {"out": str(d / "run"), "max_tokens": 1536, "schedule": "inverse_sqrt",
                        "lr": 0.003, "warmup": 20, "label_smoothing": 0, "max_steps": 60,
                        "log_every": 20, "valid_every": 30, "save_every": 30, "threads": 2}}
    return attend.train(config)


@pytest.fixture(scope="session")
def mlm_model(tmp_path_factory):
    d = tmp_path_factory.mktemp("mlm")
    rng = random.Random(5)
    (d / "text.txt").write_text("".join(
        f"the {rng.choice(['cat', 'dog', 'fox', 'owl'])} {rng.choice(['sat', 'ran', 'hid'])} "
        f"on the {rng.choice(['mat', 'log', 'box'])}.\n" for _ in range(600)))
    config = {"model": {"arch": "encoder_only", "preset": "small", "d_model": 64, "ffn": 128,
                        "heads": 4, "encoder_layers": 2, "max_positions": 32, "norm": "pre",
                        "activation": "gelu", "positions": "learned", "dropout": 0.1},
              "data": {"train_text": str(d / "text.txt")}, "vocab": {"type": "bpe", "size": 40},
              "train": {"out": str(d / "run"), "max_tokens": 1024, "lr": 0.003, "warmup": 20,
                        "schedule": "inverse_sqrt", "label_smoothing": 0, "max_steps": 40,
                        "log_every": 20, "valid_every": 20, "save_every": 20, "threads": 2}}
    return attend.train(config)


def test_python_m_attend_prints_attend_info(cli):
    got = subprocess.run([os.sys.executable, "-m", "attend"], capture_output=True, text=True,
                         check=True).stdout
    assert got == cli("info")
    assert got.startswith("attend 0.1.0\n")


def test_train_equals_the_command_line(cli, translation_model, tmp_path):
    cli_run = tmp_path / "cli"
    cli("train", *cli_keys(TRANSLATION), "--train.out", cli_run)
    py = records(translation_model["run"])
    assert py == records(cli_run)
    # The callbacks got exactly the records train.jsonl got, split by kind.
    steps = [r for r in py if "valid_loss" not in r]
    valid = [r for r in py if "valid_loss" in r]
    assert len(steps) == 8 and len(valid) == 2
    for got, want in zip(translation_model["steps"], steps):
        assert {k: v for k, v in got.items() if k not in TIMING_KEYS} == want
    assert translation_model["validations"] == valid
    assert (cli_run / "checkpoints" / "step-00000080" / "model.safetensors").read_bytes() == (
        translation_model["run"] / "checkpoints" / "step-00000080" /
        "model.safetensors").read_bytes()


def write_lines(path, lines):
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def test_translate_batch_equals_attend_translate(cli, translation_model, numbers, tmp_path):
    run = translation_model["run"]
    src = write_lines(tmp_path / "src.txt", numbers)
    with attend.Translator(run) as t:
        best = t.translate_batch(numbers)
        assert "".join(r.hypotheses[0] + "\n" for r in best) == cli(
            "translate", "-m", run, "-i", src)
        nbest = t.translate_batch(numbers, beam_size=5, num_hypotheses=3, length_penalty=1.0)
        want = cli("translate", "-m", run, "-i", src, "--beam", 5, "--n-best", 3,
                      "--alpha", 1.0)
        assert "".join(f"{i} ||| {h} ||| {s:.4f}\n" for i, r in enumerate(nbest)
                       for h, s in zip(r.hypotheses, r.scores)) == want
        greedy = t.translate_batch(numbers, beam_size=1, max_extra=3, min_decoding_length=2)
        assert "".join(r.hypotheses[0] + "\n" for r in greedy) == cli(
            "translate", "-m", run, "-i", src, "--beam", 1, "--max-extra", 3,
            "--min-length", 2)
        # tokens, ids and the tokenizer agree with each other
        r = best[0]
        assert r.tokens[0] == [t.tokenizer.piece(i) for i in r.token_ids[0]]
        assert t.tokenizer.decode(r.token_ids[0]) == r.hypotheses[0]
        assert best[10].hypotheses == [""]


def test_sampling_and_prefix_equal_the_command_line(cli, translation_model, numbers,
                                                    tmp_path):
    run = translation_model["run"]
    src = write_lines(tmp_path / "src.txt", numbers)
    with attend.Translator(run) as t:
        drawn = t.translate_batch(numbers, beam_size=1, sampling_topk=0,
                                  sampling_temperature=0.8, seed=7)
        assert "".join(r.hypotheses[0] + "\n" for r in drawn) == cli(
            "translate", "-m", run, "-i", src, "--sample", "--temperature", 0.8, "--seed", 7)
        topk = t.translate_batch(numbers, beam_size=1, sampling_topk=3, sampling_topp=0.9,
                                 seed=3)
        assert "".join(r.hypotheses[0] + "\n" for r in topk) == cli(
            "translate", "-m", run, "-i", src, "--sample", "--top-k", 3, "--top-p", 0.9,
            "--seed", 3)
        prefixes = ["one" if i % 3 == 0 else "" for i in range(len(numbers))]
        pre = write_lines(tmp_path / "prefix.txt", prefixes)
        forced = t.translate_batch(numbers, target_prefix=[p or None for p in prefixes])
        assert "".join(r.hypotheses[0] + "\n" for r in forced) == cli(
            "translate", "-m", run, "-i", src, "--prefix", pre)
        for r, p, line in zip(forced, prefixes, numbers):
            if p and line:
                assert r.hypotheses[0].startswith("one")


def test_attention_equals_the_servers(cli, translation_model):
    import urllib.request
    run = translation_model["run"]
    exe = os.environ.get("ATTEND", str(pathlib.Path(__file__).resolve().parents[2] / "build" /
                                       "release" / "attend"))
    server = subprocess.Popen([exe, "serve", "-m", str(run), "--port", "0"],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        line = server.stdout.readline()
        assert line.startswith("listening on http://"), line
        url = line.split()[-1] + "/v1/translate"
        texts = ["4711", "90210"]
        req = urllib.request.Request(url, json.dumps({"text": texts, "attention": True}).encode(),
                                     {"Content-Type": "application/json"})
        reply = json.loads(urllib.request.urlopen(req, timeout=60).read())
    finally:
        server.terminate()
        server.wait()
    with attend.Translator(run) as t:
        got = t.translate_batch(texts, return_attention=True)
        assert t.translate_batch(texts)[0].attention is None
    for r, served in zip(got, reply["translations"]):
        best = served[0]
        assert r.hypotheses[0] == best["text"]
        a = best["attention"]
        layers = np.array(a["layers"])
        assert r.attention.dtype == np.float32 and r.attention.shape == layers.shape
        np.testing.assert_allclose(r.attention, layers, atol=0.51e-4, rtol=0)
        np.testing.assert_allclose(r.attention.sum(-1), 1, atol=1e-5)


def test_score_batch_agrees_with_the_search(translation_model, numbers):
    lines = [n for n in numbers if n]
    with attend.Translator(translation_model["run"]) as t:
        found = t.translate_batch(lines, beam_size=4, num_hypotheses=2)
        checked = 0
        for rank in (0, 1):
            targets = [r.hypotheses[rank] for r in found]
            scores = t.score_batch(lines, targets, max_batch_tokens=50)
            for r, s in zip(found, scores):
                # one value per subword of the target text and the end token
                ids = t.tokenizer.encode(r.hypotheses[rank])
                assert len(s) == len(ids) + 1 and all(v <= 0 for v in s)
                # the sum is the search's log_prob, for a hypothesis whose text re-reads as its
                # ids and that ended with the end token (shorter than any length limit here)
                if ids == r.token_ids[rank] and len(ids) < 50:
                    assert sum(s) == pytest.approx(r.log_probs[rank], abs=2e-4)
                    checked += 1
        assert checked >= len(lines) // 2
        # a pair's scores do not depend on its batch
        alone = t.score_batch(lines[:1], [found[0].hypotheses[0]])[0]
        assert alone == pytest.approx(t.score_batch(lines, [r.hypotheses[0] for r in found])[0],
                                      abs=1e-5)
        with pytest.raises(ValueError, match="target: 1 targets for 2 sources"):
            t.score_batch(["1", "2"], ["one"])
        with pytest.raises(ValueError, match="source:1: the source is empty"):
            t.score_batch([""], ["one"])


def test_translate_iterable_streams_in_order(translation_model, numbers):
    with attend.Translator(translation_model["run"]) as t:
        whole = t.translate_batch(numbers, beam_size=1)
        got = list(t.translate_iterable(iter(numbers), batch_size=7, beam_size=1))
        assert [r.hypotheses for r in got] == [r.hypotheses for r in whole]


def test_generate_equals_attend_generate(cli, lm_model, tmp_path):
    prompts = ["the dog", "the cat", "", "the owl hid"]
    src = write_lines(tmp_path / "prompts.txt", prompts)
    with attend.Generator(lm_model) as g:
        got = g.generate_batch(prompts, max_new_tokens=30, seed=5)
        want = [json.loads(line) for line in
                cli("generate", "-m", lm_model, "-i", src, "--max-new", 30,
                    "--seed", 5).splitlines()]
        assert [r.text for r in got] == [w["text"] for w in want]
        assert [len(r.token_ids) for r in got] == [w["tokens"] for w in want]
        assert [r.prompt_tokens for r in got] == [w["prompt_tokens"] for w in want]
        assert [r.ended for r in got] == [w["ended"] for w in want]
        beam = g.generate_batch(prompts, max_new_tokens=20, beam_size=3)
        want = [json.loads(line) for line in
                cli("generate", "-m", lm_model, "-i", src, "--max-new", 20,
                    "--beam", 3).splitlines()]
        assert [r.text for r in beam] == [w["text"] for w in want]
        # streaming: the pieces join to the CLI's streamed output for the same prompt
        pieces = list(g.generate_tokens("the fox", max_new_tokens=40, seed=9,
                                        sampling_temperature=0.7))
        assert len(pieces) >= 2
        assert "".join(pieces) + "\n" == cli("generate", "-m", lm_model, "--prompt",
                                                "the fox", "--max-new", 40, "--seed", 9,
                                                "--temperature", 0.7)
        assert "".join(pieces) == g.generate_batch(["the fox"], max_new_tokens=40, seed=9,
                                                   sampling_temperature=0.7)[0].text
        # leaving the loop early stops the generation
        stream = g.generate_tokens("the", max_new_tokens=60)
        assert isinstance(next(stream), str)
        stream.close()


def test_embeddings_pool_the_hidden_states(mlm_model):
    texts = ["the cat sat on the mat.", "the dog ran", "", "owl " * 40]
    with attend.Encoder(mlm_model) as e:
        assert e.dim == 64
        hidden = e.forward_batch(texts)
        tok = attend.Tokenizer(mlm_model)
        ids, h = hidden[0]
        assert ids == [tok.special_ids["bos"], *tok.encode(texts[0]), tok.special_ids["eos"]]
        assert h.dtype == np.float32 and h.shape == (len(ids), 64)
        assert len(hidden[3][0]) == 32  # cut to the model's positions, the end id kept
        assert hidden[2][0] == [tok.special_ids["bos"], tok.special_ids["eos"]]
        for pooling in ("mean", "cls"):
            for normalize in (True, False):
                got = e.embed(texts, pooling, normalize)
                assert got.shape == (4, 64) and got.dtype == np.float32
                # numpy's pooling of the hidden states, in double precision
                want = np.stack([h.astype(np.float64).mean(0) if pooling == "mean" else
                                 h[0].astype(np.float64) for _, h in hidden])
                if normalize:
                    want /= np.linalg.norm(want, axis=1, keepdims=True)
                np.testing.assert_allclose(got, want, rtol=0, atol=2e-6)
        # a text's embedding does not depend on the others in its batch
        np.testing.assert_allclose(e.embed(texts[:1])[0], e.embed(texts)[0], atol=1e-5)
        assert e.embed([]).shape == (0, 64)
        with pytest.raises(ValueError, match="pooling: expected 'mean' or 'cls', got 'max'"):
            e.embed(texts, pooling="max")
        with pytest.raises(ValueError, match=r"text\[1\]: invalid UTF-8"):
            e.embed(["a", "b\udcff"])


def test_embed_equals_attend_embed(cli, mlm_model, tmp_path):
    texts = ["the cat sat on the mat.", "", "the owl hid on the log.", "dog " * 50]
    src = write_lines(tmp_path / "texts.txt", texts)
    with attend.Encoder(mlm_model) as e:
        lines = cli("embed", "-m", mlm_model, "-i", src, "--normalize").splitlines()
        got = np.array([json.loads(line)["embedding"] for line in lines], dtype=np.float32)
        np.testing.assert_array_equal(got, e.embed(texts))
        cli("embed", "-m", mlm_model, "-i", src, "--pooling", "cls", "-o", tmp_path / "e.npy")
        np.testing.assert_array_equal(np.load(tmp_path / "e.npy"),
                                      e.embed(texts, pooling="cls", normalize=False))


def test_fill_mask_equals_attend_fill_mask(cli, mlm_model):
    with attend.Encoder(mlm_model) as e:
        got = e.fill_mask("the cat [MASK] on the mat.", top_k=4)
        want = cli("fill-mask", "-m", mlm_model, "the cat [MASK] on the mat.", "--top-k", 4)
        assert "".join(f"{f['probability']:.4f}\t{f['piece']}\t{f['text']}\n" for f in got) == want
        with pytest.raises(ValueError, match="exactly one"):
            e.fill_mask("the cat sat")


def test_model_weights_are_views_and_logits_agree(translation_model, lm_model, mlm_model):
    from safetensors.numpy import load_file
    with attend.Model.load(translation_model["run"]) as m:
        assert m.arch == "encoder_decoder"
        c = m.config
        assert (c["d_model"], c["heads"], c["encoder_layers"], c["norm"]) == (64, 4, 2, "pre")
        assert c["tgt_vocab"] == m.tokenizer.vocab_size and c["eos_id"] == 3
        stored = load_file(os.path.join(m.model_dir, "model.safetensors"))
        assert sorted(m.weight_names()) == sorted(stored)
        for name, w in m.weights().items():
            assert w.dtype == np.float32 and not w.flags.writeable
            np.testing.assert_array_equal(w, stored[name])
        # no copy: every call gives a view of the same memory, which outlives the Model
        name = m.weight_names()[0]
        a, b = m.weight(name), m.weight(name)
        assert a.__array_interface__["data"][0] == b.__array_interface__["data"][0]
        with pytest.raises(ValueError, match="read-only"):
            a[...] = 0
        with pytest.raises(KeyError, match="no such weight"):
            m.weight("nope")
        # teacher-forced logits give score_batch's log-probabilities
        with attend.Translator(translation_model["run"]) as t:
            target = t.translate_batch(["4711"])[0].hypotheses[0]
            scores = t.score_batch(["4711"], [target])[0]
        z = m.logits("4711", target).astype(np.float64)
        logp = z - z.max(1, keepdims=True)
        logp -= np.log(np.exp(logp).sum(1, keepdims=True))
        ids = m.tokenizer.encode(target) + [m.tokenizer.special_ids["eos"]]
        np.testing.assert_allclose(logp[np.arange(len(ids)), ids], scores, atol=1e-5)
    del m
    assert float(a.sum()) == float(b.sum())  # still readable: the array holds the model
    with attend.Model.load(lm_model) as m, attend.Generator(lm_model) as g:
        z = m.logits("the cat")
        assert z.shape == (7, m.config["tgt_vocab"])  # 7 characters, no beginning id
        greedy = g.generate_batch(["the cat"], max_new_tokens=1, sampling_topk=1)[0]
        assert greedy.token_ids == [int(z[-1].argmax())]
        with pytest.raises(ValueError, match="target: an encoder-decoder model needs one"):
            m.logits("the", "cat")
    with attend.Model.load(mlm_model) as m, attend.Encoder(mlm_model) as e:
        ids, _ = e.forward_batch(["the cat"])[0]
        assert m.arch == "encoder_only"
        assert m.logits("the cat").shape == (len(ids), m.config["src_vocab"])


def test_two_threads_translate_at_once(translation_model, numbers):
    lines = numbers * 10
    with attend.Translator(translation_model["run"]) as t:
        alone = t.translate_batch(lines, beam_size=4)
        spans, results = {}, {}

        def work(name):
            start = time.monotonic()
            results[name] = t.translate_batch(lines, beam_size=4)
            spans[name] = (start, time.monotonic())

        threads = [threading.Thread(target=work, args=(n,)) for n in "ab"]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
    # Both ran at once: each started before the other ended (the GIL is not held while
    # decoding), and each got what one thread alone gets.
    (a0, a1), (b0, b1) = spans["a"], spans["b"]
    assert a0 < b1 and b0 < a1
    for name in "ab":
        assert [r.hypotheses for r in results[name]] == [r.hypotheses for r in alone]


def test_ctrl_c_cancels_within_a_step(translation_model, numbers):
    lines = numbers * 150
    with attend.Translator(translation_model["run"]) as t:
        whole, _ = timed(lambda: t.translate_batch(lines, beam_size=8))
        sent = []

        def interrupt():
            time.sleep(whole / 10)
            sent.append(time.monotonic())
            signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)

        threading.Thread(target=interrupt).start()
        start = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            t.translate_batch(lines, beam_size=8)
        stopped = time.monotonic()
        # Stopped soon after the signal, long before the call would have ended (a step takes
        # milliseconds; the whole call about `whole` seconds).
        assert sent and stopped - start < whole / 2, (
            f"stopped {stopped - sent[0]:.2f} s after Ctrl-C; the whole call takes {whole:.2f} s")
        # the translator is still usable
        assert t.translate_batch(["12"])[0].hypotheses[0]


def timed(fn):
    start = time.monotonic()
    out = fn()
    return time.monotonic() - start, out


def test_callback_stops_training_with_a_checkpoint(tmp_path):
    out = tmp_path / "run"
    seen = []

    def on_step(record):
        seen.append(record["step"])
        return record["step"] < 20

    got = attend.train(TRANSLATION, {"train": {"out": str(out), "max_steps": 1000}},
                       on_step=on_step)
    assert seen == [10, 20]
    assert (out / "checkpoints" / "step-00000020" / "model.safetensors").is_file()
    # and an exception in a callback stops it too, then comes out of train()
    def boom(record):
        raise KeyError("from the callback")

    with pytest.raises(KeyError, match="from the callback"):
        attend.train(TRANSLATION, {"train": {"out": str(tmp_path / "b"), "max_steps": 1000}},
                     on_step=boom)
    assert (tmp_path / "b" / "checkpoints" / "step-00000010").is_dir()
    assert got == str(out)


def test_ctrl_c_stops_training_with_a_checkpoint(tmp_path):
    out = tmp_path / "run"

    def on_step(record):  # Ctrl-C at the first progress record, as a terminal sends it
        if record["step"] == 10:
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(KeyboardInterrupt, match="checkpoint saved"):
        attend.train(TRANSLATION, {"train": {"out": str(out), "max_steps": 1000}},
                     on_step=on_step)
    saved = sorted(p.name for p in (out / "checkpoints").iterdir() if p.name.startswith("step-"))
    assert saved and int(saved[-1][5:]) < 1000
    # the interpreter's own Ctrl-C handling is back: a later signal raises KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(1)
    # and training continues from the checkpoint
    assert attend.train(TRANSLATION, {"train": {"out": str(out), "max_steps": 30}},
                        resume=True) == str(out)


def test_closing(translation_model):
    t = attend.Translator(translation_model["run"])
    assert t.translate_batch(["5"])[0].hypotheses
    t.close()
    with pytest.raises(RuntimeError, match="closed"):
        t.translate_batch(["5"])
    with attend.Translator(translation_model["run"]) as u:
        pass
    with pytest.raises(RuntimeError, match="closed"):
        u.model_dir


def test_bad_arguments(translation_model, lm_model, mlm_model, tmp_path):
    run = translation_model["run"]
    with pytest.raises(FileNotFoundError, match="no such model directory"):
        attend.Translator(tmp_path / "missing")
    with pytest.raises(ValueError, match="this is a decoder_only model"):
        attend.Translator(lm_model)
    with pytest.raises(ValueError, match="this is an encoder_decoder model"):
        attend.Generator(run)
    with pytest.raises(ValueError, match="precision: expected one of"):
        attend.Translator(run, precision="fp16")
    with pytest.raises(ValueError, match="threads: expected an integer in 1..1024"):
        attend.Translator(run, threads=-2)
    with attend.Translator(run) as t:
        with pytest.raises(TypeError, match="beam"):
            t.translate_batch(["1"], beam=4)
        with pytest.raises(TypeError, match="source: expected a list of str"):
            t.translate_batch("12")
        with pytest.raises(TypeError, match=r"source\[1\]: expected str"):
            t.translate_batch(["12", 13])
        with pytest.raises(ValueError, match="beam_size"):
            t.translate_batch(["1"], beam_size=0)
        with pytest.raises(ValueError, match="num_hypotheses"):
            t.translate_batch(["1"], beam_size=2, num_hypotheses=3)
        with pytest.raises(ValueError, match="sampling_topp"):
            t.translate_batch(["1"], beam_size=1, sampling_topk=0, sampling_topp=1.5)
        with pytest.raises(ValueError, match="beam_size"):
            t.translate_batch(["1"], sampling_topk=0)  # sampling with beam 4
        with pytest.raises(ValueError, match="target_prefix: 1 prefixes for 2 inputs"):
            t.translate_batch(["1", "2"], target_prefix=["one"])
        with pytest.raises(ValueError, match="bad_utf8"):
            t.translate_batch(["1"], bad_utf8="drop")
        # a line of a file read with errors="surrogateescape": its invalid byte reaches attend
        with pytest.raises(ValueError, match='source:2: invalid UTF-8 \\(bad_utf8="replace"'):
            t.translate_batch(["12", "1\udcff"])
        assert t.translate_batch(["12", "1\udcff"], bad_utf8="replace")[1].hypotheses[0]
    with attend.Generator(lm_model) as g:
        with pytest.raises(ValueError, match="prompt 1 has 200 tokens but the model's context "
                                             "is 64 .* with truncate=\"left\""):
            g.generate_batch(["x" * 200])
        assert g.generate_batch(["x" * 200], max_new_tokens=3, truncate="left")[0].cut > 0
        with pytest.raises(ValueError, match="sampling_topp"):
            g.generate_batch(["the"], sampling_topp=0)
        with pytest.raises(TypeError, match="prompt: expected str"):
            g.generate_tokens(["the"])
    with pytest.raises(ValueError, match="this is an encoder_only model"):
        attend.Translator(mlm_model)
    with pytest.raises(ValueError, match="this is a decoder_only model"):
        attend.Encoder(lm_model)
    with pytest.raises(FileNotFoundError, match="no such config file"):
        attend.train(tmp_path / "none.yaml")
    with pytest.raises(ValueError, match="train.lrr"):
        attend.train(TRANSLATION, {"train.lrr": 1})
    with pytest.raises(ValueError, match="train.max_steps"):
        attend.train(TRANSLATION, {"train.max_steps": "many"})
    with pytest.raises(TypeError, match="train.lr: expected a str, number or bool"):
        attend.train(TRANSLATION, {"train": {"lr": [1]}})
