"""第 6 节：训练。参考数字、交叉熵、长名字、手算的 Adam、学习率计划、评估、可复现性，以及发散的训练。"""
import math
import random

import pytest

from conftest import NAMES, SMALL, TINY_DOCS, assert_clean_failure, default_start, run_main, tiny_model, train_steps, values


@pytest.mark.parametrize('speed_tricks', [True, False])
def test_first_three_steps_match_the_reference(mg, speed_tricks):
    """默认设置下（种子 42、自带的 input.txt）前三步的损失要等于一个独立实现算出的参考数字，speed_tricks 开（默认）和关
    （完全照课本公式）都一样：抓数据划分、初始化、模型、损失、反向传播或 Adam 哪里算错（哪怕只是随机数的使用顺序变了）的错误。"""
    mg.speed_tricks = speed_tricks
    losses = train_steps(mg, default_start(mg), 3)
    assert [round(x, 4) for x in losses] == [3.3285, 3.3620, 3.3243]


# ---------------------------------------------------------------------------
# 交叉熵和每个名字的损失
# ---------------------------------------------------------------------------

@pytest.mark.parametrize('speed_tricks', [False, True])
def test_cross_entropy_is_minus_log_p_and_its_gradient_is_p_minus_onehot(mg, speed_tricks):
    """交叉熵的值是 -ln p_target，对 logits 的梯度正好是 p - one-hot（p 按 softmax 手算）：
    抓值的符号反了、梯度忘了减 one-hot、忘了把减掉的最大值加回来的错误。"""
    mg.speed_tricks = speed_tricks
    z = (1.0, 2.0, 0.5)
    total = sum(math.exp(zi) for zi in z)
    p = [math.exp(zi) / total for zi in z]
    for target in range(3):
        logits = values(mg, z)
        loss = mg.cross_entropy(logits, target)
        loss.backward()
        assert loss.data == pytest.approx(-math.log(p[target]), rel=1e-14)
        onehot = [1.0 if j == target else 0.0 for j in range(3)]
        assert [v.grad for v in logits] == pytest.approx([pj - oj for pj, oj in zip(p, onehot)], abs=1e-15)


@pytest.mark.parametrize('speed_tricks', [False, True])
def test_cross_entropy_survives_tiny_probabilities(mg, speed_tricks):
    """目标的概率小到 e^-805（当作浮点数会下溢成 0）时，交叉熵要给出损失 805 和正确的梯度：
    抓先算 softmax 再取 -ln p 的写法（ln 0 会出错），以及忘了把最大值加回来的错误。"""
    mg.speed_tricks = speed_tricks
    logits = values(mg, [800.0, 0.0, -5.0])
    loss = mg.cross_entropy(logits, 2)          # p_target = e^-805：当作概率会下溢成 0
    loss.backward()
    assert [loss.data] + [v.grad for v in logits] == pytest.approx([805.0, 1.0, 0.0, -1.0])


@pytest.mark.parametrize('speed_tricks', [False, True])
def test_long_names_are_cut_to_block_size(mg, speed_tricks):
    """比上下文长的名字只用前 block_size 个位置，能训练也能评估：
    抓长名字没截到 block_size（位置超出 wpe 的行数而报错）这类只在长名字上出现的错误。"""
    mg.speed_tricks = speed_tricks
    mg.n_layer, mg.n_embd, mg.n_head, mg.block_size = 1, 4, 1, 4
    random.seed(1)
    docs = ['ab', 'abc', 'abcdefgh']            # 3、4、9 个位置
    tok = mg.Tokenizer(docs)
    state = mg.init_params(tok.vocab_size)
    assert [len(mg.doc_losses(state, tok.encode(doc))) for doc in docs] == [3, 4, 4]
    losses = [loss for _, loss, _ in mg.train(state, mg.Adam(mg.flatten(state)), docs[::-1], tok, 1)]
    assert len(losses) == 1 and 0 < losses[0] < 10
    assert 0 < mg.evaluate(state, docs, tok) < 10


# ---------------------------------------------------------------------------
# Adam 和学习率计划
# ---------------------------------------------------------------------------

@pytest.mark.parametrize('speed_tricks', [False, True])
def test_adam_first_two_updates_by_hand(mg, speed_tricks):
    """Adam 前两次更新和手算的一致（m、v、偏差修正、开方、更新后把 grad 清零），课本写法和 fast_adam_step 都一样：
    抓忘了偏差修正、v 用 g 而不是 g²、分母忘了开方、grad 没清零、t 没加一这类错误。"""
    mg.speed_tricks = speed_tricks
    mg.beta1, mg.beta2, mg.eps_adam = 0.85, 0.99, 1e-8
    p, q = mg.Value(1.0), mg.Value(1.0)
    opt = mg.Adam([p, q])
    p.grad, q.grad = 0.5, -2.0
    opt.step(0.01)
    # m = 0.15·g，v = 0.01·g²；偏差修正后 m̂ = g，v̂ = g²，所以这一步走 lr·g/(|g| + eps)
    assert p.data == pytest.approx(1.0 - 0.01 * 0.5 / 0.50000001, rel=1e-14)
    assert q.data == pytest.approx(1.0 + 0.01 * 2.0 / 2.00000001, rel=1e-14)
    assert (p.grad, q.grad) == (0.0, 0.0) and opt.t == 1
    assert opt.m == pytest.approx([0.075, -0.3]) and opt.v == pytest.approx([0.0025, 0.04])
    p.grad, q.grad = 0.5, 1.0
    opt.step(0.01)
    # p: m = 0.85·0.075 + 0.15·0.5 = 0.13875, m̂ = 0.13875/(1 - 0.85²) = 0.5
    #    v = 0.99·0.0025 + 0.01·0.25 = 0.004975, v̂ = 0.004975/(1 - 0.99²) = 0.25
    assert opt.m[0] == pytest.approx(0.13875) and opt.v[0] == pytest.approx(0.004975) and opt.t == 2
    assert p.data == pytest.approx(1.0 - 2 * 0.01 * 0.5 / 0.50000001, rel=1e-12)
    # q: m = 0.85·(-0.3) + 0.15·1 = -0.105, m̂ = -0.378378…; v = 0.99·0.04 + 0.01·1 = 0.0496, v̂ = 2.492462…
    m_hat, v_hat = -0.105 / 0.2775, 0.0496 / 0.0199
    assert q.data == pytest.approx(1.0 + 0.01 * 2.0 / 2.00000001 - 0.01 * m_hat / (math.sqrt(v_hat) + 1e-8),
                                   rel=1e-12)


def test_learning_rate_falls_linearly_to_one_step_above_zero(mg):
    """抓学习率日程差一步的错误：第 1 步正好是 learning_rate，最后一步是它的 1/steps。"""
    mg.n_embd, mg.n_head, mg.learning_rate = 8, 2, 0.01
    random.seed(1)
    tok = mg.Tokenizer(['ab', 'ba'])
    state = mg.init_params(tok.vocab_size)
    rates = [lr for _, _, lr in mg.train(state, mg.Adam(mg.flatten(state)), ['ab', 'ba'], tok, 4)]
    assert rates == pytest.approx([0.01, 0.0075, 0.005, 0.0025], rel=1e-15)


# ---------------------------------------------------------------------------
# 评估和可复现性
# ---------------------------------------------------------------------------

@pytest.mark.parametrize('speed_tricks', [False, True])
def test_evaluate_averages_over_positions(mg, speed_tricks):
    """evaluate 是所有位置损失的平均（长名字位置多，分量也大），不是每个名字各自平均后的平均，也不改参数：
    抓按名字数而不是位置数去除、漏算了某个名字或某个位置的错误。"""
    tok, state = tiny_model(mg)
    docs = ['a', 'cabbac', 'ba', 'cab', 'ba']               # 2、7、3、4、3 个位置
    mg.speed_tricks = False
    per_doc = [[loss.data for loss in mg.doc_losses(state, tok.encode(doc))] for doc in docs]
    assert [len(losses) for losses in per_doc] == [2, 7, 3, 4, 3]
    expected = sum(map(sum, per_doc)) / 19
    assert expected != pytest.approx(sum(sum(losses) / len(losses) for losses in per_doc) / 5, rel=1e-3)
    params = [p.data for p in mg.flatten(state)]
    mg.speed_tricks = speed_tricks
    assert mg.evaluate(state, docs, tok) == pytest.approx(expected, rel=1e-12)
    assert [p.data for p in mg.flatten(state)] == params


@pytest.mark.parametrize('speed_tricks', [False, True])
def test_evaluation_consumes_no_random_numbers(mg, speed_tricks):
    """evaluate() 不消耗随机数：抓评估里用了随机数的错误（那样评估一次就会改变之后编出的名字）。"""
    mg.speed_tricks = speed_tricks
    tok, state = tiny_model(mg)
    before = random.getstate()
    mg.evaluate(state, TINY_DOCS, tok)
    assert random.getstate() == before


def small_run(mg, seed):
    mg.seed, mg.num_steps, mg.n_embd, mg.n_head = seed, 5, 8, 2
    random.seed(seed)
    docs = NAMES[:12]
    train_docs, val_docs = mg.split_docs(docs)
    tok = mg.Tokenizer(docs)
    state = mg.init_params(tok.vocab_size)
    losses = [loss for _, loss, _ in mg.train(state, mg.Adam(mg.flatten(state)), train_docs, tok, mg.num_steps)]
    return losses, mg.evaluate(state, val_docs, tok), [tok.decode(mg.sample_name(state, tok)) for _ in range(5)]


def test_same_seed_same_output(mg):
    """同一个种子跑两次，训练损失、留出集损失和编出的名字都相同，换一个种子就不同：
    抓结果里混进不受 random.seed 控制的随机性（例如另一个没设种子的随机数生成器）的错误。"""
    first = small_run(mg, 3)
    assert small_run(mg, 3) == first
    assert small_run(mg, 4) != first


def test_diverging_training_stops_with_a_clear_message(data):
    """抓不检查 loss 是否有限、让发散的训练默默跑下去（或者带着回溯崩掉）的错误：学习率 1e300 时退出码 1，
    说明里有“发散”和 learning_rate。"""
    result = run_main(f'--input_path={data}', '--learning_rate=1e300', '--num_steps=50', *SMALL)
    assert_clean_failure(result, 1, '发散', 'learning_rate')
