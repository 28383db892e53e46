"""The whole model: loss gradients against finite differences, fused against atomic, deep and long settings."""
import random

import pytest

from benchmark import graph_size
from test_autograd import numeric_grad

DOCS = ['abcab', 'ba', 'cabbac', 'a', 'ccbab']


def tiny_model(mg, fused):
    mg.n_layer, mg.n_embd, mg.n_head, mg.block_size = 2, 8, 2, 8
    mg.speed_tricks = fused
    random.seed(11)
    tok = mg.Tokenizer(DOCS)
    assert tok.vocab_size == 4                      # a, b, c and BOS
    state = mg.init_params(tok.vocab_size)
    # larger weights than the default 0.08 so that every path carries a clearly non-zero gradient
    for p in mg.flatten(state):
        p.data *= 5
    return tok, state


def doc_loss(mg, state, tok, doc):
    losses = mg.doc_losses(state, tok.encode(doc))
    return (1 / len(losses)) * mg.add_all(losses)


@pytest.mark.parametrize('fused', [True, False])
def test_model_gradients_match_finite_differences(mg, fused):
    tok, state = tiny_model(mg, fused)
    doc = 'cabbac'
    loss = doc_loss(mg, state, tok, doc)
    loss.backward()
    rng = random.Random(2)
    checked = 0
    for name, mat in state.items():
        # wpe rows past the document's length are never used: their gradient must be exactly 0
        rows = range(len(doc) + 1) if name == 'wpe' else range(len(mat))
        # the atomic graph is ~10x slower to build; it is also tied to the fused one by the next test
        for _ in range(3 if fused else 1):
            p = mat[rng.choice(list(rows))][rng.randrange(len(mat[0]))]
            expected = numeric_grad(lambda: doc_loss(mg, state, tok, doc), p)
            assert p.grad == pytest.approx(expected, rel=1e-5, abs=1e-8), name
            checked += 1
    assert checked >= (30 if fused else 15) and len(state) == 3 + 6 * mg.n_layer
    unused = state['wpe'][len(doc) + 1]
    assert all(p.grad == 0 for p in unused)


def test_fused_and_atomic_graphs_give_the_same_loss_and_gradients(mg):
    results = {}
    for fused in (True, False):
        tok, state = tiny_model(mg, fused)
        loss = doc_loss(mg, state, tok, 'abcab')
        loss.backward()
        results[fused] = [loss.data] + [p.grad for p in mg.flatten(state)]
    assert len(results[True]) == len(results[False])
    for a, b in zip(results[True], results[False]):
        assert a == pytest.approx(b, rel=1e-9, abs=1e-9)


def test_fused_graph_is_much_smaller(mg):
    sizes = {}
    for fused in (True, False):
        tok, state = tiny_model(mg, fused)
        sizes[fused] = graph_size(doc_loss(mg, state, tok, 'abcab'))
    assert sizes[True][0] * 4 < sizes[False][0]


def test_eight_layers_and_a_64_token_context_on_long_lines(mg):
    mg.n_layer, mg.n_embd, mg.n_head, mg.block_size = 8, 8, 2, 64
    random.seed(1)
    docs = [''.join(random.choice('abcdefgh') for _ in range(n)) for n in (60, 70, 64)]
    tok = mg.Tokenizer(docs)
    state = mg.init_params(tok.vocab_size)
    losses = [loss for _, loss, _ in mg.train(state, mg.Adam(mg.flatten(state)), docs, tok, 2)]
    assert len(losses) == 2 and all(0 < x < 10 for x in losses)
    # 60 characters give 61 positions; longer lines are cut to the 64-token context
    assert [len(mg.doc_losses(state, tok.encode(doc))) for doc in docs] == [61, 64, 64]


def test_atomic_cross_entropy_survives_tiny_probabilities(mg):
    logits = [mg.Value(z) for z in (800.0, 0.0, -5.0)]
    results = {}
    for fused in (True, False):
        mg.speed_tricks = fused
        for v in logits:
            v.grad = 0.0
        loss = mg.cross_entropy(logits, 2)          # p_target = e^-805: underflows to 0 as a probability
        loss.backward()
        results[fused] = [loss.data] + [v.grad for v in logits]
    assert results[True] == pytest.approx([805.0, 1.0, 0.0, -1.0])
    assert results[False] == pytest.approx(results[True])


def dense_mlp(mg, x, w_fc1, w_fc2):
    """The MLP straight from the formula y = W2 · relu(W1 x), every hidden unit included."""
    return mg.linear([h.relu() for h in mg.linear(x, w_fc1)], w_fc2)


@pytest.mark.parametrize('fused', [True, False])
def test_mlp_that_skips_off_units_equals_the_dense_formula(mg, fused):
    mg.speed_tricks = fused
    results = []
    for mlp in (mg.mlp, lambda x, w1, w2: dense_mlp(mg, x, w1, w2)):
        rng = random.Random(5)
        x = [mg.Value(rng.gauss(0, 1)) for _ in range(6)]
        w_fc1 = [[mg.Value(rng.gauss(0, 1)) for _ in range(6)] for _ in range(24)]
        w_fc2 = [[mg.Value(rng.gauss(0, 1)) for _ in range(24)] for _ in range(6)]
        coeffs = [rng.gauss(0, 1) for _ in range(6)]
        y = mlp(x, w_fc1, w_fc2)
        loss = mg.add_all([yi * c for yi, c in zip(y, coeffs)])
        loss.backward()
        leaves = x + [p for row in w_fc1 + w_fc2 for p in row]
        results.append(([yi.data for yi in y], [p.grad for p in leaves], graph_size(loss)))
    (y_skip, g_skip, size_skip), (y_dense, g_dense, size_dense) = results
    n_on = sum(1 for row in w_fc1 if sum(w.data * xi.data for w, xi in zip(row, x)) > 0)
    assert 0 < n_on < 24                             # some units on, some off: the skipping is exercised
    # skipping a term that is exactly 0 changes no sum, so values and gradients are equal to the last bit
    assert y_skip == y_dense and g_skip == g_dense
    if fused:
        # ... while each off unit takes its W2 column out of the graph: 6 weights + 6 inputs, 12 edges
        assert size_dense[1] - size_skip[1] >= 12 * (24 - n_on)
    else:
        assert size_dense == size_skip               # speed_tricks=False: the MLP is the textbook formula


@pytest.mark.parametrize('fused', [True, False])
def test_mlp_with_every_unit_off_gives_zeros(mg, fused):
    mg.speed_tricks = fused
    x = [mg.Value(1.0), mg.Value(2.0)]
    w_fc1 = [[mg.Value(-1.0), mg.Value(-0.5)] for _ in range(8)]      # every pre-activation is negative
    w_fc2 = [[mg.Value(0.3)] * 8 for _ in range(2)]
    y = mg.mlp(x, w_fc1, w_fc2)
    assert [yi.data for yi in y] == [0.0, 0.0]
    mg.add_all([y[0] + x[0], y[1]]).backward()
    assert x[0].grad == 1.0 and x[1].grad == 0.0 and w_fc1[0][0].grad == 0.0
