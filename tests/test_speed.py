"""第 8 节 提速：每个快的双胞胎和它代替的课本写法（speed_tricks=False）算出的值和梯度都要相同，
第 3–7 节的函数在 speed_tricks=True 时真的把活交给了它，而且它真的让图变小了。
相同的意思：逐位相同 (==)；只有求和的顺序不同时（交叉熵的梯度，evaluate；Python 3.12 起还有融合节点里的 sum()）允许差 1e-12。"""
import random
import sys

import pytest

from conftest import TINY_DOCS, graph_size, mean_doc_loss, tiny_model


def close(xs, ys):
    """逐个相差不超过 1e-12（相对于 1 和数本身中较大的那个）。"""
    assert len(xs) == len(ys)
    for x, y in zip(xs, ys):
        assert abs(x - y) <= 1e-12 * max(1.0, abs(x), abs(y)), (x, y)
    return True


# Python 3.12 起，内置的 sum() 把一串小数做补偿求和（更精确）：融合节点里的 sum(map(...)) 和课本写法一个一个地
# 相加，最后一位可能不同。更早的版本上两者逐位相同，所以那里仍然要求 ==。
EXACT_SUMS = sys.version_info < (3, 12)


def same(xs, ys):
    """逐位相同；Python 3.12 起只要求相差不到 1e-12（见上面）。"""
    return xs == ys if EXACT_SUMS else close(xs, ys)


def vec(mg, rng, n, scale=1.0):
    return [mg.Value(rng.gauss(0, scale)) for _ in range(n)]


def textbook_and_fast(mg, build, seed=5):
    """同样的输入（同一个种子）建两遍：一遍 build(mg, rng, textbook=True) 用课本函数，一遍用快的双胞胎。
    build 返回 (叶子, 输出列表)；每个输出乘以不同的系数再相加，两遍都用课本的 backward 反向传播（fast_backward
    另有测试），所以比较的只是双胞胎本身。返回两组 (输出的值, 叶子的梯度)。"""
    results = []
    for textbook in (True, False):
        mg.speed_tricks = False
        rng = random.Random(seed)
        leaves, outs = build(mg, rng, textbook)
        coeffs = [rng.gauss(0, 1) for _ in outs]
        sum(out * c for out, c in zip(outs, coeffs)).backward()
        results.append(([out.data for out in outs], [leaf.grad for leaf in leaves]))
    return results


def test_fast_dot_equals_dot(mg):
    """fast_dot 和课本的 dot（n 个乘法节点加 n 个加法节点）值和梯度逐位相同，包括一个列表点乘它自己（rmsnorm 里那样）：
    抓融合点积的局部导数没交叉（∂s/∂a_i 写成 a_i）、自己点乘自己时只算了一半梯度的错误。"""
    def build(mg, rng, textbook):
        a, b = vec(mg, rng, 7), vec(mg, rng, 7)
        dot = mg.dot if textbook else mg.fast_dot
        return a + b, [dot(a, b), dot(a, a), dot(b[:1], a[:1])]
    (v1, g1), (v2, g2) = textbook_and_fast(mg, build)
    assert same(v1, v2) and same(g1, g2)


def test_fast_linear_equals_linear(mg):
    """fast_linear 和课本的 linear（每行一个课本点积）值和梯度逐位相同：抓融合线性层的局部导数没交叉、行列弄反的错误。"""
    def build(mg, rng, textbook):
        x, w = vec(mg, rng, 5), [vec(mg, rng, 5) for _ in range(6)]
        return x + [p for row in w for p in row], (mg.linear if textbook else mg.fast_linear)(x, w)
    (v1, g1), (v2, g2) = textbook_and_fast(mg, build)
    assert same(v1, v2) and same(g1, g2)


def test_float_cross_entropy_is_the_textbook_cross_entropy(mg):
    """float_cross_entropy（全用普通小数，fast_doc_loss 和 fast_evaluate 都用它）和课本的 cross_entropy：值逐位相同，
    它给的 ∂L/∂z 和课本反向传播得到的梯度差不到 1e-12，目标的概率下溢成 0 时也一样：抓梯度忘了减 one-hot、
    值忘了把 max 加回来的错误。"""
    for scale in (3.0, 400.0):
        rng = random.Random(5)
        z = vec(mg, rng, 6, scale)
        for target in range(6):
            for leaf in z:
                leaf.grad = 0.0
            mg.speed_tricks = False
            loss = mg.cross_entropy(z, target)
            loss.backward()
            value, local = mg.float_cross_entropy([x.data for x in z], target)
            assert value == loss.data and close(local, [x.grad for x in z])


BIG_DOCS = ['abcdefghij', 'klmnopqrst', 'uvwxyzABCD', 'EFGHIJKLMN', 'OPQRSTUVWX', 'YZ0123456789abc', 'mk', 'q']   # 词表比 n_embd 大得多


def big_model(mg, n_layer=1):
    """63 个 token（62 个字符加 BOS）、n_embd=4 的模型：输出层是图里最大的一块（像成语的 4,847 个 token）。"""
    return tiny_model(mg, n_layer=n_layer, n_embd=4, n_head=2, block_size=8, docs=BIG_DOCS)


@pytest.mark.parametrize('make_model, doc', [(tiny_model, 'cabbac'), (tiny_model, 'a'), (big_model, 'abcdefghij'),
                                             (big_model, 'YZ0123456789abc'), (lambda mg: big_model(mg, n_layer=2), 'mkq')],
                         ids=['tiny', 'one_position', 'big_vocabulary', 'longer_than_block_size', 'two_layers'])
def test_fast_doc_loss_equals_doc_loss(mg, make_model, doc):
    """fast_doc_loss（整个名字的输出层 + 交叉熵一个节点）和课本的 doc_loss（每个位置 vocab_size 个 logits 节点、一个交叉熵
    节点，再求平均）：损失逐位相同，每个参数（lm_head，以及经过 x 传回去的 wte、wpe 和各层）的梯度差不到 1e-12。
    抓 ∂S/∂W 的行列弄反、忘了对位置求和、∂S/∂x 漏了、孩子和局部导数对不上、长名字没截断、平均时除错了数的错误。"""
    results = []
    for fast in (False, True):
        mg.speed_tricks = False
        tok, state = make_model(mg)
        loss = (mg.fast_doc_loss if fast else mg.doc_loss)(state, tok.encode(doc))
        loss.backward()
        results.append((loss.data, [p.grad for p in mg.flatten(state)]))
    (loss1, grads1), (loss2, grads2) = results
    assert same([loss2], [loss1]) and close(grads2, grads1) and any(grads2)


def test_without_head_hands_back_the_final_vector(mg):
    """把 lm_head 换成单位矩阵后，gpt() 交出的就是最后的向量 x：再乘以真的 lm_head，和 gpt() 给的 logits 逐位相同，
    KV 缓存也一样。抓单位矩阵写错（行列不对、不是 1.0）而让 x 变了的错误。"""
    mg.speed_tricks = True
    tok, state = big_model(mg, n_layer=2)
    tokens, results = tok.encode('mkq'), []
    for body in (state, mg.without_head(state)):
        keys, values = [[] for _ in range(mg.n_layer)], [[] for _ in range(mg.n_layer)]
        outs = [mg.gpt(body, tokens[pos], pos, keys, values) for pos in range(len(tokens) - 1)]
        outs = outs if body is state else [mg.linear(x, state['lm_head']) for x in outs]
        results.append(([[z.data for z in out] for out in outs], [[v.data for vec in layer for v in vec] for layer in keys + values]))
    assert results[0] == results[1]


def test_fast_doc_loss_makes_one_node_for_the_output_layer(mg):
    """融合节点的孩子正好是 lm_head 的每个参数一次、每个位置的 x 一次；图里少了几乎全部 logits 节点和它们的边：
    抓融合节点没有真正省下节点（数照样对，只是慢）、把 W 的边按位置重复了的错误。"""
    mg.speed_tricks = True
    tok, state = big_model(mg)
    tokens = tok.encode('abcdefghij')
    n = min(mg.block_size, len(tokens) - 1)
    loss = mg.fast_doc_loss(state, tokens)
    (fused,) = loss._children
    assert len(fused._children) == tok.vocab_size * mg.n_embd + n * mg.n_embd
    assert {id(c) for c in fused._children} >= {id(p) for row in state['lm_head'] for p in row}
    losses = mg.doc_losses(state, tokens)
    (nodes_fused, edges_fused), (nodes_old, edges_old) = graph_size(loss), graph_size((1 / len(losses)) * sum(losses))
    assert nodes_old - nodes_fused >= n * tok.vocab_size and edges_old - edges_fused >= n * tok.vocab_size * mg.n_embd


def test_fast_evaluate_builds_no_output_layer_nodes(mg, monkeypatch):
    """fast_evaluate 的输出层用普通小数算：lm_head 从来不被送进 fast_linear，也不调用 cross_entropy；结果和课本的 evaluate
    差不到 1e-12（大词表、有相同开头和比上下文长的名字）。"""
    tok, state = big_model(mg)
    docs = BIG_DOCS + ['abcdefghiz', 'abc', 'mk']
    mg.speed_tricks = False
    textbook = mg.evaluate(state, docs, tok)
    seen, real_linear = [], mg.fast_linear
    monkeypatch.setattr(mg, 'fast_linear', lambda x, w: seen.append(w is state['lm_head']) or real_linear(x, w))
    monkeypatch.setattr(mg, 'cross_entropy', lambda *args: pytest.fail('evaluate 不该再建交叉熵节点'))
    mg.speed_tricks = True
    fast = mg.evaluate(state, docs, tok)
    assert seen and not any(seen) and close([fast], [textbook])


def test_training_with_and_without_tricks_gives_the_same_losses(mg):
    """大词表的小模型训练 6 步（doc_loss → backward → Adam）：speed_tricks 开和关，第 1 步的损失逐位相同，之后差不到 1e-12：
    抓只有连起来训练时才露出来的错误（例如梯度没传到 x 之前的参数，几步之后损失才分开）。"""
    runs = []
    for speed_tricks in (True, False):
        mg.speed_tricks = speed_tricks
        tok, state = big_model(mg)
        runs.append([loss for _, loss, _ in mg.train(state, mg.Adam(mg.flatten(state)), BIG_DOCS + TINY_DOCS, tok, 6)])
    assert same(runs[0][:1], runs[1][:1]) and close(runs[0], runs[1])


def test_fast_mlp_equals_mlp_and_leaves_out_the_off_units(mg):
    """fast_mlp 和课本的 mlp 值和梯度逐位相同；和“全部单元都送进 W2 的融合 MLP”相比，每个输出正好少了关着的单元的那些边。
    抓挑错单元的错误：漏了亮着的单元（数变了），或把值为 0 的单元也送进 W2（数不变，图没变小）。"""
    def build(mg, rng, textbook):
        x = vec(mg, rng, 6)
        w_fc1, w_fc2 = [vec(mg, rng, 6) for _ in range(24)], [vec(mg, rng, 24) for _ in range(6)]
        return x + [p for row in w_fc1 + w_fc2 for p in row], (mg.mlp if textbook else mg.fast_mlp)(x, w_fc1, w_fc2)
    (v1, g1), (v2, g2) = textbook_and_fast(mg, build)
    assert same(v1, v2) and same(g1, g2)

    rng = random.Random(5)
    x = vec(mg, rng, 6)
    w_fc1, w_fc2 = [vec(mg, rng, 6) for _ in range(24)], [vec(mg, rng, 24) for _ in range(6)]
    n_on = sum(1 for row in w_fc1 if sum(w.data * xi.data for w, xi in zip(row, x)) > 0)
    assert 0 < n_on < 24                               # 有的单元亮着、有的关着：跳过的逻辑真的用上了
    sparse = mg.fast_mlp(x, w_fc1, w_fc2)
    dense = mg.fast_linear([h.relu() for h in mg.fast_linear(x, w_fc1)], w_fc2)
    assert [y.data for y in sparse] == [y.data for y in dense]
    # 每个输出节点的孩子：亮着的 n_on 个单元和 W2 里对应的 n_on 个权重（融合 MLP 是全部 24 + 24 个）
    assert [len(y._children) for y in sparse] == [2 * n_on] * 6
    assert sum(graph_size(y)[1] for y in sparse) <= sum(graph_size(y)[1] for y in dense) - 6 * 2 * (24 - n_on)


def test_fast_mlp_blocks_the_gradient_of_a_unit_that_is_exactly_zero(mg):
    """ReLU 在 0 处的导数是 0（课本的 relu：a > 0 时才是 1）：预激活正好是 0 的单元，梯度不能穿过它流回 W1 和 x。
    抓 fast_mlp 把“亮着”的条件写成 >= 0 或 != 0 的错误（值不变，梯度却漏了过去）。"""
    grads = []
    for textbook in (True, False):
        mg.speed_tricks = False
        x = [mg.Value(1.0), mg.Value(1.0)]
        w_fc1 = [[mg.Value(1.0), mg.Value(-1.0)], [mg.Value(0.5), mg.Value(0.25)], [mg.Value(-1.0), mg.Value(-2.0)]]
        w_fc2 = [[mg.Value(2.0), mg.Value(3.0), mg.Value(5.0)]]
        assert [sum(w.data * xi.data for w, xi in zip(row, x)) for row in w_fc1] == [0.0, 0.75, -3.0]   # 正好 0、亮、关
        out = (mg.mlp if textbook else mg.fast_mlp)(x, w_fc1, w_fc2)
        sum(out).backward()
        grads.append([p.grad for p in x + [w for row in w_fc1 + w_fc2 for w in row]])
    assert grads[0] == grads[1]
    assert grads[1][2:4] == [0.0, 0.0]                  # 正好是 0 的单元：W1 第一行没有梯度


def test_fast_evaluate_equals_evaluate(mg):
    """fast_evaluate（排序后沿用相邻名字相同开头的位置）和一个一个名字算的课本 evaluate 相差不到 1e-12，
    有重复的名字、一个是另一个的开头、比上下文还长的名字也一样：抓沿用时多留或少留一个 KV 缓存位置、长名字没截断的错误。"""
    mg.n_embd, mg.n_head, mg.n_layer, mg.block_size = 4, 2, 2, 8
    random.seed(5)
    docs = ['mara', 'maria', 'mark', 'mar', 'mar', 'b', 'abcdefghijkl', 'abcdefghijkm', 'zoe', 'maria', 'ma']
    tok = mg.Tokenizer(docs)
    state = mg.init_params(tok.vocab_size)
    mg.speed_tricks = False
    textbook = mg.evaluate(state, docs, tok)
    state_before = [p.data for p in mg.flatten(state)]
    assert close([mg.fast_evaluate(state, docs, tok)], [textbook])
    assert [p.data for p in mg.flatten(state)] == state_before


def test_fast_backward_equals_backward(mg):
    """同一张图（小模型的一个名字，课本写法建的，也试融合节点建的）：fast_backward 给每个节点（参数和中间节点）的梯度
    和课本的 backward 逐位相同，叶子上原有的梯度照样累加：抓 += 写成 =、访问标记没清掉（grad 留成 None）、
    漏了叶子或中间节点的错误。"""
    for build_with_tricks in (False, True):
        grads = []
        for backward in ('textbook', 'fast'):
            mg.speed_tricks = build_with_tricks
            tok, state = tiny_model(mg)
            params = mg.flatten(state)
            params[0].grad = 0.25                      # 叶子上已有的梯度要被累加，而不是被覆盖
            loss = mean_doc_loss(mg, state, tok, 'cabbac')
            if backward == 'fast':
                mg.fast_backward(loss)
            else:
                mg.speed_tricks = False
                loss.backward()
            nodes, seen, stack = [], set(), [loss]     # 图里的每个节点，按同样的顺序
            while stack:
                node = stack.pop()
                if id(node) not in seen:
                    seen.add(id(node))
                    nodes.append(node)
                    stack.extend(node._children)
            grads.append([node.grad for node in nodes])
        assert grads[0] == grads[1] and len(grads[0]) > 1000


def test_fast_adam_step_equals_adam_step(mg):
    """fast_adam_step 和课本的 Adam.step 走几步之后参数、m、v、t 逐位相同（学习率每步不同，梯度有正有负有 0），
    每步之后 grad 都清零：抓偏差修正、β 用错、v 没平方、没开方、grad 没清零这类只写错在一边的错误。"""
    mg.beta1, mg.beta2, mg.eps_adam = 0.85, 0.99, 1e-8
    runs = []
    for textbook in (True, False):
        rng = random.Random(9)
        params = [mg.Value(rng.gauss(0, 1)) for _ in range(20)]
        opt = mg.Adam(params)
        for step in range(5):
            for i, p in enumerate(params):
                p.grad = 0.0 if i == step else rng.gauss(0, 1)
            lr = 0.01 * (1 - step / 5)
            if textbook:
                mg.speed_tricks = False
                opt.step(lr)
            else:
                mg.fast_adam_step(opt, lr)
            assert all(p.grad == 0.0 for p in params)
        runs.append(([p.data for p in params], opt.m, opt.v, opt.t))
    assert runs[0] == runs[1] and runs[0][3] == 5


@pytest.mark.parametrize('speed_tricks, implementation, disabled', [
    (True, 'CPython', True), (True, 'PyPy', False), (False, 'CPython', False), (False, 'PyPy', False)])
def test_start_speed_tricks_disables_gc_only_with_tricks_on_cpython(mg, monkeypatch, speed_tricks, implementation,
                                                                   disabled):
    """start_speed_tricks 只在 speed_tricks=True 而且是 CPython 时关掉垃圾回收器：抓在 PyPy 上也关（内存涨到几 GB）、
    课本写法 (speed_tricks=False) 也关的错误。"""
    calls = []
    monkeypatch.setattr(mg.gc, 'disable', lambda: calls.append('disable'))
    monkeypatch.setattr(mg.platform, 'python_implementation', lambda: implementation)
    mg.speed_tricks = speed_tricks
    mg.start_speed_tricks()
    assert calls == (['disable'] if disabled else [])


def call_lesson_function(mg, name):
    """用很小的输入调用第 3–7 节里会把活交给双胞胎的那个函数。"""
    x = [mg.Value(1.0), mg.Value(-2.0)]
    w = [[mg.Value(0.5), mg.Value(0.25)]] * 8
    if name == 'fast_dot':
        mg.dot(x, x)
    elif name == 'fast_linear':
        mg.linear(x, w)
    elif name == 'fast_doc_loss':
        tok, state = tiny_model(mg)
        mg.doc_loss(state, tok.encode('abcab'))
    elif name == 'fast_mlp':
        mg.mlp(x, w, [[mg.Value(1.0)] * 8] * 2)
    elif name == 'fast_evaluate':
        tok, state = tiny_model(mg)
        mg.evaluate(state, TINY_DOCS, tok)
    elif name == 'fast_backward':
        (x[0] * x[1]).backward()
    elif name == 'fast_adam_step':
        mg.Adam(x).step(0.01)


TWINS = ['fast_dot', 'fast_linear', 'fast_doc_loss', 'fast_mlp', 'fast_evaluate',
         'fast_backward', 'fast_adam_step']


@pytest.mark.parametrize('twin', TWINS)
def test_lesson_functions_hand_over_to_their_twins_only_with_tricks_on(mg, monkeypatch, twin):
    """speed_tricks=True 时课本函数把活交给快的双胞胎，False 时不交：抓双胞胎写好了却没接上的错误
    （数照样对，别的测试看不出来，只是慢），以及 speed_tricks=False 时仍走了提速写法的错误。"""
    for speed_tricks in (True, False):
        calls = []
        real = getattr(mg, twin)
        monkeypatch.setattr(mg, twin, lambda *args, real=real: calls.append(twin) or real(*args))
        mg.speed_tricks = speed_tricks
        call_lesson_function(mg, twin)
        assert bool(calls) == speed_tricks, (twin, speed_tricks)
        monkeypatch.undo()


def test_whole_model_same_loss_and_gradients_with_and_without_tricks(mg):
    """同一个小模型对一个名字的平均损失，speed_tricks 开和关（全部双胞胎一起）：损失和每个参数的梯度都相同（相差不到 1e-12）：
    抓只有在模型里几个双胞胎连起来用时才露出来的错误，例如融合节点的孩子顺序和局部导数的顺序对不上。"""
    results = []
    for speed_tricks in (True, False):
        mg.speed_tricks = speed_tricks
        tok, state = tiny_model(mg)
        loss = mean_doc_loss(mg, state, tok, 'abcab')
        loss.backward()
        results.append([loss.data] + [p.grad for p in mg.flatten(state)])
    assert close(results[0], results[1])


def test_tricks_make_the_graph_much_smaller(mg):
    """speed_tricks=True 建出的图，节点数不到课本写法的五分之一、边数不到一半：
    抓双胞胎没真正省下节点的错误（数照样对，别的测试看不出来，只是慢）。"""
    sizes = []
    for speed_tricks in (True, False):
        mg.speed_tricks = speed_tricks
        tok, state = tiny_model(mg, n_embd=8)
        sizes.append(graph_size(mean_doc_loss(mg, state, tok, 'abcab')))
    (nodes_fast, edges_fast), (nodes_textbook, edges_textbook) = sizes
    assert nodes_fast * 5 < nodes_textbook and edges_fast * 2 < edges_textbook
