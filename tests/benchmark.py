"""Speed benchmark for microgpt_teaching.py. Run it by hand; pytest does not collect it.

    python tests/benchmark.py                 # 50 training steps with fused_ops on and off
    python tests/benchmark.py --steps=200     # more steps, steadier figures
    python tests/benchmark.py --compare=/path/to/other_microgpt.py --runs=3
                                              # also time whole default runs of this script and of
                                              # another one, in turn, and print the ratio

Each measurement runs in a fresh Python process. Training uses the shipped input.txt and the default
settings (including the learning-rate schedule of a 1000-step run); only the first --steps steps are
timed. Graph sizes are counted on the same documents, outside the timed part. Peak memory is the
process's maximum resident set size (Unix only).
"""
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, 'microgpt_teaching.py')


def graph_size(loss):
    """Nodes and edges reachable from the loss (leaves included)."""
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


def measure(fused, steps):
    """Runs inside a child process; prints one JSON line."""
    import gc
    import random
    sys.path.insert(0, ROOT)
    import microgpt_teaching as mg
    mg.fused_ops = fused
    gc.disable()                                   # as the script's own main() does
    random.seed(mg.seed)
    docs = mg.load_docs(os.path.join(ROOT, mg.input_path))
    train_docs, _ = mg.split_docs(docs)
    tok = mg.Tokenizer(docs)
    state = mg.init_params(tok.vocab_size)

    class StopAfter:
        stop_requested = False

    stopper = StopAfter()

    def on_step(step, loss):
        if step == steps:
            stopper.stop_requested = True

    start = time.perf_counter()
    losses = mg.train(state, mg.flatten(state), train_docs, tok, ctrl_c=stopper, on_step=on_step)
    seconds = time.perf_counter() - start
    nodes = edges = 0
    for doc in train_docs[:steps]:
        per_doc = mg.doc_losses(state, tok.encode(doc))
        n, e = graph_size((1 / len(per_doc)) * mg.add_all(per_doc))
        nodes, edges = nodes + n, edges + e
    try:
        import resource
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        peak_mib = peak / 2 ** 20 if sys.platform == 'darwin' else peak / 1024   # macOS: bytes; Linux: KiB
    except ImportError:
        peak_mib = None
    print(json.dumps({'steps': len(losses), 'seconds': seconds, 'nodes': nodes / steps, 'edges': edges / steps,
                      'peak_mib': peak_mib, 'last_loss': losses[-1]}))


def child(fused, steps):
    out = subprocess.run([sys.executable, __file__, f'--child={"fused" if fused else "atomic"}', f'--steps={steps}'],
                         stdout=subprocess.PIPE, check=True, encoding='utf-8').stdout
    return json.loads(out.strip().splitlines()[-1])


def whole_runs(other, runs):
    """Alternate whole default runs of this script and of another, and return the wall times."""
    times = {'this': [], 'other': []}
    for _ in range(runs):
        for key, path in (('this', SCRIPT), ('other', other)):
            start = time.perf_counter()
            subprocess.run([sys.executable, path], cwd=os.path.dirname(os.path.abspath(path)),
                           stdout=subprocess.DEVNULL, check=True)
            times[key].append(time.perf_counter() - start)
    return times


def main():
    args = dict(arg[2:].split('=', 1) for arg in sys.argv[1:] if arg.startswith('--') and '=' in arg)
    steps = int(args.get('steps', 50))
    if 'child' in args:
        measure(args['child'] == 'fused', steps)
        return
    print(f'Python {sys.version.split()[0]}, {steps} training steps each, default settings\n')
    results = {name: child(name == 'fused', steps) for name in ('fused', 'atomic')}
    print(f'{"":8} {"steps/s":>9} {"nodes/step":>11} {"edges/step":>11} {"peak MiB":>9} {"loss at last step":>18}')
    for name, r in results.items():
        peak = f'{r["peak_mib"]:.1f}' if r['peak_mib'] is not None else 'n/a'
        print(f'{name:8} {r["steps"] / r["seconds"]:9.2f} {r["nodes"]:11.0f} {r["edges"]:11.0f} {peak:>9} '
              f'{r["last_loss"]:18.12f}')
    ratio = (results['fused']['steps'] / results['fused']['seconds']) / (
        results['atomic']['steps'] / results['atomic']['seconds'])
    print(f'\nfused / atomic speed: {ratio:.1f}x;  nodes: {results["atomic"]["nodes"] / results["fused"]["nodes"]:.1f}x '
          f'fewer;  edges: {results["atomic"]["edges"] / results["fused"]["edges"]:.1f}x fewer')
    if 'compare' in args:
        runs = int(args.get('runs', 1))
        times = whole_runs(args['compare'], runs)
        this, other = statistics.median(times['this']), statistics.median(times['other'])
        print(f'\nwhole default runs, {runs} each, in turn (median wall seconds):')
        print(f'  microgpt_teaching.py  {this:8.1f}')
        print(f'  {os.path.basename(args["compare"]):20}  {other:8.1f}')
        print(f'  ratio                 {other / this:8.1f}x')


if __name__ == '__main__':
    main()
