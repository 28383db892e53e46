"""第 16 号问题：程序在不友好的环境里也不出事——输出写不出去、被 kill、文件奇怪、设置离谱、模型文件被改坏、
终端控制字符、各种编码。每个测试都用很小的模型和很少的数据，整个文件几十秒内跑完。"""
import json
import math
import os
import re
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import time

import pytest

from conftest import NAMES, SCRIPT, SMALL, assert_clean_failure, run_main, run_script, write_lines

POSIX = pytest.mark.skipif(os.name != 'posix', reason='需要 POSIX（信号、管道、/dev 下的设备）')
ENV = dict(os.environ, PYTHONIOENCODING='utf-8')


def edited(src, dst, change):
    """把模型文件 src 读成 JSON，用 change 改一下，写到 dst。"""
    with open(src, encoding='utf-8') as f:
        ckpt = json.load(f)
    change(ckpt)
    with open(dst, 'w', encoding='utf-8') as f:
        json.dump(ckpt, f)
    return str(dst)


def loads(mg, path):
    ckpt = mg.load_checkpoint(str(path))
    assert ckpt['format'] == mg.CHECKPOINT_FORMAT
    return ckpt


def no_traceback(result):
    assert 'Traceback' not in result.stdout + result.stderr, result.stderr


# ---------------------------------------------------------------------------
# 1. 输出写不出去：只是不再打印，训练和保存照常
# ---------------------------------------------------------------------------

@POSIX
@pytest.mark.parametrize('how', ['closed', 'full'])
def test_closed_or_full_stdout_still_trains_and_saves(mg, tmp_path, data, how):
    """抓的 bug：print 遇到 EBADF/ENOSPC 就抛异常，模型没存下来，还打出一大段回溯。"""
    if how == 'full' and not os.path.exists('/dev/full'):
        pytest.skip('没有 /dev/full')
    path = tmp_path / 'm.json'
    args = [sys.executable, SCRIPT, f'--input_path={data}', '--num_steps=5', f'--save_path={path}', *SMALL]
    if how == 'closed':                    # sh 里的 >&-：标准输出根本不存在
        result = subprocess.run(['sh', '-c', 'exec "$@" >&-', 'sh', *args], stderr=subprocess.PIPE, env=ENV, timeout=60)
    else:
        with open('/dev/full', 'w') as full:
            result = subprocess.run(args, stdout=full, stderr=subprocess.PIPE, env=ENV, timeout=60)
    err = result.stderr.decode('utf-8')
    assert result.returncode == 0 and 'Traceback' not in err, err
    assert loads(mg, path)['steps_trained'] == 5


@POSIX
def test_reader_of_the_pipe_went_away(mg, tmp_path, data):
    """抓的 bug：| head 读完就关掉管道，下一次 print 抛 BrokenPipeError，训练半途而废、模型没存。"""
    path = tmp_path / 'm.json'
    proc = subprocess.Popen([sys.executable, SCRIPT, f'--input_path={data}', '--num_steps=40', '--log_every=1',
                             f'--save_path={path}', *SMALL], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV)
    proc.stdout.readline()                 # 像 head -1：读一行就走
    proc.stdout.close()
    err = proc.stderr.read().decode('utf-8')
    assert proc.wait(60) == 0 and 'Traceback' not in err, err
    assert loads(mg, path)['steps_trained'] == 40


# ---------------------------------------------------------------------------
# 2–3. 替换模型文件：更差的不悄悄顶掉更好的；权限不变
# ---------------------------------------------------------------------------

def mv_command(stdout):
    """“想换回来，运行：”下一行的 mv 命令：(备份, 目标)。"""
    lines = stdout.splitlines()
    i = next(i for i, line in enumerate(lines) if line.endswith('想换回来，运行：'))
    words = shlex.split(lines[i + 1])
    assert words[0] == ('move' if os.name == 'nt' else 'mv') and len(words) == 3
    return words[1], words[2]


def test_a_worse_model_does_not_silently_replace_a_better_one(mg, tmp_path, trained):
    """抓的 bug：新的一次只训练了 3 步，却把原来那个好得多的模型直接覆盖掉，没有备份，也没说。"""
    path = tmp_path / 'm.json'
    old = edited(trained['ckpt'], path, lambda c: c.update(val_loss=0.5))     # 原来的“好得多”
    old_bytes = path.read_bytes()
    result = run_script(f'--input_path={trained["data"]}', '--num_steps=3', f'--save_path={path}', *SMALL, cwd=str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / 'm.json.bak').read_bytes() == old_bytes
    assert loads(mg, old)['steps_trained'] == 3                              # 新的已经换上
    assert mv_command(result.stdout) == ('m.json.bak', 'm.json')            # 照着做就能换回来
    assert '原来 0.5000' in result.stdout


def test_an_exploded_run_keeps_the_old_model_as_bak_then_bak2(mg, tmp_path, trained):
    """抓的 bug：训练爆炸（留出集损失 > 2·ln V）的模型照样顶掉原来的；或者第二次备份覆盖了第一次的备份。"""
    path = tmp_path / 'm.json'
    edited(trained['ckpt'], path, lambda c: c.update(val_loss=None))          # 没有记录损失：只有“爆炸”这一条理由
    first = path.read_bytes()
    for backup in ('m.json.bak', 'm.json.bak2'):
        before = path.read_bytes()
        result = run_script(f'--input_path={trained["data"]}', '--num_steps=20', '--learning_rate=10', f'--save_path={path}', *SMALL,
                            cwd=str(tmp_path))
        assert result.returncode == 0, result.stderr
        vocab = int(re.search(r'词表：(\d+) 个 token', result.stdout).group(1))
        after = float(re.search(r'^  训练后 +(\S+) ', result.stdout, flags=re.M).group(1))     # 可能是 3.84e+05 这样写的
        assert after > 2 * math.log(vocab)                                  # 真的爆炸了
        assert (tmp_path / backup).read_bytes() == before
        assert mv_command(result.stdout) == (backup, 'm.json')
    assert (tmp_path / 'm.json.bak').read_bytes() == first
    loads(mg, path)


@POSIX
def test_replacing_a_file_keeps_its_permission_bits(tmp_path, trained):
    """抓的 bug：写临时文件再换名时，新文件用了默认权限：只有自己能读的 600 模型文件变成了人人能读的 644。"""
    path = tmp_path / 'm.json'
    shutil.copy(trained['ckpt'], path)
    os.chmod(path, 0o600)
    result = run_script(f'--input_path={trained["data"]}', '--num_steps=2', f'--save_path={path}', *SMALL)
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert json.loads(path.read_text(encoding='utf-8'))['steps_trained'] == 2


@pytest.mark.parametrize('setting', ['save_path', 'html_path'])
def test_a_full_disk_while_writing_gives_one_clean_line(mg, monkeypatch, tmp_path, data, setting):
    """抓的 bug：只有保存模型时接住了 OSError；写网页时磁盘满了，打出一大段回溯（攻击脚本在小 tmpfs 上找到的）。"""
    def full(path, text):
        raise OSError(28, 'No space left on device')
    monkeypatch.setattr(mg, 'write_atomically', full)
    result = run_main(f'--input_path={data}', '--num_steps=2', f'--{setting}={tmp_path / "out.file"}', *SMALL)
    assert_clean_failure(result, 1, 'No space left on device')
    assert not os.path.exists(tmp_path / 'out.file')


# ---------------------------------------------------------------------------
# 4. SIGTERM、SIGHUP 和 Ctrl-C 一样
# ---------------------------------------------------------------------------

def start_and_wait_for(args, mark, **kw):
    """启动脚本，一直读标准输出，直到出现 mark 那一行。返回 (进程, 读到的行)。"""
    proc = subprocess.Popen([sys.executable, SCRIPT, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV, **kw)
    lines = []
    for line in proc.stdout:
        lines.append(line.decode('utf-8'))
        if mark in lines[-1]:
            break
    return proc, lines


@POSIX
@pytest.mark.parametrize('sig', ['SIGTERM', 'SIGHUP'])
def test_sigterm_and_sighup_stop_training_and_save(mg, tmp_path, data, sig):
    """抓的 bug：只处理了 Ctrl-C（SIGINT），kill 或关掉终端时进程直接死掉，几个小时的训练什么都没留下。"""
    path = tmp_path / 'm.json'
    proc, lines = start_and_wait_for([f'--input_path={data}', '--num_steps=100000', '--log_every=1', f'--save_path={path}', *SMALL], '步 ')
    proc.send_signal(getattr(signal, sig))
    out, err = proc.communicate(timeout=60)
    out = ''.join(lines) + out.decode('utf-8')
    err = err.decode('utf-8')
    assert proc.returncode == 0 and 'Traceback' not in out + err, err
    assert re.search(r'训练在第 \d+ 步停止', out) and '收到' in err
    assert 0 < loads(mg, path)['steps_trained'] < 100000
    assert not [name for name in os.listdir(tmp_path) if name.startswith('.') and name.endswith('.tmp')]


# ---------------------------------------------------------------------------
# 5. 注定存不下的路径：训练之前就拒绝
# ---------------------------------------------------------------------------

def unsavable(kind, tmp_path):
    if kind == 'missing_folder':
        return str(tmp_path / 'no_such_folder' / 'm.json')
    if kind == 'missing_folder_slash':
        return str(tmp_path / 'name') + '/'
    if kind == 'existing_folder':
        return str(tmp_path)
    if kind == 'too_long':
        return str(tmp_path / ('a' * 300 + '.json'))
    if kind == 'fifo':
        os.mkfifo(tmp_path / 'fifo')
        return str(tmp_path / 'fifo')
    if kind == 'dev_null':
        return '/dev/null'
    if kind == 'read_only_folder':
        if os.geteuid() == 0:
            pytest.skip('root 在哪里都能写')
        (tmp_path / 'ro').mkdir()
        os.chmod(tmp_path / 'ro', 0o555)
        return str(tmp_path / 'ro' / 'm.json')


@POSIX
@pytest.mark.parametrize('setting', ['save_path', 'html_path'])
@pytest.mark.parametrize('kind', ['missing_folder', 'missing_folder_slash', 'existing_folder', 'too_long', 'fifo', 'dev_null',
                                  'read_only_folder'])
def test_a_save_bound_to_fail_is_refused_before_training(tmp_path, data, setting, kind):
    """抓的 bug：训练了半天，到最后写文件时才发现文件夹不存在、名字太长、没有写权限，或者要写的是个管道/设备。"""
    path = unsavable(kind, tmp_path)
    result = run_script(f'--input_path={data}', '--num_steps=5', f'--{setting}={path}', *SMALL, timeout=30)
    assert_clean_failure(result, 2, f'--{setting}=')
    assert '开始训练' not in result.stdout


# ---------------------------------------------------------------------------
# 6. 永不卡住：管道、无穷无尽的设备
# ---------------------------------------------------------------------------

@POSIX
@pytest.mark.parametrize('setting', ['input_path', 'load_path'])
@pytest.mark.parametrize('kind', ['fifo', '/dev/zero', '/dev/urandom'])
def test_pipes_and_endless_devices_are_refused_not_read(tmp_path, data, setting, kind):
    """抓的 bug：open().read() 一个没人写的管道会永远等下去；读 /dev/zero 会把内存吃光。"""
    path = kind
    if kind == 'fifo':
        path = str(tmp_path / 'fifo')
        os.mkfifo(path)
    args = [f'--{setting}={path}', '--num_steps=2', *SMALL] + ([f'--input_path={data}'] if setting != 'input_path' else [])
    result = run_script(*args, timeout=20)           # 卡住的话，这里超时失败，而不是整个测试挂起
    assert_clean_failure(result, 1, '管道或设备', '不是普通文件')


# ---------------------------------------------------------------------------
# 7. 离谱的大小：说明理由，很快拒绝
# ---------------------------------------------------------------------------

@pytest.mark.parametrize('args, blamed', [(['--n_layer=100000'], 'n_layer'),
                                          (['--n_embd=1000000000000', '--n_head=7'], 'n_embd')])
def test_absurd_models_are_refused_quickly_with_an_estimate(args, blamed):
    """抓的 bug：先建参数再说——n_layer=100000 要分配几百 GB、卡几分钟才崩；或者只说“不能整除”，不说模型大得离谱。"""
    started = time.perf_counter()
    result = run_script(*args, '--num_steps=1', timeout=30)
    assert time.perf_counter() - started < 2
    assert_clean_failure(result, 2, blamed, 'GB', '调小')


def test_a_400_digit_step_count_gives_a_clean_error():
    """抓的 bug：int('1' + 400 个 0) 能转换，之后的计算溢出（OverflowError）或者 range() 卡住。"""
    result = run_script('--num_steps=1' + '0' * 400, timeout=30)
    assert_clean_failure(result, 2, 'num_steps')
    assert len(result.stderr) < 300


# ---------------------------------------------------------------------------
# 8. 模型文件里的数大得溢出
# ---------------------------------------------------------------------------

@pytest.fixture(scope='module')
def overflowing(trained, tmp_path_factory):
    """参数都在检查的上限 1e300 以内，但 1e200 × 1e200 让 logits 溢出成 inf：采样和 --explain 都算不下去。"""
    def huge(ckpt):
        for name in ('lm_head', 'layer0.mlp_fc1', 'layer0.mlp_fc2'):
            ckpt['params'][name] = [[1e200] * len(row) for row in ckpt['params'][name]]
    return edited(trained['ckpt'], tmp_path_factory.mktemp('huge') / 'huge.json', huge)


@pytest.mark.parametrize('extra', [['--num_samples=5'], ['--num_samples=0', '--explain=anna']])
def test_overflowing_model_file_is_blamed_not_the_learning_rate(trained, overflowing, extra):
    """抓的 bug：读回的模型算出 NaN 时抛 ValueError 回溯；或者叫人调小 learning_rate——可这次根本没训练。"""
    result = run_script(f'--input_path={trained["data"]}', f'--load_path={overflowing}', '--num_steps=0', *extra)
    assert_clean_failure(result, 1, '模型文件', 'huge.json')
    assert 'learning_rate' not in result.stderr
    assert not [line for line in result.stdout.splitlines() if line.startswith('提醒') and 'learning_rate' in line]
    assert '读回的模型（这次没再训练）  nan' in result.stdout and '损失太大' not in result.stdout   # NaN 不是“太大”


def test_chart_skips_losses_that_are_not_finite(mg):
    """抓的 bug：max()/min() 碰上 NaN 结果随顺序而变，inf 让刻度全成 nan，或者 round(inf) 抛 OverflowError。"""
    nan, inf = float('nan'), float('inf')
    lines = mg.loss_chart([nan, 3.0, inf, 2.5, 2.0, -inf], val_before=3.1, val_after=nan)
    assert '有 3 步的损失不是有限的数' in lines[0]
    labels = [float(line.split(' |')[0]) for line in lines[1:11]]
    assert labels[0] == 3.0 and labels[-1] == 2.0
    assert sum(line.count('*') for line in lines[1:11]) == 3
    only_bad = mg.loss_chart([nan, inf])
    assert len(only_bad) == 1 and '画不出' in only_bad[0]


# ---------------------------------------------------------------------------
# 9. 终端里不出现原样的控制字符；错误只有一行、不太长
# ---------------------------------------------------------------------------

RAW = ('\x1b', '\x07', '\x9b', '\u202e')


def assert_nothing_raw(result):
    for text in (result.stdout, result.stderr):
        assert not [ch for ch in RAW if ch in text], text


def test_control_characters_in_the_data_are_shown_escaped(tmp_path):
    """抓的 bug：数据里的 ESC 原样打印，终端把后面的字变成红色、清屏；U+202E 把一整行倒过来显示。"""
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


def test_a_model_file_with_esc_in_its_vocabulary_cannot_restyle_the_terminal(tmp_path, trained):
    """抓的 bug：只清理了数据，没清理模型文件里的词表：别人给的模型文件能让你的终端执行控制序列。"""
    def add_esc(ckpt):                     # 在词表最前面加一个 ESC，每个按词表排的矩阵也加一行
        ckpt['vocabulary'].insert(0, '\x1b')
        for mats in (ckpt['params'], ckpt['adam']['m'], ckpt['adam']['v']):
            for name in ('wte', 'lm_head'):
                mats[name].insert(0, [0.5 if mats is ckpt['params'] else 0.0] * len(mats[name][0]))
    path = edited(trained['ckpt'], tmp_path / 'esc.json', add_esc)
    result = run_script(f'--input_path={trained["data"]}', f'--load_path={path}', '--num_steps=0', '--temperature=5',
                        '--num_samples=40', '--explain=\x1bab')
    assert result.returncode == 0, result.stderr
    assert_nothing_raw(result)
    assert '\\x1b' in result.stdout
    bad = run_script(f'--input_path={trained["data"]}', f'--load_path={path}', '--num_steps=0', '--prompt=\x07')
    assert_clean_failure(bad, 2, '\\x07')
    assert_nothing_raw(bad)


def test_a_prompt_with_a_newline_stays_one_escaped_line(trained):
    """抓的 bug：错误信息里原样引用了带换行的值，一句“错误：”变成两行，看着像两个错误。"""
    result = run_script(f'--input_path={trained["data"]}', f'--load_path={trained["ckpt"]}', '--num_steps=0', '--prompt=a\nq')
    assert_clean_failure(result, 2, '--prompt')
    assert '\\n' in result.stderr or 'q' in result.stderr


def test_a_huge_value_in_a_checkpoint_gives_a_short_error(tmp_path, trained):
    """抓的 bug：把模型文件里 5 MB 的 "version" 整个抄进错误信息，终端被刷屏。"""
    path = edited(trained['ckpt'], tmp_path / 'v.json', lambda c: c.update(version='v' * 5_000_000))
    result = run_script(f'--input_path={trained["data"]}', f'--load_path={path}', '--num_steps=0')
    assert_clean_failure(result, 1, 'v.json', '版')
    assert len(result.stderr) < 300


# ---------------------------------------------------------------------------
# 10. 文本文件：编码和分行
# ---------------------------------------------------------------------------

@pytest.mark.parametrize('encoding, name', [('utf-16', 'UTF-16'), ('utf-16-le', 'UTF-16'), ('utf-16-be', 'UTF-16'),
                                            ('utf-32', 'UTF-32'), ('utf-32-le', 'UTF-32')])
def test_utf16_and_utf32_data_are_named_as_such(tmp_path, encoding, name):
    """抓的 bug：UTF-16 的文件被说成“可能是 GBK”，学习者照着改了编码也不对；或者把 NUL 当成字符学了进去。"""
    path = tmp_path / 'n.txt'
    path.write_bytes('\n'.join(NAMES).encode(encoding))
    result = run_script(f'--input_path={path}', '--num_steps=1')
    assert_clean_failure(result, 1, name)
    assert 'GBK' not in result.stderr


def test_a_file_of_nul_bytes_is_refused(tmp_path):
    path = tmp_path / 'zeros.txt'
    path.write_bytes(b'\0' * 1000)
    assert_clean_failure(run_script(f'--input_path={path}', '--num_steps=1'), 1, 'NUL')


def test_only_real_line_breaks_split_names(mg, tmp_path):
    """抓的 bug：用 str.splitlines()，它还会在 \\u2028、\\x85、\\x1c、换页符这些地方分行，一个名字被拆成两个。"""
    path = write_lines(tmp_path / 'n.txt', 'a\u2028b\nc\x85d\re\x1cf\r\ng\fh\n\n  i j  \n')
    assert mg.load_docs(path) == ['a\u2028b', 'c\x85d', 'e\x1cf', 'g\fh', 'i j']


# ---------------------------------------------------------------------------
# 11. 零碎的
# ---------------------------------------------------------------------------

@pytest.mark.parametrize('setting', ['prompt', 'explain'])
def test_dash_h_after_a_setting_is_its_value(trained, setting):
    """--prompt -h：-h 是 prompt 的值（于是说 “-” 不在词表里），不是“显示帮助”，也不是“缺少值”。"""
    result = run_script(f'--input_path={trained["data"]}', f'--load_path={trained["ckpt"]}', '--num_steps=0', f'--{setting}', '-h')
    assert_clean_failure(result, 2, f'--{setting}', '-')
    assert '用法' not in result.stdout


def test_dash_dash_help_after_a_setting_is_a_missing_value():
    """--explain --help：--help 像一个新的参数，所以 explain 缺少值；说清楚怎么写，不打印回溯，也不开始训练。"""
    result = run_script('--explain', '--help')
    assert_clean_failure(result, 2, '--explain', '缺少值', '--explain=')
    assert result.stdout == ''


def test_a_checkpoint_resaved_with_sorted_keys_is_still_ours(mg, tmp_path, trained):
    """抓的 bug：只看文件开头有没有 "format"：别的程序把键排了序重新存过，就既不能覆盖也不能读回。"""
    path = tmp_path / 's.json'
    with open(trained['ckpt'], encoding='utf-8') as f:
        ckpt = json.load(f)
    with open(path, 'w', encoding='utf-8') as f:
        json.dump(ckpt, f, sort_keys=True)
    assert not path.read_text(encoding='utf-8').startswith('{"format"')
    loaded = run_script(f'--input_path={trained["data"]}', f'--load_path={path}', '--num_steps=0', '--num_samples=2')
    assert loaded.returncode == 0, loaded.stderr
    result = run_script(f'--input_path={trained["data"]}', f'--save_path={path}', '--num_steps=2', *SMALL)
    assert result.returncode == 0, result.stderr
    assert loads(mg, path)['steps_trained'] == 2


def test_a_file_cut_inside_a_number_is_reported_as_cut(tmp_path, trained):
    text = open(trained['ckpt'], encoding='utf-8').read()
    at = text.index('0.0', len(text) // 2) + 3                    # 停在一个数的中间
    path = tmp_path / 'cut.json'
    path.write_text(text[:at], encoding='utf-8')
    assert_clean_failure(run_script(f'--input_path={trained["data"]}', f'--load_path={path}', '--num_steps=0'), 1, '不完整')


@POSIX
def test_ctrl_c_during_shutdown_prints_no_traceback(tmp_path, data):
    """抓的 bug：退出的路上（采样时）连按几次 Ctrl-C，第二次打断了退出本身，打出 KeyboardInterrupt 的回溯，“已退出。”印了好几遍。"""
    proc, lines = start_and_wait_for([f'--input_path={data}', '--num_steps=3', *SMALL, '--num_samples=100000'], '训练用时')
    time.sleep(0.3)                        # 这时在评估或采样：不在训练，收到信号就退出
    for _ in range(4):
        proc.send_signal(signal.SIGINT)
        time.sleep(0.02)
    out, err = proc.communicate(timeout=60)
    err = err.decode('utf-8')
    assert proc.returncode == 130 and 'Traceback' not in err + out.decode('utf-8'), err
    assert err.count('已退出。') == 1


def test_the_page_does_not_overwrite_the_model_saved_at_the_same_path(mg, tmp_path, data):
    """抓两个设置写了同一个文件名时，程序说“模型已保存”“网页已保存”，其实模型已被网页覆盖的错误：
    训练之前就拒绝（退出码 2），什么都不写。"""
    path = tmp_path / 'same.json'
    result = run_script(f'--input_path={data}', '--num_steps=2', f'--save_path={path}', f'--html_path={path}', *SMALL)
    assert_clean_failure(result, 2, 'html_path', 'save_path', '同一个文件')
    assert '开始训练' not in result.stdout and not path.exists()
