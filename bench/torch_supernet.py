"""The same ENAS search-mode supernets as trial/supernet/{micro,macro,rnn}.ts, in PyTorch, for
`nni-enas bench supernet`: every step samples a fresh architecture and runs only its subgraph,
with the same layers, shapes, batch-statistics BN, aux head, loss and Nesterov SGD, so the
throughput ratio compares the two implementations of one model. Prints one JSON line.

Run with Debian's python3-torch (/usr/bin/python3) and libopenblas0-pthread installed.
"""

import argparse
import json
import random
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


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--space", choices=["micro", "macro", "rnn"], required=True)
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
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    if args.space == "rnn":
        return bench_rnn(args, rng)
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

    def arc_args():
        arc = model.sample(rng)
        return arc if args.space == "micro" else (arc,)

    def train_step():
        model.train()
        optimizer.zero_grad(set_to_none=True)
        logits, aux = model(x, *arc_args())
        loss = F.cross_entropy(logits, y)
        if aux is not None:
            loss = loss + aux_weight * F.cross_entropy(aux, y)
        loss.backward()
        optimizer.step()
        return loss.item()

    for _ in range(args.warmup):
        train_step()
    start = time.perf_counter()
    for _ in range(args.steps):
        train_step()
    train_seconds = time.perf_counter() - start

    xe = torch.randn(args.eval_batch, args.in_channels, args.height, args.width)
    model.eval()
    with torch.no_grad():
        for _ in range(args.warmup):
            model(xe, *arc_args())
        start = time.perf_counter()
        for _ in range(args.steps):
            model(xe, *arc_args())[0].argmax(1)
        infer_seconds = time.perf_counter() - start

    print(json.dumps({
        "framework": f"pytorch {torch.__version__}",
        "threads": args.threads,
        "space": args.space,
        "train_images_per_s": args.batch * args.steps / train_seconds,
        "infer_images_per_s": args.eval_batch * args.steps / infer_seconds,
        "params": sum(p.numel() for p in model.parameters()),
    }))


def bench_rnn(args, rng):
    """Tokens per second of truncated-BPTT training (SGD lr 20, clip 0.25, mean CE per token)."""
    model = RnnSupernet(args.vocab, args.hidden, args.nodes)
    optimizer = torch.optim.SGD(model.parameters(), lr=20, weight_decay=2e-7)
    tokens = torch.randint(0, args.vocab, (args.batch, args.bptt + 1))
    x, y = tokens[:, :-1], tokens[:, 1:]
    h = torch.zeros(args.batch, args.hidden)

    def train_step(h):
        model.train()
        optimizer.zero_grad(set_to_none=True)
        logits, h = model(x, h.detach(), model.sample(rng))
        loss = F.cross_entropy(logits.reshape(-1, args.vocab), y.reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.25)
        optimizer.step()
        return h

    for _ in range(args.warmup):
        h = train_step(h)
    start = time.perf_counter()
    for _ in range(args.steps):
        h = train_step(h)
    train_seconds = time.perf_counter() - start
    model.eval()
    with torch.no_grad():
        start = time.perf_counter()
        for _ in range(args.steps):
            model(x, torch.zeros(args.batch, args.hidden), model.sample(rng))
        infer_seconds = time.perf_counter() - start
    tokens_per_step = args.batch * args.bptt
    print(json.dumps({
        "framework": f"pytorch {torch.__version__}",
        "threads": args.threads,
        "space": "rnn",
        "train_tokens_per_s": tokens_per_step * args.steps / train_seconds,
        "infer_tokens_per_s": tokens_per_step * args.steps / infer_seconds,
        "params": sum(p.numel() for p in model.parameters()),
    }))


if __name__ == "__main__":
    main()
