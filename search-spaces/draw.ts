/*
 * Pictures of architectures as standalone SVG (no Graphviz needed): what a trial writes into
 * NNI_OUTPUT_DIR, what search results and comparison reports show.
 * Each genotype becomes a small labelled DAG, laid out in columns by longest-path depth.
 */
import { microLooseEnds, rnnLooseEnds, NB201_EDGES, type Genotype, type MacroGenotype, type MicroNode } from './genotype.js';

interface GraphNode {
  id: string;
  label: string;
  kind: 'input' | 'node' | 'output' | 'op';
}
interface GraphEdge {
  from: string;
  to: string;
  label?: string;
  dashed?: boolean;
}
interface Graph {
  title: string;
  nodes: GraphNode[];
  edges: GraphEdge[];
}

const escapeXml = (text: string): string =>
  text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

const COLUMN = 130;
const ROW = 42;
const NODE_W = 86;
const NODE_H = 30;
const FILL: Record<GraphNode['kind'], string> = { input: '#dbeafe', node: '#fef3c7', output: '#dcfce7', op: '#fff' };

/**
 * Turns each labelled edge into a small op box between its ends, so labels get a place of
 * their own in the column layout instead of piling up on crossing edges. Every builder lists
 * nodes in topological order; an op box is inserted just before the node it feeds.
 */
function expandLabels(graph: Graph): Graph {
  const nodes: GraphNode[] = [];
  const edges: GraphEdge[] = [];
  for (const node of graph.nodes) {
    graph.edges.forEach((edge, i) => {
      if (edge.to !== node.id) return;
      if (!edge.label) return void edges.push(edge);
      const id = `op${i}`;
      nodes.push({ id, label: edge.label, kind: 'op' });
      edges.push({ from: edge.from, to: id, dashed: edge.dashed }, { from: id, to: edge.to, dashed: edge.dashed });
    });
    nodes.push(node);
  }
  return { title: graph.title, nodes, edges };
}

/** Renders graphs side by side; returns width, height and the SVG body. */
function layout(labelled: Graph, offsetX: number): { width: number; height: number; body: string } {
  const graph = expandLabels(labelled);
  const depth = new Map<string, number>();
  for (const node of graph.nodes) depth.set(node.id, 0);
  // Longest-path depth; nodes are listed in topological order by every builder below.
  for (const node of graph.nodes)
    for (const edge of graph.edges)
      if (edge.to === node.id) depth.set(node.id, Math.max(depth.get(node.id)!, depth.get(edge.from)! + 1));
  const columns = new Map<number, string[]>();
  for (const node of graph.nodes) {
    const d = depth.get(node.id)!;
    columns.set(d, [...(columns.get(d) ?? []), node.id]);
  }
  const tallest = Math.max(...[...columns.values()].map((c) => c.length));
  const height = 50 + tallest * ROW;
  const position = new Map<string, { x: number; y: number }>();
  for (const [d, ids] of columns)
    ids.forEach((id, i) =>
      position.set(id, { x: offsetX + 20 + d * COLUMN, y: 50 + (i + (tallest - ids.length) / 2) * ROW }),
    );
  const width = 40 + (columns.size - 1) * COLUMN + NODE_W;
  const parts: string[] = [
    `<text x="${offsetX + 20}" y="24" font-size="15" font-weight="bold">${escapeXml(graph.title)}</text>`,
  ];
  graph.edges.forEach((edge, i) => {
    const a = position.get(edge.from)!;
    const b = position.get(edge.to)!;
    const [x1, y1, x2, y2] = [a.x + NODE_W, a.y + NODE_H / 2, b.x, b.y + NODE_H / 2];
    // Edges that skip columns bend so they do not run through the boxes in between.
    const bend = Math.abs(x2 - x1) > COLUMN ? ((i % 2) * 2 - 1) * 28 : 0;
    const [cx, cy] = [(x1 + x2) / 2, (y1 + y2) / 2 + bend];
    parts.push(
      `<path d="M${x1},${y1} Q${cx},${cy} ${x2},${y2}" fill="none" stroke="#555" stroke-width="1.3"` +
        `${edge.dashed ? ' stroke-dasharray="4 3"' : ''} marker-end="url(#arrow)"/>`,
    );
  });
  for (const node of graph.nodes) {
    const { x, y } = position.get(node.id)!;
    parts.push(
      `<rect x="${x}" y="${y}" width="${NODE_W}" height="${NODE_H}" rx="${node.kind === 'op' ? 2 : 6}" fill="${FILL[node.kind]}" stroke="${node.kind === 'op' ? '#9a3412' : '#333'}"/>`,
      `<text x="${x + NODE_W / 2}" y="${y + NODE_H / 2 + 4}" font-size="12" text-anchor="middle">${escapeXml(node.label)}</text>`,
    );
  }
  return { width, height, body: parts.join('\n') };
}

function microCellGraph(title: string, nodes: readonly MicroNode[]): Graph {
  const graph: Graph = {
    title,
    nodes: [
      { id: 'n0', label: 'h[i-2]', kind: 'input' },
      { id: 'n1', label: 'h[i-1]', kind: 'input' },
    ],
    edges: [],
  };
  nodes.forEach((node, b) => {
    graph.nodes.push({ id: `n${b + 2}`, label: `node ${b + 2}`, kind: 'node' });
    node.inputs.forEach((input, k) => graph.edges.push({ from: `n${input}`, to: `n${b + 2}`, label: node.ops[k] }));
  });
  graph.nodes.push({ id: 'out', label: 'concat', kind: 'output' });
  for (const end of microLooseEnds(nodes)) graph.edges.push({ from: `n${end}`, to: 'out', dashed: true });
  return graph;
}

function graphsOf(genotype: Exclude<Genotype, MacroGenotype>): Graph[] {
  switch (genotype.space) {
    case 'micro':
      return [microCellGraph('normal cell', genotype.normal), microCellGraph('reduction cell', genotype.reduce)];
    case 'rnn': {
      const graph: Graph = { title: `recurrent cell, ${genotype.nodes.length} nodes`, nodes: [], edges: [] };
      graph.nodes.push({ id: 'in', label: 'x[t], h[t-1]', kind: 'input' });
      genotype.nodes.forEach((node, j) => {
        graph.nodes.push({ id: `s${j}`, label: `${j}: ${node.act}`, kind: 'node' });
        graph.edges.push({ from: j === 0 ? 'in' : `s${node.prev}`, to: `s${j}` });
      });
      graph.nodes.push({ id: 'out', label: 'h[t] = mean', kind: 'output' });
      for (const end of rnnLooseEnds(genotype.nodes)) graph.edges.push({ from: `s${end}`, to: 'out', dashed: true });
      return [graph];
    }
    case 'nb201': {
      const graph: Graph = { title: 'NAS-Bench-201 cell', nodes: [], edges: [] };
      for (let n = 0; n < 4; n++)
        graph.nodes.push({ id: `n${n}`, label: n === 0 ? 'input' : n === 3 ? 'output' : `node ${n}`, kind: n === 0 ? 'input' : n === 3 ? 'output' : 'node' });
      NB201_EDGES.forEach(([to, from], e) => {
        const op = genotype.edges[e]!;
        graph.edges.push({ from: `n${from}`, to: `n${to}`, label: op, dashed: op === 'none' });
      });
      return [graph];
    }
  }
}

/**
 * Macro networks are a chain with many skips: layers top to bottom, skip connections as arcs on
 * the right whose distance from the chain grows with their span, so they never cross a box.
 */
function drawMacro(genotype: MacroGenotype): { width: number; height: number; body: string } {
  const rows = ['stem', ...genotype.layers.map((layer, i) => `${i}: ${layer.op}`), 'GAP + FC'];
  const rowY = (r: number) => 40 + r * ROW;
  const x = 20;
  const boxW = NODE_W + 20;
  const right = x + boxW;
  const parts = [`<text x="${x}" y="24" font-size="15" font-weight="bold">macro network, ${genotype.layers.length} layers</text>`];
  let widest = 0;
  genotype.layers.forEach((layer, i) =>
    // Skip bit j reads [stem, out_0, …, out_{i-2}][j], i.e. row j (genotype.ts, ENAS.md §1a).
    layer.skips.forEach((bit, j) => {
      if (!bit) return;
      const span = i + 1 - j;
      const reach = right + 10 + span * 14;
      widest = Math.max(widest, reach);
      const [y1, y2] = [rowY(j) + NODE_H / 2, rowY(i + 1) + NODE_H / 2];
      parts.push(
        `<path d="M${right},${y1} C${reach},${y1} ${reach},${y2} ${right},${y2}" fill="none" stroke="#555" stroke-dasharray="4 3" marker-end="url(#arrow)"/>`,
      );
    }),
  );
  rows.forEach((label, r) => {
    const kind = r === 0 ? 'input' : r === rows.length - 1 ? 'output' : 'node';
    if (r > 0)
      parts.push(`<line x1="${x + boxW / 2}" y1="${rowY(r - 1) + NODE_H}" x2="${x + boxW / 2}" y2="${rowY(r)}" stroke="#555" marker-end="url(#arrow)"/>`);
    parts.push(
      `<rect x="${x}" y="${rowY(r)}" width="${boxW}" height="${NODE_H}" rx="6" fill="${FILL[kind]}" stroke="#333"/>`,
      `<text x="${x + boxW / 2}" y="${rowY(r) + NODE_H / 2 + 4}" font-size="12" text-anchor="middle">${escapeXml(label)}</text>`,
    );
  });
  return { width: Math.max(widest, right) + 20, height: rowY(rows.length) + 10, body: parts.join('\n') };
}

/** A standalone SVG picture of any genotype. */
export function drawGenotype(genotype: Genotype): string {
  let x = 0;
  let height = 0;
  const bodies: string[] = [];
  const pieces = genotype.space === 'macro' ? [() => drawMacro(genotype)] : graphsOf(genotype).map((graph) => () => layout(graph, x));
  for (const draw of pieces) {
    const drawn = draw(); // laid out at the current offset x
    bodies.push(drawn.body);
    x += drawn.width + 40;
    height = Math.max(height, drawn.height);
  }
  const width = x;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif">`,
    '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#555"/></marker></defs>',
    `<rect width="${width}" height="${height}" fill="#fff"/>`,
    ...bodies,
    '</svg>',
    '',
  ].join('\n');
}
