"""第 3 节 自动求导：每个运算的前向值，梯度和 float64 中心差分的对照，以及反向传播本身（课本写法和 fast_backward 各跑一遍）。
快的双胞胎和课本写法逐个对照的测试在 test_speed.py。"""
import math
import random

import pytest

from conftest import check_grads as check, numeric_grad


@pytest.fixture
def textbook(mg):
    """课本写法（speed_tricks=False）：backward 就是第 3 节写的那个。"""
    mg.speed_tricks = False
    return mg


@pytest.fixture(params=['textbook', 'fast_backward'])
def both(mg, request):
    """同一个测试跑两遍：课本的 backward 和第 8 节的 fast_backward。"""
    mg.speed_tricks = request.param == 'fast_backward'
    return mg


# ---- 前向的值 ----
# 梯度检查只拿一个运算和它自己的差分比，算错的值也会和自己的差分吻合，所以值要单独对照
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
    """每个运算（包括 2.5 - a 这种“数字在左边”的反射运算）算出的值本身要对：抓 2.5 - a 算成 a - 2.5 这类错误。"""
    a, b = mg.Value(2.0), mg.Value(-3.0)
    assert f(a, b).data == pytest.approx(expected, rel=1e-15)


def test_constants_stay_out_of_the_graph(mg):
    """和普通数字运算时，数字不变成图里的节点：结果只有一个孩子。抓把常数也包成 Value（图变大、白走很多条边）的错误。"""
    a = mg.Value(2.0)
    for out in (a + 1.5, a * 1.5, 1.5 + a, 1.5 * a, a ** 2, a.exp(), a.log(), a.relu()):
        assert out._children == (a,) and len(out._local_grads) == 1


def test_repr_shows_value_and_grad(mg):
    """打印一个节点时看得到它的值和梯度（像 micrograd 一样）：抓 repr 漏了 grad、调试时看不到梯度的错误。"""
    a = mg.Value(1.5)
    (a * 2.0).backward()
    assert repr(a) == 'Value(data=1.5, grad=2.0)'


# ---- 每个运算的局部导数：和中心差分对照（课本的 backward）----
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
def test_unary_ops(textbook, name):
    """只含一个 Value 的运算（-a、log、exp、relu、幂、与普通数字的加减乘除）的梯度都要和有限差分 (finite differences) 吻合：
    抓 ln 的导数符号写反、a^k 的导数写成 k·a^k 这类局部导数写错的错误。"""
    rng = random.Random(name)
    for _ in range(5):
        # 输入取正数，log、分数次幂和除法才有定义；relu 的负数一侧和正好为 0 的情况在下面单独检查
        a = textbook.Value(rng.uniform(0.2, 3.0))
        check(lambda: UNARY[name](a), [a])


@pytest.mark.parametrize('name', sorted(BINARY))
def test_binary_ops(textbook, name):
    """两个 Value 的加、减、乘、除，对两个输入的梯度都要和有限差分吻合：抓乘法的两个局部导数写反（∂/∂a 写成了 a）这类错误。"""
    rng = random.Random(name)
    for _ in range(5):
        a, b = textbook.Value(rng.uniform(-3, 3)), textbook.Value(rng.uniform(0.3, 3.0))
        check(lambda: BINARY[name](a, b), [a, b])


def test_relu_negative_side(textbook):
    """抓 relu 关着时仍把梯度传下去的错误：输出 0、局部导数 0，梯度只从旁边那条 + a 的路回来；a 仍是它的孩子。"""
    a = textbook.Value(-0.8)
    check(lambda: a.relu() * 3.0 + a, [a])
    assert a.grad == 1.0
    off = a.relu()
    assert off.data == 0.0 and off._children == (a,) and off._local_grads == (0.0,)


def test_relu_at_exactly_zero_is_off(both):
    """抓 relu 写成 >= 的错误：在 0 处取导数 0（惯例），而不是 1。"""
    a = both.Value(0.0)
    out = a.relu()
    out.backward()
    assert out.data == 0.0 and a.grad == 0.0


# ---- 反向传播本身：课本写法和 fast_backward 各跑一遍 ----
def test_worked_example_from_tutorial(both):
    """教程里手算的例子 L = ln(relu(a·b + c))：值是 ln 4，梯度是 (-3/4, 2/4, 1/4)，和教程写的一样。
    抓反向传播的起点 ∂L/∂L 没设成 1（梯度就全是 0）、忘了乘上从父节点传来的梯度这类错误。"""
    a, b, c = both.Value(2.0), both.Value(-3.0), both.Value(10.0)
    loss = (a * b + c).relu().log()          # a·b + c = 4，L = ln 4
    loss.backward()
    assert loss.data == math.log(4)
    assert (a.grad, b.grad, c.grad) == (-3 / 4, 2 / 4, 1 / 4)
    assert loss.grad == 1.0


def test_node_used_twice_accumulates(both):
    """a·a + a 里 a 被用了三次，三条路的梯度要加起来（2a + 1）；中间节点 a·a 再被用两次也一样：
    抓反向传播把 += 写成 =、后到的梯度覆盖先到的错误。"""
    a = both.Value(1.7)
    (a * a + a).backward()                   # d/da (a² + a) = 2a + 1
    assert a.grad == pytest.approx(2 * 1.7 + 1, rel=1e-15)
    b = both.Value(1.5)
    sq = b * b                               # 中间节点，下面用了两次
    (sq * 2.0 + sq.exp()).backward()         # d/db (2b² + e^(b²)) = 4b + 2b·e^(b²)
    assert b.grad == pytest.approx(4 * 1.5 + 2 * 1.5 * math.exp(1.5 ** 2), rel=1e-14)


def test_composite_expression(both):
    """各种运算层层嵌套成一个大表达式，三个输入的梯度仍要和有限差分吻合：
    抓只在运算嵌套时才露出来的链式法则错误，例如忘了乘上从父节点传来的梯度。"""
    rng = random.Random(7)
    a, b, c = (both.Value(rng.uniform(0.5, 2.0)) for _ in range(3))

    def f():
        d = a * b + c.exp() / (a + 2.0)
        e = (d.relu() + 1.0).log() * b - c ** 2
        return e * d + (a - b) / c
    check(f, [a, b, c])


def test_a_node_can_be_sorted_again_after_backward(both):
    """抓“反向传播后留下了访问标记”的错误：同一个中间节点用在第二张图里，梯度仍要传到叶子。"""
    x = both.Value(3.0)
    hidden = x * 2.0                         # 两张图共用的中间节点
    (hidden * 1.0).backward()
    assert x.grad == 2.0
    x.grad = hidden.grad = 0.0               # 课本的 backward 不会把中间节点的 grad 清零
    (hidden * 5.0).backward()
    assert x.grad == 10.0 and hidden.grad == 5.0


def test_backward_on_a_20000_node_chain(both):
    """两万个节点串成一条链也能反向传播，梯度也对：抓用递归做拓扑排序的错误
    （Python 默认只允许约 1000 层递归，会报 RecursionError）。"""
    x = both.Value(0.5)
    y = x
    for _ in range(20_000):
        y = y * 1.0001
    y.backward()
    assert x.grad == pytest.approx(1.0001 ** 20_000, rel=1e-9)


def test_backward_on_a_deep_chain_with_paths_of_different_depth(both):
    """很深的图里每个节点都经一短一长两条路被用到，梯度仍要全部传到 x（正确答案是 1）：
    抓拓扑排序出错、节点在所有用到它的节点之前就被处理的错误（那样后到的梯度会丢掉）。"""
    # 每一环都经两条路用到 y：短的 (y * 0.5) 和长的 ((y * 0.25) * 2.0)。一个节点要等用到它的两个节点
    # 都处理完才能处理，否则后到的那份梯度就丢了
    x = both.Value(0.3)
    y = x
    for _ in range(10_000):
        y = y * 0.5 + (y * 0.25) * 2.0
    y.backward()
    assert x.grad == 1.0
