"""参考数字、手算的 Adam、分词器、数据划分、采样、可复现性。"""
import math
import os
import random

import pytest

from benchmark import train_steps
from conftest import ROOT


def first_steps(mg, state, train_docs, tok, steps):
    """默认运行（1000 步的学习率日程）的前 steps 步的损失。"""
    return train_steps(mg, (state, train_docs, tok), steps)


def setup_default_run(mg):
    random.seed(mg.seed)
    docs = mg.load_docs(os.path.join(ROOT, 'input.txt'))
    train_docs, val_docs = mg.split_docs(docs)
    tok = mg.Tokenizer(docs)
    state = mg.init_params(tok.vocab_size)
    return train_docs, val_docs, tok, state


def test_first_three_steps_match_the_reference(mg):
    """默认设置下（种子 42、自带的 input.txt）前三步的损失要等于一个独立实现算出的参考数字：
    数据划分、初始化、模型、损失或 Adam 哪里算错（哪怕只是随机数的使用顺序变了），数字就对不上。"""
    train_docs, val_docs, tok, state = setup_default_run(mg)
    losses = first_steps(mg, state, train_docs, tok, 3)
    assert [round(x, 4) for x in losses] == [3.3285, 3.3620, 3.3243]


def test_first_three_steps_match_the_reference_with_the_atomic_graph(mg):
    """speed_tricks=False（完全照课本公式建图）时，前三步的损失也是同样的参考数字：抓只在课本那条路上出现的错误。"""
    mg.speed_tricks = False
    train_docs, val_docs, tok, state = setup_default_run(mg)
    losses = first_steps(mg, state, train_docs, tok, 3)
    assert [round(x, 4) for x in losses] == [3.3285, 3.3620, 3.3243]


def test_split_holds_out_the_last_200_shuffled_names(mg):
    """按种子打乱后，最后 200 个名字是留出集、其余是训练集，两边没有重叠，词表是 26 个字母加 BOS：
    抓留出集和训练集重叠一行（那个名字既拿来训练又拿来验证）的错误。"""
    random.seed(mg.seed)
    shuffled = mg.load_docs(os.path.join(ROOT, 'input.txt'))
    random.shuffle(shuffled)
    train_docs, val_docs, tok, state = setup_default_run(mg)
    assert val_docs == shuffled[-200:] and train_docs == shuffled[:-200]
    assert not set(train_docs) & set(val_docs)
    assert tok.vocab_size == 27


def test_small_files_hold_out_a_tenth(mg):
    """数据少时留出集最多占十分之一（50 行留 5 行），只有一行时不留：抓小文件被留出太多、甚至一行训练数据都不剩的错误。"""
    random.seed(0)
    docs = [f'name{i}' for i in range(50)]
    train_docs, val_docs = mg.split_docs(docs)
    assert (len(train_docs), len(val_docs)) == (45, 5)
    random.seed(0)
    assert mg.split_docs(['solo']) == (['solo'], [])


def test_adam_first_two_updates_by_hand(mg):
    """Adam 前两次更新和手算的一致（m、v、偏差修正、开方、更新后把 grad 清零）：
    抓忘了偏差修正、v 用 g 而不是 g²、分母忘了开方、grad 没清零这类错误。"""
    mg.beta1, mg.beta2, mg.eps_adam = 0.85, 0.99, 1e-8
    p, q = mg.Value(1.0), mg.Value(1.0)
    opt = mg.Adam([p, q])
    p.grad, q.grad = 0.5, -2.0
    opt.step(0.01)
    # m = 0.15·g，v = 0.01·g²；偏差修正后 m̂ = g，v̂ = g²，所以这一步走 lr·g/(|g| + eps)
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
    assert mg.sample_name(None, tok) == ''
    assert calls == [0]


def test_sampling_stops_at_block_size(mg, monkeypatch):
    """名字最长 block_size 个字符：到了上下文的尽头就停。"""
    tok = mg.Tokenizer(['abc'])
    monkeypatch.setattr(mg, 'gpt', fake_gpt(mg, tok.char_to_id['b']))
    mg.block_size = 7
    random.seed(0)
    assert mg.sample_name(None, tok) == 'b' * 7


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


def test_softmax_survives_huge_logits(mg):
    """抓“softmax 不减最大值”的错误：分数上千（温度 0.001 时很常见）时 e 的幂会溢出。"""
    probs = mg.softmax([mg.Value(1000.0), mg.Value(0.0), mg.Value(-1000.0)])
    assert [p.data for p in probs] == [1.0, 0.0, 0.0]
    probs = mg.softmax([mg.Value(z) for z in (1.0, 2.0, 3.0)])
    exps = [math.exp(z) for z in (1.0, 2.0, 3.0)]
    assert [p.data for p in probs] == pytest.approx([e / sum(exps) for e in exps], rel=1e-12)


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
    docs = ['anna', 'bob', 'carla', 'dora', 'eve', 'fay', 'gus', 'hal', 'ivy', 'jo', 'kim', 'lu']
    train_docs, val_docs = mg.split_docs(docs)
    tok = mg.Tokenizer(docs)
    state = mg.init_params(tok.vocab_size)
    losses = [loss for _, loss, _ in mg.train(state, mg.Adam(mg.flatten(state)), train_docs, tok, mg.num_steps)]
    return losses, mg.evaluate(state, val_docs, tok), [mg.sample_name(state, tok) for _ in range(5)]


def test_same_seed_same_output(mg):
    """同一个种子跑两次，训练损失、留出集损失和编出的名字都相同，换一个种子就不同：
    抓结果里混进不受 random.seed 控制的随机性（例如另一个没设种子的随机数生成器）的错误。"""
    first = small_run(mg, 3)
    assert small_run(mg, 3) == first
    assert small_run(mg, 4) != first


def test_shared_prefix_evaluation_equals_one_by_one(mg):
    """evaluate() 沿用排序后相邻名字相同开头的那些位置，结果必须和一个一个单独算的一样：
    抓沿用时多留了一个旧的 KV 缓存位置这类错误。"""
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
    """evaluate() 不消耗随机数：抓评估里用了随机数的错误（那样评估一次就会改变之后编出的名字）。"""
    train_docs, val_docs, tok, state = setup_default_run(mg)
    before = random.getstate()
    mg.evaluate(state, val_docs[:5], tok)
    assert random.getstate() == before


def test_shipped_input_txt():
    """自带的 input.txt 没被改过（SHA-256 不变）：29910 个互不相同的名字，只有小写字母，以一个换行结尾。
    抓数据文件被编辑器悄悄改动（换行符、编码、多了空行），参考数字因此对不上的问题。"""
    with open(os.path.join(ROOT, 'input.txt'), 'rb') as f:
        raw = f.read()
    import hashlib
    assert hashlib.sha256(raw).hexdigest() == '3b20b43df36ec7ee9c90f8ea2c6f1a5310ad2a8608b06f5208edbbf544f26c35'
    names = raw.decode('ascii').split('\n')
    assert names[-1] == ''                       # 最后有一个换行
    names = names[:-1]
    assert len(names) == 29910 == len(set(names))
    assert all(name and set(name) <= set('abcdefghijklmnopqrstuvwxyz') for name in names)
