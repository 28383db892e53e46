"""第 11 节：把一次运行画成网页 (page_html)。结构、数字、内容和边界情况，以及一个真的浏览器。"""
import html
import json
import math
import random
import re
import shutil
import struct
import subprocess
import time
import zlib
from html.parser import HTMLParser

import pytest

from conftest import run_script

DOCS = ['emma', 'olivia', 'ava', 'isabella', 'sophia', 'mia', 'amelia', 'harper', 'evelyn', 'abigail', 'ella', 'luna']
LETTERS = ['abcdefghijklmnopqrstuvwxyz', 'emma', 'ella']


def tiny_record(mg, docs=DOCS, text='emma', n_layer=1, n_head=2, n_embd=8, block_size=8, step_losses=None, seed=3, tok=None):
    """像 run() 那样填好一份 record：一个没训练的小模型（权重放大 5 倍，预测和注意力才不均匀），解读用的是
    mg.explain_text（终端的 --explain 用的也是它）；“训练后”的嵌入是把训练前的挪一挪（不抽随机数）。
    num_steps 当作命令行上给的。返回 (record, state, tokenizer)。"""
    mg.n_layer, mg.n_head, mg.n_embd, mg.block_size = n_layer, n_head, n_embd, block_size
    random.seed(seed)
    tok = tok or mg.Tokenizer(docs)
    state = mg.init_params(tok.vocab_size)
    for p in mg.flatten(state):
        p.data *= 5
    before = [[p.data for p in row] for row in state['wte']]
    settings = {name: (getattr(mg, name), 'file') for name in mg.RULES}
    settings['num_steps'] = (6, 'cli')
    record = {
        'settings': settings,
        'data': {'file': 'names.txt', 'lines': len(docs), 'train': len(docs) - 2, 'val': 2, 'fingerprint': '0' * 16, 'too_long': []},
        'model': {'vocab_size': tok.vocab_size, 'tokenizer': mg.tokenizer_record(tok), 'vocab_text': mg.vocab_text(tok),
                  'tokens': mg.token_names(tok), 'n_params': len(mg.flatten(state)), 'loaded_from': None, 'trained_on': None, 'steps_before': 0},
        'losses': {'before': 3.25, 'after': 2.5, 'uniform': math.log(tok.vocab_size), 'bigram': 2.6, 'per_char': 2.5},
        'step_losses': [3.3, 3.1, 2.9, 2.95, 2.7, 2.6] if step_losses is None else step_losses,
        'samples': [('emma', '训练集里有'), ('ella', '留出集里有'), ('emmala', '新'), ('', '第一步就抽到了 BOS'), ('emma', '训练集里有（重复）')],
        'explain': None if text is None else mg.explain_text(state, tok, text),
        'embeddings': {'before': before, 'after': [[x + 0.3 * math.sin(3 * i + j) for j, x in enumerate(row)] for i, row in enumerate(before)]},
    }
    return record, state, tok


VOID = {'meta', 'br', 'hr', 'img', 'input', 'link', 'wbr', 'source', 'col', 'area', 'base', 'embed', 'track'}


class Page(HTMLParser):
    """读一遍网页：记下每个标签和它的属性、每段文字，并检查每个标签都按顺序关上了
    （<br> 这类空元素和 SVG 里 <line .../> 这样自己关上的元素除外）。"""

    def __init__(self, text):
        super().__init__(convert_charrefs=True)
        self.decl, self.tags, self.texts, self.open, self.errors = [], [], [], [], []
        self.feed(text)
        self.close()

    def handle_decl(self, decl):
        self.decl.append(decl)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag not in VOID:
            self.open.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag):
        if not self.open or self.open.pop() != tag:
            self.errors.append(tag)

    def handle_data(self, data):
        self.texts.append(data)

    def svgs(self, cls):
        return [attrs for tag, attrs in self.tags if tag == 'svg' and attrs.get('class') == cls]


def bar_rows(page):
    """每个位置的前 5 名横条：[[(字符, 百分数文字), ...], ...]，按网页上的顺序。"""
    rows = []
    for block in re.findall(r'<svg class="bars".*?</svg>', page, flags=re.S):
        chars = re.findall(r'class="tok"[^>]*>([^<]*)</text>', block)
        percents = re.findall(r'class="pct"[^>]*>([^<]*)%</text>', block)
        rows.append(list(zip(map(html.unescape, chars), percents)))
    return rows


def polyline(page, cls):
    points = re.search(rf'<polyline class="{cls}" points="([^"]*)"', page).group(1)
    return [tuple(map(float, p.split(','))) for p in points.split()]


# ---------------------------------------------------------------------------
# 结构
# ---------------------------------------------------------------------------

def test_page_is_well_formed_html_with_all_its_figures(mg, tmp_path):
    """抓标签没关好（浏览器会把后面的内容吞进去）、少了 DOCTYPE、utf-8 或 lang="zh-CN"、少画了某张图
    （损失曲线、每层每个头一张热图、训练前后两张嵌入地图、每个位置一组前 5 名横条）的错误。"""
    info, _, _ = tiny_record(mg, n_layer=2, n_head=3, n_embd=6)
    page = mg.page_html(info)
    doc = Page(page)
    assert page.startswith('<!DOCTYPE html>') and doc.decl == ['DOCTYPE html']
    assert not doc.errors and not doc.open
    assert doc.tags[0] == ('html', {'lang': 'zh-CN'})
    assert ('meta', {'charset': 'utf-8'}) in doc.tags
    assert len(doc.svgs('loss')) == 1
    assert len(doc.svgs('heat')) == 2 * 3
    assert len(doc.svgs('map')) == 2
    assert len(doc.svgs('bars')) == len(info['explain']['predictions']) == len('emma') + 1
    assert len(doc.svgs('graph across')) == len(doc.svgs('graph down')) == 2
    for tag, attrs in doc.tags:
        if tag == 'svg':
            assert attrs['viewbox'] == f'0 0 {attrs["width"]} {attrs["height"]}'   # 窄屏上整体缩放，而不是被截掉
    (tmp_path / 'p.html').write_text(page, encoding='utf-8')
    assert mg.is_our_page(str(tmp_path / 'p.html'))        # 主程序靠页面里记的 SHA-256 认出这是自己画的、没被改过的网页


def test_page_loads_nothing_from_the_network_and_needs_no_javascript(mg):
    """抓从网上取字体、脚本、样式或图片（离线打不开，还会暴露谁在看）、要 JavaScript 才能看到提示的错误。"""
    page = mg.page_html(tiny_record(mg)[0])
    for tag, attrs in Page(page).tags:
        assert tag not in ('script', 'link', 'img', 'iframe', 'object', 'embed')
        for name in ('src', 'href', 'xlink:href', 'srcset', 'action', 'data'):
            assert not attrs.get(name) or attrs[name].startswith('#'), (tag, attrs)
    assert not re.search(r'https?:|@import|url\s*\((?!#)|@font-face|<script', page, flags=re.I)   # url(#arrow)：同一页里的箭头
    assert page.count('<title>') > 20       # 提示用 SVG 的 <title>，不用脚本


# ---------------------------------------------------------------------------
# 数字
# ---------------------------------------------------------------------------

def test_top5_percentages_are_the_numbers_explain_prints(mg):
    """抓网页自己重新排序或算了一遍、百分比没乘 100 或保留的位数不对、BOS 写错、
    真实的下一个字符没有标出来、它的排名算错了的错误。必须和终端 explain_report 打印的前 5 名和排名逐字相同。"""
    info, state, tok = tiny_record(mg, text='isabella')
    page = mg.page_html(info)
    report = '\n'.join(mg.explain_report(info['explain'], info['model']['tokens']))
    terminal = re.findall(r'^    (\S+) +(\d+\.\d)% ', report, flags=re.M)
    shown = bar_rows(page)
    assert [row for rows in shown for row in rows] == terminal
    # 每个位置“真实的下一个排第几”也和终端一样
    ranks = re.findall(r'排第 (\d+)）', page)
    assert ranks == re.findall(r'排第 (\d+)，', report) and len(ranks) == len(info['explain']['predictions'])
    assert all(len(rows) == 5 for rows in shown)
    # 真实的下一个字符涂成绿色：在前 5 名里时，恰好一条绿色的横条
    for (probs, target), block in zip(info['explain']['predictions'], re.findall(r'<svg class="bars".*?</svg>', page, flags=re.S)):
        in_top5 = target in sorted(range(len(probs)), key=lambda i: -probs[i])[:5]
        assert block.count('fill="#2ca02c"') == in_top5


def test_page_percentages_equal_the_terminal_explain_of_the_same_run(tmp_path):
    """抓网页和终端的 --explain 用的不是同一个模型状态（例如网页在训练前、或采样后又算了一遍），
    或者排序、舍入不同的错误：同一次运行里，两边的前 5 名和百分比必须逐字相同。"""
    path = tmp_path / 'run.html'
    result = run_script('--num_steps=20', '--explain=emma', f'--html_path={path}', '--num_samples=3', timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert '网页已保存到' in result.stdout
    terminal = re.findall(r'^    (\S+) +(\d+\.\d)% ', result.stdout, flags=re.M)
    assert len(terminal) == 5 * (len('emma') + 1)
    shown = bar_rows(path.read_text(encoding='utf-8'))
    assert [row for rows in shown for row in rows] == terminal


def test_page_without_training_from_the_command_line(tmp_path):
    """抓 num_steps=0 时网页崩溃或画出一条空曲线、写出的留出集损失和损失表里的不一样的错误。"""
    path = tmp_path / 'zero.html'
    result = run_script('--num_steps=0', '--num_samples=2', '--n_embd=8', '--n_head=2', f'--html_path={path}')
    assert result.returncode == 0, result.stdout + result.stderr
    page = path.read_text(encoding='utf-8')
    doc = Page(page)
    assert not doc.errors and not doc.svgs('loss')
    shown = re.search(r'没有损失曲线。留出集损失：([\d.]+)。', page).group(1)
    assert re.search(rf'<td>没有训练的模型（随机参数）</td><td class="num">{shown}</td>', page)   # 和损失表里的是同一个数


def test_loss_chart_axes_point_the_right_way(mg):
    """抓纵轴画反（损失越大越靠下）、横轴不按步数（第 0 步的“训练前”圆点不在最左边）、
    平滑线少了点或多了点、刻度不是整齐的数的错误。"""
    info, _, _ = tiny_record(mg, step_losses=[4.0, 3.0, 2.0, 1.0])
    info['losses'].update(before=4.5, after=0.5)
    page = mg.page_html(info)
    raw, smooth = polyline(page, 'step'), polyline(page, 'mean')
    assert len(raw) == len(smooth) == 4
    assert [x for x, _ in raw] == sorted(x for x, _ in raw) and len({x for x, _ in raw}) == 4
    assert [y for _, y in raw] == sorted(y for _, y in raw)             # 损失变小 → 在图上往下走
    before = re.search(r'<circle class="before" cx="([\d.]+)" cy="([\d.]+)"', page).groups()
    after = re.search(r'<circle class="after" cx="([\d.]+)" cy="([\d.]+)"', page).groups()
    assert float(before[0]) < raw[0][0] and float(after[0]) == pytest.approx(raw[-1][0])
    assert float(before[1]) < raw[0][1] and float(after[1]) > raw[-1][1]
    chart = re.search(r'<svg class="loss".*?</svg>', page, flags=re.S).group(0)
    ticks = [float(t) for t in re.findall(r'text-anchor="end">([^<]+)</text>', chart)]
    steps = {round(b - a, 9) for a, b in zip(ticks, ticks[1:])}
    assert len(steps) == 1 and steps.pop() in (0.5, 1.0, 2.0)           # 等间隔的整齐刻度
    assert ticks[0] <= 0.5 and ticks[-1] >= 4.5                        # 留出集的两个点也在图里
    assert '训练步数' in chart and '损失 (loss)' in chart


def test_principal_components_find_the_spread_and_fix_the_sign(mg):
    """抓没先减去平均值（第一主成分指向平均值，而不是点散开的方向）、没做降阶（第二主成分和第一个一样）、
    正负号没有固定（同样的嵌入画出左右颠倒的图）、方差比例算错的错误。"""
    # 点沿 u = (0.6, -0.8, 0) 散得最开，沿 w = (0, 0, 1) 次之；t 和 s 不相关，整体离原点很远
    ts, ss = [-2, -1, 0, 1, 2], [1, -1, 0, -1, 1]
    rows = [[10 + 0.6 * t, -5 - 0.8 * t, 7 + 0.3 * s] for t, s in zip(ts, ss)]
    coords, shares = mg.principal_components(rows)
    # 方向取绝对值最大的分量为正：u 要翻成 (-0.6, 0.8, 0)，所以第一个坐标是 -t；w 不用翻，第二个坐标是 0.3·s
    assert [c[0] for c in coords] == pytest.approx([-t for t in ts], abs=1e-9)
    assert [c[1] for c in coords] == pytest.approx([0.3 * s for s in ss], abs=1e-9)
    assert shares == pytest.approx([2 / 2.072, 0.072 / 2.072], abs=1e-9)   # 方差 2 和 0.3²·0.8 = 0.072
    again, _ = mg.principal_components([[-x for x in row] for row in rows])   # 点整体取反：方向不变，坐标取反
    assert [c[0] for c in again] == pytest.approx(ts, abs=1e-9)


# ---------------------------------------------------------------------------
# 内容和边界情况
# ---------------------------------------------------------------------------

def test_overview_lists_settings_data_losses_and_samples(mg):
    """抓一览里漏了改过的设置（和默认值）、数据的行数、参数个数、损失表的某一行或困惑度，
    或者样本的标签（训练集里有 / 留出集里有 / 新）丢了或配错了样本的错误。"""
    info, _, _ = tiny_record(mg)
    page = mg.page_html(info)
    text = ''.join(Page(page).texts)
    assert 'num_steps=6*' in text and 'seed=42 ' in text and '* 是命令行上给的值，^ 是读回的模型文件决定的值' in text      # 每个设置都列出来，命令行给的标 *
    assert f'共 {len(DOCS)} 行；训练用 {len(DOCS) - 2} 行，留出验证 2 行' in text
    assert f'参数：{info["model"]["n_params"]} 个' in text
    assert text.count('数据：') == 1 and mg.overview_lines(info)[0] in text       # 和终端的一览是同一组句子
    for label, value in mg.loss_rows(info):
        assert re.search(rf'<td>{re.escape(label)}</td><td class="num">{value:.4f}</td>'
                         rf'<td class="num">{mg.perplexity(value):.1f}</td>', page), label
    shown = re.findall(r'<li><code>([^<]*)</code> <span class="tag[^"]*">([^<]*)</span></li>', page)
    assert shown == [(text or '（空）', label) for text, label in info['samples']]


def test_exploded_run_shows_nan_and_inf_and_still_draws(mg):
    """抓 NaN / inf 进了 SVG 坐标（整条折线消失）或把纵轴撑坏、NaN 写成 nan 或被悄悄丢掉、
    嵌入里的 NaN 让主成分算不出来的错误。"""
    losses = [3.0, 2.5, 2.0, 1e6, 1.5]              # 训练中出现 NaN、inf 时运行就停了，画不到网页；爆炸时的损失是很大的有限数
    info, _, _ = tiny_record(mg, step_losses=losses)
    info['losses'].update(after=float('nan'), bigram=float('inf'))
    info['embeddings']['after'][0][0] = float('nan')
    page = mg.page_html(info)
    doc = Page(page)
    assert not doc.errors
    for tag, attrs in doc.tags:                       # 坐标里只能有有限的数
        for name in ('x', 'y', 'x1', 'x2', 'y1', 'y2', 'cx', 'cy', 'width', 'height', 'points', 'transform'):
            assert not re.search(r'nan|inf', attrs.get(name, ''), flags=re.I), (tag, name, attrs[name])
    assert len(polyline(page, 'step')) == len(polyline(page, 'mean')) == 5
    assert '<td>训练后</td><td class="num">NaN</td><td class="num">NaN</td>' in page
    assert '<td class="num">inf</td><td class="num">inf</td>' in page
    assert '留出集·训练后 NaN（没画）' in page and '对照·二元语法 inf（没画）' in page
    assert not re.search(r'\bnan\b', ''.join(doc.texts))
    assert '有 1 个 token 的嵌入里有 NaN' in page and len(doc.svgs('map')) == 2
    assert 1e6 <= max(float(t) for t in re.findall(r'text-anchor="end">([^<]+)</text>',
                                                   re.search(r'<svg class="loss".*?</svg>', page, flags=re.S).group(0)))


def test_no_training_says_so_instead_of_drawing_a_chart(mg):
    """抓 num_steps=0（读回的模型直接采样）时空的损失列表让画图除以零、max() 报错，或画出一张空图不加说明的错误。"""
    info, _, _ = tiny_record(mg, step_losses=[])
    info['losses']['after'] = info['losses']['before']
    info['model'].update(loaded_from='m.json', trained_on={'file': 'names.txt', 'fingerprint': '0' * 16})
    assert mg.loss_rows(info)[0] == ('读回的模型（这次没再训练）', 3.25)
    page = mg.page_html(info)
    doc = Page(page)
    assert not doc.errors and not doc.svgs('loss') and 'polyline' not in page
    assert '这次没有训练，所以没有损失曲线。留出集损失：3.2500。' in page
    assert len(doc.svgs('map')) == 2 and len(doc.svgs('heat')) == 2


def test_no_explain_skips_that_part_with_a_sentence(mg):
    """抓没有留出集（也就没有 explain、没有损失表）时网页崩溃、或者留下一个空白的标题不加说明的错误。"""
    info, _, _ = tiny_record(mg, text=None)
    info['losses'].update(before=None, after=None, bigram=None, per_char=None)
    page = mg.page_html(info)
    doc = Page(page)
    assert not doc.errors and not doc.svgs('heat') and not doc.svgs('bars')
    assert '跳过这一部分' in page and '没有留出验证集' in page
    assert '留出集·训练前 —（没画）' in page and len(doc.svgs('loss')) == 1


def test_user_text_is_escaped_and_control_characters_are_visible(mg):
    """抓数据里的 <、&、引号被浏览器当成标签或属性（页面被破坏，甚至运行脚本）、
    ESC 这样的控制字符原样写进网页（看不见，也不是合法的 HTML 字符）的错误。"""
    docs = DOCS + ['<script>"\'&\x1b\u202e']
    info, _, _ = tiny_record(mg, docs=docs, text='a<s\x1b')
    info['samples'].append(('<script>alert(1)</script>\x1b', '新'))
    info['settings']['input_path'] = ('"><script>x.txt', 'cli')
    info['data']['file'] = '"><img src=x>.txt'
    page = mg.page_html(info)
    doc = Page(page)
    assert not doc.errors and '<script' not in page and '<img' not in page
    assert '\x1b' not in page and '\u202e' not in page
    assert '\\x1b' in page and '\\u202e' in page
    assert '&lt;script&gt;alert(1)&lt;/script&gt;\\x1b' in page
    labels = re.findall(r'<svg class="heat".*?</svg>', page, flags=re.S)[0]
    assert [html.unescape(x) for x in re.findall(r'text-anchor="end"[^>]*>([^<]*)</text>', labels)] == ['.', 'a', '<', 's', '\\x1b']


def test_chinese_vocabulary_of_thousands(mg):
    """抓几千个汉字全画进嵌入地图（又慢又是一团墨）、网页太大、画得太慢、汉字的标签没写出来的错误。"""
    chars = [chr(0x4E00 + 3 * i) for i in range(3000)]
    docs = [''.join(chars[(7 * i + 11 * j) % 3000] for j in range(4)) for i in range(3000)]
    text = docs[5][:3]
    info, _, _ = tiny_record(mg, docs=docs, text=text, n_embd=8, n_head=2, block_size=8)
    started = time.perf_counter()
    page = mg.page_html(info)
    assert time.perf_counter() - started < 1.0
    assert len(page.encode('utf-8')) < 1_000_000
    doc = Page(page)
    assert not doc.errors and len(doc.svgs('map')) == 2
    for block in re.findall(r'<svg class="map".*?</svg>', page, flags=re.S):
        assert block.count('<circle') == mg.MAX_MAP_POINTS
        assert '<text x=' in block and '>.</text>' in block           # BOS 一定在图上
    assert f'词表有 {info["model"]["vocab_size"]} 个 token' in page
    probs = info['explain']['predictions'][0][0]
    names = info['model']['tokens']
    assert [c for c, _ in bar_rows(page)[0]] == [names[i] for i in sorted(range(len(probs)), key=lambda i: -probs[i])[:5]]
    assert f'<code>.{text}</code>' in page


def test_many_layers_and_heads_stay_legible(mg):
    """抓 4 层 × 8 个头、32 个位置时漏画某层某头、格子太小看不清或一张图太大，
    上三角（未来的位置）也画了格子（看不出因果遮罩），格子的提示里没有精确的权重的错误。"""
    text = 'abcdefghijklmnopqrstuvwxyzabcdefg'        # 比 block_size 长：只看前 32 个位置
    info, _, _ = tiny_record(mg, docs=LETTERS, text=text, n_layer=4, n_head=8, n_embd=16, block_size=32)
    page = mg.page_html(info)
    doc = Page(page)
    heats = doc.svgs('heat')
    assert len(heats) == 4 * 8 and page.count('<h4>') == 4
    assert all(int(attrs['width']) <= 400 for attrs in heats)
    n = len(info['explain']['predictions'])
    assert n == 32
    attention = info['explain']['attention']
    for index, block in enumerate(re.findall(r'<svg class="heat".*?</svg>', page, flags=re.S)):
        cells = re.findall(r'<rect x="\d+" y="\d+" width="(\d+)" height="\d+" fill="#[0-9a-f]{6}">'
                           r'<title>位置 (\d+)（[^）]*）看位置 (\d+)（[^）]*）：([^<]+)</title>', block)
        assert len(cells) == n * (n + 1) // 2
        assert all(10 <= int(size) <= 30 for size, *_ in cells)
        for _, q, k, weight in cells:
            q, k = int(q), int(k)
            assert k <= q
            assert float(weight) == attention[q][index][k]          # 提示里是精确的数，不是四舍五入过的


def test_page_is_deterministic_and_draws_no_random_numbers(mg):
    """抓画网页时用了 random（会改变之后的采样，同一个种子的结果就对不上了）、同样的 info 画出不同的网页的错误。"""
    info, _, _ = tiny_record(mg)
    random.seed(5)
    state = random.getstate()
    page = mg.page_html(info)
    assert random.getstate() == state
    assert mg.page_html(info) == page


def test_default_sized_page_is_small_and_fast(mg):
    """抓默认大小的一次运行（27 个 token、1000 步、4 个头、block_size 16）画出超过 1 MB 的网页、或者画了一秒以上的错误。"""
    losses = [3.3 - i / 1000 + 0.3 * math.sin(i) for i in range(1000)]
    info, _, _ = tiny_record(mg, docs=LETTERS, text='abcdefghijklmno', n_layer=1, n_head=4, n_embd=16, block_size=16,
                           step_losses=losses)
    started = time.perf_counter()
    page = mg.page_html(info)
    assert time.perf_counter() - started < 1.0
    assert len(page.encode('utf-8')) < 1_000_000


# ---------------------------------------------------------------------------
# 真的浏览器
# ---------------------------------------------------------------------------

def png_detail(path):
    """截图 PNG 里有多少“内容”：PNG 先逐行过滤（每个字节减去左边或上边的字节）再压缩，
    纯色的一片过滤后全是 0。所以解压后不为 0 的字节所占的比例，就是画面里有变化的部分。返回 (宽, 高, 比例)。"""
    data = path.read_bytes()
    assert data[:8] == b'\x89PNG\r\n\x1a\n'
    pos, idat, width, height = 8, b'', 0, 0
    while pos < len(data):
        length, kind = struct.unpack('>I4s', data[pos:pos + 8])
        if kind == b'IHDR':
            width, height = struct.unpack('>II', data[pos + 8:pos + 16])
        elif kind == b'IDAT':
            idat += data[pos + 8:pos + 8 + length]
        pos += 12 + length
    raw = zlib.decompress(idat)
    return width, height, 1 - raw.count(0) / len(raw)


@pytest.mark.skipif(shutil.which('chromium') is None, reason='没有 chromium')
def test_a_real_browser_draws_the_page(mg, tmp_path):
    """抓网页在真的浏览器里是空白的错误（例如 CSS 把内容藏了起来、SVG 的大小是 0、编码写错了）。
    空白页的对照证明这个量法真的能分辨出来。"""
    def shoot(text, name):
        page, png = tmp_path / f'{name}.html', tmp_path / f'{name}.png'
        page.write_text(text, encoding='utf-8')
        subprocess.run(['chromium', '--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
                        '--disable-background-networking', f'--user-data-dir={tmp_path / "profile"}',
                        f'--screenshot={png}', '--window-size=1280,2000', page.as_uri()],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)
        return png_detail(png)

    page = mg.page_html(tiny_record(mg, n_layer=2)[0])
    width, height, detail = shoot(page, 'page')
    # 只留下图（损失曲线、热图、嵌入地图），文字都去掉：CSS 把图藏起来或缩成 0 时，这一张就是空白的
    figures = re.findall(r'<svg class="(?:loss|heat|map)".*?</svg>', page, flags=re.S)
    figures_only = shoot(page[:page.index('<body>')] + '<body>' + ''.join(figures) + '</body></html>', 'figures')[2]
    blank = shoot('<!DOCTYPE html><html lang="zh-CN"><meta charset="utf-8"><title>空</title></html>', 'blank')[2]
    assert (width, height) == (1280, 2000)
    assert blank < 0.001 < figures_only and detail > 0.01    # 空白页只有每行开头的过滤字节不为 0（约 0.0003）


# ---------------------------------------------------------------------------
# 计算图：第 3 节的例子，用本文件的 Value 算
# ---------------------------------------------------------------------------

def graph_nodes(page, layout='across'):
    """每张计算图的节点 {名字: (data, grad)} 和箭头上的局部导数（按画的顺序），一张图一项。"""
    graphs = []
    for block in re.findall(rf'<svg class="graph {layout}".*?</svg>', page, flags=re.S):
        nodes = re.findall(r'class="name"[^>]*>([^<]+)</text><text[^>]*>data ([^<]+)</text><text[^>]*>grad ([^<]+)</text>', block)
        graphs.append(({html.unescape(n): (float(d), float(g)) for n, d, g in nodes},
                       [float(x) for x in re.findall(r'class="local"[^>]*>([^<]+)</text>', block)]))
    return graphs


def test_the_computation_graph_is_the_tutorial_example_computed_by_this_file(mg):
    """抓计算图上的数是抄来的（不是本文件的 Value 算的）、节点或箭头画漏了、局部导数写错了的错误：和一份只用普通小数
    独立算出的 L = ln(relu(a·b + c))（a = 2，b = −3，c = 10）对比，也就是第 3.3 节表里的数；第二张图里用了三次的 a，
    梯度是三条路之和 7。宽屏和手机两种排法的数一样。"""
    a, b, c = 2.0, -3.0, 10.0
    d, s = a * b, a * b + c
    grad = 1 / s                                         # ∂L/∂r = 1/r，r = s > 0 时 relu 的导数是 1
    expected = {'a': (a, grad * b), 'b': (b, grad * a), 'c': (c, grad), 'd = a·b': (d, grad), 's = d + c': (s, grad),
                'r = relu(s)': (s, grad), 'L = ln r': (math.log(s), 1.0)}
    page = mg.page_html(tiny_record(mg)[0])
    for layout in ('across', 'down'):
        (first, locals1), (second, locals2) = graph_nodes(page, layout)
        assert first.keys() == expected.keys()
        for name, (data, g) in expected.items():
            assert first[name] == (pytest.approx(data, rel=1e-4), pytest.approx(g, rel=1e-4)), name
        assert sorted(locals1) == sorted([b, a, 1.0, 1.0, 1.0, 1 / s])     # ∂d/∂a = b，∂d/∂b = a，……，∂L/∂r = 1/r
        assert second == {'a': (3.0, 7.0), 'm = a·a': (9.0, 1.0), 'y = m + a': (12.0, 1.0)} and sorted(locals2) == [1.0, 1.0, 3.0, 3.0]
    assert first == {n: (pytest.approx(d), pytest.approx(g)) for n, (d, g) in (('a', (2, -0.75)), ('b', (-3, 0.5)), ('c', (10, 0.25)),
                     ('d = a·b', (-6, 0.25)), ('s = d + c', (4, 0.25)), ('r = relu(s)', (4, 0.25)), ('L = ln r', (1.3863, 1)))}   # 3.3 节的表


def test_a_broken_value_shows_up_in_the_picture(mg, monkeypatch):
    """抓图上的数和学习者的代码无关的错误：把 __mul__ 的局部导数写反，a 的梯度就不再是 −0.75；backward 里把 += 写成 =，
    用了三次的 a 的梯度就不再是 7。提速开着也一样：画图用的是第 3 节课本写法的 backward。"""
    def wrong_backward(self):                           # 课本写法，只是把 += 写成了 =
        topo, visited = [], set()

        def visit(node):
            if node not in visited:
                visited.add(node)
                for child in node._children:
                    visit(child)
                topo.append(node)
        visit(self)
        self.grad = 1.0
        for node in reversed(topo):
            for child, local in zip(node._children, node._local_grads):
                child.grad = local * node.grad
    mg.speed_tricks = True
    monkeypatch.setattr(mg.Value, 'backward', wrong_backward)
    (first, _), (second, _) = graph_nodes(mg.page_html(tiny_record(mg)[0]))
    assert first['a'][1] == -0.75 and second['a'][1] != 7.0
    monkeypatch.undo()
    monkeypatch.setattr(mg.Value, '__mul__', lambda self, other: mg.Value(self.data * other.data, (self, other), (self.data, other.data))
                        if isinstance(other, mg.Value) else mg.Value(self.data * other, (self,), (other,)))
    (first, _), (second, _) = graph_nodes(mg.page_html(tiny_record(mg)[0]))
    assert first['a'][1] == 0.5 and first['b'][1] == -0.75            # 局部导数互换了：图上照实画出错的数
    monkeypatch.setattr(mg.Value, 'relu', lambda self: 1 / 0)
    assert '画不出来' in mg.page_html(tiny_record(mg)[0])              # Value 出错：说一句，网页其余部分照样画


# ---------------------------------------------------------------------------
# 不用鼠标也看得到数；嵌入地图的标签；中文数据；BPE 的 token
# ---------------------------------------------------------------------------

def test_heat_maps_write_their_percentages_in_the_cells_or_in_a_table(mg):
    """抓热图上的数只在鼠标提示里（手机和纸上看不到）的错误：格子够大（默认 9 个位置）时百分数写在格子里，
    和终端注意力表的数相同；位置多、格子小的时候写在图下面的表里。"""
    info, _, _ = tiny_record(mg, text='isabella')
    page = mg.page_html(info)
    first = re.search(r'<svg class="heat".*?</svg>', page, flags=re.S).group(0)
    shown = [int(x) for x in re.findall(r'class="cellnum[^"]*"[^>]*>(\d+)</text>', first)]
    weights = [w for row in info['explain']['attention'] for w in row[0]]          # 第 0 层第 0 个头，按行
    assert shown == [round(100 * w) for w in weights] and '<table class="attn">' not in page
    info, _, _ = tiny_record(mg, docs=LETTERS, text='abcdefghijklmnop', block_size=16)
    page = mg.page_html(info)
    assert 'class="cellnum' not in page and page.count('<table class="attn">') == 2
    table = re.search(r'<table class="attn">.*?</table>', page, flags=re.S).group(0)
    assert [int(x) for x in re.findall(r'<td>(\d+)</td>', table)] == [round(100 * w) for row in info['explain']['attention'] for w in row[0]]


def label_boxes(block):
    """嵌入地图上每个标签大约占的矩形（14px 的字，一列约 8.5 像素）。"""
    return [(float(x), float(y) - 11, 8.5 * sum(2 if '\u4e00' <= ch <= '\u9fff' else 1 for ch in html.unescape(t)) + 2, 14)
            for x, y, t in re.findall(r'<text x="([\d.]+)" y="([\d.]+)">([^<]+)</text>', block)]


@pytest.mark.parametrize('docs', [LETTERS, [''.join(chr(0x4E00 + (7 * i + 3 * j) % 70) for j in range(4)) for i in range(200)]],
                         ids=['letters', '70_chinese_characters'])
def test_embedding_labels_do_not_overlap(mg, docs):
    """抓标签叠在一起读不出来的错误（BOS 的“.”压在 y 上、k 盖住 t，汉字数据的 70 个标签糊成一团）：没有两个标签重叠，
    挪开了的标签有一条线连回它的点；实在放不下的不写，并说有几个。"""
    page = mg.page_html(tiny_record(mg, docs=docs, text=docs[1][:3])[0])
    for block in re.findall(r'<svg class="map".*?</svg>', page, flags=re.S):
        boxes = label_boxes(block)
        for i, (x1, y1, w1, h1) in enumerate(boxes):
            for x2, y2, w2, h2 in boxes[:i]:
                assert not (x1 < x2 + w2 - 0.5 and x2 < x1 + w1 - 0.5 and y1 < y2 + h2 - 0.5 and y2 < y1 + h1 - 0.5), (x1, y1, x2, y2)
        skipped = re.search(r'（(\d+) 个标签没地方写', block)
        assert len(boxes) + int(skipped.group(1) if skipped else 0) == block.count('<circle')


def test_vowels_are_coloured_only_for_latin_letters(mg):
    """抓汉字数据的网页也写着“元音 a e i o u”的错误：只有数据是英文字母时才给元音上色、写图例。"""
    latin = mg.page_html(tiny_record(mg)[0])
    assert '元音 a e i o u' in latin and 'class="vowel"' in latin
    chinese = mg.page_html(tiny_record(mg, docs=['床前明月光', '疑是地上霜', '举头望明月'], text='明月')[0])
    assert '元音 a e i o u' not in chinese and 'class="vowel"' not in chinese and '不分元音辅音' in chinese


def test_bpe_explain_shows_the_tokens_and_the_bytes_of_half_characters(mg):
    """抓用 BPE 时网页只画出一串看不懂的编号、半个字的 token 被写成乱码（�）、没说每个 token 盖住几个字符的错误。"""
    docs = ['一一一', '一丁', '丁一', '七一'] * 5
    base = mg.BPETokenizer(sorted(set(''.join(docs).encode('utf-8'))), [])
    tok = mg.BPETokenizer(base.base_bytes, mg.learn_merges([base.encode(d)[1:-1] for d in docs], 2, len(base.base_bytes)))
    page = mg.page_html(tiny_record(mg, docs=docs, text='一七', tok=tok)[0])
    assert '�' not in page
    boxes = re.findall(r'<span class="tokbox"><code>([^<]+)</code><small>([^<]+)</small></span>', page)
    assert [html.unescape(t) for t, _ in boxes] == [mg.token_names(tok)[t] for t in tok.encode('一七')[1:-1]]
    assert ('一', '1 个字符') in boxes and any(t.startswith('&lt;e4') and n == '半个字的字节' for t, n in boxes)


def test_only_a_page_we_drew_and_nobody_changed_counts_as_ours(mg, tmp_path):
    """抓只要文件里有生成器那一行就当成“我们的网页”（一篇引用了这一行的笔记就会被覆盖）的错误：只认 SHA-256 对得上的页面。"""
    page = mg.page_html(tiny_record(mg)[0])
    ours, note, edited = tmp_path / 'a.html', tmp_path / 'note.md', tmp_path / 'b.html'
    ours.write_text(page, encoding='utf-8')
    mark = re.search(r'<meta name="generator"[^>]*>', page).group(0)
    note.write_text(f'# 我的笔记\n网页开头有这样一行：{mark}\n', encoding='utf-8')
    edited.write_text(page.replace('这次运行一览', '这次运行一览（我加了批注）'), encoding='utf-8')
    assert mg.is_our_page(str(ours)) and not mg.is_our_page(str(note)) and not mg.is_our_page(str(edited))


LAYOUT_PROBE = '''<script>
addEventListener('load', () => {
  let smallest = 1e9, where = '';
  for (const t of document.querySelectorAll('svg text')) {
    if (!t.getClientRects().length) continue;                      // display: none 的那张图（另一种排法）不算
    const m = t.getScreenCTM(), size = parseFloat(getComputedStyle(t).fontSize) * Math.hypot(m.a, m.b);
    if (size < smallest) { smallest = size; where = t.closest('svg').getAttribute('class') + ': ' + t.textContent; }
  }
  const report = parent.document.createElement('pre');
  report.id = 'layout';
  report.textContent = JSON.stringify({width: innerWidth, scroll: document.documentElement.scrollWidth, smallest, where});
  parent.document.body.appendChild(report);
});
</script>'''


@pytest.mark.skipif(shutil.which('chromium') is None, reason='没有 chromium')
@pytest.mark.parametrize('width', [420, 1280])
def test_a_real_browser_lays_the_page_out_readably_at_phone_and_desktop_width(mg, tmp_path, width):
    """抓手机上看不清、要左右滑的错误：在真的浏览器（headless Chromium）里量，420 像素宽（手机）和 1280 像素宽时，
    页面都不比屏幕宽，所有看得见的 SVG 文字渲染出来都至少 10 像素高（图整体缩小时字也跟着缩小）。
    量法：把网页放进一个指定宽度的 iframe（srcdoc，和外层同源），里面加一小段只给测试用的脚本，读出布局写到外层，
    chromium --dump-dom 打印外层的 HTML。网页本身没有脚本。"""
    page = mg.page_html(tiny_record(mg, text='isabella', n_embd=16, n_head=4, block_size=16,
                                    step_losses=[3.3 - i / 400 for i in range(1000)])[0])
    probe = tmp_path / 'probe.html'
    probe.write_text(f'<!DOCTYPE html><html><body style="margin:0"><iframe style="width:{width}px;height:4000px;border:0" '
                     f'srcdoc="{html.escape(page.replace("</body>", LAYOUT_PROBE + "</body>"), quote=True)}"></iframe></body></html>', encoding='utf-8')
    dom = subprocess.run(['chromium', '--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
                          f'--user-data-dir={tmp_path / "profile"}', '--window-size=1400,1000', '--dump-dom', probe.as_uri()],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, encoding='utf-8', timeout=120).stdout
    layout = json.loads(html.unescape(re.search(r'<pre id="layout">([^<]*)</pre>', dom).group(1)))
    assert layout['width'] == width and layout['scroll'] <= width, layout            # 不用左右滑
    assert layout['smallest'] >= 10, layout                                           # 最小的字也有 10 像素
