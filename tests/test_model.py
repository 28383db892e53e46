"""整个模型：损失的梯度和有限差分对照，融合节点和基本运算对照，以及很深、很长的设置。"""
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
    assert tok.vocab_size == 4                      # a、b、c 和 BOS
    state = mg.init_params(tok.vocab_size)
    # 权重比默认的 0.08 大，每条路径上的梯度都明显不是 0
    for p in mg.flatten(state):
        p.data *= 5
    return tok, state


def doc_loss(mg, state, tok, doc):
    losses = mg.doc_losses(state, tok.encode(doc))
    return (1 / len(losses)) * mg.add_all(losses)


@pytest.mark.parametrize('fused', [True, False])
def test_model_gradients_match_finite_differences(mg, fused):
    """小模型（2 层、2 个头）对一个名字的平均损失：每个矩阵抽几个参数，梯度都要和有限差分吻合，用不到的 wpe 行梯度正好是 0。
    抓藏在模型深处的梯度错误，例如融合线性层的局部导数没交叉。"""
    tok, state = tiny_model(mg, fused)
    doc = 'cabbac'
    loss = doc_loss(mg, state, tok, doc)
    loss.backward()
    rng = random.Random(2)
    checked = 0
    for name, mat in state.items():
        # wpe 里超出名字长度的行从没用到：它们的梯度必须正好是 0
        rows = range(len(doc) + 1) if name == 'wpe' else range(len(mat))
        # 基本运算的图建起来慢约 10 倍；它和融合节点的图是否一致，由下一个测试来对照
        for _ in range(3 if fused else 1):
            p = mat[rng.choice(list(rows))][rng.randrange(len(mat[0]))]
            expected = numeric_grad(lambda: doc_loss(mg, state, tok, doc), p)
            assert p.grad == pytest.approx(expected, rel=1e-5, abs=1e-8), name
            checked += 1
    assert checked >= (30 if fused else 15) and len(state) == 3 + 6 * mg.n_layer
    unused = state['wpe'][len(doc) + 1]
    assert all(p.grad == 0 for p in unused)


def test_fused_and_atomic_graphs_give_the_same_loss_and_gradients(mg):
    """同一个小模型用融合节点和用基本运算建图，损失和每个参数的梯度都要相同：
    抓只有一条路写错的错误，例如基本运算版的求和漏了第一项。"""
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
    """融合节点建出的图，节点数不到基本运算版的四分之一：抓融合节点没真正用上的错误（数照样对，别的测试看不出来，只是慢）。"""
    sizes = {}
    for fused in (True, False):
        tok, state = tiny_model(mg, fused)
        sizes[fused] = graph_size(doc_loss(mg, state, tok, 'abcab'))
    assert sizes[True][0] * 4 < sizes[False][0]


def test_eight_layers_and_a_64_token_context_on_long_lines(mg):
    """8 层、上下文 64 的模型在 60～70 个字符的长名字上训练两步：损失是正常的数，长名字只用前 64 个位置。
    抓长名字没截到 block_size（位置超出 wpe 的行数而报错）这类只在长名字上出现的错误。"""
    mg.n_layer, mg.n_embd, mg.n_head, mg.block_size = 8, 8, 2, 64
    random.seed(1)
    docs = [''.join(random.choice('abcdefgh') for _ in range(n)) for n in (60, 70, 64)]
    tok = mg.Tokenizer(docs)
    state = mg.init_params(tok.vocab_size)
    losses = [loss for _, loss, _ in mg.train(state, mg.Adam(mg.flatten(state)), docs, tok, 2)]
    assert len(losses) == 2 and all(0 < x < 10 for x in losses)
    # 60 个字符有 61 个位置；更长的行截到 64 个 token 的上下文
    assert [len(mg.doc_losses(state, tok.encode(doc))) for doc in docs] == [61, 64, 64]


def test_atomic_cross_entropy_survives_tiny_probabilities(mg):
    """目标的概率小到 e^-805（当作浮点数会下溢成 0）时，两种交叉熵都要给出损失 805 和正确的梯度：
    抓基本运算版先算 softmax 再取 -ln p 的写法（ln 0 会出错），以及忘了把最大值加回来的错误。"""
    logits = [mg.Value(z) for z in (800.0, 0.0, -5.0)]
    results = {}
    for fused in (True, False):
        mg.speed_tricks = fused
        for v in logits:
            v.grad = 0.0
        loss = mg.cross_entropy(logits, 2)          # p_target = e^-805：当作概率会下溢成 0
        loss.backward()
        results[fused] = [loss.data] + [v.grad for v in logits]
    assert results[True] == pytest.approx([805.0, 1.0, 0.0, -1.0])
    assert results[False] == pytest.approx(results[True])


def dense_mlp(mg, x, w_fc1, w_fc2):
    """直接照公式 y = W2 · relu(W1 x) 写的 MLP，每个隐藏单元都算进去。"""
    return mg.linear([h.relu() for h in mg.linear(x, w_fc1)], w_fc2)


@pytest.mark.parametrize('fused', [True, False])
def test_mlp_that_skips_off_units_equals_the_dense_formula(mg, fused):
    """跳过关着的单元的 mlp，输出和梯度与照公式全算的 MLP 逐位相同；speed_tricks=True 时图里少了那些列的边，False 时图一样大。
    抓提速技巧挑错单元的错误：漏了亮着的单元（数变了），或把值为 0 的单元也送进 W2（图没变小）。"""
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
    assert 0 < n_on < 24                             # 有的单元亮着、有的关着：跳过的逻辑真的用上了
    # 跳过正好为 0 的项不改变任何和，所以值和梯度逐位相同
    assert y_skip == y_dense and g_skip == g_dense
    if fused:
        # ……而每个关着的单元把它在 W2 里的那一列拿出图：6 个权重 + 6 个输入，12 条边
        assert size_dense[1] - size_skip[1] >= 12 * (24 - n_on)
    else:
        assert size_dense == size_skip               # speed_tricks=False：MLP 就是课本公式


@pytest.mark.parametrize('fused', [True, False])
def test_mlp_with_every_unit_off_gives_zeros(mg, fused):
    """所有单元都关着时 mlp 输出全是 0，经过 MLP 的梯度也全是 0（x[0] 的梯度 1 只来自旁边那条 + x[0] 的路）：
    抓 relu 没把负数截成 0，以及“一个亮着的单元都没有”时建图出错的错误。"""
    mg.speed_tricks = fused
    x = [mg.Value(1.0), mg.Value(2.0)]
    w_fc1 = [[mg.Value(-1.0), mg.Value(-0.5)] for _ in range(8)]      # 每个进 relu 之前的值都是负数
    w_fc2 = [[mg.Value(0.3)] * 8 for _ in range(2)]
    y = mg.mlp(x, w_fc1, w_fc2)
    assert [yi.data for yi in y] == [0.0, 0.0]
    mg.add_all([y[0] + x[0], y[1]]).backward()
    assert x[0].grad == 1.0 and x[1].grad == 0.0 and w_fc1[0][0].grad == 0.0
