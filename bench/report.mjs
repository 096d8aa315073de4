// Turns bench/run.sh's results (JSON lines) into one Markdown table.
//   node bench/report.mjs results.jsonl [portkey-version]
import fs from 'node:fs';

const [file, portkeyVersion] = process.argv.slice(2);
const recs = fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
const meta = recs.find((r) => r.kind === 'meta') ?? {};

const us = (v) => (v == null ? '—' : v < 1000 ? `${Math.round(v)} µs` : `${(v / 1000).toFixed(2)} ms`);
const rps = (v) => (v == null ? '—' : Math.round(v).toLocaleString('en-US'));
const signed = (v) => `${v >= 0 ? '+' : '−'}${Math.abs(Math.round(v))} µs`;
const mib = (kib) => `${(kib / 1024).toFixed(1)} MiB`;

const NAMES = {
  direct: 'fake provider, direct (nginx `return 200`)',
  nginx: 'nginx `proxy_pass` hop to the fake (the floor)',
  'prism-openai': 'Prism, OpenAI path (`gpt-4o-mini`, pass-through)',
  'prism-claude': 'Prism, Claude path (`claude-sonnet-4-5`, translated)',
  'prism-openai-nolog': 'Prism, OpenAI path, access lines off (like the floor, which logs nothing)',
  'prism-claude-nolog': 'Prism, Claude path, access lines off (like the floor, which logs nothing)',
  portkey: `Portkey AI gateway${portkeyVersion ? ` ${portkeyVersion}` : ''} (Node, npm)`,
  'prism-w1': 'Prism `--workers 1`, OpenAI path',
  'prism-w2': 'Prism `--workers 2`, OpenAI path',
  'direct-openai': 'stream fake, direct (OpenAI events)',
  'direct-anthropic': 'stream fake, direct (Anthropic events)',
  'nginx-openai': 'nginx `proxy_pass` hop to the stream fake, unbuffered (the floor)',
  'nginx-anthropic': 'nginx `proxy_pass` hop to the stream fake, unbuffered (the floor)',
};
const GOALS = { 'prism-openai': 0.9, 'prism-claude': 0.8 };

const rows = [];
const row = (measurement, target, r, p50, p99, comparison, goal = '', met = '') =>
  rows.push([measurement, target, r, p50, p99, comparison, goal, met]);
const yes = (ok) => (ok ? 'met' : '**not met**');

function errors(w) {
  const n = w.err_connect + w.err_read + w.err_write + w.err_status + w.err_timeout;
  if (n === 0) return '';
  const parts = ['connect', 'read', 'write', 'status', 'timeout'].filter((k) => w[`err_${k}`] > 0).map((k) => `${w[`err_${k}`]} ${k}`);
  return ` (errors: ${parts.join(', ')})`;
}

// The median round of a row (by req/s, or by p50 for the one-connection rows).
function wrk(group, target) {
  const all = recs.filter((r) => r.kind === 'wrk' && r.group === group && r.target === target);
  if (all.length === 0) return undefined;
  const key = group.startsWith('c1') ? (r) => r.wrk.p50_us : (r) => r.wrk.rps;
  all.sort((a, b) => key(a) - key(b));
  return all[Math.floor((all.length - 1) / 2)];
}
// Other processes on the machine during the measurement, when they took noticeable CPU.
const busy = (r) => (r && r.foreign_cpu >= 10 ? ` (other processes: ${r.foreign_cpu}% of a CPU)` : '');
const skip = (target) => recs.find((r) => r.kind === 'skip' && r.target === target);

// The goals are the issue's, for answers; a streamed answer's ratio is shown without one.
for (const [group, label, goals] of [
  ['tput-small', '300 B body', true],
  ['tput-large', '4 KB body', true],
  ['tput-stream', '300 B body, answer streamed as 20 text events', false],
  ['tput-many', '300 B body, many clients at once', false],
]) {
  const floor = wrk(group, 'nginx');
  for (const t of ['direct', 'nginx', 'prism-openai', 'prism-claude', 'prism-openai-nolog', 'prism-claude-nolog', 'portkey']) {
    const r = wrk(group, t);
    const m = `throughput, ${label}, ${(r ?? floor)?.conns ?? ''} conns`;
    if (!r) {
      const s = skip(t);
      if (s && floor && group !== 'tput-many') row(m, NAMES[t], '—', '—', '—', `skipped: ${s.reason}`);
      continue;
    }
    const ratio = floor ? r.wrk.rps / floor.wrk.rps : null;
    const goal = goals ? GOALS[t] : undefined;
    row(m, NAMES[t], rps(r.wrk.rps), us(r.wrk.p50_us), us(r.wrk.p99_us),
      (ratio == null ? '' : `${ratio.toFixed(2)}x floor`) + errors(r.wrk) + busy(r),
      goal ? `≥ ${goal.toFixed(2)}x` : '', goal && ratio != null ? yes(ratio >= goal && !errors(r.wrk)) : '');
  }
}

for (const [group, label] of [
  ['c1', 'added latency, 1 connection'],
  ['c1-pinned', 'added latency, 1 connection, all processes on one CPU'],
]) {
  const c1direct = wrk(group, 'direct');
  for (const t of ['direct', 'nginx', 'prism-openai', 'prism-claude', 'portkey']) {
    const r = wrk(group, t);
    if (!r) continue;
    const added = t === 'direct' || !c1direct ? null : r.wrk.p50_us - c1direct.wrk.p50_us;
    const isPrism = t.startsWith('prism');
    row(label, NAMES[t], rps(r.wrk.rps), us(r.wrk.p50_us), us(r.wrk.p99_us),
      (added == null ? '' : `${signed(added)} p50 over direct`) + errors(r.wrk) + busy(r), isPrism ? '≤ +50 µs' : '', isPrism ? yes(added <= 50) : '');
  }
}

for (const t of [1, 2]) {
  const w1 = wrk(`workers-t${t}`, 'prism-w1');
  const w2 = wrk(`workers-t${t}`, 'prism-w2');
  if (!w1 || !w2) continue;
  const ratio = w2.wrk.rps / w1.wrk.rps;
  row(`workers, wrk -t${t} -c${w1.conns}`, NAMES['prism-w1'], rps(w1.wrk.rps), us(w1.wrk.p50_us), us(w1.wrk.p99_us), (errors(w1.wrk) + busy(w1)).trim());
  row(`workers, wrk -t${t} -c${w2.conns}`, NAMES['prism-w2'], rps(w2.wrk.rps), us(w2.wrk.p50_us), us(w2.wrk.p99_us),
    `${ratio.toFixed(2)}x workers 1` + errors(w2.wrk) + busy(w2), 'grows (≥ 1.05x)', yes(ratio >= 1.05));
}

const stream = (t) => recs.find((r) => r.kind === 'stream' && r.target === t);
// Each hop (the nginx floor when measured, then Prism) against the stream fake hit directly.
for (const [direct, hops] of [
  ['direct-openai', ['nginx-openai', 'prism-openai']],
  ['direct-anthropic', ['nginx-anthropic', 'prism-claude']],
]) {
  const d = stream(direct);
  const measured = hops.filter((t) => stream(t));
  if (!d || !measured.length) continue;
  const label = `${d.r.requests} streams × ${d.events} events, ${d.gap_ms} ms apart`;
  row(`stream time to first token (${label})`, NAMES[direct], '—', us(d.r.ttft_us.p50), us(d.r.ttft_us.p99), '');
  for (const t of measured) {
    const p = stream(t);
    row(`stream time to first token (${label})`, NAMES[t], '—', us(p.r.ttft_us.p50), us(p.r.ttft_us.p99), `${signed(p.r.ttft_us.p50 - d.r.ttft_us.p50)} p50 over direct`);
  }
  row('stream per-event delay (fake wrote it → client read it)', NAMES[direct], '—', us(d.r.delay_us.p50), us(d.r.delay_us.p99), `${d.r.events} events`);
  for (const t of measured) {
    const p = stream(t);
    row('stream per-event delay (fake wrote it → client read it)', NAMES[t], '—', us(p.r.delay_us.p50), us(p.r.delay_us.p99),
      `${signed(p.r.delay_us.p50 - d.r.delay_us.p50)} p50 per event over direct`);
  }
}

for (const h of recs.filter((r) => r.kind === 'hold')) {
  const r = h.r;
  const perStream = ((r.rss_held_kib - r.rss_before_kib) * 1024) / Math.max(1, r.ready);
  const how = r.proto === 'h2' ? 'HTTP/2 cleartext, 100 streams per connection' : 'HTTP/1.1, one connection each';
  const all = r.ready === r.streams && r.failed === 0;
  const tenK = r.streams >= 10000;
  const ok = all && r.rss_held_kib * 1024 <= 200e6;
  row(`${r.streams.toLocaleString('en-US')} concurrent open streams (${how}), held ${r.hold_ms / 1000} s`, 'Prism `--workers 1`, OpenAI path', '—', '—', '—',
    `VmRSS ${mib(r.rss_held_kib)} held (${mib(r.rss_before_kib)} before, ${(perStream / 1024).toFixed(1)} KiB/stream; ${mib(r.rss_after_close_kib)} after closing)` +
      (all ? '' : `; only ${r.ready} of ${r.streams} streamed, ${r.failed} failed ${JSON.stringify(r.errors)}`),
    tenK ? '≤ 200 MB' : '', tenK ? yes(ok) : '');
}

// bench/soak.sh's outcome: resident memory after the first chunk of requests and after the last.
const kib = (v) => `${Math.round(v).toLocaleString('en-US')} KiB`;
for (const s of recs.filter((r) => r.kind === 'soak')) {
  const paths = s.models.split(',').map((m) => `\`${m}\``).join(' and ');
  const complete = s.requests >= s.target_requests;
  const ok = complete && s.errors === 0 && s.ratio >= 0.95 && s.ratio <= 1.05;
  row(`resident memory after ${s.first_at.toLocaleString('en-US')} and after ${s.requests.toLocaleString('en-US')} requests (${s.conns} conns, ${paths} alternating, ${s.body} body)`,
    `Prism \`--workers ${s.workers}\``, '—', '—', '—',
    `VmRSS ${kib(s.first_rss_kib)} → ${kib(s.last_rss_kib)} (ratio ${s.ratio.toFixed(3)}); ${s.errors} errors in ${s.seconds} s` +
      (complete ? '' : `; stopped by its time bound before ${s.target_requests.toLocaleString('en-US')}`),
    'within 5%', yes(ok));
}
const soakSkipped = skip('soak');
if (soakSkipped) row('resident memory after 100k and after 1M requests', 'Prism `--workers 1`', '—', '—', '—', `not measured: ${soakSkipped.reason}`, 'within 5%', '**not met**');

const out = [];
out.push(`Machine: ${meta.nproc} CPUs (${meta.cpu}), ${meta.mem}, Linux ${meta.kernel}; load average at start ${meta.load}.`);
out.push(`Prism ${meta.commit} (${meta.prism}); wrk ${meta.wrk}, ${meta.nginx}, Node ${meta.node}; ${meta.date}.`);
const rounds = Number(process.env.BENCH_ROUNDS ?? 1);
out.push(`wrk rows: ${process.env.BENCH_SECONDS ?? '?'} s each${rounds > 1 ? `, median of ${rounds} rounds` : ''}, one wrk thread unless stated; Prism with one worker unless stated.`);
out.push('');
out.push('| measurement | target | req/s | p50 | p99 | comparison | goal | met |');
out.push('| --- | --- | ---: | ---: | ---: | --- | --- | --- |');
for (const r of rows) out.push(`| ${r.join(' | ')} |`);
console.log(out.join('\n'));
