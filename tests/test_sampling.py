"""第 7 节：采样 (sample_name)：在 BOS 和 block_size 处停下、温度、给定的开头 (prompt)；以及样本的标签和计数
（第 10 节的 label_samples、第 12 节的 print_samples）。"""
import math
import random
import re

import pytest

from conftest import (NAMES, SMALL, assert_clean_failure, load_run, numbered_samples, run_main, run_script, squash,
                      tiny_trained_model)

VOCAB = ''.join(sorted(set(''.join(NAMES))))         # 24 个字符：没有 q、z


# ---------------------------------------------------------------------------
# sample_name：什么时候停，温度
# ---------------------------------------------------------------------------

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


def test_smallest_allowed_temperature_samples_without_overflow(data):
    """抓下限 0.001 本身也会溢出（softmax 没有先减最大值）的错误：允许的最小温度必须能正常采样。"""
    result = run_main(f'--input_path={data}', '--temperature=0.001', '--num_steps=0', *SMALL)
    assert result.returncode == 0, result.stderr
    assert 'temperature=0.001*' in result.stdout and len(numbered_samples(result.stdout)) == 5


def test_overflowing_parameters_stop_sampling_with_a_clear_message(tmp_path):
    """抓学习率大得离谱、参数溢出时，概率里出现 inf、NaN，random.choices 抛 ValueError 回溯的错误。"""
    result = run_main('--n_embd=8', '--n_head=2', '--num_steps=1', '--learning_rate=1e150', '--val_size=0',
                      '--num_samples=2', cwd=str(tmp_path))
    assert_clean_failure(result, 1, '不是有限的数', 'learning_rate')


# ---------------------------------------------------------------------------
# 给定的开头 (prompt)
# ---------------------------------------------------------------------------

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


def reference_sample(mg, state, tok, prompt=''):
    """课本写法的采样循环：prompt 的字符一个一个喂进去，不抽随机数。"""
    keys = [[] for _ in range(mg.n_layer)]
    values = [[] for _ in range(mg.n_layer)]
    given = [tok.char_to_id[ch] for ch in prompt]
    token_id, out = tok.bos, list(prompt)
    for pos in range(mg.block_size):
        logits = mg.gpt(state, token_id, pos, keys, values)
        if pos < len(given):
            token_id = given[pos]
            continue
        probs = mg.softmax([z / mg.temperature for z in logits])
        token_id = random.choices(range(tok.vocab_size), weights=[p.data for p in probs])[0]
        if token_id == tok.bos:
            break
        out.append(tok.chars[token_id])
    return ''.join(out)


def test_sampling_with_a_prompt_draws_once_per_new_character(mg, monkeypatch):
    """抓给定开头的那几个位置也去抽随机数（浪费，而且让结果依赖开头的长度）、或者下一个字符不是从开头之后的
    分布里抽的错误。"""
    tok, state, _ = tiny_trained_model(mg, ['mara', 'maria', 'mark', 'ann', 'bob'], steps=0)
    for p in mg.flatten(state):
        p.data *= 5
    mg.temperature = 1.0
    calls = []
    real_choices = random.choices

    def counting_choices(population, weights=None, **kw):
        calls.append(list(weights))
        return real_choices(population, weights=weights, **kw)
    monkeypatch.setattr(random, 'choices', counting_choices)
    random.seed(3)
    lengths = set()
    for prompt in ('ma', 'mar', ''):
        for _ in range(8):
            calls.clear()
            sample = tok.decode(mg.sample_name(state, tok, prompt))
            assert sample.startswith(prompt)
            ended_by_bos = len(sample) < mg.block_size
            assert len(calls) == len(sample) - len(prompt) + ended_by_bos
            lengths.add(len(sample) - len(prompt))
        predictions = mg.explain_text(state, tok, prompt)['predictions']
        assert calls[0] == pytest.approx(predictions[-1][0], abs=1e-12)   # 第一次抽：就在 prompt 之后
    assert len(lengths) > 2                                       # 上面的检查见过好几种样本长度
    monkeypatch.undo()
    for prompt in ('', 'ma', 'mar'):                              # 而且和课本写法用的随机数相同
        random.seed(4)
        with_prompt = [tok.decode(mg.sample_name(state, tok, prompt)) for _ in range(6)]
        random.seed(4)
        assert with_prompt == [reference_sample(mg, state, tok, prompt) for _ in range(6)]


def test_every_sample_starts_with_the_prompt(trained):
    """抓 prompt 只喂给模型却没写进结果、或者样本把开头丢了或重复了一遍的错误。"""
    result = load_run(trained, '--prompt=ma', '--num_samples=8')
    assert result.returncode == 0, result.stderr
    assert "都以 'ma' 开头" in result.stdout
    samples = numbered_samples(result.stdout)
    assert len(samples) == 8
    assert all(sample.startswith('ma') and len(sample) <= 16 for sample, label in samples)
    assert any(len(sample) > 2 for sample, label in samples)


def test_empty_prompt_samples_like_the_plain_run(trained):
    """抓处理 prompt 的代码改变了没有 prompt 时的采样（多抽或少抽了随机数）的错误。"""
    plain = load_run(trained)
    empty = load_run(trained, '--prompt=')
    assert plain.returncode == empty.returncode == 0
    assert numbered_samples(empty.stdout) == numbered_samples(plain.stdout) == numbered_samples(trained['stdout'])


def test_prompt_with_unknown_characters_lists_the_known_ones(trained):
    """抓 prompt 里有词表外的字符时 char_to_id 抛 KeyError 回溯、用户也不知道能用哪些字符的错误。"""
    result = load_run(trained, '--prompt=Zq')
    assert_clean_failure(result, 2, '--prompt 里有模型不认识的字符 Zq。', f'字符：{VOCAB}')


def test_a_long_list_of_unknown_characters_is_cut(trained):
    """抓 --prompt 里有 400 个模型不认识的汉字时，错误信息把 400 个全列出来、一句话占了半屏的错误。"""
    prompt = ''.join(chr(0x4e00 + i) for i in range(400))
    result = run_script(f'--input_path={trained["data"]}', f'--load_path={trained["ckpt"]}', '--num_steps=0', f'--prompt={prompt}')
    assert_clean_failure(result, 2, '--prompt', '…')
    assert len(result.stderr) < 400


def test_prompt_must_be_shorter_than_block_size(trained):
    """抓 prompt 占满 block_size 时 wpe 下标越界（IndexError）的错误，以及把边界写成 > 而不是 >= 的差一错误。"""
    result = load_run(trained, '--prompt=' + 'anna' * 4)                 # 16 = block_size
    assert_clean_failure(result, 2, '--prompt', '16 个 token', 'block_size=16')
    ok = load_run(trained, '--prompt=' + 'anna' * 3 + 'ann')            # 15 个字符：还剩一个位置
    assert ok.returncode == 0, ok.stderr
    samples = numbered_samples(ok.stdout)
    assert len(samples) == 5 and all(s.startswith('anna' * 3 + 'ann') and len(s) <= 16 for s, _ in samples)


def test_a_prompt_with_a_newline_stays_one_escaped_line(trained):
    """抓错误信息里原样引用了带换行的值、一句“错误：”变成两行（看着像两个错误）的错误。"""
    result = run_script(f'--input_path={trained["data"]}', f'--load_path={trained["ckpt"]}', '--num_steps=0', '--prompt=a\nq')
    assert_clean_failure(result, 2, '--prompt')
    assert '\\n' in result.stderr or 'q' in result.stderr


# ---------------------------------------------------------------------------
# 样本的标签和计数
# ---------------------------------------------------------------------------

def test_sample_labels_and_counts(mg, capsys, monkeypatch):
    """抓留出集里的名字被当成“新”、重复的没标出来、被截断的没标出来、空样本算进“新”、百分比的分母错了的错误。"""
    monkeypatch.setattr(mg, 'terminal_width', lambda: 200)
    samples = ['anna', 'bob', 'zed', 'anna', '', 'zed', 'cleo', 'abcdefghijklmnop']   # 最后一个长 16 = block_size
    tok = mg.Tokenizer(samples)
    labelled = mg.label_samples([tok.encode(s)[1:-1] for s in samples], tok, ['anna', 'bob', 'dora'], ['cleo'])
    assert labelled == [('anna', '训练集里有'), ('bob', '训练集里有'), ('zed', '新'), ('anna', '训练集里有（重复）'),
                        ('', '第一步就抽到了 BOS'), ('zed', '新（重复）'), ('cleo', '留出集里有'),
                        ('abcdefghijklmnop', '新（到了长度上限 block_size，被截断）')]
    mg.print_samples(labelled)
    lines = capsys.readouterr().out.splitlines()[2:]                   # 前两行：空行和“模型编出的 8 个样本……”
    assert [re.match(r'^ +(\d+)\. (\S+) +(\S.*)$', line).groups() for line in lines[:8]] == \
        [(str(i + 1), sample or '（空）', label) for i, (sample, label) in enumerate(labelled)]
    assert lines[8] == '其中训练集里有 3 个，留出集里有 1 个，新的 3 个（38%，去掉重复后是 2 个）。'
    assert lines[9].startswith('留出集里的样本真实存在')


def test_sample_labels_line_up_with_chinese_samples(mg, capsys, monkeypatch):
    """抓按 len 补空格的错误：汉字占两列，汉字样本后面的标签就比英文样本的标签靠右。"""
    monkeypatch.setattr(mg, 'terminal_width', lambda: 80)
    samples = ['明月', 'ab', '床前明月光', '']
    tok = mg.Tokenizer(samples)
    mg.print_samples(mg.label_samples([tok.encode(s)[1:-1] for s in samples], tok, ['明月'], []))
    lines = capsys.readouterr().out.splitlines()[2:6]
    starts = {mg.display_width(line[:re.search(r'(训练集|新|第一步)', line).start()]) for line in lines}
    assert len(starts) == 1


def test_samples_cut_at_block_size_are_marked(data):
    """抓到了长度上限 block_size 的样本没标“被截断”（看着像模型自己决定结束的名字）、或者没到上限的也标了的错误。"""
    result = run_script(f'--input_path={data}', '--num_steps=0', '--block_size=4', '--temperature=3', *SMALL, '--num_samples=10')
    assert result.returncode == 0, result.stderr
    samples = [line for line in result.stdout.splitlines() if re.match(r' +\d+\. ', line)]
    assert samples and all(('被截断' in line) == (len(line.split()[1]) >= 4) for line in samples)
    assert any('被截断' in line for line in samples)


@pytest.mark.parametrize('args, phrase', [(['--num_steps=0', '--temperature=3'], '没有重复'),
                                          (['--num_steps=30', '--learning_rate=10'], '去掉重复后是')])
def test_counts_read_naturally(data, args, phrase):
    """抓说出“新的 5 个（去掉重复后 5 个）”这种绕口的话、或者数错了不重复的个数的错误。"""
    result = run_script(f'--input_path={data}', *SMALL, *args)
    assert result.returncode == 0, result.stderr
    new = [line.split()[1] for line in result.stdout.splitlines() if re.match(r' +\d+\. \S+ +新', line)]
    summary = squash(result.stdout[result.stdout.index('其中训练集里有'):])
    assert phrase in summary
    assert (f'去掉重复后是{len(set(new))}个' in summary) == (len(set(new)) < len(new))
