"""第 10 节：看模型内部。模型在每个位置预测什么、注意力在看哪里（--explain），二元语法对照和困惑度，
训练损失曲线，留出集损失表，读数字的提醒 (diagnose)，以及终端里怎么显示用户的文字（控制字符、很长的词表）。"""
import math
import random
import re
import sys

import pytest

from conftest import (NAMES, SMALL, assert_clean_failure, assert_nothing_raw, held_out_loss, notes, run_main, run_script,
                      squash, tiny_model, write_lines)

POEMS = ['床前明月光', '疑是地上霜', '举头望明月', '低头思故乡']


def model_for(mg, docs, block_size=8):
    """和 conftest 的 tiny_model 一样（2 层、2 个头、种子 11、权重放大 5 倍，预测和注意力都远不是均匀的），
    只是词表来自 docs，n_embd=8。返回 (分词器, state)。"""
    return tiny_model(mg, n_embd=8, block_size=block_size, docs=docs)


def direct_softmax(logits):
    z = [x.data for x in logits]
    exps = [math.exp(v - max(z)) for v in z]
    return [e / sum(exps) for e in exps]


def grid_blocks(lines):
    """explain 报告里的每一张注意力表：(标题, 表头, 各行)。"""
    blocks = []
    for i, line in enumerate(lines):
        if re.match(r'第 \d+ 层第 \d+ 个头的注意力', line):
            rows = []
            for row in lines[i + 2:]:
                if not row or row.startswith('（'):
                    break
                rows.append(row)
            blocks.append((line, lines[i + 1], rows))
    return blocks


# ---------------------------------------------------------------------------
# --explain：逐位置的预测和注意力
# ---------------------------------------------------------------------------

def explained(mg, state, tok, text):
    """explain_text 的预测和注意力：(predictions, attention)。"""
    ex = mg.explain_text(state, tok, text)
    return ex['predictions'], ex['attention']


def test_explain_probabilities_are_the_softmax_of_the_model_logits(mg):
    """抓 explain 用了带温度的概率、错一位的 logits（位置 pos 配成 pos+1 的目标）、或者没清空 KV 缓存的错误。"""
    tok, state = tiny_model(mg, n_embd=8)
    text = 'cabbac'
    predictions, _ = explained(mg, state, tok, text)
    tokens = tok.encode(text)
    assert len(predictions) == len(text) + 1
    keys, values = [[] for _ in range(mg.n_layer)], [[] for _ in range(mg.n_layer)]
    for pos, (probs, target) in enumerate(predictions):
        expected = direct_softmax(mg.gpt(state, tokens[pos], pos, keys, values))
        assert probs == pytest.approx(expected, abs=1e-12)
        assert sum(probs) == pytest.approx(1.0, abs=1e-12)
        assert target == tokens[pos + 1]


def test_explain_report_rank_probability_and_average_loss(mg):
    """抓排名差一（写成 sum(p >= ...)）、显示的概率不是真实字符的、平均损失和训练用的损失不一致的错误。"""
    tok, state = tiny_model(mg, n_embd=8)
    text = 'cabbac'
    predictions, _ = explained(mg, state, tok, text)
    lines = mg.explain_report(mg.explain_text(state, tok, text), mg.token_names(tok))
    shown = re.findall(r'^位置 (\d+)：.*真实的下一个是 (\S)：概率 ([\d.]+)%，排第 (\d+)，损失 ([\d.]+)$',
                       '\n'.join(lines), flags=re.M)
    assert len(shown) == len(predictions)
    ranks = []
    for (pos, char, percent, rank, loss), (probs, target) in zip(shown, predictions):
        by_probability = sorted(range(len(probs)), key=lambda i: probs[i], reverse=True)
        ranks.append(by_probability.index(target) + 1)
        assert int(rank) == ranks[-1]
        assert char == ('.' if target == tok.bos else tok.chars[target])
        assert percent == f'{100 * probs[target]:.1f}' and loss == f'{-math.log(probs[target]):.2f}'
    assert any(r > 1 for r in ranks) and 1 in ranks            # 两种情况都真的出现了
    losses = mg.doc_losses(state, tok.encode(text))
    average = sum(l.data for l in losses) / len(losses)
    assert f'平均损失 {average:.4f}（{len(text) + 1} 个位置）' in lines


def test_attention_rows_are_the_weights_the_forward_pass_used(mg, monkeypatch):
    """抓记录的注意力是别的数（没归一化的分数、另一层或另一个头的）、或者能看到未来的位置的错误。"""
    tok, state = tiny_model(mg, n_embd=8)
    recorded = []
    real_softmax = mg.softmax

    def recording_softmax(logits):
        out = real_softmax(logits)
        recorded.append([p.data for p in out])
        return out
    monkeypatch.setattr(mg, 'softmax', recording_softmax)
    predictions, attention = explained(mg, state, tok, 'cabbac')
    expected = []
    for pos, heads in enumerate(attention):
        assert len(heads) == mg.n_layer * mg.n_head
        for row in heads:
            assert len(row) == pos + 1                         # 自己和之前的位置，没有以后的
            assert sum(row) == pytest.approx(1.0, abs=1e-12)
        expected += heads + [predictions[pos][0]]              # 每个位置：各层各头的注意力，然后是输出
    assert recorded == expected
    assert max(max(row) for heads in attention[1:] for row in heads) > 0.6   # 不只是均匀的


def test_attention_grid_shows_the_same_numbers(mg):
    """抓注意力表的行列错位（转置、层和头对调）、打印的百分比和真实权重对不上的错误。"""
    tok, state = tiny_model(mg, n_embd=8)
    _, attention = explained(mg, state, tok, 'cab')
    blocks = grid_blocks(mg.explain_report(mg.explain_text(state, tok, 'cab'), mg.token_names(tok)))
    assert len(blocks) == mg.n_layer * mg.n_head
    for index, (title, header, rows) in enumerate(blocks):
        layer, head = map(int, re.findall(r'\d+', title)[:2])
        assert layer * mg.n_head + head == index
        assert header.split() == ['.', 'c', 'a', 'b']
        for pos, row in enumerate(rows):
            numbers = [int(n) for n in re.findall(r'\d+', row[5:])]
            assert numbers == [round(100 * w) for w in attention[pos][index]]


def test_explain_consumes_no_random_numbers(mg):
    """抓 explain 里调用了采样（或 random）的错误：加上 --explain 之后，编出的名字就变了。"""
    tok, state = tiny_model(mg, n_embd=8)
    random.seed(123)
    before = random.getstate()
    mg.explain_report(mg.explain_text(state, tok, 'cabbac'), mg.token_names(tok))
    assert random.getstate() == before


def test_explain_refuses_probabilities_that_are_not_finite(mg):
    """抓参数溢出时 explain 打印出 nan% 的表、或者在 log(0) 处崩溃的错误：概率不是有限的数时抛 ValueError
    （主程序把它变成一句说明该怪谁的话）。"""
    tok, state = tiny_model(mg, n_embd=8)
    for row in state['lm_head']:
        for p in row:
            p.data = float('inf')
    with pytest.raises(ValueError):
        mg.explain_report(mg.explain_text(state, tok, 'cab'), mg.token_names(tok))


def test_explain_with_unknown_characters_lists_the_known_ones(tmp_path):
    """抓 --explain 里有词表外的字符时 encode 抛 KeyError 回溯的错误：说出不认识的字符和认识的字符。"""
    data = write_lines(tmp_path / 'n.txt', '\n'.join(['anna', 'bob', 'carla'] * 4) + '\n')
    result = run_main(f'--input_path={data}', '--explain=Zob', '--num_steps=0', '--n_embd=8', '--n_head=2')
    assert_clean_failure(result, 2, '--explain 里有模型不认识的字符 Z。', '字符：abclnor')


def test_explain_on_the_command_line(mg, tmp_path):
    """抓 --explain 在 --num_steps=0 时不打印、打印的位置数不对、或者长的说明行超出 80 列终端（没有折行）的错误。"""
    data = write_lines(tmp_path / 'n.txt', '\n'.join(['anna', 'bob', 'carla'] * 4) + '\n')
    text = 'carlaannabob' * 2 + 'a'                             # 25 个字符：“位置 ……”那几行比 80 列长
    result = run_main(f'--input_path={data}', f'--explain={text}', '--num_steps=0', '--n_embd=8', '--n_head=2',
                      '--block_size=32', '--num_samples=0')
    assert result.returncode == 0, result.stderr
    assert f"模型怎么读 '{text}'" in result.stdout
    assert re.findall(r'^位置 (\d+)：', result.stdout, flags=re.M) == [str(pos) for pos in range(26)]
    assert result.stdout.count('个头的注意力') == 2
    report = result.stdout[result.stdout.index('模型怎么读'):].splitlines()
    assert max(mg.display_width(line) for line in report) <= 79
    assert any(line.startswith('    ') and '%' not in line and not line.startswith('     ') for line in report)   # 折过行


@pytest.mark.parametrize('length, note', [(7, False), (8, True), (11, True)])
def test_long_text_is_explained_for_block_size_positions(mg, length, note):
    """抓比 block_size 长的文字让 wpe 越界（IndexError）、或者正好放得下时也说“太长”（差一）的错误。"""
    tok, state = tiny_model(mg, n_embd=8)
    text = ('cab' * 4)[:length]
    predictions, attention = explained(mg, state, tok, text)
    assert len(predictions) == len(attention) == 8
    assert predictions[-1][1] == (tok.bos if length == 7 else tok.char_to_id[text[7]])   # 位置 7 预测第 8 个 token
    lines = mg.explain_report(mg.explain_text(state, tok, text), mg.token_names(tok))
    assert any('只看前 8 个位置' in line for line in lines) == note
    assert len([line for line in lines if line.startswith('位置 ')]) == 8


def test_explain_in_chinese_lines_up_by_display_width(mg):
    """抓按字符数（len）对齐的错误：一个汉字占两列，注意力表的格子就和表头的字错开了。"""
    tok, state = model_for(mg, POEMS)
    lines = mg.explain_report(mg.explain_text(state, tok, '床前明月光'), mg.token_names(tok))
    assert lines[0].startswith("模型怎么读 '床前明月光'")
    blocks = grid_blocks(lines)
    assert len(blocks) == mg.n_layer * mg.n_head
    for title, header, rows in blocks:
        assert header.split() == ['.', '床', '前', '明', '月', '光']
        cols = len(header.split())
        assert mg.display_width(header) == 5 + 4 * cols
        for j, label in enumerate(header.split()):              # 每个表头的字都结束在自己那一格（4 列）的末尾
            prefix = header[:header.index(label) + 1] if j else header[:header.index('.') + 1]
            assert mg.display_width(prefix) == 5 + 4 * (j + 1)
        assert len(rows) == cols
        for pos, row in enumerate(rows):
            assert mg.display_width(row) == 5 + 4 * (pos + 1)
            assert mg.display_width(row[:row.index(' ', 2) if pos else 4]) == 4
        assert mg.display_width(rows[-1]) == mg.display_width(header)


def test_bos_mark_changes_when_the_data_has_a_full_stop(mg):
    """抓数据里本来就有“.”时仍用“.”代表 BOS 的错误：读者分不清是句号还是结束。"""
    tok, state = model_for(mg, ['a.b', 'ab.'])
    lines = mg.explain_report(mg.explain_text(state, tok, 'a.'), mg.token_names(tok))
    assert '“¶”代表 BOS' in lines[0]
    assert '已看到 ¶a.，真实的下一个是 ¶' in '\n'.join(lines)


@pytest.mark.parametrize('width, cols', [(80, 18), (60, 13), (40, 8)])
def test_attention_grid_fits_the_terminal(mg, width, cols):
    """抓很长的文字让注意力表一行画几十格、超出终端宽度后折成一团的错误：只画放得下的格数，并说明还有多少没画。
    概率的横条也不超过宽度。"""
    tok, state = model_for(mg, ['abcdefghijklmnopqrstuvwxyz'], block_size=32)
    lines = mg.explain_report(mg.explain_text(state, tok, 'abcdefghijklmnopqrstuvwxy'), mg.token_names(tok), width)
    blocks = grid_blocks(lines)
    assert len(blocks) == mg.n_layer * mg.n_head
    for title, header, rows in blocks:
        assert len(rows) == cols
        assert all(mg.display_width(line) <= width for line in [header] + rows)
    bars = [line for line in lines if line.startswith('    ') and '%' in line]
    assert len(bars) == 5 * 26 and all(mg.display_width(line) <= width for line in bars)
    assert f'（终端只放得下 {cols} 格：注意力表只画了前 {cols} 个位置。终端再宽一些就能看到全部。）' in lines


def test_the_attention_grid_shows_fewer_positions_on_a_narrow_terminal(data):
    """抓 60 列的终端里注意力表照样画 15 格（每行都折断）、或者少画了却不说的错误。"""
    model_args = [f'--input_path={data}', '--num_steps=5', '--explain=abcdefghijklmn', *SMALL]
    wide, narrow = run_script(*model_args, env={'COLUMNS': '80'}), run_script(*model_args, env={'COLUMNS': '60'})
    assert '终端只放得下' not in wide.stdout
    assert '终端只放得下13格' in squash(narrow.stdout)
    header = [line for line in narrow.stdout.splitlines() if line.startswith('     ') and line.strip().startswith('.')]
    assert header and all(len(line.split()) == 13 for line in header)


# ---------------------------------------------------------------------------
# 对照：二元语法模型和困惑度
# ---------------------------------------------------------------------------

def test_bigram_loss_by_hand(mg):
    """抓忘了加一平滑（没见过的组合 → log 0）、分母没加 V、漏掉开头或结尾的 BOS 的错误。"""
    train = ['ab', 'ba', 'aab']
    val = ['ab', 'bb']
    tok = mg.Tokenizer(train)                    # a=0, b=1, BOS=2, V=3
    # 次数 + 1：  BOS 之后：a 1+2，b 1+1，BOS 1   （共 6）
    #             a 之后：  a 1+1，b 1+2，BOS 1+1 （共 7）
    #             b 之后：  a 1+1，b 1，  BOS 1+2 （共 6）
    # 留出 'ab'：BOS→a 3/6，a→b 3/7，b→BOS 3/6；留出 'bb'：BOS→b 2/6，b→b 1/6，b→BOS 3/6
    expected = -(math.log(3 / 6) + math.log(3 / 7) + math.log(3 / 6)
                 + math.log(2 / 6) + math.log(1 / 6) + math.log(3 / 6)) / 6
    assert mg.bigram_loss(train, val, tok) == pytest.approx(expected, abs=1e-12)


def test_bigram_loss_only_counts_the_positions_the_gpt_sees(mg):
    """抓二元语法模型用了 block_size 之外的字符（和 GPT 比就不公平了）的错误。"""
    mg.block_size = 2
    train = ['aab']                              # 只数 BOS→a 和 a→a
    tok = mg.Tokenizer(['ab'])
    # BOS 这一行：a 2，b 1，BOS 1（共 4）；a 这一行：a 2，b 1，BOS 1（共 4）
    expected = -(math.log(2 / 4) + math.log(1 / 4)) / 2      # 留出 'abb' → BOS→a，a→b（然后截断）
    assert mg.bigram_loss(train, ['abb'], tok) == pytest.approx(expected, abs=1e-12)


def test_perplexity(mg):
    """抓困惑度写成 2^loss 或 1/loss、或者损失很大时 math.exp 溢出的错误：均匀猜 V 个 token 时它正好是 V。"""
    assert mg.perplexity(math.log(7)) == pytest.approx(7, rel=1e-12)
    assert mg.perplexity(0.0) == 1.0
    assert mg.perplexity(4340.66) == math.inf


# ---------------------------------------------------------------------------
# 训练中的进度记录（终端里的“损失曲线”是约每 5% 留下的一行；画成图在网页里）
# ---------------------------------------------------------------------------

def test_progress_keeps_a_line_every_5_percent_on_a_terminal(mg, monkeypatch, capsys):
    """抓终端里只剩最后一行（训练完看不出损失怎么下降）、留下的行不是每 5% 一行、或者平滑损失算错的错误：
    平滑损失是 m ← 0.95·m + 0.05·loss，从第一步的损失开始。"""
    monkeypatch.setattr(mg, 'terminal_width', lambda: 120)
    monkeypatch.setattr(sys.stdout, 'isatty', lambda: True)
    monkeypatch.setattr(mg, 'log_every', 0)
    losses = [3.3 - 0.001 * i + 0.2 * math.sin(i) for i in range(200)]
    progress = mg.Progress(200)
    for step, loss in enumerate(losses, 1):
        progress.update(step, loss, 0.01)
    kept = [part.split('\r')[-1] for part in capsys.readouterr().out.split('\n') if part]
    assert [int(re.match(r'步 +(\d+)/200', line).group(1)) for line in kept] == [1] + list(range(10, 201, 10))
    smooth = losses[0]
    for step, loss in enumerate(losses[1:], 2):
        smooth = 0.95 * smooth + 0.05 * loss
        if step % 10 == 0:
            line = kept[step // 10]
            assert f'loss {loss:.4f}' in line and f'平滑 {smooth:.4f}' in line


def test_an_exploded_run_uses_short_numbers_everywhere(mg, data):
    """抓损失几十万时进度行、“最后一步的 loss”和损失表写出几十位数字、超出 80 列，或者困惑度溢出成回溯的错误。"""
    result = run_main(f'--input_path={data}', '--num_steps=30', '--learning_rate=10', *SMALL)
    assert result.returncode == 0, result.stderr
    report = result.stdout[result.stdout.index('开始训练'):].splitlines()      # 概览里的长路径（临时文件夹）不算
    assert max(mg.display_width(line) for line in report) <= 80, result.stdout
    assert re.search(r'loss \d\.\d\de\+\d\d', result.stdout) and re.search(r'困惑度 inf', result.stdout)
    assert not re.search(r'\d{12}', result.stdout)


# ---------------------------------------------------------------------------
# 留出集损失表
# ---------------------------------------------------------------------------

@pytest.fixture
def report(mg, capsys, monkeypatch):
    """report(before, step_losses, after, train_docs, val_docs, tokenizer, loaded) 像 run() 那样把这些数填进 record，
    调用 print_report，返回 (它打印的行, 损失表 loss_rows；没有留出集时是 [])。终端宽度固定为 80 列。"""
    monkeypatch.setattr(mg, 'terminal_width', lambda: 80)

    def call(before, step_losses, after, train_docs, val_docs, tok, loaded):
        losses = {'before': before, 'after': after, 'uniform': math.log(tok.vocab_size),
                  'bigram': mg.bigram_loss(train_docs, val_docs, tok) if val_docs else None,
                  'per_char': after * mg.chars_per_position(tok, val_docs) if val_docs else None}
        record = {'losses': losses, 'step_losses': step_losses,
                  'model': {'vocab_size': tok.vocab_size, 'loaded_from': 'm.json' if loaded else None, 'tokenizer': mg.tokenizer_record(tok)}}
        mg.print_report(record, train_docs, val_docs)
        return capsys.readouterr().out.splitlines(), mg.loss_rows(record) if val_docs else []
    return call


ALPHABET_DOCS = [ch * 3 for ch in 'abcdefghijklmnopqrstuvwxyz'] * 3       # 词表 26 个字母 + BOS = 27


def test_loss_table_reads_the_numbers(mg, report):
    """抓困惑度和损失对不上（不是 e^损失）、对照行缺了、中文标签让数字列错开、或者终端的表和网页用的表不一样的错误。"""
    lines, rows = report(3.3, [3.3, 3.0, 2.7], 2.5, ALPHABET_DOCS, ['abc', 'xyz'], mg.Tokenizer(ALPHABET_DOCS), False)
    start = lines.index('留出集上每个 token 位置的平均损失（困惑度 = e^损失：平均在几个 token 里犹豫）：') + 1
    table = lines[start:start + 4]
    assert [label for label, _ in rows] == ['训练前', '训练后', '对照：均匀猜测 ln(27)', '对照：二元语法模型']
    for line, (label, value) in zip(table, rows):
        shown, ppl = re.fullmatch(rf'  {re.escape(label)} +(\d+\.\d{{4}})   困惑度 (\d+\.\d)', line).groups()
        assert shown == f'{value:.4f}' and ppl == f'{math.exp(value):.1f}'
    assert rows[2][1] == math.log(27) and '3.2958   困惑度 27.0' in table[2]
    assert len({mg.display_width(line[:re.search(r'\d+\.\d{4}', line).start()]) for line in table}) == 1


def test_loss_table_survives_a_huge_loss(mg, report):
    """抓损失 4340 时 math.exp 溢出（OverflowError）、或者把困惑度写成几百位数字的错误：写成 inf。"""
    lines, rows = report(3.2, [3.2, 900.0, 4000.0], 4340.66, ALPHABET_DOCS, ['abc'], mg.Tokenizer(ALPHABET_DOCS), False)
    assert '  训练后                 4340.6600   困惑度 inf' in lines
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


# ---------------------------------------------------------------------------
# 提醒 (diagnose)：用编出来的数字
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
    assert len(slow) == 1 and '学习率 learning_rate=1e-06 可能太小' in slow[0] and 'num_steps' in slow[0]


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
# 提醒：从头到尾跑一遍
# ---------------------------------------------------------------------------

def vocab_size(stdout):
    return int(re.search(r'^词表：(\d+) 个 token', stdout, flags=re.M).group(1))


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
    assert len(found) == 1 and '爆炸' in found[0] and f'learning_rate调小（现在是{float(rate)}）' in found[0]


def test_held_out_characters_never_seen_in_training_are_reported(mg, tmp_path):
    """抓留出集里有训练集从没出现过的字符（模型没见过它们）时不说明的错误：学习者只看到损失偏高而不知为何。"""
    names = NAMES[:20]
    random.seed(42)                                          # 脚本的默认种子：找出哪几行被留出
    _, val_index = mg.split_docs(list(range(len(names))))
    assert len(val_index) == 2
    names[val_index[0]] = 'boë'                               # ë 只出现在这一行留出的数据里
    data = write_lines(tmp_path / 'n.txt', '\n'.join(names) + '\n')
    result = run_main(f'--input_path={data}', '--num_steps=5', *SMALL)
    assert result.returncode == 0, result.stderr
    assert any('留出集里有1个字符在训练数据里从没出现过（例如ë）' in note for note in notes(result.stdout))


@pytest.mark.parametrize('args, why', [(['--num_steps=100', '--learning_rate=1e-6'], '学习率learning_rate=1e-06可能太小'),
                                       (['--num_steps=1'], '训练只有1步（num_steps=1），太短了')])
def test_no_learning_is_explained(data, args, why):
    """抓学习率太小或步数太少、损失几乎不动时程序一声不吭，或者反过来说成“过拟合”的错误。"""
    result = run_script(f'--input_path={data}', *SMALL, *args)
    assert result.returncode == 0, result.stderr
    found = notes(result.stdout)
    assert any('几乎什么都没学到' in note and why in note for note in found), result.stdout
    assert not any('过拟合' in note for note in found)


# ---------------------------------------------------------------------------
# 终端里的用户文字：控制字符、很长的字符列表
# ---------------------------------------------------------------------------

def test_control_characters_in_the_data_are_shown_escaped(tmp_path):
    """抓数据里的控制字符原样打印的错误：ESC 让终端把后面的字变成红色、清屏，U+202E 把一整行倒过来显示。"""
    names = list(NAMES)
    names[3], names[4], names[5] = 'd\x1b[31mora', 'e\u202eve', 'f\x07a\x9by'
    data = write_lines(tmp_path / 'ctl.txt', '\n'.join(names) + '\n')
    result = run_script(f'--input_path={data}', '--num_steps=20', '--temperature=3', '--num_samples=30',
                        '--explain=d\x1b[31mora\u202e', *SMALL[:2])
    assert result.returncode == 0, result.stderr
    assert_nothing_raw(result)
    vocab = result.stdout[result.stdout.index('词表'):result.stdout.index('参数')]
    assert '\\x07\\x1b' in vocab and '\\x9b\\u202e' in vocab
    assert "模型怎么读 'd\\x1b[31mora\\u202e'" in result.stdout
    assert '\\x1b' in ''.join(s for s, _ in re.findall(r'^ +\d+\. (\S+) +(\S+)$', result.stdout, flags=re.M))


def test_huge_vocabulary_is_shown_cut_short(mg):
    """抓几千个汉字的词表整个塞进一行错误信息、真正的提示被淹没的错误：只列前 60 个，后面加“…”。"""
    chars = [chr(0x4e00 + i) for i in range(100)]
    assert mg.shown_value(''.join(chars)) == ''.join(chars[:60]) + '…' and mg.shown_value(''.join(chars[:60])) == ''.join(chars[:60])
    mg.prompt = 'ab'
    with pytest.raises(mg.UserError) as info:
        mg.check_inputs(chars, [], mg.Tokenizer(chars), None, {})
    message = str(info.value)
    assert '--prompt 里有模型不认识的字符 ab。' in message and message.endswith(''.join(chars[:60]) + '…')
    assert info.value.exit_code == 2
    mg.prompt, mg.explain = '', 'abz'
    with pytest.raises(mg.UserError) as info:
        mg.check_inputs(['abc'], [], mg.Tokenizer(['abc']), None, {})
    assert str(info.value).endswith('字符 z。模型的词表：4 个 token = 3 个字符 + 1 个 BOS；字符：abc') and info.value.exit_code == 2
