"""把脚本当作程序运行：命令行覆盖设置、检查设置、各种别扭的输入文件、Ctrl-C，以及它打印的内容。"""
import os
import re
import signal
import subprocess
import sys

import pytest

from conftest import ROOT, SCRIPT, assert_clean_failure, run_script, write_lines

NAMES = ['anna', 'bob', 'carla', 'dora', 'eve', 'fay', 'gus', 'hal', 'ivy', 'jo', 'kim', 'lu'] * 3
SMALL = ('--n_embd=8', '--n_head=2', '--num_samples=5')


def sample_lines(stdout):
    return re.findall(r'^\s+\d+\. (\S+)\s+(新|训练集里有|留出集里有|第一步就抽到了 BOS)(?:（重复）)?$', stdout, flags=re.M)


def test_importing_runs_nothing():
    """import 这个脚本时什么都不运行、什么都不打印：抓把训练代码写在 if __name__ == '__main__' 外面的错误。"""
    code = f'import sys; sys.path.insert(0, {ROOT!r}); import microgpt_teaching'
    result = subprocess.run([sys.executable, '-c', code], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert result.returncode == 0 and result.stdout == b'' and result.stderr == b''


def test_twenty_steps_on_the_shipped_data():
    """用自带数据训练 20 步，整个程序正常结束：打印进度、均匀猜测 ln(27) 3.2958 和 20 个样本，stderr 是空的。
    抓主程序里任何一处崩溃，或多打印了警告的错误。"""
    result = run_script('--num_steps=20')
    assert result.returncode == 0, result.stderr
    assert len(sample_lines(result.stdout)) == 20
    assert '步 20/20 | loss ' in result.stdout
    assert re.search(r'ln\(27\) +3.2958', result.stdout)
    assert result.stderr == ''


@pytest.mark.parametrize('args, words', [
    (['--n_layer=abc'], ['n_layer', '整数']),
    (['--num_stepz=10'], ['num_stepz', '--help']),
    (['num_steps=10'], ['--名字=值']),
    (['--speed_tricks=maybe'], ['speed_tricks', 'True']),
    (['--temperature=nan'], ['temperature']),
    (['--n_embd=15'], ['n_head', '15', '整除']),
    (['--n_layer=0'], ['n_layer', '正整数']),
    (['--num_steps=-5'], ['num_steps', '-5']),
    (['--temperature=0'], ['temperature', '至少是 0.001']),
    (['--learning_rate=-0.1'], ['learning_rate', '大于 0']),
    (['--beta1=1'], ['beta1', '[0, 1)']),
    (['--beta2=-0.2'], ['beta2', '[0, 1)']),
    (['--block_size=1'], ['block_size', '至少是 2']),
    (['--num_samples=-1'], ['num_samples', '负数']),
    (['--val_size=-3'], ['val_size', '负数']),
    (['--log_every=-1'], ['log_every', '负数']),
    (['--eps_adam=0'], ['eps_adam', '大于 0']),
    (['--init_std=-0.1'], ['init_std', '大于 0']),
    (['--temperature=0.0001'], ['temperature', '至少是 0.001']),
])
def test_bad_settings_exit_2_with_one_clear_sentence(args, words):
    """每种写错的设置（不是整数、拼错名字、超出范围……）都以退出码 2 结束，stderr 只有一句点出设置名的说明，没有回溯：
    抓某个设置漏了检查、程序带着坏设置往下跑的错误。"""
    result = run_script(*args)
    assert_clean_failure(result, 2, *words)
    assert result.stdout == '' and len(result.stderr.strip().splitlines()) == 1


def test_help_lists_every_setting_with_its_default(mg):
    """--help 列出每个设置和它的默认值，后面跟着含义：抓某个设置在帮助里缺了含义（第 0 节那一行没写 # 注释）的错误。"""
    result = run_script('--help')
    assert result.returncode == 0
    for name, value in mg.SETTINGS.items():
        line = next(l for l in result.stdout.splitlines() if l.strip().startswith(f'--{name}='))
        assert line.split()[0] == f'--{name}={value}'
        assert len(line.split()) >= 2                  # 默认值后面跟着含义


def test_help_anywhere_on_the_line():
    """--help 写在别的参数后面也管用（打印帮助，退出码 0）：抓只在第一个参数是 --help 时才认它的错误。"""
    result = run_script('--num_steps=5', '--help')
    assert result.returncode == 0 and '--num_steps=1000' in result.stdout


def test_diverging_training_stops_with_a_clear_message(tmp_path):
    """学习率大到 1e300 时训练发散：程序以退出码 1 停下，说明里有“发散”和 learning_rate，没有回溯：
    抓不检查 loss 是否有限、让发散的训练默默跑下去的错误。"""
    path = write_lines(tmp_path / 'n.txt', '\n'.join(NAMES) + '\n')
    result = run_script(f'--input_path={path}', '--learning_rate=1e300', '--num_steps=50', *SMALL)
    assert_clean_failure(result, 1, '发散', 'learning_rate')


def test_output_into_a_closed_pipe_exits_quietly(tmp_path):
    """输出接到提前关闭的管道（像 | head -1）时，程序安静地以退出码 1 结束：抓没处理 BrokenPipeError、打印一大段回溯的错误。"""
    path = write_lines(tmp_path / 'n.txt', '\n'.join(NAMES) + '\n')
    env = dict(os.environ, PYTHONIOENCODING='utf-8')
    proc = subprocess.Popen([sys.executable, SCRIPT, f'--input_path={path}', '--num_steps=300', '--log_every=1', *SMALL],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    proc.stdout.readline()
    proc.stdout.close()                              # 就像 `| head -1`
    err = proc.stderr.read().decode('utf-8')
    proc.wait(timeout=120)
    assert proc.returncode == 1 and 'Traceback' not in err and 'BrokenPipe' not in err


def test_missing_file(tmp_path):
    """数据文件不存在：退出码 1，说明里有文件名和 --input_path，没有回溯：抓直接让 open() 抛出 FileNotFoundError 回溯的错误。"""
    assert_clean_failure(run_script(f'--input_path={tmp_path / "nope.txt"}'), 1, 'nope.txt', '--input_path')


def test_directory_instead_of_file(tmp_path):
    """--input_path 指向一个文件夹：退出码 1，说明里说它是“文件夹”：抓把文件夹当文件打开、抛出 IsADirectoryError 回溯的错误。"""
    assert_clean_failure(run_script(f'--input_path={tmp_path}'), 1, '文件夹')


@pytest.mark.parametrize('content', ['', '\n\n  \n\t\n', '\ufeff\r\n \r\n'])
def test_empty_or_blank_file(tmp_path, content):
    """空文件、只有空白行的文件、只有 BOM 和空行的文件：退出码 1，提示“每行写一个名字”：
    抓没有数据也往下走、到后面才崩溃（例如 step % len(train_docs) 除以 0）的错误。"""
    path = write_lines(tmp_path / 'blank.txt', content)
    assert_clean_failure(run_script(f'--input_path={path}'), 1, 'blank.txt', '每行写一个名字')


def test_gbk_file(tmp_path):
    """GBK 编码的文件（中文 Windows 上常见）：退出码 1，说明它不是 UTF-8，并提示“另存为”：抓直接抛出 UnicodeDecodeError 回溯的错误。"""
    path = write_lines(tmp_path / 'poems.txt', '床前明月光\n疑是地上霜\n', encoding='gbk')
    assert_clean_failure(run_script(f'--input_path={path}'), 1, 'poems.txt', 'UTF-8', '另存为')


def test_bom_crlf_tabs_and_spaces_stay_out_of_the_vocabulary(tmp_path, mg):
    """Windows 记事本式的文件（开头有 BOM、CRLF 换行、行首行尾有制表符和空格）读出来是干净的名字，词表只有 abclnor：
    抓 BOM、回车符或空白混进词表、变成“字符”的错误。"""
    path = write_lines(tmp_path / 'win.txt', '\ufeffanna\r\n\tbob  \r\n\r\n  carla\t\r\n', encoding='utf-8')
    assert mg.load_docs(path) == ['anna', 'bob', 'carla']
    result = run_script(f'--input_path={path}', '--num_steps=3', *SMALL)
    assert result.returncode == 0, result.stderr
    assert "字符：'abclnor'" in result.stdout


def test_long_lines_are_cut_and_reported_once(tmp_path):
    """超长的行照常训练，只提醒一次，而且数对了：40、16 个字符的行超长，15 个字符加结尾的 BOS 正好 16，不算。
    抓这个“差一”的计数错误，以及长行让训练崩溃的错误。"""
    path = write_lines(tmp_path / 'long.txt', '\n'.join(['a' * 40, 'b' * 16, 'c' * 15, 'bob']) + '\n')
    result = run_script(f'--input_path={path}', '--num_steps=3', *SMALL)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count('有 2 行的“字符数 + 结尾的 BOS”超过上下文长度 block_size=16') == 1


def test_a_one_line_file_trains_and_samples(tmp_path):
    """只有一行的文件也能训练和采样，只是没有留出验证集（并说明这一点）：抓留出集为空时还去评估、0/0 除以 0 的错误。"""
    path = write_lines(tmp_path / 'one.txt', 'zoe\n')
    result = run_script(f'--input_path={path}', '--num_steps=5', *SMALL)
    assert result.returncode == 0, result.stderr
    assert len(sample_lines(result.stdout)) == 5
    assert '没有留出验证集' in result.stdout


def test_chinese_poems_work(tmp_path):
    """中文诗句（每行一句）也能训练，编出的样本里有汉字：抓假定数据只有英文字母（例如把词表写死成 a～z）的错误。"""
    poems = ['床前明月光', '疑是地上霜', '举头望明月', '低头思故乡', '白日依山尽', '黄河入海流'] * 3
    path = write_lines(tmp_path / 'poems.txt', '\n'.join(poems) + '\n')
    result = run_script(f'--input_path={path}', '--num_steps=30', *SMALL)
    assert result.returncode == 0, result.stderr
    lines = sample_lines(result.stdout)
    names = [name for name, label in lines if label != '第一步就抽到了 BOS']
    assert len(lines) == 5 and any(re.search('[\u4e00-\u9fff]', name) for name in names)


def test_input_txt_is_found_from_any_folder(tmp_path):
    """从别的文件夹运行脚本，也能找到脚本旁边的 input.txt（共 29910 行）：抓把默认的相对路径从当前文件夹算起的错误。"""
    result = run_script('--num_steps=2', '--val_size=0', *SMALL, cwd=str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert '共 29910 行' in result.stdout


def test_input_path_on_the_command_line_is_relative_to_the_current_folder(tmp_path):
    """命令行里写的相对路径 --input_path=mine.txt 从当前文件夹算起：抓把它也从脚本所在的文件夹算起、找不到用户文件的错误。"""
    write_lines(tmp_path / 'mine.txt', '\n'.join(NAMES) + '\n')
    result = run_script('--input_path=mine.txt', '--num_steps=2', *SMALL, cwd=str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert f'共 {len(NAMES)} 行' in result.stdout


def test_log_is_short_when_not_a_terminal(tmp_path):
    """输出不是终端（写到文件或管道）时，200 步最多打印 22 行进度（含第 1 步和最后一步），概况和结果的各部分都在：
    抓每步打印一行把日志刷屏、或漏掉第一步、最后一步的错误。"""
    path = write_lines(tmp_path / 'n.txt', '\n'.join(NAMES) + '\n')
    result = run_script(f'--input_path={path}', '--num_steps=200', *SMALL)
    steps = re.findall(r'^步 +(\d+)/200', result.stdout, flags=re.M)
    assert steps[0] == '1' and steps[-1] == '200' and len(steps) <= 22
    for word in ('训练用', '留出验证', '词表', '参数', '设置', '训练后', '训练前', '均匀猜测', '总用时', '新的'):
        assert word in result.stdout


def start_long_run(tmp_path):
    names = [f'{a}{b}{c}' for a in 'abcdefghij' for b in 'aeiou' for c in 'lmnrst']   # 300 个名字
    path = write_lines(tmp_path / 'many.txt', '\n'.join(names) + '\n')
    env = dict(os.environ, PYTHONIOENCODING='utf-8')
    proc = subprocess.Popen([sys.executable, SCRIPT, f'--input_path={path}', '--num_steps=100000', '--log_every=1',
                             '--num_samples=300', *SMALL[:2]],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, encoding='utf-8', env=env)
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if line.startswith('步'):
            break
    return proc, lines


@pytest.mark.skipif(sys.platform == 'win32', reason='POSIX signals')
def test_ctrl_c_stops_training_then_evaluates_and_samples(tmp_path):
    """训练中按一次 Ctrl-C：做完这一步就停止训练，然后照常评估、编出全部 300 个样本，退出码 0，没有回溯：
    抓 Ctrl-C 让程序带着 KeyboardInterrupt 回溯退出、白白丢掉训练结果的错误。"""
    proc, lines = start_long_run(tmp_path)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert '收到 Ctrl-C' in out and '训练在第' in out and '训练后' in out
    assert len(sample_lines(out)) == 300
    assert 'Traceback' not in out + err


@pytest.mark.skipif(sys.platform == 'win32', reason='POSIX signals')
def test_second_ctrl_c_exits_quietly(tmp_path):
    """再按一次 Ctrl-C 就立即安静退出：退出码 130，打印“已退出”，没有回溯和 KeyboardInterrupt：
    抓第二次按下被忽略（程序停不下来）或打印一大段回溯的错误。"""
    proc, lines = start_long_run(tmp_path)
    proc.send_signal(signal.SIGINT)
    for line in proc.stdout:
        if '收到 Ctrl-C' in line:
            break
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130
    assert '已退出' in out and 'Traceback' not in out + err and 'KeyboardInterrupt' not in out + err
