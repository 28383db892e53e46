"""程序当老师：读数字的提醒 (diagnose)、留出集损失表、样本的标签，以及终端里的排版（进度行、状态行、折行）。"""
import math
import random
import re
import sys
import threading
import time

import pytest

from conftest import NAMES, SMALL, held_out_loss, run_main, squash, write_lines


def notes(stdout):
    """“提醒：”开头的每一段（say() 按终端宽度折了行，这里把一段接回一行，去掉空白）。"""
    paragraphs = re.split(r'\n(?=提醒：)|\n\n', stdout)
    return [squash(p) for p in paragraphs if p.startswith('提醒：')]


def vocab_size(stdout):
    return int(re.search(r'^词表：(\d+) 个 token', stdout, flags=re.M).group(1))


@pytest.fixture
def report(mg, capsys, monkeypatch):
    """report(*args) 调用 print_report(*args)，返回 (它打印的行, 它返回的损失表)。终端宽度固定为 80 列。"""
    monkeypatch.setattr(mg, 'terminal_width', lambda: 80)

    def call(*args):
        rows = mg.print_report(*args)
        return capsys.readouterr().out.splitlines(), rows
    return call


ALPHABET_DOCS = [ch * 3 for ch in 'abcdefghijklmnopqrstuvwxyz'] * 3       # 词表 26 个字母 + BOS = 27


# ---------------------------------------------------------------------------
# 提醒：从头到尾跑一遍
# ---------------------------------------------------------------------------

def test_many_passes_over_tiny_data_warns_about_overfitting(tmp_path):
    """抓小数据练很多遍、留出集损失反而上升时一声不吭（学习者以为模型越练越好）的错误。"""
    data = write_lines(tmp_path / 'n12.txt', '\n'.join(NAMES[:12]) + '\n')
    result = run_main(f'--input_path={data}', '--num_steps=130', *SMALL)
    assert result.returncode == 0, result.stderr
    before, after = held_out_loss(result.stdout, '训练前'), held_out_loss(result.stdout, '训练后')
    assert after > before                                   # 提醒说的情况真的发生了
    found = notes(result.stdout)
    assert any('过拟合' in note and f'（{before:.4f}→{after:.4f}）' in note for note in found)
    assert any('训练把11行训练数据平均看了12遍' in note for note in found)
    assert not any('爆炸' in note for note in found)


@pytest.mark.parametrize('rate', ['1', '10'])
def test_exploding_learning_rate_gets_the_learning_rate_hint(tmp_path, rate):
    """抓两类错误：学习率太大、损失飞到几百时只打印一堆数字，不告诉学习者该把 learning_rate 调小；
    以及损失大到 e^损失 溢出（lr=10）时，打印困惑度抛 OverflowError、或者打印出几百位的数字。"""
    data = write_lines(tmp_path / 'n40.txt', '\n'.join(NAMES) + '\n')
    result = run_main(f'--input_path={data}', '--num_steps=30', f'--learning_rate={rate}', *SMALL)
    assert result.returncode == 0, result.stderr
    after = re.search(r'^  训练后 +(\S+)   困惑度 (\S+)$', result.stdout, flags=re.M).groups()
    assert float(after[0]) > 2 * math.log(vocab_size(result.stdout))
    assert re.fullmatch(r'\d{1,4}\.\d{4}|\d\.\d\de\+\d\d', after[0])           # 不写出几十位的数：太大就用科学记数法
    assert re.fullmatch(r'\d\.\d\de\+\d\d|inf', after[1])
    found = notes(result.stdout)
    assert len(found) == 1 and '爆炸' in found[0] and f'learning_rate调小（现在是{float(rate)}，默认0.01）' in found[0]


def test_held_out_characters_never_seen_in_training_are_reported(mg, tmp_path):
    """抓留出集里有训练集从没出现过的字符（模型不可能学会）时不说明的错误：学习者只看到损失偏高而不知为何。"""
    names = NAMES[:20]
    random.seed(42)                                          # 脚本的默认种子：找出哪几行被留出
    _, val_index = mg.split_docs(list(range(len(names))))
    assert len(val_index) == 2
    names[val_index[0]] = 'boë'                               # ë 只出现在这一行留出的数据里
    data = write_lines(tmp_path / 'n.txt', '\n'.join(names) + '\n')
    result = run_main(f'--input_path={data}', '--num_steps=5', *SMALL)
    assert result.returncode == 0, result.stderr
    assert any('留出集里有1个字符在训练数据里从没出现过（例如ë）' in note for note in notes(result.stdout))


# ---------------------------------------------------------------------------
# diagnose()：用编出来的数字
# ---------------------------------------------------------------------------

def default_like_docs():
    return ['emma', 'olivia'] * (29710 // 2), ['ava', 'liam'] * 100


def test_diagnose_is_silent_for_a_default_like_run(mg):
    """抓门槛设得太紧、默认运行（一切正常）也冒出吓人的提醒的错误。"""
    train_docs, val_docs = default_like_docs()
    assert mg.diagnose(3.33, 2.36, 1000, train_docs, val_docs, 27) == []
    assert mg.diagnose(3.33, 3.33, 0, train_docs, val_docs, 27) == []      # --num_steps=0：没有可评判的训练


def test_diagnose_explosion_comes_alone(mg):
    """抓爆炸时还附带“过拟合”等一串误导的提醒、或者门槛 2·ln V 的边界算错的错误。"""
    train_docs, val_docs = default_like_docs()
    uniform = math.log(27)
    found = mg.diagnose(3.33, 2 * uniform + 0.01, 1000, train_docs, val_docs, 27)
    assert len(found) == 1 and '爆炸' in found[0] and 'learning_rate' in found[0] and f'{uniform:.2f}' in found[0]
    found = mg.diagnose(3.33, 2 * uniform, 500, ['emma', 'olivia'] * 50, ['ava', 'liam'] * 5, 27)   # 刚好不到门槛
    assert not any('爆炸' in note for note in found) and any('过拟合' in note for note in found)


def test_diagnose_does_not_blame_training_when_nothing_was_trained(mg):
    """抓读回一个坏模型、这次根本没训练（num_steps=0）时，还说“训练爆炸了，请调小 learning_rate”的错误。"""
    train_docs, val_docs = default_like_docs()
    assert mg.diagnose(3e299, 3e299, 0, train_docs, val_docs, 27) == []
    assert mg.diagnose(float('nan'), float('nan'), 0, train_docs, val_docs, 27) == []


def test_diagnose_overfitting_when_the_held_out_loss_rose(mg):
    """抓留出集损失上升了却不提醒过拟合、或者把前后两个数字写反的错误。"""
    train_docs, val_docs = ['emma', 'olivia'] * 50, ['ava', 'liam'] * 5      # 500 步 = 5 遍：不算“很多遍”
    found = mg.diagnose(3.0, 3.2, 500, train_docs, val_docs, 27)
    assert len(found) == 1
    assert '比训练前还高' in found[0] and '过拟合' in found[0] and '（3.0000 → 3.2000）' in found[0]


def test_diagnose_held_out_loss_still_worse_than_uniform(mg):
    """抓只比较训练前后、漏掉“练了 20 遍、留出集损失仍比均匀乱猜差”的错误。"""
    train_docs, val_docs = ['emma', 'olivia'] * 15, ['ava', 'liam']
    found = mg.diagnose(4.0, 3.5, 600, train_docs, val_docs, 27)           # ln 27 = 3.2958 < 3.5 < 4.0
    assert any('比均匀乱猜还高' in note and '（4.0000 → 3.5000）' in note for note in found)
    assert any('平均看了 20 遍' in note for note in found)


def test_diagnose_does_not_call_an_undertrained_model_overfitted(mg):
    """抓只训练了 1 步（损失还在下降、只是仍比均匀乱猜高）却说“过拟合：把训练数据背了下来”的错误。"""
    train_docs, val_docs = default_like_docs()
    found = mg.diagnose(3.3281, 3.3060, 1, train_docs, val_docs, 27)    # --num_steps=1 的真实数字
    assert not any('过拟合' in note for note in found)


def test_diagnose_no_learning_names_the_likely_cause(mg):
    """抓模型几乎什么都没学到时不提醒、或者把原因说错（步数太少和学习率太小要分开说）的错误。"""
    train_docs, val_docs = default_like_docs()
    short = mg.diagnose(3.30, 3.29, 20, train_docs, val_docs, 27)
    assert len(short) == 1 and '几乎什么都没学到' in short[0] and '--num_steps=1000' in short[0]
    mg.learning_rate = 1e-6
    slow = mg.diagnose(3.30, 3.29, 1000, train_docs, val_docs, 27)
    assert len(slow) == 1 and '学习率 1e-06 可能太小' in slow[0]


def test_diagnose_many_passes(mg):
    """抓遍数算成 len/steps、或者把边界 10 遍写成 >= 的错误：正好 10 遍不该提醒，13 遍该提醒。"""
    train, val = ['ab'] * 30, ['ab'] * 3
    assert mg.diagnose(3.3, 3.0, 300, train, val, 27) == []
    found = mg.diagnose(3.3, 3.0, 400, train, val, 27)
    assert len(found) == 1 and '30 行训练数据平均看了 13 遍' in found[0]


def test_diagnose_unseen_characters(mg):
    """抓把训练集和留出集的字符比反了（报告训练集独有的字符）、或者列了重复的字符的错误。"""
    found = mg.diagnose(3.3, 3.0, 10, ['zoe', 'ann', 'bob', 'qed'] * 10, ['zoë', 'ëë', 'ñoë'], 30)
    assert len(found) == 1 and '留出集里有 2 个字符' in found[0] and '（例如 ëñ）' in found[0]


# ---------------------------------------------------------------------------
# 留出集损失表和样本
# ---------------------------------------------------------------------------

def test_loss_table_reads_the_numbers(mg, report):
    """抓困惑度和损失对不上（不是 e^损失）、对照行缺了、中文标签让数字列错开、或者终端的表和网页用的表不一样的错误。"""
    lines, rows = report(3.3, [3.3, 3.0, 2.7], 2.5, ALPHABET_DOCS, ['abc', 'xyz'], mg.Tokenizer(ALPHABET_DOCS), False)
    start = lines.index('留出验证集上的平均损失（每个 token 位置；困惑度 = e^损失）：') + 1
    table = lines[start:start + 4]
    assert [label for label, _ in rows] == ['训练前', '训练后', '对照：均匀猜测 ln(27)', '对照：二元语法模型']
    for line, (label, value) in zip(table, rows):
        shown, ppl = re.fullmatch(rf'  {re.escape(label)} +(\d+\.\d{{4}})   困惑度 (\d+\.\d)', line).groups()
        assert shown == f'{value:.4f}' and ppl == f'{math.exp(value):.1f}'
    assert rows[2][1] == math.log(27) and '3.2958   困惑度 27.0' in table[2]
    assert len({mg.display_width(line[:re.search(r'\d+\.\d{4}', line).start()]) for line in table}) == 1
    assert squash('困惑度 12.2：相当于模型每一步在约 12 个字符里犹豫（均匀猜测是在全部 27 个里犹豫）。') \
        in squash('\n'.join(lines[start + 4:]))


def test_loss_table_survives_a_huge_loss(mg, report):
    """抓损失 4340 时 math.exp 溢出（OverflowError）、或者把困惑度写成几百位数字的错误：写成 inf 并说明为什么。"""
    lines, rows = report(3.2, [3.2, 900.0, 4000.0], 4340.66, ALPHABET_DOCS, ['abc'], mg.Tokenizer(ALPHABET_DOCS), False)
    assert '  训练后                 4340.6600   困惑度 inf' in lines
    assert squash('困惑度 inf：损失太大') in squash('\n'.join(lines))
    lines, rows = report(3.2, [3.2, 9e5], 3e5, ALPHABET_DOCS, ['abc'], mg.Tokenizer(ALPHABET_DOCS), False)
    assert '  训练后                 3.00e+05   困惑度 inf' in lines
    assert max(len(word) for line in lines for word in line.split()) < 40


def test_loss_table_without_training(mg, report):
    """抓 --num_steps=0 时仍打印“训练前 / 训练后”两行相同的数（让人以为训练了却没进步）的错误；
    读回的模型要说它训练过、只是这次没再训练。"""
    tok = mg.Tokenizer(ALPHABET_DOCS)
    lines, rows = report(3.3, [], 3.3, ALPHABET_DOCS, ['abc'], tok, False)
    assert rows[0] == ('没有训练的模型（随机参数）', 3.3) and len(rows) == 3
    assert not any(line.startswith(('  训练前', '  训练后')) for line in lines)
    assert not any('训练损失曲线' in line for line in lines)
    lines, rows = report(2.36, [], 2.36, ALPHABET_DOCS, ['abc'], tok, True)
    assert rows[0] == ('读回的模型（这次没再训练）', 2.36)


def test_no_held_out_data_skips_the_table(mg, report):
    """抓留出集为空时还去算损失（0/0）的错误：说明为什么跳过，返回空表。"""
    lines, rows = report(None, [3.3, 3.0], None, ALPHABET_DOCS, [], mg.Tokenizer(ALPHABET_DOCS), False)
    assert rows == [] and squash('没有留出验证集') in squash('\n'.join(lines))


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
    lines = capsys.readouterr().out.splitlines()
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
    lines = capsys.readouterr().out.splitlines()[:4]
    starts = {mg.display_width(line[:re.search(r'(训练集|新|第一步)', line).start()]) for line in lines}
    assert len(starts) == 1


# ---------------------------------------------------------------------------
# 终端里的排版
# ---------------------------------------------------------------------------

@pytest.mark.parametrize('width', [40, 60])
def test_progress_line_never_reaches_the_terminal_width(mg, monkeypatch, capsys, width):
    """抓进度行写满终端最后一列（很多终端会自动换行，之后每次刷新都多出一行）、或者短行没补空格留下残字的错误。"""
    monkeypatch.setattr(mg, 'terminal_width', lambda: width)
    monkeypatch.setattr(sys.stdout, 'isatty', lambda: True)
    mg.log_every = 0
    progress = mg.Progress(1000)
    progress.update(1, 12.3456, 0.01)
    progress.update(1000, 2.3456, 0.00001)
    out = capsys.readouterr().out
    drawn = [part.rstrip('\n') for part in out.split('\r') if part]
    assert len(drawn) == 2 and out.endswith('\n')
    for line in drawn:
        assert mg.display_width(line) == width - 1          # 补了空格盖住之前更长的一行，但永远不写满
        assert line.startswith('步 ') and 'loss ' in line   # 最重要的几项留了下来
    assert ('平滑' in drawn[0]) == (width == 60)


def test_slow_work_gets_a_status_line_that_fits_the_terminal(mg, monkeypatch, capsys):
    """抓两类错误：费时的评估、采样一声不吭（像死机）；以及状态行按字符数截断，汉字占两列，窄终端里写满一行。
    做得快的事不打印状态行，结果照常返回。"""
    assert mg.slow('在留出集上评估', lambda x: x + 1, 41) == 42
    assert capsys.readouterr().out == ''                     # 不到 1 秒：什么都不说
    real_timer = threading.Timer
    monkeypatch.setattr(threading, 'Timer', lambda seconds, *rest: real_timer(0.01, *rest))   # “1 秒”缩成 0.01 秒
    monkeypatch.setattr(mg, 'terminal_width', lambda: 24)
    assert mg.slow('在留出集上评估训练后的模型', lambda: time.sleep(0.3) or 'done') == 'done'
    lines = capsys.readouterr().out.splitlines()
    assert lines and all(mg.display_width(line) < 24 for line in lines)
    assert squash(''.join(lines)) == '在留出集上评估训练后的模型……'


def test_wrap_stays_within_the_width_and_never_splits_a_word(mg):
    """抓按字符数（len）折行（汉字占两列）、把一个设置或命令从中间劈开、还放得下就提前换行、
    或者把“，。）”这样的标点留到下一行开头的错误。"""
    items = [f'{name}={value}' for name, value in mg.SETTINGS.items()] + ['input_path=/中文/数据.txt*']
    text = '设置：' + '  '.join(items)
    for width in range(34, 101):                              # 最宽的一项连同缩进是 33 列
        lines = mg.wrap(text, width, ' ' * 6)
        assert all(mg.display_width(line) <= width for line in lines)
        assert ' '.join(' '.join(lines).replace('设置：', '').split()) == ' '.join(items)
        assert all(line.startswith(' ' * 6) and line[6] != ' ' for line in lines[1:])
        for line, following in zip(lines, lines[1:]):       # 只有放不下下一项时才换行
            assert mg.display_width(line) + 2 + mg.display_width(following.split()[0]) > width
    sentence = '下次可以用这条命令读回它：python3 microgpt_teaching.py --load_path=m.json，训练后的损失是 2.3598。' \
               '数据不同时要加上 --input_path=我的名字.txt（文件名里的中文也不能拆开）。'
    for width in range(25, 80):
        lines = mg.wrap(sentence, width)
        assert squash(''.join(lines)) == squash(sentence)
        for word in ('python3', 'microgpt_teaching.py', '--load_path=m.json，', '2.3598。', '--input_path=我的名字.txt'):
            assert any(word in line for line in lines), (width, word, lines)
        assert not any(line.startswith(('，', '。', '）', '：')) for line in lines)
        assert all(mg.display_width(line) <= width for line in lines)


# ---------------------------------------------------------------------------
# 错误信息里的长词表
# ---------------------------------------------------------------------------

def test_huge_vocabulary_is_shown_cut_short(mg):
    """抓几千个汉字的词表整个塞进一行错误信息、真正的提示被淹没的错误：只列前 60 个，后面加“…”。"""
    chars = [chr(0x4e00 + i) for i in range(100)]
    assert mg.shown_chars(chars) == ''.join(chars[:60]) + '…' and mg.shown_chars(chars[:60]) == ''.join(chars[:60])
    mg.prompt = 'ab'
    with pytest.raises(mg.UserError) as info:
        mg.check_inputs(chars, [], mg.Tokenizer(chars), None)
    message = str(info.value)
    assert '--prompt 里有模型不认识的字符 ab。' in message and message.endswith(''.join(chars[:60]) + '…')
    assert info.value.exit_code == 2
    mg.prompt, mg.explain = '', 'abz'
    with pytest.raises(mg.UserError) as info:
        mg.check_inputs(['abc'], [], mg.Tokenizer(['abc']), None)
    assert str(info.value).endswith('字符 z。模型认识的字符是：abc') and info.value.exit_code == 2
