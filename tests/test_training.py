"""Reference numbers, Adam by hand, tokenizer, data split, sampling, reproducibility."""
import math
import os
import random

import pytest

from conftest import ROOT


class StopAfter:
    """Stands in for the Ctrl-C handler: asks train() to stop after a given step."""

    def __init__(self, steps):
        self.steps = steps
        self.stop_requested = False
        self.losses = []

    def on_step(self, step, loss):
        self.losses.append(loss)
        if step == self.steps:
            self.stop_requested = True


def setup_default_run(mg):
    random.seed(mg.seed)
    docs = mg.load_docs(os.path.join(ROOT, 'input.txt'))
    train_docs, val_docs = mg.split_docs(docs)
    tok = mg.Tokenizer(docs)
    state = mg.init_params(tok.vocab_size)
    return train_docs, val_docs, tok, state


def test_first_three_steps_match_the_reference(mg):
    train_docs, val_docs, tok, state = setup_default_run(mg)
    stopper = StopAfter(3)
    losses = mg.train(state, mg.flatten(state), train_docs, tok, ctrl_c=stopper, on_step=stopper.on_step)
    assert [round(x, 4) for x in losses] == [3.3285, 3.3620, 3.3243]


def test_first_three_steps_match_the_reference_with_the_atomic_graph(mg):
    mg.fused_ops = False
    train_docs, val_docs, tok, state = setup_default_run(mg)
    stopper = StopAfter(3)
    losses = mg.train(state, mg.flatten(state), train_docs, tok, ctrl_c=stopper, on_step=stopper.on_step)
    assert [round(x, 4) for x in losses] == [3.3285, 3.3620, 3.3243]


def test_split_holds_out_the_last_200_shuffled_names(mg):
    random.seed(mg.seed)
    shuffled = mg.load_docs(os.path.join(ROOT, 'input.txt'))
    random.shuffle(shuffled)
    train_docs, val_docs, tok, state = setup_default_run(mg)
    assert val_docs == shuffled[-200:] and train_docs == shuffled[:-200]
    assert not set(train_docs) & set(val_docs)
    assert tok.vocab_size == 27


def test_small_files_hold_out_a_tenth(mg):
    random.seed(0)
    docs = [f'name{i}' for i in range(50)]
    train_docs, val_docs = mg.split_docs(docs)
    assert (len(train_docs), len(val_docs)) == (45, 5)
    random.seed(0)
    assert mg.split_docs(['solo']) == (['solo'], [])


def test_adam_first_two_updates_by_hand(mg):
    mg.beta1, mg.beta2, mg.eps_adam = 0.85, 0.99, 1e-8
    p, q = mg.Value(1.0), mg.Value(1.0)
    opt = mg.Adam([p, q])
    p.grad, q.grad = 0.5, -2.0
    opt.step(0.01)
    # m = 0.15·g, v = 0.01·g²; after bias correction m̂ = g, v̂ = g², so the step is lr·g/(|g| + eps)
    assert p.data == pytest.approx(1.0 - 0.01 * 0.5 / 0.50000001, rel=1e-14)
    assert q.data == pytest.approx(1.0 + 0.01 * 2.0 / 2.00000001, rel=1e-14)
    assert (p.grad, q.grad) == (0.0, 0.0)
    assert opt.m == pytest.approx([0.075, -0.3]) and opt.v == pytest.approx([0.0025, 0.04])
    p.grad, q.grad = 0.5, 1.0
    opt.step(0.01)
    # p: m = 0.85·0.075 + 0.15·0.5 = 0.13875, m̂ = 0.13875/(1 - 0.85²) = 0.5
    #    v = 0.99·0.0025 + 0.01·0.25 = 0.004975, v̂ = 0.004975/(1 - 0.99²) = 0.25
    assert opt.m[0] == pytest.approx(0.13875) and opt.v[0] == pytest.approx(0.004975)
    assert p.data == pytest.approx(1.0 - 2 * 0.01 * 0.5 / 0.50000001, rel=1e-12)
    # q: m = 0.85·(-0.3) + 0.15·1 = -0.105, m̂ = -0.378378…; v = 0.99·0.04 + 0.01·1 = 0.0496, v̂ = 2.492462…
    m_hat, v_hat = -0.105 / 0.2775, 0.0496 / 0.0199
    assert q.data == pytest.approx(1.0 + 0.01 * 2.0 / 2.00000001 - 0.01 * m_hat / (math.sqrt(v_hat) + 1e-8),
                                   rel=1e-12)


def test_tokenizer_round_trip(mg):
    tok = mg.Tokenizer(['emma', 'olivia', 'zoe'])
    assert tok.chars == sorted(set('emmaoliviazoe'))
    assert tok.bos == len(tok.chars) and tok.vocab_size == len(tok.chars) + 1
    ids = tok.encode('mia')
    assert ids[0] == ids[-1] == tok.bos
    assert tok.decode(ids) == 'mia'
    for doc in ('emma', 'olivia', 'zoe', 'ame'):
        assert tok.decode(tok.encode(doc)) == doc


def fake_gpt(mg, favourite):
    """A stand-in model that always gives one token a far higher score than the rest."""
    def gpt(state, token_id, pos_id, keys, values):
        return [mg.Value(30.0 if i == favourite else 0.0) for i in range(4)]
    return gpt


def test_sampling_stops_at_bos(mg, monkeypatch):
    tok = mg.Tokenizer(['abc'])
    monkeypatch.setattr(mg, 'gpt', fake_gpt(mg, tok.bos))
    random.seed(0)
    assert mg.sample_name(None, tok) == ''


def test_sampling_stops_at_block_size(mg, monkeypatch):
    tok = mg.Tokenizer(['abc'])
    monkeypatch.setattr(mg, 'gpt', fake_gpt(mg, tok.char_to_id['b']))
    mg.block_size = 7
    random.seed(0)
    assert mg.sample_name(None, tok) == 'b' * 7


def small_run(mg, seed):
    mg.seed, mg.num_steps, mg.n_embd, mg.n_head = seed, 5, 8, 2
    random.seed(seed)
    docs = ['anna', 'bob', 'carla', 'dora', 'eve', 'fay', 'gus', 'hal', 'ivy', 'jo', 'kim', 'lu']
    train_docs, val_docs = mg.split_docs(docs)
    tok = mg.Tokenizer(docs)
    state = mg.init_params(tok.vocab_size)
    losses = mg.train(state, mg.flatten(state), train_docs, tok, on_step=lambda s, l: None)
    return losses, mg.evaluate(state, val_docs, tok), [mg.sample_name(state, tok) for _ in range(5)]


def test_same_seed_same_output(mg):
    first = small_run(mg, 3)
    assert small_run(mg, 3) == first
    assert small_run(mg, 4) != first


def test_shared_prefix_evaluation_equals_one_by_one(mg):
    """evaluate() reuses the positions that consecutive sorted names share; the result must not change."""
    mg.n_embd, mg.n_head, mg.n_layer, mg.block_size = 8, 2, 2, 8
    random.seed(5)
    docs = ['mara', 'maria', 'mark', 'mar', 'mar', 'b', 'abcdefghijkl', 'abcdefghijkm', 'zoe', 'maria']
    tok = mg.Tokenizer(docs)
    state = mg.init_params(tok.vocab_size)
    total = count = 0
    for doc in docs:
        losses = mg.doc_losses(state, tok.encode(doc))
        total += sum(loss.data for loss in losses)
        count += len(losses)
    assert mg.evaluate(state, docs, tok) == pytest.approx(total / count, rel=1e-12)


def test_evaluation_consumes_no_random_numbers(mg):
    train_docs, val_docs, tok, state = setup_default_run(mg)
    before = random.getstate()
    mg.evaluate(state, val_docs[:5], tok)
    assert random.getstate() == before


def test_shipped_input_txt():
    with open(os.path.join(ROOT, 'input.txt'), 'rb') as f:
        raw = f.read()
    import hashlib
    assert hashlib.sha256(raw).hexdigest() == '3b20b43df36ec7ee9c90f8ea2c6f1a5310ad2a8608b06f5208edbbf544f26c35'
    names = raw.decode('ascii').split('\n')
    assert names[-1] == ''                       # one final newline
    names = names[:-1]
    assert len(names) == 29910 == len(set(names))
    assert all(name and set(name) <= set('abcdefghijklmnopqrstuvwxyz') for name in names)
