"""把脚本当作程序运行：命令行覆盖设置、检查设置、各种别扭的输入文件、输出到文件或管道、Ctrl-C。
大多数测试用 run_main 在本进程里跑 main()（快）；只有非真进程不可的（import、信号、管道、自带数据的整次运行）才用 run_script。"""
import os
import re
import signal
import subprocess
import sys

import pytest

from conftest import (NAMES, ROOT, SCRIPT, SMALL, assert_clean_failure, numbered_samples, run_main, run_script,
                      squash, write_lines)


@pytest.fixture
def names_file(tmp_path):
    return write_lines(tmp_path / 'n.txt', '\n'.join(NAMES) + '\n')


# ---------------------------------------------------------------------------
# 作为程序运行
# ---------------------------------------------------------------------------

def test_importing_runs_nothing():
    """抓把训练代码写在 if __name__ == '__main__' 外面的错误：import 这个脚本时什么都不能运行、什么都不能打印。"""
    code = f'import sys; sys.path.insert(0, {ROOT!r}); import microgpt_teaching'
    result = subprocess.run([sys.executable, '-c', code], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert result.returncode == 0 and result.stdout == b'' and result.stderr == b''


def test_shipped_data_from_another_folder(tmp_path):
    """抓两类错误：主程序里任何一处崩溃或多打印了警告；以及把默认的相对路径 input.txt 从当前文件夹算起、
    从别的文件夹运行就找不到脚本旁边的数据。真的进程，自带数据（29910 行），训练 20 步，编 20 个名字。"""
    result = run_script('--num_steps=20', '--val_size=50', cwd=str(tmp_path))
    assert result.returncode == 0 and result.stderr == '', result.stderr
    assert '共 29910 行' in result.stdout and '步 20/20 | loss ' in result.stdout
    assert re.search(r'ln\(27\) +3\.2958', result.stdout)
    assert len(numbered_samples(result.stdout)) == 20


def test_output_into_a_closed_pipe_keeps_training_and_saves(tmp_path, names_file):
    """抓读的一方走了（像 | head -1）时程序带着 BrokenPipeError 回溯崩掉、白白丢掉训练的错误：
    关掉管道只是不再打印，训练和保存照常，退出码 0，标准错误是空的。"""
    ckpt = tmp_path / 'm.json'
    env = dict(os.environ, PYTHONIOENCODING='utf-8')
    proc = subprocess.Popen([sys.executable, SCRIPT, f'--input_path={names_file}', '--num_steps=100', '--log_every=1',
                             f'--save_path={ckpt}', *SMALL], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    proc.stdout.readline()
    proc.stdout.close()                              # 就像 `| head -1`：后面的每一行都写进了断掉的管道
    err = proc.stderr.read().decode('utf-8')
    proc.wait(timeout=120)
    assert proc.returncode == 0 and err == '', err
    assert '"steps_trained": 100' in ckpt.read_text(encoding='utf-8')


def long_run(tmp_path, num_samples):
    """开始一次很长的训练（十万步），等它打印出第一行进度（已经在训练了）再返回。"""
    names = [f'{a}{b}{c}' for a in 'abcdefghij' for b in 'aeiou' for c in 'lmnrst']   # 300 个名字
    path = write_lines(tmp_path / 'many.txt', '\n'.join(names) + '\n')
    env = dict(os.environ, PYTHONIOENCODING='utf-8')
    proc = subprocess.Popen([sys.executable, SCRIPT, f'--input_path={path}', '--num_steps=100000', '--log_every=1',
                             f'--num_samples={num_samples}', *SMALL[:2]],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, encoding='utf-8', env=env)
    for line in proc.stdout:
        if line.startswith('步'):
            break
    return proc


@pytest.mark.skipif(sys.platform == 'win32', reason='POSIX signals')
def test_ctrl_c_stops_training_then_evaluates_and_samples(tmp_path):
    """抓 Ctrl-C 让程序带着 KeyboardInterrupt 回溯退出、白白丢掉训练结果的错误：训练中按一次 Ctrl-C，
    做完这一步就停止训练（标准错误上说一声），然后照常评估、编出全部样本，退出码 0。"""
    proc = long_run(tmp_path, 20)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert '收到 Ctrl-C' in err and 'Traceback' not in out + err
    assert re.search(r'^训练在第 \d+ 步停止（共设 100000 步）', out, flags=re.M) and '训练后' in out
    assert len(numbered_samples(out)) == 20


@pytest.mark.skipif(sys.platform == 'win32', reason='POSIX signals')
def test_second_ctrl_c_exits_quietly(tmp_path):
    """抓第二次 Ctrl-C 被忽略（程序停不下来）或打印一大段回溯的错误：第一次之后再按一次就立即退出，
    退出码 130，标准错误的最后一行是“已退出。”（没有要保存的模型，所以不提保存）。"""
    proc = long_run(tmp_path, 300)                   # 采样 300 个名字要一会儿：第二次 Ctrl-C 到来时程序还没结束
    proc.send_signal(signal.SIGINT)
    for line in proc.stderr:
        if '收到 Ctrl-C' in line:
            break
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1] == '已退出。'
    assert 'Traceback' not in out + err and 'KeyboardInterrupt' not in out + err


@pytest.mark.parametrize('save, message', [(False, '已退出。'), (True, '已退出。模型没有保存。')])
def test_interrupt_outside_training_says_whether_the_model_was_saved(mg, monkeypatch, save, message):
    """抓不在训练时按 Ctrl-C 打印回溯、或者没提醒“模型没有保存”的错误：退出码 130，标准错误只有这一句。"""
    def interrupted(argv):
        mg.apply_overrides(argv)
        raise KeyboardInterrupt
    monkeypatch.setattr(mg, 'run', interrupted)
    result = run_main(*(['--save_path=m.json'] if save else []))
    assert (result.returncode, result.stdout, result.stderr.strip()) == (130, '', message)


# ---------------------------------------------------------------------------
# 设置：命令行覆盖和检查
# ---------------------------------------------------------------------------

def test_integers_longer_than_15_digits_are_refused_by_parse_value(mg):
    """parse_value 自己就拒绝 16 位以上的整数（不必等主程序）：抓把 10**15 步当真、一直训练下去的错误。"""
    assert mg.parse_value('num_steps', '999999999999999') == 999999999999999
    for text in ('1234567890123456', '-1234567890123456', '1' * 5000):
        with pytest.raises(mg.UserError):
            mg.parse_value('num_steps', text)


@pytest.mark.parametrize('args, words', [
    (['--n_layer=abc'], ['n_layer', '整数']),
    (['--num_steps=1234567890123456'], ['num_steps', '最多 15 位']),
    (['--num_stepz=10'], ['num_stepz', '--help']),
    (['num_steps=10'], ['--名字=值']),
    (['--speed_tricks=maybe'], ['speed_tricks', 'True']),
    (['--n_embd=15'], ['n_embd = 15', 'n_head = 4', '整除']),
    (['--n_head=3'], ['设置 n_head = 3', 'n_head 可以取 1、2、4、8、16']),      # 怪改过的那个设置
    (['--n_layer=0'], ['n_layer = 0', '至少是 1']),
    (['--block_size=1'], ['block_size', '至少是 2']),
    (['--n_embd=4096'], ['n_embd', '4 GB']),
    (['--num_steps=-5'], ['num_steps', '-5', '负数']),
    (['--num_samples=-1'], ['num_samples', '负数']),
    (['--val_size=-3'], ['val_size', '负数']),
    (['--log_every=-1'], ['log_every', '负数']),
    (['--learning_rate=-0.1'], ['learning_rate', '大于 0']),
    (['--eps_adam=0'], ['eps_adam', '大于 0']),
    (['--init_std=-0.1'], ['init_std', '大于 0']),
    (['--beta1=1'], ['beta1', '[0, 1)']),
    (['--beta2=-0.2'], ['beta2', '[0, 1)']),
    (['--temperature=nan'], ['temperature', '有限的数字']),
    (['--temperature=0'], ['temperature', '至少是 0.001']),
    (['--temperature=0.0005'], ['temperature', '至少是 0.001']),   # 只挡 0 不够：logits / 0.0005 在 exp 里溢出
])
def test_bad_settings_exit_2_with_one_clear_sentence(args, words):
    """抓某个设置漏了检查、程序带着坏设置往下跑（到训练或采样时才崩）的错误：每种写错的设置都在做任何事之前
    以退出码 2 结束，标准输出是空的，标准错误只有一句点出设置名的说明。"""
    result = run_main(*args)
    assert_clean_failure(result, 2, *words)
    assert result.stdout == ''


def test_smallest_allowed_temperature_samples_without_overflow(names_file):
    """抓下限 0.001 本身也会溢出（softmax 没有先减最大值）的错误：允许的最小温度必须能正常采样。"""
    result = run_main(f'--input_path={names_file}', '--temperature=0.001', '--num_steps=0', *SMALL)
    assert result.returncode == 0, result.stderr
    assert 'temperature=0.001*' in result.stdout and len(numbered_samples(result.stdout)) == 5


def test_apply_overrides_both_forms(mg, tmp_path, monkeypatch):
    """抓空格形式（--名字 值）把下一个参数当成值时多跳或少跳一个参数、-h 作为 --prompt 的值被当成求助、
    路径设置没有按当前文件夹变成绝对路径的错误。"""
    monkeypatch.chdir(tmp_path)
    given = mg.apply_overrides(['--num_steps', '20', '--temperature=0.8', '--prompt', '-h', '--save_path', 'm.json',
                                '--speed_tricks', 'False'])
    assert given == ['num_steps', 'temperature', 'prompt', 'save_path', 'speed_tricks']
    assert (mg.num_steps, mg.temperature, mg.prompt, mg.speed_tricks) == (20, 0.8, '-h', False)
    assert mg.save_path == os.path.join(os.getcwd(), 'm.json')


def test_space_form_works_like_equals_form(names_file):
    """抓 --num_steps 20（中间是空格）被当成两个参数而报错、或者值没被用上的错误：两种写法的输出逐行相同。"""
    def without_timing(stdout):
        return [line for line in stdout.splitlines() if '秒' not in line]
    equals = run_main(f'--input_path={names_file}', '--num_steps=20', '--n_embd=8', '--n_head=2', '--num_samples=5')
    spaced = run_main('--input_path', names_file, '--num_steps', '20', '--n_embd', '8', '--n_head=2',
                      '--num_samples', '5')
    assert spaced.returncode == equals.returncode == 0, spaced.stderr
    assert '步 20/20' in spaced.stdout and 'num_steps=20*' in spaced.stdout
    assert without_timing(spaced.stdout) == without_timing(equals.stdout)


@pytest.mark.parametrize('args', [['--num_steps'], ['--num_steps', '--n_embd=8']])
def test_setting_without_a_value(args):
    """抓结尾的 --num_steps 没有值时 argv[i+1] 越界（IndexError）、或者把下一个 --设置 当成了值的错误。"""
    assert_clean_failure(run_main(*args), 2, '--num_steps', '缺少值', '--num_steps=1000')


@pytest.mark.parametrize('arg, guess', [('--lr=0.1', 'learning_rate'), ('--temprature=1', 'temperature'),
                                        ('--num_step=5', 'num_steps'), ('--bs=8', 'block_size')])
def test_misspelled_setting_suggests_the_right_name(arg, guess):
    """抓拼错设置名只说“没有这个设置”、不告诉你最像的是哪个（lr 是 learning_rate 的首字母缩写）的错误。"""
    assert_clean_failure(run_main(arg), 2, f'你是不是想写 {guess}', '--help')


def test_closest_setting_gives_up_on_nonsense(mg):
    """抓随便一个词也硬猜一个设置名（cutoff 太低）、建议反而误导人的错误。"""
    assert mg.closest_setting('lr') == 'learning_rate'
    assert mg.closest_setting('TEMPRATURE') == 'temperature'
    assert mg.closest_setting('xyzzy') is None
    with pytest.raises(mg.UserError) as info:
        mg.apply_overrides(['--xyzzy=1'])
    assert '你是不是想写' not in str(info.value) and info.value.exit_code == 2


def test_help_lists_every_setting_with_its_default_and_meaning(mg):
    """抓帮助里漏了设置、默认值不对、含义缺了或被折行弄丢了一段、或者设置表没对齐、超出 80 列的错误：
    每个设置一行 --名字=默认值，含义从第 26 列开始（名字太长时从下一行开始），续行也从第 26 列开始。"""
    result = run_main('--help')
    assert result.returncode == 0 and result.stderr == ''
    lines = result.stdout.splitlines()
    table = lines[lines.index('设置（默认值）及含义：') + 1:lines.index('例子：')]
    assert all(mg.display_width(line) <= 79 for line in table)      # 例子里的命令不折行：要能整行复制
    with open(mg.__file__, encoding='utf-8') as f:
        comments = dict(re.findall(r'^(\w+) = .*?# (.*)$', f.read(), flags=re.M))
    for name, value in mg.SETTINGS.items():
        i = next(i for i, line in enumerate(lines) if line.startswith(f'  --{name}='))
        assert lines[i].split()[0] == f'--{name}={value}'
        meaning = [lines[i][26:]] if len(lines[i]) > 26 else []
        for line in lines[i + 1:]:
            if not line.startswith(' ' * 26):
                break
            meaning.append(line[26:])
        assert meaning and not meaning[0].startswith(' ')
        assert squash(''.join(meaning)) == squash(comments[name])


def test_help_anywhere_on_the_line():
    """抓只在第一个参数是 --help 时才认它的错误：写在别的参数后面也打印帮助，退出码 0。"""
    result = run_main('--num_steps=5', '--help')
    assert result.returncode == 0 and '--num_steps=1000' in result.stdout


def test_diverging_training_stops_with_a_clear_message(names_file):
    """抓不检查 loss 是否有限、让发散的训练默默跑下去（或者带着回溯崩掉）的错误：学习率 1e300 时退出码 1，
    说明里有“发散”和 learning_rate。"""
    result = run_main(f'--input_path={names_file}', '--learning_rate=1e300', '--num_steps=50', *SMALL)
    assert_clean_failure(result, 1, '发散', 'learning_rate')


# ---------------------------------------------------------------------------
# 各种别扭的数据文件
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


@pytest.mark.parametrize('content', ['', '\n\n  \n\t\n', '\ufeff\r\n \r\n'])
def test_empty_or_blank_file(tmp_path, content):
    """抓没有数据也往下走、到后面才崩溃（例如 step % len(train_docs) 除以 0）的错误：空文件、只有空白行、
    只有 BOM 和空行的文件都以退出码 1 结束，提示“每行写一个名字”。"""
    path = write_lines(tmp_path / 'blank.txt', content)
    assert_clean_failure(run_main(f'--input_path={path}'), 1, 'blank.txt', '每行写一个名字')


def test_gbk_file(tmp_path):
    """抓直接抛出 UnicodeDecodeError 回溯的错误：GBK 编码的文件（中文 Windows 上常见）以退出码 1 结束，
    说明它不是 UTF-8，并提示“另存为”。"""
    path = write_lines(tmp_path / 'poems.txt', '床前明月光\n疑是地上霜\n', encoding='gbk')
    assert_clean_failure(run_main(f'--input_path={path}'), 1, 'poems.txt', 'UTF-8', '另存为')


def test_bom_crlf_tabs_and_spaces_stay_out_of_the_vocabulary(tmp_path, mg):
    """抓 BOM、回车符或行首行尾的空白混进词表、变成“字符”的错误：Windows 记事本式的文件读出来是干净的名字。"""
    path = write_lines(tmp_path / 'win.txt', '\ufeffanna\r\n\tbob  \r\n\r\n  carla\t\r\n')
    assert mg.load_docs(path) == ['anna', 'bob', 'carla']
    result = run_main(f'--input_path={path}', '--num_steps=3', *SMALL)
    assert result.returncode == 0, result.stderr
    assert '字符：abclnor\n' in result.stdout


def test_long_lines_are_reported_once_with_a_block_size_that_fits(tmp_path):
    """抓三类错误：长行让训练崩溃或被悄悄截断；“差一”的计数（40、16 个字符的行超长，15 个字符加结尾的 BOS
    正好 16，不算）；建议的 block_size 少算了结尾的 BOS，照着改了还是不够。"""
    path = write_lines(tmp_path / 'long.txt', '\n'.join(['a' * 40, 'b' * 16, 'c' * 15, 'bob']) + '\n')
    warned = run_main(f'--input_path={path}', '--num_steps=3', *SMALL)
    assert warned.returncode == 0, warned.stderr
    assert squash(warned.stdout).count(squash('有 2 行的“字符数 + 结尾的 BOS”超过上下文长度 block_size=16')) == 1
    assert '--block_size=41' in warned.stdout
    fixed = run_main(f'--input_path={path}', '--num_steps=3', '--block_size=41', *SMALL)
    assert fixed.returncode == 0 and '超过上下文长度' not in fixed.stdout


def test_a_one_line_file_trains_and_samples(tmp_path):
    """抓留出集为空时还去评估、0/0 除以 0 的错误：只有一行的文件也能训练和采样，并说明没有留出验证集。"""
    path = write_lines(tmp_path / 'one.txt', 'zoe\n')
    result = run_main(f'--input_path={path}', '--num_steps=5', *SMALL)
    assert result.returncode == 0, result.stderr
    assert len(numbered_samples(result.stdout)) == 5
    assert '没有留出验证集' in result.stdout


def test_chinese_poems_work(tmp_path):
    """抓假定数据只有英文字母（例如把词表写死成 a～z）的错误：中文诗句（每行一句）也能训练，编出的样本里有汉字。"""
    poems = ['床前明月光', '疑是地上霜', '举头望明月', '低头思故乡', '白日依山尽', '黄河入海流'] * 3
    path = write_lines(tmp_path / 'poems.txt', '\n'.join(poems) + '\n')
    result = run_main(f'--input_path={path}', '--num_steps=30', *SMALL)
    assert result.returncode == 0, result.stderr
    samples = numbered_samples(result.stdout)
    assert len(samples) == 5 and any(re.search('[\u4e00-\u9fff]', sample) for sample, _ in samples)


def test_input_path_on_the_command_line_is_relative_to_the_current_folder(tmp_path):
    """抓把命令行里的相对路径也从脚本所在的文件夹算起、找不到用户文件的错误。"""
    write_lines(tmp_path / 'mine.txt', '\n'.join(NAMES) + '\n')
    result = run_main('--input_path=mine.txt', '--num_steps=2', *SMALL, cwd=str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert f'数据：mine.txt，共 {len(NAMES)} 行' in result.stdout


def test_log_is_short_when_not_a_terminal(names_file):
    """抓每步打印一行把日志刷屏、或漏掉第一步、最后一步的错误：输出不是终端时，200 步最多打印 22 行进度，
    概况和结果的各部分都在。"""
    result = run_main(f'--input_path={names_file}', '--num_steps=200', *SMALL)
    steps = re.findall(r'^步 +(\d+)/200', result.stdout, flags=re.M)
    assert steps[0] == '1' and steps[-1] == '200' and len(steps) <= 22
    for word in ('训练用时', '留出验证', '词表', '参数', '设置', '训练后', '训练前', '均匀猜测', '总用时', '新的'):
        assert word in result.stdout
