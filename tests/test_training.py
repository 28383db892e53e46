"""第 1、2、6、7 节：参考数字、手算的 Adam、分词器、数据划分、评估、采样、可复现性。"""
import hashlib
import math
import os
import random

import pytest

from conftest import NAMES, ROOT, TINY_DOCS, default_start, tiny_model, train_steps


@pytest.mark.parametrize('speed_tricks', [True, False])
def test_first_three_steps_match_the_reference(mg, speed_tricks):
    """默认设置下（种子 42、自带的 input.txt）前三步的损失要等于一个独立实现算出的参考数字，speed_tricks 开（默认）和关
    （完全照课本公式）都一样：抓数据划分、初始化、模型、损失、反向传播或 Adam 哪里算错（哪怕只是随机数的使用顺序变了）的错误。"""
    mg.speed_tricks = speed_tricks
    losses = train_steps(mg, default_start(mg), 3)
    assert [round(x, 4) for x in losses] == [3.3285, 3.3620, 3.3243]


def test_split_holds_out_the_last_200_shuffled_names(mg):
    """按种子打乱后，最后 200 个名字是留出集、其余是训练集，两边没有重叠，词表是 26 个字母加 BOS：
    抓留出集和训练集重叠一行（那个名字既拿来训练又拿来验证）的错误。"""
    docs = mg.load_docs(os.path.join(ROOT, 'input.txt'))
    random.seed(mg.seed)
    shuffled = list(docs)
    random.shuffle(shuffled)
    random.seed(mg.seed)
    train_docs, val_docs = mg.split_docs(docs)
    assert val_docs == shuffled[-200:] and train_docs == shuffled[:-200]
    assert not set(train_docs) & set(val_docs)
    assert mg.Tokenizer(docs).vocab_size == 27


def test_small_files_hold_out_a_tenth(mg):
    """数据少时留出集最多占十分之一（50 行留 5 行），只有一行时不留：抓小文件被留出太多、甚至一行训练数据都不剩的错误。"""
    random.seed(0)
    docs = [f'name{i}' for i in range(50)]
    train_docs, val_docs = mg.split_docs(docs)
    assert (len(train_docs), len(val_docs)) == (45, 5)
    random.seed(0)
    assert mg.split_docs(['solo']) == (['solo'], [])


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


def test_tokenizer_round_trip(mg):
    """分词器：字符排好序依次编号，BOS 排在最后；编码两头各加一个 BOS，解码得回原来的名字：
    抓 BOS 的编号和某个字符撞车、解码时没去掉 BOS 这类错误。"""
    tok = mg.Tokenizer(['emma', 'olivia', 'zoe'])
    assert tok.chars == sorted(set('emmaoliviazoe'))
    assert tok.bos == len(tok.chars) and tok.vocab_size == len(tok.chars) + 1
    ids = tok.encode('mia')
    assert ids[0] == ids[-1] == tok.bos
    assert tok.decode(ids) == 'mia'
    for doc in ('emma', 'olivia', 'zoe', 'ame'):
        assert tok.decode(tok.encode(doc)) == doc


def fake_gpt(mg, favourite, calls=None):
    """一个替身模型：永远给某一个 token 远高于其他的分数；calls 记下它被调用了几次。"""
    def gpt(state, token_id, pos_id, keys, values, attention=None):
        if calls is not None:
            calls.append(pos_id)
        return [mg.Value(30.0 if i == favourite else 0.0) for i in range(4)]
    return gpt


def test_sampling_stops_at_bos(mg, monkeypatch):
    """抓“抽到 BOS 不停下”的错误：模型第一步就说结束，就只问它一次。"""
    tok = mg.Tokenizer(['abc'])
    calls = []
    monkeypatch.setattr(mg, 'gpt', fake_gpt(mg, tok.bos, calls))
    random.seed(0)
    assert mg.sample_name(None, tok) == []
    assert calls == [0]


def test_sampling_stops_at_block_size(mg, monkeypatch):
    """编出的名字最长 block_size 个字符：抓到了上下文的尽头还接着抽的错误（位置会超出 wpe 的行数）。"""
    tok = mg.Tokenizer(['abc'])
    monkeypatch.setattr(mg, 'gpt', fake_gpt(mg, tok.char_to_id['b']))
    mg.block_size = 7
    random.seed(0)
    assert tok.decode(mg.sample_name(None, tok)) == 'b' * 7


def test_prompt_is_copied_and_draws_no_random_numbers(mg, monkeypatch):
    """给定的开头照抄，模型从它后面接着写，每个新字符只抽一次随机数：抓开头的字符也抽了随机数（同一个种子下，
    有开头和没开头编出的名字就对不上）、开头被丢掉的错误。"""
    tok = mg.Tokenizer(['abc'])
    calls = []
    monkeypatch.setattr(mg, 'gpt', fake_gpt(mg, tok.char_to_id['c'], calls))
    mg.block_size = 5
    random.seed(0)
    assert mg.sample_name(None, tok, start='ab') == tok.encode('abccc')[1:-1]
    assert calls == [0, 1, 2, 3, 4]
    after = random.getstate()
    random.seed(0)
    for _ in range(3):                           # 三个新字符，各抽一次
        random.random()
    assert random.getstate() == after


def test_temperature_divides_the_logits(mg, monkeypatch):
    """抓“温度乘上去而不是除”的错误：抽样用的概率必须是 softmax(z / T)。"""
    tok = mg.Tokenizer(['abc'])
    logits = [2.0, 1.0, 0.0, -1.0]
    monkeypatch.setattr(mg, 'gpt', lambda *args, **kw: [mg.Value(z) for z in logits])
    seen = []

    def choices(population, weights):
        seen.append(list(weights))
        return [tok.bos]
    monkeypatch.setattr(mg.random, 'choices', choices)
    mg.temperature = 0.5
    mg.sample_name(None, tok)
    exps = [math.exp(z / 0.5) for z in logits]
    assert seen[0] == pytest.approx([e / sum(exps) for e in exps], rel=1e-12)


def test_learning_rate_falls_linearly_to_one_step_above_zero(mg):
    """抓学习率日程差一步的错误：第 1 步正好是 learning_rate，最后一步是它的 1/steps。"""
    mg.n_embd, mg.n_head, mg.learning_rate = 8, 2, 0.01
    random.seed(1)
    tok = mg.Tokenizer(['ab', 'ba'])
    state = mg.init_params(tok.vocab_size)
    rates = [lr for _, _, lr in mg.train(state, mg.Adam(mg.flatten(state)), ['ab', 'ba'], tok, 4)]
    assert rates == pytest.approx([0.01, 0.0075, 0.005, 0.0025], rel=1e-15)


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


def test_shipped_input_txt():
    """自带的 input.txt 没被改过（SHA-256 不变）：29910 个互不相同的名字，只有小写字母，以一个换行结尾。
    抓数据文件被编辑器悄悄改动（换行符、编码、多了空行）、参考数字因此对不上的错误。"""
    with open(os.path.join(ROOT, 'input.txt'), 'rb') as f:
        raw = f.read()
    assert hashlib.sha256(raw).hexdigest() == '3b20b43df36ec7ee9c90f8ea2c6f1a5310ad2a8608b06f5208edbbf544f26c35'
    names = raw.decode('ascii').split('\n')
    assert names[-1] == ''                       # 最后有一个换行
    names = names[:-1]
    assert len(names) == 29910 == len(set(names))
    assert all(name and set(name) <= set('abcdefghijklmnopqrstuvwxyz') for name in names)
