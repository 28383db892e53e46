"""README 和教程要和脚本保持一致：设置表、代码摘录、链接。"""
import ast
import os
import re

import pytest

from conftest import ROOT

README = os.path.join(ROOT, 'README.md')
TUTORIAL = os.path.join(ROOT, 'microgpt_tutorial.md')
SCRIPT = os.path.join(ROOT, 'microgpt_teaching.py')
EXCERPT = '# 摘自 microgpt_teaching.py'
NOT_EXCERPT = '# 演示代码，不在脚本里'


def read(path):
    with open(path, encoding='utf-8') as f:
        return f.read()


def code_blocks(text, language):
    return re.findall(r'^```' + language + r'\n(.*?)^```', text, flags=re.M | re.S)


def normalised(text):
    return ' '.join(text.split())


def test_script_uses_python_3_8_grammar():
    """脚本只用 Python 3.8 就有的语法：抓用了更新的语法（例如 match 语句），在老版本 Python 上一运行就报 SyntaxError 的错误。"""
    ast.parse(read(SCRIPT), feature_version=(3, 8))


def test_readme_settings_table_matches_the_script(mg):
    """README 的设置表和脚本第 0 节逐项一致（名字、默认值、类型、顺序）：抓改了脚本的默认值或加了设置，却忘了改 README 的错误。"""
    rows = re.findall(r'^\| `(\w+)` \| `([^`]*)` \|', read(README), flags=re.M)
    table = {name: ast.literal_eval(default) for name, default in rows}
    assert table == mg.SETTINGS
    assert [name for name, _ in rows] == list(mg.SETTINGS)          # 顺序和脚本里一样
    for name, default in rows:
        assert type(ast.literal_eval(default)) is type(mg.SETTINGS[name])


def test_readme_gives_the_two_commands_and_ci_runs_the_test_command():
    """README 给出运行命令和测试命令，CI（.ci/run）运行的正是这条测试命令：抓 README 里写的命令和实际用的不一致的错误。"""
    text = read(README)
    blocks = [block.strip() for block in code_blocks(text, 'bash')]
    assert blocks[0] == 'python3 microgpt_teaching.py'          # Linux 和 macOS 上多半只有 python3
    test_command = 'python -m pip install pytest && python -m pytest'
    assert test_command in blocks[:4]
    assert test_command in read(os.path.join(ROOT, '.ci', 'run'))


def test_every_python_block_in_the_tutorial_is_marked_and_excerpts_are_in_the_script():
    """教程里每个 Python 代码块的第一行都标明是“摘自脚本”还是“演示代码”，摘录要和脚本逐字相同（空白不计）：
    抓改了脚本却没改教程里那段摘录的错误。"""
    blocks = code_blocks(read(TUTORIAL), 'python')
    assert len(blocks) >= 20
    script = normalised(read(SCRIPT))
    excerpts = 0
    for block in blocks:
        first, _, body = block.partition('\n')
        assert first in (EXCERPT, NOT_EXCERPT), block[:80]
        if first == EXCERPT:
            excerpts += 1
            # 摘录里单独一行的 “# …” 表示这里省掉了脚本的几行（比如提速的交接行）：
            # 省略号隔开的每一段都要逐字出现在脚本里，而且先后顺序和脚本相同
            position = 0
            for segment in re.split(r'^[ \t]*# …[ \t]*$', body, flags=re.M):
                if not segment.strip():
                    continue
                found = script.find(normalised(segment), position)
                assert found >= 0, segment[:200]
                position = found + len(normalised(segment))
    assert excerpts >= 15


def test_demo_blocks_in_the_tutorial_run_and_print_what_they_show(mg, capsys):
    """不是摘录的代码块是小演示：每一块都要能照原样运行；写出了输出的（'# 输出：' 后面的注释行），打印的必须正好是那些。
    抓教程里的演示代码跑不通、或写的输出和实际不符的错误。"""
    shown = 0
    for block in code_blocks(read(TUTORIAL), 'python'):
        first, _, body = block.partition('\n')
        if first != NOT_EXCERPT:
            continue
        capsys.readouterr()
        exec(compile(body, 'tutorial-demo', 'exec'), {'__name__': 'tutorial_demo'})
        printed = capsys.readouterr().out.splitlines()
        code, marker, expected = body.partition('# 输出：\n')
        if marker:
            shown += 1
            assert printed == [line[2:] for line in expected.splitlines()], code[:80]
    assert shown >= 5


def test_tutorial_chapters_mirror_the_script_sections():
    """脚本的 14 个小节标题（第 0 到 13 节）都是教程里的标题，文字一字不差、顺序相同（标题级别不限）；
    第 0 到 7 章在“## 附录”之前（核心路径），第 8 到 13 章在附录里：抓脚本的小节加了、改了或调换了，教程却没跟上的错误。"""
    sections = re.findall(r'^# (\d+\. .+)$', read(SCRIPT), flags=re.M)
    text = re.sub(r'^```.*?^```', '', read(TUTORIAL), flags=re.M | re.S)
    core, marker, appendix = text.partition('\n## 附录\n')
    assert marker, '教程要有一个 “## 附录” 标题'
    heading = r'^#{2,6} (\d+\. .+)$'
    assert len(sections) == 14
    assert re.findall(heading, core, flags=re.M) == sections[:8]
    assert re.findall(heading, appendix, flags=re.M) == sections[8:]


def cjk_count(text):
    return len(re.findall(r'[\u3400-\u4dbf\u4e00-\u9fff]', text))


def test_core_path_is_short_enough():
    """核心路径（从开头到 “## 附录”，不算代码块）最多 12,000 个汉字：抓把附录的内容又塞回核心路径、
    让初学者的必读部分越写越长的错误。"""
    text = read(TUTORIAL)
    core = text.partition('\n## 附录\n')[0]
    assert core != text
    prose = re.sub(r'^```.*?^```', '', core, flags=re.M | re.S)
    assert cjk_count(prose) <= 12000, cjk_count(prose)


def test_every_mermaid_diagram_has_a_text_description():
    """每张 mermaid 图后面紧跟一段以 “> 图的文字说明：” 开头的文字：抓加了图却没写文字说明、看不到图（阅读器不渲染
    mermaid）的读者就读不懂的错误。"""
    text = read(TUTORIAL)
    pieces = re.split(r'^```mermaid\n', text, flags=re.M)[1:]
    assert pieces
    for piece in pieces:
        rest = piece.split('\n```\n', 1)[1].lstrip('\n')
        assert rest.startswith('> 图的文字说明：'), rest[:80]


def github_anchor(heading):
    anchor = heading.strip().lower()
    anchor = re.sub(r'[^\w\- ]', '', anchor)
    return anchor.replace(' ', '-')


def anchors_of(path):
    """文件里能链接到的锚点：每个标题（按 GitHub 的规则生成），加上 <a id="…"></a> 写明的锚点（术语表的每一行）。"""
    found, seen = set(), {}
    text = re.sub(r'^```.*?^```', '', read(path), flags=re.M | re.S)   # 代码块里的标题不算
    for heading in re.findall(r'^#{1,6} (.+)$', text, flags=re.M):
        anchor = github_anchor(heading)
        found.add(anchor if anchor not in seen else f'{anchor}-{seen[anchor]}')
        seen[anchor] = seen.get(anchor, 0) + 1
    explicit = re.findall(r'<a id="([^"]+)"></a>', text)
    assert len(explicit) == len(set(explicit)), '同一个 <a id> 锚点出现了两次'
    return found | set(explicit)


@pytest.mark.parametrize('doc', [README, TUTORIAL])
def test_local_links_and_anchors_exist(doc):
    """README 和教程里的每个本地链接都指向存在的文件，带 # 的还要指向存在的标题（按 GitHub 生成锚点的规则）：
    抓改了标题或文件名后留下死链接的错误。"""
    text = re.sub(r'^```.*?^```', '', read(doc), flags=re.M | re.S)
    links = re.findall(r'\]\(([^)\s]+)\)', text)
    local = [link for link in links if not re.match(r'[a-z]+:', link)]
    assert local, 'expected some local links'
    for link in local:
        path, _, anchor = link.partition('#')
        target = os.path.normpath(os.path.join(os.path.dirname(doc), path)) if path else doc
        assert os.path.exists(target), link
        if anchor:
            assert anchor in anchors_of(target), link


def glossary_rows():
    """术语表的每一行：(锚点, 术语, English)。每行以 <a id="g-…"></a> 开头，锚点是 g- 加上 English 一栏（去掉括号里的部分）
    的 ASCII 写法，例如 g-loss、g-autograd、g-bpe。"""
    glossary = read(TUTORIAL).partition('\n### 术语表')[2]
    rows = re.findall(r'^\| (.+?) \| (.+?) \| .+ \|$', glossary, flags=re.M)[2:]
    out = []
    for first, english in rows:
        match = re.fullmatch(r'<a id="(g-[a-z0-9-]+)"></a>(.+)', first)
        assert match, f'术语表的这一行没有以自己的锚点 <a id="g-…"></a> 开头：{first}'
        out.append((match.group(1), re.sub(r'（.*?）', '', match.group(2)).strip(), english))
    return out


def test_glossary_anchors_are_named_after_the_english_term():
    """术语表每一行的锚点就是 g- 加上英文术语的 ASCII 写法（去掉括号里的补充），互不相同：抓复制一行改了术语却没改锚点、
    链接因此跳到别的术语上的错误。"""
    rows = glossary_rows()
    for anchor, term, english in rows:
        slug = re.sub(r'[^a-z0-9]+', '-', re.sub(r'\s*\(.*?\)', '', english).lower()).strip('-')
        assert anchor == 'g-' + slug, (term, anchor, english)
    assert len({anchor for anchor, _, _ in rows}) == len(rows)


def test_glossary_links_point_at_their_own_row():
    """教程里链接到术语表的地方都直接跳到那个术语自己的一行（#g-…），而不是术语表的开头：只有写着“术语表”的链接
    才指向 #术语表。抓加了术语链接却还指向整张表、读者得自己在几十行里找的错误。"""
    text = re.sub(r'^```.*?^```', '', read(TUTORIAL), flags=re.M | re.S)
    anchors = {anchor for anchor, _, _ in glossary_rows()}
    for label, target in re.findall(r'\[([^\]]+)\]\(#(术语表|g-[^)]*)\)', text):
        if target == '术语表':
            assert label == '术语表', f'“{label}”的链接指向术语表的开头，应该指向它自己的一行 #g-…'
        else:
            assert target in anchors, f'“{label}”的链接指向不存在的术语 #{target}'


def test_glossary_terms_are_linked_at_first_use():
    """术语表里的每个术语都在教程里用到，而且第一次出现（代码、标题、行内代码、目录不算）就在一个指向这个术语自己那一行
    （#g-…）的链接里：抓新加了术语却没链接、把链接挪到了后面、或者链接跳到了别的术语上的错误。"""
    text = read(TUTORIAL)
    body, marker, glossary = text.partition('\n### 术语表')
    assert marker
    rows = glossary_rows()
    assert len(rows) >= 40

    def blank(match):
        return re.sub(r'[^\n]', ' ', match.group(0))

    prose = re.sub(r'^## 目录\n.*?(?=^## )', blank, body, flags=re.M | re.S)
    prose = re.sub(r'^```.*?^```', blank, prose, flags=re.M | re.S)
    prose = re.sub(r'^#.*$', blank, prose, flags=re.M)
    prose = re.sub(r'`[^`\n]*`', blank, prose)
    links = [(m.start(1), m.end(1), m.group(2)) for m in re.finditer(r'\[([^\]]+)\]\(#(g-[a-z0-9-]+)\)', prose)]
    for anchor, term, _ in rows:
        pattern = re.escape(term)
        if re.match(r'[A-Za-z]', term):
            pattern = r'(?<![A-Za-z0-9_-])' + pattern + r'(?![A-Za-z0-9_])'
        # 落在另一个术语的链接里的不算（“[梯度下降](#g-gradient-descent)”里的“梯度”是另一个术语）
        first = next((m for m in re.finditer(pattern, prose)
                      if not any(a <= m.start() and m.end() <= b and target != anchor for a, b, target in links)), None)
        assert first, f'术语表里的“{term}”在教程里没有用到'
        assert any(a <= first.start() and first.end() <= b and target == anchor for a, b, target in links), \
            f'“{term}”第一次出现时没有链接到术语表里它自己的一行 #{anchor}：…{prose[max(0, first.start() - 30):first.end() + 30]}…'
