"""测试和基准脚本 (benchmark.py) 都用的几个小工具。这里不 import pytest：基准脚本要能在任何解释器
（包括没装 pytest 的 PyPy）上运行。"""
import os
import random

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def graph_size(loss):
    """从 loss 能走到的节点数和边数（叶子也算）。"""
    nodes, edges, seen, stack = 0, 0, set(), [loss]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        nodes += 1
        edges += len(node._children)
        stack.extend(node._children)
    return nodes, edges


def default_start(mg):
    """默认运行的起点：设好种子，读自带的数据，建初始参数。返回 (state, 训练集, 分词器)。"""
    random.seed(mg.seed)
    docs = mg.load_docs(os.path.join(ROOT, mg.input_path))
    train_docs, _ = mg.split_docs(docs)
    tok = mg.Tokenizer(docs)
    return mg.init_params(tok.vocab_size), train_docs, tok


def train_steps(mg, start, steps):
    """从 start 开始，按 1000 步的学习率计划训练前 steps 步；返回每步的损失。"""
    state, train_docs, tok = start
    losses = []
    for step, loss, lr in mg.train(state, mg.Adam(mg.flatten(state)), train_docs, tok, mg.num_steps):
        losses.append(loss)
        if step == steps:
            break
    return losses
