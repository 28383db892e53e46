"""自动求导：每个运算的前向值，以及梯度和 float64 中心差分的对照。"""
import math
import random

import pytest

H = 1e-6


def numeric_grad(f, leaf):
    """对一个叶子求中心差分 (f(x + h) - f(x - h)) / 2h；f 每次调用都从叶子重新建一遍图。"""
    old = leaf.data
    leaf.data = old + H
    up = f().data
    leaf.data = old - H
    down = f().data
    leaf.data = old
    return (up - down) / (2 * H)


def check(mg, f, leaves):
    for leaf in leaves:
        leaf.grad = 0.0
    out = f()
    out.backward()
    for leaf in leaves:
        expected = numeric_grad(f, leaf)
        assert leaf.grad == pytest.approx(expected, rel=1e-6, abs=1e-8), (leaf.data, leaf.grad, expected)


UNARY = {
    'neg': lambda a: -a,
    'log': lambda a: a.log(),
    'exp': lambda a: a.exp(),
    'relu': lambda a: a.relu(),
    'pow3': lambda a: a ** 3,
    'pow_half': lambda a: a ** 0.5,
    'pow_neg': lambda a: a ** -1.5,
    'radd': lambda a: 2.5 + a,
    'rsub': lambda a: 2.5 - a,
    'rmul': lambda a: 2.5 * a,
    'rdiv': lambda a: 2.5 / a,
    'add_const': lambda a: a + 1.5,
    'sub_const': lambda a: a - 1.5,
    'mul_const': lambda a: a * -0.7,
    'div_const': lambda a: a / 3.0,
}
BINARY = {
    'add': lambda a, b: a + b,
    'sub': lambda a, b: a - b,
    'mul': lambda a, b: a * b,
    'div': lambda a, b: a / b,
}


@pytest.mark.parametrize('name', sorted(UNARY))
def test_unary_ops(mg, name):
    """只含一个 Value 的运算（-a、log、exp、relu、幂、与普通数字的加减乘除）的梯度都要和有限差分 (finite differences) 吻合：
    抓 ln 的导数符号写反、a^k 的导数写成 k·a^k 这类局部导数写错的错误。"""
    rng = random.Random(name)
    for _ in range(5):
        # 输入取正数，log、分数次幂和除法才有定义；relu 的负数一侧和正好为 0 的情况在下面单独检查
        a = mg.Value(rng.uniform(0.2, 3.0))
        check(mg, lambda: UNARY[name](a), [a])


def test_relu_negative_side(mg):
    """ReLU 关着时：输出 0，局部导数 0，梯度只从旁边那条 + a 的路回来。"""
    a = mg.Value(-0.8)
    check(mg, lambda: a.relu() * 3.0 + a, [a])
    assert a.grad == pytest.approx(1.0)
    off = a.relu()
    assert off.data == 0.0 and off._local_grads == (0.0,)     # 课本写法：仍连着 a，只是导数为 0


def test_relu_at_exactly_zero_is_off(mg):
    """抓 relu 写成 >= 的错误：在 0 处取导数 0（惯例），而不是 1。"""
    a = mg.Value(0.0)
    out = a.relu()
    out.backward()
    assert out.data == 0.0 and a.grad == 0.0


# 前向的值：梯度检查只拿一个运算和它自己比，算错的值也会和自己的差分吻合，所以值要单独对照
FORWARD = [
    ('a + b', lambda a, b: a + b, 2.0 + -3.0),
    ('a - b', lambda a, b: a - b, 2.0 - -3.0),
    ('a * b', lambda a, b: a * b, 2.0 * -3.0),
    ('a / b', lambda a, b: a / b, 2.0 / -3.0),
    ('-a', lambda a, b: -a, -2.0),
    ('a ** 3', lambda a, b: a ** 3, 8.0),
    ('a ** -0.5', lambda a, b: a ** -0.5, 2.0 ** -0.5),
    ('a.log()', lambda a, b: a.log(), math.log(2.0)),
    ('a.exp()', lambda a, b: a.exp(), math.exp(2.0)),
    ('a.relu()', lambda a, b: a.relu(), 2.0),
    ('b.relu()', lambda a, b: b.relu(), 0.0),
    ('2.5 + a', lambda a, b: 2.5 + a, 4.5),
    ('2.5 - a', lambda a, b: 2.5 - a, 0.5),
    ('2.5 * a', lambda a, b: 2.5 * a, 5.0),
    ('2.5 / a', lambda a, b: 2.5 / a, 1.25),
    ('a + 1.5', lambda a, b: a + 1.5, 3.5),
    ('a - 1.5', lambda a, b: a - 1.5, 0.5),
    ('a * 1.5', lambda a, b: a * 1.5, 3.0),
    ('a / 4.0', lambda a, b: a / 4.0, 0.5),
]


@pytest.mark.parametrize('expr, f, expected', FORWARD, ids=[e for e, _, _ in FORWARD])
def test_forward_values(mg, expr, f, expected):
    """每个运算（包括 2.5 - a 这种“数字在左边”的）算出的值本身要对：抓 2.5 - a 算成 a - 2.5 这类错误。"""
    a, b = mg.Value(2.0), mg.Value(-3.0)
    assert f(a, b).data == pytest.approx(expected, rel=1e-15)


def test_repr_shows_value_and_grad(mg):
    """打印一个节点时看得到它的值和梯度（像 micrograd 一样），调试时才知道发生了什么。"""
    a = mg.Value(1.5)
    (a * 2.0).backward()
    assert repr(a) == 'Value(data=1.5, grad=2.0)'


def test_a_node_can_be_sorted_again_after_backward(mg):
    """抓“反向传播后没擦掉访问标记”的错误：同一个中间节点用在第二张图里，梯度仍要传到叶子。"""
    x = mg.Value(3.0)
    hidden = x * 2.0                     # 两张图共用的中间节点
    (hidden * 1.0).backward()
    assert x.grad == 2.0
    x.grad = hidden.grad = 0.0           # 中间节点的 grad 不会自动清零（见 backward 的注释）
    (hidden * 5.0).backward()
    assert x.grad == 10.0


@pytest.mark.parametrize('name', sorted(BINARY))
def test_binary_ops(mg, name):
    """两个 Value 的加、减、乘、除，对两个输入的梯度都要和有限差分吻合：抓乘法的两个局部导数写反（∂/∂a 写成了 a）这类错误。"""
    rng = random.Random(name)
    for _ in range(5):
        a, b = mg.Value(rng.uniform(-3, 3)), mg.Value(rng.uniform(0.3, 3.0))
        check(mg, lambda: BINARY[name](a, b), [a, b])


def test_node_used_twice_accumulates(mg):
    """a·a + a 里 a 被用了三次，三条路的梯度要加起来（2a + 1）：抓反向传播把 += 写成 =、后到的梯度覆盖先到的错误。"""
    a = mg.Value(1.7)
    check(mg, lambda: a * a + a, [a])          # d/da (a² + a) = 2a + 1
    assert a.grad == pytest.approx(2 * 1.7 + 1, rel=1e-12)


def test_composite_expression(mg):
    """各种运算层层嵌套成一个大表达式，三个输入的梯度仍要和有限差分吻合：
    抓只在运算嵌套时才露出来的链式法则错误，例如忘了乘上从父节点传来的梯度。"""
    rng = random.Random(7)
    a, b, c = (mg.Value(rng.uniform(0.5, 2.0)) for _ in range(3))

    def f():
        d = a * b + c.exp() / (a + 2.0)
        e = (d.relu() + 1.0).log() * b - c ** 2
        return e * d + (a - b) / c
    check(mg, f, [a, b, c])


def test_worked_example_from_tutorial(mg):
    """教程里手算的例子 L = ln(relu(a·b + c))：值是 ln 4，梯度是 (-3/4, 2/4, 1/4)，和教程写的一样。
    抓反向传播的起点 ∂L/∂L 没设成 1（梯度就全是 0）这类错误。"""
    # L = ln(relu(a·b + c))，a = 2，b = -3，c = 10：a·b + c = 4，L = ln 4
    a, b, c = mg.Value(2.0), mg.Value(-3.0), mg.Value(10.0)
    loss = (a * b + c).relu().log()
    loss.backward()
    assert loss.data == pytest.approx(math.log(4))
    assert (a.grad, b.grad, c.grad) == pytest.approx((-3 / 4, 2 / 4, 1 / 4))


def test_fused_dot_sum_cross_entropy(mg):
    """融合节点 fused_dot、fused_sum、fused_cross_entropy 的梯度要和有限差分吻合（包括 rmsnorm 里那样一个列表点乘它自己）：
    抓点积的局部导数没交叉（∂s/∂a_i 写成 a_i）、交叉熵忘了减 one-hot 这类错误。"""
    rng = random.Random(3)
    a = [mg.Value(rng.gauss(0, 1)) for _ in range(6)]
    b = [mg.Value(rng.gauss(0, 1)) for _ in range(6)]
    check(mg, lambda: mg.Value.fused_dot(a, b), a + b)
    check(mg, lambda: mg.Value.fused_dot(a, a), a)                       # 同一个列表用两次，和 rmsnorm 里一样
    check(mg, lambda: mg.Value.fused_sum(a) * mg.Value.fused_sum(b), a + b)
    for target in (0, 3, 5):
        check(mg, lambda: mg.Value.fused_cross_entropy(a, target), a)


def test_fused_ops_equal_atomic_ops(mg):
    """dot、add_all、cross_entropy 用融合节点（speed_tricks=True）和用基本运算一步步搭，值和梯度都要相同：
    抓两条路只有一条写错的错误，例如融合交叉熵的值忘了把减掉的最大值加回来。"""
    rng = random.Random(5)
    a = [mg.Value(rng.gauss(0, 2)) for _ in range(9)]
    b = [mg.Value(rng.gauss(0, 2)) for _ in range(9)]
    results = {}
    for fused in (True, False):
        mg.speed_tricks = fused
        for v in a + b:
            v.grad = 0.0
        out = mg.dot(a, b) * mg.add_all(b) + mg.cross_entropy(a, 4)
        out.backward()
        results[fused] = [out.data] + [v.grad for v in a + b]
    assert results[True] == pytest.approx(results[False], rel=1e-12, abs=1e-12)


def test_cross_entropy_gradient_is_p_minus_onehot(mg):
    """交叉熵的值是 -ln p_target，对 logits 的梯度正好是 p - one-hot（p 按 softmax 手算）：抓梯度忘了减 one-hot 的错误。"""
    logits = [mg.Value(z) for z in (1.0, 2.0, 0.5)]
    loss = mg.Value.fused_cross_entropy(logits, 1)
    loss.backward()
    total = sum(math.exp(z) for z in (1.0, 2.0, 0.5))
    p = [math.exp(z) / total for z in (1.0, 2.0, 0.5)]
    assert loss.data == pytest.approx(-math.log(p[1]))
    assert [v.grad for v in logits] == pytest.approx([p[0], p[1] - 1, p[2]])


def test_backward_on_a_100000_node_chain(mg):
    """十万个节点串成一条链也能反向传播，梯度也对：抓用递归做拓扑排序的写法
    （Python 默认只允许约 1000 层递归，会报 RecursionError）。"""
    x = mg.Value(0.5)
    y = x
    for _ in range(100_000):
        y = y * 1.00001
    y.backward()
    assert x.grad == pytest.approx(1.00001 ** 100_000, rel=1e-9)


def test_backward_on_a_deep_chain_with_paths_of_different_depth(mg):
    """很深的图里每个节点都经一短一长两条路被用到，梯度仍要全部传到 x（正确答案是 1）：
    抓拓扑排序出错、节点在所有用到它的节点之前就被处理的错误（那样后到的梯度会丢掉）。"""
    # 每一环都经两条路用到 y：短的 (y * 0.5) 和长的 ((y * 0.25) * 2.0)。一个节点要等用到它的两个节点
    # 都处理完才能处理，否则后到的那份梯度就丢了
    x = mg.Value(0.3)
    y = x
    for _ in range(30_000):
        y = y * 0.5 + (y * 0.25) * 2.0
    y.backward()
    assert x.grad == pytest.approx(1.0, rel=1e-9)
