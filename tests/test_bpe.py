"""第 9 节：字节级 BPE。手算的例子、编码再解码、ASCII 数据上 0 个合并和字符级分词一模一样、
模型文件里的分词器、每个字符的损失、半个字的显示和标签、整次运行（汉字数据）。"""
import json
import math
import random
import re

import pytest

from conftest import SMALL, assert_clean_failure, assert_nothing_raw, held_out_loss, read_checkpoint, run_main, squash, write_lines

# 手算的例子（字节 a=97 b=98 c=99 d=100，起始编号 a0 b1 c2 d3）：
#   训练文档 abcabc → [0 1 2 0 1 2]，abd → [0 1 3]，cab → [2 0 1]
#   相邻对：(0,1) 出现 2+1+1 = 4 次，(1,2) 2 次，(2,0) 1+1 = 2 次，(1,3) 1 次 → 第 1 个合并 (0,1) = ab，编号 4
#   合并后：[4 2 4 2]、[4 3]、[2 4]；(4,2) 2 次，(2,4) 1+1 = 2 次，(4,3) 1 次
#   一样多时选 (a, b) 最小的一对：(2,4) < (4,2) → 第 2 个合并 (2,4) = c+ab = cab，编号 5
#   合并后：[4 5 2]、[4 3]、[5]；剩下的对都只出现 1 次，不再合并
HAND_DOCS = ['abcabc', 'abd', 'cab']


def hand_tokenizer(mg, merges=10):
    mg.tokenizer, mg.bpe_merges = 'bpe', merges
    return mg.make_tokenizer(HAND_DOCS, HAND_DOCS, None)


def test_merges_learned_on_a_tiny_text_match_the_hand_worked_example(mg):
    """抓数错相邻对（跨文档数、数了 BOS）、一样多时选错了对、只出现一次的对也合并、或者合并后没更新计数的错误。"""
    tok = hand_tokenizer(mg)
    assert tok.base_bytes == [97, 98, 99, 100]
    assert tok.merges == [(0, 1), (2, 4)]
    assert tok.pieces[4:] == [b'ab', b'cab'] and tok.vocab_size == 7 and tok.bos == 6
    assert hand_tokenizer(mg, merges=1).merges == [(0, 1)]                 # bpe_merges 是上限
    assert mg.merge_pair([1, 2, 3, 1, 2], (1, 2), 9) == [9, 3, 9]
    assert mg.merge_pair([7, 7, 7], (7, 7), 8) == [8, 7]                  # 三个连着时只合并左边两个


def test_encode_applies_merges_in_the_order_learned(mg):
    """抓编码时按出现先后而不是学到的先后合并、漏了 BOS、或者解码拼错字节的错误。"""
    tok = hand_tokenizer(mg)
    assert tok.encode('abcabc') == [6, 4, 5, 2, 6]       # [0 1 2 0 1 2] → ab: [4 2 4 2] → cab: [4 5 2]
    assert tok.encode('cabd') == [6, 5, 3, 6]            # [2 0 1 3] → [2 4 3] → [5 3]
    assert tok.encode('') == [6, 6]
    for text in HAND_DOCS + ['dcba', 'aaaa', 'cabcab']:
        assert tok.decode(tok.encode(text)) == text
    assert mg.token_names(tok) == ['a', 'b', 'c', 'd', 'ab', 'cab', '.']
    with pytest.raises(KeyError):
        tok.encode('abe')                                # e 的字节不在起始词表里
    assert tok.unknown_chars('abe€') == ['e', '€']


def test_random_chinese_text_round_trips(mg):
    """抓多字节字符被拆错、合并跨过了字的边界后解码错、或者编出的 token 比字节还多的错误。
    数据：几百个由几百个汉字随机组成的 4 字串（和测试用的其他数据一样，自己造）。"""
    rng = random.Random(0)
    chars = [chr(0x4e00 + rng.randrange(20000)) for _ in range(300)]
    docs = [''.join(rng.choice(chars[:60] if rng.random() < 0.7 else chars) for _ in range(4)) for _ in range(400)]
    mg.tokenizer, mg.bpe_merges = 'bpe', 150
    tok = mg.make_tokenizer(docs, docs[:350], None)
    assert 0 < len(tok.merges) <= 150 and tok.vocab_size == len(tok.base_bytes) + len(tok.merges) + 1
    assert len({tok.pieces[i] for i in range(tok.bos)}) == tok.bos           # 每个 token 的字节都不一样
    for doc in docs:
        ids = tok.encode(doc)
        assert tok.decode(ids) == doc and len(ids) - 2 <= len(doc.encode('utf-8'))
    whole = [name for name in mg.token_names(tok)[len(tok.base_bytes):-1] if not name.startswith('<')]
    assert whole and all(name in ''.join(docs) for name in whole)             # 合并出的整字真的在数据里
    halves = [name for name in mg.token_names(tok) if name.startswith('<')]
    assert halves and all(re.fullmatch(r'<[0-9a-f]{2}( [0-9a-f]{2})*>', name) for name in halves)


def test_ascii_with_zero_merges_is_the_character_tokenizer(mg):
    """抓起始词表不是按字节从小到大编号、或者 BOS 的编号不在最后的错误：全是 ASCII 的数据、0 个合并时，
    每个 token 的编号必须和字符级分词完全相同。"""
    docs = ['emma', 'olivia', 'ava', 'zoe', 'x.y', 'A b']
    char = mg.Tokenizer(docs)
    mg.tokenizer, mg.bpe_merges = 'bpe', 0
    bpe = mg.make_tokenizer(docs, docs, None)
    assert bpe.vocab_size == char.vocab_size and bpe.bos == char.bos
    for doc in docs + ['', 'mama']:
        assert bpe.encode(doc) == char.encode(doc)
    assert mg.token_names(bpe) == mg.token_names(char)


def test_a_whole_run_with_zero_merges_prints_the_same_numbers(data):
    """整次运行：ASCII 数据上 --tokenizer=bpe --bpe_merges=0 和字符级分词打印相同的损失、相同的样本。
    抓分词器以外的地方（评估、采样、二元语法对照、每字符损失）对 BPE 另有一套、结果不同的错误。"""
    char = run_main(f'--input_path={data}', '--num_steps=30', *SMALL)
    bpe = run_main(f'--input_path={data}', '--num_steps=30', '--tokenizer=bpe', '--bpe_merges=0', *SMALL)
    assert char.returncode == bpe.returncode == 0, bpe.stderr

    def numbers(stdout):
        table = stdout[stdout.index('留出集上'):stdout.index('每个字符的损失')]
        samples = re.findall(r'^ +\d+\. (\S+)', stdout, flags=re.M)
        steps = re.findall(r'^步 .*?loss (\S+)', stdout, flags=re.M)
        return table, samples, steps

    assert numbers(char.stdout) == numbers(bpe.stdout) and numbers(char.stdout)[1]
    per_char = [re.search(r'每个字符的损失：(\d+\.\d+)', out.stdout).group(1) for out in (char, bpe)]
    assert per_char[0] == per_char[1] == f'{held_out_loss(char.stdout, "训练后"):.4f}'


def test_loss_per_character_by_hand(mg):
    """抓每字符损失的比例算反、忘了结尾的 BOS 也算一个字符、或者被 block_size 截断的名字算了看不到的目标的错误。"""
    tok = hand_tokenizer(mg)
    # abcabc → 目标 [4 5 2 BOS]：4 个位置，盖住 ab + cab + c = 6 个字符，再加结尾的 BOS = 7
    assert mg.chars_per_position(tok, ['abcabc']) == pytest.approx(4 / 7)
    # cabd → 目标 [5 3 BOS]：3 个位置，4 个字符 + 1
    assert mg.chars_per_position(tok, ['abcabc', 'cabd']) == pytest.approx((4 + 3) / (7 + 5))
    mg.block_size = 2                                    # 只看前 2 个位置：目标 [4 5]，5 个字符，没有 BOS
    assert mg.chars_per_position(tok, ['abcabc']) == pytest.approx(2 / 5)
    mg.block_size = 16
    assert mg.chars_per_position(mg.Tokenizer(['abc']), ['abc', 'cab']) == 1.0


def test_half_a_character_is_shown_as_bytes_and_labelled(mg):
    """抓半个字的 token 显示成乱码或者直接消失、样本停在字的中间却不说明的错误。"""
    tok = mg.BPETokenizer(sorted(set('一丁'.encode('utf-8'))), [])
    names = mg.token_names(tok)
    assert names[:-1] == [f'<{b:02x}>' for b in tok.base_bytes]
    one = tok.encode('一')[1:-1]
    assert tok.decode(one[:2]) == '\ufffd'
    assert mg.byte_note(tok, tok.decode(one[:2])) == '（最后一个字不完整）'
    assert mg.byte_note(tok, '\ufffd丁') == '（有拼不成字的字节，显示成 �）'
    assert mg.byte_note(tok, '一丁') == '' and mg.byte_note(mg.Tokenizer(['\ufffd']), '\ufffd') == ''


def test_learning_merges_says_how_long_it_took_when_slow(mg, monkeypatch, capsys):
    """抓学合并要好几秒却一声不吭（像死机）、或者很快的时候也啰嗦的错误。"""
    hand_tokenizer(mg)
    assert capsys.readouterr().out == ''
    clock = iter([0.0, 2.5, 2.5])
    monkeypatch.setattr(mg.time, 'perf_counter', lambda: next(clock))
    hand_tokenizer(mg)
    assert squash(capsys.readouterr().out) == '学BPE合并用了2.5秒（学到2个）。'


def chinese_data(tmp_path, count=300):
    rng = random.Random(1)
    chars = [chr(0x4e00 + rng.randrange(20000)) for _ in range(120)]
    lines = [''.join(rng.choice(chars[:30] if rng.random() < 0.8 else chars) for _ in range(4)) for _ in range(count)]
    return write_lines(tmp_path / '成语.txt', '\n'.join(lines) + '\n'), lines


def test_chinese_run_trains_saves_loads_prompts_and_explains(tmp_path):
    """整条路：汉字数据、BPE 训练、保存、读回（分词器来自模型文件，不重新学）、用开头采样、解读，没有回溯，
    终端上没有原样的控制字节；读回的模型给出同样的留出集损失，编码不了的开头得到一句说明。"""
    data, lines = chinese_data(tmp_path)
    ckpt = tmp_path / 'bpe.json'
    first = run_main(f'--input_path={data}', '--tokenizer=bpe', '--bpe_merges=40', '--num_steps=20', f'--save_path={ckpt}',
                     f'--html_path={tmp_path / "run.html"}', *SMALL)
    assert first.returncode == 0, first.stderr
    assert_nothing_raw(first)
    assert re.search(r'词表：\d+ 个 token = \d+ 个字节 \+ \d+ 个合并 \+ 1 个 BOS；最长的合并：', first.stdout)
    assert re.search(r'每个字符的损失：\d+\.\d{4}', first.stdout)
    saved = read_checkpoint(ckpt)
    assert saved['tokenizer']['kind'] == 'bpe' and 0 < len(saved['tokenizer']['merges']) <= 40 and 'vocabulary' not in saved
    prompt = lines[0][:1]
    again = run_main(f'--input_path={data}', f'--load_path={ckpt}', '--num_steps=0', f'--prompt={prompt}', f'--explain={lines[1]}', *SMALL)
    assert again.returncode == 0, again.stderr
    assert_nothing_raw(again)
    assert held_out_loss(again.stdout, '读回的模型（这次没再训练）') == pytest.approx(saved['val_loss'], abs=5e-5)
    assert 'tokenizer=bpe^' in squash(again.stdout) and '学BPE合并' not in squash(again.stdout)
    samples = re.findall(r'^ +\d+\. (\S+)', again.stdout, flags=re.M)
    assert samples and all(s.startswith(prompt) for s in samples)
    assert f'模型怎么读 {lines[1]!r}' in again.stdout
    bad = run_main(f'--input_path={data}', f'--load_path={ckpt}', '--num_steps=0', '--prompt=é', *SMALL)
    assert_clean_failure(bad, 2, '--prompt 里有模型不认识的字符 é', '个字节')


@pytest.mark.parametrize('edit, message', [
    (lambda t: t.update(kind='sentencepiece'), '"kind": "bpe"'),
    (lambda t: t.update(bytes=[98, 97]), '从小到大'),
    (lambda t: t.update(bytes=[97, 256]), '0–255'),
    (lambda t: t['merges'].append([0, len(t['bytes']) + len(t['merges']) + 5]), '只用前面已有的 token'),
    (lambda t: t['merges'].append(t['merges'][0]), '合并 "merges"'),
])
def test_a_damaged_bpe_tokenizer_in_the_model_file_is_refused(tmp_path, edit, message):
    """抓读回的模型文件里分词器坏了（合并用到后面才有的 token、字节乱序或超出 0–255、不认识的 kind、重复的合并）
    却照样建出分词器、之后在某处崩溃或悄悄编错码的错误：一句话说出是 "tokenizer" 的问题。"""
    data, _ = chinese_data(tmp_path, 100)
    ckpt = tmp_path / 'bpe.json'
    assert run_main(f'--input_path={data}', '--tokenizer=bpe', '--bpe_merges=10', '--num_steps=2', f'--save_path={ckpt}', *SMALL).returncode == 0
    saved = read_checkpoint(ckpt)
    edit(saved['tokenizer'])
    ckpt.write_text(json.dumps(saved, ensure_ascii=False), encoding='utf-8')
    result = run_main(f'--input_path={data}', f'--load_path={ckpt}', '--num_steps=0', *SMALL)
    assert_clean_failure(result, 1, '"tokenizer"', message)


def test_command_line_shape_of_a_bpe_model_is_fixed_by_the_file(tmp_path):
    """抓读回 BPE 模型时命令行的 --tokenizer=char 或不同的 --bpe_merges 被悄悄用上（词表就对不上了）的错误。"""
    data, _ = chinese_data(tmp_path, 100)
    ckpt = tmp_path / 'bpe.json'
    assert run_main(f'--input_path={data}', '--tokenizer=bpe', '--bpe_merges=10', '--num_steps=2', f'--save_path={ckpt}', *SMALL).returncode == 0
    merges = len(read_checkpoint(ckpt)['tokenizer']['merges'])
    result = run_main(f'--input_path={data}', f'--load_path={ckpt}', '--tokenizer=char', '--num_steps=0', *SMALL)
    assert_clean_failure(result, 2, '--tokenizer=char', "模型文件里的 tokenizer 是 bpe")
    result = run_main(f'--input_path={data}', f'--load_path={ckpt}', f'--bpe_merges={merges + 1}', '--num_steps=0', *SMALL)
    assert_clean_failure(result, 2, f'--bpe_merges={merges + 1}', f'模型文件里的 bpe_merges 是 {merges}')
    assert math.isfinite(read_checkpoint(ckpt)['val_loss'])


def test_merges_are_counted_inside_each_training_document_only(mg):
    """抓把训练集连成一篇来数（数了跨文档的相邻对 “c|a”）、在留出集上也学合并、或者起始字节只取训练集（留出集独有的字节
    编不了码）的错误。训练集里 (a, b) 在两篇文档里各出现一次；c、a 单独成篇，连起来才会有 3 次 (c, a)；
    (x, y) 只在留出集里出现。"""
    train = ['c', 'a', 'c', 'a', 'c', 'a', 'ab', 'ab']
    docs = train + ['xy', 'xy', 'xy']
    mg.tokenizer, mg.bpe_merges = 'bpe', 10
    tok = mg.make_tokenizer(docs, train, None)
    assert tok.base_bytes == list(b'abcxy')                 # 起始字节来自全部数据：a0 b1 c2 x3 y4
    assert tok.merges == [(0, 1)]                            # 只有 ab；(c, a)、(x, y) 都不是训练文档里的相邻对
    assert tok.encode('xyab') == [6, 3, 4, 5, 6] and tok.decode(tok.encode('xyab')) == 'xyab'


def test_encode_merges_the_earliest_learned_pair_first_not_the_leftmost(mg):
    """抓编码时从左往右、见到能合并的对就合并（而不是先做最早学到的合并）的错误：先学的是 bc，后学的是 ab，
    所以 abc 是 a + bc，不是 ab + c。"""
    tok = mg.BPETokenizer(list(b'abc'), [(1, 2), (0, 1)])     # a0 b1 c2，bc = 3，ab = 4，BOS = 5
    assert tok.encode('abc') == [5, 0, 3, 5]
    assert tok.encode('abab') == [5, 4, 4, 5] and tok.encode('bcab') == [5, 3, 4, 5]


def test_a_token_with_a_letter_and_half_a_character_is_shown_as_bytes(mg):
    """抓“a 加上半个汉字”这样的 token 只显示成 a（拼不成字的字节被悄悄丢掉，和真正的 a 分不清）的错误：
    只要 token 的字节不是完整的文字，就整个显示成字节。"""
    tok = mg.BPETokenizer(sorted(set('a一'.encode('utf-8'))), [(0, 3), (3, 2), (5, 1)])    # a0 80→1 b8→2 e4→3
    assert mg.token_names(tok) == ['a', '<80>', '<b8>', '<e4>', '<61 e4>', '<e4 b8>', '一', '.']


@pytest.mark.parametrize('tokenizer', [
    {'kind': 'bpe', 'bytes': [97, 98], 'merges': [[0, 2]]},          # 第 0 个合并用到它自己造出的 token 2
    {'kind': 'bpe', 'bytes': [97, 97, 98], 'merges': []},             # 重复的字节
    {'kind': 'bpe', 'bytes': [97.0, 98], 'merges': []},               # 字节不是整数
    {'kind': 'bpe', 'bytes': [True, 98], 'merges': []},
    {'kind': 'bpe', 'bytes': [97, 98], 'merges': [[0, 1], [0, 1]]},   # 重复的合并
    None,                                                             # 字符级：落单的代理码位
], ids=['merge_uses_itself', 'duplicate_bytes', 'float_byte', 'bool_byte', 'duplicate_merge', 'surrogate_character'])
def test_check_tokenizer_refuses_each_kind_of_damage(mg, tokenizer):
    """抓 check_tokenizer 漏查一种损坏的错误（合并差一地用到自己造出的 token、字节重复、字节是 97.0 或 true、合并重复、
    字符表里有 \\ud800）：漏了的话，读回的模型要么在建分词器时抛回溯，要么两个编号代表同一个字节。"""
    ckpt = {'tokenizer': tokenizer} if tokenizer else {'vocabulary': ['a', '\ud800']}
    problems = []
    assert mg.check_tokenizer({'tokenizer': {'kind': 'bpe', 'bytes': [97, 98], 'merges': [[0, 1], [2, 0]]}}, lambda ok, p: ok or problems.append(p)) == 5
    assert mg.check_tokenizer({'vocabulary': ['a', 'b']}, lambda ok, p: ok or problems.append(p)) == 3 and not problems
    mg.check_tokenizer(ckpt, lambda ok, problem: ok or problems.append(problem))
    assert len(problems) == 1 and ('"tokenizer"' if tokenizer else '"vocabulary"') in problems[0]
