"""Section 9: what the model predicts and attends to, the loss chart, the bigram baseline, perplexity."""
import math
import random
import re

import pytest

from conftest import run_script, write_lines

DOCS = ['cabbac', 'abc', 'bca', 'aab', 'cc']
POEMS = ['床前明月光', '疑是地上霜', '举头望明月', '低头思故乡']


def tiny_model(mg, docs=DOCS, block_size=8, seed=11):
    """Two layers, two heads; weights five times the default size so predictions and attention are far from uniform."""
    mg.n_layer, mg.n_embd, mg.n_head, mg.block_size = 2, 8, 2, block_size
    random.seed(seed)
    tok = mg.Tokenizer(docs)
    state = mg.init_params(tok.vocab_size)
    for p in mg.flatten(state):
        p.data *= 5
    return tok, state


def direct_softmax(logits):
    z = [x.data for x in logits]
    exps = [math.exp(v - max(z)) for v in z]
    return [e / sum(exps) for e in exps]


def grid_blocks(lines):
    """For every attention table in an explain report: (title, header, rows)."""
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
# explain
# ---------------------------------------------------------------------------

def test_explain_probabilities_are_the_softmax_of_the_model_logits(mg):
    """抓的 bug：explain 用了带温度的概率、错一位的 logits（位置 pos 配成 pos+1 的目标），或者没清空 KV 缓存。"""
    tok, state = tiny_model(mg)
    text = 'cabbac'
    predictions, _ = mg.explain_text(state, tok, text)
    tokens = tok.encode(text)
    assert len(predictions) == len(text) + 1
    keys, values = [[] for _ in range(mg.n_layer)], [[] for _ in range(mg.n_layer)]
    for pos, (probs, target) in enumerate(predictions):
        expected = direct_softmax(mg.gpt(state, tokens[pos], pos, keys, values))
        assert probs == pytest.approx(expected, abs=1e-12)
        assert sum(probs) == pytest.approx(1.0, abs=1e-12)
        assert target == tokens[pos + 1]


def test_explain_report_rank_probability_and_average_loss(mg):
    """抓的 bug：排名差一（写成 sum(p >= ...)）、显示的概率不是真实字符的、平均损失和训练用的损失不一致。"""
    tok, state = tiny_model(mg)
    text = 'cabbac'
    predictions, _ = mg.explain_text(state, tok, text)
    lines = mg.explain_report(state, tok, text)
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
    assert any(r > 1 for r in ranks) and 1 in ranks            # both cases really occurred
    losses = mg.doc_losses(state, tok.encode(text))
    average = sum(l.data for l in losses) / len(losses)
    assert f'平均损失 {average:.4f}（{len(text) + 1} 个位置）' in lines


def test_attention_rows_are_the_weights_the_forward_pass_used(mg, monkeypatch):
    """抓的 bug：记录的注意力是别的数（未归一化的分数、另一层/另一个头的），或者能看到未来的位置。"""
    tok, state = tiny_model(mg)
    recorded = []
    real_softmax = mg.softmax

    def recording_softmax(logits):
        out = real_softmax(logits)
        recorded.append([p.data for p in out])
        return out
    monkeypatch.setattr(mg, 'softmax', recording_softmax)
    predictions, attention = mg.explain_text(state, tok, 'cabbac')
    expected = []
    for pos, heads in enumerate(attention):
        assert len(heads) == mg.n_layer * mg.n_head
        for row in heads:
            assert len(row) == pos + 1                         # itself and the positions before it, nothing later
            assert sum(row) == pytest.approx(1.0, abs=1e-12)
        expected += heads + [predictions[pos][0]]              # per position: each layer's heads, then the output
    assert recorded == expected
    assert max(max(row) for heads in attention[1:] for row in heads) > 0.6   # not merely uniform


def test_attention_grid_shows_the_same_numbers(mg):
    """抓的 bug：注意力表的行列错位（转置、层和头对调），打印的百分比和真实权重对不上。"""
    tok, state = tiny_model(mg)
    _, attention = mg.explain_text(state, tok, 'cab')
    blocks = grid_blocks(mg.explain_report(state, tok, 'cab'))
    assert len(blocks) == mg.n_layer * mg.n_head
    for index, (title, header, rows) in enumerate(blocks):
        layer, head = map(int, re.findall(r'\d+', title)[:2])
        assert layer * mg.n_head + head == index
        assert header.split() == ['.', 'c', 'a', 'b']
        for pos, row in enumerate(rows):
            numbers = [int(n) for n in re.findall(r'\d+', row[5:])]
            assert numbers == [round(100 * w) for w in attention[pos][index]]


def test_explain_consumes_no_random_numbers(mg):
    """抓的 bug：explain 里调用了采样（或 random）——加上 --explain 之后，编出的名字就变了。"""
    tok, state = tiny_model(mg)
    random.seed(123)
    before = random.getstate()
    mg.explain_report(state, tok, 'cabbac')
    assert random.getstate() == before


def test_explain_with_unknown_characters_lists_the_known_ones(tmp_path):
    """抓的 bug：--explain 里有词表外的字符时 encode 抛 KeyError 回溯。"""
    data = write_lines(tmp_path / 'n.txt', '\n'.join(['anna', 'bob', 'carla'] * 4) + '\n')
    result = run_script(f'--input_path={data}', '--explain=Zob', '--num_steps=0', '--n_embd=8', '--n_head=2')
    assert result.returncode == 2 and 'Traceback' not in result.stderr
    assert '--explain' in result.stderr and "'Z'" in result.stderr and 'abclnor' in result.stderr


def test_explain_on_the_command_line(tmp_path):
    """抓的 bug：--explain 在 --num_steps=0 时不打印，或者打印的位置数不对。"""
    data = write_lines(tmp_path / 'n.txt', '\n'.join(['anna', 'bob', 'carla'] * 4) + '\n')
    result = run_script(f'--input_path={data}', '--explain=bob', '--num_steps=0', '--n_embd=8', '--n_head=2',
                        '--num_samples=0')
    assert result.returncode == 0, result.stderr
    assert "模型怎么读 'bob'" in result.stdout
    assert re.findall(r'^位置 (\d+)：', result.stdout, flags=re.M) == ['0', '1', '2', '3']
    assert result.stdout.count('个头的注意力') == 2


@pytest.mark.parametrize('length, note', [(7, False), (8, True), (11, True)])
def test_long_text_is_explained_for_block_size_positions(mg, length, note):
    """抓的 bug：比 block_size 长的文字让 wpe 越界（IndexError）；或者正好放得下时也说“太长”（差一）。"""
    tok, state = tiny_model(mg, block_size=8)
    text = ('cab' * 4)[:length]
    predictions, attention = mg.explain_text(state, tok, text)
    assert len(predictions) == len(attention) == 8
    assert predictions[-1][1] == (tok.bos if length == 7 else tok.char_to_id[text[7]])   # position 7 predicts token 8
    lines = mg.explain_report(state, tok, text)
    assert any('只看前 8 个位置' in line for line in lines) == note
    assert len([line for line in lines if line.startswith('位置 ')]) == 8


def test_explain_in_chinese_lines_up_by_display_width(mg):
    """抓的 bug：按字符数（len）对齐，一个汉字占两列，注意力表的格子就和表头的字错开了。"""
    tok, state = tiny_model(mg, docs=POEMS)
    lines = mg.explain_report(state, tok, '床前明月光')
    assert lines[0].startswith("模型怎么读 '床前明月光'")
    blocks = grid_blocks(lines)
    assert len(blocks) == mg.n_layer * mg.n_head
    for title, header, rows in blocks:
        assert header.split() == ['.', '床', '前', '明', '月', '光']
        cols = len(header.split())
        assert mg.display_width(header) == 5 + 4 * cols
        # every label ends at its column: the (j+1)-th group of 4 display columns
        for j, label in enumerate(header.split()):
            prefix = header[:header.index(label) + 1] if j else header[:header.index('.') + 1]
            assert mg.display_width(prefix) == 5 + 4 * (j + 1)
        assert len(rows) == cols
        for pos, row in enumerate(rows):
            assert mg.display_width(row) == 5 + 4 * (pos + 1)
            assert mg.display_width(row[:row.index(' ', 2) if pos else 4]) == 4
        assert mg.display_width(rows[-1]) == mg.display_width(header)


def test_bos_mark_changes_when_the_data_has_a_full_stop(mg):
    """抓的 bug：数据里本来就有“.”时仍用“.”代表 BOS，读者分不清是句号还是结束。"""
    tok, state = tiny_model(mg, docs=['a.b', 'ab.'])
    lines = mg.explain_report(state, tok, 'a.')
    assert '“¶”代表 BOS' in lines[0]
    assert '已看到 ¶a.，真实的下一个是 ¶' in '\n'.join(lines)


def test_attention_grid_stays_within_80_columns(mg):
    """抓的 bug：很长的文字让注意力表一行画几十格，超出 80 列的终端后换行成一团。"""
    tok, state = tiny_model(mg, docs=['abcdefghijklmnopqrstuvwxyz'], block_size=32)
    lines = mg.explain_report(state, tok, 'abcdefghijklmnopqrstuvwxy')
    for title, header, rows in grid_blocks(lines):
        assert len(rows) == 18
        assert all(mg.display_width(line) <= 80 for line in [header] + rows)
    assert '（注意力表只画了前 18 个位置。）' in lines


# ---------------------------------------------------------------------------
# bigram and perplexity
# ---------------------------------------------------------------------------

def test_bigram_loss_by_hand(mg):
    """抓的 bug：忘了加一平滑（没见过的组合 → log 0）、分母没加 V、漏掉开头或结尾的 BOS。"""
    train = ['ab', 'ba', 'aab']
    val = ['ab', 'bb']
    tok = mg.Tokenizer(train)                    # a=0, b=1, BOS=2, V=3
    # counts + 1:  from BOS: a 1+2, b 1+1, BOS 1   (total 6)
    #              from a:   a 1+1, b 1+2, BOS 1+1 (total 7)
    #              from b:   a 1+1, b 1,   BOS 1+2 (total 6)
    # val 'ab': BOS→a 3/6, a→b 3/7, b→BOS 3/6;  val 'bb': BOS→b 2/6, b→b 1/6, b→BOS 3/6
    expected = -(math.log(3 / 6) + math.log(3 / 7) + math.log(3 / 6)
                 + math.log(2 / 6) + math.log(1 / 6) + math.log(3 / 6)) / 6
    assert mg.bigram_loss(train, val, tok) == pytest.approx(expected, abs=1e-12)


def test_bigram_loss_only_counts_the_positions_the_gpt_sees(mg):
    """抓的 bug：二元语法模型用了 block_size 之外的字符，和 GPT 比就不公平了。"""
    mg.block_size = 2
    train = ['aab']                              # only BOS→a and a→a are counted
    tok = mg.Tokenizer(['ab'])
    # BOS row: a 2, b 1, BOS 1 (total 4); a row: a 2, b 1, BOS 1 (total 4)
    expected = -(math.log(2 / 4) + math.log(1 / 4)) / 2      # val 'abb' → BOS→a, a→b (then cut)
    assert mg.bigram_loss(train, ['abb'], tok) == pytest.approx(expected, abs=1e-12)


def test_perplexity(mg):
    """抓的 bug：困惑度写成 2^loss 或 1/loss；均匀猜 V 个 token 时它必须正好是 V。"""
    assert mg.perplexity(math.log(7)) == pytest.approx(7, rel=1e-12)
    assert mg.perplexity(0.0) == 1.0


# ---------------------------------------------------------------------------
# loss chart
# ---------------------------------------------------------------------------

def chart_rows(lines, n_points):
    """(label value, cells, note) for every row of the chart."""
    rows = []
    for line in lines[1:-2]:
        match = re.match(r'^ *(-?\d+\.\d{3}) \|(.*)$', line)
        rows.append((float(match.group(1)), match.group(2)[:n_points], match.group(2)[n_points:]))
    return rows


def wiggly_losses(n):
    return [3.3 - 1.2 * i / n + 0.3 * math.sin(i) for i in range(n)]


def test_smooth_losses_by_hand(mg):
    """抓的 bug：分段时丢了最后几步、某步算了两次、或者除以了错的段长。"""
    assert mg.smooth_losses([1, 2, 3, 4, 5, 6], 3) == ([1.5, 3.5, 5.5], [0, 2, 4, 6])
    assert mg.smooth_losses([1.0, 2.0], 50) == ([1.0, 2.0], [0, 1, 2])
    points, bounds = mg.smooth_losses(list(range(1000)), 50)
    assert len(points) == 50 and bounds[0] == 0 and bounds[-1] == 1000
    assert points[0] == pytest.approx(9.5) and points[-1] == pytest.approx(989.5)
    points, bounds = mg.smooth_losses(list(range(7)), 3)
    assert sum(b - a for a, b in zip(bounds, bounds[1:])) == 7


def test_chart_puts_the_extremes_on_the_top_and_bottom_rows(mg):
    """抓的 bug：纵轴画反（大的在下面）、行的刻度和点的位置差一行，或者有的列画了两个点/没画点。"""
    losses = wiggly_losses(1000)
    points, _ = mg.smooth_losses(losses, 50)
    lines = mg.loss_chart(losses)
    assert len(lines) == 1 + 10 + 2
    assert '每个 * 是约 20 步的平均' in lines[0]
    rows = chart_rows(lines, len(points))
    assert rows[0][0] == float(f'{max(points):.3f}') and rows[-1][0] == float(f'{min(points):.3f}')
    assert rows[0][1][points.index(max(points))] == '*'
    assert rows[-1][1][points.index(min(points))] == '*'
    half_row = (max(points) - min(points)) / 9 / 2
    for column, value in enumerate(points):
        marked = [label for label, cells, _ in rows if cells[column] == '*']
        assert len(marked) == 1
        assert abs(marked[0] - value) <= half_row + 1e-3         # the nearest row label
    assert lines[-1].index(' 步') == lines[1].index('|') + 1 + len(points) and lines[-1].strip().startswith('1 ')


def test_chart_fits_in_80_columns(mg):
    """抓的 bug：图太宽（列数或右边的标注太长），在 80 列的终端里每行都折成两行。"""
    lines = mg.loss_chart(wiggly_losses(1000), val_before=3.4567, val_after=2.5)
    assert any('↑训练前 3.4567' in line for line in lines) and any('<训练后 2.5000' in line for line in lines)
    assert max(mg.display_width(line) for line in lines) <= 80


def test_chart_fits_in_80_columns_when_both_markers_share_a_row(mg):
    """抓的 bug：过拟合时“训练前”“训练后”两个标记都在最上面一行，这一行超过 80 列。"""
    lines = mg.loss_chart(wiggly_losses(1000), val_before=3.9, val_after=6.2716)
    assert max(mg.display_width(line) for line in lines) <= 80


def test_chart_rows_line_up_when_the_loss_is_huge(mg):
    """抓的 bug：纵轴的刻度宽度不一（3.407 和 180.264），| 和曲线就一行前一行后地错开。"""
    lines = mg.loss_chart([3.4, 800.0, 200.0, 5.0] * 10)
    assert len({line.index('|') for line in lines[1:11]} | {lines[11].index('+')}) == 1


def test_chart_with_one_and_two_steps(mg):
    """抓的 bug：只有一两步时最大值等于最小值，除以 0；或者横轴标签的空格数变成负数。"""
    for losses in ([3.2], [3.2, 3.2], [3.2, 3.0]):
        lines = mg.loss_chart(losses, val_before=3.3, val_after=3.1)
        rows = chart_rows(lines, len(losses))
        assert [cells for _, cells, _ in rows].count(' ' * len(losses)) == 10 - len(set(losses))
        assert lines[-1].split() == ['1', str(len(losses)), '步']


def test_held_out_markers_are_on_the_right_rows(mg):
    """抓的 bug：留出集损失标在错的行上，或者超出曲线范围时没用箭头说明它在图外面。"""
    losses = [3.0 - 0.1 * i for i in range(10)]      # one point per column, one row per 0.1
    lines = mg.loss_chart(losses, val_before=2.9, val_after=2.4)
    rows = chart_rows(lines, 10)
    assert [label for label, _, _ in rows] == pytest.approx([3.0 - 0.1 * r for r in range(10)], abs=1e-3)
    assert rows[1][2] == ' <训练前 2.9000' and rows[6][2] == ' <训练后 2.4000'
    assert [cells.index('*') for _, cells, _ in rows] == list(range(10))
    rows = chart_rows(mg.loss_chart(losses, val_before=3.5, val_after=1.0), 10)
    assert rows[0][2] == ' ↑训练前 3.5000' and rows[9][2] == ' ↓训练后 1.0000'
    assert all(note == '' for _, _, note in rows[1:9])


def test_one_training_step_prints_no_chart(tmp_path):
    """抓的 bug：只训练 1 步时画曲线（只有一个点）或者崩溃。"""
    data = write_lines(tmp_path / 'n.txt', '\n'.join(['anna', 'bob', 'carla', 'dora', 'eve'] * 4) + '\n')
    one = run_script(f'--input_path={data}', '--num_steps=1', '--n_embd=8', '--n_head=2', '--num_samples=2')
    assert one.returncode == 0, one.stderr
    assert '训练损失曲线' not in one.stdout and '训练后' in one.stdout and 'Traceback' not in one.stderr
    two = run_script(f'--input_path={data}', '--num_steps=2', '--n_embd=8', '--n_head=2', '--num_samples=2')
    assert two.returncode == 0 and '训练损失曲线' in two.stdout
