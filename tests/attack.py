"""攻击脚本：在一个临时文件夹里，对 microgpt_teaching.py 的命令行发起几百次“攻击”，看它会不会出事。

不是 pytest 测试（文件名不以 test_ 开头，pytest 不会收集它），只用标准库，直接运行：
    python tests/attack.py             # 完整的一轮，几百次攻击，要几分钟
    python tests/attack.py --quick     # 约 60 次，不到 2 分钟
    python tests/attack.py --seed=7    # 换一组随机的攻击（同一个种子 → 同一组攻击；信号的时机仍有快慢之分）

攻击的种类：坏掉的模型文件（随机翻转字节、在随机位置截断、删掉键、换掉类型、巨大的数、极深的嵌套……）、
保存时 kill -9、磁盘满（/dev/full 当标准输出；能挂载 tmpfs 时再存到一个小小的 tmpfs 上）、只读的文件夹、
奇怪的文件（管道、/dev/zero、文件夹、符号链接）、奇怪的值（巨大的整数、NaN、中文破折号、控制字符），
以及在随机的时刻（启动、训练、评估、保存、采样）发 SIGINT/SIGTERM/SIGHUP。

每次攻击记下：有没有回溯 (traceback)？卡住了没有（超时）？原来的模型文件丢了或坏了没有？行为对不对
（退出码只能是 0、1、2、130；失败时标准错误里要有“错误：”；终端不能收到原样的 ESC）？
最后打印一张汇总表；有回溯、卡住或丢文件时，退出码是 1。
"""
import argparse
import collections
import hashlib
import json
import os
import random
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, 'microgpt_teaching.py')
sys.path.insert(0, ROOT)
import microgpt_teaching as mg  # noqa: E402  （只用它的 load_checkpoint 检查文件还能不能读回）

SMALL = ['--n_embd=8', '--n_head=2', '--num_samples=3']
BIG = ['--n_embd=48', '--n_head=2', '--n_layer=2', '--num_samples=3']   # 存一次要零点几秒：kill -9 才打得中“正在保存”
OK_CODES = {0, 1, 2, 130}
NAMES = ['anna', 'bob', 'carla', 'dora', 'eve', 'fay', 'gus', 'hal', 'ivy', 'jo', 'kim', 'lu', 'mia', 'ned',
         'ola', 'pam', 'ray', 'sam', 'tia', 'uma', 'val', 'wes', 'yan', 'abe', 'ben', 'cat', 'dan', 'eli',
         'finn', 'gil', 'hana', 'ian', 'jade', 'kai', 'leo', 'max', 'nia', 'otto', 'pia', 'rex'] * 2
ENV = dict(os.environ, PYTHONIOENCODING='utf-8', COLUMNS='80')
STOPS = [signal.SIGINT, signal.SIGTERM, signal.SIGHUP]


class Result:
    """一次攻击的结果。"""

    def __init__(self, kind, name):
        self.kind, self.name = kind, name
        self.rc, self.traceback, self.hang, self.lost, self.wrong, self.notes = None, False, False, False, False, []
        self.seconds = 0.0

    def bad(self):
        return self.traceback or self.hang or self.lost

    def flags(self):
        return ' '.join(word for word, on in (('TRACEBACK', self.traceback), ('HANG', self.hang), ('LOST', self.lost),
                                                ('WRONG', self.wrong)) if on)


# ---------------------------------------------------------------------------
# 运行脚本，判断结果
# ---------------------------------------------------------------------------

def start(args, cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=None):
    return subprocess.Popen([sys.executable, SCRIPT, *args], cwd=cwd, stdin=subprocess.DEVNULL, stdout=stdout,
                            stderr=stderr, env=env or ENV)


def finish(proc, timeout):
    """等它结束；超时就 kill（只杀这个进程）。返回 (标准输出, 标准错误, 是否超时)。"""
    try:
        out, err = proc.communicate(timeout=timeout)
        return out or b'', err or b'', False
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        return out or b'', err or b'', True


def judge(res, rc, out, err, hung, expect=None):
    """根据退出码和输出填好 res。expect：这次攻击应有的退出码集合（None：只要在 OK_CODES 里）。"""
    res.rc, res.hang = rc, hung
    text = out.decode('utf-8', 'replace') + err.decode('utf-8', 'replace')
    res.traceback = 'Traceback (most recent call last)' in text
    errors = err.decode('utf-8', 'replace')
    if hung:
        res.notes.append('超时')
        return res
    if rc not in OK_CODES:
        res.wrong = True
        res.notes.append(f'退出码 {rc}')
    elif rc in (1, 2) and '错误：' not in errors:
        res.wrong = True
        res.notes.append(f'退出码 {rc} 却没有“错误：”')
    if expect is not None and rc not in expect:
        res.wrong = True
        res.notes.append(f'退出码 {rc}，应为 {sorted(expect)}')
    if b'\x1b' in out or b'\x1b' in err:
        res.wrong = True
        res.notes.append('原样输出了 ESC')
    if res.traceback:
        res.notes.append(text[text.index('Traceback'):][-300:].replace('\n', ' | '))
    return res


def run(res, args, cwd, timeout=60, expect=None, **kw):
    proc = start(args, cwd, **kw)
    out, err, hung = finish(proc, timeout)
    judge(res, proc.returncode, out, err, hung, expect)
    return out.decode('utf-8', 'replace'), err.decode('utf-8', 'replace')


def digest(path):
    with open(path, 'rb') as f:
        return hashlib.sha256(f.read()).hexdigest()


def loads(path):
    """这个文件能当模型文件读回吗？"""
    try:
        mg.load_checkpoint(path)
        return True
    except mg.UserError:
        return False


def check_kept(res, path, old_digest, may_change=True):
    """path 上原来的模型文件：要么原封不动，要么（may_change 时）换成了一个能读回的新模型文件。
    被换掉时，旁边的备份（.bak……）也必须能读回。"""
    if not os.path.exists(path):
        res.lost = True
        res.notes.append('模型文件不见了')
    elif digest(path) != old_digest:
        if not may_change:
            res.lost = True
            res.notes.append('不该被改动的文件被改了')
        elif not loads(path):
            res.lost = True
            res.notes.append('模型文件被换成了读不回的东西')
    folder = os.path.dirname(path)
    for name in os.listdir(folder):
        if re.fullmatch(re.escape(os.path.basename(path)) + r'\.bak\d*', name) and not loads(os.path.join(folder, name)):
            res.notes.append(f'备份 {name} 读不回（被打断在复制备份的中途？原来的文件仍在）')


def leftovers(folder):
    return [name for name in os.listdir(folder) if name.startswith('.') and name.endswith('.tmp')]


# ---------------------------------------------------------------------------
# 准备：数据和几个好的模型文件
# ---------------------------------------------------------------------------

class Lab:
    def __init__(self, base, rng):
        self.base, self.rng, self.count, self.cases = base, rng, 0, {}
        self.lock = threading.Lock()
        self.data = os.path.join(base, 'names.txt')
        with open(self.data, 'w', encoding='utf-8') as f:
            f.write('\n'.join(NAMES) + '\n')
        self.good = os.path.join(base, 'good.json')          # 小模型，训练 30 步
        self.big = os.path.join(base, 'big.json')            # 大一点的模型：存一次要一会儿
        for path, shape in ((self.good, SMALL), (self.big, BIG)):
            proc = subprocess.run([sys.executable, SCRIPT, f'--input_path={self.data}', '--num_steps=30', f'--save_path={path}', *shape],
                                  capture_output=True, env=ENV)
            if proc.returncode != 0:
                sys.exit('准备模型文件失败：\n' + proc.stderr.decode('utf-8', 'replace'))
        with open(self.good, encoding='utf-8') as f:
            self.good_text = f.read()

    def next_case(self, kind):
        """同一种攻击的第几次（从 0 数起）：用来依次轮流几种情形，而不是随机挑。"""
        with self.lock:
            self.cases[kind] = self.cases.get(kind, -1) + 1
            return self.cases[kind]

    def room(self):
        """每次攻击一个自己的文件夹（可以并行），里面有数据 names.txt。"""
        with self.lock:
            self.count += 1
            path = os.path.join(self.base, f'a{self.count:04d}')
        os.mkdir(path)
        shutil.copy(self.data, os.path.join(path, 'names.txt'))
        return path

    def room_with_big_model(self):
        """一个新文件夹，里面还有一份大一点的模型文件 m.json（存它要零点几秒）。返回 (文件夹, 模型文件, 它的指纹)。"""
        room = self.room()
        path = os.path.join(room, 'm.json')
        shutil.copy(self.big, path)
        return room, path, digest(path)


# ---------------------------------------------------------------------------
# 1. 坏掉的模型文件
# ---------------------------------------------------------------------------

def all_paths(node, prefix=()):
    """JSON 树里每个节点的路径（键或下标的元组）。"""
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from all_paths(value, prefix + (key,))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from all_paths(value, prefix + (i,))


def pick_path(rng, tree):
    """挑一个节点：一半时候挑上层的（format、settings、vocabulary……），一半时候随机挑（多半是某个数）。"""
    paths = list(all_paths(tree))[1:]
    if rng.random() < 0.5:
        paths = [p for p in paths if len(p) <= 2] or paths
    return rng.choice(paths)


def set_at(tree, path, value):
    node = tree
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value


def delete_at(tree, path):
    node = tree
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]


def corrupt(rng, text):
    """把一个好的模型文件弄坏一种方式。返回 (说明, 新的字节)。"""
    how = rng.choice(['flip', 'flip', 'truncate', 'truncate', 'delete', 'delete', 'swap', 'swap', 'huge', 'huge',
                      'deep', 'nan', 'vocab', 'junk'])
    raw = text.encode('utf-8')
    if how == 'flip':
        data = bytearray(raw)
        for _ in range(rng.choice([1, 1, 2, 5, 50])):
            i = rng.randrange(len(data))
            data[i] ^= 1 << rng.randrange(8)
        return f'翻转字节', bytes(data)
    if how == 'truncate':
        cut = rng.choice([0, 1, rng.randrange(len(raw)), rng.randrange(len(raw)), len(raw) - rng.randrange(1, 20)])
        return f'截断在 {cut}', raw[:cut]
    tree = json.loads(text)
    if how == 'delete':
        path = pick_path(rng, tree)
        delete_at(tree, path)
        return f'删掉 {path[:4]}', json.dumps(tree).encode()
    if how == 'swap':
        path = pick_path(rng, tree)
        value = rng.choice(['x', '', [], {}, [[]], None, True, 0, -1, 1.5, 2 ** 70, [1, 2], {'a': 1}, '\x1b[2J', '\u202e'])
        set_at(tree, path, value)
        return f'{path[:4]} 换成 {value!r}', json.dumps(tree).encode()
    if how == 'huge':
        path = pick_path(rng, tree)
        literal = rng.choice(['1e308', '-1e308', '1e999', '1' + '0' * 5000, '9' * 400, '1e-400', '-0.0', '4503599627370497'])
        set_at(tree, path, '@@HUGE@@')
        return f'{path[:4]} 换成 {literal[:12]}', json.dumps(tree).replace('"@@HUGE@@"', literal).encode()
    if how == 'deep':
        depth = rng.choice([1000, 100000, 1000000])
        path = pick_path(rng, tree)
        set_at(tree, path, '@@DEEP@@')
        return f'{path[:4]} 换成 {depth} 层嵌套', json.dumps(tree).replace('"@@DEEP@@"', '[' * depth + ']' * depth).encode()
    if how == 'nan':
        word = rng.choice(['NaN', 'Infinity', '-Infinity'])
        return f'一个数换成 {word}', re.sub(r'(?<=[\[ ])-?\d\.\d+(?=[,\] ])', word, text, count=1).encode()
    if how == 'vocab':
        vocab = tree['vocabulary']
        change = rng.choice(['drop', 'add', 'dup', 'esc', 'long'])
        if change == 'drop':
            vocab.pop(rng.randrange(len(vocab)))
        elif change == 'add':
            vocab.append('~')
        elif change == 'dup':
            vocab.insert(0, vocab[0])
        elif change == 'esc':
            vocab[0] = '\x1b'
            vocab.sort()
        else:
            vocab[0] = 'ab'
        return f'词表 {change}', json.dumps(tree).encode()
    junk = rng.choice([b'', b'\xef\xbb\xbf' + raw, b'\xff\xfe' + text.encode('utf-16-le'), raw.replace(b'"format"', b'"format": 1, "format"', 1),
                       json.dumps(tree, sort_keys=True).encode(), b'\x00' * 100, b'{"format": "microgpt-teaching-checkpoint"}',
                       raw + b'\n\x1b[31m', b'[' * 10 + raw])
    return '其他坏法', junk


def attack_corrupt(lab, rng):
    res = Result('坏掉的模型文件', '')
    res.name, raw = corrupt(rng, lab.good_text)
    room = lab.room()
    path = os.path.join(room, 'm.json')
    with open(path, 'wb') as f:
        f.write(raw)
    before = digest(path)
    extra = rng.choice([['--num_steps=0'], ['--num_steps=0', '--explain=ab'], ['--num_steps=0', '--prompt=a'],
                        ['--num_steps=2', f'--save_path={path}'], ['--num_steps=0', '--num_samples=0']])
    run(res, ['--input_path=names.txt', f'--load_path={path}', *extra, '--num_samples=3'], room, timeout=60)
    res.name += '；' + ' '.join(extra)
    if res.rc != 0:                        # 读不进来的文件：不许被改动
        check_kept(res, path, before, may_change=False)
    return res


def attack_overwrite_corrupt(lab, rng):
    """拿一个坏掉的文件当 --save_path：要么拒绝（它不再是我们的文件），要么换掉（并且换上的能读回）。"""
    res = Result('坏掉的模型文件', '')
    how, raw = corrupt(rng, lab.good_text)
    res.name = f'存到坏文件上：{how}'
    room = lab.room()
    path = os.path.join(room, 'm.json')
    with open(path, 'wb') as f:
        f.write(raw)
    before = digest(path)
    run(res, ['--input_path=names.txt', f'--save_path={path}', '--num_steps=2', *SMALL], room, timeout=60, expect={0, 2})
    check_kept(res, path, before, may_change=res.rc == 0)
    return res


# ---------------------------------------------------------------------------
# 2. 保存时 kill -9
# ---------------------------------------------------------------------------

def attack_kill9(lab, rng):
    """训练结束后（评估、保存、采样的某个时刻）kill -9。原来的模型文件必须完好：要么还是原来的，要么是完整的新文件。"""
    res = Result('保存时 kill -9', '')
    room, path, before = lab.room_with_big_model()
    lr = rng.choice(['0.01', '10'])        # 10：训练爆炸，还要另存一份备份
    aim = rng.random() < 0.6               # 瞄准：等临时文件出现（正在写新模型文件）再杀；否则在之后的随机时刻杀
    delay = rng.uniform(0, 0.03) if aim else rng.uniform(0, 0.6)
    res.name = f'learning_rate={lr}，{"临时文件出现" if aim else "“训练用时”"}之后 {delay * 1000:.0f} 毫秒'
    proc = start(['--input_path=names.txt', f'--load_path={path}', f'--save_path={path}', '--num_steps=3', f'--learning_rate={lr}',
                  '--num_samples=50'], room)
    seen = threading.Event()

    def watch():                           # 读标准输出，看到“训练用时”就通知
        for line in proc.stdout:
            if '训练用时'.encode() in line:
                seen.set()
        seen.set()
    reader = threading.Thread(target=watch, daemon=True)
    reader.start()
    seen.wait(60)
    deadline = time.time() + 20
    while aim and not leftovers(room) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.0002)
    time.sleep(delay)
    proc.kill()
    proc.wait()
    reader.join(5)
    res.rc = proc.returncode
    check_kept(res, path, before)
    if leftovers(room):
        res.notes.append(f'留下了临时文件 {leftovers(room)}（kill -9 没法清理，下次保存不受影响）')
    return res


# ---------------------------------------------------------------------------
# 3. 磁盘满
# ---------------------------------------------------------------------------

def attack_dev_full(lab, rng):
    res = Result('磁盘满', '')
    room = lab.room()
    path = os.path.join(room, 'm.json')
    which = rng.choice(['stdout', 'stderr', 'both'])
    res.name = f'{which} 是 /dev/full'
    with open('/dev/full', 'wb') as full:
        kw = {'stdout': full if which != 'stderr' else subprocess.PIPE, 'stderr': full if which != 'stdout' else subprocess.PIPE}
        run(res, ['--input_path=names.txt', f'--save_path={path}', '--num_steps=5', *SMALL], room, timeout=60, expect={0}, **kw)
    if not (os.path.exists(path) and loads(path)):
        res.lost = True
        res.notes.append('输出写不出去，模型也没存下来')
    return res


class Tmpfs:
    """一个很小的 tmpfs（要 root 权限挂载）；挂不上时 ok 是 False。"""

    def __init__(self, folder, size, readonly=False):
        self.folder = folder
        os.makedirs(folder, exist_ok=True)
        options = f'size={size}' + (',ro' if readonly else '')
        self.ok = subprocess.run(['mount', '-t', 'tmpfs', '-o', options, 'tmpfs', folder], capture_output=True).returncode == 0

    def close(self):
        if self.ok:
            subprocess.run(['umount', '-l', self.folder], capture_output=True)


def attack_small_tmpfs(lab, rng):
    """存到一个几乎满了的 tmpfs 上：原来的模型文件必须完好，错误只有一句话，不留临时文件。"""
    res = Result('磁盘满', '')
    room = lab.room()
    fs = Tmpfs(os.path.join(room, 'disk'), '512k')
    if not fs.ok:
        res.name = '小 tmpfs（挂载不了，跳过）'
        res.notes.append('skip')
        return res
    try:
        what = rng.choice(['save', 'save', 'html', 'new'])
        path = os.path.join(fs.folder, 'm.html' if what == 'html' else 'm.json')
        if what == 'save':
            shutil.copy(lab.good, path)
        elif what == 'html':
            with open(path, 'w', encoding='utf-8') as f:            # 一个“我们写的”网页：开头有 PAGE_MARK
                f.write('<!DOCTYPE html>' + mg.PAGE_MARK + 'x' * 50000)
        before = digest(path) if os.path.exists(path) else None
        free = rng.choice([0, 1000, 20000, 60000])
        filler = os.open(os.path.join(fs.folder, 'filler'), os.O_CREAT | os.O_WRONLY)   # 把剩下的空间填满……
        try:
            while os.write(filler, b'x' * 4096):
                pass
        except OSError:
            pass
        os.ftruncate(filler, max(0, os.fstat(filler).st_size - free))                 # ……再让出 free 字节
        os.close(filler)
        res.name = f'{what}，剩 {free} 字节'
        setting = '--html_path' if what == 'html' else '--save_path'
        run(res, ['--input_path=names.txt', f'{setting}={path}', '--num_steps=3', *SMALL], room, timeout=60, expect={0, 1, 2})
        if before and what == 'html':      # 网页：要么原封不动，要么换成了完整的新网页
            with open(path, 'rb') as f:
                if digest(path) != before and (res.rc != 0 or not f.read().rstrip().endswith(b'</html>')):
                    res.lost = True
                    res.notes.append('网页被换成了不完整的东西')
        elif before:
            check_kept(res, path, before, may_change=res.rc == 0)
        if leftovers(fs.folder):
            res.wrong = True
            res.notes.append(f'留下了临时文件 {leftovers(fs.folder)}')
    finally:
        fs.close()
    return res


# ---------------------------------------------------------------------------
# 4. 只读的文件夹
# ---------------------------------------------------------------------------

def attack_readonly(lab, rng):
    res = Result('只读的文件夹', '')
    room = lab.room()
    kind = rng.choice(['ro-mount', 'ro-mount-existing', 'chmod-555', 'chmod-444-file'])
    res.name = kind
    fs = None
    folder = os.path.join(room, 'ro')
    os.mkdir(folder)
    if kind.startswith('ro-mount'):        # 只读挂载：连 root 也写不进去
        fs = Tmpfs(folder, '1m')
        if not fs.ok:
            res.notes.append('skip')
            res.name += '（挂载不了，跳过）'
            return res
        if kind.endswith('existing'):      # 先放一个好的模型文件，再改成只读
            shutil.copy(lab.good, os.path.join(folder, 'good.json'))
        subprocess.run(['mount', '-o', 'remount,ro', folder], capture_output=True)
    else:                                  # chmod：root 不受它限制，所以 root 运行时保存照常成功
        shutil.copy(lab.good, os.path.join(folder, 'good.json'))
        os.chmod(folder if kind == 'chmod-555' else os.path.join(folder, 'good.json'), 0o555 if kind == 'chmod-555' else 0o444)
    try:
        path = os.path.join(folder, 'good.json')
        before = digest(path) if os.path.exists(path) else None
        setting = rng.choice(['--save_path', '--save_path', '--html_path'])
        target = path if setting == '--save_path' and before else os.path.join(folder, 'x.html' if setting == '--html_path' else 'm.json')
        load = [f'--load_path={path}'] if before and rng.random() < 0.5 else []
        res.name += f' {setting}' + (' 读回再存' if load else '')
        expect = {2} if kind.startswith('ro-mount') or (kind == 'chmod-555' and os.geteuid() != 0) else {0}
        out, _ = run(res, ['--input_path=names.txt', f'{setting}={target}', '--num_steps=2', *load, *SMALL], room, timeout=60, expect=expect)
        if res.rc == 2 and '开始训练' in out:
            res.wrong = True
            res.notes.append('训练之后才拒绝')
        if before:
            check_kept(res, path, before, may_change=res.rc == 0)
        if kind == 'chmod-444-file' and res.rc == 0 and stat.S_IMODE(os.stat(path).st_mode) != 0o444:
            res.wrong = True
            res.notes.append('替换后权限变了')
    finally:
        if fs:
            fs.close()
        with_suppress(os.chmod, folder, 0o755)
    return res


def with_suppress(fn, *args):
    try:
        fn(*args)
    except OSError:
        pass


# ---------------------------------------------------------------------------
# 5. 奇怪的文件
# ---------------------------------------------------------------------------

def odd_file(rng, room, lab):
    """造一个奇怪的“文件”，返回 (说明, 路径)。"""
    kind = rng.choice(['fifo', '/dev/zero', '/dev/urandom', '/dev/null', 'dir', 'dir/', 'link-loop', 'dangling-link',
                       'link-to-dir', 'link-to-zero', 'link-to-good', 'empty', 'nul-20MB', 'no-read', 'name-with-newline',
                       'very-long-name', 'missing-folder', 'dot-dot'])
    path = os.path.join(room, 'odd')
    if kind == 'fifo':
        os.mkfifo(path)
    elif kind.startswith('/dev/'):
        path = kind
    elif kind == 'dir':
        os.mkdir(path)
    elif kind == 'dir/':
        os.mkdir(path)
        path += '/'
    elif kind == 'link-loop':
        os.symlink(path, path)
    elif kind == 'dangling-link':
        os.symlink(os.path.join(room, 'nowhere'), path)
    elif kind == 'link-to-dir':
        os.symlink(room, path)
    elif kind == 'link-to-zero':
        os.symlink('/dev/zero', path)
    elif kind == 'link-to-good':
        shutil.copy(lab.good, os.path.join(room, 'good.json'))
        os.symlink(os.path.join(room, 'good.json'), path)
    elif kind == 'empty':
        open(path, 'w').close()
    elif kind == 'nul-20MB':
        with open(path, 'wb') as f:
            f.truncate(20 * 1024 * 1024)
    elif kind == 'no-read':
        shutil.copy(lab.good, path)
        os.chmod(path, 0)
    elif kind == 'name-with-newline':
        path = os.path.join(room, 'a\nb\x1b[31m.json')
        shutil.copy(lab.good, path)
    elif kind == 'very-long-name':
        path = os.path.join(room, 'a' * 300 + '.json')
    elif kind == 'missing-folder':
        path = os.path.join(room, 'no', 'such', 'm.json')
    else:
        path = os.path.join(room, '..', os.path.basename(room), 'odd.json')
    return kind, path


def attack_odd_file(lab, rng):
    res = Result('奇怪的文件', '')
    room = lab.room()
    kind, path = odd_file(rng, room, lab)
    setting = rng.choice(['input_path', 'load_path', 'save_path', 'html_path'])
    res.name = f'--{setting}={kind}'
    args = [f'--{setting}={path}', '--num_steps=2', *SMALL]
    if setting != 'input_path':
        args.insert(0, '--input_path=names.txt')
    out, _ = run(res, args, room, timeout=20)
    if setting in ('save_path', 'html_path') and res.rc == 2 and '开始训练' in out:
        res.wrong = True
        res.notes.append('训练之后才拒绝')
    if kind == 'link-to-good':             # 链接指向的模型文件：要么原封不动，要么是能读回的新文件
        check_kept(res, os.path.join(room, 'good.json'), digest(lab.good))
    return res


# ---------------------------------------------------------------------------
# 6. 奇怪的值
# ---------------------------------------------------------------------------

ODD_VALUES = ['9' * 16, '1' + '0' * 400, '-1', '-0', 'nan', 'NaN', 'inf', '-inf', '1e309', '1e-400', '', ' ', '0x10',
              '1_000', '+5', '５', '١٢', '—5', '1e3', '3.', '.5', 'True', 'none', '\x1b[2J', '\n', 'a\nb', '\u202eab',
              '\x00', '\udcff', 'x' * 100000, '1' * 15, '0.0000001', '1e-300', '1e300', '-1e300']


def attack_odd_value(lab, rng):
    res = Result('奇怪的值', '')
    room = lab.room()
    setting = rng.choice(sorted(mg.SETTINGS))
    value = rng.choice(ODD_VALUES)
    form = rng.choice(['=', ' ', 'ime-dash', 'ime-equals', 'ime-colon', 'en-dash'])
    if form == '=':
        args = [f'--{setting}={value}']
    elif form == ' ':
        args = [f'--{setting}', value]
    elif form == 'ime-dash':
        args = [f'——{setting}={value}']
    elif form == 'ime-equals':
        args = [f'--{setting}＝{value}']
    elif form == 'ime-colon':
        args = [f'--{setting}：{value}']
    else:
        args = [f'–{setting}={value}']
    res.name = f'{form} --{setting}={value[:12]!r}'
    if setting in ('save_path', 'html_path', 'load_path') and value and not value.isspace():
        args = [a.replace(value, os.path.join(room, value[:200])) for a in args] if '\x00' not in value else args
    if '\x00' in value:                     # 命令行参数里不可能有 NUL：操作系统不让传
        res.notes.append('skip')
        return res
    extra = ['--num_steps=2', *SMALL]
    if setting != 'input_path':
        extra.insert(0, '--input_path=names.txt')
    try:
        run(res, args + extra, room, timeout=30)
    except (ValueError, UnicodeEncodeError):  # \udcff 这样的字符 Popen 传不出去
        res.notes.append('skip')
    return res


def attack_odd_mix(lab, rng):
    """几个奇怪的参数混在一起，再加一个好的模型文件。"""
    res = Result('奇怪的值', '')
    room = lab.room()
    args = ['--input_path=names.txt']
    for _ in range(rng.randint(1, 4)):
        setting = rng.choice(['num_steps', 'temperature', 'learning_rate', 'prompt', 'explain', 'n_embd', 'n_head', 'n_layer',
                              'block_size', 'val_size', 'num_samples', 'log_every', 'seed', 'init_std', 'beta1', 'eps_adam'])
        value = rng.choice(ODD_VALUES[:-4] + ['0', '1', '2', '3', '100000', 'ab', 'zz', 'a' * 15, 'a' * 16, '0.5', '1e-8', '16', '7'])
        if '\x00' in value or '\udcff' in value:
            continue
        args.append(f'--{setting}={value}')
    if rng.random() < 0.5:
        args.append(f'--load_path={lab.good}')
    if '--num_steps' not in ' '.join(args) or rng.random() < 0.5:
        args.append('--num_steps=2')
    res.name = ' '.join(a[:24] for a in args[1:])
    run(res, args + ['--num_samples=2'], room, timeout=30)
    return res


def attack_same_path(lab, rng):
    """两个路径设置指向同一个文件：不许有一个文件被另一个悄悄覆盖。"""
    res = Result('撞在一起的路径', '')
    room = lab.room()
    path = os.path.join(room, 'same.json')
    cases = [(pair, existing) for pair in [('save_path', 'html_path'), ('load_path', 'save_path'), ('input_path', 'save_path'),
                                           ('input_path', 'html_path'), ('load_path', 'html_path')]
             for existing in (None, 'good', 'names')]
    pair, existing = cases[lab.next_case('same_path') % len(cases)]       # 依次轮流：完整的一轮 15 次正好每种一次
    if existing == 'good':
        shutil.copy(lab.good, path)
    elif existing == 'names':
        shutil.copy(lab.data, path)
    res.name = f'{pair[0]} = {pair[1]}，原来{"没有文件" if existing is None else "是 " + existing}'
    before = digest(path) if existing else None
    args = [f'--{pair[0]}={path}', f'--{pair[1]}={path}', '--num_steps=2', *SMALL]
    if 'input_path' not in pair:
        args.insert(0, '--input_path=names.txt')
    run(res, args, room, timeout=30)
    if res.rc == 0 and 'save_path' in pair and not loads(path):
        res.lost = True
        res.notes.append('程序说模型已保存，可文件不是模型文件了（被网页覆盖？）')
    if res.rc == 0 and 'html_path' in pair and 'save_path' not in pair and before and digest(path) != before and existing != 'good':
        res.lost = True
        res.notes.append('数据文件被网页覆盖了')
    if res.rc == 0 and pair == ('save_path', 'html_path'):
        with open(path, 'rb') as f:
            if f.read(15) == b'<!DOCTYPE html>':
                res.lost = True
                res.notes.append('模型文件被网页覆盖了')
    return res


# ---------------------------------------------------------------------------
# 7. 随机时刻的信号
# ---------------------------------------------------------------------------

def handlers_installed(pid):
    """脚本自己的信号处理函数装好了没有：/proc/<pid>/status 的 SigCgt 里有没有 SIGTERM。"""
    try:
        with open(f'/proc/{pid}/status') as f:
            caught = int(re.search(r'^SigCgt:\s*([0-9a-f]+)', f.read(), flags=re.M).group(1), 16)
        return bool(caught >> (signal.SIGTERM - 1) & 1)
    except (OSError, AttributeError):
        return False


def attack_signal(lab, rng):
    """在某个阶段的随机时刻发 1–3 个停止信号。必须：没有回溯、退出码 0 或 130、原来的模型文件完好、不留临时文件。"""
    res = Result('随机时刻的信号', '')
    room, path, before = lab.room_with_big_model()
    phase = rng.choice(['startup', 'training', 'eval', 'save', 'sampling', 'anytime'])
    sigs = [rng.choice(STOPS) for _ in range(rng.choice([1, 1, 2, 3]))]
    gaps = [rng.choice([0, 0.001, 0.01, 0.05, 0.2]) for _ in sigs]
    res.name = f'{phase}：' + '、'.join(signal.Signals(s).name[3:] for s in sigs)
    args = ['--input_path=names.txt', f'--load_path={path}', f'--save_path={path}', '--num_steps=60', '--num_samples=60',
            '--explain=annabelle']
    proc = start(args, room)
    lines, marks = [], {'training': '开始训练', 'eval': '训练用时', 'save': '训练用时', 'sampling': '模型已保存'}

    def watch():
        for line in proc.stdout:
            lines.append(line.decode('utf-8', 'replace'))
    reader = threading.Thread(target=watch, daemon=True)
    reader.start()
    deadline = time.time() + 60
    if phase == 'startup':                 # 脚本的信号处理装好之后（在那之前是 Python 自己的默认处理）
        while not handlers_installed(proc.pid) and proc.poll() is None and time.time() < deadline:
            time.sleep(0.0005)
        time.sleep(rng.uniform(0, 0.05))
    elif phase == 'anytime':
        while not handlers_installed(proc.pid) and proc.poll() is None and time.time() < deadline:
            time.sleep(0.0005)
        time.sleep(rng.uniform(0, 3))
    else:
        while not any(marks[phase] in line for line in lines) and proc.poll() is None and time.time() < deadline:
            time.sleep(0.001)
        time.sleep(rng.uniform(0, 0.3 if phase in ('eval', 'save') else 0.5))
    for sig, gap in zip(sigs, gaps):
        if proc.poll() is not None:
            break
        proc.send_signal(sig)
        time.sleep(gap)
    try:
        proc.wait(60)
        hung = False
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        hung = True
    reader.join(5)
    err = proc.stderr.read()
    judge(res, proc.returncode, ''.join(lines).encode(), err, hung, expect={0, 130})
    exits = err.decode('utf-8', 'replace').count('已退出。')
    if exits > 1:
        res.wrong = True
        res.notes.append(f'“已退出。”出现了 {exits} 次')
    check_kept(res, path, before)
    if phase in ('eval', 'save') and len(sigs) == 1 and res.rc in (0, 130) and steps_in(path) != 90:   # 读回的 30 步 + 这次 60 步
        res.lost = True
        res.notes.append(f'训练结束后只收到一个信号，训练的结果却没有存下来（模型文件里是 {steps_in(path)} 步）')
    if leftovers(room):
        res.wrong = True
        res.notes.append(f'留下了临时文件 {leftovers(room)}')
    return res


def attack_signal_early(lab, rng):
    """脚本的信号处理装好之前（Python 还在启动、import 模块）就发信号。这段时间归 Python 自己管：
    SIGTERM/SIGHUP 直接结束进程，SIGINT 可能打出 KeyboardInterrupt 的回溯。只记录，不算失败。"""
    res = Result('启动之前的信号（只记录）', '')
    room = lab.room()
    sig = rng.choice(STOPS)
    delay = rng.uniform(0, 0.08)
    res.name = f'{signal.Signals(sig).name} 在启动后 {delay * 1000:.0f} 毫秒'
    proc = start(['--input_path=names.txt', '--num_steps=5', *SMALL], room)
    time.sleep(delay)
    installed = handlers_installed(proc.pid)
    proc.send_signal(sig)
    out, err, hung = finish(proc, 30)
    judge(res, proc.returncode, out, err, hung)
    res.notes.append('信号处理已装好' if installed else '信号处理还没装好')
    if not installed:                      # 只记录：这不算脚本的错
        res.notes.append(f'{"有回溯" if res.traceback else "无回溯"}，退出码 {res.rc}')
        res.traceback = res.wrong = False
    return res


# ---------------------------------------------------------------------------
# 7b. 第二轮：别名、训练期间出现的文件、比不了的模型、文件名、并发保存
# ---------------------------------------------------------------------------

def steps_in(path):
    """模型文件记的已训练步数；读不回时是 None。"""
    try:
        return mg.load_checkpoint(path)['steps_trained']
    except mg.UserError:
        return None


def val_loss_in(path):
    try:
        return mg.load_checkpoint(path)['val_loss']
    except mg.UserError:
        return None


def backups(path):
    folder, name = os.path.split(path)
    return [os.path.join(folder, n) for n in sorted(os.listdir(folder)) if re.fullmatch(re.escape(name) + r'\.bak\d*', n)]


SECOND_ROUND = ['proc_self_cwd', 'symlinked_folder', 'hard_link', 'essay_during_training', 'note_with_marker',
                'exploded_no_val', 'untrained_no_val', 'undecodable_name', 'long_name', 'concurrent_saves']


def attack_second_round(lab, rng):
    """第二轮攻击里“丢了文件”的那几种，依次轮流：同一个文件的别名、训练期间有人存到输出路径、引用了网页标记的笔记、
    没有留出集时比不了的模型、不是 UTF-8 的文件名、255 个字符的名字、两个同时保存到同一个路径的运行。"""
    case = SECOND_ROUND[lab.next_case('second_round') % len(SECOND_ROUND)]
    res = Result('第二轮', case)
    room = lab.room()
    good = os.path.join(room, 'good.json')
    shutil.copy(lab.good, good)
    before = digest(good)
    base = ['--input_path=names.txt', *SMALL]
    if case in ('proc_self_cwd', 'symlinked_folder', 'hard_link'):
        # 模型存到 m.json，网页存到它的一个别名：不拒绝的话，网页就盖掉刚存好的模型
        page = {'proc_self_cwd': '/proc/self/cwd/m.json', 'symlinked_folder': 'lnk/m.json', 'hard_link': 'twin.json'}[case]
        if case == 'symlinked_folder':
            os.symlink(room, os.path.join(room, 'lnk'))
        if case == 'hard_link':                           # m.json 是训练好的模型，twin.json 是它的硬链接
            shutil.copy(lab.good, os.path.join(room, 'm.json'))
            os.link(os.path.join(room, 'm.json'), os.path.join(room, 'twin.json'))
        run(res, [*base, '--num_steps=2', '--save_path=m.json', f'--html_path={page}'], room, timeout=30, expect={2})
        model = os.path.join(room, 'm.json')
        if os.path.exists(model) and not loads(model):
            res.lost = True
            res.notes.append('模型文件被网页盖掉了')
    elif case == 'essay_during_training':
        proc = start([*base, '--num_steps=400', '--html_path=race.html', '--log_every=1'], room)
        for line in proc.stdout:                          # 训练开始以后，有人在 race.html 存了一篇作文
            if line.startswith('步 '.encode()):
                with open(os.path.join(room, 'race.html'), 'w', encoding='utf-8') as f:
                    f.write('我的作文')
                break
        out, err, hung = finish(proc, 90)
        judge(res, proc.returncode, out, err, hung, expect={0})
        kept = [n for n in os.listdir(room) if n.startswith('race.html')]
        if not any(open(os.path.join(room, n), encoding='utf-8', errors='replace').read() == '我的作文' for n in kept):
            res.lost = True
            res.notes.append('训练期间存的作文被网页盖掉了')
    elif case == 'note_with_marker':
        note = os.path.join(room, 'note.html')
        with open(note, 'w', encoding='utf-8') as f:
            f.write(f'笔记：网页开头是这样一行 {mg.PAGE_MARK.format("0" * 64)}，以前是 <meta name="generator" content="microgpt_teaching.py">\n')
        note_digest = digest(note)
        run(res, [*base, '--num_steps=2', '--html_path=note.html'], room, timeout=30, expect={2})
        if digest(note) != note_digest:
            res.lost = True
            res.notes.append('引用了网页标记的笔记被覆盖了')
    elif case in ('exploded_no_val', 'untrained_no_val'):
        extra = ['--num_steps=40', '--learning_rate=3'] if case == 'exploded_no_val' else ['--num_steps=0']
        run(res, [*base, *extra, '--val_size=0', '--save_path=good.json'], room, timeout=60, expect={0, 1})
        if not any(digest(b) == before for b in backups(good)) and digest(good) != before:
            res.lost = True
            res.notes.append('训练好的模型被一个比不了的模型顶掉，也没有备份')
    elif case == 'undecodable_name':
        os.rename(os.path.join(room, 'names.txt'), os.path.join(os.fsencode(room), b'n\xff.txt'))
        run(res, [b'--input_path=n\xff.txt', '--num_steps=3', '--save_path=m.json', *SMALL], room, timeout=60, expect={0})
        if steps_in(os.path.join(room, 'm.json')) != 3:
            res.lost = True
            res.notes.append('训练好的模型没有存下来')
    elif case == 'long_name':
        run(res, [*base, '--num_steps=3', f'--save_path={"m" * 250}.json'], room, timeout=30, expect={2})
    else:                     # 两个几乎同时保存到同一个路径的运行（大一点的模型，存一次要零点几秒）：更好的模型不能丢
        runs = [start(['--input_path=names.txt', *BIG, f'--learning_rate={lr}', '--num_steps=30', '--save_path=good.json'], room)
                for lr in ('0.01', '0.012')]
        results = [finish(proc, 120) for proc in runs]
        best = val_loss_in(lab.good)                      # 三个模型（原来的和这两次的）里最好的那个
        for proc, (out, err, hung) in zip(runs, results):
            judge(res, proc.returncode, out, err, hung, expect={0})
            found = re.search(r'^  训练后 +(\d+\.\d+) ', out.decode('utf-8', 'replace'), flags=re.M)
            best = min(best, float(found.group(1))) if found else best
        kept = [x for x in (val_loss_in(p) for p in [good] + backups(good)) if x is not None]
        if not kept or min(kept) > best + 5e-5:
            res.lost = True
            res.notes.append(f'更好的模型（留出集损失 {best:.4f}）不见了：留下的是 {kept}')
    return res


# ===========================================================================
# 8. 练习检查 tests/practice.py（practice 块：从这里到“8 结束”由练习检查的维护者改动）
# ===========================================================================
# 学习者删掉一个函数体自己重写，写出来的可能是死循环、sys.exit()、关掉 sys.stdout、狂打印……练习检查既不能
# 卡住，也不能被骗成“通过”，自己的输出写不出去（/dev/full、| head）也不能打出回溯。每种情形一次，依次轮流。
# 只跑这一块（不用先训练 Lab 的两个模型）：
#     python -c "import sys; sys.path.insert(0, 'tests'); import attack; sys.exit(attack.run_practice_attacks())"

PRACTICE = os.path.join(ROOT, 'tests', 'practice.py')
PRACTICE_LIMIT = '5'                       # 死循环那一次：每项检查最多 5 秒（默认 20 秒），攻击快一些；别的用默认的限制

# (名字, 追加到学习者文件末尾的代码（None：不改文件，另有设置）)。追加的代码换掉一个练习函数：文件里的
# 还是学习者自己写的代码，和删掉函数体重写是一回事。
PRACTICE_ATTACKS = [
    ('死循环', 'def _step(self, lr):\n    while True:\n        pass\nAdam.step = _step\n'),
    ('FIFO', None),
    ('递归炸弹', 'def _backward(self):\n    import sys\n    sys.setrecursionlimit(10 ** 7)\n'
             '    def visit(node):\n        return visit(node) + 1\n    visit(self)\nValue.backward = _backward\n'),
    ('print 洪水', '_real_step = Adam.step\ndef _step(self, lr):\n    print("x" * 50_000_000)\n'
                 '    return _real_step(self, lr)\nAdam.step = _step\n'),
    ('函数里 sys.exit(0)', 'def _relu(self):\n    import sys\n    sys.exit(0)\nValue.relu = _relu\n'),
    ('顶层 sys.exit(0)', 'import sys\nsys.exit(0)\n'),
    ('BaseException', 'def _log(self):\n    raise BaseException("boom")\nValue.log = _log\n'),
    ('GeneratorExit', 'def _exp(self):\n    raise GeneratorExit\nValue.exp = _exp\n'),
    ('KeyboardInterrupt', 'def _step(self, lr):\n    raise KeyboardInterrupt\nAdam.step = _step\n'),
    ('关掉 sys.stdout', '_real_rmsnorm = rmsnorm\ndef rmsnorm(x):\n    import sys\n    sys.stdout.close()\n'
                        '    return _real_rmsnorm(x)\n'),
    ('/dev/full', None),
    ('| head', None),
    ('Latin-1 字节', None),
    ('文件夹', None),
    ('不存在的文件', None),
]


def practice_workers(path):
    """还活着的、检查 path 的 worker 进程（只在有 /proc 的系统上看得到）。"""
    found = []
    if os.path.isdir('/proc'):
        for pid in filter(str.isdigit, os.listdir('/proc')):
            try:
                with open(f'/proc/{pid}/cmdline', 'rb') as f:
                    if b'--worker\0' + path.encode() in f.read():
                        found.append(pid)
            except OSError:
                pass
    return found


def attack_practice(lab, rng):
    """对练习检查发起一种攻击（依次轮流）。要求：没有回溯、不卡住、退出码对（学习者的错是 1，文件有问题是 2，
    原样的脚本是 0）、说出该说的话、不留下在后台运行的 worker 进程。"""
    name, code = PRACTICE_ATTACKS[lab.next_case('practice') % len(PRACTICE_ATTACKS)]
    res = Result('练习检查 practice.py', name)
    room = lab.room()
    path = os.path.join(room, 'microgpt_teaching.py')
    shutil.copy(SCRIPT, path)
    shutil.copy(os.path.join(ROOT, 'input.txt'), room)
    with open(SCRIPT, 'rb') as f:
        source = f.read()
    if code:
        with open(path, 'a', encoding='utf-8') as f:
            f.write('\n\n# ---- 学习者重写的函数 ----\n' + code)
    if name == 'FIFO':
        os.remove(path)
        os.mkfifo(path)
    elif name == '文件夹':
        os.remove(path)
        os.mkdir(path)
    elif name == '不存在的文件':
        os.remove(path)
    elif name == 'Latin-1 字节':                 # 第 line 行的注释里放一个 Latin-1 的 é（UTF-8 里不合法）
        at = source.index(b'# ', len(source) // 2)
        line = source[:at].count(b'\n') + 1
        with open(path, 'wb') as f:
            f.write(source[:at + 2] + b'caf\xe9 ' + source[at + 2:])
    env = dict(ENV, PRACTICE_TIME_LIMIT=PRACTICE_LIMIT) if name == '死循环' else ENV
    args = [sys.executable, PRACTICE, '--file', path]
    checks = []                                # (说明, 对不对)
    if name in ('/dev/full', '| head'):
        with open('/dev/full', 'wb') as full:
            proc = subprocess.Popen(args, cwd=room, env=env, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                    stdout=full if name == '/dev/full' else subprocess.PIPE)
            if name == '| head':                 # 像 | head -3：读 3 行就走
                for _ in range(3):
                    proc.stdout.readline()
                proc.stdout.close()
            try:
                err, hung = proc.communicate(timeout=60)[1], False
            except subprocess.TimeoutExpired:
                proc.kill()
                err, hung = proc.communicate()[1], True
        out, err = b'', err or b''
        expect = {0}                           # 原样的脚本：全部通过，输出写不出去也照样是 0
        checks.append(('标准错误不是空的', not err.strip()))
    else:
        proc = subprocess.Popen(args, cwd=room, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        out, err, hung = finish(proc, 60)
        text, errors = out.decode('utf-8', 'replace'), err.decode('utf-8', 'replace')
        rows = dict(re.findall(r'^ ?\d+\. (\S+)\s.*?\s{2}((?:通过|不通过|待定).*(?:\n {30}.*)*)', text, flags=re.M))
        row = lambda exercise: re.sub(r'\s*\n\s*', '', rows.get(exercise, ''))   # 折成几行的接起来
        one_error = len(errors.strip().splitlines()) == 1 and errors.startswith('错误：')
        expect = {2} if name in ('FIFO', '文件夹', '不存在的文件', 'Latin-1 字节') else {1}
        if name == '死循环':
            checks += [('adam 没有说超时', row('adam').startswith('不通过') and '超时（可能是死循环）' in row('adam')),
                       ('adam 之后的 sample_name 没有检查', row('sample_name').startswith(('不通过', '待定')))]
        elif name == '递归炸弹':
            checks.append(('backward 没有不通过（RecursionError 或崩溃）', row('backward').startswith('不通过') and (
                'RecursionError' in row('backward') or '意外结束' in row('backward'))))
        elif name == 'print 洪水':
            expect = {0}
            checks += [(f'输出有 {len(out):,} 字节，没有截断', len(out) < 20000),
                       ('没有说打印了多少', re.search(r'打印了 [\d,]{11,} 个字符', text) is not None)]
        elif name == '函数里 sys.exit(0)':
            checks.append(('relu 没有因为 SystemExit 不通过', row('relu').startswith('不通过') and 'SystemExit' in row('relu')))
        elif name == '顶层 sys.exit(0)':
            checks.append(('没有说导入时出错', '导入时就出错了' in text and 'SystemExit' in text))
        elif name in ('BaseException', 'GeneratorExit'):
            exercise = 'log' if name == 'BaseException' else 'exp'
            checks.append((f'{exercise} 没有因为 {name} 不通过', row(exercise).startswith('不通过') and name in row(exercise)))
        elif name == 'KeyboardInterrupt':
            checks.append(('adam 没有因为 KeyboardInterrupt 不通过', row('adam').startswith('不通过') and 'KeyboardInterrupt' in row('adam')))
        elif name == '关掉 sys.stdout':
            checks += [('rmsnorm 没有说关掉了 sys.stdout', 'sys.stdout 关掉了' in row('rmsnorm')),
                       ('报告不完整', text.rstrip().endswith('python tests/practice.py rmsnorm'))]
        elif name == 'FIFO':
            checks.append(('不是一行说管道的“错误：”', one_error and '管道' in errors))
        elif name == '文件夹':
            checks.append(('不是一行说文件夹的“错误：”', one_error and '文件夹' in errors))
        elif name == '不存在的文件':
            checks.append(('不是一行说找不到的“错误：”', one_error and '找不到' in errors))
        elif name == 'Latin-1 字节':
            checks.append(('没有说第几行、GBK', one_error and f'第 {line} 行' in errors and 'GBK' in errors))
        if expect == {1}:
            checks.append(('标准错误不是空的', not errors.strip()))
    res.rc, res.hang = proc.returncode, hung
    text = (out + err).decode('utf-8', 'replace')
    res.traceback = 'Traceback (most recent call last)' in text
    if hung:
        res.notes.append('超时')
        return res
    if res.rc not in expect:
        res.wrong = True
        res.notes.append(f'退出码 {res.rc}，应为 {sorted(expect)}')
    for what, ok in checks:
        if not ok:
            res.wrong = True
            res.notes.append(what)
    time.sleep(0.2)
    if practice_workers(path):
        res.wrong = True
        res.notes.append('留下了在后台运行的 worker 进程')
    if res.traceback:
        res.notes.append(text[text.index('Traceback'):][-300:].replace('\n', ' | '))
    if res.wrong and not res.traceback:
        res.notes.append(text[-300:].replace('\n', ' | '))
    return res


def run_practice_attacks(jobs=2):
    """只跑练习检查这一块（每种攻击一次），打印和完整攻击一样的汇总表；有回溯、卡住或行为不对时返回 1。"""
    base = tempfile.mkdtemp(prefix='microgpt-attack-practice-')
    started = time.time()
    try:
        lab = Lab.__new__(Lab)                 # 不训练 Lab 的模型：这一块用不到
        lab.base, lab.rng, lab.count, lab.cases, lab.lock = base, random.Random(0), 0, {}, threading.Lock()
        lab.data = os.path.join(base, 'names.txt')
        with open(lab.data, 'w', encoding='utf-8') as f:
            f.write('\n'.join(NAMES) + '\n')
        with ThreadPoolExecutor(jobs) as pool:
            def one(_):
                began = time.time()
                res = attack_practice(lab, None)
                res.seconds = time.time() - began
                return res
            results = list(pool.map(one, range(len(PRACTICE_ATTACKS))))
    finally:
        shutil.rmtree(base, ignore_errors=True)
    report(results, time.time() - started, argparse.Namespace(seed=0, quick=False, verbose=True))
    return 1 if any(r.bad() or r.wrong for r in results) else 0
# ===========================================================================
# 8 结束（练习检查 practice 块）
# ===========================================================================


# ---------------------------------------------------------------------------
# 主程序
# ---------------------------------------------------------------------------

PLAN = [  # (攻击, 完整一轮的次数, --quick 的次数)
    (attack_corrupt, 110, 16),
    (attack_overwrite_corrupt, 20, 4),
    (attack_kill9, 30, 6),
    (attack_dev_full, 9, 3),
    (attack_small_tmpfs, 12, 3),
    (attack_readonly, 16, 4),
    (attack_odd_file, 50, 8),
    (attack_odd_value, 60, 8),
    (attack_odd_mix, 30, 4),
    (attack_same_path, 15, 3),
    (attack_signal, 60, 8),
    (attack_signal_early, 10, 2),
    (attack_second_round, 2 * len(SECOND_ROUND), len(SECOND_ROUND)),
    (attack_practice, len(PRACTICE_ATTACKS), len(PRACTICE_ATTACKS)),   # 8. 练习检查：每种一次
]


def main():
    parser = argparse.ArgumentParser(description='对 microgpt_teaching.py 的命令行发起攻击，看它会不会出事。')
    parser.add_argument('--quick', action='store_true', help='只做约 60 次攻击（不到 2 分钟）')
    parser.add_argument('--seed', type=int, default=0, help='随机种子（默认 0）')
    parser.add_argument('--jobs', type=int, default=max(2, os.cpu_count() or 2), help='同时进行几个攻击')
    parser.add_argument('--keep', action='store_true', help='结束后保留临时文件夹')
    parser.add_argument('-v', '--verbose', action='store_true', help='每次攻击都打印一行')
    options = parser.parse_args()
    rng = random.Random(options.seed)
    base = tempfile.mkdtemp(prefix='microgpt-attack-')
    started = time.time()
    try:
        lab = Lab(base, rng)
        jobs = [(fn, random.Random(rng.random())) for fn, full, quick in PLAN for _ in range(quick if options.quick else full)]
        rng.shuffle(jobs)

        def one(job):
            fn, job_rng = job
            began = time.time()
            try:
                res = fn(lab, job_rng)
                res.seconds = time.time() - began
                return res
            except Exception as e:         # 攻击脚本自己出错：也记下来
                res = Result(fn.__name__, '攻击脚本出错')
                res.wrong = True
                res.notes.append(f'{type(e).__name__}: {e}')
                return res
        with ThreadPoolExecutor(options.jobs) as pool:
            results = list(pool.map(one, jobs))
    finally:
        if options.keep:
            print(f'临时文件夹：{base}')
        else:
            for folder, _, _ in os.walk(base):          # 先把只读的权限改回来，再删
                with_suppress(os.chmod, folder, 0o755)
            shutil.rmtree(base, ignore_errors=True)
    report(results, time.time() - started, options)
    return 1 if any(r.bad() for r in results) else 0


def report(results, seconds, options):
    table = collections.OrderedDict()
    for res in results:
        row = table.setdefault(res.kind, collections.Counter())
        row['攻击'] += 1
        row['跳过'] += 'skip' in res.notes
        row['回溯'] += res.traceback
        row['卡住'] += res.hang
        row['丢文件'] += res.lost
        row['行为不对'] += res.wrong
    columns = ['攻击', '跳过', '回溯', '卡住', '丢文件', '行为不对']
    total = collections.Counter()
    print(f'\n{"种类":<20}' + ''.join(f'{c:>8}' for c in columns))
    for kind, row in table.items():
        total.update(row)
        print(f'{mg.pad(kind, 24)}' + ''.join(f'{row[c]:>10}' for c in columns))
    print(f'{mg.pad("合计", 24)}' + ''.join(f'{total[c]:>10}' for c in columns))
    kills = [r for r in results if r.kind == '保存时 kill -9']
    if kills:                              # 留下临时文件的，正好打在写新文件的中途
        print(f'\nkill -9：{len(kills)} 次里有 {sum(any("临时文件" in n for n in r.notes) for r in kills)} 次打在写新模型文件的中途，'
              f'{sum(any(".bak" in n for n in r.notes) for r in kills)} 次打在做备份的中途；原来的模型文件每次都完好（丢文件一栏是 0 时）。')
    print(f'\n种子 {options.seed}，{"--quick，" if options.quick else ""}用时 {seconds:.0f} 秒。')
    shown = [r for r in results if r.bad() or r.wrong or (options.verbose and r.notes)]
    if options.verbose:
        shown = results
    for res in shown:
        print(f'  [{res.flags() or "ok"}] {res.kind} | {mg.visible(res.name)[:100]} | 退出码 {res.rc} | {res.seconds:.1f} 秒 | '
              f'{mg.visible("；".join(res.notes))[:400]}')


if __name__ == '__main__':
    sys.exit(main())
