"""``rnncore sample`` (top-k, top-p, batches, stop symbol, beam search, ensembles)
and ``rnncore score``, run as ``python -m rnncore`` on tiny trained models and
compared with the same calls of :mod:`rnncore.decode` in this process."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest

from rnncore import decode
from rnncore.checkpoint import load_model
from rnncore.corpus import default_corpus

TINY = [
    "--num-layers",
    1,
    "--seq-length",
    16,
    "--batch-size",
    4,
    "--eval-every",
    2,
    "--no-progress",
]


def rnncore(*args, cwd):
    """Run ``python -m rnncore ARGS`` and return the completed process."""
    return subprocess.run(
        [sys.executable, "-m", "rnncore", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Three tiny trained runs: 'lstm' and 'gru' share a vocabulary, 'ab' has another."""
    root = tmp_path_factory.mktemp("decode-cli")
    (root / "text.txt").write_text(default_corpus()[:3000], encoding="utf-8")
    (root / "ab.txt").write_text("abba " * 600, encoding="utf-8")
    for name, data, extra in (
        ("lstm", "text.txt", ["--model", "lstm", "--rnn-size", "16"]),
        ("gru", "text.txt", ["--model", "gru", "--rnn-size", "12"]),
        ("ab", "ab.txt", ["--rnn-size", "8"]),
    ):
        done = rnncore(
            "train", "--data", data, *extra, *TINY, "--max-steps", 4, "--out", name, cwd=root
        )
        assert done.returncode == 0, done.stderr
    return root


def loaded(runs, name):
    model, vocab, _ = load_model(runs / name / "best")
    return model, vocab


def test_sample_options_match_the_api(runs):
    model, vocab = loaded(runs, "lstm")
    prime = vocab.encode("The ")
    args = ["sample", "--checkpoint", "lstm", "--prime", "The ", "--length", 30]
    done = rnncore(
        *args,
        "--num-samples",
        3,
        "--seed",
        7,
        "--top-k",
        5,
        "--top-p",
        0.9,
        "--temperature",
        0.8,
        cwd=runs,
    )
    assert done.returncode == 0, done.stderr
    drawn = decode.sample(
        model,
        prime_ids=prime,
        length=30,
        num_samples=3,
        seed=7,
        top_k=5,
        top_p=0.9,
        temperature=0.8,
    )
    want = "".join(
        f"--- sample {i + 1} ---\n{vocab.decode([*prime, *ids])}\n" for i, ids in enumerate(drawn)
    )
    assert done.stdout == want
    greedy = vocab.decode([*prime, *decode.greedy(model, prime_ids=prime, length=30)]) + "\n"
    for flags in (["--top-k", 1, "--seed", 3], ["--temperature", 0]):
        done = rnncore(*args, *flags, cwd=runs)
        assert done.returncode == 0, done.stderr
        assert done.stdout == greedy
    done = rnncore(*args, "--eos", " ", "--num-samples", 4, "--seed", 1, cwd=runs)
    drawn = decode.sample(
        model, prime_ids=prime, length=30, num_samples=4, seed=1, stop_id=vocab.encode(" ")[0]
    )
    assert any(len(ids) < 30 for ids in drawn)  # some did stop
    texts = [vocab.decode([*prime, *ids]) for ids in drawn]
    assert done.stdout == "".join(f"--- sample {i + 1} ---\n{t}\n" for i, t in enumerate(texts))


def test_same_seed_same_text_from_the_cli_the_api_and_charlm(runs):
    model, vocab = loaded(runs, "gru")
    flags = ["--prime", "The ", "--length", 40, "--seed", 11, "--temperature", 0.9, "--top-p", 0.95]
    done = rnncore("sample", "--checkpoint", "gru", *flags, cwd=runs)
    assert done.returncode == 0, done.stderr
    knobs = {"length": 40, "seed": 11, "temperature": 0.9, "top_p": 0.95}
    text = decode.sample_text(model, vocab, prime="The ", **knobs)
    prime = vocab.encode("The ")
    ids = model.sample(prime_ids=prime, **knobs)[0]
    assert done.stdout == text + "\n"
    assert text == vocab.decode([*prime, *ids])
    assert ids != model.sample(prime_ids=prime, **{**knobs, "seed": 12})[0]  # the seed matters


def test_beam_matches_the_api(runs):
    model, vocab = loaded(runs, "lstm")
    done = rnncore(
        "sample",
        "--checkpoint",
        "lstm",
        "--prime",
        "The",
        "--beam",
        4,
        "--n-best",
        3,
        "--length",
        12,
        "--length-penalty",
        0.6,
        "--eos",
        " ",
        cwd=runs,
    )
    assert done.returncode == 0, done.stderr
    prime = vocab.encode("The")
    found = decode.beam_search(
        model,
        prime_ids=prime,
        beam_size=4,
        max_length=12,
        length_penalty=0.6,
        n_best=3,
        eos_id=vocab.encode(" ")[0],
    )
    want = "".join(
        f"--- hypothesis {i + 1}: score {h.score:.4f}, log-prob {h.log_prob:.4f} ---\n"
        f"{vocab.decode([*prime, *h.ids])}\n"
        for i, h in enumerate(found)
    )
    assert len(found) == 3 and done.stdout == want
    single = rnncore(
        "sample", "--checkpoint", "lstm", "--prime", "a", "--beam", 2, "--length", 5, cwd=runs
    )
    (best,) = decode.beam_search(model, prime_ids=vocab.encode("a"), beam_size=2, max_length=5)
    assert single.stdout == vocab.decode([*vocab.encode("a"), *best.ids]) + "\n"


def test_ensemble_matches_the_api(runs):
    (a, vocab), (b, _) = loaded(runs, "lstm"), loaded(runs, "gru")
    ens = decode.Ensemble([a, b], mode="logprob")
    done = rnncore(
        "sample",
        "--checkpoint",
        "lstm",
        "--ensemble",
        "gru",
        "--ensemble-mode",
        "logprob",
        "--length",
        25,
        "--seed",
        3,
        "--prime",
        "a",
        cwd=runs,
    )
    assert done.returncode == 0, done.stderr
    drawn = decode.sample(ens, prime_ids=vocab.encode("a"), length=25, seed=3)[0]
    assert done.stdout == vocab.decode([*vocab.encode("a"), *drawn]) + "\n"
    alone = rnncore(
        "sample", "--checkpoint", "lstm", "--length", 25, "--seed", 3, "--prime", "a", cwd=runs
    )
    assert alone.stdout != done.stdout  # the second model did count
    text = default_corpus()[100:300]
    scored = rnncore("score", "--checkpoint", "lstm", "--ensemble", "gru", "--text", text, cwd=runs)
    mixed = decode.score(decode.Ensemble([a, b]), vocab.encode(text))
    assert float(scored.stdout.splitlines()[1].split()[1]) == pytest.approx(mixed.log_prob)


def parse_score(stdout):
    """``(count, log_prob, nats, bits)`` from the output of ``rnncore score``."""
    lines = stdout.splitlines()
    assert len(lines) == 4 and lines[0].endswith(" chars") and lines[1].endswith(" nats")
    assert lines[2].endswith(" nats/char") and lines[3].endswith(" bits/char")
    return (
        int(lines[0].split()[1]),
        float(lines[1].split()[1]),
        float(lines[2].split()[0]),
        float(lines[3].split()[0]),
    )


def test_score_prints_log_prob_nats_and_bits(runs):
    model, vocab = loaded(runs, "gru")
    text = default_corpus()[2000:2300]
    done = rnncore("score", "--checkpoint", "gru", "--text", text, cwd=runs)
    assert done.returncode == 0, done.stderr
    count, log_prob, nats, bits = parse_score(done.stdout)
    want = decode.score(model, vocab.encode(text))
    assert count == 299
    assert log_prob == pytest.approx(want.log_prob, abs=1e-5)
    assert nats == pytest.approx(want.per_symbol_loss, abs=1e-5)
    assert bits == pytest.approx(want.per_symbol_loss / math.log(2), abs=1e-5)
    (runs / "score.txt").write_text(text, encoding="utf-8")
    from_file = rnncore("score", "--checkpoint", "gru", "--file", "score.txt", cwd=runs)
    assert from_file.stdout == done.stdout
    primed = rnncore("score", "--checkpoint", "gru", "--text", text, "--prime", "The ", cwd=runs)
    count, log_prob, _, _ = parse_score(primed.stdout)
    want = decode.score(model, vocab.encode(text), prime_ids=vocab.encode("The "))
    assert count == 300 and log_prob == pytest.approx(want.log_prob, abs=1e-5)


@pytest.mark.parametrize("weights", ["bfloat16", "int8"])
def test_weights_flag_samples_and_scores_the_compressed_model(runs, weights):
    model, vocab = loaded(runs, "lstm")
    small = model.compile(weights=weights)
    flags = ["--prime", "The ", "--length", 30, "--seed", 4, "--weights", weights]
    done = rnncore("sample", "--checkpoint", "lstm", *flags, cwd=runs)
    assert done.returncode == 0, done.stderr
    assert done.stdout == decode.sample_text(small, vocab, prime="The ", length=30, seed=4) + "\n"
    text = default_corpus()[2000:2300]
    scored = rnncore(
        "score", "--checkpoint", "lstm", "--text", text, "--weights", weights, cwd=runs
    )
    assert scored.returncode == 0, scored.stderr
    _, log_prob, _, _ = parse_score(scored.stdout)
    assert log_prob == pytest.approx(decode.score(small, vocab.encode(text)).log_prob, abs=1e-5)
    full = decode.score(model, vocab.encode(text)).log_prob
    assert log_prob != pytest.approx(full, abs=1e-9)  # the flag did change the weights
    as_trained = rnncore("score", "--checkpoint", "lstm", "--text", text, "--weights", "full",
                         cwd=runs)  # fmt: skip
    assert parse_score(as_trained.stdout)[1] == pytest.approx(full, abs=1e-5)
    both = rnncore("score", "--checkpoint", "lstm", "--ensemble", "gru", "--text", text,
                   "--weights", weights, cwd=runs)  # fmt: skip
    assert both.returncode == 0, both.stderr
    mixed = decode.Ensemble([small, loaded(runs, "gru")[0].compile(weights=weights)])
    assert parse_score(both.stdout)[1] == pytest.approx(
        decode.score(mixed, vocab.encode(text)).log_prob, abs=1e-5
    )


def test_errors_are_one_line_and_status_2(runs):
    (runs / "binary.txt").write_bytes(b"\x00\xff\xfe\x80" * 10)
    sample = ["sample", "--checkpoint", "lstm"]
    score = ["score", "--checkpoint", "lstm"]
    cases = [
        ([*sample, "--top-p", 0], "--top-p"),
        ([*sample, "--top-p", 1.5], "--top-p"),
        ([*sample, "--top-k", 0], "--top-k"),
        ([*sample, "--temperature", -1], "--temperature"),
        ([*sample, "--num-samples", 0], "--num-samples"),
        ([*sample, "--beam", 0], "--beam"),
        ([*sample, "--beam", 2, "--length", 0], "--length"),
        ([*sample, "--beam", 2, "--top-k", 3], "--top-k"),
        ([*sample, "--beam", 2, "--seed", 3], "--seed"),
        ([*sample, "--beam", 2, "--n-best", 3], "--n-best"),
        ([*sample, "--n-best", 2], "--n-best"),
        ([*sample, "--length-penalty", 1], "--length-penalty"),
        ([*sample, "--eos", "xy"], "--eos"),
        ([*sample, "--ensemble", "ab"], "vocabulary"),
        ([*sample, "--ensemble-mode", "logprob"], "--ensemble"),
        ([*sample, "--prime", "\u2603"], "not in the vocabulary"),
        ([*score, "--text", "T"], "at least 2"),
        ([*score, "--text", "\u2603\u2603"], "not in the vocabulary"),
        ([*score, "--file", "missing.txt"], "missing.txt"),
        ([*score, "--file", "binary.txt"], "not UTF-8"),
    ]
    for start in range(0, len(cases), 4):  # a few processes at a time
        batch = cases[start : start + 4]
        procs = [
            subprocess.Popen(
                [sys.executable, "-m", "rnncore", *map(str, args)],
                cwd=runs,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for args, _ in batch
        ]
        for proc, (args, words) in zip(procs, batch):
            out, err = proc.communicate(timeout=120)
            assert proc.returncode == 2, (args, err)
            assert out == "" and "Traceback" not in err and words in err, (args, err)
            assert err.startswith("rnncore: error:") and err.count("\n") == 1, (args, err)
