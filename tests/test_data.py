"""第 1–2 节：读数据文件 (read_text、load_docs)、划分训练集和留出集 (split_docs)、分词器，以及自带的 input.txt。
数据文件的各种别扭情形：找不到、是文件夹、是管道或设备、编码不对、BOM、NUL、各种换行、空文件、长行、只有一行。"""
import hashlib
import os
import random
import re

import pytest

from conftest import NAMES, POSIX, ROOT, SMALL, assert_clean_failure, numbered_samples, run_main, run_script, squash, write_lines


# ---------------------------------------------------------------------------
# 自带的数据，划分，分词器
# ---------------------------------------------------------------------------

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


def test_a_one_line_file_trains_and_samples(tmp_path):
    """抓留出集为空时还去评估、0/0 除以 0 的错误：只有一行的文件也能训练和采样，并说明没有留出验证集。"""
    path = write_lines(tmp_path / 'one.txt', 'zoe\n')
    result = run_main(f'--input_path={path}', '--num_steps=5', *SMALL)
    assert result.returncode == 0, result.stderr
    assert len(numbered_samples(result.stdout)) == 5
    assert '没有留出验证集' in result.stdout


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


# ---------------------------------------------------------------------------
# 读得进来的数据文件：每行一个名字
# ---------------------------------------------------------------------------

def test_only_real_line_breaks_split_names(mg, tmp_path):
    """抓用 str.splitlines() 分行的错误：它还会在 \\u2028、\\x85、\\x1c、换页符这些地方分行，一个名字被拆成两个。"""
    path = write_lines(tmp_path / 'n.txt', 'a\u2028b\nc\x85d\re\x1cf\r\ng\fh\n\n  i j  \n')
    assert mg.load_docs(path) == ['a\u2028b', 'c\x85d', 'e\x1cf', 'g\fh', 'i j']


def test_bom_crlf_tabs_and_spaces_stay_out_of_the_vocabulary(tmp_path, mg):
    """抓 BOM、回车符或行首行尾的空白混进词表、变成“字符”的错误：Windows 记事本式的文件读出来是干净的名字。"""
    path = write_lines(tmp_path / 'win.txt', '\ufeffanna\r\n\tbob  \r\n\r\n  carla\t\r\n')
    assert mg.load_docs(path) == ['anna', 'bob', 'carla']
    result = run_main(f'--input_path={path}', '--num_steps=3', *SMALL)
    assert result.returncode == 0, result.stderr
    assert '字符：abclnor\n' in result.stdout


@pytest.mark.parametrize('content', ['', '\n\n  \n\t\n', '\ufeff\r\n \r\n'])
def test_empty_or_blank_file(tmp_path, content):
    """抓没有数据也往下走、到后面才崩溃（例如 step % len(train_docs) 除以 0）的错误：空文件、只有空白行、
    只有 BOM 和空行的文件都以退出码 1 结束，提示“每行写一个名字”。"""
    path = write_lines(tmp_path / 'blank.txt', content)
    assert_clean_failure(run_main(f'--input_path={path}'), 1, 'blank.txt', '每行写一个名字')


def test_long_lines_are_reported_once_with_a_block_size_that_fits(tmp_path):
    """抓三类错误：长行让训练崩溃或被悄悄截断；“差一”的计数（40、16 个字符的行超长，15 个字符加结尾的 BOS
    正好 16，不算）；建议的 block_size 少算了结尾的 BOS，照着改了还是不够。"""
    path = write_lines(tmp_path / 'long.txt', '\n'.join(['a' * 40, 'b' * 16, 'c' * 15, 'bob']) + '\n')
    warned = run_main(f'--input_path={path}', '--num_steps=3', *SMALL)
    assert warned.returncode == 0, warned.stderr
    assert squash(warned.stdout).count(squash('有 2 行的“token 数 + 结尾的 BOS”超过上下文长度 block_size=16')) == 1
    assert '--block_size=41' in warned.stdout
    fixed = run_main(f'--input_path={path}', '--num_steps=3', '--block_size=41', *SMALL)
    assert fixed.returncode == 0 and '超过上下文长度' not in fixed.stdout


def test_chinese_poems_work(tmp_path):
    """抓假定数据只有英文字母（例如把词表写死成 a～z）的错误：中文诗句（每行一句）也能训练，编出的样本里有汉字。"""
    poems = ['床前明月光', '疑是地上霜', '举头望明月', '低头思故乡', '白日依山尽', '黄河入海流'] * 3
    path = write_lines(tmp_path / 'poems.txt', '\n'.join(poems) + '\n')
    result = run_main(f'--input_path={path}', '--num_steps=30', *SMALL)
    assert result.returncode == 0, result.stderr
    samples = numbered_samples(result.stdout)
    assert len(samples) == 5 and any(re.search('[\u4e00-\u9fff]', sample) for sample, _ in samples)


# ---------------------------------------------------------------------------
# 读不了的文件：说清楚为什么，不打印回溯，不卡住
# ---------------------------------------------------------------------------

def test_missing_data_file_names_the_folder_that_was_searched(tmp_path):
    """抓直接让 open() 抛出 FileNotFoundError 回溯、或者报错时不说去哪个文件夹找了的错误：命令行里的相对路径
    从当前文件夹算起，说明里要写出这个文件夹的完整路径（不是脚本所在的文件夹，也不是看不懂的“.”）。"""
    result = run_main('--input_path=nope.txt', cwd=str(tmp_path))
    assert_clean_failure(result, 1, 'nope.txt', '--input_path', f'找的是文件夹 {tmp_path.resolve()}）')
    assert ROOT not in result.stderr


def test_directory_instead_of_file(tmp_path):
    """抓把文件夹当文件打开、抛出 IsADirectoryError 回溯的错误：说明里说它是“文件夹”。"""
    assert_clean_failure(run_main(f'--input_path={tmp_path}'), 1, '文件夹', '--input_path')


@POSIX
@pytest.mark.parametrize('setting', ['input_path', 'load_path'])
@pytest.mark.parametrize('kind', ['fifo', '/dev/zero', '/dev/urandom'])
def test_pipes_and_endless_devices_are_refused_not_read(tmp_path, data, setting, kind):
    """抓直接 open().read() 的错误：读一个没人写的管道会永远等下去，读 /dev/zero 会把内存吃光。
    模型文件 (--load_path) 也用同一个 read_text 读。"""
    path = kind
    if kind == 'fifo':
        path = str(tmp_path / 'fifo')
        os.mkfifo(path)
    args = [f'--{setting}={path}', '--num_steps=2', *SMALL] + ([f'--input_path={data}'] if setting != 'input_path' else [])
    result = run_script(*args, timeout=20)           # 卡住的话，这里超时失败，而不是整个测试挂起
    assert_clean_failure(result, 1, '管道或设备', '不是普通文件')


def test_gbk_file(tmp_path):
    """抓直接抛出 UnicodeDecodeError 回溯的错误：GBK 编码的文件（中文 Windows 上常见）以退出码 1 结束，
    说明它不是 UTF-8，并提示“另存为”。"""
    path = write_lines(tmp_path / 'poems.txt', '床前明月光\n疑是地上霜\n', encoding='gbk')
    assert_clean_failure(run_main(f'--input_path={path}'), 1, 'poems.txt', 'UTF-8', '另存为')


@pytest.mark.parametrize('encoding, name', [('utf-16', 'UTF-16'), ('utf-16-le', 'UTF-16'), ('utf-16-be', 'UTF-16'),
                                            ('utf-32', 'UTF-32'), ('utf-32-le', 'UTF-32')])
def test_utf16_and_utf32_data_are_named_as_such(tmp_path, encoding, name):
    """抓 UTF-16 的文件被说成“可能是 GBK”（学习者照着改了编码也不对）、或者把 NUL 当成字符学了进去的错误。"""
    path = tmp_path / 'n.txt'
    path.write_bytes('\n'.join(NAMES).encode(encoding))
    result = run_script(f'--input_path={path}', '--num_steps=1')
    assert_clean_failure(result, 1, name)
    assert 'GBK' not in result.stderr


def test_a_file_of_nul_bytes_is_refused(tmp_path):
    """抓全是 NUL 字节的文件（损坏了，或者根本不是文本）被当成一行看不见的名字拿去训练的错误：以退出码 1 结束，
    说明里提到 NUL。"""
    path = tmp_path / 'zeros.txt'
    path.write_bytes(b'\0' * 1000)
    assert_clean_failure(run_script(f'--input_path={path}', '--num_steps=1'), 1, 'NUL')
