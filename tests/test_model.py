"""第 4–5 节：模型里每个函数算出的值，整个模型的梯度和有限差分对照，很深的图。
各个函数都按课本写法（speed_tricks=False）检查；快的双胞胎和它们逐个对照在 test_speed.py，交叉熵和每个名字的损失在 test_training.py。"""
import math
import random
import sys

import pytest

from conftest import check_grads as check, mean_doc_loss, numeric_grad, tiny_model, values


@pytest.fixture
def textbook(mg):
    mg.speed_tricks = False
    return mg


# ---- 第 5 节的每个函数：值对照手算，梯度对照有限差分（课本写法）----
def test_dot_and_linear_values(textbook):
    """dot 是对应位置乘积之和，linear 的第 i 个输出是 W 第 i 行与 x 的点积：抓求和漏了一项、乘错了位置、行列弄反的错误。"""
    mg = textbook
    assert mg.dot(values(mg, [1.0, 2.0, 3.0]), values(mg, [4.0, -5.0, 0.5])).data == 4.0 - 10.0 + 1.5
    w = [values(mg, row) for row in ([1.0, 2.0], [0.0, -1.0], [3.0, 0.5])]      # 3 × 2
    assert [y.data for y in mg.linear(values(mg, [10.0, 100.0]), w)] == [210.0, -100.0, 80.0]


def test_softmax_values(textbook):
    """softmax 的值是 e^z_i / Σ e^z_j，和为 1；分数上千（温度 0.001 时很常见）也不溢出：抓不减最大值、分母少加一项的错误。"""
    mg = textbook
    probs = [p.data for p in mg.softmax(values(mg, [1.0, 2.0, 3.0]))]
    exps = [math.exp(z) for z in (1.0, 2.0, 3.0)]
    assert probs == pytest.approx([e / sum(exps) for e in exps], rel=1e-15)
    assert [p.data for p in mg.softmax(values(mg, [1000.0, 0.0, -1000.0]))] == [1.0, 0.0, 0.0]


def test_rmsnorm_values(textbook):
    """rmsnorm 把 x 除以 sqrt(mean(x²) + 1e-5)：抓忘了除以长度、乘以而不是除以 sqrt、漏了 1e-5 的错误。"""
    mg = textbook
    x = [3.0, -4.0, 0.0, 1.0]
    scale = (sum(xi * xi for xi in x) / 4 + 1e-5) ** -0.5
    assert [y.data for y in mg.rmsnorm(values(mg, x))] == pytest.approx([xi * scale for xi in x], rel=1e-15)
    # 全是 0 的向量：1e-5 让它不除以 0，输出仍是 0
    assert [y.data for y in mg.rmsnorm(values(mg, [0.0, 0.0]))] == [0.0, 0.0]
    # 很小的向量看得出 1e-5：均方是 1e-6，缩放是 1/sqrt(1.1e-5)，而不是 1/sqrt(1e-6) = 1000
    assert mg.rmsnorm(values(mg, [1e-3, -1e-3]))[0].data == pytest.approx(1e-3 / math.sqrt(1.1e-5), rel=1e-12)


def test_mlp_values(textbook):
    """mlp 是 W2 · relu(W1 x)：关着的单元（W1 x 为负）输出 0，不参与 W2 的乘法。抓漏了 relu、用错矩阵的错误。"""
    mg = textbook
    x = values(mg, [1.0, 2.0])
    w_fc1 = [values(mg, row) for row in ([1.0, 1.0], [-1.0, 0.0], [0.5, -1.0], [0.0, 2.0])]   # W1 x = 3, -1, -1.5, 4
    w_fc2 = [values(mg, [1.0, 10.0, 100.0, 0.5]), values(mg, [-1.0, 1.0, 1.0, 1.0])]
    assert [y.data for y in mg.mlp(x, w_fc1, w_fc2)] == [3.0 + 0.5 * 4.0, -3.0 + 4.0]


@pytest.mark.parametrize('speed_tricks', [False, True])
def test_mlp_with_every_unit_off_gives_zeros(mg, speed_tricks):
    """所有单元都关着时 mlp 输出全是 0，经过 MLP 的梯度也全是 0（x[0] 的梯度 1 只来自旁边那条 + x[0] 的路）：
    抓 relu 没把负数截成 0，以及“一个亮着的单元都没有”时建图出错的错误。"""
    mg.speed_tricks = speed_tricks
    x = values(mg, [1.0, 2.0])
    w_fc1 = [values(mg, [-1.0, -0.5]) for _ in range(8)]      # 每个进 relu 之前的值都是负数
    w_fc2 = [[mg.Value(0.3)] * 8 for _ in range(2)]
    y = mg.mlp(x, w_fc1, w_fc2)
    assert [yi.data for yi in y] == [0.0, 0.0]
    (y[0] + x[0] + y[1]).backward()
    assert x[0].grad == 1.0 and x[1].grad == 0.0 and w_fc1[0][0].grad == 0.0


def test_function_gradients_match_finite_differences(textbook):
    """dot（包括 rmsnorm 里那样一个列表点乘它自己）、linear、softmax、rmsnorm、mlp 的梯度都要和有限差分吻合：
    抓组合出来的函数里链式法则用错的错误，例如 softmax 的分母只对一个 e_i 求了导。"""
    mg = textbook
    rng = random.Random(3)
    a = values(mg, [rng.gauss(0, 1) for _ in range(6)])
    b = values(mg, [rng.gauss(0, 1) for _ in range(6)])
    w = [values(mg, [rng.gauss(0, 1) for _ in range(6)]) for _ in range(24)]
    w2 = [values(mg, [rng.gauss(0, 1) for _ in range(24)]) for _ in range(6)]
    coeffs = [rng.gauss(0, 1) for _ in range(24)]

    def weighted(ys):                        # 各输出乘以不同的系数再相加：每个输出的梯度都不同
        return sum(y * c for y, c in zip(ys, coeffs))
    check(lambda: mg.dot(a, b), a + b)
    check(lambda: mg.dot(a, a), a)
    check(lambda: weighted(mg.linear(a, w[:5])), a + w[0] + w[4])
    check(lambda: weighted(mg.softmax(a)), a)
    check(lambda: weighted(mg.rmsnorm(a)), a)
    check(lambda: weighted(mg.mlp(a, w, w2)), a + w[0] + w[7] + w2[0])


# ---- 整个模型 ----
@pytest.mark.parametrize('speed_tricks', [False, True])
def test_model_gradients_match_finite_differences(mg, speed_tricks):
    """小模型（2 层、2 个头）对一个名字的平均损失：每个矩阵抽几个参数，梯度都要和有限差分吻合，用不到的 wpe 行梯度正好是 0。
    抓藏在模型深处的梯度错误，例如注意力的加权平均用错了 v、融合线性层的局部导数没交叉。"""
    mg.speed_tricks = speed_tricks
    tok, state = tiny_model(mg)
    doc = 'cabbac'
    loss = mean_doc_loss(mg, state, tok, doc)
    loss.backward()
    rng = random.Random(2)
    checked = 0
    for name, mat in state.items():
        # wpe 里超出名字长度的行从没用到：它们的梯度必须正好是 0
        rows = range(len(doc) + 1) if name == 'wpe' else range(len(mat))
        for _ in range(2):
            p = mat[rng.choice(list(rows))][rng.randrange(len(mat[0]))]
            expected = numeric_grad(lambda: mean_doc_loss(mg, state, tok, doc), p)
            assert p.grad == pytest.approx(expected, rel=1e-5, abs=1e-8), name
            checked += 1
    assert checked == 2 * len(state) and len(state) == 3 + 6 * mg.n_layer
    assert all(p.grad == 0 for p in state['wpe'][len(doc) + 1])


def graph_depth(loss):
    """从 loss 到最远的叶子要走几条边（最长路径）：课本写法的递归拓扑排序最多要递归这么多层。"""
    order, seen, stack = [], set(), [(loss, False)]
    while stack:
        node, children_done = stack.pop()
        if children_done:
            order.append(node)                       # 孩子都在它前面
        elif id(node) not in seen:
            seen.add(id(node))
            stack.append((node, True))
            stack.extend((child, False) for child in node._children)
    depth = {}
    for node in order:
        depth[id(node)] = max((depth[id(child)] + 1 for child in node._children), default=0)
    return depth[id(loss)]


def test_textbook_graph_deeper_than_the_recursion_limit(textbook):
    """48 层、很窄的模型，课本写法建的图约 2500 层深（比 Python 默认的递归上限 1000 深得多）：反向传播照样完成，
    最深处（第一层和嵌入）的梯度和有限差分吻合。抓用递归做拓扑排序（RecursionError）、深图里梯度传丢的错误。"""
    mg = textbook
    tok, state = tiny_model(mg, n_layer=48, n_embd=2, n_head=1, block_size=4)
    doc = 'abc'
    loss = mean_doc_loss(mg, state, tok, doc)
    assert graph_depth(loss) > max(2000, 2 * sys.getrecursionlimit())
    loss.backward()
    for p in (state['wte'][0][0], state['layer0.attn_wq'][1][0], state['layer0.mlp_fc1'][3][1]):
        assert abs(p.grad) > 1e-4
        assert p.grad == pytest.approx(numeric_grad(lambda: mean_doc_loss(mg, state, tok, doc), p), rel=1e-5)
