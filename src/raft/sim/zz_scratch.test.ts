import { it } from 'vitest';
import { runSchedule } from './harness.js';
// temporary exploration; deleted before commit
it('scan', () => {
  const base = JSON.parse(process.env.BASE!);
  const n = Number(process.env.N ?? 200);
  let fail = 0; const q: number[] = [];
  const errs: string[] = [];
  for (let s = 0; s < n; s++) {
    const r = runSchedule({ ...base, seed: 1000 + s });
    q.push(r.quietSteps);
    if (!r.ok) { fail++; errs.push(`${1000 + s}: ${r.error!.slice(0, 300)}`); }
  }
  q.sort((a,b)=>a-b); console.log(`FAIL ${fail}/${n} quiet p50 ${q[q.length>>1]} p99 ${q[Math.floor(q.length*0.99)]} max ${q[q.length-1]}\n` + errs.slice(0, 5).join('\n'));
}, 600000);
