"""The program as a teacher: the notes that read the numbers, sample labels, terminal width, limits."""
import math
import random
import re
import sys

import pytest

from conftest import ROOT, run_script, write_lines

SMALL = ('--n_embd=8', '--n_head=2', '--num_samples=5')
NAMES30 = ['anna', 'bob', 'carla', 'dora', 'eve', 'fay', 'gus', 'hal', 'ivy', 'jo', 'kim', 'lu', 'mia', 'ned', 'ola',
           'pam', 'ray', 'sam', 'tia', 'uma', 'val', 'wes', 'xia', 'yan', 'zoe', 'abe', 'ben', 'cat', 'dan', 'eli']
NAMES40 = NAMES30 + ['finn', 'gil', 'hana', 'ian', 'jade', 'kai', 'leo', 'max', 'nia', 'otto']


def held_out(stdout, label):
    return float(re.search(rf'^  {label} +(\d+\.\d+) ', stdout, flags=re.M).group(1))


def vocab_size(stdout):
    return int(re.search(r'^词表：(\d+) 个 token', stdout, flags=re.M).group(1))


def notes(stdout):
    return [line for line in stdout.splitlines() if line.startswith('提醒：')]


# ---------------------------------------------------------------------------
# the notes, end to end
# ---------------------------------------------------------------------------

def test_many_passes_over_tiny_data_warns_about_overfitting(tmp_path):
    """抓的 bug：小数据练很多遍、留出集损失反而上升时一声不吭，学习者以为模型越练越好。"""
    data = write_lines(tmp_path / 'n30.txt', '\n'.join(NAMES30) + '\n')
    result = run_script(f'--input_path={data}', '--num_steps=300', *SMALL)
    assert result.returncode == 0, result.stderr
    before, after = held_out(result.stdout, '训练前'), held_out(result.stdout, '训练后')
    assert after > before                                   # the situation the note is about really happened
    found = notes(result.stdout)
    assert any('过拟合' in note and f'{before:.4f} → {after:.4f}' in note for note in found)
    assert any('27 行训练数据平均看了 11 遍' in note for note in found)
    assert not any('爆炸' in note for note in found)


def test_exploding_learning_rate_gets_the_learning_rate_hint(tmp_path):
    """抓的 bug：学习率太大、损失飞到几百时只打印一堆数字，不告诉学习者该把 learning_rate 调小。"""
    data = write_lines(tmp_path / 'n40.txt', '\n'.join(NAMES40) + '\n')
    result = run_script(f'--input_path={data}', '--num_steps=30', '--learning_rate=1', *SMALL)
    assert result.returncode == 0, result.stderr
    after, size = held_out(result.stdout, '训练后'), vocab_size(result.stdout)
    assert after > 2 * math.log(size)
    found = notes(result.stdout)
    assert len(found) == 1
    assert '爆炸' in found[0] and 'learning_rate' in found[0] and '现在是 1.0，默认 0.01' in found[0]


def test_learning_rate_10_explodes_without_a_traceback(tmp_path):
    """抓的 bug：损失大到 e^损失 溢出时，打印困惑度那一行抛 OverflowError，程序带着回溯崩掉，提醒也看不到。"""
    data = write_lines(tmp_path / 'n40.txt', '\n'.join(NAMES40) + '\n')
    result = run_script(f'--input_path={data}', '--num_steps=30', '--learning_rate=10', *SMALL)
    assert 'Traceback' not in result.stderr and result.returncode == 0
    assert held_out(result.stdout, '训练后') > 2 * math.log(vocab_size(result.stdout))
    assert any('learning_rate' in note for note in notes(result.stdout))


def test_print_losses_survives_a_huge_loss(mg, capsys):
    """抓的 bug：同上，直接调 print_losses：损失 4340 时 math.exp 溢出。"""
    mg.print_losses(3.2, 4340.66, 2.77, 25, True)
    assert '4340.6600' in capsys.readouterr().out


def test_held_out_characters_never_seen_in_training_are_reported(mg, tmp_path):
    """抓的 bug：留出集里有训练集从没出现过的字符（模型不可能学会）时不说明，学习者只看到损失偏高而不知为何。"""
    names = NAMES30[:20]
    random.seed(42)                                          # the script's default seed: find which lines are held out
    _, val_index = mg.split_docs(list(range(len(names))))
    assert len(val_index) == 2
    names[val_index[0]] = 'boë'                               # ë appears only in this held-out line
    data = write_lines(tmp_path / 'n.txt', '\n'.join(names) + '\n')
    result = run_script(f'--input_path={data}', '--num_steps=5', *SMALL)
    assert result.returncode == 0, result.stderr
    assert any('留出集里有 1 个字符在训练数据里从没出现过（例如 ë）' in note for note in notes(result.stdout))


# ---------------------------------------------------------------------------
# diagnose() with made-up numbers
# ---------------------------------------------------------------------------

def default_like_docs():
    return ['emma', 'olivia'] * (29710 // 2), ['ava', 'liam'] * 100


def test_diagnose_is_silent_for_a_default_like_run(mg):
    """抓的 bug：门槛设得太紧，默认运行（一切正常）也冒出吓人的提醒。"""
    train_docs, val_docs = default_like_docs()
    assert mg.diagnose(3.33, 2.36, 1000, train_docs, val_docs, 27) == []
    assert mg.diagnose(3.33, 3.33, 0, train_docs, val_docs, 27) == []      # --num_steps=0: nothing to judge


def test_diagnose_explosion_comes_alone(mg):
    """抓的 bug：爆炸时还附带“过拟合”等一串误导的提醒；或者门槛 2·ln V 的边界算错。"""
    train_docs, val_docs = default_like_docs()
    uniform = math.log(27)
    found = mg.diagnose(3.33, 2 * uniform + 0.01, 1000, train_docs, val_docs, 27)
    assert len(found) == 1 and '爆炸' in found[0] and 'learning_rate' in found[0] and f'{uniform:.2f}' in found[0]
    found = mg.diagnose(3.33, 2 * uniform, 500, ['emma', 'olivia'] * 50, ['ava', 'liam'] * 5, 27)   # just below
    assert not any('爆炸' in note for note in found) and any('过拟合' in note for note in found)


def test_diagnose_overfitting_when_the_held_out_loss_rose(mg):
    """抓的 bug：留出集损失上升了却不提醒过拟合，或者把前后两个数字写反。"""
    train_docs, val_docs = ['emma', 'olivia'] * 50, ['ava', 'liam'] * 5      # 500 steps = 5 passes: not "many"
    found = mg.diagnose(3.0, 3.2, 500, train_docs, val_docs, 27)
    assert len(found) == 1
    assert '比训练前还高' in found[0] and '过拟合' in found[0] and '（3.0000 → 3.2000）' in found[0]


def test_diagnose_held_out_loss_still_worse_than_uniform(mg):
    """抓的 bug：只比较训练前后，漏掉“练了 20 遍、留出集损失仍比均匀乱猜差”的情况。"""
    train_docs, val_docs = ['emma', 'olivia'] * 15, ['ava', 'liam']
    found = mg.diagnose(4.0, 3.5, 600, train_docs, val_docs, 27)           # ln 27 = 3.2958 < 3.5 < 4.0
    assert any('比均匀乱猜还高' in note and '（4.0000 → 3.5000）' in note for note in found)
    assert any('平均看了 20 遍' in note for note in found)


def test_diagnose_does_not_call_an_undertrained_model_overfitted(mg):
    """抓的 bug：只训练了 1 步（损失还在下降、只是仍比均匀乱猜高），却说“过拟合：把训练数据背了下来”。"""
    train_docs, val_docs = default_like_docs()
    found = mg.diagnose(3.3281, 3.3060, 1, train_docs, val_docs, 27)    # the real numbers of --num_steps=1
    assert not any('过拟合' in note for note in found)


def test_diagnose_many_passes(mg):
    """抓的 bug：遍数算成 len/steps，或者边界 10 遍写成 >=：正好 10 遍不该提醒，13 遍该提醒。"""
    train, val = ['ab'] * 30, ['ab'] * 3
    assert mg.diagnose(3.3, 3.0, 300, train, val, 27) == []
    found = mg.diagnose(3.3, 3.0, 400, train, val, 27)
    assert len(found) == 1 and '30 行训练数据平均看了 13 遍' in found[0]


def test_diagnose_unseen_characters(mg):
    """抓的 bug：把训练集和留出集的字符比反了（报告训练集独有的字符），或者列了重复的字符。"""
    found = mg.diagnose(3.3, 3.0, 10, ['zoe', 'ann', 'bob', 'qed'] * 10, ['zoë', 'ëë', 'ñoë'], 30)
    assert found == [note for note in found if '从没出现过' in note] and len(found) == 1
    assert '留出集里有 2 个字符' in found[0] and '（例如 ëñ）' in found[0]


# ---------------------------------------------------------------------------
# the losses table and the samples
# ---------------------------------------------------------------------------

def test_print_losses_reads_the_numbers(mg, capsys):
    """抓的 bug：困惑度和损失对不上（不是 e^损失），对照行缺了，或者中文标签让数字列错开。"""
    mg.print_losses(3.3, 2.5, 2.8, 27, True)
    lines = capsys.readouterr().out.splitlines()
    table = {re.match(r'  (\S+)', line).group(1): line for line in lines[1:5]}
    assert sorted(table) == ['对照：二元语法模型', '对照：均匀猜测', '训练前', '训练后']
    for line in lines[1:5]:
        value, ppl = re.search(r'(\d+\.\d{4})   困惑度 (\d+\.\d)$', line).groups()
        assert ppl == f'{math.exp(float(value)):.1f}'
    assert '3.2958   困惑度 27.0' in table['对照：均匀猜测']
    columns = {mg.display_width(line[:re.search(r'\d+\.\d{4}', line).start()]) for line in lines[1:5]}
    assert len(columns) == 1
    assert '在约 12 个字符里犹豫' in lines[5] and '全部 27 个' in lines[5]


def test_print_losses_without_training(mg, capsys):
    """抓的 bug：--num_steps=0 时仍打印“训练前 / 训练后”两行相同的数，让人以为训练了却没进步。"""
    mg.print_losses(3.3, 3.3, 2.8, 27, False)
    out = capsys.readouterr().out
    assert '没有训练的模型（随机参数）' in out and '训练前' not in out and '训练后 ' not in out
    mg.load_path = 'model.json'                      # 读回的模型：标签要说它训练过，只是这次没再训练
    mg.print_losses(2.36, 2.36, 2.44, 27, False)
    assert '读回的模型（这次没再训练）' in capsys.readouterr().out


def test_sample_labels_and_counts(mg, capsys):
    """抓的 bug：留出集里的名字被当成“新”、重复的没标出来、空样本算进“新”、百分比的分母错了。"""
    samples = ['anna', 'bob', 'zed', 'anna', '', 'zed', 'cleo']
    mg.print_samples(samples, ['anna', 'bob', 'dora'], ['cleo'])
    lines = capsys.readouterr().out.splitlines()
    labels = [re.match(r'^ +(\d+)\. (\S+) +(\S.*)$', line).groups() for line in lines[:-2]]
    assert labels == [('1', 'anna', '训练集里有'), ('2', 'bob', '训练集里有'), ('3', 'zed', '新'),
                      ('4', 'anna', '训练集里有（重复）'), ('5', '（空）', '第一步就抽到了 BOS'),
                      ('6', 'zed', '新（重复）'), ('7', 'cleo', '留出集里有')]
    assert lines[-2] == '其中训练集里有 3 个，留出集里有 1 个，新的 2 个（29%，其中 1 个互不相同）。'
    assert lines[-1].startswith('留出集里的样本真实存在')


def test_sample_labels_line_up_with_chinese_samples(mg, capsys):
    """抓的 bug：按 len 补空格，汉字样本后面的标签就比英文样本的标签靠右。"""
    mg.print_samples(['明月', 'ab', '床前明月光', ''], ['明月'], [])
    lines = capsys.readouterr().out.splitlines()[:-1]
    starts = {mg.display_width(line[:re.search(r'(训练集|新|第一步)', line).start()]) for line in lines}
    assert len(starts) == 1


# ---------------------------------------------------------------------------
# terminal width
# ---------------------------------------------------------------------------

@pytest.mark.parametrize('width', [40, 60])
def test_progress_line_never_reaches_the_terminal_width(mg, monkeypatch, capsys, width):
    """抓的 bug：进度行写满终端最后一列（很多终端会自动换行，之后每次刷新都多出一行），或者短行没补空格留下残字。"""
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
        assert mg.display_width(line) == width - 1          # padded to clear a longer earlier line, never full
        assert line.startswith('步 ') and 'loss ' in line   # the most important fields survive
    assert ('平滑' in drawn[0]) == (width == 60)


def test_status_line_never_reaches_the_terminal_width(mg, monkeypatch, capsys):
    """抓的 bug：“训练前，在留出集上评估”的状态行按字符数截断，汉字占两列，窄终端里照样写满一行。"""
    monkeypatch.setattr(mg, 'terminal_width', lambda: 24)
    monkeypatch.setattr(sys.stdout, 'isatty', lambda: True)
    monkeypatch.setattr(mg.Status, 'QUIET_SECONDS', 0.0)
    status = mg.Status('训练前，在留出集上评估', 200, '行')
    status.update(150)
    drawn = [part for part in capsys.readouterr().out.split('\r') if part]
    assert drawn and all(mg.display_width(line) < 24 for line in drawn)


def test_wrap_items_stays_within_the_width(mg):
    """抓的 bug：设置列表按字符数（len）换行、把一个设置从中间劈开，或者还放得下就提前换行，窄终端里概况一团乱。"""
    items = [f'{name}={value}' for name, value in mg.SETTINGS.items()] + ['input_path=/中文/数据.txt*']
    for width in range(40, 101):
        lines = mg.wrap_items('设置：', items, width)
        assert all(mg.display_width(line) <= width for line in lines)
        assert ' '.join(' '.join(lines).replace('设置：', '').split()) == ' '.join(items)
        assert all(mg.display_width(line[:len(line) - len(line.lstrip())]) == 6 for line in lines[1:])
        for line, following in zip(lines, lines[1:]):       # a line ends only when the next item does not fit
            assert mg.display_width(line) + 2 + mg.display_width(following.split()[0]) > width


# ---------------------------------------------------------------------------
# limits and messages
# ---------------------------------------------------------------------------

@pytest.mark.parametrize('value', ['0', '0.0005'])
def test_temperature_too_small_gives_the_same_message(value):
    """抓的 bug：只挡住 temperature=0，挡不住 0.0005；logits / 0.0005 在 exp 里溢出，程序在采样时才崩。"""
    result = run_script(f'--temperature={value}', '--num_steps=0', '--num_samples=1', '--val_size=0')
    assert result.returncode == 2 and 'Traceback' not in result.stderr and result.stdout == ''
    assert 'temperature' in result.stderr and '至少是 0.001' in result.stderr


def test_smallest_allowed_temperature_samples_without_overflow(tmp_path):
    """抓的 bug：下限 0.001 本身也会溢出（softmax 没有先减最大值），允许的值却让程序崩溃。"""
    data = write_lines(tmp_path / 'n.txt', '\n'.join(NAMES30) + '\n')
    result = run_script(f'--input_path={data}', '--temperature=0.001', '--num_steps=0', *SMALL)
    assert result.returncode == 0, result.stderr
    assert 'temperature=0.001' in result.stdout


def test_missing_data_file_names_the_folder_that_was_searched(tmp_path):
    """抓的 bug：命令行里的相对路径按脚本所在文件夹去找，报错时又不说去哪里找了，学习者不知道错在哪。"""
    result = run_script('--input_path=nope.txt', cwd=str(tmp_path))
    assert result.returncode == 1 and 'Traceback' not in result.stderr
    assert 'nope.txt' in result.stderr and ROOT not in result.stderr.replace(str(tmp_path.resolve()), '')
    assert str(tmp_path.resolve()) in result.stderr and '--input_path' in result.stderr


def test_long_line_warning_suggests_a_block_size(tmp_path):
    """抓的 bug：长行被悄悄截断；或者建议的 block_size 少算了结尾的 BOS，照着改了还是不够。"""
    lines = NAMES30[:10] + ['a' * 20, 'b' * 17]
    data = write_lines(tmp_path / 'long.txt', '\n'.join(lines) + '\n')
    warned = run_script(f'--input_path={data}', '--num_steps=0', '--num_samples=0', '--n_embd=8', '--n_head=2')
    assert warned.returncode == 0, warned.stderr
    assert '有 2 行' in warned.stdout and '--block_size=21' in warned.stdout
    fixed = run_script(f'--input_path={data}', '--num_steps=0', '--num_samples=0', '--n_embd=8', '--n_head=2',
                       '--block_size=21')
    assert fixed.returncode == 0 and '超过上下文长度' not in fixed.stdout


def test_huge_vocabulary_is_shown_cut_short(mg):
    """抓的 bug：几千个汉字的词表整个塞进一行错误信息，真正的提示被淹没。"""
    chars = [chr(0x4e00 + i) for i in range(100)]
    tok = mg.Tokenizer(chars)
    with pytest.raises(mg.UserError) as info:
        mg.check_text_fits('prompt', 'ab', tok)
    message = str(info.value)
    assert "'ab'" in message and ''.join(chars[:mg.MAX_SHOWN_CHARS]) + '…' in message
    assert chars[mg.MAX_SHOWN_CHARS] not in message
    tok = mg.Tokenizer(['abc'])
    with pytest.raises(mg.UserError) as info:
        mg.check_text_fits('explain', 'abz', tok)
    assert str(info.value).endswith('abc') and info.value.exit_code == 2
