"""The same ENAS search-mode supernets as trial/supernet/{micro,macro,rnn}.ts, in PyTorch, for
`nni-enas bench supernet`: every step samples a fresh architecture and runs only its subgraph,
with the same layers, shapes, batch-statistics BN, aux head, loss and Nesterov SGD, so the
throughput ratio compares the two implementations of one model. Prints one JSON line, or with
--serve answers step requests (see serve()).

Run with Debian's python3-torch (/usr/bin/python3) and libopenblas0-pthread installed.
"""

import argparse
import json
import random
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

MICRO_OPS = ["sepconv3x3", "sepconv5x5", "avgpool3x3", "maxpool3x3", "identity"]
MACRO_OPS = ["conv3x3", "sepconv3x3", "conv5x5", "sepconv5x5", "avgpool3x3", "maxpool3x3"]


def batch_norm(channels, moving):
    # Micro search BNs use batch statistics in every pass (no running stats), macro keeps them.
    return nn.BatchNorm2d(channels, eps=1e-5, momentum=0.1, track_running_stats=moving)


class FactorizedReduction(nn.Module):
    """Two 1x1 convs on the even and the one-pixel-shifted odd grid, concatenated, then BN."""

    def __init__(self, c_in, c_out, moving):
        super().__init__()
        self.path1 = nn.Conv2d(c_in, c_out // 2, 1, bias=False)
        self.path2 = nn.Conv2d(c_in, c_out // 2, 1, bias=False)
        self.bn = batch_norm(c_out, moving)

    def forward(self, x):
        shifted = F.pad(x, (0, 1, 0, 1))[:, :, 1:, 1:]
        return self.bn(torch.cat([self.path1(x[:, :, ::2, ::2]), self.path2(shifted[:, :, ::2, ::2])], 1))


class ReluConvBn(nn.Module):
    def __init__(self, c_in, c_out, moving):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 1, bias=False)
        self.bn = batch_norm(c_out, moving)

    def forward(self, x):
        return self.bn(self.conv(F.relu(x)))


def separable(c, k):
    return [nn.Conv2d(c, c, k, padding=k // 2, groups=c, bias=False), nn.Conv2d(c, c, 1, bias=False)]


class MicroSep(nn.Module):
    """2x [ReLU -> depthwise kxk + pointwise -> BN] (ENAS.md 1b)."""

    def __init__(self, c, k):
        super().__init__()
        self.body = nn.Sequential(
            nn.ReLU(), *separable(c, k), batch_norm(c, False), nn.ReLU(), *separable(c, k), batch_norm(c, False)
        )

    def forward(self, x):
        return self.body(x)


def micro_op(name, c):
    if name.startswith("sepconv"):
        return MicroSep(c, int(name[-1]))
    if name == "avgpool3x3":
        return nn.AvgPool2d(3, 1, 1, count_include_pad=False)
    if name == "maxpool3x3":
        return nn.MaxPool2d(3, 1, 1)
    return nn.Identity()


class AuxHead(nn.Module):
    def __init__(self, c_in, size, classes):
        super().__init__()
        window = min(5, size)
        pooled = (size - window) // 3 + 1
        self.body = nn.Sequential(
            nn.ReLU(),
            nn.AvgPool2d(window, 3),
            nn.Conv2d(c_in, 128, 1, bias=False),
            batch_norm(128, False),
            nn.ReLU(),
            nn.Conv2d(128, 768, pooled, bias=False),
            batch_norm(768, False),
            nn.ReLU(),
        )
        self.fc = nn.Linear(768, classes, bias=False)

    def forward(self, x):
        return self.fc(self.body(x).mean((2, 3)))


class MicroCell(nn.Module):
    def __init__(self, prev_shape, last_shape, c, nodes, reduction):
        super().__init__()
        self.reduction = reduction
        if reduction:
            self.reduce_input = FactorizedReduction(last_shape[0], c, False)
            prev_shape, last_shape = last_shape, (c, (last_shape[1] + 1) // 2)
        if prev_shape[1] != last_shape[1]:
            self.calibrate_prev = nn.Sequential(nn.ReLU(), FactorizedReduction(prev_shape[0], c, False))
        elif prev_shape[0] != c:
            self.calibrate_prev = ReluConvBn(prev_shape[0], c, False)
        else:
            self.calibrate_prev = nn.Identity()
        self.calibrate_last = ReluConvBn(last_shape[0], c, False) if last_shape[0] != c else nn.Identity()
        # Weights per (node, input slot, possible input node, op), as the reference shares them.
        self.ops = nn.ModuleList(
            nn.ModuleList(
                nn.ModuleList(nn.ModuleDict({op: micro_op(op, c) for op in MICRO_OPS}) for _ in range(b + 2))
                for _ in range(2)
            )
            for b in range(nodes)
        )
        self.output = nn.ModuleList(nn.Conv2d(c, c, 1, bias=False) for _ in range(nodes + 2))
        self.output_bn = batch_norm(c, False)
        # The next cell's h_{i-2} is this cell's (possibly reduced) h_{i-1}.
        self.input_shape = last_shape
        self.shape = (c, last_shape[1])

    def forward(self, prev, last, arc):
        """Returns (this cell's h_{i-1} as the next cell's h_{i-2}, the cell output)."""
        if self.reduction:
            prev, last = last, self.reduce_input(last)
        states = [self.calibrate_prev(prev), self.calibrate_last(last)]
        used = set()
        for b, (in1, op1, in2, op2) in enumerate(arc):
            x = self.ops[b][0][in1][op1](states[in1])
            y = self.ops[b][1][in2][op2](states[in2])
            states.append(x + y)
            used.update((in1, in2))
        loose = [j for j in range(len(states)) if j not in used]
        return last, self.output_bn(sum(self.output[j](F.relu(states[j])) for j in loose))


class MicroSupernet(nn.Module):
    def __init__(self, in_shape, classes, c, layers, nodes, keep_prob):
        super().__init__()
        channels, size = in_shape[2], in_shape[0]
        self.stem = nn.Sequential(nn.Conv2d(channels, 3 * c, 3, padding=1, bias=False), batch_norm(3 * c, False))
        n = layers // 3
        reductions = [n, 2 * n + 1]
        prev = last = (3 * c, size)
        self.cells = nn.ModuleList()
        self.aux_cell = reductions[1] + 1
        for i in range(layers + 2):
            if i in reductions:
                c *= 2
            cell = MicroCell(prev, last, c, nodes, i in reductions)
            self.cells.append(cell)
            prev, last = cell.input_shape, cell.shape
            if i == self.aux_cell:
                self.aux = AuxHead(c, cell.shape[1], classes)
        self.dropout = nn.Dropout(1 - keep_prob)
        self.fc = nn.Linear(c, classes, bias=False)
        self.nodes = nodes

    def forward(self, x, normal, reduce):
        stem = self.stem(x)
        prev, last = stem, stem
        aux = None
        for i, cell in enumerate(self.cells):
            prev, last = cell(prev, last, reduce if cell.reduction else normal)
            out = last
            if self.training and i == self.aux_cell:
                aux = self.aux(out)
        logits = self.fc(self.dropout(F.relu(last).mean((2, 3))))
        return logits, aux

    def sample(self, rng):
        def cell():
            return [(rng.randrange(b + 2), MICRO_OPS[rng.randrange(5)], rng.randrange(b + 2), MICRO_OPS[rng.randrange(5)])
                    for b in range(self.nodes)]
        return (cell(), cell())


class MacroSupernet(nn.Module):
    def __init__(self, in_shape, classes, c, layers, keep_prob):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_shape[2], c, 3, padding=1, bias=False), batch_norm(c, True))
        self.pools = {layers // 3 - 1, 2 * layers // 3 - 1}
        self.layers = nn.ModuleList()
        self.skip_bn = nn.ModuleList()
        self.reductions = nn.ModuleDict()
        for i in range(layers):
            branches = nn.ModuleDict()
            for op in MACRO_OPS:
                head = [nn.Conv2d(c, c, 1, bias=False), batch_norm(c, True), nn.ReLU()]
                if op.startswith("conv"):
                    k = int(op[-1])
                    tail = [nn.Conv2d(c, c, k, padding=k // 2, bias=False), batch_norm(c, True), nn.ReLU()]
                elif op.startswith("sepconv"):
                    tail = [*separable(c, int(op[-1])), batch_norm(c, True), nn.ReLU()]
                else:
                    pool = nn.AvgPool2d(3, 1, 1, count_include_pad=False) if op == "avgpool3x3" else nn.MaxPool2d(3, 1, 1)
                    tail = [pool]
                branches[op] = nn.Sequential(*head, *tail)
            self.layers.append(branches)
            self.skip_bn.append(batch_norm(c, True) if i > 0 else nn.Identity())
            if i in self.pools:
                self.reductions[str(i)] = nn.ModuleList(FactorizedReduction(c, c, True) for _ in range(i + 2))
        self.dropout = nn.Dropout(1 - keep_prob)
        self.fc = nn.Linear(c, classes, bias=False)
        self.num_layers = layers

    def forward(self, x, arc):
        stem = self.stem(x)
        # Lazy history, as the TypeScript supernet: a reduced tensor is computed only if read.
        history = [lambda: stem]
        for i, (op, skips) in enumerate(arc):
            out = self.layers[i][op](history[i]())
            if i > 0:
                out = self.skip_bn[i](out + sum((history[j]() for j, bit in enumerate(skips) if bit), torch.zeros_like(out)))
            done = out
            history.append(lambda done=done: done)
            if str(i) in self.reductions:
                reductions = self.reductions[str(i)]
                history = [memo(lambda entry=entry, j=j: reductions[j](entry())) for j, entry in enumerate(history)]
        return self.fc(self.dropout(history[self.num_layers]().mean((2, 3)))), None

    def sample(self, rng):
        return [(MACRO_OPS[rng.randrange(6)], [rng.randrange(2) for _ in range(i)]) for i in range(self.num_layers)]


RNN_ACTIVATIONS = [torch.tanh, torch.relu, lambda x: x, torch.sigmoid]


class RnnSupernet(nn.Module):
    """ENAS.md 1c as trial/supernet/rnn.ts: tied embedding, W_prev / W_skip_j blocks per
    (predecessor, activation), highway nodes, batch norm on every node's pre-activation and on
    h_t (eps 1, batch statistics in training), mean of loose ends, variational dropout masks."""

    def __init__(self, vocab, hidden, nodes):
        super().__init__()
        H, F_ = hidden, len(RNN_ACTIVATIONS)
        self.H, self.F, self.nodes = H, F_, nodes
        r = 0.1 if H <= 300 else 0.05 if H <= 400 else 0.04
        self.embedding = nn.Parameter(torch.empty(vocab, H).uniform_(-r, r))
        self.w_prev = nn.Parameter(torch.empty(F_ * 2 * H, 2 * H).uniform_(-r, r))
        self.w_skip = nn.ParameterList(nn.Parameter(torch.empty(j * F_ * H, 2 * H).uniform_(-r, r)) for j in range(1, nodes))
        self.bn_nodes = nn.ModuleList(nn.BatchNorm1d(2 * H, eps=1.0, momentum=0.001) for _ in range(nodes))
        self.bn_out = nn.BatchNorm1d(H, eps=1.0, momentum=0.001)

    def sample(self, rng):
        return [(rng.randrange(j) if j else -1, rng.randrange(self.F)) for j in range(self.nodes)]

    def forward(self, tokens, h, cell, keep=(0.75, 0.25, 0.75, 0.25)):
        B, T = tokens.shape
        H = self.H
        training = self.training

        def mask(shape, p):
            return (torch.rand(shape) < p).float() / p if training else None

        m_e, m_x, m_h, m_o = (mask((B, T, 1), keep[0]), mask((B, H), keep[1]), mask((B, H), keep[2]), mask((B, H), keep[3]))
        x_all = F.embedding(tokens, self.embedding)
        if m_e is not None:
            x_all = x_all * m_e
        used = {p for p, _ in cell}
        loose = [j for j in range(self.nodes) if j not in used]
        outputs = []
        for t in range(T):
            x = x_all[:, t]
            if m_x is not None:
                x, hm = x * m_x, h * m_h
            else:
                hm = h
            f0 = cell[0][1]
            pre = torch.cat([x, hm], 1) @ self.w_prev[f0 * 2 * H:(f0 + 1) * 2 * H]
            pre = self.bn_nodes[0](pre)
            h_tilde, c_tilde = pre[:, :H], pre[:, H:]
            c = torch.sigmoid(c_tilde)
            states = [h + c * (RNN_ACTIVATIONS[f0](h_tilde) - h)]
            for j in range(1, self.nodes):
                p, f = cell[j]
                s = states[p] * m_h if m_h is not None else states[p]
                row = (p * self.F + f) * H
                pre = self.bn_nodes[j](s @ self.w_skip[j - 1][row:row + H])
                c = torch.sigmoid(pre[:, H:])
                states.append(states[p] + c * (RNN_ACTIVATIONS[f](pre[:, :H]) - states[p]))
            h = self.bn_out(sum(states[j] for j in loose) / len(loose))
            outputs.append(h * m_o if m_o is not None else h)
        logits = torch.stack(outputs, 1) @ self.embedding.t()
        return logits, h


def memo(fn):
    cache = []

    def get():
        if not cache:
            cache.append(fn())
        return cache[0]

    return get


def micro_arc(genotype):
    """A micro genotype of search-spaces/genotype.ts as (normal, reduce) lists of (in1, op1, in2, op2)."""
    cell = lambda nodes: [(n["inputs"][0], n["ops"][0], n["inputs"][1], n["ops"][1]) for n in nodes]
    return (cell(genotype["normal"]), cell(genotype["reduce"]))


def macro_arc(genotype):
    return ([(layer["op"], layer["skips"]) for layer in genotype["layers"]],)


RNN_ACTIVATION_NAMES = ["tanh", "relu", "identity", "sigmoid"]


def rnn_arc(genotype):
    return ([(node["prev"], RNN_ACTIVATION_NAMES.index(node["act"])) for node in genotype["nodes"]],)


def build(args):
    """The model of --space with its training and inference step, each on one architecture
    (a tuple of forward arguments), and the examples (images or tokens) each step processes."""
    if args.space == "rnn":
        return build_rnn(args)
    in_shape = (args.height, args.width, args.in_channels)
    if args.space == "micro":
        model = MicroSupernet(in_shape, args.classes, args.channels, args.layers, args.nodes, 0.9)
        l2, aux_weight = 1e-4, 0.4
    else:
        model = MacroSupernet(in_shape, args.classes, args.channels, args.layers, 0.9)
        l2, aux_weight = 2.5e-4, 0.0
    # Loss convention of the reference: lambda * sum(w^2), so weight_decay = 2 lambda; SGD skips
    # parameters without a gradient, as our optimizer skips unchosen weights.
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=2 * l2)
    x = torch.randn(args.batch, args.in_channels, args.height, args.width)
    y = torch.randint(0, args.classes, (args.batch,))
    xe = torch.randn(args.eval_batch, args.in_channels, args.height, args.width)

    def train_step(arc):
        model.train()
        optimizer.zero_grad(set_to_none=True)
        logits, aux = model(x, *arc)
        loss = F.cross_entropy(logits, y)
        if aux is not None:
            loss = loss + aux_weight * F.cross_entropy(aux, y)
        loss.backward()
        optimizer.step()
        loss.item()

    def infer_step(arc):
        model.eval()
        with torch.no_grad():
            model(xe, *arc)[0].argmax(1)

    sample = (lambda rng: model.sample(rng)) if args.space == "micro" else (lambda rng: (model.sample(rng),))
    return model, train_step, infer_step, sample, args.batch, args.eval_batch


def build_rnn(args):
    """Truncated-BPTT training (SGD lr 20, clip 0.25, mean CE per token) and inference on one window."""
    model = RnnSupernet(args.vocab, args.hidden, args.nodes)
    optimizer = torch.optim.SGD(model.parameters(), lr=20, weight_decay=2e-7)
    tokens = torch.randint(0, args.vocab, (args.batch, args.bptt + 1))
    x, y = tokens[:, :-1], tokens[:, 1:]
    state = {"h": torch.zeros(args.batch, args.hidden)}

    def train_step(arc):
        model.train()
        optimizer.zero_grad(set_to_none=True)
        logits, h = model(x, state["h"].detach(), *arc)
        loss = F.cross_entropy(logits.reshape(-1, args.vocab), y.reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.25)
        optimizer.step()
        state["h"] = h

    def infer_step(arc):
        # The window's loss, as trial/rnn-cell.ts windowLoss scores it: a reward is its perplexity.
        model.eval()
        with torch.no_grad():
            logits, _ = model(x, torch.zeros(args.batch, args.hidden), *arc)
            F.cross_entropy(logits.reshape(-1, args.vocab), y.reshape(-1)).item()

    tokens_per_step = args.batch * args.bptt
    return model, train_step, infer_step, lambda rng: (model.sample(rng),), tokens_per_step, tokens_per_step


def serve(args, train_step, infer_step):
    """Steps on request, for bench/supernet.ts's interleaved rounds. Each stdin line is
    {"run": "train" | "infer", "threads": n, "genotypes": [...]} (genotypes as search-spaces/
    genotype.ts writes them); the answer is one stdout line with the wall and CPU seconds of
    those steps. The process ends at the end of stdin."""
    to_arc = {"micro": micro_arc, "macro": macro_arc, "rnn": rnn_arc}[args.space]
    print(json.dumps({"ready": True, "framework": f"pytorch {torch.__version__}"}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        torch.set_num_threads(request["threads"])
        step = train_step if request["run"] == "train" else infer_step
        arcs = [to_arc(g) for g in request["genotypes"]]
        wall, cpu = time.perf_counter(), time.process_time()
        for arc in arcs:
            step(arc)
        print(json.dumps({"seconds": time.perf_counter() - wall, "cpuSeconds": time.process_time() - cpu}), flush=True)


def matmul_peak(threads):
    """FP32 GFLOP/s of a 2048x2048 matmul at `threads` threads (best of 3 after a warm-up): the
    machine's practical peak, beside which the supernets' achieved GFLOP/s are read."""
    n = 2048
    torch.set_num_threads(threads)
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--space", choices=["micro", "macro", "rnn"])
    parser.add_argument("--peak", action="store_true", help="only the 2048x2048 matmul GFLOP/s at --threads")
    parser.add_argument("--vocab", type=int, default=10000)
    parser.add_argument("--hidden", type=int, default=200)
    parser.add_argument("--bptt", type=int, default=35)
    parser.add_argument("--height", type=int, default=28)
    parser.add_argument("--width", type=int, default=28)
    parser.add_argument("--in-channels", type=int, default=1)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--channels", type=int, default=20)
    parser.add_argument("--layers", type=int, default=6, help="micro: num_layers (cells = layers + 2); macro: layers")
    parser.add_argument("--nodes", type=int, default=5)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--eval-batch", type=int, default=100)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--serve", action="store_true", help="answer step requests on stdin (bench/supernet.ts)")
    args = parser.parse_args()
    if args.peak:
        return print(json.dumps({"framework": f"pytorch {torch.__version__}", "threads": args.threads, "gflops": matmul_peak(args.threads)}))
    if args.space is None:
        parser.error("--space is required")

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    model, train_step, infer_step, sample, train_examples, infer_examples = build(args)
    if args.serve:
        return serve(args, train_step, infer_step)
    timed = {}
    for name, step in (("train", train_step), ("infer", infer_step)):
        for _ in range(args.warmup):
            step(sample(rng))
        start = time.perf_counter()
        for _ in range(args.steps):
            step(sample(rng))
        timed[name] = time.perf_counter() - start
    unit = "tokens" if args.space == "rnn" else "images"
    print(json.dumps({
        "framework": f"pytorch {torch.__version__}",
        "threads": args.threads,
        "space": args.space,
        f"train_{unit}_per_s": train_examples * args.steps / timed["train"],
        f"infer_{unit}_per_s": infer_examples * args.steps / timed["infer"],
        "params": sum(p.numel() for p in model.parameters()),
    }))


if __name__ == "__main__":
    main()
